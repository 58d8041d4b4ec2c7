/**
 * Platform selection over an index: one child copied as-is, or a filtered index holding a subset.
 * @module
 */
import { SlipwayError } from '../errors.js';
import { digestOf } from '../v1/digest.js';
import type { Descriptor, ImageIndex } from '../v1/manifest.js';
import { defaultPlatform, formatPlatform, normalizePlatform, platformMatches, type Platform } from '../v1/platform.js';
import type { ManifestBytes } from '../v1/source.js';

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

/** A child's platform; a child without one is linux/amd64 by convention (ggcr, Docker). */
export function childPlatform(descriptor: Descriptor): Platform {
  return descriptor.platform ?? defaultPlatform;
}

/** The platforms an index offers, formatted, attestations left out. */
export function availablePlatforms(index: ImageIndex): string[] {
  return index.manifests.filter((d) => !isAttestation(d)).map((d) => formatPlatform(normalizePlatform(childPlatform(d))));
}

/** The first child matching `wanted` (ggcr's rule: first match wins); throws listing what is there. */
export function selectChild(index: ImageIndex, wanted: Platform, sourceName: string): Descriptor {
  const found = index.manifests.find((d) => !isAttestation(d) && platformMatches(childPlatform(d), wanted));
  if (found) return found;
  const available = availablePlatforms(index);
  throw new PlatformMismatchError(
    `${sourceName}: no image for platform ${formatPlatform(wanted)}; available: ${available.join(', ') || 'none'}`,
    available,
  );
}

/**
 * A new index holding only the children matching `wanted` (first match per platform), plus the
 * attestation manifests of those children. Every other field of the index is kept and each kept
 * descriptor is byte-identical JSON; the index itself is re-serialised, so its digest changes. When
 * the selection keeps every child the original bytes come back unchanged (digest preserved).
 */
export function filterIndex(root: ManifestBytes, index: ImageIndex, wanted: readonly Platform[], sourceName: string): ManifestBytes {
  const keep = new Set<number>();
  const missing: Platform[] = [];
  for (const platform of wanted) {
    const position = index.manifests.findIndex((d) => !isAttestation(d) && platformMatches(childPlatform(d), platform));
    if (position === -1) missing.push(platform);
    else keep.add(position);
  }
  if (missing.length > 0) {
    const available = availablePlatforms(index);
    throw new PlatformMismatchError(
      `${sourceName}: no image for platform ${missing.map(formatPlatform).join(', ')}; available: ${available.join(', ') || 'none'}`,
      available,
    );
  }
  const keptDigests = new Set([...keep].map((i) => index.manifests[i]!.digest as string));
  index.manifests.forEach((d, i) => {
    const subject = d.annotations?.[referenceDigest];
    if (isAttestation(d) && subject !== undefined && keptDigests.has(subject)) keep.add(i);
  });
  if (keep.size === index.manifests.length) return root;
  // Re-parse the raw JSON so the kept descriptors and other fields are exactly what the source wrote.
  const raw = JSON.parse(Buffer.from(root.bytes).toString('utf8')) as Record<string, unknown> & { manifests: unknown[] };
  const filtered = { ...raw, manifests: raw.manifests.filter((_, i) => keep.has(i)) };
  const bytes = new TextEncoder().encode(JSON.stringify(filtered));
  return { descriptor: { mediaType: root.descriptor.mediaType, digest: digestOf(bytes, root.descriptor.digest), size: bytes.byteLength }, bytes };
}
