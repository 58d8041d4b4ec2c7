/**
 * Where an OCI image layout's files live: a directory, or a tar indexed once (a layout tar, the OCI
 * half of a Docker 25+ `docker save`). The layout reader only asks for files by layout-relative path.
 * @module
 */
import { createReadStream } from 'node:fs';
import { lstat, open as openFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { SlipwayError } from '../errors.js';
import { invalidArchive, openEntry, readEntry, resolveEntry } from '../internal/tar-index.js';
import type { IndexedArchive } from '../internal/tar-archive.js';
import { removeScratch } from '../internal/tar-scratch.js';

export interface LayoutStore {
  /** The user's path, for messages. */
  readonly archive: string;
  readonly kind: 'directory' | 'tar';
  /** Size of the regular file at a layout-relative path, or undefined when there is none. */
  size(path: string): Promise<number | undefined>;
  /** Reads a small file; refuses files larger than `limit`. Throws when missing (check `size` first). */
  read(path: string, limit: number): Promise<Buffer>;
  /** A fresh stream of a file's bytes. */
  open(path: string): Promise<Readable>;
  /** True when the path itself is a symlink or hard link (entry points such as `index.json` must not be). */
  isLink(path: string): Promise<boolean>;
  close(): Promise<void>;
}

/** The invalid-content error for what `store` reads: a layout directory's or an archive's. */
export function invalidStore(store: Pick<LayoutStore, 'archive' | 'kind'>, why: string, cause?: unknown): SlipwayError {
  return store.kind === 'directory' ? invalidLayout(store.archive, why, cause) : invalidArchive(store.archive, why, cause);
}

/** As invalidArchive, for a layout directory: "invalid archive" sent users looking for a tar. */
export function invalidLayout(directory: string, why: string, cause?: unknown): SlipwayError {
  return new SlipwayError('SLIPWAY_INVALID_ARCHIVE', `invalid OCI layout ${JSON.stringify(directory)}: ${why}`, cause === undefined ? undefined : { cause });
}

/** A layout directory on disk. Symlinked files are followed only while they stay inside the layout. */
export class DirectoryStore implements LayoutStore {
  readonly kind = 'directory';
  private constructor(readonly archive: string, private readonly root: string) {}

  static async open(dir: string): Promise<DirectoryStore> {
    return new DirectoryStore(dir, await realpath(dir));
  }

  private async resolve(path: string): Promise<{ full: string; size: number } | undefined> {
    const full = join(this.root, ...path.split('/'));
    // Resolve every link on the way (a symlinked `blobs/` directory too) and insist the file is inside the layout.
    let target: string;
    try {
      target = await realpath(full);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if ((await lstat(full).catch(() => undefined))?.isSymbolicLink()) throw invalidLayout(this.archive, `${JSON.stringify(path)} is a dangling symlink`);
      return undefined;
    }
    const rel = relative(this.root, target);
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
      throw invalidLayout(this.archive, `${JSON.stringify(path)} is a symlink that leaves the layout`);
    }
    const info = await stat(target);
    if (!info.isFile()) throw invalidLayout(this.archive, `${JSON.stringify(path)} is not a regular file`);
    return { full: target, size: info.size };
  }

  async size(path: string): Promise<number | undefined> {
    return (await this.resolve(path))?.size;
  }

  async read(path: string, limit: number): Promise<Buffer> {
    const found = await this.resolve(path);
    if (!found) throw invalidLayout(this.archive, `${JSON.stringify(path)} is missing`);
    if (found.size > limit) throw invalidLayout(this.archive, `${JSON.stringify(path)} is ${found.size} bytes, more than the ${limit}-byte limit`);
    const handle = await openFile(found.full, 'r');
    try {
      // Exactly the size we checked; callers verify digests, so a file changed meanwhile is caught there.
      const buffer = Buffer.alloc(found.size);
      let done = 0;
      while (done < found.size) {
        const { bytesRead } = await handle.read(buffer, done, found.size - done, done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buffer.subarray(0, done);
    } finally {
      await handle.close();
    }
  }

  async open(path: string): Promise<Readable> {
    const found = await this.resolve(path);
    if (!found) throw invalidLayout(this.archive, `${JSON.stringify(path)} is missing`);
    return createReadStream(found.full, { highWaterMark: 1024 * 1024 });
  }

  async isLink(path: string): Promise<boolean> {
    try {
      return (await lstat(join(this.root, ...path.split('/')))).isSymbolicLink();
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {}
}

/** A layout inside a tar: files are byte ranges of the (possibly gunzipped) archive. */
export class TarStore implements LayoutStore {
  readonly kind = 'tar';
  readonly archive: string;
  #closed = false;

  constructor(readonly indexed: IndexedArchive) {
    this.archive = indexed.archive;
  }

  async size(path: string): Promise<number | undefined> {
    return resolveEntry(this.indexed.index, path, this.archive)?.size;
  }

  async read(path: string, limit: number): Promise<Buffer> {
    const entry = resolveEntry(this.indexed.index, path, this.archive);
    if (!entry) throw invalidArchive(this.archive, `${JSON.stringify(path)} is missing`);
    return readEntry(this.indexed.file, entry, limit, this.archive);
  }

  async open(path: string): Promise<Readable> {
    const entry = resolveEntry(this.indexed.index, path, this.archive);
    if (!entry) throw invalidArchive(this.archive, `${JSON.stringify(path)} is missing`);
    return openEntry(this.indexed.file, entry);
  }

  async isLink(path: string): Promise<boolean> {
    const type = this.indexed.index.entries.get(path)?.type;
    return type === 'symlink' || type === 'link';
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await removeScratch(this.indexed.scratch);
  }
}
