/**
 * An in-memory registry: repositories of blobs, manifests and tags, with ImageSource and ImageSink views.
 * It enforces what a registry enforces (a manifest is accepted only when every blob and child it
 * references is present; digests are checked on write), records every request it serves, and lets
 * a caller inject delays or failures per request. Used to test copy logic without sockets, and
 * usable to stage an image in memory before pushing it.
 * @module
 */
import { Readable } from 'node:stream';
import { DigestMismatchError, InvalidArgumentError, NotFoundError, SizeMismatchError, throwIfAborted } from '../errors.js';
import { digestOf, type Digest } from '../v1/digest.js';
import { blobDescriptors, parseManifest, type Descriptor } from '../v1/manifest.js';
import type { CallOptions, ImageSink, ImageSource, ManifestBytes, PutBlobOptions, RepositoryLocation } from '../v1/source.js';

/** One request served, in the order served. */
export interface MemoryRequest {
  method: 'HEAD' | 'GET' | 'PUT' | 'MOUNT';
  kind: 'blob' | 'manifest';
  repository: string;
  /** A digest, or the tag for tag lookups and tagged manifest writes. */
  target: string;
}

export interface MemoryRegistryOptions {
  /** Host name used in `location` (same host ⇒ copy may mount). @defaultValue `memory.invalid` */
  host?: string;
  /** Called before each request is served; throw to fail it, await to delay it. */
  beforeRequest?: (request: MemoryRequest, signal: AbortSignal | undefined) => void | Promise<void>;
}

interface Repository {
  blobs: Map<Digest, Uint8Array>;
  manifests: Map<Digest, ManifestBytes>;
  tags: Map<string, Digest>;
}

export class MemoryRegistry {
  readonly host: string;
  /** Every request served, oldest first. */
  readonly requests: MemoryRequest[] = [];
  readonly #repositories = new Map<string, Repository>();
  readonly #beforeRequest: MemoryRegistryOptions['beforeRequest'];

  constructor(options: MemoryRegistryOptions = {}) {
    this.host = options.host ?? 'memory.invalid';
    this.#beforeRequest = options.beforeRequest;
  }

  /** A source naming `reference` (a tag or a digest) in `repository`. */
  source(repository: string, reference: string): ImageSource {
    return new MemorySource(this, repository, reference);
  }

  /** A sink writing to `repository`; `reference` is the tag (or digest) the root goes under. */
  sink(repository: string, reference?: string): ImageSink {
    return new MemorySink(this, repository, reference);
  }

  /** Stores a blob directly (no request logged) and returns its descriptor. */
  addBlob(repository: string, bytes: Uint8Array, mediaType: string): Descriptor {
    const digest = digestOf(bytes);
    this.#repo(repository).blobs.set(digest, bytes);
    return { mediaType, digest, size: bytes.byteLength };
  }

  /** Stores a manifest directly (no request logged), with the same reference checks as a PUT. */
  addManifest(repository: string, bytes: Uint8Array, mediaType: string, tag?: string): Descriptor {
    const descriptor: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
    this.storeManifest(repository, { descriptor, bytes }, tag);
    return descriptor;
  }

  /** The digest a tag points at, if any. */
  tagged(repository: string, tag: string): Digest | undefined {
    return this.#repositories.get(repository)?.tags.get(tag);
  }

  hasBlob(repository: string, digest: string): boolean {
    return this.#repositories.get(repository)?.blobs.has(digest as Digest) ?? false;
  }

  hasManifest(repository: string, digest: string): boolean {
    return this.#repositories.get(repository)?.manifests.has(digest as Digest) ?? false;
  }

  /** @internal */
  async serve(request: MemoryRequest, signal: AbortSignal | undefined): Promise<void> {
    throwIfAborted(signal);
    this.requests.push(request);
    await this.#beforeRequest?.(request, signal);
    throwIfAborted(signal);
  }

  /** @internal */
  lookup(repository: string, reference: string): ManifestBytes | undefined {
    const repo = this.#repositories.get(repository);
    if (!repo) return undefined;
    const digest = reference.includes(':') ? (reference as Digest) : repo.tags.get(reference);
    return digest === undefined ? undefined : repo.manifests.get(digest);
  }

  /** @internal */
  blobBytes(repository: string, digest: Digest): Uint8Array | undefined {
    return this.#repositories.get(repository)?.blobs.get(digest);
  }

  /** @internal */
  storeBlob(repository: string, digest: Digest, bytes: Uint8Array): void {
    this.#repo(repository).blobs.set(digest, bytes);
  }

  /** @internal Checks what a registry checks on a manifest PUT, then stores it. */
  storeManifest(repository: string, manifest: ManifestBytes, tag?: string): void {
    const { descriptor, bytes } = manifest;
    const actual = digestOf(bytes, descriptor.digest);
    if (actual !== descriptor.digest) throw new DigestMismatchError(descriptor.digest, actual, 'manifest');
    const repo = this.#repo(repository);
    const parsed = parseManifest(bytes, descriptor.mediaType);
    const missing =
      parsed.kind === 'index'
        ? parsed.manifest.manifests.filter((d) => !repo.manifests.has(d.digest)).map((d) => `manifest ${d.digest}`)
        : blobDescriptors(parsed.manifest)
            .filter((d) => !isForeign(d) && !repo.blobs.has(d.digest))
            .map((d) => `blob ${d.digest}`);
    if (missing.length > 0) {
      throw new InvalidArgumentError(`${this.host}/${repository}: manifest ${descriptor.digest} references unknown ${missing.join(', ')}`, {
        code: 'SLIPWAY_REGISTRY',
      });
    }
    repo.manifests.set(descriptor.digest, { descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: bytes.byteLength }, bytes });
    if (tag !== undefined) repo.tags.set(tag, descriptor.digest);
  }

  #repo(name: string): Repository {
    let repo = this.#repositories.get(name);
    if (!repo) {
      repo = { blobs: new Map(), manifests: new Map(), tags: new Map() };
      this.#repositories.set(name, repo);
    }
    return repo;
  }
}

/** Layers a registry does not store (Windows base layers): they carry URLs and a foreign media type. */
function isForeign(descriptor: Descriptor): boolean {
  return descriptor.mediaType.includes('foreign') || descriptor.mediaType.includes('nondistributable');
}

class MemorySource implements ImageSource {
  readonly name: string;
  readonly location: RepositoryLocation;

  constructor(
    private readonly registry: MemoryRegistry,
    private readonly repository: string,
    private readonly reference: string,
  ) {
    this.name = `${registry.host}/${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    this.location = { registry: registry.host, repository };
  }

  async root(options?: CallOptions): Promise<ManifestBytes> {
    await this.registry.serve({ method: 'GET', kind: 'manifest', repository: this.repository, target: this.reference }, options?.signal);
    const found = this.registry.lookup(this.repository, this.reference);
    if (!found) throw new NotFoundError(`${this.name}: manifest unknown`);
    return found;
  }

  async manifest(descriptor: Descriptor, options?: CallOptions): Promise<ManifestBytes> {
    await this.registry.serve({ method: 'GET', kind: 'manifest', repository: this.repository, target: descriptor.digest }, options?.signal);
    const found = this.registry.lookup(this.repository, descriptor.digest);
    if (!found) throw new NotFoundError(`${this.name}: manifest ${descriptor.digest} unknown`);
    return found;
  }

  async blob(descriptor: Descriptor, options?: CallOptions): Promise<Readable> {
    await this.registry.serve({ method: 'GET', kind: 'blob', repository: this.repository, target: descriptor.digest }, options?.signal);
    const bytes = this.registry.blobBytes(this.repository, descriptor.digest);
    if (!bytes) throw new NotFoundError(`${this.name}: blob ${descriptor.digest} unknown`);
    if (bytes.byteLength !== descriptor.size) throw new SizeMismatchError(descriptor.size, bytes.byteLength, `blob ${descriptor.digest}`);
    // Two chunks, so a consumer sees progress between them.
    const half = Math.floor(bytes.byteLength / 2);
    return Readable.from([bytes.subarray(0, half), bytes.subarray(half)].filter((c) => c.byteLength > 0), { objectMode: false });
  }
}

class MemorySink implements ImageSink {
  readonly name: string;
  readonly location: RepositoryLocation;
  readonly tag: string | undefined;
  readonly #digest: string | undefined;

  constructor(
    private readonly registry: MemoryRegistry,
    private readonly repository: string,
    reference?: string,
  ) {
    const byDigest = reference?.includes(':') ?? false;
    this.tag = byDigest ? undefined : reference;
    this.#digest = byDigest ? reference : undefined;
    this.name = `${registry.host}/${repository}${reference === undefined ? '' : `${byDigest ? '@' : ':'}${reference}`}`;
    this.location = { registry: registry.host, repository };
  }

  async current(options?: CallOptions): Promise<Descriptor | undefined> {
    const reference = this.tag ?? this.#digest;
    if (reference === undefined) return undefined;
    await this.registry.serve({ method: 'HEAD', kind: 'manifest', repository: this.repository, target: reference }, options?.signal);
    return this.registry.lookup(this.repository, reference)?.descriptor;
  }

  async hasBlob(descriptor: Descriptor, options?: CallOptions): Promise<boolean> {
    await this.registry.serve({ method: 'HEAD', kind: 'blob', repository: this.repository, target: descriptor.digest }, options?.signal);
    return this.registry.hasBlob(this.repository, descriptor.digest);
  }

  async putBlob(descriptor: Descriptor, open: () => Promise<Readable>, options?: PutBlobOptions): Promise<void> {
    const from = options?.mountFrom;
    if (from && from.registry === this.registry.host) {
      await this.registry.serve({ method: 'MOUNT', kind: 'blob', repository: this.repository, target: descriptor.digest }, options?.signal);
      const bytes = this.registry.blobBytes(from.repository, descriptor.digest);
      // A refused mount falls back to an upload, as the distribution spec says a client must.
      if (bytes) {
        this.registry.storeBlob(this.repository, descriptor.digest, bytes);
        return;
      }
    }
    await this.registry.serve({ method: 'PUT', kind: 'blob', repository: this.repository, target: descriptor.digest }, options?.signal);
    const stream = await open();
    const chunks: Buffer[] = [];
    let sent = 0;
    for await (const chunk of stream) {
      throwIfAborted(options?.signal);
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      chunks.push(buffer);
      sent += buffer.byteLength;
      options?.onProgress?.(sent);
    }
    const bytes = Buffer.concat(chunks);
    if (bytes.byteLength !== descriptor.size) throw new SizeMismatchError(descriptor.size, bytes.byteLength, `blob ${descriptor.digest}`);
    const actual = digestOf(bytes, descriptor.digest);
    if (actual !== descriptor.digest) throw new DigestMismatchError(descriptor.digest, actual, `blob ${descriptor.digest}`);
    this.registry.storeBlob(this.repository, descriptor.digest, bytes);
  }

  async hasManifest(descriptor: Descriptor, options?: CallOptions): Promise<boolean> {
    await this.registry.serve({ method: 'HEAD', kind: 'manifest', repository: this.repository, target: descriptor.digest }, options?.signal);
    return this.registry.hasManifest(this.repository, descriptor.digest);
  }

  async putManifest(manifest: ManifestBytes, options?: CallOptions & { tag?: string }): Promise<void> {
    const target = options?.tag ?? manifest.descriptor.digest;
    await this.registry.serve({ method: 'PUT', kind: 'manifest', repository: this.repository, target }, options?.signal);
    this.registry.storeManifest(this.repository, manifest, options?.tag);
  }
}
