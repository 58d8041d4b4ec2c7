/**
 * `copyImage` and `pushArchive`: any source string to a registry, an OCI layout or archive, a docker
 * archive or the Docker daemon.
 * @module
 */
import { stat } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { debuglog } from 'node:util';
import { copy, daemon, InvalidArgumentError, isErrnoError, layout, MediaType, name, NotFoundError, parseManifest, parsePlatforms, remote, SlipwayError, tarball, type Descriptor, type ImageSink, type ManifestBytes } from '@slipway/oci';
import { createClient, type AccessOptions } from './access.js';
import { copyDigestTags, type CopiedDigestTag } from './digest-tags.js';
import { copyReferrers, indexCopiedReferrer, withKnownRoot, withManifestPut, type CopiedReferrer } from './referrers.js';
import { pinnedDigestWarnings, resolveSource } from './resolve.js';
import { parseSourceSpec } from './source-spec.js';
import { sumStats } from './stats.js';
import { checkOptions } from './check-options.js';

const debug = debuglog('slipway');

export interface CopyImageOptions extends AccessOptions {
  /** Anything resolveSource accepts: reference, archive, layout, daemon image, skopeo-style prefix. */
  source: string;
  /**
   * `registry/repository[:tag][@digest]` (tag defaults to `latest` unless a digest is given, which the
   * result must have, checked before anything moves; `docker://` tolerated), or a local place in
   * skopeo's spelling: `oci:DIR[:NAME]` (a layout directory, kept and added to), `oci-archive:FILE[:NAME]`
   * or `docker-archive:FILE[:IMAGE]` (one image, the file written whole), `docker-daemon:IMAGE` (loaded
   * into the Docker Engine). A docker archive or the daemon holds one image: an index needs one platform (the daemon takes its own unless one is given).
   */
  destination: string;
  /**
   * Write an `oci-archive:` or `docker-archive:` destination into this stream (ended when the archive
   * is written) rather than opening its path, which then only names it (`docker-archive:/dev/stdout`).
   * For standard output: a Node process's may be a socket (child_process, systemd), which no path
   * opens. Nothing is read back from a stream, so the copy is never a no-op.
   */
  destinationStream?: Writable;
  /**
   * Read an archive source (a path, `docker-archive:`, `oci-archive:`) from this stream, once, into a
   * temp file, rather than opening its path, which then only names it (`/dev/stdin`; see destinationStream).
   */
  sourceStream?: Readable;
  /** `linux/arm64`, or several (a list or comma-separated). Empty: all platforms. See copy.CopyOptions. */
  platforms?: string | readonly string[];
  /** Replace a different image at the destination tag. @defaultValue false */
  overwrite?: boolean;
  /** Also copy foreign (non-distributable) layers, from the source. See copy.CopyOptions. @defaultValue false */
  includeNondistributable?: boolean;
  /** Parallel transfers. @defaultValue 4 */
  jobs?: number | undefined;
  /** Which image of a multi-image archive or layout. */
  image?: string;
  onProgress?: (event: copy.CopyEvent) => void;
  /**
   * Also copy what refers to each copied manifest at the source (signatures, SBOMs: OCI 1.1 referrers
   * API, else the `sha256-<hex>` tag), recursively, by digest; a registry source only. @defaultValue false
   */
  referrers?: boolean;
  /**
   * Also copy the source's tags named after a copied digest, `sha256-<hex>.sig`, `.att`, `.sbom` (where
   * cosign keeps signatures, attestations and SBOMs without the referrers API); a destination tag
   * holding something the source's does not extend is kept unless `overwrite`. A registry source
   * only. See digest-tags.ts. @defaultValue false
   */
  digestTags?: boolean;
}

export interface CopyImageResult extends copy.CopyResult {
  /** The source as resolved (never contains credentials). */
  source: string;
  /** The destination, normalised: `registry/repository:tag`, `…@digest` when it named one (a local place: as given, `oci-archive:out.tar:app`). */
  destination: string;
  /** The destination pinned to what it now holds: `registry/repository:tag@digest` (a local place: `…@digest` too). */
  reference: string;
  /** Referrers copied (or found already there) with `referrers: true`; empty otherwise. */
  referrers: CopiedReferrer[];
  /** Digest tags copied with `digestTags: true`; empty otherwise. */
  digestTags: CopiedDigestTag[];
  /** What the caller should know about the result, for a front end to show: it is complete and correct either way. */
  warnings: string[];
}

/** copyImage's options as checkOptions sees them (an untyped caller may pass anything). */
const copyFields = {
  source: 'string',
  destination: 'string',
  platforms: 'platforms?',
  overwrite: 'boolean?',
  includeNondistributable: 'boolean?',
  jobs: 'count?',
  image: 'string?',
  onProgress: 'function?',
  destinationStream: 'writable?',
  sourceStream: 'readable?',
  referrers: 'boolean?',
  digestTags: 'boolean?',
} as const;

/** Copies a source to a registry; see copy.copy for platform, no-op and overwrite semantics. */
export async function copyImage(options: CopyImageOptions): Promise<CopyImageResult> {
  checkOptions('copyImage', options, copyFields);
  if ((options.referrers || options.digestTags) && (await parseSourceSpec(options.source)).kind !== 'registry') {
    const what = options.referrers ? 'referrers are' : 'digest tags are';
    throw new InvalidArgumentError(`${what} only copied from a registry source, and "${options.source}" is not one; copy without them`);
  }
  return transfer(options);
}

/** The copy engine's options from an op's. */
function engineOptions(options: CopyImageOptions, platforms: ReturnType<typeof parsePlatforms>, onProgress: CopyImageOptions['onProgress']): copy.CopyOptions {
  return {
    platforms,
    overwrite: options.overwrite ?? false,
    ...(options.includeNondistributable === true ? { includeNondistributable: true } : {}),
    ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
    ...(onProgress ? { onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

/** What pushArchive adds to a copy: the layer cache, and streaming layers while they are compressed. */
interface ArchiveSettings {
  cacheDir?: string | false;
  streamLayers: boolean;
}

async function transfer(options: CopyImageOptions, archive?: ArchiveSettings): Promise<CopyImageResult> {
  const spec = parseDestination(options.destination);
  if (options.destinationStream !== undefined && spec.kind !== 'oci-archive' && spec.kind !== 'docker-archive') {
    throw new InvalidArgumentError(`destinationStream is for an oci-archive: or docker-archive: destination, not "${options.destination}"`);
  }
  if (spec.kind !== 'registry') {
    if (options.referrers || options.digestTags) {
      throw new InvalidArgumentError(`${options.referrers ? 'referrers are' : 'digest tags are'} only copied into a registry, and "${options.destination}" is not one; copy without them`);
    }
    return transferLocal(options, spec, archive);
  }
  const client = createClient(options);
  try {
    return await copyToRegistry(options, spec.reference, client, archive ? { archive } : {});
  } finally {
    await client.close();
  }
}

/** What copyToRegistry takes besides an op's options: a push's archive settings, a repository copy's shared state. */
export interface RegistryCopySettings {
  archive?: ArchiveSettings;
  /** See copy.CopyOptions.shared. */
  shared?: copy.SharedCopyState;
  /** The source's root manifest, already read (by digest): not read again. */
  root?: ManifestBytes;
  /** See copy.CopyOptions.knownCurrent. */
  knownCurrent?: Descriptor | null;
}

/**
 * The copy into a registry, through `client` (which the caller closes): a repository copy makes one
 * per tag with one client, so tokens and connections carry from tag to tag.
 */
export async function copyToRegistry(options: CopyImageOptions, destination: name.Reference, client: remote.RegistryClient, settings: RegistryCopySettings = {}): Promise<CopyImageResult> {
  const { archive } = settings;
  const platforms = parsePlatforms(options.platforms ?? []);
  // Manifest PUTs go through the client to read the registry's answers: an OCI-Subject header on the
  // root's says the registry indexes the root's subject itself. By digest unless the copy gives a tag.
  const puts = new Map<string, { manifest: ManifestBytes; answer: remote.PutManifestResult }>();
  const sink = withManifestPut(client.sink(destination), async (manifest, opts) => {
    const target = opts?.tag === undefined ? `${destination.name}@${manifest.descriptor.digest}` : destination;
    puts.set(manifest.descriptor.digest, { manifest, answer: await client.putManifest(target, manifest, opts) });
  });
  // With a platform selected, or a digest the result must have, the copy may refuse the image after
  // the layers were compressed (the digest is known only then): nothing is streamed before that.
  const streamer = archive?.streamLayers && platforms.length === 0 && destination.digest === undefined ? new LayerStreamer(client, destination, options.signal) : undefined;
  const archiveOptions: Pick<tarball.TarballOptions, 'cacheDir' | 'onCompressedStream'> = {
    ...(archive?.cacheDir === undefined ? {} : { cacheDir: archive.cacheDir }),
    ...(streamer ? { onCompressedStream: streamer.tee } : {}),
  };
  const resolved = await resolveSource(options.source, { ...options, client, archive: archiveOptions });
  try {
    const onProgress = streamer ? streamer.progress(options.onProgress) : options.onProgress;
    const engine = { ...engineOptions(options, platforms, onProgress), ...(settings.shared ? { shared: settings.shared } : {}), ...(settings.knownCurrent === undefined ? {} : { knownCurrent: settings.knownCurrent }) };
    const source = settings.root ? withKnownRoot(resolved.source, settings.root) : resolved.source;
    const result = await copy.copy(source, sink, destination.digest === undefined ? engine : { ...engine, expectDigest: destination.digest });
    let stats = streamer ? streamer.adjust(result.stats) : result.stats;
    if (result.subject) {
      const written = await indexCopiedReferrer({ client, destination, digest: result.digest, subject: result.subject, written: puts.get(result.digest), signal: options.signal });
      stats = { ...stats, manifestsPut: stats.manifestsPut + written };
    }
    let referrers: CopiedReferrer[] = [];
    let digestTags: CopiedDigestTag[] = [];
    if ((options.referrers || options.digestTags) && resolved.spec.kind === 'registry') {
      const source = name.parseReference(resolved.spec.reference);
      const subjects = await copiedManifests(client, destination, result.digest, options.signal);
      const common = { client, source, destination, jobs: options.jobs, signal: options.signal, onProgress: options.onProgress };
      if (options.referrers) {
        const copied = await copyReferrers({ ...common, subjects });
        referrers = copied.referrers;
        stats = sumStats(stats, copied.stats);
      }
      if (options.digestTags) {
        // Referrers can be signed the cosign way too: their digest tags come along.
        const copied = await copyDigestTags({ ...common, overwrite: options.overwrite, subjects: [...subjects, ...referrers.map((r) => r.digest)] });
        digestTags = copied.tags;
        stats = sumStats(stats, copied.stats);
      }
    }
    const warnings = pinnedDigestWarnings(resolved.spec, result.sourceDigest);
    return { ...result, stats, referrers, digestTags, warnings, source: resolved.source.name, destination: destination.toString(), reference: destination.digest === undefined ? `${destination.toString()}@${result.digest}` : destination.toString() };
  } finally {
    await resolved.close();
  }
}

export interface PushArchiveOptions extends Omit<CopyImageOptions, 'source' | 'referrers' | 'digestTags'> {
  /** A docker save tar (gzip allowed), an OCI layout directory or tar, or a prefixed `oci:`/`oci-archive:`/`docker-archive:` path. */
  archive: string;
  /** Cache of compressed `docker save` layers; `false` turns it off. @defaultValue `$XDG_CACHE_HOME/slipway` or `~/.cache/slipway` */
  cacheDir?: string | false;
  /**
   * Upload uncompressed `docker save` layers while they are being compressed (one pass on a cold
   * cache, instead of compressing every layer and then uploading). Only when the destination
   * repository holds no tag yet and no platform is selected. Otherwise the digests are learnt
   * first, so the copy's HEAD can skip layers the repository already has (a re-push from a machine
   * with an empty layer cache: the base layers went up with the previous tag, and slipway's
   * compression is deterministic), and a no-op or refused push sends no layer bytes. A layer whose
   * streamed upload fails goes the ordinary way. @defaultValue true
   */
  streamLayers?: boolean;
}

/** Pushes a local archive or layout; like copyImage, but refuses anything that is not a local file. */
export async function pushArchive(options: PushArchiveOptions): Promise<CopyImageResult> {
  // Referrers and digest tags are a registry source's: for pushArchive they are unknown options.
  const { referrers: _referrers, digestTags: _digestTags, ...pushFields } = copyFields;
  checkOptions('pushArchive', options, { ...pushFields, source: 'string?', archive: 'string', cacheDir: 'cacheDir?', streamLayers: 'boolean?' });
  const { archive, cacheDir, streamLayers, ...rest } = options;
  if (/^(docker|docker-daemon):/.test(archive.trim())) {
    throw new InvalidArgumentError(`push takes a local archive or OCI layout, not "${archive}"; use copy for registry and daemon sources`);
  }
  if (options.sourceStream === undefined && !/^(oci|oci-archive|docker-archive):/.test(archive.trim())) {
    if (!(await stat(archive).catch(() => undefined))) throw new NotFoundError(`archive "${archive}": no such file or directory`);
  }
  return transfer({ ...rest, source: archive }, { ...(cacheDir === undefined ? {} : { cacheDir }), streamLayers: streamLayers ?? true });
}

/**
 * Streams each layer a push compresses to the destination repository as it is compressed
 * (remote.startStreamedUpload). The copy that follows finds those blobs with its HEAD and skips them;
 * a layer whose streamed upload failed is uploaded by the copy from the compressed file. The
 * manifest goes up only through the copy, after it saw every blob, so no tag points at a blob the
 * stream did not complete.
 */
class LayerStreamer {
  /** Cleared when a streamed upload fails. */
  #enabled = true;
  /** Whether the destination repository holds no tag: asked once, when the first layer is about to be compressed. */
  #repositoryEmpty: Promise<boolean> | undefined;
  /** Blobs committed by a streamed upload: digest → size. */
  readonly #streamed = new Map<string, number>();
  /** Streamed blobs the copy then found present (reported as copied, not as already there). */
  readonly #counted = new Set<string>();

  constructor(
    private readonly client: remote.RegistryClient,
    private readonly destination: name.Reference,
    private readonly signal: AbortSignal | undefined,
  ) {}

  readonly tee: tarball.CompressedTeeFactory = async () => {
    // A repository with tags may already hold some of these layers (streaming would upload them
    // again; compressing first lets the copy's HEAD skip them), and an existing destination tag means a
    // no-op or a refusal. Asked here, not up front: a refused, cached or pre-compressed archive sends
    // no request at all.
    this.#repositoryEmpty ??= this.client.hasTags(this.destination, this.signal ? { signal: this.signal } : {}).then(
      (tagged) => !tagged,
      (err: unknown) => {
        debug('push: not streaming layers (listing tags of %s: %s)', this.destination.name, err instanceof Error ? err.message : String(err));
        return false;
      },
    );
    if (!(await this.#repositoryEmpty) || !this.#enabled) return undefined;
    const upload = remote.startStreamedUpload({ transport: this.client.transport, repository: this.destination, ...(this.signal ? { signal: this.signal } : {}) });
    return {
      sink: upload.sink,
      abort: (reason?: unknown) => {
        // Compression failed, or the upload stalled or broke: layers still to come go the ordinary way.
        this.#enabled = false;
        upload.abort(reason);
      },
      finish: async (descriptor) => {
        const outcome = await upload.finish(descriptor);
        if (outcome === 'ok') this.#streamed.set(descriptor.digest, descriptor.size);
        // A registry that refused one streamed upload (a proxy without chunked bodies, ggcr #2005) will refuse the next.
        else this.#enabled = false;
        return outcome;
      },
    };
  };

  /** Progress listener: a streamed blob the copy finds present is reported as uploaded by this run. */
  progress(listener: ((event: copy.CopyEvent) => void) | undefined): (event: copy.CopyEvent) => void {
    return (event) => {
      if (event.type === 'blob-skip' && this.#streamed.has(event.digest)) {
        this.#counted.add(event.digest);
        listener?.({ ...event, type: 'blob-done' });
        return;
      }
      listener?.(event);
    };
  }

  adjust(stats: copy.CopyStats): copy.CopyStats {
    const out = { ...stats };
    for (const digest of this.#counted) {
      out.blobsSkipped -= 1;
      out.blobsCopied += 1;
      out.bytesCopied += this.#streamed.get(digest) ?? 0;
    }
    return out;
  }
}

/** The root the destination now holds and, for an index, each manifest it lists: what was copied, after any platform filter. */
async function copiedManifests(client: remote.RegistryClient, destination: name.Reference, digest: string, signal: AbortSignal | undefined): Promise<string[]> {
  const root = await client.getManifest(`${destination.name}@${digest}`, signal ? { signal } : {});
  const parsed = parseManifest(root.bytes, root.descriptor.mediaType);
  return [digest, ...(parsed.kind === 'index' ? parsed.manifest.manifests.map((d) => d.digest) : [])];
}

/** Where a copy goes: a registry, or one of the local places skopeo spells the same way. */
export type DestinationSpec =
  | { kind: 'registry'; reference: name.Reference }
  /** `name`: the ref name in index.json (`oci:`, `oci-archive:`), the image name `docker load` tags (`docker-archive:`). */
  | { kind: 'oci-layout' | 'oci-archive' | 'docker-archive'; path: string; name?: string }
  | { kind: 'docker-daemon'; image: string };

/** Places skopeo names that slipway does not write: as a bare destination they would parse as Docker Hub repositories (`dir:out` → docker.io/library/dir:out). */
const unsupportedDestination = /^(dir|containers-storage|tarball|ostree|sif):/;

/**
 * `registry/repository[:tag]` (or `docker://…`), or skopeo's spellings of local places:
 * `oci:DIR[:NAME]`, `oci-archive:FILE[:NAME]`, `docker-archive:FILE[:IMAGE]`, `docker-daemon:IMAGE`.
 * The path ends at the first colon, as skopeo reads it.
 */
export function parseDestination(text: string): DestinationSpec {
  const trimmed = text.trim();
  const local = /^(oci|oci-archive|docker-archive|docker-daemon):(.*)$/s.exec(trimmed);
  if (local) {
    const [, transport, rest] = local as unknown as [string, 'oci' | 'oci-archive' | 'docker-archive' | 'docker-daemon', string];
    if (rest === '') throw new InvalidArgumentError(`destination "${text}": nothing after "${transport}:"`, { code: 'SLIPWAY_INVALID_REFERENCE' });
    if (transport === 'docker-daemon') return { kind: 'docker-daemon', image: rest };
    const colon = rest.indexOf(':');
    const path = colon === -1 ? rest : rest.slice(0, colon);
    const named = colon === -1 ? '' : rest.slice(colon + 1);
    if (path === '') throw new InvalidArgumentError(`destination "${text}": no path before the name`, { code: 'SLIPWAY_INVALID_REFERENCE' });
    const kind = transport === 'oci' ? 'oci-layout' : transport;
    return named === '' ? { kind, path } : { kind, path, name: named };
  }
  const transport = unsupportedDestination.exec(trimmed)?.[1];
  if (transport) {
    throw new InvalidArgumentError(`destination "${name.redactUserinfo(trimmed)}" is a ${transport}: location, which slipway does not write; a registry (registry/repository[:tag]), oci:, oci-archive:, docker-archive: or docker-daemon:`, {
      code: 'SLIPWAY_INVALID_REFERENCE',
    });
  }
  // A digest names the result it must be (crane and skopeo push by digest the same way): without a tag
  // the image is stored untagged, with one the tag is written too.
  return { kind: 'registry', reference: name.parseReference(trimmed.replace(/^docker:\/\//, '')) };
}

/** The sink for a local destination; `overwrite` lets an archive replace a file it cannot compare. */
function localSink(spec: Exclude<DestinationSpec, { kind: 'registry' }>, overwrite: boolean, stream: Writable | undefined): ImageSink {
  const archive = (named: { name?: string }) => ({ overwrite, ...(named.name === undefined ? {} : { name: named.name }), ...(stream === undefined ? {} : { stream }) });
  switch (spec.kind) {
    case 'oci-layout':
      return layout.sink(spec.path, spec.name === undefined ? {} : { tag: spec.name });
    case 'oci-archive':
      return tarball.ociArchiveSink(spec.path, archive(spec));
    case 'docker-archive':
      return tarball.dockerArchiveSink(spec.path, archive(spec));
    case 'docker-daemon':
      return daemon.sink(spec.image, { overwrite });
  }
}

/** How a local destination is shown: its transport, the path as given, and the name. */
function showDestination(spec: Exclude<DestinationSpec, { kind: 'registry' }>): string {
  if (spec.kind === 'docker-daemon') return `docker-daemon:${spec.image}`;
  const transport = spec.kind === 'oci-layout' ? 'oci' : spec.kind;
  return `${transport}:${spec.path}${spec.name === undefined ? '' : `:${spec.name}`}`;
}

/**
 * A Docker image manifest named in an OCI layout's index.json: valid (the layout spec takes any
 * descriptor; regctl, crane and containerd read it), and the digest is kept, but containers/image as
 * Debian 12 ships it (skopeo 1.9, buildah 1.28) does not find such an entry ("no descriptor found for
 * reference"; a Docker manifest list it does find). skopeo converts to OCI types when it writes a
 * layout, changing the digest; slipway keeps the bytes and says so.
 */
function dockerManifestInLayout(destination: string): string {
  return `${destination} names a Docker image manifest (${MediaType.DockerManifest}), kept byte for byte with its digest; skopeo 1.9 and buildah 1.28 do not find such an entry of an OCI layout (regctl, crane and containerd do): for those, convert it (skopeo copy --format oci, a new digest)`;
}

/** A copy into a layout, an archive file or the Docker daemon: the same engine, a local sink. */
async function transferLocal(options: CopyImageOptions, spec: Exclude<DestinationSpec, { kind: 'registry' }>, archive: ArchiveSettings | undefined): Promise<CopyImageResult> {
  const platforms = parsePlatforms(options.platforms ?? []);
  const sink = localSink(spec, options.overwrite ?? false, options.destinationStream);
  try {
    return await copyLocal(options, spec, sink, platforms, archive);
  } catch (err) {
    // A file system's refusal (ENOSPC, EROFS, ENOTDIR under the destination) as a SlipwayError with a
    // stable code, saying what was being done where, not an "unexpected error".
    if (SlipwayError.is(err) || !isErrnoError(err)) throw err;
    const errno = err;
    const where = errno.path === undefined ? '' : ` ${JSON.stringify(errno.path)}`;
    // The path says which side: the source's archive or the destination.
    const full = errno.code === 'ENOSPC' || errno.code === 'EDQUOT' ? ', the file system is full' : '';
    throw new SlipwayError('SLIPWAY_IO', `${errno.syscall ?? 'file system'}${where} failed: ${errno.code}${full} (copying ${options.source} to ${showDestination(spec)})`, { cause: err });
  } finally {
    await sink.close?.();
  }
}

/** The copy itself, into the sink transferLocal made (and closes). */
async function copyLocal(options: CopyImageOptions, spec: Exclude<DestinationSpec, { kind: 'registry' }>, sink: ImageSink, platforms: ReturnType<typeof parsePlatforms>, archive: ArchiveSettings | undefined): Promise<CopyImageResult> {
  const resolved = await resolveSource(options.source, { ...options, ...(archive?.cacheDir === undefined ? {} : { archive: { cacheDir: archive.cacheDir } }) });
  try {
    const result = await copy.copy(resolved.source, sink, engineOptions(options, platforms, options.onProgress));
    const destination = showDestination(spec);
    const warnings = [
      ...pinnedDigestWarnings(resolved.spec, result.sourceDigest),
      ...((spec.kind === 'oci-layout' || spec.kind === 'oci-archive') && result.mediaType === MediaType.DockerManifest ? [dockerManifestInLayout(destination)] : []),
    ];
    return { ...result, referrers: [], digestTags: [], warnings, source: resolved.source.name, destination, reference: `${destination}@${result.digest}` };
  } finally {
    await resolved.close();
  }
}
