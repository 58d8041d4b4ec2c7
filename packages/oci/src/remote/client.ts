/**
 * A registry client: one transport (connection pool, concurrency bounds, token cache) and one
 * keychain shared by every source, sink and call made through it.
 * @module
 */
import { debuglog } from 'node:util';
import type { Readable } from 'node:stream';
import { InvalidArgumentError, NotFoundError, SlipwayError } from '../errors.js';
import { createKeychain } from '../auth/keychain.js';
import type { Credentials, Keychain } from '../auth/credentials.js';
import { isValidTag, parseReference, parseRepository, registryHost, type Reference, type Repository } from '../name/reference.js';
import { RegistryError } from '../transport/errors.js';
import type { RetryOptions } from '../transport/retry.js';
import type { ProxyOption } from '../transport/proxy.js';
import { Transport } from '../transport/transport.js';
import { isDigest, type Digest } from '../v1/digest.js';
import { parseManifest, type Descriptor } from '../v1/manifest.js';
import { MediaType } from '../v1/media-types.js';
import type { CallOptions, ImageSink, ImageSource, ManifestBytes, PutBlobOptions, RepositoryLocation } from '../v1/source.js';
import { hasBlob, openBlob } from './blobs.js';
import { deleteManifest, getManifest, headManifest, putManifest, type PutManifestResult } from './manifests.js';
import { deleteScope, nextLink, pullScope, pushScope, referrersPath, referrersTag, tagsPath } from './paths.js';
import { checkNotBlocked, insecureHosts, loadRegistriesConf, pullCandidates, type PullCandidate, type RegistriesConf } from './registries-conf.js';
import { uploadBlob } from './upload.js';

const debug = debuglog('slipway');

export interface RegistryClientOptions {
  /**
   * Where credentials come from. By default: `credentials`, then Docker's config (and its
   * credential helpers), then the containers `auth.json`, then anonymous.
   */
  keychain?: Keychain;
  /** Explicit credentials per registry (`docker.io`, `localhost:5000`), tried before the keychain. */
  credentials?: Record<string, Credentials>;
  /** Registries (`host[:port]`) that may use plain HTTP or unverified TLS; loopback always may. */
  insecure?: readonly string[];
  /** Extra PEM CA certificates for registries with a private CA. */
  caCertificates?: string | Buffer | readonly (string | Buffer)[];
  /**
   * HTTP proxies; by default `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` from the environment, as the
   * Go tools read them (loopback registries are never proxied); `false` connects directly.
   * @defaultValue `'environment'`
   */
  proxy?: ProxyOption;
  /**
   * `certs.d` roots with a `<host[:port]>/` directory per registry: CAs (`*.crt`) and client
   * certificates (`*.cert` + `*.key`), as Docker and podman read them; the first root holding a
   * directory for a registry answers. `[]` reads none.
   * @defaultValue `$XDG_CONFIG_HOME/containers/certs.d`, `/etc/containers/certs.d`, `/etc/docker/certs.d`
   */
  certDirectories?: readonly string[];
  /**
   * containers-registries.conf(5) to take pull mirrors, remapped locations, blocked and insecure
   * registries from: a path read alone, or `false` for none. See registries-conf.ts.
   * @defaultValue `$CONTAINERS_REGISTRIES_CONF`, else the per-user or system file plus drop-ins
   */
  registriesConf?: string | false;
  /**
   * Concurrent requests per registry host (per kind: downloads, uploads, other).
   * @defaultValue 6
   */
  jobs?: number;
  /** @defaultValue `"slipway/0.1"` */
  userAgent?: string;
  retry?: RetryOptions;
  /** @defaultValue 120000 */
  timeoutMs?: number;
  /**
   * Chunk size for chunked uploads (a registry's `OCI-Chunk-Min-Length` raises it).
   * @defaultValue 8 MiB
   */
  chunkSize?: number;
  /**
   * Blobs larger than this skip the single-request upload and go chunked straight away: for proxies
   * with body-size limits (Cloudflare's ~100 MB, podman#24919) or server deadlines on long requests.
   * @defaultValue Infinity (always try one request first)
   */
  maxMonolithicBytes?: number;
  /** Aborts everything this client does. */
  signal?: AbortSignal;
}

/** Reads that may go through registries.conf mirrors. */
export interface PullOptions extends CallOptions {
  /**
   * Resolve as a pull: each mirror first, then the registry (registries.conf). Off by default: these
   * calls also check what a destination holds, which only the destination itself can say.
   * @defaultValue false
   */
  mirrors?: boolean;
}

export interface ReferrersOptions extends CallOptions {
  artifactType?: string;
}

export interface RegistryClient {
  /** The underlying transport (shared pool, tokens, secrets). */
  readonly transport: Transport;
  /** Reads the image or index a reference names. */
  source(reference: Reference | string): ImageSource;
  /** Writes to a repository, under the reference's tag (or by digest). */
  sink(reference: Reference | string): ImageSink;
  /** The descriptor a reference resolves to (one HEAD), or undefined when absent. */
  head(reference: Reference | string, options?: PullOptions): Promise<Descriptor | undefined>;
  /** The manifest bytes a reference names, verified. */
  getManifest(reference: Reference | string, options?: PullOptions): Promise<ManifestBytes>;
  /** Every tag of a repository, following `Link` pagination. */
  listTags(repository: Repository | string, options?: CallOptions): Promise<string[]>;
  /**
   * Whether the repository holds at least one tag, with one small request (`n=1`); false for a
   * repository that does not exist. Asks with push scope first, as a push that follows will.
   */
  hasTags(repository: Repository | string, options?: CallOptions): Promise<boolean>;
  /**
   * Stores manifest bytes exactly under the reference's tag (or `options.tag`), else by digest; the
   * result carries the registry's `OCI-Subject` answer for a manifest with a `subject`.
   */
  putManifest(reference: Reference | string, manifest: ManifestBytes, options?: CallOptions & { tag?: string }): Promise<PutManifestResult>;
  /** Deletes the manifest a reference resolves to (every tag pointing at it goes too). */
  deleteManifest(reference: Reference | string, options?: CallOptions): Promise<void>;
  /** Descriptors of manifests whose `subject` is `digest`: referrers API, else the `sha256-<hex>` fallback tag. */
  referrers(repository: Repository | Reference | string, digest: string, options?: ReferrersOptions): Promise<Descriptor[]>;
  /** A verified stream of one blob. */
  blob(repository: Repository | Reference | string, descriptor: Descriptor, options?: CallOptions): Promise<Readable>;
  /** Closes pooled connections. */
  close(): Promise<void>;
}

/** Creates a client; every source, sink and call shares its connections, keychain and tokens. */
export function createRegistryClient(options: RegistryClientOptions = {}): RegistryClient {
  if (options.chunkSize !== undefined && (!Number.isSafeInteger(options.chunkSize) || options.chunkSize < 1)) {
    throw new InvalidArgumentError(`chunkSize must be a positive integer, got ${options.chunkSize}`);
  }
  const keychain = createKeychain({
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.keychain ? { keychain: options.keychain } : {}),
  });
  const conf = loadRegistriesConf(options.registriesConf === undefined ? {} : { path: options.registriesConf });
  const insecure = [...(options.insecure ?? []), ...insecureHosts(conf)];
  const transport = new Transport({
    keychain,
    ...(insecure.length > 0 ? { insecure } : {}),
    ...(options.caCertificates ? { caCertificates: options.caCertificates } : {}),
    ...(options.proxy !== undefined ? { proxy: options.proxy } : {}),
    ...(options.certDirectories ? { certDirectories: options.certDirectories } : {}),
    ...(options.jobs !== undefined ? { concurrency: options.jobs } : {}),
    ...(options.userAgent ? { userAgent: options.userAgent } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return new Client(transport, { chunkSize: options.chunkSize, maxMonolithicBytes: options.maxMonolithicBytes ?? Number.POSITIVE_INFINITY }, conf);
}

const toReference = (reference: Reference | string): Reference => (typeof reference === 'string' ? parseReference(reference) : reference);
const toRepository = (repository: Repository | Reference | string): Repository =>
  typeof repository === 'string' ? parseRepository(repository) : repository;
const signalOf = (options?: CallOptions) => (options?.signal ? { signal: options.signal } : {});

class Client implements RegistryClient {
  constructor(
    readonly transport: Transport,
    readonly upload: { chunkSize: number | undefined; maxMonolithicBytes: number },
    readonly registriesConf: RegistriesConf,
  ) {}

  source(reference: Reference | string): ImageSource {
    const ref = toReference(reference);
    const candidates = pullCandidates(this.registriesConf, ref);
    if (candidates.length === 1 && candidates[0]!.reference === ref) return new RemoteSource(this, ref);
    return new MirroredSource(ref.toString(), candidates.map((c) => ({ ...c, source: new RemoteSource(this, c.reference, c.mirror) })));
  }

  sink(reference: Reference | string): ImageSink {
    const ref = toReference(reference);
    // A blocked registry gets no traffic at all, as containers/image's client refuses it for pushes too.
    checkNotBlocked(this.registriesConf, ref, 'pushing to');
    return new RemoteSink(this, ref);
  }

  async head(reference: Reference | string, options?: PullOptions): Promise<Descriptor | undefined> {
    return firstAnswer(this.#readCandidates(reference, options), options, ({ reference: ref, mirror }) =>
      headManifest({ transport: this.transport, reference: ref, scopes: [pullScope(ref.repository)], failFast: mirror, ...signalOf(options) }),
    );
  }

  async getManifest(reference: Reference | string, options?: PullOptions): Promise<ManifestBytes> {
    return firstAnswer(this.#readCandidates(reference, options), options, ({ reference: ref, mirror }) =>
      getManifest({ transport: this.transport, reference: ref, scopes: [pullScope(ref.repository)], failFast: mirror, ...signalOf(options) }),
    );
  }

  /** The reference alone, or with `mirrors`, where a pull of it goes (each mirror, then the location). */
  #readCandidates(reference: Reference | string, options: PullOptions | undefined): PullCandidate[] {
    const ref = toReference(reference);
    return options?.mirrors === true ? pullCandidates(this.registriesConf, ref) : [{ reference: ref, mirror: false }];
  }

  async listTags(repository: Repository | string, options?: CallOptions): Promise<string[]> {
    const repo = toRepository(repository);
    const tags: string[] = [];
    // ECR rejects n > 1000 (ggcr #1091); registries that ignore n just send everything.
    let path: string | URL = `${tagsPath(repo.repository)}?n=1000`;
    const seen = new Set<string>();
    for (let page = 0; page < 10_000; page++) {
      const response = await this.transport.request({
        method: 'GET',
        registry: repo.registry,
        path,
        scopes: [pullScope(repo.repository)],
        maxBodyBytes: 16 * 1024 * 1024,
        ...signalOf(options),
      });
      tags.push(...tagsIn(response.bytes, repo.name));
      if (tags.length > maxTags) throw new SlipwayError('SLIPWAY_REGISTRY', `listing tags of ${repo.name}: more than ${maxTags} tags`);
      const next = nextLink(response.header('link'));
      if (!next) return tags;
      path = nextPage(next, response.url, seen, `listing tags of ${repo.name}`);
    }
    throw new SlipwayError('SLIPWAY_REGISTRY', `listing tags of ${repo.name}: too many pages`);
  }

  async hasTags(repository: Repository | string, options?: CallOptions): Promise<boolean> {
    const repo = toRepository(repository);
    const response = await this.transport.request({
      method: 'GET',
      registry: repo.registry,
      path: `${tagsPath(repo.repository)}?n=1`,
      scopes: [pushScope(repo.repository)],
      expect: [200, 404],
      maxBodyBytes: 1024 * 1024,
      ...signalOf(options),
    });
    if (response.status === 404) return false;
    // distribution answers `"tags": null` for a repository whose tags were all deleted.
    return tagsIn(response.bytes, repo.name).length > 0;
  }

  async putManifest(reference: Reference | string, manifest: ManifestBytes, options?: CallOptions & { tag?: string }): Promise<PutManifestResult> {
    const ref = toReference(reference);
    return putManifest({
      transport: this.transport,
      reference: ref,
      manifest,
      identifier: options?.tag ?? ref.tag ?? manifest.descriptor.digest,
      scopes: [pushScope(ref.repository)],
      ...signalOf(options),
    });
  }

  async deleteManifest(reference: Reference | string, options?: CallOptions): Promise<void> {
    const ref = toReference(reference);
    const scopes = [deleteScope(ref.repository), pushScope(ref.repository)];
    let digest = ref.digest;
    if (!digest) {
      const descriptor = await headManifest({ transport: this.transport, reference: ref, scopes, ...signalOf(options) });
      if (!descriptor) throw new NotFoundError(`deleting ${ref.toString()}: the registry has no manifest at that tag`);
      digest = descriptor.digest;
    }
    await deleteManifest({ transport: this.transport, reference: ref, scopes, digest, ...signalOf(options) });
  }

  async referrers(repository: Repository | Reference | string, digest: string, options?: ReferrersOptions): Promise<Descriptor[]> {
    const repo = toRepository(repository);
    if (!isDigest(digest)) throw new InvalidArgumentError(`invalid digest "${digest}"`);
    const scopes = [pullScope(repo.repository)];
    const result: Descriptor[] = [];
    let path: string | URL = referrersPath(repo.repository, digest) + (options?.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : '');
    const seen = new Set<string>();
    for (let page = 0; page < 1000; page++) {
      const response = await this.transport.request({
        method: 'GET',
        registry: repo.registry,
        path,
        headers: { accept: MediaType.OciIndex },
        scopes,
        expect: [200, 404],
        maxBodyBytes: 4 * 1024 * 1024,
        ...signalOf(options),
      });
      if (response.status === 404) {
        if (page > 0) break;
        return this.#referrersFallback(repo, digest, options);
      }
      const parsed = parseManifest(new Uint8Array(response.bytes), MediaType.OciIndex);
      if (parsed.kind === 'index') result.push(...parsed.manifest.manifests);
      if (result.length > maxReferrers) throw new SlipwayError('SLIPWAY_REGISTRY', `listing referrers of ${repo.name}@${digest}: more than ${maxReferrers}`);
      const next = nextLink(response.header('link'));
      if (!next) break;
      path = nextPage(next, response.url, seen, `listing referrers of ${repo.name}@${digest}`);
    }
    return filterByType(result, options?.artifactType);
  }

  /** The referrers tag schema (`<alg>-<hex>` tag holding an index) for registries without the API. */
  async #referrersFallback(repo: Repository, digest: Digest, options?: ReferrersOptions): Promise<Descriptor[]> {
    const reference = parseReference(`${repo.name}:${referrersTag(digest)}`);
    try {
      const manifest = await getManifest({ transport: this.transport, reference, scopes: [pullScope(repo.repository)], ...signalOf(options) });
      const parsed = parseManifest(manifest.bytes, manifest.descriptor.mediaType);
      return parsed.kind === 'index' ? filterByType(parsed.manifest.manifests, options?.artifactType) : [];
    } catch (err) {
      if (RegistryError.is(err) && err.notFound) return [];
      throw err;
    }
  }

  async blob(repository: Repository | Reference | string, descriptor: Descriptor, options?: CallOptions): Promise<Readable> {
    const repo = toRepository(typeof repository === 'string' ? repository : repository.name);
    return openBlob({ transport: this.transport, repository: repo, descriptor, scopes: [pullScope(repo.repository)], ...signalOf(options) });
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

function filterByType(descriptors: Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType ? descriptors.filter((d) => d.artifactType === artifactType) : descriptors;
}

class RemoteSource implements ImageSource {
  readonly name: string;
  readonly location: RepositoryLocation;
  readonly #scopes: string[];

  constructor(
    readonly client: Client,
    readonly reference: Reference,
    /** A mirror: asked once, without retries (see RegistryRequest.failFast). */
    readonly failFast = false,
  ) {
    this.name = reference.toString();
    this.location = { registry: registryHost(reference.registry), repository: reference.repository };
    this.#scopes = [pullScope(reference.repository)];
  }

  async root(options?: CallOptions): Promise<ManifestBytes> {
    return getManifest({ transport: this.client.transport, reference: this.reference, scopes: this.#scopes, failFast: this.failFast, ...signalOf(options) }).catch(asNotFound);
  }

  async manifest(descriptor: Descriptor, options?: CallOptions): Promise<ManifestBytes> {
    const manifest = await getManifest({
      transport: this.client.transport,
      reference: this.reference,
      identifier: descriptor.digest,
      scopes: this.#scopes,
      failFast: this.failFast,
      ...signalOf(options),
    }).catch(asNotFound);
    return { descriptor: { ...descriptor, mediaType: descriptor.mediaType || manifest.descriptor.mediaType, size: manifest.bytes.byteLength }, bytes: manifest.bytes };
  }

  async blob(descriptor: Descriptor, options?: CallOptions): Promise<Readable> {
    // A mirror's blobs too: one state (one ping) per mirror, and a mirror failing mid-way gives way to the next source.
    return openBlob({ transport: this.client.transport, repository: this.reference, descriptor, scopes: this.#scopes, failFast: this.failFast, ...signalOf(options) }).catch(asNotFound);
  }
}

/**
 * The first candidate's answer that is not "absent" (undefined, or not found) and not a failure;
 * otherwise the location's (the last candidate's) answer or error, naming what the mirrors said.
 * Mirrors are tried first and passed over on any failure, as containers/image does: a mirror that is
 * down, stale or empty must not stop a pull the registry itself can serve. They are asked once, with
 * no retries: a dead mirror would otherwise add the whole backoff (seconds) to every pull.
 */
async function firstAnswer<C extends PullCandidate, T>(candidates: readonly C[], options: CallOptions | undefined, ask: (candidate: C) => Promise<T>): Promise<T> {
  const passed: string[] = [];
  for (const [i, candidate] of candidates.entries()) {
    const last = i === candidates.length - 1;
    try {
      const answer = await ask(candidate);
      if (answer !== undefined || last) {
        if (candidate.mirror) debug('pull %s from mirror %s', candidates.at(-1)!.reference.toString(), candidate.reference.toString());
        return answer;
      }
      passed.push(`${candidate.reference.toString()}: not found`);
    } catch (err) {
      if (!passedOver(err, options)) throw err;
      if (last) throw withMirrorNotes(err, passed);
      passed.push(`${candidate.reference.toString()}: ${err.message}`);
    }
  }
  throw new InvalidArgumentError('no pull candidates');
}

/** Whether a failure lets the next candidate be asked: a slipway error, not an abort. */
function passedOver(err: unknown, options: CallOptions | undefined): err is SlipwayError {
  return !options?.signal?.aborted && SlipwayError.is(err) && err.code !== 'SLIPWAY_ABORTED';
}

/**
 * The location's error, with what each mirror said first: a copy of the same class and fields (callers
 * tell "not found", exit 3, and registry errors apart by them) with a longer message and the original
 * as its cause. Never the error itself: shared work (one ping per registry) hands the same object to
 * every caller waiting on it, and each would add its own notes to the others'.
 */
function withMirrorNotes(err: SlipwayError, passed: readonly string[]): SlipwayError {
  if (passed.length === 0) return err;
  const message = `${err.message} (mirrors tried first: ${passed.join('; ')})`;
  const copy = Object.assign(Object.create(Object.getPrototypeOf(err) as object) as SlipwayError, err);
  const stack = err.stack?.split('\n').slice(1).join('\n');
  for (const [key, value] of [
    ['message', message],
    ['cause', err],
    ['stack', `${err.name}: ${message}${stack ? `\n${stack}` : ''}`],
  ] as const) {
    Object.defineProperty(copy, key, { value, writable: true, configurable: true, enumerable: false });
  }
  return copy;
}

/**
 * An image pulled through registries.conf mirrors: `root()` takes the first candidate that has it and
 * stays with it; a manifest or blob that candidate lacks is asked of the others (verified by digest
 * wherever it comes from, so any of them will do).
 */
class MirroredSource implements ImageSource {
  #chosen: ImageSource | undefined;

  constructor(
    readonly name: string,
    readonly candidates: readonly (PullCandidate & { source: RemoteSource })[],
  ) {}

  /**
   * The registry's own repository, whichever candidate serves: a copy into that registry then mounts
   * from it (falling back to an upload when it lacks a blob), as it would without mirrors.
   */
  get location(): RepositoryLocation {
    return this.candidates.at(-1)!.source.location;
  }

  async root(options?: CallOptions): Promise<ManifestBytes> {
    const picked = await firstAnswer(this.candidates, options, async ({ source }) => ({ source, manifest: await source.root(options) }));
    this.#chosen = picked.source;
    return picked.manifest;
  }

  manifest(descriptor: Descriptor, options?: CallOptions): Promise<ManifestBytes> {
    return this.#fromAny(options, (source) => source.manifest(descriptor, options));
  }

  blob(descriptor: Descriptor, options?: CallOptions): Promise<Readable> {
    return this.#fromAny(options, (source) => source.blob(descriptor, options));
  }

  async #fromAny<T>(options: CallOptions | undefined, ask: (source: ImageSource) => Promise<T>): Promise<T> {
    const chosen = this.#chosen;
    const registry = this.candidates.at(-1)!.source;
    const order = chosen ? [chosen, ...this.candidates.map((c) => c.source).filter((s) => s !== chosen)] : this.candidates.map((c) => c.source);
    let registryError: SlipwayError | undefined;
    const passed: string[] = [];
    for (const source of order) {
      try {
        return await ask(source);
      } catch (err) {
        if (!passedOver(err, options)) throw err;
        if (source === registry) registryError = err;
        else passed.push(`${source.name}: ${err.message}`);
        debug('%s: %s', source.name, err.message);
      }
    }
    // The registry has the last word (its "not found" is the contract's SLIPWAY_NOT_FOUND), whatever
    // order the sources were asked in: a dead mirror's network error must not stand in for it.
    throw withMirrorNotes(registryError!, passed);
  }
}

/**
 * The ImageSource contract says an absent manifest or blob is SLIPWAY_NOT_FOUND, whatever holds it
 * (the conformance suite checks it); a registry says so with 404 or a *_UNKNOWN code. The registry's
 * own message and the RegistryError (status, codes) stay available as the cause.
 */
function asNotFound(err: unknown): never {
  if (RegistryError.is(err) && err.notFound) throw new NotFoundError(err.message, { cause: err });
  throw err;
}

class RemoteSink implements ImageSink {
  readonly name: string;
  readonly location: RepositoryLocation;
  readonly tag?: string;
  readonly #scopes: string[];

  constructor(
    readonly client: Client,
    readonly reference: Reference,
  ) {
    this.name = reference.toString();
    if (reference.tag !== undefined) this.tag = reference.tag;
    this.location = { registry: registryHost(reference.registry), repository: reference.repository };
    // Every sink call uses the push scope, so one token serves HEADs, uploads and the manifest PUT.
    this.#scopes = [pushScope(reference.repository)];
  }

  /** One HEAD on the tag (or on the digest when the sink names only a digest). */
  async current(options?: CallOptions): Promise<Descriptor | undefined> {
    return headManifest({
      transport: this.client.transport,
      reference: this.reference,
      identifier: this.tag ?? this.reference.identifier,
      scopes: this.#scopes,
      ...signalOf(options),
    });
  }

  async hasBlob(descriptor: Descriptor, options?: CallOptions): Promise<boolean> {
    return hasBlob({ transport: this.client.transport, repository: this.reference, digest: descriptor.digest, scopes: this.#scopes, ...signalOf(options) });
  }

  async putBlob(descriptor: Descriptor, open: () => Promise<Readable>, options?: PutBlobOptions): Promise<void> {
    await uploadBlob({
      transport: this.client.transport,
      repository: this.reference,
      descriptor,
      open,
      ...(options ? { options } : {}),
      ...(this.client.upload.chunkSize !== undefined ? { chunkSize: this.client.upload.chunkSize } : {}),
      chunkedOnly: descriptor.size > this.client.upload.maxMonolithicBytes,
    });
  }

  async hasManifest(descriptor: Descriptor, options?: CallOptions): Promise<boolean> {
    const found = await headManifest({
      transport: this.client.transport,
      reference: this.reference,
      identifier: descriptor.digest,
      scopes: this.#scopes,
      ...signalOf(options),
    });
    return found !== undefined;
  }

  async putManifest(manifest: ManifestBytes, options?: CallOptions & { tag?: string }): Promise<void> {
    await putManifest({
      transport: this.client.transport,
      reference: this.reference,
      manifest,
      identifier: options?.tag ?? manifest.descriptor.digest,
      scopes: this.#scopes,
      ...signalOf(options),
    });
  }
}

/** The tags of one `tags/list` answer (`"tags": null` or a missing field: none). */
function tagsIn(bytes: Buffer, repository: string): string[] {
  let body: { tags?: unknown };
  try {
    body = JSON.parse(bytes.toString('utf8')) as { tags?: unknown };
  } catch (err) {
    throw new SlipwayError('SLIPWAY_REGISTRY', `listing tags of ${repository}: the registry's answer is not JSON`, { cause: err });
  }
  const all = Array.isArray(body.tags) ? body.tags.filter((tag): tag is string => typeof tag === 'string') : [];
  // Only names a reference can hold: anything else cannot be pulled by tag, and printed as is it
  // could carry terminal escapes or forged lines.
  const valid = all.filter(isValidTag);
  if (valid.length < all.length) debug('listing tags of %s: %d names that are not valid tags left out', repository, all.length - valid.length);
  return valid;
}

/**
 * Bounds on what a registry's pages may pile up: a `Link` that loops through different URLs, or a
 * hostile registry, must end in an error, not in a heap exhausted by repeated pages (seen at 4 GB).
 */
const maxTags = 1_000_000;
const maxReferrers = 10_000;

/** The next page's URL, refusing a `Link` back to a page already read (a loop). */
function nextPage(next: string, current: URL, seen: Set<string>, what: string): URL {
  seen.add(current.href);
  const url = new URL(next, current);
  if (seen.has(url.href)) throw new SlipwayError('SLIPWAY_REGISTRY', `${what}: the registry's Link header leads back to a page already read`);
  return url;
}
