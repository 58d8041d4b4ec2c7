/**
 * Opens a tar archive file for random access: detects gzip by its magic bytes, gunzips it once into
 * a private scratch directory (while indexing, so the bytes are read once), and indexes it. A pipe or
 * character device (`docker save app | slipway push /dev/stdin …`) is read once into the scratch
 * directory the same way, as skopeo's `docker-archive:` reader does with a stream.
 * Shared by the docker-archive reader (`tarball`), the OCI layout tar reader (`layout`) and the
 * daemon reader, which hands a spooled export stream to the same code.
 * @module
 */
import { createReadStream, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { AbortedError, InvalidArgumentError, NotFoundError, SlipwayError } from '../errors.js';
import type { Digest } from '../v1/digest.js';
import { openFifoForReading } from './fifo.js';
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
  /** Read from a pipe or device into `scratch`: the path names no file whose identity could key a cache. */
  streamed: boolean;
}

export interface OpenArchiveOptions {
  signal?: AbortSignal;
  /** Where scratch directories go. @defaultValue the OS temp dir */
  tempDir?: string;
  /** Read the archive from this stream, once, instead of opening the path (which then only names it). */
  stream?: Readable;
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

/** A pipe, socket or character device: read as a stream, once. */
export function isStreamFile(info: Pick<Stats, 'isFIFO' | 'isCharacterDevice' | 'isSocket'>): boolean {
  return info.isFIFO() || info.isCharacterDevice() || info.isSocket();
}

/** Indexes a tar (or gzipped tar) file; refuses other compressions with a hint. */
export async function openTarArchive(path: string, options: OpenArchiveOptions = {}): Promise<IndexedArchive> {
  if (options.stream) return spoolStream(path, options, false);
  const info = await statInput(path, 'archive');
  if (isStreamFile(info)) return spoolStream(path, options, info.isFIFO());
  if (!info.isFile()) throw new InvalidArgumentError(`archive ${JSON.stringify(path)} is not a regular file, a pipe or a character device`);
  const head = await peekFile(path, 1024);
  const kind = refuseCompression(path, head);
  // Two zero blocks first: the end-of-archive marker, and nothing before it. Without this check a
  // 2 GB file of zeros was read to its end (13 s) before it was found empty.
  if (kind === 'none' && head.length === 1024 && head.every((byte) => byte === 0)) throw invalidArchive(path, 'empty tar (it starts with the end-of-archive marker)');
  if (kind === 'none') {
    const index = await indexTar(createReadStream(path, { highWaterMark: 1024 * 1024 }), { archive: path, readBack: path, ...(options.signal ? { signal: options.signal } : {}) });
    return { archive: path, file: path, index, gzipped: false, streamed: false };
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
    return { archive: path, file, index, scratch, gzipped: true, streamed: false };
  } catch (err) {
    await removeScratch(scratch);
    throw err;
  }
}

/** gzip or none; the compressions registries and Docker do not take are refused with a hint. */
function refuseCompression(path: string, head: Buffer): 'gzip' | 'none' {
  const kind = sniffCompression(head);
  if (kind === 'zstd' || kind === 'bzip2' || kind === 'xz') {
    throw invalidArchive(path, `${kind}-compressed archives are not supported; decompress it first or use gzip`);
  }
  return kind;
}

/** Reads a pipe or device (or the given stream) once into a scratch file (gunzipped on the way), indexing as it goes. */
async function spoolStream(path: string, options: OpenArchiveOptions, fifo: boolean): Promise<IndexedArchive> {
  // An ended or destroyed stream emits nothing more: the reads below would wait for ever.
  if (options.stream && (options.stream.readableEnded || options.stream.destroyed)) {
    throw new InvalidArgumentError(`archive ${JSON.stringify(path)}: the stream to read it from has already ended`);
  }
  const scratch = await makeScratch(options.tempDir);
  let input: Readable;
  try {
    input = options.stream ?? (await openStreamSource(path, fifo));
  } catch (err) {
    await removeScratch(scratch);
    throw err;
  }
  try {
    const kind = refuseCompression(path, await peekStream(input, 6, path, options.signal));
    const file = join(scratch, 'archive.tar');
    const index = await indexTar(input, { archive: path, gunzip: kind === 'gzip', spoolTo: file, ...(options.signal ? { signal: options.signal } : {}) });
    return { archive: path, file, index, scratch, gzipped: kind === 'gzip', streamed: true };
  } catch (err) {
    input.destroy();
    await removeScratch(scratch);
    // The stream's own failure (a caller's sourceStream, a pipe's EIO) as an error with a stable code,
    // saying what was being read: it came back as the producer's bare Error.
    if (SlipwayError.is(err)) throw err;
    throw new SlipwayError('SLIPWAY_IO', `reading archive ${JSON.stringify(path)} from its stream failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** A pipe or device to read an archive from: a FIFO as a pipe handle (see internal/fifo.ts), a device as a file. */
async function openStreamSource(path: string, fifo: boolean): Promise<Readable> {
  if (fifo) return openFifoForReading(path);
  return createReadStream(path, { highWaterMark: 1024 * 1024 });
}

/**
 * The first `length` bytes of `stream` (fewer if it ends sooner), put back so that the stream still
 * yields everything: a pipe cannot be read at an offset.
 */
function peekStream(stream: Readable, length: number, archive: string, signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const finish = (err?: Error): void => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', finish);
      stream.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) return reject(err);
      const head = Buffer.concat(chunks);
      if (head.length > 0 && !stream.readableEnded) stream.unshift(head);
      resolve(head.subarray(0, length));
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while (got < length && (chunk = stream.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        got += chunk.length;
      }
      if (got >= length) finish();
    };
    const onEnd = (): void => finish();
    const onClose = (): void => finish(invalidArchive(archive, 'the stream closed before the archive began'));
    const onAbort = (): void => finish(new AbortedError('operation aborted', { cause: signal?.reason }));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('error', finish);
    // Destroyed without an error (by its owner): no 'end' and no 'error' come.
    stream.once('close', onClose);
  });
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
