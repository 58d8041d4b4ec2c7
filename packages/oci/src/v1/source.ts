/**
 * The two interfaces every place bytes live implements: ImageSource (registry, docker-save archive,
 * OCI layout directory or tar, Docker daemon) and ImageSink (registry, OCI layout). The copy engine
 * only talks to these, so a new place is one new implementation, never a change to copy.
 * @module
 */
import type { Readable } from 'node:stream';
import type { Descriptor } from './manifest.js';
import type { Platform } from './platform.js';

export interface CallOptions {
  signal?: AbortSignal;
}

/** A manifest's exact bytes with the descriptor (mediaType, digest, size) that addresses them. */
export interface ManifestBytes {
  descriptor: Descriptor;
  bytes: Uint8Array;
}

/** Where a source's blobs live when it is a registry repository: lets a sink on the same registry mount instead of copy. */
export interface RepositoryLocation {
  /** Registry host as used on the wire, e.g. `127.0.0.1:5000` or `registry-1.docker.io`. */
  registry: string;
  repository: string;
}

export interface ImageSource {
  /** What this is, for messages and progress (never contains credentials). */
  readonly name: string;
  /** Set when the source is a registry repository. */
  readonly location?: RepositoryLocation;
  /** The top-level manifest or index this source names, bytes exactly as stored. */
  root(options?: CallOptions): Promise<ManifestBytes>;
  /** A manifest this source holds, by descriptor; bytes verified against the digest. */
  manifest(descriptor: Descriptor, options?: CallOptions): Promise<ManifestBytes>;
  /** A fresh stream of a blob on each call; it errors if the bytes do not match the digest or size. */
  blob(descriptor: Descriptor, options?: CallOptions): Promise<Readable>;
  /** Releases file handles, temp files and connections. Idempotent. */
  close?(): Promise<void>;
}

export interface PutBlobOptions extends CallOptions {
  /** A repository on the same registry that holds the blob: try a cross-repository mount first. */
  mountFrom?: RepositoryLocation;
  /** Called with the number of bytes sent so far. */
  onProgress?: (bytesSent: number) => void;
}

export interface ImageSink {
  readonly name: string;
  readonly location?: RepositoryLocation;
  /**
   * The tag this sink names (`current()` looks here; copy stores the root manifest under it, last).
   * Undefined when the sink names a digest or has no tag: the root is then stored by digest only.
   */
  readonly tag?: string;
  /** The descriptor currently at the sink's tag (or digest), or undefined when there is none. One HEAD for a registry. */
  current(options?: CallOptions): Promise<Descriptor | undefined>;
  hasBlob(descriptor: Descriptor, options?: CallOptions): Promise<boolean>;
  /** Stores a blob; `open` is called (possibly more than once, for retries) to get a fresh verified stream. */
  putBlob(descriptor: Descriptor, open: () => Promise<Readable>, options?: PutBlobOptions): Promise<void>;
  hasManifest(descriptor: Descriptor, options?: CallOptions): Promise<boolean>;
  /**
   * Stores manifest bytes exactly. With `tag` the manifest is stored under that tag, otherwise by digest.
   * Children and blobs must already be stored.
   */
  putManifest(manifest: ManifestBytes, options?: CallOptions & { tag?: string }): Promise<void>;
  /**
   * Holds one container image, not an index or an artifact (a docker save archive, the Docker
   * Engine): the copy engine refuses an index unless one platform is selected (or {@link platform}
   * names one), before moving anything.
   */
  readonly singleImage?: boolean;
  /**
   * The platform a single-image sink runs images for, if it has one: given an index and no platform
   * selection, the copy engine takes the image for it, as `docker pull` does for the Engine. An
   * archive has none (it is loaded elsewhere).
   */
  platform?(options?: CallOptions): Promise<Platform | undefined>;
  /**
   * What `current()` returns the digest of: the root manifest (the default), or, for a store that
   * keeps no manifests (the Docker Engine: an image ID is its config's digest), the image config.
   */
  readonly identity?: 'manifest' | 'config';
  /**
   * Called once the root and everything under it are stored (after the root's `putManifest`), never
   * after a failure or a no-op: a sink that writes a whole file, or loads into a daemon, does it here.
   */
  commit?(root: Descriptor, options?: CallOptions): Promise<void>;
  close?(): Promise<void>;
}
