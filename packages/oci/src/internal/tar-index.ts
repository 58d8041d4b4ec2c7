/**
 * Reads a tar once and keeps an offset table, so every later read of an entry is a byte range of the
 * file (`fs.createReadStream({ start, end })`) instead of a re-scan from the start. Re-scanning per
 * entry is what makes ggcr's tarball reader quadratic, and why its maintainers declined gzip support
 * (go-containerregistry#1858).
 *
 * Nothing is ever extracted: entries are only read back as ranges of the archive file. Every entry
 * name is still checked (no `..` component, no absolute path, no duplicates) because an archive with
 * such names is malformed or hostile, and links are resolved only inside the archive.
 * @module
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { AbortedError, SlipwayError } from '../errors.js';
import { invalidArchive } from './archive-error.js';
import { fileReleased } from './tar-scratch.js';
import { checkSegments, isOldGnuSparse, openSparse, paxSparse, PaxMapReader, parseOldGnuSparse, type SparseLayout } from './tar-sparse.js';

export { invalidArchive };

/** Refuses archives with more entries than this: each costs memory in the table, and no image needs more. */
export const maxTarEntries = 500_000;

/** How many links in a row we follow before calling it a loop. */
const maxLinkHops = 16;

export type TarEntryType = 'file' | 'symlink' | 'link' | 'directory' | 'other';

export interface TarEntry {
  /** Normalised path: no leading `./`, no trailing `/`. */
  name: string;
  type: TarEntryType;
  /** Byte offset of the entry's data in the (uncompressed) tar file. */
  offset: number;
  /** The entry's size as read back (a sparse file's, holes included). */
  size: number;
  /** Link target for symlinks and hard links. */
  linkname?: string;
  /** A GNU sparse file (tar-sparse.ts): where its data segments are, the rest being zeros. */
  sparse?: SparseLayout;
}

export interface TarIndex {
  entries: Map<string, TarEntry>;
  /** Total bytes of the tar stream that was indexed. */
  bytes: number;
}


/**
 * Normalises an entry name and refuses names that could address anything outside the archive root
 * if someone did extract it: absolute paths and `..` components.
 * @returns the normalised name; `''` for the archive root (`.` or `./`).
 */
export function normaliseEntryName(raw: string, archive: string): string {
  if (raw.includes('\0')) throw invalidArchive(archive, `entry ${JSON.stringify(raw)} has a NUL byte in its name`);
  if (raw.startsWith('/')) throw invalidArchive(archive, `entry ${JSON.stringify(raw)} has an absolute path`);
  const parts = raw.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw invalidArchive(archive, `entry ${JSON.stringify(raw)} has a ".." path component`);
  return parts.join('/');
}

/** An entry type in words, for messages ("is a FIFO or device", not "is a other"). */
export function describeEntryType(type: TarEntryType): string {
  return { file: 'regular file', symlink: 'symbolic link', link: 'hard link', directory: 'directory', other: 'FIFO, device or other special entry' }[type];
}

function entryType(type: string | null | undefined): TarEntryType {
  switch (type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'link';
    case 'directory':
      return 'directory';
    default:
      return 'other';
  }
}

export interface IndexTarOptions {
  /** Archive name for messages (the user's path, not a temp file). */
  archive: string;
  /** The input is gzip-compressed: gunzip it on the way (together with `spoolTo`, the tar is read once). */
  gunzip?: boolean;
  /** Also write the tar bytes to this file while indexing (gunzipped archives, daemon streams). */
  spoolTo?: string;
  /**
   * The file the input streams (a plain tar read in place): with `spoolTo`, the places where the tar
   * may end early are read back to find its end-of-archive marker (see {@link indexTar}).
   */
  readBack?: string;
  signal?: AbortSignal;
}

/**
 * Indexes a tar stream in one pass; entry data is drained, never kept. Throws SLIPWAY_INVALID_ARCHIVE
 * for a truncated or corrupt tar, a dangerous or duplicate name, or too many entries.
 */
export async function indexTar(input: Readable, options: IndexTarOptions): Promise<TarIndex> {
  const { archive, signal } = options;
  if (signal?.aborted) {
    // The input is ours to close: a file stream has its descriptor open already.
    input.destroy();
    throw new AbortedError('operation aborted', { cause: signal.reason });
  }
  const entries = new Map<string, TarEntry>();
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  // Loaded here, not at module load: registry-only commands never index an archive (~10 ms of start-up).
  // Its first import spans several event-loop turns, during which `input` has no 'error' listener yet:
  // an error then (a file that vanished, a daemon connection reset) would be an uncaught exception.
  // Held here, it stays on the destroyed stream, and the pipeline below rejects with it.
  const holdError = (): void => {};
  input.on('error', holdError);
  const { extract } = await import('tar-stream').finally(() => input.off('error', holdError));
  const extractor = extract();
  const stages: NodeJS.ReadWriteStream[] = [];
  if (options.gunzip) stages.push(createGunzip());
  stages.push(counter);
  // A 4 MiB write buffer: with fs's default 16 KiB every chunk waited for 'drain', and a Docker daemon's
  // `/images/get` stream stalls ~9 ms each time it is paused: a 315 MB export took 5 minutes, not 1 s.
  const spool = options.spoolTo === undefined ? undefined : createWriteStream(options.spoolTo, { flags: 'wx', mode: 0o600, highWaterMark: 4 * 1024 * 1024 });
  /** The spool's failure (a full scratch disk): it, not what the tar reader makes of the cut stream. */
  let spoolError: SlipwayError | undefined;
  if (spool) stages.push(spoolTransform(spool, (err) => (spoolError = spoolFailure(archive, options.spoolTo!, err))));
  const feeding = pipeline([input, ...stages, extractor as unknown as NodeJS.WritableStream], signal ? { signal } : {});
  // Both the feeding pipeline and the entry iterator report the same failure; keep the first.
  feeding.catch(() => undefined);
  const readBack = options.spoolTo ?? options.readBack;
  /** Every entry in stream order (skipped directories too): where each header chain may start. */
  const order: TarEntry[] = [];
  /**
   * Entries of a typeflag tar-stream does not know: an old GNU sparse file (`S`, which stores no data
   * at all when it is all holes) or something else (refused when it claims data), told apart by
   * reading their header block once the tar is all in a file.
   */
  const unknownTypes: TarEntry[] = [];
  /** The first problem with a pax 1.0 sparse map, found while its entry's data streams by. */
  let mapFailure: Error | undefined;
  const unreadMaps = new Set<TarEntry>();
  try {
    for await (const entry of extractor) {
      if (mapFailure) throw mapFailure;
      const header = entry.header;
      const sparse = paxSparse(header.pax as Record<string, string> | null | undefined, header.name, archive);
      const name = normaliseEntryName(sparse?.name ?? header.name, archive);
      const type = entryType(header.type);
      if (typeof entry.offset !== 'number') throw new Error('tar-stream did not report entry offsets (need tar-stream >= 3.1)');
      // The entry's data follows its own 512-byte header block (pax and GNU long-name blocks come before it).
      const record: TarEntry = { name, type, offset: entry.offset + 512, size: header.size ?? 0 };
      if (header.linkname) record.linkname = header.linkname;
      if (sparse && type !== 'file') throw invalidArchive(archive, `entry ${JSON.stringify(name)} has a sparse map but is a ${describeEntryType(type)}`);
      if (sparse?.version === '1.0') {
        const stored = record.size;
        record.size = sparse.size;
        unreadMaps.add(record);
        const reader = new PaxMapReader(`sparse entry ${JSON.stringify(name)}`, archive);
        const onData = (chunk: unknown): void => {
          try {
            const map = reader.push(chunk as Buffer);
            if (!map) return;
            entry.off('data', onData);
            checkSegments(map.segments, sparse.size, stored - map.mapBytes, JSON.stringify(name), archive);
            record.sparse = { segments: map.segments, dataOffset: record.offset + map.mapBytes, span: stored };
            unreadMaps.delete(record);
          } catch (err) {
            entry.off('data', onData);
            mapFailure ??= err as Error;
          }
        };
        entry.on('data', onData);
      } else if (sparse?.version === '0.1') {
        checkSegments(sparse.segments, sparse.size, record.size, JSON.stringify(name), archive);
        record.sparse = { segments: sparse.segments, dataOffset: record.offset, span: record.size };
        record.size = sparse.size;
      }
      entry.resume();
      // Go's reader (docker load, skopeo, containerd) reads no data for links, directories and devices
      // whatever their header says, and parses those bytes as the next entries; tar-stream and GNU tar
      // skip them as data. One archive, two images: refused. An unknown typeflag's data is read by
      // all of them, so those wait for their header to be read: an old GNU sparse file (with no data
      // when it is all holes), or else refused if it claims data.
      if (header.type === null) unknownTypes.push(record);
      else if (type !== 'file' && record.size > 0) throw dataOnHeaderOnlyEntry(archive, record);
      order.push(record);
      if (name === '' && type === 'directory') continue;
      const seen = entries.get(name);
      if (seen) {
        // A directory listed twice is harmless (some writers emit `dir/` and `./dir/`); a file is ambiguous.
        if (seen.type === 'directory' && type === 'directory') continue;
        throw invalidArchive(archive, `entry ${JSON.stringify(name)} appears more than once`);
      }
      if (entries.size >= maxTarEntries) throw invalidArchive(archive, `more than ${maxTarEntries} entries`);
      entries.set(name, record);
    }
    await feeding;
    if (mapFailure) throw mapFailure;
    for (const record of unreadMaps) throw invalidArchive(archive, `the sparse map of ${JSON.stringify(record.name)} is cut short`);
  } catch (err) {
    extractor.destroy();
    input.destroy();
    // The caller removes the spool's scratch directory next: the spool must not appear in it after.
    if (spool) await fileReleased(spool);
    if (signal?.aborted) throw new AbortedError('operation aborted', { cause: signal.reason });
    if (spoolError) throw spoolError;
    if (SlipwayError.is(err)) throw err;
    // An old GNU sparse file with extension blocks derails tar-stream at the next header: say so.
    if (readBack !== undefined) {
      for (const record of unknownTypes) await oldGnuSparse(readBack, record, archive, { onlyExplain: true });
    }
    // Bytes after the end-of-archive marker are not the archive's (docker load, skopeo and GNU tar stop
    // there); tar-stream reads on and fails on them. Only for a file read in place: a spool cut short
    // by the failure cannot be read back.
    if (options.readBack !== undefined && options.spoolTo === undefined) {
      const tail = order.length === 0 ? 0 : paddedEnd(order[order.length - 1]!);
      const end = (await markerBefore(options.readBack, order)) ?? ((await endMarkerAt(options.readBack, tail)) ? tail : undefined);
      if (end !== undefined) return endingAt(archive, entries, end, end);
    }
    const message = err instanceof Error ? err.message : String(err);
    // Shorter than one header block: no entry was ever started, so nothing was cut short.
    if (/unexpected end of data/i.test(message) && bytes < 512) throw invalidArchive(archive, `not a tar: ${bytes} bytes, less than one 512-byte tar header`, err);
    if (/unexpected end of data/i.test(message)) throw invalidArchive(archive, `truncated tar (ends inside an entry after ${bytes} bytes)`, err);
    if (/invalid tar header|header exceeds|invalid header/i.test(message)) throw invalidArchive(archive, `not a tar, or corrupt (${message})`, err);
    // Any of zlib's complaints about the data (Z_DATA_ERROR: a bad header, block or checksum, such as
    // "incorrect data check" for a wrong CRC; Z_BUF_ERROR: cut short), whichever bytes were damaged.
    const code = (err as { code?: unknown }).code;
    if ((typeof code === 'string' && code.startsWith('Z_')) || /incorrect header check|unexpected end of file|invalid (block type|distance|stored block)/i.test(message)) {
      throw invalidArchive(archive, `corrupt gzip stream (${message})`, err);
    }
    throw err;
  }
  for (const record of unknownTypes) {
    if (readBack !== undefined) await oldGnuSparse(readBack, record, archive);
    else if (record.size > 0) throw dataOnHeaderOnlyEntry(archive, record);
  }
  for (const entry of entries.values()) {
    if (entry.offset + span(entry) > bytes) throw invalidArchive(archive, `entry ${JSON.stringify(entry.name)} is truncated`);
  }
  if (readBack !== undefined) {
    const end = await markerBefore(readBack, order);
    if (end !== undefined) return endingAt(archive, entries, end, bytes);
  }
  if (entries.size === 0) throw invalidArchive(archive, 'empty tar (no entries)');
  return { entries, bytes };
}

/**
 * The spool's own failure, told apart from the stream's: a full scratch disk used to read as the
 * archive's fault ("reading archive … failed: ENOSPC"), sending the user to look at the producer.
 */
function spoolFailure(archive: string, spoolTo: string, err: Error): SlipwayError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOSPC' || code === 'EDQUOT' ? 'the file system is full' : err.message;
  return new SlipwayError(
    'SLIPWAY_IO',
    `archive ${JSON.stringify(archive)}: keeping its scratch copy under ${JSON.stringify(posix.dirname(posix.dirname(spoolTo)))} failed: ${why}` +
      ` (${code ?? 'error'}); a stream is read once and kept on disk while it is used: set TMPDIR or the tempDir option to a file system with room for the whole archive`,
    { cause: err },
  );
}

function dataOnHeaderOnlyEntry(archive: string, record: TarEntry): SlipwayError {
  return invalidArchive(
    archive,
    `entry ${JSON.stringify(record.name)} is a ${describeEntryType(record.type)} whose header claims ${record.size} bytes of data: tar readers disagree on where the next entry starts`,
  );
}

/**
 * Reads the header block of an entry of unknown typeflag: an old GNU sparse file becomes a regular
 * file with its map (in place); anything else is refused. The map must fit in the header: extension
 * blocks are not something tar-stream steps over. With `onlyExplain` (the tar failed to index, and
 * may not all be in the file), only such extension blocks are reported.
 */
async function oldGnuSparse(file: string, record: TarEntry, archive: string, options: { onlyExplain?: boolean } = {}): Promise<void> {
  let header: Buffer;
  try {
    header = await readAt(file, record.offset - 512, 512);
  } catch (err) {
    if (options.onlyExplain) return;
    throw err;
  }
  if (!isOldGnuSparse(header)) {
    if (options.onlyExplain || record.size === 0) return;
    throw dataOnHeaderOnlyEntry(archive, record);
  }
  const what = `sparse entry ${JSON.stringify(record.name)}`;
  let map: ReturnType<typeof parseOldGnuSparse>;
  try {
    map = parseOldGnuSparse(header, what, archive);
  } catch (err) {
    if (options.onlyExplain) return;
    throw err;
  }
  if (map.extended) {
    throw invalidArchive(archive, `${what} has more data segments than an old GNU header holds (tar --sparse --format=gnu); re-create the archive with tar --format=posix, or without --sparse`);
  }
  if (options.onlyExplain) return;
  checkSegments(map.segments, map.size, record.size, JSON.stringify(record.name), archive);
  record.sparse = { segments: map.segments, dataOffset: record.offset, span: record.size };
  record.size = map.size;
  record.type = 'file';
}

/** Bytes an entry takes in the archive after its header (a sparse file's map and segments). */
function span(entry: TarEntry): number {
  return entry.sparse?.span ?? entry.size;
}

/**
 * Where an end-of-archive marker stands before one of the entries of `order`, if one does: tar-stream
 * passes over zero blocks, so after a marker it reads on into whatever follows (`cat a.tar b.tar`),
 * entries no other reader sees. The archive ends at the marker.
 */
async function markerBefore(file: string, order: readonly TarEntry[]): Promise<number | undefined> {
  for (let i = 0; i < order.length; i++) {
    const at = i === 0 ? 0 : paddedEnd(order[i - 1]!);
    // No gap: the next header starts right there. A gap holds pax or long-name blocks, or zeros.
    if (order[i]!.offset - 512 > at && (await endMarkerAt(file, at))) return at;
  }
  return undefined;
}

/** Where an entry's data ends, padded to the 512-byte block: where the next header chain starts. */
function paddedEnd(entry: TarEntry): number {
  return entry.offset + Math.ceil(span(entry) / 512) * 512;
}

/** Whether `file` holds two zero blocks (the end-of-archive marker) at `position`. */
async function endMarkerAt(file: string, position: number): Promise<boolean> {
  const block = await readAt(file, position, 1024);
  return block.length === 1024 && block.every((byte) => byte === 0);
}

/** Up to `length` bytes of `file` at `position` (fewer where the file ends). */
async function readAt(file: string, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  if (length === 0) return buffer;
  const handle = await openFile(file, 'r');
  try {
    const { bytesRead } = await handle.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The index of the entries before an end-of-archive marker at `end`. */
function endingAt(archive: string, entries: ReadonlyMap<string, TarEntry>, end: number, bytes: number): TarIndex {
  const kept = new Map([...entries].filter(([, entry]) => entry.offset < end));
  if (kept.size === 0) throw invalidArchive(archive, 'empty tar (no entries)');
  return { entries: kept, bytes };
}

/**
 * Passes bytes on while writing them to `file`; a failure of `file` (a full disk) fails the stream,
 * as `describe` words it.
 */
export function spoolTransform(file: Writable, describe: (err: Error) => Error = (err) => err): Transform {
  let failed: Error | undefined;
  /** Set when the stream is torn down for another failure: the file's complaints after that are not the cause. */
  let tornDown = false;
  const fail = (err: Error): void => {
    if (!tornDown) failed ??= describe(err);
  };
  file.on('error', fail);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (failed) return callback(failed);
      if (file.write(chunk)) return callback(null, chunk);
      // A file that fails while full never drains: wait for whichever comes first.
      const resume = (): void => {
        file.off('drain', resume);
        file.off('error', resume);
        callback(failed ?? null, chunk);
      };
      file.once('drain', resume);
      file.once('error', resume);
    },
    flush(callback: TransformCallback) {
      if (failed) return callback(failed);
      // end()'s callback can run before the 'error' event of a write that failed while the file was
      // ending (a full disk, or an open that failed while the whole input sat in its buffer): the
      // spool was cut short, and only its error argument says so (ERR_STREAM_DESTROYED when the file
      // had already failed: its own error is then in `errored`).
      file.end((err?: Error | null) => {
        const cause = file.errored ?? err;
        if (cause) fail(cause);
        callback(failed ?? null);
      });
    },
    destroy(err, callback) {
      tornDown = true;
      file.destroy();
      callback(err);
    },
  });
}

/**
 * The regular-file entry a path names, following symlinks and hard links **inside the archive only**.
 * Docker's own `docker save` (and skopeo's docker-archive writer) store a layer shared by two images
 * once and make the second `layer.tar` a relative symlink to the first (moby image/tarexport/save.go),
 * so links must be followed; an absolute or escaping target, a dangling link or a loop is refused.
 * @returns undefined when nothing has that name.
 */
export function resolveEntry(index: TarIndex, path: string, archive: string): TarEntry | undefined {
  let name = normaliseEntryName(path, archive);
  for (let hop = 0; hop <= maxLinkHops; hop++) {
    const entry = index.entries.get(name);
    if (!entry) {
      if (hop === 0) return undefined;
      throw invalidArchive(archive, `link to ${JSON.stringify(name)} in ${JSON.stringify(path)} points at nothing in the archive`);
    }
    if (entry.type === 'file') return entry;
    if (entry.type === 'symlink') {
      const target = entry.linkname ?? '';
      if (target.startsWith('/')) throw invalidArchive(archive, `entry ${JSON.stringify(entry.name)} is a symlink to the absolute path ${JSON.stringify(target)}`);
      const joined = posix.normalize(posix.join(posix.dirname(entry.name), target));
      if (joined === '..' || joined.startsWith('../')) {
        throw invalidArchive(archive, `entry ${JSON.stringify(entry.name)} is a symlink that leaves the archive (${JSON.stringify(target)})`);
      }
      name = normaliseEntryName(joined, archive);
      continue;
    }
    if (entry.type === 'link') {
      // Hard-link targets are archive paths, not relative to the link's directory.
      name = normaliseEntryName(entry.linkname ?? '', archive);
      continue;
    }
    throw invalidArchive(archive, `entry ${JSON.stringify(entry.name)} is a ${describeEntryType(entry.type)}, not a regular file`);
  }
  throw invalidArchive(archive, `too many links (or a loop) resolving ${JSON.stringify(path)}`);
}

/** Like resolveEntry, but the entry must exist; the error names the missing path. */
export function requireEntry(index: TarIndex, path: string, archive: string, what: string): TarEntry {
  const entry = resolveEntry(index, path, archive);
  if (!entry) throw invalidArchive(archive, `${what} ${JSON.stringify(path)} is missing`);
  return entry;
}

/** Reads a (small) entry into memory, refusing entries larger than `limit`. */
export async function readEntry(file: string, entry: TarEntry, limit: number, archive: string): Promise<Buffer> {
  if (entry.size > limit) throw invalidArchive(archive, `entry ${JSON.stringify(entry.name)} is ${entry.size} bytes, more than the ${limit}-byte limit`);
  if (entry.sparse) return firstBytes(openEntry(file, entry), entry.size);
  const buffer = Buffer.alloc(entry.size);
  if (entry.size === 0) return buffer;
  const handle = await openFile(file, 'r');
  try {
    let done = 0;
    while (done < entry.size) {
      const { bytesRead } = await handle.read(buffer, done, entry.size - done, entry.offset + done);
      if (bytesRead === 0) throw invalidArchive(archive, `entry ${JSON.stringify(entry.name)} is truncated`);
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return buffer;
}

/** Reads the first bytes of an entry (format sniffing). */
export async function peekEntry(file: string, entry: TarEntry, length: number): Promise<Buffer> {
  if (entry.sparse) return firstBytes(openEntry(file, entry), Math.min(length, entry.size));
  return readAt(file, entry.offset, Math.min(length, entry.size));
}

/** A fresh stream of one entry's bytes: a byte range of the archive file. */
export function openEntry(file: string, entry: TarEntry): Readable {
  if (entry.size === 0) return Readable.from([]);
  if (entry.sparse) return openSparse(file, entry.sparse, entry.size);
  return createReadStream(file, { start: entry.offset, end: entry.offset + entry.size - 1, highWaterMark: 1024 * 1024 });
}

/** The first `length` bytes of a stream, which is closed after them. */
async function firstBytes(stream: Readable, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      have += (chunk as Buffer).length;
      if (have >= length) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, length);
}
