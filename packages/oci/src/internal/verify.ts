/**
 * A Transform that hashes bytes as they flow and fails the stream when the content is not what the
 * descriptor promised: more bytes than the size, or a digest or size mismatch at the end. Nothing
 * unverified is ever reported as complete (ggcr internal/verify does the same for the same reason).
 * The checks themselves live in Verifier, for readers that already own a stream and would pay for a
 * second one per chunk (remote blob downloads tap the response body directly).
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, SizeMismatchError, type SlipwayError } from '../errors.js';
import { digestAlgorithm, type Digest } from '../v1/digest.js';

export interface VerifyOptions {
  digest: Digest;
  /** Expected size in bytes; when undefined only the digest is checked. */
  size?: number;
  /** What is being read, for messages: `blob sha256:… from localhost:5000/app`. */
  what?: string;
  /** Bytes already consumed and hashed before this stream (download resume). */
  resume?: { hash: Hash; offset: number };
}

/** Hashes and counts bytes fed to it in order, and says when they stop matching the descriptor. */
export class Verifier {
  readonly #hash: Hash;
  readonly #digest: Digest;
  readonly #size: number | undefined;
  readonly #what: string;
  #count: number;

  constructor(options: VerifyOptions) {
    this.#digest = options.digest;
    this.#size = options.size;
    this.#what = options.what ?? options.digest;
    this.#hash = options.resume?.hash ?? createHash(digestAlgorithm(options.digest));
    this.#count = options.resume?.offset ?? 0;
  }

  /** Bytes seen so far (including any resumed prefix). */
  get bytesRead(): number {
    return this.#count;
  }

  /** A copy of the running hash, so a download can resume from `bytesRead` after a broken connection. */
  snapshot(): { hash: Hash; offset: number } {
    return { hash: this.#hash.copy(), offset: this.#count };
  }

  /** Hashes the next chunk; returns the error to fail with when there are now more bytes than the size. */
  update(chunk: Buffer): SizeMismatchError | undefined {
    this.#count += chunk.length;
    if (this.#size !== undefined && this.#count > this.#size) {
      return new SizeMismatchError(this.#size, this.#count, `${this.#what} (more bytes than the descriptor's size)`);
    }
    this.#hash.update(chunk);
    return undefined;
  }

  /** At the end (once: it finalises the hash): the error when the size or digest is not the descriptor's. */
  finish(): SlipwayError | undefined {
    if (this.#size !== undefined && this.#count !== this.#size) return new SizeMismatchError(this.#size, this.#count, this.#what);
    const got = `${digestAlgorithm(this.#digest)}:${this.#hash.digest('hex')}` as Digest;
    if (got !== this.#digest) return new DigestMismatchError(this.#digest, got, `${this.#what} after reading ${this.#count} bytes`);
    return undefined;
  }
}

export class VerifyStream extends Transform {
  readonly #verifier: Verifier;

  constructor(options: VerifyOptions) {
    super();
    this.#verifier = new Verifier(options);
  }

  /** Bytes seen so far (including any resumed prefix). */
  get bytesRead(): number {
    return this.#verifier.bytesRead;
  }

  /** A copy of the running hash, so a download can resume from `bytesRead` after a broken connection. */
  snapshot(): { hash: Hash; offset: number } {
    return this.#verifier.snapshot();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const wrong = this.#verifier.update(chunk);
    if (wrong) callback(wrong);
    else callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    callback(this.#verifier.finish());
  }
}

/** A verifying pass-through: pipe a blob's bytes through it and it errors instead of ending on bad content. */
export function verifyStream(options: VerifyOptions): VerifyStream {
  return new VerifyStream(options);
}
