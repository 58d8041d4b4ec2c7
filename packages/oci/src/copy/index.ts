/**
 * Copy an image or index from any ImageSource to any ImageSink: platform selection, byte-for-byte
 * manifests, one transfer per blob, mounts within a registry, bounded parallelism, progress events.
 * @module
 */
export { copy, defaultJobs, DestinationExistsError } from './copy.js';
export type { CopyEvent, CopyOptions, CopyResult, CopyStats, CopyTotals } from './copy.js';
export {
  availablePlatforms,
  checkImagePlatform,
  filterIndex,
  indexPlatforms,
  isAttestation,
  PlatformMismatchError,
  readConfigPlatform,
  resolvePlatform,
  selectChild,
} from './select.js';
export type { PlatformDigest, PlatformManifest } from './select.js';
export { MemoryRegistry } from './memory.js';
export type { MemoryRegistryOptions, MemoryRequest } from './memory.js';
