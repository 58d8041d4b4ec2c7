/**
 * The registry as an image source and sink, plus the calls around it (HEAD, tags, delete, referrers).
 * @example
 * ```ts
 * const client = remote.createRegistryClient({ credentials: { 'localhost:5000': { username, password } } });
 * const digest = (await client.head('localhost:5000/app:1.0'))?.digest;
 * await client.close();
 * ```
 * @module
 */
export { createRegistryClient } from './client.js';
export { referrersTag } from './paths.js';
export type { PullOptions, ReferrersOptions, RegistryClient, RegistryClientOptions } from './client.js';
export type { PutManifestResult } from './manifests.js';
export { defaultChunkSize } from './upload.js';
export { defaultStreamBuffer, startStreamedUpload } from './streamed-upload.js';
export type { StreamedUpload, StreamedUploadCall, StreamedUploadOutcome } from './streamed-upload.js';
