/**
 * Reading and hashing one regular file, synchronously (called in worker threads, where blocking
 * is the point: each worker keeps one core busy with reads and SHA-256).
 * @module
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';

export class FileHashError extends Error {
  constructor(readonly errno: string, message: string) {
    super(message);
  }
}

// O_NOFOLLOW: a file swapped for a symlink since the walk must not be followed out of the context.
// O_NONBLOCK: a file swapped for a FIFO must not hang the hash (pulumi-docker #614).
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Hashes a regular file into `out` (32 bytes at `offset`) and returns the number of bytes read.
 * With `stats`, also records what fstat saw as the file was read — executable bit, size, mtime ms,
 * ctime ms, inode (walk.ts's STAT_FIELDS layout) — which is what the stat cache must remember.
 */
export function hashFileInto(path: string, buffer: Buffer, out: Uint8Array, offset: number, stats?: Float64Array, statsOffset = 0): number {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new FileHashError(code, code === 'ELOOP' ? 'changed into a symlink while hashing' : code);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileHashError('ECHANGED', 'is no longer a regular file');
    if (stats) {
      stats[statsOffset] = st.mode & 0o100 ? 1 : 0;
      stats[statsOffset + 1] = st.size;
      stats[statsOffset + 2] = st.mtimeMs;
      stats[statsOffset + 3] = st.ctimeMs;
      stats[statsOffset + 4] = st.ino;
    }
    const hash = createHash('sha256');
    let total = 0;
    // A short read that reaches the size fstat reported is taken as EOF (saves a read per file);
    // a file that grows meanwhile is caught next run because its stat no longer matches the cache.
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
      total += n;
      if (n < buffer.length && total === st.size) break;
    }
    const digest = hash.digest();
    out.set(digest, offset);
    return total;
  } catch (e) {
    if (e instanceof FileHashError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new FileHashError(code, code);
  } finally {
    closeSync(fd);
  }
}
