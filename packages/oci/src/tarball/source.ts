/**
 * ImageSource over a `docker save` archive (file path, plain or gzipped).
 *
 * Formats, detected from the archive's entries:
 * - Docker before 25, skopeo `docker-archive:`, crane tarballs: `manifest.json` only. A Docker v2
 *   schema 2 manifest is synthesised: the config blob as stored, layers passed through when already
 *   compressed, otherwise gzip-compressed once (see compress.ts for the level and the cache).
 * - Docker 25+: `manifest.json` plus an OCI layout (`index.json`, `oci-layout`, `blobs/`). The OCI
 *   side is preferred so digests are the ones Docker produced, but only when it is complete for the
 *   selected image: Docker 25.0.0 wrote OCI manifests without layers (moby#47065) and some versions
 *   wrote `"manifests": null` (moby#47210); then the archive is read like a pre-25 one.
 * - An OCI layout tar without `manifest.json` (buildx `type=oci`, skopeo `oci-archive:`).
 * The tar is indexed once; every read is a byte range of the file.
 * @module
 */
import { availableParallelism } from 'node:os';
import { realpath, stat } from 'node:fs/promises';
import { debuglog } from 'node:util';
import type { Readable } from 'node:stream';
import { InvalidArgumentError, NotFoundError, SizeMismatchError, SlipwayError, throwIfAborted } from '../errors.js';
import { openTarArchive, statInput, verifiedStream, type IndexedArchive } from '../internal/tar-archive.js';
import { describeEntryType, invalidArchive, readEntry, requireEntry, resolveEntry, type TarEntry } from '../internal/tar-index.js';
import { makeScratch, mapBounded, removeScratch } from '../internal/tar-scratch.js';
import { SharedTask } from '../internal/shared-task.js';
import { shellWord } from '../internal/shell.js';
import { blobPath, LayoutSource, matchImages, open as openLayout, readLayoutIndex, selectImage } from '../layout/source.js';
import { TarStore } from '../layout/store.js';
import { digestOf, sha256, type Digest } from '../v1/digest.js';
import { isImageManifestMediaType, isIndexMediaType, MediaType } from '../v1/media-types.js';
import { maxManifestBytes, parseManifest, type Descriptor } from '../v1/manifest.js';
import type { CallOptions, ImageSource, ManifestBytes } from '../v1/source.js';
import {
  defaultCacheDir,
  defaultGzipLevel,
  dropCacheEntry,
  openLocation,
  prepareLayer,
  pruneCacheDaily,
  type CompressionStats,
  type LayerContext,
  type PreparedBlob,
} from './compress.js';
import { maxConfigBytes, maxManifestJsonBytes, parseConfigFacts, parseDockerManifest, selectItem, type DockerSaveItem } from './docker-manifest.js';
import type { CompressedTeeFactory } from './tee.js';

const debug = debuglog('slipway');

export interface TarballOptions extends CallOptions {
  /**
   * Read the archive from this stream (once, into the scratch directory) instead of opening the path,
   * which then only names it (`/dev/stdin`): a Node process's stdin may be a socket, which no path opens.
   */
  stream?: Readable;
  /**
   * Which image of a multi-image archive: a tag as in `RepoTags` (`busybox:1`, compared as a
   * normalised reference), an image ID (`sha256:…` of the config), or a position. Optional when the
   * archive holds one image.
   */
  image?: string | number;
  /** Cache for compressed layers and digests; `false` turns it off. @defaultValue `$XDG_CACHE_HOME/slipway` or `~/.cache/slipway` */
  cacheDir?: string | false;
  /** Where scratch files go (a gunzipped archive; compressed layers when the cache is off). @defaultValue the OS temp dir */
  tempDir?: string;
  /** gzip level for uncompressed layers. Changing it changes the digests. @defaultValue 6 */
  gzipLevel?: number;
  /** Layers compressed at once. @defaultValue min(4, available cores) */
  concurrency?: number;
  /**
   * Asked for a tee each time an uncompressed layer is about to be compressed (never for cached or
   * already-compressed layers): the tee gets the compressed bytes as they are written, and `finish`
   * with the layer's descriptor once it is complete and verified. pushArchive streams them to the
   * registry so compression and upload overlap. A failing or stalled tee is detached; compression
   * and the layer's file never depend on it (see tee.ts).
   */
  onCompressedStream?: CompressedTeeFactory;
}

/** `docker-save`: manifest synthesised from `manifest.json`; `oci-layout`: served from the archive's OCI layout. */
export type ArchiveFormat = 'docker-save' | 'oci-layout';

interface Plan {
  root: ManifestBytes;
  blobs: Map<string, PreparedBlob>;
}

/** Serves one image of a manifest.json archive with a synthesised manifest. */
class DockerArchiveSource implements ImageSource {
  readonly #task: SharedTask<Plan>;
  /** Blobs whose cached compressed file failed verification in this run. */
  readonly #corruptCache = new Set<string>();

  constructor(
    readonly name: string,
    private readonly indexed: IndexedArchive,
    private readonly item: DockerSaveItem,
    private readonly config: { entry: TarEntry; bytes: Buffer; digest: Digest },
    private readonly ctx: LayerContext,
    private readonly concurrency: number,
  ) {
    this.#task = new SharedTask((signal) => this.#plan(signal));
  }

  async #plan(signal: AbortSignal): Promise<Plan> {
    const { archive, index } = this.indexed;
    const { diffIDs } = parseConfigFacts(this.config.bytes, archive, this.item.config);
    if (diffIDs.length !== this.item.layers.length) {
      throw invalidArchive(archive, `image config ${JSON.stringify(this.item.config)} lists ${diffIDs.length} diff_ids but "manifest.json" lists ${this.item.layers.length} layers`);
    }
    const layers = this.item.layers.map((path, i) => ({ entry: requireEntry(index, path, archive, 'layer'), diffID: diffIDs[i] as Digest }));
    // A layer repeated in one image (Docker's empty layer, say) is prepared once.
    const unique = [...new Map(layers.map((l) => [l.diffID, l])).values()];
    const prepared = await mapBounded(unique, this.concurrency, (l, _i, s) => prepareLayer(this.ctx, l.entry, l.diffID, this.item.layerSources[l.diffID], s), signal);
    const byDiffID = new Map(unique.map((l, i) => [l.diffID, prepared[i] as PreparedBlob]));
    const oci = prepared.some((p) => p.zstd);
    const layerDescriptors = layers.map((l) => {
      const d = { ...(byDiffID.get(l.diffID) as PreparedBlob).descriptor };
      if (oci && d.mediaType === MediaType.DockerLayerGzip) d.mediaType = MediaType.OciLayerGzip;
      return d;
    });
    const config: Descriptor = { mediaType: oci ? MediaType.OciConfig : MediaType.DockerConfig, digest: this.config.digest, size: this.config.bytes.length };
    // Field order fixed here, compact JSON: the same archive always yields the same bytes.
    const manifest = { schemaVersion: 2, mediaType: oci ? MediaType.OciManifest : MediaType.DockerManifest, config, layers: layerDescriptors };
    const bytes = Buffer.from(JSON.stringify(manifest), 'utf8');
    const root: ManifestBytes = { descriptor: { mediaType: manifest.mediaType, digest: sha256(bytes), size: bytes.length }, bytes };
    const blobs = new Map<string, PreparedBlob>();
    blobs.set(config.digest, { descriptor: config, location: { kind: 'range', entry: this.config.entry } });
    for (const p of byDiffID.values()) blobs.set(p.descriptor.digest, p);
    return { root, blobs };
  }

  async root(options: CallOptions = {}): Promise<ManifestBytes> {
    const { root } = await this.#task.get(options.signal);
    return { descriptor: { ...root.descriptor }, bytes: root.bytes };
  }

  async manifest(descriptor: Descriptor, options: CallOptions = {}): Promise<ManifestBytes> {
    const root = await this.root(options);
    if (descriptor.digest !== root.descriptor.digest) throw new NotFoundError(`manifest ${descriptor.digest} is not in ${this.name}`);
    return root;
  }

  async blob(descriptor: Descriptor, options: CallOptions = {}): Promise<Readable> {
    const plan = await this.#task.get(options.signal);
    const found = plan.blobs.get(descriptor.digest);
    if (!found) throw new NotFoundError(`blob ${descriptor.digest} is not in ${this.name}`);
    if (found.location.kind === 'foreign') {
      throw new NotFoundError(`blob ${descriptor.digest} is a foreign layer: ${this.name} does not hold it${found.descriptor.urls ? ` (its urls: ${found.descriptor.urls.join(', ')})` : ''}`);
    }
    if (descriptor.size !== found.descriptor.size) throw new SizeMismatchError(found.descriptor.size, descriptor.size, `blob ${descriptor.digest} in ${this.name} (descriptor size)`);
    let location = found.location;
    if (location.kind === 'file' && (this.#corruptCache.has(descriptor.digest) || !(await stat(location.path).catch(() => undefined)))) {
      // The cached file went away (cache pruned or cleaned) or failed verification: the digest is
      // known, compress again (verified against it).
      location = { kind: 'recompress', entry: location.entry };
    }
    const what = location.kind === 'file' && location.cacheKey ? `cached compressed layer ${descriptor.digest} of ${this.name}` : `blob ${descriptor.digest} in ${this.name}`;
    const stream = verifiedStream(openLocation(this.ctx, location), found.descriptor, what, options.signal);
    if (location.kind === 'file' && location.cacheKey) {
      const cacheKey = location.cacheKey;
      stream.on('error', (err) => {
        if (SlipwayError.is(err) && (err.code === 'SLIPWAY_DIGEST_MISMATCH' || err.code === 'SLIPWAY_SIZE_MISMATCH')) {
          // The next read of this blob (copy retries once) recompresses from the archive.
          this.#corruptCache.add(descriptor.digest);
          void dropCacheEntry(cacheKey);
        }
      });
    }
    return stream;
  }

  async close(): Promise<void> {
    // Waits for plans every caller gave up on too: no temp file outlives close().
    await this.#task.cancel();
  }
}

/** The ImageSource for any archive slipway reads, with what it found out about the archive. */
export class TarballSource implements ImageSource {
  #closed: Promise<void> | undefined;

  constructor(
    readonly name: string,
    /** How the image is served: from the archive's OCI layout, or synthesised from `manifest.json`. */
    readonly format: ArchiveFormat,
    /** The selected image's tags (from `RepoTags` or the layout's name annotations). */
    readonly tags: readonly string[],
    private readonly impl: ImageSource,
    private readonly compression: CompressionStats,
    private readonly cleanup: () => Promise<void>,
  ) {}

  /** Layers compressed, taken from the cache, or passed through so far (zero for `oci-layout`). */
  get stats(): Readonly<CompressionStats> {
    return { ...this.compression };
  }

  root(options?: CallOptions): Promise<ManifestBytes> {
    return this.impl.root(options);
  }

  manifest(descriptor: Descriptor, options?: CallOptions): Promise<ManifestBytes> {
    return this.impl.manifest(descriptor, options);
  }

  blob(descriptor: Descriptor, options?: CallOptions): Promise<Readable> {
    return this.impl.blob(descriptor, options);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        await this.impl.close?.();
      } finally {
        await this.cleanup();
      }
    })();
    return this.#closed;
  }
}

function checkOptions(options: TarballOptions): { level: number; concurrency: number; cacheDir: string | undefined } {
  const level = options.gzipLevel ?? defaultGzipLevel;
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new InvalidArgumentError(`gzipLevel must be an integer from 1 to 9, got ${JSON.stringify(options.gzipLevel)}`);
  const concurrency = options.concurrency ?? Math.max(1, Math.min(4, availableParallelism()));
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidArgumentError(`concurrency must be a positive integer, got ${JSON.stringify(options.concurrency)}`);
  const cacheDir = options.cacheDir === false ? undefined : (options.cacheDir ?? defaultCacheDir());
  return { level, concurrency, cacheDir };
}

/** Identity of a file for the pass-through digest cache: path, size, mtime (ns) and inode. */
async function fileIdentity(path: string): Promise<string | undefined> {
  try {
    const info = await stat(path, { bigint: true });
    return [await realpath(path), info.size, info.mtimeNs, info.ino, info.dev].join('\0');
  } catch {
    return undefined;
  }
}

/** Reads a manifest blob from a layout store and checks it; undefined when absent or wrong. */
async function readLayoutManifest(store: TarStore, d: Descriptor): Promise<ReturnType<typeof parseManifest> | undefined> {
  try {
    const path = blobPath(d);
    if ((await store.size(path)) !== d.size) return undefined;
    const bytes = await store.read(path, maxManifestBytes);
    if (digestOf(bytes, d.digest) !== d.digest) return undefined;
    return parseManifest(bytes, d.mediaType);
  } catch {
    return undefined;
  }
}

async function blobsPresent(store: TarStore, descriptors: Descriptor[]): Promise<boolean> {
  for (const d of descriptors) {
    try {
      if ((await store.size(blobPath(d))) !== d.size) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** An image manifest (in the layout) for the selected docker-save image, complete in the archive. */
async function completeImage(store: TarStore, d: Descriptor, configDigest: Digest, layerCount: number): Promise<boolean> {
  if (!isImageManifestMediaType(d.mediaType)) return false;
  const parsed = await readLayoutManifest(store, d);
  if (parsed?.kind !== 'image') return false;
  const m = parsed.manifest;
  return m.config.digest === configDigest && m.layers.length === layerCount && (await blobsPresent(store, [m.config, ...m.layers]));
}

/**
 * The OCI root in a Docker 25+ hybrid archive for a docker-save image (same config, every layer
 * present), or undefined to fall back to `manifest.json`. With the containerd image store the entry
 * may be an index whose other platforms were not saved: then the matching child is the root.
 */
async function findOciRoot(store: TarStore, item: DockerSaveItem, configDigest: Digest): Promise<{ descriptor: Descriptor; label?: string } | undefined> {
  let images;
  try {
    images = (await readLayoutIndex(store)).images;
  } catch {
    return undefined;
  }
  const named = images.filter((image) => item.repoTags.some((tag) => matchImages([image], tag).length > 0));
  const seen = new Set<string>();
  for (const image of [...named, ...images]) {
    const d = image.descriptor;
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    const label = image.imageName ?? image.refName;
    if (await completeImage(store, d, configDigest, item.layers.length)) return { descriptor: d, ...(label ? { label } : {}) };
    if (!isIndexMediaType(d.mediaType)) continue;
    const parsed = await readLayoutManifest(store, d);
    if (parsed?.kind !== 'index') continue;
    let match: Descriptor | undefined;
    let complete = true;
    for (const child of parsed.manifest.manifests) {
      if (!match && (await completeImage(store, child, configDigest, item.layers.length))) {
        match = child;
        continue;
      }
      const sub = await readLayoutManifest(store, child);
      if (sub?.kind !== 'image' || !(await blobsPresent(store, [sub.manifest.config, ...sub.manifest.layers]))) complete = false;
    }
    if (match) return { descriptor: complete ? d : match, ...(label ? { label } : {}) };
  }
  return undefined;
}

export interface ArchiveSourceParams {
  /** Name for messages: `docker-archive:/path/x.tar`. */
  label: string;
  /** Identity of the archive file for the digest cache; undefined for temporary spools. */
  identity?: string;
  /** Extra cleanup on close (a daemon connection, a spool directory). */
  onClose?: () => Promise<void>;
}

/** Builds the source for an already indexed archive (used by `open` and by the daemon reader). */
export async function fromIndexedArchive(indexed: IndexedArchive, options: TarballOptions, params: ArchiveSourceParams): Promise<TarballSource> {
  const { level, concurrency, cacheDir } = checkOptions(options);
  const { archive, index } = indexed;
  const store = new TarStore(indexed);
  // The promise, not the path: layers compress concurrently, and two first callers awaiting their
  // own mkdtemp would make two directories, one of them never removed.
  let scratch: Promise<string> | undefined;
  const stats: CompressionStats = { compressed: 0, cached: 0, passedThrough: 0 };
  // Once a day, alongside the copy: the cache stays bounded with nobody running a prune.
  let pruning: Promise<void> | undefined;
  const cleanup = async () => {
    await pruning;
    await store.close();
    await removeScratch(await scratch?.catch(() => undefined));
    await params.onClose?.();
  };
  try {
    const manifestJson = index.entries.get('manifest.json');
    const hasLayout = index.entries.has('index.json') && index.entries.has('oci-layout');
    for (const [name, entry] of [['manifest.json', manifestJson], ['index.json', index.entries.get('index.json')]] as const) {
      // The entry points of an archive must be plain files: a link here is not something any writer makes.
      if (entry && entry.type !== 'file') throw invalidArchive(archive, `"${name}" is a ${describeEntryType(entry.type)}, not a regular file`);
    }
    if (!manifestJson) {
      if (!hasLayout) throw invalidArchive(archive, `neither a docker save archive (no "manifest.json") nor an OCI layout (no "index.json" and "oci-layout")${nestedHint(index.entries.keys())}`);
      const { images } = await readLayoutIndex(store);
      const chosen = selectImage(images, options.image, archive);
      const label = chosen.imageName ?? chosen.refName;
      // Named as skopeo would read it: an OCI layout tar is an `oci-archive:`, not a `docker-archive:`.
      const base = params.label.startsWith('docker-archive:') ? `oci-archive:${params.label.slice('docker-archive:'.length)}` : params.label;
      const name = `${base}${label ? `:${label}` : `@${chosen.descriptor.digest}`}`;
      return new TarballSource(name, 'oci-layout', label ? [label] : [], new LayoutSource(store, chosen.descriptor, name), stats, cleanup);
    }
    const items = parseDockerManifest(await readEntry(indexed.file, manifestJson, maxManifestJsonBytes, archive), archive);
    const readConfig = async (item: DockerSaveItem) => {
      const entry = requireEntry(index, item.config, archive, 'image config');
      const bytes = await readEntry(indexed.file, entry, maxConfigBytes, archive);
      return { entry, bytes, digest: sha256(bytes) };
    };
    let digests: Map<DockerSaveItem, Digest> | undefined;
    if (typeof options.image === 'string' && options.image.startsWith('sha256:')) {
      digests = new Map();
      // Once per config entry: items naming one config (hundreds in a crafted manifest.json) must not
      // each read and hash it again.
      const byEntry = new Map<TarEntry, Digest>();
      for (const item of items) {
        const entry = resolveEntry(index, item.config, archive);
        if (!entry) continue;
        let digest = byEntry.get(entry);
        if (digest === undefined) byEntry.set(entry, (digest = (await readConfig(item)).digest));
        digests.set(item, digest);
      }
    }
    const item = selectItem(items, options.image, archive, (i) => digests?.get(i));
    const config = await readConfig(item);
    const tag = typeof options.image === 'string' && item.repoTags.includes(options.image) ? options.image : item.repoTags[0];
    const name = `${params.label}${tag ? `:${tag}` : items.length > 1 ? `:@${item.position}` : ''}`;
    if (hasLayout) {
      const oci = await findOciRoot(store, item, config.digest);
      if (oci) return new TarballSource(name, 'oci-layout', item.repoTags, new LayoutSource(store, oci.descriptor, name), stats, cleanup);
    }
    if (cacheDir) pruning = pruneCacheDaily(cacheDir, options.signal).catch((err: unknown) => debug('pruning the layer cache %s: %s', cacheDir, err instanceof Error ? err.message : String(err)));
    const ctx: LayerContext = {
      archive,
      file: indexed.file,
      ...(params.identity ? { identity: params.identity } : {}),
      ...(cacheDir ? { cacheDir } : {}),
      scratch: () =>
        (scratch ??= makeScratch(options.tempDir).catch((err: unknown) => {
          scratch = undefined;
          throw err;
        })),
      level,
      stats,
      ...(options.onCompressedStream ? { tee: options.onCompressedStream } : {}),
    };
    return new TarballSource(name, 'docker-save', item.repoTags, new DockerArchiveSource(name, indexed, item, config, ctx, concurrency), stats, cleanup);
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Opens a `docker save` archive (or an OCI layout tar), plain or gzipped, as an ImageSource.
 * Indexing reads the archive once; compression of uncompressed layers happens on the first
 * `root()`/`blob()` call, in parallel, and is cached.
 * @throws SLIPWAY_NOT_FOUND when the file or the selected image does not exist, SLIPWAY_INVALID_ARG when
 *   the archive holds several images and `image` is not given (the message lists them),
 *   SLIPWAY_INVALID_ARCHIVE for anything malformed.
 */
export async function open(path: string, options: TarballOptions = {}): Promise<TarballSource> {
  throwIfAborted(options.signal);
  checkOptions(options);
  const indexed = await openTarArchive(path, options);
  // A pipe read once has no identity: the next stream through the same path is another archive.
  const identity = indexed.streamed ? undefined : await fileIdentity(path);
  return fromIndexedArchive(indexed, options, { label: `docker-archive:${path}`, ...(identity ? { identity } : {}) });
}

/** One image an archive holds. */
export interface ArchiveImage {
  position: number;
  tags: string[];
  /** The manifest digest, for images stored as OCI layout entries (docker-save images get theirs when compressed). */
  digest?: Digest;
}

/** Lists the images in an archive without compressing anything (for a CLI listing or to choose `image`). */
export async function list(path: string, options: Pick<TarballOptions, 'signal' | 'tempDir'> = {}): Promise<ArchiveImage[]> {
  const indexed = await openTarArchive(path, options);
  const store = new TarStore(indexed);
  try {
    const manifestJson = resolveEntry(indexed.index, 'manifest.json', path);
    if (manifestJson) {
      const items = parseDockerManifest(await readEntry(indexed.file, manifestJson, maxManifestJsonBytes, path), path);
      return items.map((item) => ({ position: item.position, tags: item.repoTags }));
    }
    const { images } = await readLayoutIndex(store);
    return images.map((image) => {
      const label = image.imageName ?? image.refName;
      return { position: image.position, tags: label ? [label] : [], digest: image.descriptor.digest };
    });
  } finally {
    await store.close();
  }
}

/**
 * Opens whatever archive-like thing `path` is: an OCI layout directory (via `layout.open`), or a file
 * (docker save tar, OCI layout tar, either gzipped) via {@link open}.
 */
export async function openAny(path: string, options: TarballOptions = {}): Promise<ImageSource & { readonly tags?: readonly string[] }> {
  throwIfAborted(options.signal);
  if (options.stream) return open(path, options);
  const info = await statInput(path, 'archive');
  if (info.isDirectory()) {
    const { image, signal, tempDir } = options;
    return openLayout(path, { ...(image === undefined ? {} : { image }), ...(signal ? { signal } : {}), ...(tempDir ? { tempDir } : {}) });
  }
  return open(path, options);
}

/**
 * When the archive holds a docker save or a layout one directory down (`tar cf x.tar dir/` rather
 * than from inside it), what to do about it; empty otherwise.
 */
function nestedHint(names: Iterable<string>): string {
  for (const entry of names) {
    const nested = /^(?:\.\/)?([^/]+)\/(manifest\.json|index\.json)$/.exec(entry);
    if (nested) return `; it holds ${nested[2]} under "${nested[1]}/": make the archive from inside that directory (tar -C ${shellWord(nested[1]!)} -cf ARCHIVE .)`;
  }
  return '';
}
