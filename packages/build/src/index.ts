/**
 * @slipway/build: the build-context hasher and the builders (docker, buildah, buildctl, buildx).
 * @module
 */
export * from './build.js';
export * from './options.js';
export * as builders from './builders/index.js';
export * as context from './context/index.js';
export { hashContext } from './context/index.js';
export type { ContextChanges, ContextEntry, ContextHashResult, ContextWarning, HashContextOptions, IgnoreDialect } from './context/index.js';
