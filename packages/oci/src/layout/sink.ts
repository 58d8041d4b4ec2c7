/**
 * ImageSink that writes an OCI image layout directory: what `pull`/`save` into a layout uses.
 *
 * Nothing half-written is ever visible under its final name: each blob is streamed to a temp file in
 * its `blobs/<alg>/` directory while its digest and size are checked, flushed to disk, then renamed
 * into place; `index.json` is rewritten the same way. The root is added to `index.json` (with the
 * `org.opencontainers.image.ref.name` annotation) only by `putManifest` with a tag, which the copy
 * engine calls last, so the layout's tag never points at an incomplete image.
 * Updates of `index.json` are serialised within this process, and across processes by a lock file
 * (skopeo and umoci take none: two writers at once can lose one's index entry).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { open as openFile, readdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join, resolve } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { AbortedError, DigestMismatchError, InvalidArgumentError, SizeMismatchError, SlipwayError, throwIfAborted } from '../errors.js';
import { invalidLayout } from './store.js';
import { makeDirectories, processAlive, sweepStaleTemps, trackScratchPath, untrackScratchPath, writeThroughTemp } from '../internal/tar-scratch.js';
import { verifyStream } from '../internal/verify.js';
import { digestOf } from '../v1/digest.js';
import { MediaType } from '../v1/media-types.js';
import { maxManifestBytes, type Descriptor } from '../v1/manifest.js';
import type { CallOptions, ImageSink, ManifestBytes, PutBlobOptions } from '../v1/source.js';
import { blobPath, refNameAnnotation } from './source.js';

export interface LayoutSinkOptions {
  /** The name the root is stored under in `index.json` (`org.opencontainers.image.ref.name`), e.g. `latest` or `busybox:1`. */
  tag?: string;
}

// image-spec image-layout.md: the grammar of org.opencontainers.image.ref.name.
const refComponent = '[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*';
const refNamePattern = new RegExp(`^${refComponent}(?:/${refComponent})*$`);

/** Whether `name` may be an `org.opencontainers.image.ref.name`. */
export function isRefName(name: string): boolean {
  return name.length <= 255 && refNamePattern.test(name);
}

/** The `oci-layout` file every layout this writes holds (an archive's too). */
export const layoutMarker = '{"imageLayoutVersion":"1.0.0"}';

/** In-process lock per layout directory, so concurrent writers of index.json do not drop entries. */
const indexLocks = new Map<string, Promise<void>>();

/**
 * index.json is read, changed and written whole: two writers at once drop each other's entries. In
 * this process a chain of promises orders them; across processes (parallel CI jobs copying into one
 * layout) a lock file does, held for the few milliseconds of the rewrite. Without it, eight
 * `slipway copy … oci:DIR:tN` at once left six or seven of the eight tags.
 */
async function withIndexLock<T>(dir: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const previous = indexLocks.get(dir) ?? Promise.resolve();
  let release!: () => void;
  const current = new Promise<void>((r) => (release = r));
  const chained = previous.then(() => current);
  indexLocks.set(dir, chained);
  await previous;
  try {
    return await withLockFile(dir, task, signal);
  } finally {
    release();
    if (indexLocks.get(dir) === chained) indexLocks.delete(dir);
  }
}

/**
 * The lock file's name: `.tmp-` so that readers, and a writer checking a new layout's directory for
 * foreign content, pass over it as they pass over temp files.
 */
const lockFileName = '.tmp-slipway-index.lock';
/** A lock of another host older than this was left by a writer killed holding it: the rewrite takes milliseconds. */
const staleLockMs = 10_000;
/** How long a writer waits for another's lock before saying who holds it. */
const lockWaitMs = 60_000;

async function withLockFile<T>(dir: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const path = join(dir, lockFileName);
  // Host, pid and a token of this holding: whether its writer still runs, and whether it is still ours.
  const mine = `${hostname()} ${process.pid} ${randomBytes(8).toString('hex')}\n`;
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(signal);
    if (await createLock(path, mine)) break;
    const held = await readLock(path);
    // Broken: try again at once. Being broken by another writer: wait like for a live one.
    if (held !== undefined && lockIsStale(held) && (await breakStaleLock(path, held))) continue;
    if (Date.now() - started > lockWaitMs) {
      throw new SlipwayError('SLIPWAY_IO', `OCI layout ${JSON.stringify(dir)}: another writer${held?.text.trim() ? ` (${held.text.trim()})` : ''} has held ${lockFileName} for over ${lockWaitMs / 1000} s; remove it if none is running`);
    }
    await sleep(Math.min(50, 2 + attempt * 2) * (0.5 + Math.random()), undefined, signal ? { signal } : {}).catch((err: unknown) => {
      throw new AbortedError(`writing index.json of ${JSON.stringify(dir)}: aborted`, { cause: err });
    });
  }
  // A second Ctrl-C exits at once: the exit hook removes it, or the next writer would wait it out.
  trackScratchPath(path);
  try {
    return await task();
  } finally {
    // Only while it is still ours: a writer that judged us dead has its own there now.
    if ((await readLock(path))?.text === mine) await rm(path, { force: true });
    untrackScratchPath(path);
  }
}

/** Creates the lock holding `text`; false when another writer holds it. */
async function createLock(path: string, text: string): Promise<boolean> {
  let handle;
  try {
    handle = await openFile(path, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    await handle.writeFile(text);
  } catch (err) {
    // Created by us and not written (ENOSPC): an empty lock would hold the next writers up.
    await handle.close().catch(() => undefined);
    await rm(path, { force: true });
    throw err;
  }
  await handle.close();
  return true;
}

interface HeldLock {
  text: string;
  mtimeMs: number;
}

async function readLock(path: string): Promise<HeldLock | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, mtimeMs: info.mtimeMs };
  } catch {
    return undefined;
  }
}

/** This host's lock whose process is gone, or another host's (or an unreadable one) older than {@link staleLockMs}. */
function lockIsStale(held: HeldLock): boolean {
  const [host, pid] = held.text.trim().split(' ');
  if (host === hostname() && pid !== undefined && /^\d+$/.test(pid) && Number(pid) !== process.pid) return !processAlive(Number(pid));
  return Date.now() - held.mtimeMs > staleLockMs;
}

/**
 * Removes a stale lock, once: writers that found it stale together take turns through a second lock
 * file, and each removes the lock only if it is still the one it judged. Removing it without that let
 * one writer delete the lock another had just taken over, and 16 writers behind a killed one kept 8
 * to 15 of their 16 tags.
 */
async function breakStaleLock(path: string, judged: HeldLock): Promise<boolean> {
  const breaker = `${path}.break`;
  if (!(await createLock(breaker, `${hostname()} ${process.pid}\n`))) {
    // Another writer is breaking it; a breaker left by one killed in that instant goes after a while.
    const info = await stat(breaker).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > 3 * staleLockMs) await rm(breaker, { force: true });
    return false;
  }
  try {
    const now = await readLock(path);
    if (now !== undefined && now.text === judged.text && now.mtimeMs === judged.mtimeMs) await rm(path, { force: true });
    return true;
  } finally {
    await rm(breaker, { force: true });
  }
}

/** Writes bytes to `path` atomically (through a temp file in the same directory, fsynced). */
function writeAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  return writeThroughTemp(path, async (file) => {
    file.end(bytes);
    await finished(file);
  });
}

export class LayoutSink implements ImageSink {
  readonly name: string;
  readonly tag?: string;
  readonly #dir: string;
  #initialised: Promise<void> | undefined;
  readonly #inflight = new Map<string, Promise<void>>();

  constructor(dir: string, options: LayoutSinkOptions = {}) {
    if (options.tag !== undefined && !isRefName(options.tag)) {
      throw new InvalidArgumentError(`invalid layout tag ${JSON.stringify(options.tag)}: want an image-spec ref name such as "latest" or "app:1.2"`);
    }
    this.#dir = resolve(dir);
    if (options.tag !== undefined) this.tag = options.tag;
    this.name = `oci:${dir}${options.tag ? `:${options.tag}` : ''}`;
  }

  /** Creates the directory, `oci-layout` and an empty `index.json` on first write; refuses a non-empty non-layout directory. */
  #init(): Promise<void> {
    this.#initialised ??= (async () => {
      await makeDirectories(this.#dir);
      // A layout already made needs nothing, and no lock (another process may hold it a while).
      const made = await Promise.all(['oci-layout', 'index.json'].map((name) => stat(join(this.#dir, name)).then(() => true, () => false)));
      if (made.every(Boolean)) {
        // What a killed writer left (blobs half-written under `.tmp-` names) goes with the next one.
        const algorithms = await readdir(join(this.#dir, 'blobs')).catch(() => [] as string[]);
        await sweepStaleTemps([this.#dir, ...algorithms.map((algorithm) => join(this.#dir, 'blobs', algorithm))]);
        return;
      }
      // Under the index lock: another sink of this process starting the same new layout writes its
      // marker and index.json (via temp files) meanwhile, and must not be taken for foreign content,
      // nor its index, tags included by then, replaced by an empty one.
      await withIndexLock(await realpath(this.#dir), async () => {
        const marker = join(this.#dir, 'oci-layout');
        let hasMarker = true;
        try {
          await stat(marker);
        } catch {
          hasMarker = false;
        }
        if (!hasMarker) {
          const present = (await readdir(this.#dir)).filter((name) => name !== 'blobs' && name !== 'index.json' && !name.startsWith('.tmp-'));
          if (present.length > 0) {
            throw new InvalidArgumentError(`cannot write an OCI layout into ${JSON.stringify(this.#dir)}: it is not empty (${present.slice(0, 3).join(', ')}) and has no "oci-layout" file`);
          }
          await writeAtomic(marker, layoutMarker);
        }
        try {
          await stat(join(this.#dir, 'index.json'));
        } catch {
          await writeAtomic(join(this.#dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }));
        }
      });
    })();
    this.#initialised.catch(() => (this.#initialised = undefined));
    return this.#initialised;
  }

  async #readIndex(): Promise<Record<string, unknown> & { manifests: Descriptor[] }> {
    const path = join(this.#dir, 'index.json');
    let text: string;
    try {
      const info = await stat(path);
      if (info.size > maxManifestBytes) throw invalidLayout(this.#dir, `"index.json" is ${info.size} bytes, more than ${maxManifestBytes}`);
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
      throw err;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw invalidLayout(this.#dir, '"index.json" is not valid JSON', err);
    }
    if (typeof body !== 'object' || body === null || !Array.isArray((body as { manifests?: unknown }).manifests)) {
      throw invalidLayout(this.#dir, '"index.json" has no "manifests" array');
    }
    return body as Record<string, unknown> & { manifests: Descriptor[] };
  }

  async current(options: CallOptions = {}): Promise<Descriptor | undefined> {
    throwIfAborted(options.signal);
    if (this.tag === undefined) return undefined;
    const index = await this.#readIndex();
    const found = index.manifests.filter((d) => d?.annotations?.[refNameAnnotation] === this.tag);
    const last = found[found.length - 1];
    return last ? { mediaType: last.mediaType, digest: last.digest, size: last.size } : undefined;
  }

  async hasBlob(descriptor: Descriptor, options: CallOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    try {
      const info = await stat(join(this.#dir, blobPath(descriptor)));
      // A file of the wrong size is not the blob; a new write replaces it by rename.
      return info.isFile() && info.size === descriptor.size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async putBlob(descriptor: Descriptor, open: () => Promise<Readable>, options: PutBlobOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    // One writer per digest at a time; a second caller waits for the first and then finds the blob.
    const key = descriptor.digest;
    for (let pending = this.#inflight.get(key); pending; pending = this.#inflight.get(key)) await pending.catch(() => undefined);
    // No await between the check above and the set below: concurrent callers queue behind one writer.
    const work = (async () => {
      if (await this.hasBlob(descriptor, options)) return;
      await this.#writeBlob(descriptor, open, options);
    })();
    this.#inflight.set(key, work);
    try {
      await work;
    } finally {
      if (this.#inflight.get(key) === work) this.#inflight.delete(key);
    }
  }

  async #writeBlob(descriptor: Descriptor, open: () => Promise<Readable>, options: PutBlobOptions): Promise<void> {
    await this.#init();
    const final = join(this.#dir, blobPath(descriptor));
    await makeDirectories(dirname(final));
    let sent = 0;
    const progress = new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        sent += chunk.length;
        options.onProgress?.(sent);
        callback(null, chunk);
      },
    });
    try {
      // The source first, then the temp file: a source may wait a long time for its stream (a
      // download slot), and a temp file untouched for an hour is another writer's to sweep.
      const source = await open();
      try {
        await writeThroughTemp(final, (file) =>
          pipeline(source, verifyStream({ digest: descriptor.digest, size: descriptor.size, what: `blob ${descriptor.digest} for ${this.name}` }), progress, file, options.signal ? { signal: options.signal } : {}),
        );
      } finally {
        // A temp file that could not be made never read it: release what the source holds.
        if (!source.destroyed) source.destroy();
      }
    } catch (err) {
      if (options.signal?.aborted) throw new AbortedError('operation aborted', { cause: options.signal.reason });
      throw err;
    }
  }

  async hasManifest(descriptor: Descriptor, options: CallOptions = {}): Promise<boolean> {
    return this.hasBlob(descriptor, options);
  }

  async putManifest(manifest: ManifestBytes, options: CallOptions & { tag?: string } = {}): Promise<void> {
    throwIfAborted(options.signal);
    const { descriptor, bytes } = manifest;
    if (bytes.length !== descriptor.size) throw new SizeMismatchError(descriptor.size, bytes.length, `manifest ${descriptor.digest}`);
    const got = digestOf(bytes, descriptor.digest);
    if (got !== descriptor.digest) throw new DigestMismatchError(descriptor.digest, got, 'manifest bytes');
    const tag = options.tag;
    if (tag !== undefined && !isRefName(tag)) throw new InvalidArgumentError(`invalid layout tag ${JSON.stringify(tag)}: want an image-spec ref name such as "latest" or "app:1.2"`);
    await this.#init();
    if (!(await this.hasBlob(descriptor))) {
      const final = join(this.#dir, blobPath(descriptor));
      await makeDirectories(dirname(final));
      await writeAtomic(final, bytes);
    }
    if (tag === undefined) return;
    const lockKey = await realpath(this.#dir);
    await withIndexLock(
      lockKey,
      async () => {
        const index = await this.#readIndex();
        const kept = index.manifests.filter((d) => d?.annotations?.[refNameAnnotation] !== tag);
        kept.push({ mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size, annotations: { [refNameAnnotation]: tag } });
        await writeAtomic(join(this.#dir, 'index.json'), JSON.stringify({ ...index, manifests: kept }));
      },
      options.signal,
    );
  }

  /**
   * Without a tag the root is listed in `index.json` with no name (as skopeo's `oci:DIR` does), once:
   * an entry of that digest already there is enough. With a tag, `putManifest` listed it.
   */
  async commit(root: Descriptor, options: CallOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    if (this.tag !== undefined) return;
    // Listed already (a re-run): nothing to write, and no lock to take, which a read-only layout refuses.
    if ((await this.#readIndex()).manifests.some((d) => d?.digest === root.digest)) return;
    await withIndexLock(
      await realpath(this.#dir),
      async () => {
        const index = await this.#readIndex();
        if (index.manifests.some((d) => d?.digest === root.digest)) return;
        index.manifests.push({ mediaType: root.mediaType, digest: root.digest, size: root.size });
        await writeAtomic(join(this.#dir, 'index.json'), JSON.stringify(index));
      },
      options.signal,
    );
  }

  async close(): Promise<void> {}
}

/**
 * An ImageSink writing the OCI image layout directory `dir` (created on first write). With `tag`,
 * `current()` reads that entry and the copy engine stores the root under it.
 */
export function sink(dir: string, options: LayoutSinkOptions = {}): LayoutSink {
  return new LayoutSink(dir, options);
}
