/**
 * A cheap fingerprint of an archive file, for IaC previews: a changed archive shows as a diff without
 * indexing or compressing anything.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { AbortedError, InvalidArgumentError, throwIfAborted } from '../errors.js';
import { statInput } from '../internal/tar-archive.js';
import type { Digest } from '../v1/digest.js';
import type { CallOptions } from '../v1/source.js';
import { hashSink } from './tee.js';

export interface ArchiveDigestOptions extends CallOptions {
  /**
   * `content`: sha256 of the file's bytes (reads the whole file; about 1 GB/s): what the file holds.
   * `stat`: sha256 of its real path, size, mtime (ns), inode and device: no read at all, but a
   * rewrite with the same size and mtime (`cp -p`, some build caches) goes unnoticed.
   * @defaultValue 'content'
   */
  mode?: 'content' | 'stat';
}

/** Fingerprints an archive file as `sha256:<hex>`. Not an image digest: it changes when the file does. */
export async function archiveDigest(path: string, options: ArchiveDigestOptions = {}): Promise<Digest> {
  throwIfAborted(options.signal);
  const mode = options.mode ?? 'content';
  const info = await statInput(path, 'archive');
  if (!info.isFile()) throw new InvalidArgumentError(`archive ${JSON.stringify(path)} is not a regular file`);
  const hash = createHash('sha256');
  if (mode === 'stat') {
    const big = await stat(path, { bigint: true });
    hash.update(['slipway-archive-stat-v1', await realpath(path), big.size, big.mtimeNs, big.ino, big.dev].join('\0'));
    return `sha256:${hash.digest('hex')}`;
  }
  if (mode !== 'content') throw new InvalidArgumentError(`mode must be "content" or "stat", got ${JSON.stringify(mode)}`);
  try {
    await pipeline(
      createReadStream(path, { highWaterMark: 1024 * 1024 }),
      hashSink(hash),
      options.signal ? { signal: options.signal } : {},
    );
  } catch (err) {
    if (options.signal?.aborted) throw new AbortedError('operation aborted', { cause: options.signal.reason });
    throw err;
  }
  return `sha256:${hash.digest('hex')}`;
}
