/**
 * Opens a tar archive file for random access: detects gzip by its magic bytes, gunzips it once into
 * a private scratch directory (while indexing, so the bytes are read once), and indexes it.
 * Shared by the docker-archive reader (`tarball`), the OCI layout tar reader (`layout`) and the
 * daemon reader, which hands a spooled export stream to the same code.
 * @module
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { AbortedError, InvalidArgumentError, NotFoundError } from '../errors.js';
import type { Digest } from '../v1/digest.js';
import { verifyStream } from './verify.js';
import { indexTar, invalidArchive, type TarIndex } from './tar-index.js';
import { makeScratch, peekFile, removeScratch, sniffCompression } from './tar-scratch.js';

export interface IndexedArchive {
  /** The path the user gave, for messages. */
  archive: string;
  /** The uncompressed tar that entry offsets refer to (the archive itself, or a gunzipped copy). */
  file: string;
  index: TarIndex;
  /** Private directory to remove on close (holds the gunzipped copy), if any. */
  scratch?: string;
  gzipped: boolean;
}

export interface OpenArchiveOptions {
  signal?: AbortSignal;
  /** Where scratch directories go. @defaultValue the OS temp dir */
  tempDir?: string;
}

/** Stats a user-given path, turning a missing file into NotFoundError. */
export async function statInput(path: string, what: string): Promise<Awaited<ReturnType<typeof stat>>> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${what} ${JSON.stringify(path)} does not exist`, { cause: err });
    throw err;
  }
}

/** Indexes a tar (or gzipped tar) file; refuses other compressions with a hint. */
export async function openTarArchive(path: string, options: OpenArchiveOptions = {}): Promise<IndexedArchive> {
  const info = await statInput(path, 'archive');
  if (!info.isFile()) throw new InvalidArgumentError(`archive ${JSON.stringify(path)} is not a regular file`);
  const kind = sniffCompression(await peekFile(path, 6));
  if (kind === 'zstd' || kind === 'bzip2' || kind === 'xz') {
    throw invalidArchive(path, `${kind}-compressed archives are not supported; decompress it first or use gzip`);
  }
  if (kind === 'none') {
    const index = await indexTar(createReadStream(path, { highWaterMark: 1024 * 1024 }), { archive: path, readBack: path, ...(options.signal ? { signal: options.signal } : {}) });
    return { archive: path, file: path, index, gzipped: false };
  }
  // Gunzip once to a private file while indexing; every later read is a byte range of that file.
  const scratch = await makeScratch(options.tempDir);
  try {
    const file = join(scratch, 'archive.tar');
    const index = await indexTar(createReadStream(path, { highWaterMark: 1024 * 1024 }), {
      archive: path,
      gunzip: true,
      spoolTo: file,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { archive: path, file, index, scratch, gzipped: true };
  } catch (err) {
    await removeScratch(scratch);
    throw err;
  }
}

/**
 * Pipes `source` through a digest-and-size check and ties it to `signal`: the returned stream errors
 * (instead of ending) on bad content, and is destroyed with AbortedError when the signal fires.
 */
export function verifiedStream(source: Readable, expected: { digest: Digest; size: number }, what: string, signal?: AbortSignal): Readable {
  const verify = verifyStream({ digest: expected.digest, size: expected.size, what });
  // Callback pipeline: an error on either side destroys both; a consumer that stops early is not an error for us.
  pipeline(source, verify, () => undefined);
  if (signal) {
    const onAbort = () => verify.destroy(new AbortedError('operation aborted', { cause: signal.reason }));
    if (signal.aborted) process.nextTick(onAbort);
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      verify.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }
  return verify;
}
