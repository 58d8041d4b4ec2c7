/**
 * Copy an image or index from any ImageSource to any ImageSink: platform selection, byte-for-byte
 * manifests, one transfer per blob, mounts within a registry, bounded parallelism, progress events.
 * @module
 */
export { copy, defaultJobs, DestinationExistsError, sharedCopyState } from './copy.js';
export type { CopyEvent, CopyOptions, CopyResult, CopyStats, CopyTotals, SharedCopyState } from './copy.js';
export {
  availablePlatforms,
  checkImagePlatform,
  entryPlatforms,
  filterIndex,
  indexPlatforms,
  isAttestation,
  PlatformMismatchError,
  platformEntries,
  readConfigPlatform,
  resolvePlatform,
  selectChild,
  selectEntry,
} from './select.js';
export type { PlatformDigest, PlatformEntry, PlatformManifest } from './select.js';
export { MemoryRegistry } from './memory.js';
export type { MemoryRegistryOptions, MemoryRequest } from './memory.js';
