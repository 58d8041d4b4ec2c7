/**
 * Manifest GET/HEAD/PUT/DELETE with exact bytes: fetched bytes are checked against the requested
 * digest and `Docker-Content-Digest`, pushed bytes go out untouched with `Content-Type` = mediaType.
 * @module
 */
import { DigestMismatchError, InvalidArgumentError, SlipwayError, UnsupportedMediaTypeError } from '../errors.js';
import { BodyTooLargeError } from '../internal/read.js';
import type { Reference } from '../name/reference.js';
import { RegistryError } from '../transport/errors.js';
import type { Transport } from '../transport/transport.js';
import { digestOf, isDigest, type Digest } from '../v1/digest.js';
import { maxManifestBytes, parseManifest, type Descriptor } from '../v1/manifest.js';
import { acceptedManifestTypes, isSchema1MediaType, MediaType } from '../v1/media-types.js';
import type { ManifestBytes } from '../v1/source.js';
import { manifestPath } from './paths.js';

// Every type we read, plus schema 1 last so an old image is reported as schema 1 rather than as a
// confusing 404 from registries that refuse to serve it otherwise.
const accept = [...acceptedManifestTypes, `${MediaType.DockerSchema1Signed};q=0.1`, `${MediaType.DockerSchema1};q=0.1`].join(', ');

export interface ManifestCall {
  transport: Transport;
  reference: Reference;
  /** Fetch this identifier (a digest or tag) instead of the reference's own. */
  identifier?: string;
  scopes: readonly string[];
  signal?: AbortSignal;
  /** One attempt, no retries (a mirror: see RegistryRequest.failFast). */
  failFast?: boolean;
}

/** GETs a manifest, refusing schema 1, oversize and malformed bodies, and verifying the digest. */
export async function getManifest(call: ManifestCall): Promise<ManifestBytes> {
  const { transport, reference, scopes, signal } = call;
  const identifier = call.identifier ?? reference.identifier;
  const what = `manifest ${reference.name}${isDigest(identifier) ? '@' : ':'}${identifier}`;
  let response;
  try {
    response = await transport.request({
      method: 'GET',
      registry: reference.registry,
      path: manifestPath(reference.repository, identifier),
      headers: { accept },
      scopes,
      maxBodyBytes: maxManifestBytes,
      ...(signal ? { signal } : {}),
      ...(call.failFast ? { failFast: true } : {}),
    });
  } catch (err) {
    if (SlipwayError.is(err) && err.code === 'SLIPWAY_REGISTRY' && err.cause instanceof BodyTooLargeError) {
      throw new InvalidArgumentError(`fetching ${what}: larger than the ${maxManifestBytes}-byte manifest limit`, { code: 'SLIPWAY_INVALID_MANIFEST', cause: err });
    }
    throw err;
  }
  const bytes = new Uint8Array(response.bytes.buffer, response.bytes.byteOffset, response.bytes.byteLength);
  const contentType = response.header('content-type')?.split(';')[0]?.trim();
  // Before the digest checks: distribution re-signs a schema 1 manifest on every GET, so its bytes never
  // hash to Docker-Content-Digest (the digest of the unsigned payload) and the user would be told of
  // corruption instead of the real reason.
  if (contentType && isSchema1MediaType(contentType)) throw schema1Error(contentType, what);
  const headerDigest = response.header('docker-content-digest');
  const wanted = isDigest(identifier) ? identifier : headerDigest && isDigest(headerDigest) ? headerDigest : undefined;
  const digest = digestOf(bytes, wanted);
  if (isDigest(identifier) && digest !== identifier) throw new DigestMismatchError(identifier, digest, `${what} from the registry`);
  if (headerDigest && isDigest(headerDigest) && headerDigest !== digestOf(bytes, headerDigest)) {
    throw new DigestMismatchError(headerDigest, digestOf(bytes, headerDigest), `${what}: body against the registry's Docker-Content-Digest`);
  }
  let mediaType: string;
  try {
    mediaType = parseManifest(bytes, contentType).manifest.mediaType;
  } catch (err) {
    if (err instanceof UnsupportedMediaTypeError && isSchema1MediaType(err.mediaType)) throw schema1Error(err.mediaType, what);
    if (SlipwayError.is(err)) throw new SlipwayError(err.code, `fetching ${what}: ${err.message}`, { cause: err });
    throw err;
  }
  return { descriptor: { mediaType, digest, size: bytes.byteLength }, bytes };
}

function schema1Error(mediaType: string, what: string): UnsupportedMediaTypeError {
  return new UnsupportedMediaTypeError(
    mediaType,
    `${what} is a Docker schema 1 manifest, which slipway does not support (deprecated since 2017); re-push the image with a current Docker or convert it with "skopeo copy --format v2s2"`,
  );
}

/** HEADs a manifest: its descriptor, or undefined on 404. Falls back to GET when the registry omits the digest. */
export async function headManifest(call: ManifestCall): Promise<Descriptor | undefined> {
  const { transport, reference, scopes, signal } = call;
  const identifier = call.identifier ?? reference.identifier;
  const response = await transport.request({
    method: 'HEAD',
    registry: reference.registry,
    path: manifestPath(reference.repository, identifier),
    headers: { accept },
    scopes,
    expect: [200, 404],
    ...(signal ? { signal } : {}),
    ...(call.failFast ? { failFast: true } : {}),
  });
  if (response.status === 404) return undefined;
  const digest = response.header('docker-content-digest');
  const mediaType = response.header('content-type')?.split(';')[0]?.trim();
  const length = Number(response.header('content-length'));
  if (!digest || !isDigest(digest) || !mediaType || !Number.isSafeInteger(length) || (isDigest(identifier) && digest !== identifier)) {
    // Old or odd registries omit Docker-Content-Digest on HEAD; the spec allows computing it from a GET.
    try {
      return (await getManifest(call)).descriptor;
    } catch (err) {
      if (RegistryError.is(err) && err.status === 404) return undefined;
      throw err;
    }
  }
  if (isSchema1MediaType(mediaType)) throw schema1Error(mediaType, `manifest ${reference.name}${isDigest(identifier) ? '@' : ':'}${identifier}`);
  return { mediaType, digest: digest, size: length };
}

/** What a manifest PUT learnt from the registry's answer. */
export interface PutManifestResult {
  /**
   * The `OCI-Subject` header: a registry implementing the referrers API (OCI distribution 1.1) sets it
   * when the manifest has a `subject`; without it the pusher maintains the `<alg>-<hex>` fallback tag.
   */
  subject?: Digest;
}

/** PUTs manifest bytes exactly, by tag or by digest, and checks the digest the registry reports. */
export async function putManifest(call: ManifestCall & { manifest: ManifestBytes }): Promise<PutManifestResult> {
  const { transport, reference, scopes, signal, manifest } = call;
  const identifier = call.identifier ?? manifest.descriptor.digest;
  const actual = digestOf(manifest.bytes, manifest.descriptor.digest);
  if (actual !== manifest.descriptor.digest) throw new DigestMismatchError(manifest.descriptor.digest, actual, `manifest bytes for ${reference.name}`);
  if (manifest.bytes.byteLength > maxManifestBytes) {
    throw new InvalidArgumentError(`manifest for ${reference.name} is ${manifest.bytes.byteLength} bytes, over the ${maxManifestBytes}-byte limit registries must accept`, {
      code: 'SLIPWAY_INVALID_MANIFEST',
    });
  }
  const response = await transport.request({
    method: 'PUT',
    registry: reference.registry,
    path: manifestPath(reference.repository, identifier),
    headers: { 'content-type': manifest.descriptor.mediaType },
    body: manifest.bytes,
    scopes,
    ...(signal ? { signal } : {}),
  });
  const stored = response.header('docker-content-digest');
  if (stored && isDigest(stored) && stored !== manifest.descriptor.digest) {
    throw new DigestMismatchError(manifest.descriptor.digest, stored, `manifest stored at ${reference.name}:${identifier} (the registry rewrote it)`);
  }
  const subject = response.header('oci-subject')?.trim();
  return subject && isDigest(subject) ? { subject } : {};
}

/** DELETEs a manifest by digest (the registry removes it for every tag pointing at it). */
export async function deleteManifest(call: ManifestCall & { digest: Digest }): Promise<void> {
  const { transport, reference, scopes, signal, digest } = call;
  await transport.request({
    method: 'DELETE',
    registry: reference.registry,
    path: manifestPath(reference.repository, digest),
    scopes,
    expect: [200, 202, 204],
    ...(signal ? { signal } : {}),
  });
}
