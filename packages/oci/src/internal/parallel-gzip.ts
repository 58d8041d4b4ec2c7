/**
 * A block-parallel, deterministic gzip writer.
 *
 * Why: Node's zlib deflates one stream on one thread, about 35–40 MB/s at level 6 on incompressible
 * data, so pushing a `docker save` archive of random-ish layers took 4.7× skopeo, whose pgzip
 * compresses blocks in parallel. Here the input is cut into fixed blocks; each block is deflated
 * on its own with the async `zlib.deflateRaw` (libuv's threadpool, so blocks run on every core),
 * ending in a sync flush (byte-aligned, not final) except the last, which finishes the stream. The
 * raw deflate pieces are written in order between a gzip header and the CRC-32/ISIZE trailer: one
 * ordinary gzip member that `gzip -d`, Go, containerd and Node read like any other.
 *
 * Incompressible blocks (already-compressed files, random data) are not given to zlib at all: a
 * cheap probe of a sample of the block (byte histogram + 4-byte repeats, below) decides, and such
 * a block is written as stored deflate blocks (5 bytes of framing per 64 KiB), at memcpy speed.
 * zlib itself would also end up storing such a block, after searching it for matches at 40 MB/s.
 *
 * Deterministic by construction: block boundaries depend only on the byte offset, the probe is
 * integer arithmetic in JS, stored framing is written here, and each compressible block's bytes
 * depend only on the block, the level and the previous block's tail (the dictionary), never on
 * timing, chunking of the input or the number of cores. Only the bytes zlib emits for compressible
 * blocks depend on the zlib build: callers that cache by digest key on {@link parallelGzipFormat}
 * and `process.versions.zlib`.
 * @module
 */
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import { constants, crc32, deflateRaw, type ZlibOptions } from 'node:zlib';
import { AbortedError, InvalidArgumentError } from '../errors.js';
import { Semaphore } from './semaphore.js';

const deflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(deflateRaw);

/**
 * 1 MiB, as pgzip: measured on text, 256 KiB blocks cost ~4 % more CPU (per-call zlib set-up),
 * 4 MiB blocks save no CPU and hold 4× the memory; with the dictionary every size is within 0.1 %
 * of one-stream level 6 (without it 1 MiB blocks lose 0.4 %, for ~1 % less CPU: kept).
 */
export const defaultBlockSize = 1 << 20;
/** Deflate's window: the previous block's last 32 KiB is the next block's dictionary. */
const windowSize = 32 * 1024;
/** Probe: up to 32 windows of 1 KiB spread over the block (~0.15 ms per MiB; see looksIncompressible). */
const probeWindows = 32;
const probeWindowSize = 1024;
const hashBits = 12;
const minProbe = 4096;
/** A stored deflate block holds at most 65535 bytes. */
const maxStored = 0xffff;

/**
 * Every parameter that shapes the output, for cache keys: change it (or the probe, or the framing)
 * and digests change, so old cache entries must not be used.
 */
export const parallelGzipFormat = `pgz1:block=${defaultBlockSize}:dict=32k:probe=h2-1/16+lz32k-1/32@${probeWindows}x${probeWindowSize}:stored=65535:os=255`;

/**
 * Deflate jobs in libuv's threadpool at once, process-wide. Bounded below the pool size (4 unless
 * UV_THREADPOOL_SIZE says otherwise) so file reads and writes still find a free thread.
 */
const poolSize = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10) || 4;
const deflateSlots = new Semaphore(Math.max(1, Math.min(availableParallelism(), poolSize - 1)));

// 10-byte gzip header: magic, deflate, no flags, mtime 0 (reproducible), XFL 0, OS 255 ("unknown":
// the bytes do not depend on the OS that wrote them).
const header = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
// A final, empty fixed-Huffman block: the whole deflate stream of empty input (what zlib writes too).
const emptyFinal = Buffer.from([0x03, 0x00]);

export interface ParallelGzipOptions {
  /** zlib level for compressible blocks, 1–9. @defaultValue 6 */
  level?: number;
  /** Blocks read ahead of the one being written (memory: about 2 × this × 1 MiB). @defaultValue 4 */
  maxInFlight?: number;
  /** Destroys the stream with SLIPWAY_ABORTED when it fires. */
  signal?: AbortSignal;
  /** Only for tests: a smaller block size exercises boundaries cheaply. Changes the output. */
  blockSize?: number;
}

/**
 * True when a sample of `block` looks incompressible: a flat byte histogram (collision entropy of
 * at least ~7.91 bits per byte, so Huffman coding could save at most ~1 %) and almost no repeated
 * 4-byte strings within deflate's 32 KiB reach (under 1/32 of the sampled positions, so LZ77 could
 * not save more than a few %). Integer arithmetic only, so the answer is the same on every machine.
 * Many small windows rather than a few big ones: measured on a /usr/share + /usr/lib tar, 8 × 4 KiB
 * stored blocks that level 6 shrinks by 10–13 % (+0.8 % layer size), 32 × 1 KiB only +0.1 %.
 */
export function looksIncompressible(block: Uint8Array): boolean {
  // Below a few KiB the histogram test is noise (and zlib is cheap): let zlib decide.
  if (block.length < minProbe) return false;
  const counts = new Uint32Array(256);
  const positions = new Int32Array(1 << hashBits).fill(-1);
  const values = new Int32Array(1 << hashBits);
  let sampled = 0;
  let matched = 0;
  const windows = block.length <= probeWindows * probeWindowSize ? 1 : probeWindows;
  const span = windows === 1 ? block.length : probeWindowSize;
  for (let w = 0; w < windows; w++) {
    const start = windows === 1 ? 0 : Math.floor((w * block.length) / windows);
    const end = start + span;
    sampled += span;
    // A position counts when its 4 bytes (ending there) occurred at most 32 KiB before, per the
    // most recent occurrence in its hash bucket (earlier windows included): about the share of
    // bytes LZ77 could replace by matches. `v` holds the 4 bytes ending at i.
    let v = 0;
    for (let i = start; i < end; i++) {
      const byte = block[i]!;
      counts[byte]!++;
      v = (v << 8) | byte;
      if (i < start + 3) continue;
      const h = Math.imul(v, 0x9e3779b1) >>> (32 - hashBits);
      const previous = positions[h]!;
      if (values[h] === v && previous >= 0 && i - previous <= windowSize) matched++;
      positions[h] = i;
      values[h] = v;
    }
  }
  let sumSquares = 0;
  for (let b = 0; b < 256; b++) sumSquares += counts[b]! * counts[b]!;
  // E[256·Σc²] = n² + 255·n for uniform bytes; flat means the excess over that is under n²/16.
  // All terms are integers below 2^53 (n ≤ 32 Ki), so the comparison is exact.
  const flat = 256 * sumSquares - 255 * sampled <= sampled * sampled + Math.floor((sampled * sampled) / 16);
  return flat && matched * 32 < sampled;
}

/** `data` as stored deflate blocks (byte-aligned input and output), the last one final when `last`. */
function stored(data: Buffer, last: boolean): Buffer {
  const pieces = Math.ceil(data.length / maxStored);
  const out = Buffer.allocUnsafe(data.length + 5 * pieces);
  let o = 0;
  for (let p = 0; p < pieces; p++) {
    const from = p * maxStored;
    const len = Math.min(maxStored, data.length - from);
    out[o] = last && p === pieces - 1 ? 0x01 : 0x00; // BFINAL, BTYPE=00, then padding to the byte
    out.writeUInt16LE(len, o + 1);
    out.writeUInt16LE(~len & 0xffff, o + 3);
    data.copy(out, o + 5, from, from + len);
    o += 5 + len;
  }
  return out;
}

class ParallelGzip extends Transform {
  readonly #level: number;
  readonly #blockSize: number;
  readonly #maxInFlight: number;
  readonly #abort = new AbortController();
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: () => void;
  #block: Buffer;
  #fill = 0;
  /** A full block kept until we know whether more input follows (only the last block is final). */
  #pending: Buffer | undefined;
  /** The raw tail of the block dispatched last: the next block's dictionary. */
  #previous: Buffer | undefined;
  readonly #queue: Promise<Buffer>[] = [];
  #crc = 0;
  #size = 0;
  #started = false;

  constructor(options: ParallelGzipOptions) {
    super();
    const level = options.level ?? 6;
    if (!Number.isInteger(level) || level < 1 || level > 9) throw new InvalidArgumentError(`gzip level must be an integer from 1 to 9, got ${JSON.stringify(options.level)}`);
    const blockSize = options.blockSize ?? defaultBlockSize;
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new InvalidArgumentError(`blockSize must be a positive integer, got ${JSON.stringify(options.blockSize)}`);
    const maxInFlight = options.maxInFlight ?? 4;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new InvalidArgumentError(`maxInFlight must be a positive integer, got ${JSON.stringify(options.maxInFlight)}`);
    this.#level = level;
    this.#blockSize = blockSize;
    this.#maxInFlight = maxInFlight;
    this.#block = Buffer.allocUnsafe(blockSize);
    this.#signal = options.signal;
    this.#onAbort = () => this.destroy(new AbortedError('operation aborted', { cause: this.#signal?.reason }));
    if (this.#signal?.aborted) process.nextTick(this.#onAbort);
    else this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#accept(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.#finish().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#signal?.removeEventListener('abort', this.#onAbort);
    // Jobs already in the threadpool run to the end; their results are dropped.
    this.#abort.abort(error ?? new AbortedError('stream destroyed'));
    this.#queue.length = 0;
    callback(error);
  }

  async #accept(chunk: Buffer): Promise<void> {
    if (!Buffer.isBuffer(chunk)) chunk = Buffer.from(chunk);
    this.#crc = crc32(chunk, this.#crc);
    this.#size += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#pending) {
        // More input follows the pending block, so it is not the last one.
        this.#dispatch(this.#pending, false);
        this.#pending = undefined;
        while (this.#queue.length >= this.#maxInFlight) await this.#emitHead();
      }
      if (this.#fill === 0 && chunk.length - offset >= this.#blockSize) {
        // A whole block in the chunk (file streams read exactly 1 MiB): kept by reference, as a
        // PassThrough would keep it; written chunks are not modified afterwards.
        this.#pending = chunk.subarray(offset, offset + this.#blockSize);
        offset += this.#blockSize;
        continue;
      }
      const n = Math.min(this.#blockSize - this.#fill, chunk.length - offset);
      chunk.copy(this.#block, this.#fill, offset, offset + n);
      this.#fill += n;
      offset += n;
      if (this.#fill === this.#blockSize) {
        this.#pending = this.#block;
        this.#block = Buffer.allocUnsafe(this.#blockSize);
        this.#fill = 0;
      }
    }
  }

  async #finish(): Promise<void> {
    if (this.#pending) this.#dispatch(this.#pending, this.#fill === 0);
    this.#pending = undefined;
    if (this.#fill > 0) this.#dispatch(this.#block.subarray(0, this.#fill), true);
    this.#fill = 0;
    while (this.#queue.length > 0) await this.#emitHead();
    if (this.#size === 0) this.#emit(emptyFinal);
    const trailer = Buffer.allocUnsafe(8);
    trailer.writeUInt32LE(this.#crc >>> 0, 0);
    trailer.writeUInt32LE(this.#size % 2 ** 32, 4);
    this.push(trailer);
  }

  #dispatch(block: Buffer, last: boolean): void {
    const dictionary = this.#previous;
    this.#previous = block.length >= windowSize ? block.subarray(block.length - windowSize) : block;
    let job: Promise<Buffer>;
    if (looksIncompressible(block)) {
      job = Promise.resolve(stored(block, last));
    } else {
      const options: ZlibOptions = { level: this.#level, finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH };
      // The previous block's raw tail is what a decoder's window holds at this point: matches
      // into it are valid and keep the ratio close to one-stream deflate.
      if (dictionary) options.dictionary = dictionary;
      job = deflateSlots.run(() => deflateRawAsync(block, options), this.#abort.signal);
    }
    // Settled even if nobody awaits it (stream destroyed meanwhile): no unhandled rejection.
    job.catch(() => undefined);
    this.#queue.push(job);
  }

  async #emitHead(): Promise<void> {
    const head = this.#queue[0];
    if (!head) return;
    const bytes = await head;
    if (this.#abort.signal.aborted) throw this.#abort.signal.reason;
    void this.#queue.shift(); // settled: awaited just above
    this.#emit(bytes);
  }

  #emit(bytes: Buffer): void {
    if (!this.#started) {
      this.#started = true;
      this.push(header);
    }
    if (bytes.length > 0) this.push(bytes);
  }
}

/**
 * A Transform that gzips what is written to it, compressing blocks in parallel; the same input
 * always gives the same bytes (for a given zlib build). Memory stays around
 * `2 × maxInFlight + 2` blocks whatever the input size.
 */
export function createParallelGzip(options: ParallelGzipOptions = {}): Transform {
  return new ParallelGzip(options);
}
