/**
 * Manifests and indexes (OCI image spec v1.1 and Docker v2 schema 2 / manifest list), parsed from their
 * exact bytes. The bytes are what we copy; parsing only tells us what they reference.
 * @module
 */
import { InvalidArgumentError, UnsupportedMediaTypeError } from '../errors.js';
import { isDigest, type Digest } from './digest.js';
import { isImageManifestMediaType, isIndexMediaType, isSchema1MediaType, MediaType } from './media-types.js';
import type { Platform } from './platform.js';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
  data?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export type ParsedManifest = { kind: 'image'; manifest: ImageManifest } | { kind: 'index'; manifest: ImageIndex };

/** Registries must accept 4 MiB manifests (distribution-spec); anything larger is refused before parsing. */
export const maxManifestBytes = 4 * 1024 * 1024;

const invalid = (why: string, cause?: unknown) =>
  new InvalidArgumentError(`invalid manifest: ${why}`, { code: 'SLIPWAY_INVALID_MANIFEST', cause });

/**
 * Parses manifest bytes. `mediaType` is the Content-Type or descriptor media type when known; the
 * body's own `mediaType` wins when present and the two must agree. Schema 1 is refused.
 */
export function parseManifest(bytes: Uint8Array, mediaType?: string): ParsedManifest {
  if (bytes.byteLength > maxManifestBytes) throw invalid(`${bytes.byteLength} bytes exceeds the ${maxManifestBytes}-byte limit`);
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw invalid('not JSON', err);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('not a JSON object');
  const record = body as Record<string, unknown>;
  const declared = typeof record.mediaType === 'string' ? record.mediaType : undefined;
  const headerType = mediaType?.split(';')[0]?.trim();
  if (record.schemaVersion === 1 || (declared && isSchema1MediaType(declared)) || (headerType && isSchema1MediaType(headerType))) {
    throw new UnsupportedMediaTypeError(
      declared ?? headerType ?? MediaType.DockerSchema1,
      'Docker image manifest schema 1 is not supported (deprecated since 2017); re-push the image with a current Docker or convert it with "skopeo copy --format v2s2"',
    );
  }
  if (record.schemaVersion !== 2) throw invalid(`schemaVersion ${JSON.stringify(record.schemaVersion)}, want 2`);
  if (declared && headerType && declared !== headerType && headerType !== 'application/json' && headerType !== 'application/octet-stream') {
    // The other type comes from the response's Content-Type or from the index entry naming this manifest.
    throw invalid(`body says mediaType "${declared}" but its Content-Type or index entry says "${headerType}"`);
  }
  let effective = declared ?? (headerType !== 'application/json' && headerType !== 'application/octet-stream' ? headerType : undefined);
  // OCI allows mediaType to be omitted; infer it from the shape as the spec's guidance does. A
  // `manifests` key of any value makes an index, so `"manifests": null` is reported as a bad index,
  // not as an image manifest without a config.
  if (!effective) effective = 'manifests' in record ? MediaType.OciIndex : MediaType.OciManifest;
  if (isIndexMediaType(effective)) {
    if (!Array.isArray(record.manifests)) throw invalid('index has no "manifests" array');
    const manifests = record.manifests.map((d, i) => checkDescriptor(d, `manifests[${i}]`));
    return { kind: 'index', manifest: { ...(record as object), mediaType: effective, manifests } as ImageIndex };
  }
  if (isImageManifestMediaType(effective)) {
    const config = checkDescriptor(record.config, 'config');
    if (!Array.isArray(record.layers)) throw invalid('manifest has no "layers" array');
    const layers = record.layers.map((d, i) => checkDescriptor(d, `layers[${i}]`));
    const subject = record.subject === undefined ? undefined : checkDescriptor(record.subject, 'subject');
    return { kind: 'image', manifest: { ...(record as object), mediaType: effective, config, layers, ...(subject ? { subject } : {}) } as ImageManifest };
  }
  throw new UnsupportedMediaTypeError(effective, `unsupported manifest media type "${effective}"`);
}

function checkDescriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null) throw invalid(`${where} is not an object`);
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw invalid(`${where} has no mediaType`);
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) throw invalid(`${where} has invalid digest ${JSON.stringify(d.digest)}`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`${where} has invalid size ${JSON.stringify(d.size)}`);
  return d as unknown as Descriptor;
}

/** The descriptors a manifest references that are blobs (config, layers), as opposed to child manifests. */
export function blobDescriptors(manifest: ImageManifest): Descriptor[] {
  return [manifest.config, ...manifest.layers];
}

/** A layer a registry does not store (a Windows base layer): manifests refer to it by URL, and copies leave it there. */
export function isForeignLayer(descriptor: Descriptor): boolean {
  return (descriptor.mediaType === MediaType.DockerForeignLayerGzip || descriptor.mediaType.includes('nondistributable')) && (descriptor.urls?.length ?? 0) > 0;
}
