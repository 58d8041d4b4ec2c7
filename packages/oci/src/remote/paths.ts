/**
 * Distribution API paths and token scopes for one repository.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#endpoints
 * @module
 */

export const manifestPath = (repository: string, identifier: string): string => `/v2/${repository}/manifests/${identifier}`;
export const blobPath = (repository: string, digest: string): string => `/v2/${repository}/blobs/${digest}`;
export const uploadsPath = (repository: string): string => `/v2/${repository}/blobs/uploads/`;
export const tagsPath = (repository: string): string => `/v2/${repository}/tags/list`;
export const referrersPath = (repository: string, digest: string): string => `/v2/${repository}/referrers/${digest}`;
/**
 * The tag named after a digest, `<alg>-<hex>` (distribution spec v1.1's referrers tag schema, where
 * registries without the referrers API keep the index of a manifest's referrers; cosign's
 * `<alg>-<hex>.sig` tags extend the same name).
 */
export const referrersTag = (digest: string): string => digest.replace(':', '-');

export const pullScope = (repository: string): string => `repository:${repository}:pull`;
export const pushScope = (repository: string): string => `repository:${repository}:pull,push`;
export const deleteScope = (repository: string): string => `repository:${repository}:delete`;

/** The `rel="next"` target of a `Link` header (RFC 8288), as tags and referrers pagination use. */
export function nextLink(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (match && /;\s*rel="?next"?/i.test(match[2] ?? '')) return match[1];
  }
  return undefined;
}
