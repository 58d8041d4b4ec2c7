/**
 * A tee for a layer's compressed bytes: while a layer is compressed to its file, the same bytes can
 * go to a second consumer (pushArchive streams them to the registry, so a cold push compresses and
 * uploads in one pass). The tarball module knows nothing of registries: the consumer is any Writable
 * with `finish`/`abort`.
 *
 * The tee must never break compression, and may only slow it while it is healthy: its backpressure
 * is honoured (memory stays bounded whatever the layer size), but when the sink fails, or takes no
 * bytes for `stallMs`, the tee is detached (`abort`) and compression goes on to the file alone.
 * @module
 */
import type { Hash } from 'node:crypto';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { debuglog } from 'node:util';
import type { Digest } from '../v1/digest.js';
import type { Descriptor } from '../v1/manifest.js';

const debug = debuglog('slipway');

/**
 * How long a tee may hold compression up without taking any bytes before it is detached. Progress,
 * not `'drain'`, resets it: `'drain'` only comes once the sink's whole buffer is empty, which on a
 * link slower than buffer ÷ stallMs (4 MiB ÷ 10 s ≈ 3 Mbit/s) never happens within the window.
 */
export const defaultTeeStallMs = 10_000;

/** The second consumer of a layer's compressed bytes (a streamed upload, say). */
export interface CompressedTee {
  /** Gets every compressed byte in order, then `end()`. `write()` → false: compression waits for `'drain'`. An `'error'`, or `'close'` before the end, detaches the tee. */
  readonly sink: Writable;
  /**
   * Compression ended, the layer matched its diff ID and is in its file: the bytes written to the
   * sink are the blob `descriptor`. Awaited before the layer counts as prepared; must not reject.
   */
  finish(descriptor: Descriptor): Promise<unknown>;
  /** Compression failed or was cancelled, or the tee was detached: the bytes must not be used. Idempotent. */
  abort(reason?: unknown): void;
  /** @defaultValue {@link defaultTeeStallMs} */
  readonly stallMs?: number;
}

/** The layer about to be compressed. */
export interface CompressedLayer {
  /** sha256 of the uncompressed tar (from the image config). */
  diffID: Digest;
  /** Uncompressed size. */
  size: number;
}

/**
 * Asked once per layer that is actually compressed (never for cached or already-compressed layers),
 * before compression starts; undefined means no tee for that layer. It may answer asynchronously
 * (pushArchive first asks whether the destination tag exists); a factory that fails means no tee.
 */
export type CompressedTeeFactory = (layer: CompressedLayer) => CompressedTee | undefined | Promise<CompressedTee | undefined>;

/**
 * The end of a pipeline that only hashes: a Writable, because a Transform nobody reads stops taking
 * bytes at its highWaterMark (a gzip layer over ~16 KiB once hung that way).
 */
export function hashSink(hash: Hash): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback();
    },
  });
}

/**
 * A pass-through that hashes and counts what it sees and copies it to an optional tee, as described
 * in the module comment. Bytes flow on to the next stage (the file) whatever the tee does.
 */
export class HashTee extends Transform {
  readonly #hash: Hash;
  readonly #tee: CompressedTee | undefined;
  readonly #stallMs: number;
  readonly #label: string;
  #detached: boolean;
  #size = 0;
  #wait: { timer: NodeJS.Timeout; resume: () => void } | undefined;
  readonly #onError = (err: Error): void => this.#detach(err);
  // A sink destroyed without an error (an HTTP client dropping its request body) only says 'close'.
  readonly #onClose = (): void => {
    if (!this.#tee?.sink.writableFinished) this.#detach(new Error('the consumer closed before the end'));
  };

  constructor(hash: Hash, tee?: CompressedTee, label = 'layer') {
    super();
    this.#hash = hash;
    this.#tee = tee;
    this.#label = label;
    const stallMs = tee?.stallMs ?? defaultTeeStallMs;
    this.#stallMs = Number.isFinite(stallMs) && stallMs > 0 ? stallMs : defaultTeeStallMs;
    this.#detached = tee === undefined;
    tee?.sink.on('error', this.#onError);
    tee?.sink.on('close', this.#onClose);
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.#size;
  }

  /** True while the tee has had every byte (false when there is none or it was detached). */
  get attached(): boolean {
    return !this.#detached;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    // The file gets the chunk at once; only the next chunk waits for the tee.
    this.push(chunk);
    if (this.#detached) return callback();
    const sink = this.#tee!.sink;
    let more: boolean;
    try {
      more = sink.write(chunk);
    } catch (err) {
      this.#detach(err);
      return callback();
    }
    if (more || this.#detached) return callback();
    const resume = (): void => {
      if (this.#wait?.resume !== resume) return;
      clearTimeout(this.#wait.timer);
      this.#wait = undefined;
      sink.off('drain', resume);
      callback();
    };
    // Buffered bytes going down means the consumer is taking them, however slowly: wait on.
    let buffered = sink.writableLength;
    const check = (): void => {
      if (this.#wait?.resume !== resume) return;
      const now = sink.writableLength;
      if (now < buffered) {
        buffered = now;
        this.#wait.timer = setTimeout(check, this.#stallMs);
        return;
      }
      this.#detach(new Error(`the consumer of ${this.#label} took no bytes for ${this.#stallMs} ms`));
    };
    this.#wait = { timer: setTimeout(check, this.#stallMs), resume };
    sink.on('drain', resume);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.#detached) this.#tee!.sink.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#wait) {
      clearTimeout(this.#wait.timer);
      this.#tee?.sink.off('drain', this.#wait.resume);
      this.#wait = undefined;
    }
    callback(error);
  }

  #detach(err: unknown): void {
    if (this.#detached) return;
    this.#detached = true;
    debug('%s: detaching the tee of compressed bytes (%s); compression goes on', this.#label, err instanceof Error ? err.message : String(err));
    this.#tee!.abort(err);
    this.#wait?.resume();
  }
}
