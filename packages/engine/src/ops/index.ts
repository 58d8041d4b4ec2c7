/**
 * String-in verbs shared by the CLI and the Pulumi/Terraform providers: one options object each,
 * `signal` everywhere, explicit registry credentials before the Docker config chain.
 * @module
 */
export { createClient, normalizeAddress } from './access.js';
export type { AccessOptions, RegistryCredential } from './access.js';
export { copyImage, parseDestination, pushArchive } from './copy-image.js';
export type { CopyImageOptions, CopyImageResult, DestinationSpec, PushArchiveOptions } from './copy-image.js';
export { compileTagPattern, copyRepository, countOutcomes, RepositoryCopyError } from './copy-repository.js';
export type { CopiedTag, CopyRepositoryEvent, CopyRepositoryOptions, CopyRepositoryResult } from './copy-repository.js';
export type { CopiedReferrer } from './referrers.js';
export type { CopiedDigestTag } from './digest-tags.js';
export { getDigest, getManifest, listPlatforms, listTags } from './inspect.js';
export type { DigestResult, InspectOptions, ListTagsOptions, ManifestResult, PlatformOption, PlatformsResult, TagsResult } from './inspect.js';
export { resolveSource } from './resolve.js';
export type { ResolvedSource, ResolveSourceOptions } from './resolve.js';
export { parseSourceSpec } from './source-spec.js';
export type { SourceSpec } from './source-spec.js';
