/**
 * Read-only ops: `getDigest`, `getManifest`, `listPlatforms`, `listTags`. Each accepts anything
 * resolveSource does; a registry reference without platform costs one HEAD (`getDigest`) or one GET.
 * @module
 */
import { copy, InvalidArgumentError, isImageConfigMediaType, name, NotFoundError, parseManifest, parsePlatform, RegistryError, type Digest, type remote } from '@slipway/oci';
import { createClient, type AccessOptions } from './access.js';
import { pinnedDigestWarnings, resolveSource, type ResolvedSource } from './resolve.js';
import { parseSourceSpec } from './source-spec.js';
import { checkOptions } from './check-options.js';

export interface InspectOptions extends AccessOptions {
  /** What to look at: a registry reference, an archive, a layout, a daemon image (see resolveSource). */
  reference: string;
  /** Which image of a multi-image archive or layout. */
  image?: string;
}

export interface PlatformOption {
  /** `os/arch[/variant]`: resolve an index to that child; check a single image's config against it. */
  platform?: string;
}

export interface DigestResult {
  /** The source as resolved. */
  reference: string;
  digest: Digest;
  mediaType: string;
  size: number;
  /** Set when a platform was asked for: the matched platform, normalised. */
  platform?: string;
  /** Set when a platform was asked for: the digest of the root (the index, when a child was chosen). */
  rootDigest?: Digest;
  /** Set when there is something to say: a `docker-daemon:NAME@D` that reads as another digest. */
  warnings?: string[];
}

/** The digest a reference resolves to: one HEAD for a registry; with a platform, the child's digest. */
export async function getDigest(options: InspectOptions & PlatformOption): Promise<DigestResult> {
  checkOptions('getDigest', options, { reference: 'string', image: 'string?', platform: 'string?' });
  const spec = await parseSourceSpec(options.reference);
  if (spec.kind === 'registry' && options.platform === undefined) {
    const reference = name.parseReference(spec.reference);
    const client = createClient(options);
    try {
      const descriptor = await client.head(reference, { mirrors: true, ...(options.signal ? { signal: options.signal } : {}) });
      if (!descriptor) throw new NotFoundError(`${reference.toString()}: manifest not found`);
      return { reference: reference.toString(), digest: descriptor.digest, mediaType: descriptor.mediaType, size: descriptor.size };
    } finally {
      await client.close();
    }
  }
  const { manifest, result } = await withPlatform(options);
  const { digest, mediaType, size } = manifest.descriptor;
  return { ...result, digest, mediaType, size };
}

export interface ManifestResult extends DigestResult {
  /** Exactly the stored bytes: they hash to `digest`. */
  bytes: Uint8Array;
}

/** The manifest or index bytes, exactly as stored; with a platform, the matching child's. */
export async function getManifest(options: InspectOptions & PlatformOption): Promise<ManifestResult> {
  checkOptions('getManifest', options, { reference: 'string', image: 'string?', platform: 'string?' });
  const { manifest, result } = await withPlatform(options);
  const { digest, mediaType, size } = manifest.descriptor;
  return { ...result, digest, mediaType, size, bytes: manifest.bytes };
}

export interface PlatformsResult {
  reference: string;
  /** The root's digest (index or single image). */
  digest: Digest;
  mediaType: string;
  /** An index's children (attestations left out), or a single image's config platform. */
  platforms: copy.PlatformDigest[];
  /** For an index: how many manifests it lists, attestations and artifacts included (0: an empty index). */
  entries?: number;
  /** For a manifest that is not an image: its artifactType, or else its config's media type. */
  artifactType?: string;
  /** Set when there is something to say: a `docker-daemon:NAME@D` that reads as another digest. */
  warnings?: string[];
}

/** The platforms a source offers: one GET for an index, plus a config read for a single image. */
export async function listPlatforms(options: InspectOptions): Promise<PlatformsResult> {
  checkOptions('listPlatforms', options, { reference: 'string', image: 'string?' });
  return withSource(options, async (resolved) => {
    const root = await resolved.source.root(options.signal ? { signal: options.signal } : {});
    const { platforms } = await copy.resolvePlatform(resolved.source, root, undefined, options.signal ? { signal: options.signal } : {});
    const warnings = pinnedDigestWarnings(resolved.spec, root.descriptor.digest);
    // What the root is, so "no platform" can say why: an empty index, or an artifact of which type.
    const parsed = parseManifest(root.bytes, root.descriptor.mediaType);
    const kind =
      parsed.kind === 'index'
        ? { entries: parsed.manifest.manifests.length }
        : isImageConfigMediaType(parsed.manifest.config.mediaType) && parsed.manifest.artifactType === undefined
          ? {}
          : { artifactType: parsed.manifest.artifactType ?? parsed.manifest.config.mediaType };
    return { reference: resolved.source.name, digest: root.descriptor.digest, mediaType: root.descriptor.mediaType, platforms, ...kind, ...(warnings.length > 0 ? { warnings } : {}) };
  });
}

export interface ListTagsOptions extends AccessOptions {
  /** `registry/repository`, no tag or digest. */
  repository: string;
}

export interface TagsResult {
  repository: string;
  tags: string[];
}

/** Every tag of a repository (following the registry's pagination). */
export async function listTags(options: ListTagsOptions): Promise<TagsResult> {
  checkOptions('listTags', options, { repository: 'string' });
  const repository = name.parseRepository(options.repository.trim().replace(/^docker:\/\//, ''));
  const client = createClient(options);
  try {
    return { repository: repository.toString(), tags: await listRepositoryTags(client, repository, options.signal) };
  } finally {
    await client.close();
  }
}

/** Every tag of `repository` through `client`; a repository the registry does not know is a NotFoundError. */
export async function listRepositoryTags(client: remote.RegistryClient, repository: name.Repository, signal: AbortSignal | undefined): Promise<string[]> {
  try {
    return await client.listTags(repository, signal ? { signal } : {});
  } catch (err) {
    // NAME_UNKNOWN: the same code as every other op's missing thing, the registry's words kept.
    if (RegistryError.is(err) && err.notFound) throw new NotFoundError(`repository ${repository.toString()} not found: ${err.message}`, { cause: err });
    throw err;
  }
}

async function withSource<T>(options: InspectOptions, run: (resolved: ResolvedSource) => Promise<T>): Promise<T> {
  const resolved = await resolveSource(options.reference, options);
  try {
    return await run(resolved);
  } finally {
    await resolved.close();
  }
}

async function withPlatform(options: InspectOptions & PlatformOption) {
  // One manifest answers: a list ("malformed component amd64,linux" before) is named as such.
  if ((options.platform?.split(',').filter((part) => part.trim() !== '').length ?? 0) > 1) {
    throw new InvalidArgumentError(`invalid platform ${JSON.stringify(options.platform)}: a list, where one platform names one manifest (want os/arch[/variant][:osversion], as linux/amd64)`, {
      code: 'SLIPWAY_INVALID_PLATFORM',
    });
  }
  const platform = options.platform === undefined ? undefined : parsePlatform(options.platform);
  return withSource(options, async (resolved) => {
    const call = options.signal ? { signal: options.signal } : {};
    const root = await resolved.source.root(call);
    const { manifest, rootDigest, platforms } = await copy.resolvePlatform(resolved.source, root, platform, call);
    const result: Omit<DigestResult, 'digest' | 'mediaType' | 'size'> = { reference: resolved.source.name };
    const warnings = pinnedDigestWarnings(resolved.spec, root.descriptor.digest);
    if (warnings.length > 0) result.warnings = warnings;
    if (platform !== undefined) {
      result.rootDigest = rootDigest;
      if (platforms[0]) result.platform = platforms[0].platform;
    }
    return { manifest, result };
  });
}
