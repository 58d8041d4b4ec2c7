/**
 * Build-context hashing: the exact set of files BuildKit sends, hashed reproducibly, with a stat
 * cache and a report of what changed since the last run.
 * @module
 */
export { hashContext, formatBytes, HUGE_CONTEXT_BYTES, HUGE_CONTEXT_FILES } from './hash.js';
export type { ContextChanges, ContextEntry, ContextHashResult, ContextPhase, ContextWarning, DirectorySize, HashContextOptions } from './hash.js';
export { ignoreDialectForDockerCli, parseIgnoreFile, PatternMatcher, type IgnoreDialect } from './ignore.js';
export { cacheUsage, defaultCacheDir, pruneCache } from './cache.js';
