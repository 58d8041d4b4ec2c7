/**
 * The copy engine: an image or index from any ImageSource to any ImageSink.
 *
 * Order of work, chosen so a tag never points at incomplete content and a no-op costs one request
 * to the destination:
 *  1. read the source root (and, for a single image, its config) and decide what to copy;
 *  2. one `sink.current()`: same digest → done; different image and no `overwrite` → refuse;
 *  3. walk child manifests the destination lacks (HEAD each child first: a registry only accepts a
 *     manifest whose blobs it has, so a present child means a complete subtree);
 *  4. move each distinct blob once (HEAD, then mount within one registry or upload), bounded by `jobs`,
 *     largest first;
 *  5. each manifest as soon as its blobs or children are stored, the root last, under the sink's tag.
 * The first error aborts everything still running; copy returns only after all work has settled.
 * @module
 */
import { Readable } from 'node:stream';
import { setMaxListeners } from 'node:events';
import { debuglog } from 'node:util';
import { RegistryError } from '../transport/errors.js';
import { AbortedError, DigestMismatchError, InvalidArgumentError, NotFoundError, SizeMismatchError, SlipwayError } from '../errors.js';
import { linkSignals } from '../internal/signals.js';
import { sha256, type Digest } from '../v1/digest.js';
import { blobDescriptors, isForeignLayer, parseManifest, type Descriptor } from '../v1/manifest.js';
import { isImageConfigMediaType, isIndexMediaType, MediaType } from '../v1/media-types.js';
import { formatPlatform, normalizePlatform, parsePlatform, type Platform } from '../v1/platform.js';
import type { ImageSink, ImageSource, ManifestBytes } from '../v1/source.js';
import {
  checkChildMediaType,
  checkImagePlatform,
  entryPlatforms,
  filterIndex,
  invalidIndex,
  maxIndexEntries,
  maxNestedIndexes,
  PlatformMismatchError,
  platformEntries,
  readConfigPlatform,
  resolvePlatform,
  verifiedBytes,
  verifiedManifest,
  type PlatformDigest,
} from './select.js';

const debug = debuglog('slipway');

/** @defaultValue used when `jobs` is not given: ggcr's and crane_image's figure, so benchmarks compare like with like. */
export const defaultJobs = 4;

export interface CopyOptions {
  /**
   * Which platforms to copy. Undefined or empty: everything, byte for byte (the index digest is kept).
   * One: from an index, the matching child manifest as-is (its digest is the result); from a single
   * image, the image after checking its config's os/architecture/variant (mismatch → SLIPWAY_PLATFORM_MISMATCH).
   * Several: from an index, a new index with only the matching children (a new digest unless every child
   * matched); every listed platform must be present.
   */
  platforms?: readonly Platform[];
  /** Replace a different image at the destination tag. @defaultValue false: refuse with SLIPWAY_DESTINATION_EXISTS */
  overwrite?: boolean;
  /**
   * The digest the result must have (a destination named by digest, `repo@sha256:…`): checked once the
   * source's root and the platform selection are known, before anything moves (SLIPWAY_INVALID_ARG).
   */
  expectDigest?: Digest;
  /**
   * State shared with other copies into the same destination repository (the tags of a repository
   * copy, several at once): see {@link SharedCopyState}. @defaultValue this copy's own
   */
  shared?: SharedCopyState;
  /**
   * What the caller found at the sink's tag a moment ago (null: nothing there), used instead of
   * asking again: a repository copy has just HEADed every tag. The tag is still checked again before
   * and after the root is written, as always without `overwrite`.
   */
  knownCurrent?: Descriptor | null;
  /**
   * Also copy foreign (non-distributable) layers, those a manifest gives URLs for, from the source,
   * as crane's `--allow-nondistributable-artifacts` and regctl's `--include-external` do: for an
   * air-gapped registry, which cannot reach the URLs. @defaultValue false: left to their URLs, as
   * every tool does by default (the layers' licences may forbid redistribution)
   */
  includeNondistributable?: boolean;
  /** How many requests (blob transfers, HEADs, manifest GETs/PUTs) run at once. @defaultValue {@link defaultJobs} */
  jobs?: number;
  signal?: AbortSignal;
  /** Receives progress events, synchronously; keep it cheap (throttle rendering on your side). */
  onProgress?: (event: CopyEvent) => void;
}

/**
 * What copies into one destination repository share, so that together they move each blob once:
 * make one with {@link sharedCopyState} and pass it to each.
 */
export interface SharedCopyState {
  /**
   * Manifests the destination holds whole, by digest: written by one of the copies, or found by a
   * HEAD (a registry takes a manifest only once it holds everything it references). Their subtrees
   * are not walked again: a root among them costs its manifest PUT alone, not a HEAD per blob.
   */
  readonly present: Set<string>;
  /** Each blob's move (found, mounted or uploaded), by digest: a blob another copy is moving is awaited, not moved twice. */
  readonly blobs: Map<string, Promise<void>>;
  /** Config blobs read and verified to learn a platform, by digest: read once. */
  readonly configs: Map<string, Buffer>;
}

export function sharedCopyState(): SharedCopyState {
  return { present: new Set(), blobs: new Map(), configs: new Map() };
}

/** Overall progress, carried by every event: bytes and blobs finished (skipped and mounted count as finished). */
export interface CopyTotals {
  blobsDone: number;
  blobsTotal: number;
  /** Includes bytes sent so far of blobs still uploading. */
  bytesDone: number;
  bytesTotal: number;
}

interface BlobEventBase {
  digest: Digest;
  size: number;
  mediaType: string;
  totals: CopyTotals;
}

export type CopyEvent =
  /** What the destination lacks, once the manifests have been walked: totals are final from here on. */
  | { type: 'plan'; manifests: number; totals: CopyTotals }
  | (BlobEventBase & { type: 'blob-start' })
  | (BlobEventBase & { type: 'blob-progress'; bytes: number })
  /** The destination already had it. */
  | (BlobEventBase & { type: 'blob-skip' })
  /** Mounted from another repository of the same registry: no bytes moved. */
  | (BlobEventBase & { type: 'blob-mount'; from: string })
  /** Uploaded. */
  | (BlobEventBase & { type: 'blob-done' })
  | { type: 'manifest-done'; digest: Digest; mediaType: string; size: number; tag?: string; totals: CopyTotals };

export interface CopyStats {
  blobsCopied: number;
  blobsSkipped: number;
  blobsMounted: number;
  bytesCopied: number;
  manifestsPut: number;
}

export interface CopyResult {
  /** Digest of what the destination now holds at its tag: the index, the selected child, or the filtered index. */
  digest: Digest;
  mediaType: string;
  size: number;
  /** Digest of the source's root (the index when a child or subset was selected). */
  sourceDigest: Digest;
  /** Each platform in the result with its image manifest digest (attestations left out). */
  platforms: PlatformDigest[];
  /** True when the destination already held the digest and nothing was written. */
  noop: boolean;
  stats: CopyStats;
  /**
   * The `subject` the copied root names (a signature, an SBOM, any OCI 1.1 artifact): a registry
   * without the referrers API learns of it only through the `<alg>-<hex>` fallback tag, which the
   * pusher maintains (distribution spec v1.1, "Pushing Manifests with Subject").
   */
  subject?: Descriptor;
  /**
   * Set when the destination chose the platform: a Docker Engine given an index and no platform
   * selection takes the image for the platform it runs (this one), as `docker pull` does.
   */
  sinkPlatform?: string;
}

/** The destination tag holds a different image and `overwrite` was not set (terraform-provider-crane's Create rule). */
export class DestinationExistsError extends SlipwayError {
  constructor(
    readonly destination: string,
    readonly existing: Digest,
    readonly wanted: Digest,
    /** What the digests are of, when not manifests (`image ID`: a daemon's config digests). */
    what = '',
  ) {
    const of = what === '' ? '' : `${what} `;
    super(
      'SLIPWAY_DESTINATION_EXISTS',
      `${destination} already holds ${of}${existing}, not the source's ${of}${wanted}; pass overwrite (slipway: --overwrite) to replace it`,
    );
  }
}

/** Copies `source` to `sink`; see the module comment for the order of work. */
export async function copy(source: ImageSource, sink: ImageSink, options: CopyOptions = {}): Promise<CopyResult> {
  const jobs = options.jobs ?? defaultJobs;
  if (!Number.isSafeInteger(jobs) || jobs < 1 || jobs > 256) throw new InvalidArgumentError(`jobs must be an integer from 1 to 256, got ${jobs}`);
  const controller = new AbortController();
  // The copy's own signal (or linkSignals' composite of it and the caller's, unlimited there) is
  // listened to by every task waiting for a slot and every request and stream of the copy: dozens
  // for an image of many layers, which is no leak (Node warns past 10).
  setMaxListeners(0, controller.signal);
  const linked = linkSignals(options.signal, controller.signal);
  try {
    return await new CopyRun(source, sink, options, jobs, controller, linked.signal!).run();
  } catch (err) {
    if (options.signal?.aborted) throw new AbortedError(`copying ${source.name} to ${sink.name}: aborted`, { cause: options.signal.reason });
    throw err;
  } finally {
    linked.dispose();
  }
}

/** A manifest to write (`present` false) or one the destination already has. */
interface Node {
  descriptor: Descriptor;
  present: boolean;
  manifest?: ManifestBytes;
  children: Node[];
  blobs: Descriptor[];
}

interface Target {
  root: ManifestBytes;
  platforms: PlatformDigest[];
}

class CopyRun {
  readonly #limit: Limiter;
  readonly #tasks: Promise<unknown>[] = [];
  readonly #blobs = new Map<string, Promise<void>>();
  /** Blobs already in the totals (a blob shared by several children counts once). */
  readonly #counted = new Set<string>();
  readonly #manifests = new Map<string, Promise<void>>();
  /** Config blobs already read (and verified) to check the platform: uploaded from here, not downloaded twice. */
  readonly #configs: Map<string, Buffer>;
  /** Manifests known stored whole at the destination, by digest. */
  readonly #present: Set<string>;
  readonly #nodes = new Map<string, Promise<Node>>();
  readonly #stats: CopyStats = { blobsCopied: 0, blobsSkipped: 0, blobsMounted: 0, bytesCopied: 0, manifestsPut: 0 };
  readonly #totals: CopyTotals = { blobsDone: 0, blobsTotal: 0, bytesDone: 0, bytesTotal: 0 };
  #failure: { error: unknown } | undefined;

  constructor(
    private readonly source: ImageSource,
    private readonly sink: ImageSink,
    private readonly options: CopyOptions,
    jobs: number,
    private readonly controller: AbortController,
    private readonly signal: AbortSignal,
  ) {
    this.#limit = createLimiter(jobs, signal);
    this.#configs = options.shared?.configs ?? new Map();
    this.#present = options.shared?.present ?? new Set();
  }

  async run(): Promise<CopyResult> {
    const { source, sink, signal } = this;
    const rootBytes = verifiedBytes(await this.#limit(() => source.root({ signal })), `${source.name} root manifest`);
    let target = await this.#target(rootBytes);
    // An index of one image and its attestations (buildx's default output) holds one image: a sink
    // for one image takes it, as skopeo does, rather than asking for the only platform there is.
    const unselected = sink.singleImage === true && (this.options.platforms ?? []).length === 0 && isIndexMediaType(target.root.descriptor.mediaType);
    let sinkPlatform: string | undefined;
    if (unselected && target.platforms.length === 1) {
      target = await this.#target(rootBytes, [parsePlatform(target.platforms[0]!.platform)]);
    } else if (unselected && target.platforms.length > 1 && sink.platform) {
      // The Docker Engine takes its own platform's image, as `docker pull` does.
      const own = await this.#limit(() => sink.platform!({ signal }));
      if (own) {
        sinkPlatform = formatPlatform(own);
        target = await this.#target(rootBytes, [own]).catch((err: unknown) => {
          if (!(err instanceof PlatformMismatchError)) throw err;
          throw new PlatformMismatchError(`${sink.name} runs ${sinkPlatform}, and ${err.message}; select one platform (slipway: --platform)`, err.available);
        });
      }
    }
    const wanted = target.root.descriptor;
    const { expectDigest } = this.options;
    if (expectDigest !== undefined && wanted.digest !== expectDigest) {
      const what = (this.options.platforms ?? []).length > 0 ? `what the platform selection makes of ${source.name}` : source.name;
      throw new InvalidArgumentError(`${sink.name} names ${expectDigest}, and ${what} is ${wanted.digest}: a destination's digest must be the copy's result`);
    }
    const subject = parseManifest(target.root.bytes, wanted.mediaType).manifest.subject;
    const result = (noop: boolean): CopyResult => ({
      digest: wanted.digest,
      mediaType: wanted.mediaType,
      size: wanted.size,
      sourceDigest: rootBytes.descriptor.digest,
      platforms: target.platforms,
      noop,
      stats: { ...this.#stats },
      ...(subject ? { subject } : {}),
      ...(sinkPlatform === undefined ? {} : { sinkPlatform }),
    });

    if (sink.singleImage) checkSingleImage(source.name, sink.name, target, this.options.includeNondistributable === true, (this.options.platforms ?? []).length);
    // A daemon knows images by ID, its config's digest (with the classic store; the containerd store's
    // ID is the manifest's digest): compared as such.
    const identity = sink.identity === 'config' ? await this.#imageId(target.root) : wanted.digest;
    const known = sink.identity === 'config' ? undefined : this.options.knownCurrent;
    const current = known === undefined ? await this.#limit(() => sink.current({ signal })) : (known ?? undefined);
    if (current?.digest === identity || current?.digest === wanted.digest) return result(true);
    if (current && !this.options.overwrite) throw new DestinationExistsError(sink.name, current.digest, identity, sink.identity === 'config' ? 'image ID' : '');

    try {
      // Both are tracked inside: a failure anywhere aborts the rest, and we wait for everything below.
      const root = await this.#node(wanted, target.root);
      this.#emit({ type: 'plan', manifests: countToWrite(root), totals: this.#totals });
      await this.#put(root, sink.tag);
    } catch (err) {
      this.#fail(err);
    }
    await Promise.all(this.#tasks);
    if (this.#failure) throw this.#failure.error;
    if (sink.commit) await sink.commit(wanted, { signal });
    return result(false);
  }

  /**
   * The Docker Engine's image ID for an image manifest: the sha256 of its config bytes, also when a
   * sha512 digest names the config (read once, then uploaded from memory).
   */
  async #imageId(root: ManifestBytes): Promise<Digest> {
    const parsed = parseManifest(root.bytes, root.descriptor.mediaType);
    if (parsed.kind !== 'image') throw new InvalidArgumentError(`${root.descriptor.digest} is an index, not an image manifest`);
    const config = parsed.manifest.config;
    if (config.digest.startsWith('sha256:')) return config.digest;
    if (!this.#configs.has(config.digest)) await this.#limit(() => readConfigPlatform(this.source, parsed.manifest, { signal: this.signal }, this.#configs));
    const bytes = this.#configs.get(config.digest);
    if (!bytes) throw new InvalidArgumentError(`${this.source.name}: config ${config.digest} could not be read to name the image`);
    return sha256(bytes);
  }

  /** What goes to the destination, decided from the source alone. */
  async #target(root: ManifestBytes, platforms?: readonly Platform[]): Promise<Target> {
    const { source, signal } = this;
    const wanted = platforms ?? this.options.platforms ?? [];
    if (wanted.length <= 1) {
      const { manifest, platforms } = await this.#limit(() => resolvePlatform(source, root, wanted[0], { signal }, this.#configs));
      return { root: manifest, platforms };
    }
    const parsed = parseManifest(root.bytes, root.descriptor.mediaType);
    if (parsed.kind === 'index') {
      const entries = await this.#limit(() => platformEntries(source, parsed.manifest, { signal }, this.#configs));
      const filtered = filterIndex(root, parsed.manifest, wanted, source.name, entries);
      const kept = parseManifest(filtered.bytes, filtered.descriptor.mediaType);
      const keptDigests = new Set(kept.kind === 'index' ? kept.manifest.manifests.map((d) => d.digest) : []);
      // Kept as listed, or behind a nested index kept whole.
      const platforms = entryPlatforms(entries.filter((e) => keptDigests.has(e.descriptor.digest) || keptDigests.has(parsed.manifest.manifests[e.position]!.digest)));
      return { root: filtered, platforms };
    }
    const platform = await this.#limit(() => readConfigPlatform(source, parsed.manifest, { signal }, this.#configs));
    checkImagePlatform(source.name, platform, wanted);
    return { root, platforms: platform ? [{ platform: formatPlatform(normalizePlatform(platform)), digest: root.descriptor.digest }] : [] };
  }

  /**
   * Loads a manifest subtree, skipping children the destination already has. One load per digest;
   * bounded in depth and in manifests (what selecting a platform allows), whatever the entries are
   * marked as: a hostile chain of 3000 nested indexes overflowed the stack, 12 000 entries took 51 s.
   */
  #node(descriptor: Descriptor, known?: ManifestBytes, depth = 0): Promise<Node> {
    let node = this.#nodes.get(descriptor.digest);
    if (!node) {
      // The root and 4 levels of indexes below it, as platformEntries allows; images may sit one below.
      if (depth > maxNestedIndexes && isIndexMediaType(descriptor.mediaType)) throw invalidIndex(`${this.source.name}: indexes nested more than ${maxNestedIndexes} deep`);
      if (this.#nodes.size >= maxIndexEntries) throw invalidIndex(`${this.source.name}: more than ${maxIndexEntries} manifests in one image`);
      node = this.#track(this.#load(descriptor, known, depth));
      this.#nodes.set(descriptor.digest, node);
    }
    return node;
  }

  async #load(descriptor: Descriptor, known: ManifestBytes | undefined, depth: number): Promise<Node> {
    const { source, sink, signal } = this;
    if (!known) checkChildMediaType(source.name, descriptor);
    const stored = this.#present.has(descriptor.digest);
    // The root is written whatever the destination holds (under its tag); a child only when missing.
    if (known && stored) return { descriptor: known.descriptor, present: false, manifest: known, children: [], blobs: [] };
    if (!known && (stored || (await this.#limit(() => sink.hasManifest(descriptor, { signal }))))) {
      this.#present.add(descriptor.digest);
      return { descriptor, present: true, children: [], blobs: [] };
    }
    const manifest = known ?? (await this.#limit(() => verifiedManifest(source, descriptor, { signal })));
    const parsed = parseManifest(manifest.bytes, manifest.descriptor.mediaType);
    if (parsed.kind === 'index') {
      // Checked before any child is loaded: thousands of child loads must not be started to learn it.
      if (this.#nodes.size + parsed.manifest.manifests.length > maxIndexEntries + 1) {
        throw invalidIndex(`${this.source.name}: more than ${maxIndexEntries} manifests in one image`);
      }
      const children = await Promise.all(parsed.manifest.manifests.map((child) => this.#node(child, undefined, depth + 1)));
      return { descriptor: manifest.descriptor, present: false, manifest, children, blobs: [] };
    }
    const blobs = blobDescriptors(parsed.manifest).filter((d) => this.options.includeNondistributable === true || !isForeignLayer(d));
    for (const blob of blobs) {
      if (this.#counted.has(blob.digest)) continue;
      this.#counted.add(blob.digest);
      this.#totals.blobsTotal += 1;
      this.#totals.bytesTotal += blob.size;
    }
    return { descriptor: manifest.descriptor, present: false, manifest, children: [], blobs };
  }

  /** Stores a manifest after everything it references; `tag` only for the root. One write per digest. */
  #put(node: Node, tag?: string): Promise<void> {
    if (node.present) return Promise.resolve();
    let task = this.#manifests.get(node.descriptor.digest);
    if (!task) {
      task = this.#track(this.#write(node, tag));
      this.#manifests.set(node.descriptor.digest, task);
    }
    return task;
  }

  async #write(node: Node, tag?: string): Promise<void> {
    // Largest blobs take the first of the `jobs` slots: a config queued ahead of a layer would start
    // that layer late, and the copy lasts as long as its last layer (the config costs a round trip).
    const blobs = [...node.blobs].sort((a, b) => b.size - a.size);
    const stores = blobs.length > 0 || node.children.some((child) => !child.present);
    await Promise.all([...node.children.map((child) => this.#put(child)), ...blobs.map((blob) => this.#blob(blob))]);
    const manifest = node.manifest!;
    // Nothing to store first (a root already stored whole, under another tag): current() was just
    // asked, unless the caller told what it held (knownCurrent), a while ago perhaps.
    if (tag !== undefined && !this.options.overwrite && (stores || this.options.knownCurrent !== undefined)) {
      // The tag was free when the copy began, but the blobs took a while: another writer may have
      // taken it since. Registries have no compare-and-swap; asking again narrows the window from
      // the whole transfer to one round trip.
      const now = await this.#limit(() => this.sink.current({ signal: this.signal }));
      if (now && now.digest !== manifest.descriptor.digest) throw new DestinationExistsError(this.sink.name, now.digest, manifest.descriptor.digest);
    }
    await this.#limit(() => this.sink.putManifest(manifest, tag === undefined ? { signal: this.signal } : { signal: this.signal, tag }));
    this.#stats.manifestsPut += 1;
    this.#present.add(manifest.descriptor.digest);
    if (tag !== undefined && !this.options.overwrite) {
      // Two copies that asked at the same moment both found the tag free and both wrote it: the one
      // whose write landed first sees the other's here and reports it rather than both claiming the
      // tag. (One that asks after the other's write has landed still cannot tell: no CAS.)
      const after = await this.#limit(() => this.sink.current({ signal: this.signal }));
      if (after && after.digest !== manifest.descriptor.digest) throw new DestinationExistsError(this.sink.name, after.digest, manifest.descriptor.digest);
    }
    const { digest, mediaType, size } = manifest.descriptor;
    this.#emit({ type: 'manifest-done', digest, mediaType, size, ...(tag === undefined ? {} : { tag }), totals: this.#totals });
  }

  /** Moves one blob, at most once per run, and once across the copies sharing {@link SharedCopyState}. */
  #blob(descriptor: Descriptor): Promise<void> {
    let task = this.#blobs.get(descriptor.digest);
    if (!task) {
      const elsewhere = this.options.shared?.blobs.get(descriptor.digest);
      task = this.#track(elsewhere ? this.#awaitMove(descriptor, elsewhere) : this.#move(descriptor));
      this.#blobs.set(descriptor.digest, task);
    }
    return task;
  }

  /** This copy's own move of a blob, announced to the copies it shares state with. */
  #move(descriptor: Descriptor): Promise<void> {
    const move = this.#limit(() => this.#transfer(descriptor));
    const shared = this.options.shared?.blobs;
    if (shared) {
      shared.set(descriptor.digest, move);
      // A failed move is nobody's: the next copy that needs the blob moves it itself.
      move.catch(() => {
        if (shared.get(descriptor.digest) === move) shared.delete(descriptor.digest);
      });
    }
    return move;
  }

  /**
   * Another copy's move of a blob: found there once it is done, or, if that copy failed (its own
   * fault or cancellation), the move another waiter has started since, else a move of its own. The
   * wait ends at once when this copy is cancelled.
   */
  async #awaitMove(descriptor: Descriptor, elsewhere: Promise<void>): Promise<void> {
    try {
      await untilAborted(elsewhere, this.signal);
    } catch {
      if (this.signal.aborted) throw new AbortedError('copy aborted', { cause: this.signal.reason });
      const newer = this.options.shared?.blobs.get(descriptor.digest);
      return newer !== undefined && newer !== elsewhere ? this.#awaitMove(descriptor, newer) : this.#move(descriptor);
    }
    this.#skipped(descriptor);
  }

  /** A blob the destination already holds. */
  #skipped(descriptor: Descriptor): void {
    this.#totals.blobsDone += 1;
    this.#totals.bytesDone += descriptor.size;
    this.#stats.blobsSkipped += 1;
    this.#emit({ type: 'blob-skip', digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType, totals: this.#totals });
  }

  async #transfer(descriptor: Descriptor): Promise<void> {
    const { source, sink, signal } = this;
    const base = { digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType };
    const finish = (): void => {
      this.#totals.blobsDone += 1;
      this.#totals.bytesDone += descriptor.size;
    };
    if (await sink.hasBlob(descriptor, { signal })) {
      this.#skipped(descriptor);
      return;
    }
    const from = source.location;
    const mountFrom =
      from && sink.location && from.registry === sink.location.registry && from.repository !== sink.location.repository ? from : undefined;
    this.#emit({ type: 'blob-start', ...base, totals: this.#totals });
    let opened = false;
    let sent = 0;
    const open = async (): Promise<Readable> => {
      opened = true;
      // A retry restarts the upload: take back what the failed attempt counted.
      this.#totals.bytesDone -= sent;
      sent = 0;
      const read = this.#configs.get(descriptor.digest);
      if (read) return Readable.from([read]);
      if (!isForeignLayer(descriptor)) return source.blob(descriptor, { signal });
      return source.blob(descriptor, { signal }).catch((err: unknown) => {
        // Its bytes are copied from the source only: URLs in a manifest are not fetched.
        if (err instanceof NotFoundError || (RegistryError.is(err) && err.notFound)) {
          throw new NotFoundError(`${source.name} does not hold foreign layer ${descriptor.digest}, which it leaves to ${descriptor.urls!.join(', ')}: slipway copies a foreign layer only from the source`, { cause: err });
        }
        throw err;
      });
    };
    const onProgress = (bytes: number): void => {
      this.#totals.bytesDone += bytes - sent;
      sent = bytes;
      this.#emit({ type: 'blob-progress', ...base, bytes, totals: this.#totals });
    };
    const put = () => sink.putBlob(descriptor, open, mountFrom ? { signal, onProgress, mountFrom } : { signal, onProgress });
    try {
      await put();
    } catch (err) {
      // Bytes that failed verification may be good when read again: an archive's cached compressed
      // layer found corrupt is dropped and the layer compressed afresh; bytes corrupted on the way
      // from a registry are fetched again. Once, in a new upload session: a source corrupt at rest
      // fails the same way again.
      if (!(err instanceof DigestMismatchError || err instanceof SizeMismatchError) || signal.aborted) throw err;
      debug('copy: %s; reading %s again', err.message, descriptor.digest);
      opened = false; // the second attempt may mount instead
      await put();
    }
    this.#totals.bytesDone -= sent;
    finish();
    if (mountFrom && !opened) {
      this.#stats.blobsMounted += 1;
      this.#emit({ type: 'blob-mount', ...base, from: `${mountFrom.registry}/${mountFrom.repository}`, totals: this.#totals });
    } else {
      this.#stats.blobsCopied += 1;
      this.#stats.bytesCopied += descriptor.size;
      this.#emit({ type: 'blob-done', ...base, totals: this.#totals });
    }
  }

  #emit(event: CopyEvent): void {
    const listener = this.options.onProgress;
    // Each event gets its own snapshot so a listener may keep it.
    if (listener) listener({ ...event, totals: { ...event.totals } });
  }

  /** Remembers a task so the run waits for it, and turns its failure into an abort of everything else. */
  #track<T>(task: Promise<T>): Promise<T> {
    this.#tasks.push(task.catch((err: unknown) => this.#fail(err)));
    return task;
  }

  #fail(error: unknown): void {
    if (this.#failure) return;
    this.#failure = { error };
    this.controller.abort(error);
  }
}

/**
 * For a sink holding one Docker image (a docker archive, the Engine): an index needs one platform
 * selected (or named by the sink: run() has then selected it); an artifact, foreign layers and zstd layers are refused, before anything moves.
 */
function checkSingleImage(sourceName: string, sinkName: string, target: Target, foreignIncluded: boolean, platformsAsked: number): void {
  const parsed = parseManifest(target.root.bytes, target.root.descriptor.mediaType);
  if (parsed.kind === 'index') {
    const listed = target.platforms.map((p) => p.platform).join(', ');
    // Several platforms asked for make a new index: "select one platform" read as if none was given.
    if (platformsAsked > 1) throw new InvalidArgumentError(`${sinkName} holds one image, and ${platformsAsked} platforms were selected (${listed}): select one platform (slipway: --platform)`);
    throw new InvalidArgumentError(`${sinkName} holds one image, and ${sourceName} is an index${listed ? ` (${listed})` : ''}: select one platform (slipway: --platform)`);
  }
  const type = parsed.manifest.config.mediaType;
  if (!isImageConfigMediaType(type)) throw new InvalidArgumentError(`${sinkName} holds container images, and ${sourceName} is an artifact (config ${type}), not an image`);
  for (const layer of parsed.manifest.layers) {
    // `docker load` needs every layer's bytes in the archive; a foreign layer's are only at its URLs.
    if (isForeignLayer(layer) && !foreignIncluded) {
      throw new InvalidArgumentError(
        `${sinkName} needs every layer's bytes, and ${sourceName} has a foreign layer ${layer.digest} (at ${layer.urls!.join(', ')}); include it (slipway: --include-nondistributable) or copy to an oci-archive: or a registry instead`,
      );
    }
    // Docker before 23 cannot load zstd layers (skopeo refuses them for docker-archive: too).
    if (/zstd/.test(layer.mediaType)) throw new InvalidArgumentError(`${sinkName}: ${sourceName} has zstd layers (${layer.mediaType}), which docker load before Docker 23 cannot read; copy it to an oci-archive: or a registry instead`);
    // Anything but a tar, plain or gzipped, was written and only `docker load` failed, on "ApplyLayer
    // … unexpected EOF": an encrypted layer, or an attestation's in-toto statement (old BuildKit gave
    // those a linux-less image config). skopeo refuses them up front too.
    if (!dockerLoadableLayerTypes.has(layer.mediaType)) {
      const why = /encrypted/.test(layer.mediaType) ? ': it is encrypted (decrypt it first, e.g. skopeo copy --decryption-key)' : '';
      throw new InvalidArgumentError(
        `${sinkName} holds images docker load can unpack, and layer ${layer.digest} of ${sourceName} is ${layer.mediaType}, not a tar (plain or gzip)${why}; copy it to an oci-archive: or a registry instead`,
      );
    }
  }
}

/** Layer media types `docker load` unpacks: a tar, plain or gzipped (a non-distributable one has its bytes here). */
const dockerLoadableLayerTypes = new Set<string>([
  MediaType.DockerLayerGzip,
  MediaType.DockerForeignLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar',
  MediaType.OciLayer,
  MediaType.OciLayerGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
]);

function countToWrite(node: Node, seen = new Set<string>()): number {
  if (node.present || seen.has(node.descriptor.digest)) return 0;
  seen.add(node.descriptor.digest);
  return 1 + node.children.reduce((sum, child) => sum + countToWrite(child, seen), 0);
}

/** `promise`, or a rejection as soon as `signal` fires (the promise itself is left to settle). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new AbortedError('copy aborted', { cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortedError('copy aborted', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

/** At most `jobs` tasks at once; a waiting task leaves the queue when the signal fires. */
function createLimiter(jobs: number, signal: AbortSignal): Limiter {
  let active = 0;
  const waiting: (() => void)[] = [];
  const acquire = async (): Promise<void> => {
    if (signal.aborted) throw new AbortedError('copy aborted', { cause: signal.reason });
    if (active < jobs) {
      active += 1;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        waiting.splice(waiting.indexOf(wake), 1);
        reject(new AbortedError('copy aborted', { cause: signal.reason }));
      };
      const wake = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      waiting.push(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else active -= 1;
  };
  return async (task) => {
    await acquire();
    try {
      return await task();
    } finally {
      release();
    }
  };
}
