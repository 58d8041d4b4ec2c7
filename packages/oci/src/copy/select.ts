/**
 * Platform selection over an index: one child copied as-is, or a filtered index holding a subset.
 * @module
 */
import type { Readable } from 'node:stream';
import { DigestMismatchError, InvalidArgumentError, SlipwayError, UnsupportedMediaTypeError } from '../errors.js';
import { digestOf, type Digest } from '../v1/digest.js';
import { parseManifest, type Descriptor, type ImageIndex, type ImageManifest } from '../v1/manifest.js';
import { isImageConfigMediaType, isImageManifestMediaType, isIndexMediaType, isManifestMediaType } from '../v1/media-types.js';
import { defaultPlatform, formatPlatform, normalizePlatform, platformMatches, preferredVariants, type Platform } from '../v1/platform.js';
import type { CallOptions, ImageSource, ManifestBytes } from '../v1/source.js';

/** The requested platform is not in the source (index without a matching child, or a single image of another platform). */
export class PlatformMismatchError extends SlipwayError {
  constructor(
    message: string,
    /** Platforms the source does have, formatted (`linux/arm/v7`). */
    readonly available: string[],
  ) {
    super('SLIPWAY_PLATFORM_MISMATCH', message);
  }
}

// BuildKit stores provenance/SBOM as `unknown/unknown` children that point at the image they describe
// (docker/buildx docs "attestation storage"); they are never a platform choice, but travel with their image.
const referenceType = 'vnd.docker.reference.type';
const referenceDigest = 'vnd.docker.reference.digest';

export function isAttestation(descriptor: Descriptor): boolean {
  return descriptor.annotations?.[referenceType] === 'attestation-manifest';
}

/** A child's platform as its descriptor states it; without one, linux/amd64 by convention (ggcr, Docker). */
export function childPlatform(descriptor: Descriptor): Platform {
  return descriptor.platform ?? defaultPlatform;
}

/** How deep indexes inside an index are followed to find a platform's image. */
export const maxNestedIndexes = 4;
/** Entries looked at, all levels together: a hostile index must not cost thousands of requests. */
export const maxIndexEntries = 4096;

/** What the source holds is out of bounds: bad content (exit 3 in the CLI's terms), not bad usage. */
export function invalidIndex(message: string): SlipwayError {
  return new SlipwayError('SLIPWAY_INVALID_MANIFEST', message);
}

/**
 * One image an index offers: what {@link platformEntries} finds behind each entry.
 */
export interface PlatformEntry {
  /** The image manifest (for an entry that is itself an index, one of that index's images). */
  descriptor: Descriptor;
  /** Its platform; undefined for what is not an image of any platform (an artifact): never selected. */
  platform: Platform | undefined;
  /** The position, in the index, of the entry it was found behind. */
  position: number;
  /** The manifest's bytes (verified) when finding its platform meant reading it. */
  manifest?: ManifestBytes;
  /**
   * Found inside a nested index: its descriptor exactly as that index wrote it (JSON), and the
   * attestation manifests listed there for it, so a platform subset can list it directly.
   */
  nested?: { raw: unknown; attestations: unknown[] };
}

/**
 * The images an index offers and their platforms, attestations left out. An entry's `platform` field
 * is taken as written; an image entry without one gets the platform its config names (one manifest
 * and one config read: guessing linux/amd64, as ggcr does, picked an arm64 image for amd64), and an
 * entry that is itself an index contributes its own images, so selecting a platform ends at an image
 * manifest. An index whose entries all state platforms, the common case, costs no request.
 */
export async function platformEntries(source: ImageSource, index: ImageIndex, options: CallOptions = {}, configs?: Map<string, Buffer>): Promise<PlatformEntry[]> {
  const entries: PlatformEntry[] = [];
  // A manifest that must be read is read once, wherever it is listed again: a nested index named N
  // times would otherwise be read N times per level.
  const read = new Set<string>();
  let looked = 0;
  /** `raw`: a nested index's own JSON entries, beside `manifests` parsed from them. */
  const walk = async (manifests: readonly Descriptor[], position: number | undefined, depth: number, raw?: readonly unknown[]): Promise<void> => {
    // A nested index's attestations by the image they are for, gathered once per index rather than
    // searched for each image (4096 entries would be 16 million comparisons).
    const attestationsFor = new Map<string, unknown[]>();
    if (raw !== undefined) {
      manifests.forEach((d, j) => {
        const subject = d.annotations?.[referenceDigest];
        if (isAttestation(d) && subject !== undefined) attestationsFor.set(subject, [...(attestationsFor.get(subject) ?? []), raw[j]]);
      });
    }
    const nestedOf = (i: number, digest: string): PlatformEntry['nested'] => (raw === undefined ? undefined : { raw: raw[i], attestations: attestationsFor.get(digest) ?? [] });
    for (const [i, descriptor] of manifests.entries()) {
      // Counted before attestations are skipped: 12 000 entries marked as attestations cost nothing
      // here, but the copy reads and writes each one.
      if (++looked > maxIndexEntries) throw invalidIndex(`${source.name}: an index with more than ${maxIndexEntries} entries, nested ones included`);
      if (isAttestation(descriptor)) continue;
      const at = position ?? i;
      const mustRead = isIndexMediaType(descriptor.mediaType) || (!descriptor.platform && isImageManifestMediaType(descriptor.mediaType));
      if (mustRead && read.has(descriptor.digest)) continue;
      if (mustRead) read.add(descriptor.digest);
      if (isIndexMediaType(descriptor.mediaType)) {
        if (depth >= maxNestedIndexes) throw invalidIndex(`${source.name}: indexes nested more than ${maxNestedIndexes} deep under entry ${at}`);
        const { bytes } = await verifiedManifest(source, descriptor, options);
        const nested = parseManifest(bytes, descriptor.mediaType);
        if (nested.kind === 'index') {
          const rawEntries = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { manifests: unknown[] }).manifests;
          await walk(nested.manifest.manifests, at, depth + 1, rawEntries);
        }
        continue;
      }
      const nested = nestedOf(i, descriptor.digest);
      if (descriptor.platform || !isImageManifestMediaType(descriptor.mediaType)) {
        entries.push({ descriptor, platform: descriptor.platform, position: at, ...(nested ? { nested } : {}) });
        continue;
      }
      const manifest = await verifiedManifest(source, descriptor, options);
      const parsed = parseManifest(manifest.bytes, descriptor.mediaType);
      const platform = parsed.kind === 'image' ? await readConfigPlatform(source, parsed.manifest, options, configs) : undefined;
      entries.push({ descriptor: platform ? { ...descriptor, platform } : descriptor, platform, position: at, manifest, ...(nested ? { nested } : {}) });
    }
  };
  await walk(index.manifests, undefined, 0);
  return entries;
}

/** The platforms entries offer, formatted, with the image manifest serving each. */
export function entryPlatforms(entries: readonly PlatformEntry[]): PlatformDigest[] {
  const seen = new Set<string>();
  return entries.flatMap((e) => {
    // A platform without os or architecture (`{}` passes a registry's checks) names nothing.
    if (typeof e.platform?.os !== 'string' || typeof e.platform.architecture !== 'string' || e.platform.os === '' || e.platform.architecture === '') return [];
    const platform = formatPlatform(normalizePlatform(e.platform));
    // An index may list the same child twice: one platform, one digest, listed once.
    const key = `${platform} ${e.descriptor.digest}`;
    if (seen.has(key)) return [];
    seen.add(key);
    return [{ platform, digest: e.descriptor.digest }];
  });
}

/** The entries an index's descriptors offer as they are written (no request): for callers without a source. */
export function writtenEntries(descriptors: readonly Descriptor[]): PlatformEntry[] {
  return descriptors.flatMap((descriptor, position) => (isAttestation(descriptor) ? [] : [{ descriptor, platform: childPlatform(descriptor), position }]));
}

/** The platforms an index offers, formatted, attestations left out. */
export function availablePlatforms(index: ImageIndex | readonly PlatformEntry[]): string[] {
  return entryPlatforms('manifests' in index ? writtenEntries(index.manifests) : index).map((p) => p.platform);
}

function noImageFor(sourceName: string, wanted: readonly Platform[], entries: readonly PlatformEntry[]): PlatformMismatchError {
  const available = availablePlatforms(entries);
  return new PlatformMismatchError(
    `${sourceName}: no image for platform ${wanted.map(formatPlatform).join(', ')}; available: ${available.join(', ') || 'none'}`,
    available,
  );
}

/**
 * The entry serving `wanted`: the first that matches (ggcr's rule), except that arm named without a
 * variant takes v7 first, then v6, then v5, as Docker and containerd do ({@link preferredVariants}).
 */
function firstMatch(entries: readonly PlatformEntry[], wanted: Platform): PlatformEntry | undefined {
  const find = (platform: Platform) => entries.find((e) => e.platform !== undefined && platformMatches(e.platform, platform));
  for (const variant of preferredVariants(wanted) ?? []) {
    const found = find({ ...wanted, variant });
    if (found) return found;
  }
  return find(wanted);
}

/** {@link firstMatch}, or an error listing what is there. */
export function selectEntry(entries: readonly PlatformEntry[], wanted: Platform, sourceName: string): PlatformEntry {
  const found = firstMatch(entries, wanted);
  if (found) return found;
  throw noImageFor(sourceName, [wanted], entries);
}

/** {@link selectEntry} over the platforms an index's entries state (no request). */
export function selectChild(index: ImageIndex, wanted: Platform, sourceName: string): Descriptor {
  return selectEntry(writtenEntries(index.manifests), wanted, sourceName).descriptor;
}

/**
 * A new index holding only the entries serving `wanted` (first match per platform), plus the
 * attestation manifests of those children. Every other field of the index is kept and each kept
 * descriptor is byte-identical JSON; the index itself is re-serialised, so its digest changes. When
 * the selection keeps every child the original bytes come back unchanged (digest preserved).
 * `entries`: from {@link platformEntries}; by default the platforms the entries state. An entry that
 * is itself an index is kept whole when all of its images are wanted; when only some are, those
 * images are listed in the new index directly, as the nested index wrote them, with their
 * attestations (keeping the nested index would copy platforms nobody asked for, and a filtered copy
 * of it would be a manifest the source never had).
 */
export function filterIndex(root: ManifestBytes, index: ImageIndex, wanted: readonly Platform[], sourceName: string, entries: readonly PlatformEntry[] = writtenEntries(index.manifests)): ManifestBytes {
  const keep = new Set<number>();
  /** Images chosen inside nested indexes, by the position of the entry they were found behind. */
  const chosenInside = new Map<number, PlatformEntry[]>();
  const missing: Platform[] = [];
  const chosenBy = new Map<string, Platform>();
  for (const platform of wanted) {
    const found = firstMatch(entries, platform);
    if (!found) {
      missing.push(platform);
      continue;
    }
    // `linux/arm` and `linux/arm/v7` are two spellings of one choice here: say so rather than
    // quietly write a one-image index for two platforms.
    const earlier = chosenBy.get(found.descriptor.digest);
    if (earlier) {
      throw new InvalidArgumentError(
        `platforms ${formatPlatform(earlier)} and ${formatPlatform(platform)} both select ${found.descriptor.digest} (${formatPlatform(normalizePlatform(found.platform!))}) in ${sourceName}; list it once`,
        { code: 'SLIPWAY_INVALID_PLATFORM' },
      );
    }
    chosenBy.set(found.descriptor.digest, platform);
    if (found.nested) chosenInside.set(found.position, [...(chosenInside.get(found.position) ?? []), found]);
    else keep.add(found.position);
  }
  if (missing.length > 0) throw noImageFor(sourceName, missing, entries);
  /** Images picked out of a nested index (descriptor JSON), listed where that index was. */
  const pickedOut = new Map<number, unknown[]>();
  for (const [position, chosen] of chosenInside) {
    const offered = new Set(entries.filter((e) => e.position === position && e.platform !== undefined).map((e) => e.descriptor.digest));
    if (offered.size === new Set(chosen.map((e) => e.descriptor.digest)).size) keep.add(position);
    // An image the nested index listed without a platform (read from its config) gets it written:
    // listed directly, it is one platform of the subset, and a Docker manifest list requires one.
    else pickedOut.set(position, chosen.flatMap((e) => [withPlatform(e.nested!.raw, e.platform), ...e.nested!.attestations]));
  }
  const keptDigests = new Set([...keep].map((i) => index.manifests[i]!.digest as string));
  index.manifests.forEach((d, i) => {
    const subject = d.annotations?.[referenceDigest];
    if (isAttestation(d) && subject !== undefined && keptDigests.has(subject)) keep.add(i);
  });
  if (keep.size === index.manifests.length) return root;
  // Re-parse the raw JSON so the kept descriptors and other fields are exactly what the source wrote.
  const raw = JSON.parse(Buffer.from(root.bytes).toString('utf8')) as Record<string, unknown> & { manifests: unknown[] };
  const filtered = { ...raw, manifests: raw.manifests.flatMap((entry, i) => (keep.has(i) ? [entry] : (pickedOut.get(i) ?? []))) };
  const bytes = new TextEncoder().encode(JSON.stringify(filtered));
  return { descriptor: { mediaType: root.descriptor.mediaType, digest: digestOf(bytes, root.descriptor.digest), size: bytes.byteLength }, bytes };
}

/** A descriptor's JSON as written, given `platform` when it states none. */
function withPlatform(raw: unknown, platform: Platform | undefined): unknown {
  if (platform === undefined || typeof raw !== 'object' || raw === null || 'platform' in raw) return raw;
  return { ...raw, platform };
}

/**
 * Refuses, by name, an index entry slipway cannot walk: anything but an image manifest or an index (an
 * unknown type, or schema 1). Without this the entry's bytes were parsed against a type they do not
 * declare and the error blamed the registry ("served as").
 */
export function checkChildMediaType(sourceName: string, child: Descriptor): void {
  if (isManifestMediaType(child.mediaType)) return;
  throw new UnsupportedMediaTypeError(
    child.mediaType,
    `${sourceName}: index entry ${child.digest} has media type "${child.mediaType}", which is neither an image manifest nor an index; slipway cannot copy it (select platforms that leave it out)`,
  );
}

/** A platform and the image manifest digest that serves it. */
export interface PlatformDigest {
  /** Formatted and normalised: `linux/arm/v7`, `linux/arm64`. */
  platform: string;
  digest: Digest;
}

/** The children of an index as platform/digest pairs, as their descriptors state them, attestations left out. */
export function indexPlatforms(descriptors: readonly Descriptor[]): PlatformDigest[] {
  return entryPlatforms(writtenEntries(descriptors));
}

/**
 * `manifest`, once its bytes are checked against `want` (by default its own descriptor's digest):
 * cheap, and the digest is the whole point of a copy.
 */
export function verifiedBytes(manifest: ManifestBytes, what: string, want: Digest = manifest.descriptor.digest): ManifestBytes {
  const actual = digestOf(manifest.bytes, want);
  if (actual !== want) throw new DigestMismatchError(want, actual, what);
  return manifest;
}

/** The manifest `descriptor` names, read from `source` and checked against that digest. */
export async function verifiedManifest(source: ImageSource, descriptor: Descriptor, options: CallOptions): Promise<ManifestBytes> {
  return verifiedBytes(await source.manifest(descriptor, options), `${source.name} manifest ${descriptor.digest}`, descriptor.digest);
}

/**
 * The CNCF wasm artifact's config, which names a platform as an image config does (`"os": "wasip1",
 * "architecture": "wasm"`): an index lists it as wasip1/wasm, and read on its own the same manifest
 * said it named no platform.
 */
const wasmConfigType = 'application/vnd.wasm.config.v0+json';

// Image configs are small; the cap keeps a hostile descriptor from making us buffer gigabytes.
const maxConfigBytes = 16 * 1024 * 1024;

/**
 * os/architecture/variant/os.version from an image's config blob (one blob read); undefined when the
 * config is not an image config (an artifact) or names no platform. `configs`, when given, receives
 * the verified config bytes by digest, so a copy uploads them without downloading them again, and
 * a config already in it is not read again.
 */
export async function readConfigPlatform(
  source: ImageSource,
  manifest: ImageManifest,
  options: CallOptions = {},
  configs?: Map<string, Buffer>,
): Promise<Platform | undefined> {
  const config = manifest.config;
  if (!isImageConfigMediaType(config.mediaType) && config.mediaType !== wasmConfigType) return undefined;
  if (config.size > maxConfigBytes) throw invalidIndex(`${source.name}: config of ${config.size} bytes exceeds ${maxConfigBytes}`);
  // Read and verified already (another platform's image, another tag's copy sharing the map).
  let bytes = configs?.get(config.digest);
  if (!bytes) {
    bytes = await readAll(await source.blob(config, options), config.size);
    const actual = digestOf(bytes, config.digest);
    if (actual !== config.digest) throw new DigestMismatchError(config.digest, actual, `${source.name} config`);
    configs?.set(config.digest, bytes);
  }
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined; // not an image config after all: no platform to read
  }
  // `crane append` writes a config with empty os and architecture: no platform, as absent ones are.
  if (typeof body !== 'object' || body === null || typeof body.os !== 'string' || typeof body.architecture !== 'string' || body.os === '' || body.architecture === '') return undefined;
  const platform: Platform = { os: body.os, architecture: body.architecture };
  if (typeof body.variant === 'string' && body.variant !== '') platform.variant = body.variant;
  if (typeof body['os.version'] === 'string' && body['os.version'] !== '') platform['os.version'] = body['os.version'];
  return platform;
}

/** Throws SLIPWAY_PLATFORM_MISMATCH unless a single image's platform satisfies every wanted one (crane copies the wrong arch silently). */
export function checkImagePlatform(sourceName: string, platform: Platform | undefined, wanted: readonly Platform[]): void {
  for (const p of wanted) {
    if (platform && platformMatches(platform, p)) continue;
    const have = platform ? formatPlatform(normalizePlatform(platform)) : undefined;
    throw new PlatformMismatchError(
      `${sourceName} is a single ${have ? `${have} image` : 'manifest whose config names no platform'}, not ${formatPlatform(p)}`,
      have ? [have] : [],
    );
  }
}

export interface PlatformManifest {
  /** The root's bytes when it is the image itself, otherwise the selected child's. */
  manifest: ManifestBytes;
  /** The root (index) digest, which differs from the manifest's when a child was selected. */
  rootDigest: Digest;
  platforms: PlatformDigest[];
}

/**
 * Resolves a root manifest to what one platform (or all, when `platform` is undefined) names: the
 * root itself, the matching child of an index (fetched, verified), or a single image whose config is
 * checked. `platforms` lists what the result offers; `configs` as for readConfigPlatform.
 */
export async function resolvePlatform(
  source: ImageSource,
  root: ManifestBytes,
  platform: Platform | undefined,
  options: CallOptions = {},
  configs?: Map<string, Buffer>,
): Promise<PlatformManifest> {
  const parsed = parseManifest(root.bytes, root.descriptor.mediaType);
  const rootDigest = root.descriptor.digest;
  if (parsed.kind === 'index') {
    const entries = await platformEntries(source, parsed.manifest, options, configs);
    if (platform === undefined) return { manifest: root, rootDigest, platforms: entryPlatforms(entries) };
    const chosen = selectEntry(entries, platform, source.name);
    checkChildMediaType(source.name, chosen.descriptor);
    const manifest = chosen.manifest ?? (await verifiedManifest(source, chosen.descriptor, options));
    return { manifest, rootDigest, platforms: entryPlatforms([chosen]) };
  }
  const have = await readConfigPlatform(source, parsed.manifest, options, configs);
  checkImagePlatform(source.name, have, platform ? [platform] : []);
  return { manifest: root, rootDigest, platforms: have ? [{ platform: formatPlatform(normalizePlatform(have)), digest: rootDigest }] : [] };
}

async function readAll(stream: Readable, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    length += buffer.byteLength;
    if (length > size) {
      stream.destroy();
      break;
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}
