/**
 * Layers of a `docker save` archive as registry blobs.
 *
 * `docker save` (before Docker 25) and skopeo's `docker-archive:` store layers as uncompressed tars,
 * but registries expect compressed layers, and the manifest must name each blob's digest before it
 * is pushed. So an uncompressed layer is gzip-compressed **once**, to a file, hashing as it goes
 * (ggcr compresses twice: once to learn the digest, again to upload). A layer that is already gzip or
 * zstd (crane's tarballs, `LayerSources` writers) is passed through as stored. Compression is
 * block-parallel and deterministic ({@link createParallelGzip}: 1 MiB blocks deflated on every core,
 * incompressible blocks stored): single-stream zlib made a cold push of random layers 4.7× skopeo.
 *
 * While a layer is compressed its bytes can also go to a tee (`TarballOptions.onCompressedStream`,
 * tee.ts): pushArchive streams them to the registry, so a cold push compresses and uploads in one
 * pass; the tee is finished with the descriptor only after the layer matched its diff ID and its file
 * (and cache record) are complete, aborted if the layer fails, and detached (compression going on to
 * the file alone) if it errors or stalls. The file is written either way: it serves retries, the
 * ordinary upload of a layer whose stream failed, and the next run.
 *
 * Compression level: pinned at {@link defaultGzipLevel} (zlib's default, what `gzip`, Docker and
 * containerd use), not BEST_SPEED: Jib found BEST_SPEED's bigger blobs made pushes slower overall
 * (GoogleContainerTools/jib#1913). A digest made this way depends on the level and on the zlib that
 * compressed it (Node bundles Chromium's zlib) and on the block format, so it is specific to slipway +
 * that zlib, as any digest pushed from a docker-save tar is specific to the tool that pushed it.
 *
 * Cache (under `$XDG_CACHE_HOME/slipway` or `~/.cache/slipway`, or `cacheDir`):
 * - `layers/<key>.json` + `<key>.gz`: a compressed layer and its digest and size, keyed by the layer's
 *   diff ID (the sha256 of the uncompressed tar, from the image config, checked while compressing),
 *   the gzip level, the block format ({@link parallelGzipFormat}), the zlib version, platform and CPU
 *   architecture. A diff ID is a content address, so the entry
 *   is valid for any archive holding that layer (moved or re-saved archives, daemon exports), which
 *   subsumes a key of (archive path, size, mtime, layer path). A hit does not read the archive's
 *   copy of the layer (that is the saving): what is pushed is the layer checked against the diff ID
 *   when it was cached, so it matches the config even if the archive's copy was damaged since (a
 *   cold run, or `cacheDir: false`, would fail on that copy). An unchanged archive is never
 *   recompressed: the manifest comes from the cache, and blobs stream from the cached `.gz` (verified
 *   against the recorded digest; a corrupt entry is deleted, and the layer recompressed when read again,
 *   which a copy does once). When the `.gz` is gone
 *   but the `.json` remains, the digest is still known (cheap plans) and the layer is recompressed
 *   on the fly when read, verified against that digest.
 * - `digests/<key>.json`: the digest of an already-compressed layer, keyed by (archive realpath, size,
 *   mtime, inode, entry path, offset, size), so a re-run does not re-hash it.
 * Entries are written atomically (temp + rename) and never trusted unverified. `pruneCache` removes
 * entries unused for a given time, then the least recently used beyond a size; opening a docker save
 * archive with the cache on runs `pruneCacheDaily` (30 days, 10 GiB) at most once a day.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline as pipelineCallback, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { debuglog } from 'node:util';
import * as zlib from 'node:zlib';
import { createGunzip } from 'node:zlib';
import { DigestMismatchError, SlipwayError, throwIfAborted } from '../errors.js';
import { atMostDaily } from '../internal/daily.js';
import { createParallelGzip, parallelGzipFormat } from '../internal/parallel-gzip.js';
import { invalidArchive, openEntry, peekEntry, type TarEntry } from '../internal/tar-index.js';
import { abandonedAfterMs, fileReleased, sniffCompression, trackScratchPath, untrackScratchPath } from '../internal/tar-scratch.js';
import { digestAlgorithm, type Digest } from '../v1/digest.js';
import { MediaType } from '../v1/media-types.js';
import type { Descriptor } from '../v1/manifest.js';
import { HashTee, hashSink, type CompressedTee, type CompressedTeeFactory } from './tee.js';

/** zlib's default level (6): see the module comment for why it is pinned and why not BEST_SPEED. */
export const defaultGzipLevel = 6;

const cacheFormat = 'slipway-layer-cache-v1';
const debug = debuglog('slipway');

/** `$XDG_CACHE_HOME/slipway`, else `~/.cache/slipway`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'slipway');
}

/** Where a blob's bytes come from when it is read. */
export type BlobLocation =
  /** Bytes as stored in the archive (config, already-compressed layers). */
  | { kind: 'range'; entry: TarEntry }
  /** A file we compressed (in the cache, or in the reader's scratch directory). */
  | { kind: 'file'; path: string; entry: TarEntry; cacheKey?: string }
  /** The digest is known from the cache but the compressed bytes are gone: compress again when read. */
  | { kind: 'recompress'; entry: TarEntry }
  /** A foreign layer: the archive does not hold its compressed bytes. */
  | { kind: 'foreign' };

export interface PreparedBlob {
  descriptor: Descriptor;
  location: BlobLocation;
  /** True for zstd layers, which only an OCI manifest can describe. */
  zstd?: boolean;
}

export interface CompressionStats {
  /** Layers gzip-compressed by this reader. */
  compressed: number;
  /** Layers whose digest came from the cache (not compressed again). */
  cached: number;
  /** Layers already compressed in the archive, served as stored. */
  passedThrough: number;
}

export interface LayerContext {
  archive: string;
  /** The uncompressed tar file the entry offsets refer to. */
  file: string;
  /** Stable identity of the archive file (for the pass-through digest cache); undefined for temp spools. */
  identity?: string;
  /** Cache root, or undefined when caching is off. */
  cacheDir?: string;
  /** Set once a layer could not be written to the cache (a full disk): the rest of the run skips writing it. */
  cacheUnwritable?: boolean;
  /** A private scratch directory, created on first use. */
  scratch: () => Promise<string>;
  level: number;
  stats: CompressionStats;
  /** A second consumer for the compressed bytes of each layer compressed here (see tee.ts). */
  tee?: CompressedTeeFactory;
}

function keyOf(...parts: (string | number)[]): string {
  return createHash('sha256').update([cacheFormat, ...parts].join('\0')).digest('hex');
}

interface LayerMeta {
  diffID: string;
  digest: Digest;
  size: number;
}

async function readMeta<T>(path: string): Promise<T | undefined> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as T;
    const now = new Date();
    // Touch for pruneCache's "unused for" rule; a read-only cache still works.
    await utimes(path, now, now).catch(() => undefined);
    return value;
  } catch {
    return undefined;
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  trackScratchPath(temp);
  try {
    await writeFile(temp, text, { mode: 0o644, flag: 'wx' });
    await rename(temp, path);
  } catch {
    // The cache is an optimisation: a cache we cannot write must not fail the operation.
    await rm(temp, { force: true }).catch(() => undefined);
  } finally {
    untrackScratchPath(temp);
  }
}

/** Creates a cache subdirectory; undefined when it cannot be created (the cache is then skipped). */
async function cacheSubdir(ctx: LayerContext, name: string): Promise<string | undefined> {
  if (!ctx.cacheDir) return undefined;
  const dir = join(ctx.cacheDir, name);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  } catch {
    return undefined;
  }
}

function gzipAt(level: number) {
  return createParallelGzip({ level });
}

const foreignTypes = new Set<string>([
  MediaType.DockerForeignLayerGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

/**
 * Turns one layer of a docker-save archive into a blob descriptor and a place to read it from,
 * compressing it (once, cached) when it is an uncompressed tar.
 */
export async function prepareLayer(ctx: LayerContext, entry: TarEntry, diffID: Digest, foreign: Descriptor | undefined, signal?: AbortSignal): Promise<PreparedBlob> {
  // docker25workaround in ggcr: Docker 25 put ordinary layers in LayerSources too; only foreign ones are special.
  if (foreign && (foreignTypes.has(foreign.mediaType) || (foreign.urls?.length ?? 0) > 0)) {
    const descriptor: Descriptor = { mediaType: foreign.mediaType, digest: foreign.digest, size: foreign.size };
    if (foreign.urls) descriptor.urls = foreign.urls;
    return { descriptor, location: { kind: 'foreign' } };
  }
  const kind = sniffCompression(await peekEntry(ctx.file, entry, 6));
  if (kind === 'bzip2' || kind === 'xz') throw invalidArchive(ctx.archive, `layer ${JSON.stringify(entry.name)} is ${kind}-compressed, which registries do not accept`);
  if (kind === 'gzip' || kind === 'zstd') {
    const digest = await passThroughDigest(ctx, entry, kind, diffID, signal);
    ctx.stats.passedThrough++;
    const mediaType = kind === 'gzip' ? MediaType.DockerLayerGzip : MediaType.OciLayerZstd;
    return { descriptor: { mediaType, digest, size: entry.size }, location: { kind: 'range', entry }, ...(kind === 'zstd' ? { zstd: true } : {}) };
  }
  return compressOnce(ctx, entry, diffID, signal);
}

/**
 * The digest of a layer stored compressed, which is then pushed as stored: its compressed bytes are
 * hashed, and they are also decompressed and checked against the config's diff_id, as an uncompressed
 * layer is. Without that check an archive whose layer was swapped or corrupt (bad deflate data behind
 * a good gzip header) was pushed and tagged, and `docker pull` then failed on it. zstd is checked
 * where Node can decompress it (22.15+); before that only its compressed digest is known.
 */
async function passThroughDigest(ctx: LayerContext, entry: TarEntry, kind: 'gzip' | 'zstd', diffID: Digest, signal?: AbortSignal): Promise<Digest> {
  const dir = ctx.identity ? await cacheSubdir(ctx, 'digests') : undefined;
  const metaPath = dir ? join(dir, `${keyOf('pass', ctx.identity ?? '', entry.name, entry.offset, entry.size)}.json`) : undefined;
  if (metaPath) {
    const meta = await readMeta<{ digest?: unknown; diffID?: unknown }>(metaPath);
    // Only a record of this very check (an entry from before the diff_id check was added is redone),
    // or of a zstd layer this Node could not check either.
    const checked = meta?.diffID === diffID || (kind === 'zstd' && !zstdDecompressor && meta?.diffID === undefined);
    if (typeof meta?.digest === 'string' && /^sha256:[a-f0-9]{64}$/.test(meta.digest) && checked) return meta.digest as Digest;
  }
  const label = `layer ${JSON.stringify(entry.name)} of ${ctx.archive}`;
  const compressed = createHash('sha256');
  const uncompressed = createHash(digestAlgorithm(diffID));
  const decompress = kind === 'gzip' ? createGunzip() : zstdDecompressor?.();
  try {
    await pipeline(openEntry(ctx.file, entry), new HashTee(compressed), ...(decompress ? [decompress] : []), hashSink(uncompressed), signal ? { signal } : {});
  } catch (err) {
    // Only the decompressor's complaints are about the data (Z_DATA_ERROR "incorrect header check",
    // Z_BUF_ERROR "unexpected end of file", ZSTD_*); a read error is a read error.
    const code = (err as { code?: unknown }).code;
    if (signal?.aborted || SlipwayError.is(err) || typeof code !== 'string' || !/^(Z_|ZSTD_|ERR_ZSTD)/.test(code)) throw err;
    throw invalidArchive(ctx.archive, `${label}: its ${kind} data cannot be decompressed (${(err as Error).message})`, err);
  }
  if (decompress) {
    const gotDiffID = `${digestAlgorithm(diffID)}:${uncompressed.digest('hex')}`;
    if (gotDiffID !== diffID) throw new DigestMismatchError(diffID, gotDiffID, `${label} (decompressed) against its diff_id in the image config`);
  } else {
    debug('%s: zstd layer pushed without checking its diff_id (this Node has no zstd decompressor)', label);
  }
  const digest: Digest = `sha256:${compressed.digest('hex')}`;
  if (metaPath) await writeAtomic(metaPath, JSON.stringify({ digest, ...(decompress ? { diffID } : {}) }));
  return digest;
}

/** Node's zstd decompressor where it has one (22.15+, 23.8+); undefined on Node 20. */
const zstdDecompressor = (zlib as { createZstdDecompress?: () => Transform }).createZstdDecompress;

async function compressOnce(ctx: LayerContext, entry: TarEntry, diffID: Digest, signal?: AbortSignal): Promise<PreparedBlob> {
  const dir = await cacheSubdir(ctx, 'layers');
  // The block format is in the key (v1 keys, single-stream zlib, had none): entries written by another
  // format are never mixed in. The arch too: zlib builds may pick match finders by CPU features.
  const key = keyOf('gzip', parallelGzipFormat, diffID, ctx.level, process.versions.zlib ?? 'unknown', process.platform, process.arch);
  if (dir) {
    const meta = await readMeta<Partial<LayerMeta>>(join(dir, `${key}.json`));
    if (meta && meta.diffID === diffID && typeof meta.digest === 'string' && /^sha256:[a-f0-9]{64}$/.test(meta.digest) && typeof meta.size === 'number') {
      const descriptor: Descriptor = { mediaType: MediaType.DockerLayerGzip, digest: meta.digest, size: meta.size };
      ctx.stats.cached++;
      const gz = join(dir, `${key}.gz`);
      const info = await stat(gz).catch(() => undefined);
      if (info?.isFile() && info.size === meta.size) return { descriptor, location: { kind: 'file', path: gz, entry, cacheKey: join(dir, key) } };
      return { descriptor, location: { kind: 'recompress', entry } };
    }
  }
  // A cache the layer cannot be written to (a full or read-only disk) is skipped, as an unwritable
  // metadata file is: the layer is compressed again into the scratch directory, and the rest of the
  // run does not write the cache either.
  if (dir && !ctx.cacheUnwritable) {
    try {
      return await compressTo(ctx, entry, diffID, { dir, key, cached: true }, signal);
    } catch (err) {
      if (!(err instanceof SpoolWriteError)) throw err;
      ctx.cacheUnwritable = true;
      debug('%s: the layer cache cannot be written (%s): compressing into the scratch directory instead', ctx.archive, err.code);
    }
  }
  try {
    return await compressTo(ctx, entry, diffID, { dir: await ctx.scratch(), key, cached: false }, signal);
  } catch (err) {
    if (!(err instanceof SpoolWriteError)) throw err;
    const why = err.code === 'ENOSPC' || err.code === 'EDQUOT' ? 'the file system is full' : err.cause.message;
    throw new SlipwayError(
      'SLIPWAY_IO',
      `layer ${JSON.stringify(entry.name)} of ${ctx.archive}: writing its compressed copy under ${JSON.stringify(dirname(err.dir))} failed: ${why} (${err.code}); ` +
        'set TMPDIR or the tempDir option to a file system with room for the compressed layers',
      { cause: err.cause },
    );
  }
}

/** The file a compressed layer was being written to failed (not its source, not the digest check). */
class SpoolWriteError extends Error {
  constructor(
    readonly dir: string,
    override readonly cause: NodeJS.ErrnoException,
  ) {
    super(cause.message);
  }

  get code(): string {
    return this.cause.code ?? 'EIO';
  }
}

/**
 * Compresses the layer into `target.dir`: the cache's layers directory (with its metadata record
 * beside it) when `cached`, else the scratch directory. A failure of the file written there is
 * a SpoolWriteError.
 */
async function compressTo(ctx: LayerContext, entry: TarEntry, diffID: Digest, target: { dir: string; key: string; cached: boolean }, signal?: AbortSignal): Promise<PreparedBlob> {
  const { cached } = target;
  const final = join(target.dir, cached ? `${target.key}.gz` : `${target.key.slice(0, 32)}.gz`);
  const temp = `${final}.tmp-${randomBytes(6).toString('hex')}`;
  // A second Ctrl-C exits at once: the CLI's exit hook removes what is registered, or a layer-sized
  // temp file stayed in the cache, where nothing counted it.
  trackScratchPath(temp);
  const raw = createHash(digestAlgorithm(diffID));
  const label = `layer ${JSON.stringify(entry.name)} of ${ctx.archive}`;
  const tee = await startTee(ctx, { diffID, size: entry.size }, label);
  const hash = createHash('sha256');
  const compressed = new HashTee(hash, tee, label);
  let digest: Digest;
  const file = createWriteStream(temp, { flags: 'wx', mode: 0o644 });
  let fileError: NodeJS.ErrnoException | undefined;
  file.on('error', (err) => (fileError ??= err));
  try {
    await pipeline(openEntry(ctx.file, entry), new HashTee(raw), gzipAt(ctx.level), compressed, file, signal ? { signal } : {});
    const gotDiffID = `${digestAlgorithm(diffID)}:${raw.digest('hex')}`;
    if (gotDiffID !== diffID) throw new DigestMismatchError(diffID, gotDiffID, `${label} against its diff_id in the image config`);
    await rename(temp, final);
    digest = `sha256:${hash.digest('hex')}`;
  } catch (err) {
    // The tee's bytes are never committed for a layer that failed (or was cancelled) here.
    tee?.abort(err);
    await fileReleased(file);
    await rm(temp, { force: true });
    if (fileError && err === fileError && !signal?.aborted) throw new SpoolWriteError(target.dir, fileError);
    throw err;
  } finally {
    untrackScratchPath(temp);
  }
  const size = compressed.size;
  const descriptor: Descriptor = { mediaType: MediaType.DockerLayerGzip, digest, size };
  if (cached) await writeAtomic(join(target.dir, `${target.key}.json`), JSON.stringify({ diffID, digest, size } satisfies LayerMeta));
  ctx.stats.compressed++;
  // The cache entry is complete before the tee commits: cancelling from here on leaves a whole entry.
  if (tee && compressed.attached) await tee.finish({ ...descriptor });
  return { descriptor, location: { kind: 'file', path: final, entry, ...(cached ? { cacheKey: join(target.dir, target.key) } : {}) } };
}

/** The tee for a layer about to be compressed; a factory that throws means no tee, never a failed layer. */
async function startTee(ctx: LayerContext, layer: { diffID: Digest; size: number }, label: string): Promise<CompressedTee | undefined> {
  try {
    return await ctx.tee?.(layer);
  } catch (err) {
    debug('%s: no tee (%s)', label, err instanceof Error ? err.message : String(err));
    return undefined;
  }
}

/** A fresh stream of a prepared blob's bytes (unverified: the caller verifies). */
export function openLocation(ctx: Pick<LayerContext, 'file' | 'level'>, location: BlobLocation): Readable {
  switch (location.kind) {
    case 'range':
      return openEntry(ctx.file, location.entry);
    case 'file':
      return createReadStream(location.path, { highWaterMark: 1024 * 1024 });
    case 'recompress': {
      const gzip = gzipAt(ctx.level);
      pipelineCallback(openEntry(ctx.file, location.entry), gzip, () => undefined);
      return gzip;
    }
    case 'foreign':
      throw new SlipwayError('SLIPWAY_NOT_FOUND', 'foreign layer: the archive does not hold its compressed bytes');
  }
}

/** Deletes a cache entry that failed verification, so the next run compresses again. */
export async function dropCacheEntry(cacheKey: string): Promise<void> {
  await rm(`${cacheKey}.json`, { force: true }).catch(() => undefined);
  await rm(`${cacheKey}.gz`, { force: true }).catch(() => undefined);
}

/**
 * Removes an entry's record and its layer, for pruneCache (whose failures are the caller's). The
 * record first: a record without its layer is recompressed when read, a layer without its record is
 * never read.
 */
async function removeEntry(cacheKey: string): Promise<void> {
  await rm(`${cacheKey}.json`, { force: true });
  await rm(`${cacheKey}.gz`, { force: true });
}

export interface PruneCacheOptions {
  /** @defaultValue {@link defaultCacheDir} */
  cacheDir?: string;
  /** Remove entries not used for this long. @defaultValue 30 days */
  unusedForMs?: number;
  /**
   * Then remove the least recently used compressed layers until the rest take at most this many
   * bytes. @defaultValue no limit (the daily prune uses {@link defaultCacheMaxBytes})
   */
  maxBytes?: number;
  /** Stops between entries (what is removed stays removed). */
  signal?: AbortSignal;
}

/** The daily prune's size limit for compressed layers: a CI runner pushing new layers all day stays bounded. */
export const defaultCacheMaxBytes = 10 * 1024 ** 3;

const dayMs = 24 * 3600 * 1000;

/** What the cache holds: compressed layers (entries and bytes) and digest records. */
export interface CacheUsage {
  layers: number;
  layerBytes: number;
  digests: number;
  /** Temp files of writes under way, or left by a process killed mid-write (pruned once an hour old). */
  incompleteFiles: number;
  incompleteBytes: number;
}

/** Counts what the cache at `cacheDir` holds (nothing, for a directory that does not exist). */
export async function cacheUsage(cacheDir: string = defaultCacheDir()): Promise<CacheUsage> {
  const layers = await layerEntries(cacheDir);
  let digests = 0;
  let incompleteFiles = 0;
  let incompleteBytes = 0;
  for (const sub of ['layers', 'digests']) {
    const dir = join(cacheDir, sub);
    for (const name of await cacheNames(dir)) {
      if (sub === 'digests' && name.endsWith('.json')) digests++;
      if (!name.includes('.tmp-')) continue;
      const info = await stat(join(dir, name)).catch(() => undefined);
      if (!info) continue;
      incompleteFiles++;
      incompleteBytes += info.size;
    }
  }
  return { layers: layers.length, layerBytes: layers.reduce((sum, e) => sum + e.bytes, 0), digests, incompleteFiles, incompleteBytes };
}

/**
 * The names in a cache directory; none when it does not exist yet. Any other failure (a directory
 * nobody may read) is SLIPWAY_IO: `slipway cache` reported such a cache as empty, with exit 0.
 */
async function cacheNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new SlipwayError('SLIPWAY_IO', `reading the layer cache ${JSON.stringify(dir)} failed: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

/** The cached compressed layers: each record, when it was last used, and its bytes (record and layer). */
async function layerEntries(root: string): Promise<{ record: string; usedMs: number; bytes: number }[]> {
  const dir = join(root, 'layers');
  const names = await cacheNames(dir);
  const entries: { record: string; usedMs: number; bytes: number }[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const record = join(dir, name);
    const info = await stat(record).catch(() => undefined);
    if (!info) continue;
    const layer = await stat(record.replace(/\.json$/, '.gz')).catch(() => undefined);
    entries.push({ record, usedMs: info.mtimeMs, bytes: info.size + (layer?.size ?? 0) });
  }
  return entries;
}

/**
 * Prunes at most once a day per cache directory (a `.pruned` stamp records when): entries unused for
 * 30 days, then down to {@link defaultCacheMaxBytes}. Opening a docker save archive with the cache on
 * runs it, so the cache stays bounded without anyone remembering to prune it.
 */
export async function pruneCacheDaily(cacheDir: string = defaultCacheDir(), signal?: AbortSignal): Promise<void> {
  await atMostDaily(cacheDir, () => pruneCache({ cacheDir, maxBytes: defaultCacheMaxBytes, ...(signal ? { signal } : {}) }));
}

/**
 * Removes cache entries not used for `unusedForMs`, then, with `maxBytes`, the least recently used
 * compressed layers beyond it. Returns how many entries went.
 */
export async function pruneCache(options: PruneCacheOptions = {}): Promise<number> {
  const root = options.cacheDir ?? defaultCacheDir();
  const cutoff = Date.now() - (options.unusedForMs ?? 30 * dayMs);
  let removed = 0;
  for (const sub of ['layers', 'digests']) {
    const dir = join(root, sub);
    const names = await cacheNames(dir);
    for (const name of names) {
      throwIfAborted(options.signal);
      const path = join(dir, name);
      const info = await stat(path).catch(() => undefined);
      if (!info) continue;
      const stale = info.mtimeMs < cutoff;
      if (name.endsWith('.json') && stale) {
        await removeEntry(path.slice(0, -'.json'.length));
        removed++;
      } else if (name.includes('.tmp-') && info.mtimeMs < Date.now() - abandonedAfterMs) {
        // Never "used", so not held to the unused-for age: a write under way touches its file as it
        // goes, and one untouched for an hour belongs to a process that died mid-write (SIGKILL, an
        // OOM kill). Younger ones may be another process's write, even with "unused for 0 days".
        await rm(path, { force: true });
      } else if (name.endsWith('.gz') && stale && !(await stat(path.replace(/\.gz$/, '.json')).catch(() => undefined))) {
        // A compressed layer whose record is gone (pruned, or a run killed between the two writes).
        await rm(path, { force: true });
      }
    }
  }
  if (options.maxBytes !== undefined) {
    const newestFirst = (await layerEntries(root)).sort((a, b) => b.usedMs - a.usedMs);
    let kept = 0;
    for (const entry of newestFirst) {
      throwIfAborted(options.signal);
      kept += entry.bytes;
      if (kept <= options.maxBytes) continue;
      await removeEntry(entry.record.slice(0, -'.json'.length));
      removed++;
    }
  }
  return removed;
}
