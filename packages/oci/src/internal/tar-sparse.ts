/**
 * GNU sparse entries: a file stored as its data segments and a map of where they go, the holes
 * between them read back as zeros. `tar --sparse` writes them for a file with holes on disk, such as
 * a `layer.tar` that was copied with `cp --sparse` or sits on a filesystem that punches holes; skopeo,
 * docker load and containerd (Go's archive/tar) read them, so an archive repacked that way is an
 * ordinary archive to them.
 *
 * Three of GNU tar's four encodings are read (GNU tar's manual, "Storing Sparse Files"):
 * - old GNU (`--format=gnu`, Debian's default): typeflag `S`, up to four segments in the header itself,
 *   more in extension blocks after it. tar-stream knows neither the typeflag nor the extension blocks,
 *   so only maps that fit in the header are read; a longer one is refused by name (tar-stream would
 *   misplace every later entry).
 * - pax 1.0 (`--format=posix`, GNU tar's default sparse version there): the map is a list of decimal
 *   numbers at the start of the entry's data, padded to a 512-byte block.
 * - pax 0.1: the map is the `GNU.sparse.map` record.
 * pax 0.0 repeats `GNU.sparse.offset`/`GNU.sparse.numbytes` records, which tar-stream folds into the
 * last pair: refused by name rather than read wrong.
 * @module
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { invalidArchive } from './archive-error.js';

/** One stretch of data of a sparse file: `length` bytes at `offset` in the file as it is read back. */
export interface SparseSegment {
  offset: number;
  length: number;
}

/** Where a sparse entry's segments are in the archive. */
export interface SparseLayout {
  segments: readonly SparseSegment[];
  /** Archive offset of the first segment's bytes (after a pax 1.0 map). */
  dataOffset: number;
  /** Bytes the entry takes in the archive after its header: map and segments, unpadded. */
  span: number;
}

/** How a pax header says its entry is sparse. */
export type PaxSparse =
  /** pax 1.0: the map is at the start of the data. */
  | { version: '1.0'; name: string; size: number }
  /** pax 0.1: the map came in the header. */
  | { version: '0.1'; name: string; size: number; segments: SparseSegment[] };

/** A pax 1.0 map may list this many bytes of numbers; a real one for 100k holes is ~2 MB. */
const maxMapBytes = 16 * 1024 * 1024;


function decimal(text: string | undefined, what: string, archive: string): number {
  const value = text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) throw invalidArchive(archive, `${what} is ${JSON.stringify(text)}, not a size`);
  return value;
}

/**
 * Whether a pax header makes its entry a GNU sparse file, and how. `storedName` names the entry in
 * messages (GNU tar stores it as `GNUSparseFile.N/NAME`).
 */
export function paxSparse(pax: Record<string, string> | null | undefined, storedName: string, archive: string): PaxSparse | undefined {
  if (!pax) return undefined;
  const keys = Object.keys(pax).filter((key) => key.startsWith('GNU.sparse.'));
  if (keys.length === 0) return undefined;
  const what = `sparse entry ${JSON.stringify(storedName)}`;
  const name = pax['GNU.sparse.name'];
  if (pax['GNU.sparse.major'] === '1' && pax['GNU.sparse.minor'] === '0') {
    if (name === undefined) throw invalidArchive(archive, `${what} has no GNU.sparse.name`);
    return { version: '1.0', name, size: decimal(pax['GNU.sparse.realsize'], `the real size of ${what}`, archive) };
  }
  if (pax['GNU.sparse.map'] !== undefined) {
    if (name === undefined) throw invalidArchive(archive, `${what} has no GNU.sparse.name`);
    const numbers = pax['GNU.sparse.map'] === '' ? [] : pax['GNU.sparse.map'].split(',').map((n) => decimal(n, `the GNU.sparse.map of ${what}`, archive));
    if (numbers.length % 2 !== 0) throw invalidArchive(archive, `the GNU.sparse.map of ${what} has an odd count of numbers`);
    const segments: SparseSegment[] = [];
    for (let i = 0; i < numbers.length; i += 2) segments.push({ offset: numbers[i]!, length: numbers[i + 1]! });
    return { version: '0.1', name, size: decimal(pax['GNU.sparse.size'], `the real size of ${what}`, archive), segments };
  }
  throw invalidArchive(
    archive,
    `${what} is in a GNU sparse format slipway does not read (${keys.sort().join(', ')}); re-create the archive without --sparse, or with tar --format=posix --sparse-version=1.0`,
  );
}

/**
 * Reads a pax 1.0 map from the first bytes of the entry's data as they arrive: decimal numbers, one
 * per line (the count, then offset and length pairs), padded to a 512-byte block. Each byte is looked
 * at once: re-parsing the whole prefix per chunk made a hostile 4 MB map take 39 s.
 */
export class PaxMapReader {
  readonly #numbers: number[] = [];
  #digits = '';
  #consumed = 0;

  constructor(
    private readonly what: string,
    private readonly archive: string,
  ) {}

  /**
   * Takes the next bytes of the entry's data.
   * @returns undefined while the map is incomplete; then the segments and the map's bytes in the
   *   archive (padded to 512). Bytes after the map in `chunk` are the data, and ignored here.
   */
  push(chunk: Buffer): { segments: SparseSegment[]; mapBytes: number } | undefined {
    for (const byte of chunk) {
      this.#consumed++;
      if (byte !== 0x0a) {
        // No size needs more than 16 digits (2^53): a longer run is not a map.
        if (this.#digits.length > 16) throw invalidArchive(this.archive, `the map of ${this.what} is malformed`);
        this.#digits += String.fromCharCode(byte);
        continue;
      }
      this.#numbers.push(decimal(this.#digits, `a number in the map of ${this.what}`, this.archive));
      this.#digits = '';
      const count = this.#numbers[0]!;
      // Each pair takes at least 4 bytes ("0\n0\n"): a count beyond the size limit cannot be honest.
      if (count > maxMapBytes / 4) throw invalidArchive(this.archive, `the map of ${this.what} claims ${count} segments`);
      if (this.#numbers.length === 1 + 2 * count) {
        const segments: SparseSegment[] = [];
        for (let n = 1; n < this.#numbers.length; n += 2) segments.push({ offset: this.#numbers[n]!, length: this.#numbers[n + 1]! });
        return { segments, mapBytes: Math.ceil(this.#consumed / 512) * 512 };
      }
    }
    if (this.#consumed > maxMapBytes) throw invalidArchive(this.archive, `the map of ${this.what} is longer than ${maxMapBytes} bytes`);
    return undefined;
  }
}

/** A number in an old GNU header field: octal text, or base-256 when the first byte's high bit is set. */
function headerNumber(field: Buffer): number {
  if (field.length > 0 && (field[0]! & 0x80) !== 0) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[ ]+/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return NaN;
  return parseInt(text, 8);
}

/** Typeflag `S` at byte 156 of a header block. */
export function isOldGnuSparse(header: Buffer): boolean {
  return header.length >= 512 && header[156] === 0x53;
}

/**
 * The map of an old GNU sparse header block (typeflag `S`): up to four segments at byte 386, the
 * "is extended" flag at 482, the real size at 483.
 */
export function parseOldGnuSparse(header: Buffer, what: string, archive: string): { segments: SparseSegment[]; size: number; extended: boolean } {
  const segments: SparseSegment[] = [];
  for (let i = 0; i < 4; i++) {
    const at = 386 + i * 24;
    const offsetField = header.subarray(at, at + 12);
    const lengthField = header.subarray(at + 12, at + 24);
    if (offsetField[0] === 0 && lengthField[0] === 0) break;
    segments.push({ offset: headerNumber(offsetField), length: headerNumber(lengthField) });
  }
  const size = headerNumber(header.subarray(483, 495));
  if (!Number.isSafeInteger(size) || segments.some((s) => !Number.isSafeInteger(s.offset) || !Number.isSafeInteger(s.length))) {
    throw invalidArchive(archive, `the sparse map in the header of ${what} is malformed`);
  }
  return { segments, size, extended: header[482] !== 0 };
}

/**
 * Checks a map against the sizes around it: segments in order, not overlapping, inside the file, and
 * together exactly the data stored. A map that breaks these would read back as some other file.
 */
export function checkSegments(segments: readonly SparseSegment[], size: number, stored: number, what: string, archive: string): void {
  let end = 0;
  let total = 0;
  for (const { offset, length } of segments) {
    if (offset < end || offset + length > size) throw invalidArchive(archive, `the sparse map of ${what} has segments out of order, overlapping, or past its size of ${size} bytes`);
    end = offset + length;
    total += length;
  }
  if (total !== stored) throw invalidArchive(archive, `the sparse map of ${what} accounts for ${total} bytes of data, and the archive holds ${stored}`);
  if (size - stored > maxHoleBytes) {
    throw invalidArchive(archive, `the sparse map of ${what} declares ${size - stored} bytes of holes, more than the ${maxHoleBytes} slipway reads back as zeros`);
  }
}

/**
 * Zeros a sparse entry may stand for: a few hundred bytes of header must not make a push hash and
 * compress a petabyte of them (size fields go up to 2^53). No layer holds 64 GiB of zeros in holes.
 */
export const maxHoleBytes = 64 * 1024 ** 3;

/** Zeros for a hole, in pieces of at most 1 MiB (fresh each: a consumer may keep or change a chunk). */
function* zeros(length: number): Generator<Buffer> {
  for (let left = length; left > 0; left -= 1024 * 1024) yield Buffer.alloc(Math.min(left, 1024 * 1024));
}

/** The file a sparse entry stands for: its segments read from the archive, zeros in the holes. */
export function openSparse(file: string, layout: SparseLayout, size: number): Readable {
  async function* fill(): AsyncGenerator<Buffer> {
    let position = 0;
    let stored = layout.dataOffset;
    for (const { offset, length } of layout.segments) {
      yield* zeros(offset - position);
      if (length > 0) {
        for await (const chunk of createReadStream(file, { start: stored, end: stored + length - 1, highWaterMark: 1024 * 1024 })) yield chunk as Buffer;
      }
      stored += length;
      position = offset + length;
    }
    yield* zeros(size - position);
  }
  return Readable.from(fill(), { objectMode: false });
}
