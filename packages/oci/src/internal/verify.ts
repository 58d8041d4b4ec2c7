/**
 * A Transform that hashes bytes as they flow and fails the stream when the content is not what the
 * descriptor promised: more bytes than the size, or a digest or size mismatch at the end. Nothing
 * unverified is ever reported as complete (ggcr internal/verify does the same for the same reason).
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, SizeMismatchError } from '../errors.js';
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

export class VerifyStream extends Transform {
  readonly #hash: Hash;
  readonly #digest: Digest;
  readonly #size: number | undefined;
  readonly #what: string;
  #count: number;

  constructor(options: VerifyOptions) {
    super();
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

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#count += chunk.length;
    if (this.#size !== undefined && this.#count > this.#size) {
      callback(new SizeMismatchError(this.#size, this.#count, `${this.#what} (more bytes than the descriptor's size)`));
      return;
    }
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#size !== undefined && this.#count !== this.#size) {
      callback(new SizeMismatchError(this.#size, this.#count, this.#what));
      return;
    }
    const got = `${digestAlgorithm(this.#digest)}:${this.#hash.digest('hex')}` as Digest;
    if (got !== this.#digest) {
      callback(new DigestMismatchError(this.#digest, got, `${this.#what} after reading ${this.#count} bytes`));
      return;
    }
    callback();
  }
}

/** A verifying pass-through: pipe a blob's bytes through it and it errors instead of ending on bad content. */
export function verifyStream(options: VerifyOptions): VerifyStream {
  return new VerifyStream(options);
}
