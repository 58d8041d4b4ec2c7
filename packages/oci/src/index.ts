/**
 * @slipway/oci: OCI registry client, image sources and sinks, and the copy engine.
 * Folders are namespaces: `import { remote, tarball } from '@slipway/oci'`.
 * @module
 */
export * from './errors.js';
export * from './v1/index.js';
export * as name from './name/index.js';
export * as copy from './copy/index.js';
export * as auth from './auth/index.js';
export * as transport from './transport/index.js';
export * as remote from './remote/index.js';
export * as tarball from './tarball/index.js';
export * as layout from './layout/index.js';
export * as daemon from './daemon/index.js';
// `testing` (the ImageSource conformance suite) is a separate entry, `@slipway/oci/testing`, so that
// importing the library never loads node:test.
export { RegistryError, NetworkError } from './transport/errors.js';
export type { RegistryErrorDetail } from './transport/errors.js';
export { createRegistryClient } from './remote/client.js';
export type { RegistryClient, RegistryClientOptions } from './remote/client.js';
export type { Credentials, Keychain } from './auth/credentials.js';
export { parseReference, parseRepository } from './name/reference.js';
// For ops that fan one caller's signal out to many requests of their own.
export { linkSignals } from './internal/signals.js';
export type { LinkedSignal } from './internal/signals.js';
// For ops that run many calls side by side, stopping them all at the first failure.
export { mapBounded } from './internal/tar-scratch.js';
// For caches that tidy themselves once a day (oci's layer cache, build's context cache).
export { atMostDaily } from './internal/daily.js';
// For messages (here and in the ops) that suggest a command to type.
export { shellWord } from './internal/shell.js';
// For a front end's exit hook: scratch directories (daemon export spools) this process still holds.
export { removeScratchDirectoriesSync } from './internal/tar-scratch.js';
export type { Reference, Repository } from './name/reference.js';
