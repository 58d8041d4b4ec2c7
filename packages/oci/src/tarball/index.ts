/**
 * `docker save` archives (and OCI layout tars) as image sources, plain or gzipped.
 * @example
 * ```ts
 * const source = await tarball.open('images.tar', { image: 'busybox:1' });
 * const root = await source.root(); // a Docker v2 manifest, layers gzip-compressed once and cached
 * await source.close();
 * ```
 * @module
 */
export { open, openAny, list, TarballSource } from './source.js';
export type { TarballOptions, ArchiveFormat, ArchiveImage } from './source.js';
export { ArchiveSink, dockerArchiveSink, ociArchiveSink } from './sink.js';
export type { ArchiveSinkFormat, ArchiveSinkOptions } from './sink.js';
export { archiveDigest } from './fingerprint.js';
export type { ArchiveDigestOptions } from './fingerprint.js';
export { defaultGzipLevel, defaultCacheDir, defaultCacheMaxBytes, cacheUsage, pruneCache, pruneCacheDaily } from './compress.js';
export type { CacheUsage, CompressionStats, PruneCacheOptions } from './compress.js';
export { defaultTeeStallMs } from './tee.js';
export type { CompressedLayer, CompressedTee, CompressedTeeFactory } from './tee.js';
