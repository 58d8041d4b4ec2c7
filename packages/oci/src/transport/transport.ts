/**
 * The HTTP client every registry call goes through: undici agents with keep-alive (verifying and
 * unverified ones, a pair per registry with a certs.d directory, each routed through HTTP proxies when
 * the environment names any), a concurrency bound per registry host, retries with backoff, redirects
 * followed by hand, and the registry auth dance (ping, `WWW-Authenticate`, Basic, Bearer token
 * exchange with a per-scope cache).
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';
import type { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { AbortedError, InvalidArgumentError, isErrnoError, SlipwayError, throwIfAborted } from '../errors.js';
import { describeCredentials, secretsOf, type Credentials, type Keychain } from '../auth/credentials.js';
import { SharedTaskMap } from '../internal/shared-task.js';
import { linkSignals } from '../internal/signals.js';
import { readCapped, BodyTooLargeError } from '../internal/read.js';
import { redactUrl, SecretSet } from '../internal/redact.js';
import { Semaphore, type Release } from '../internal/semaphore.js';
import { registryHost } from '../name/reference.js';
import {
  certificateEnvironment,
  defaultCertDirectories,
  namesCertificates,
  notTrustedByDefault,
  readEnvironmentCertificates,
  readHostCertificates,
  secureContextTrusting,
  type CertificateEnvironment,
} from './certs.js';
import { parseChallenges, pickChallenge, type Challenge } from './challenge.js';
import { isTemporaryStatus, NetworkError, parseErrorBody, RegistryError } from './errors.js';
import { checkHop, isLoopback, matchesInsecure } from './hosts.js';
import {
  backoffDelay,
  describeNetworkError,
  errnoOf,
  isTemporaryNetworkError,
  parseRetryAfter,
  proxyRefusal,
  resolveRetryOptions,
  type ResolvedRetryOptions,
  type RetryOptions,
} from './retry.js';
import { ProxyConfig, withProxies, type ProxyOption, type ProxyRoute } from './proxy.js';
import { TokenCache, type TokenLease } from './tokens.js';
import { loadUndici, loadUndiciProxy, trackConnecting, type TrackedConnector, type UndiciParts } from './undici.js';

/** undici and our agents, loaded on the first request: a command that never speaks HTTP (`slipway hash-context`, a build's context hash) does not pay for loading undici (see undici.ts). */
interface Http {
  /** Verified TLS against Node's roots (with `NODE_EXTRA_CA_CERTS`) and `caCertificates`. */
  secure: Dispatcher;
  /**
   * The CAs of `SSL_CERT_FILE`/`SSL_CERT_DIR` that Node does not trust already, read once on first
   * call; empty when neither is set.
   */
  environmentCa: () => Promise<string[]>;
  /**
   * {@link secure} widened to the CAs of {@link environmentCa}, made on first call; undefined when
   * they add nothing. Only a registry whose certificate the default trust refused is tried with it.
   */
  environmentSecure: () => Promise<Dispatcher | undefined>;
  unverified: Dispatcher;
  /** A dispatcher with its own TLS options (a registry's certs.d material), routed through proxies as the others. */
  make: (tls: ConnectionOptions) => Dispatcher;
  /** Ends the direct connections still being made (see trackConnecting); requests waiting on them fail. */
  destroyConnecting: (reason: Error) => void;
  /** Every dispatcher made so far, proxy agents included, to close. */
  all: () => Dispatcher[];
  request: UndiciParts['request'];
}

/** undici's `request(url, …)` shape on its dispatcher-level API: origin and path from the URL. */
function at(url: URL): { origin: string; path: string } {
  return { origin: url.origin, path: `${url.pathname}${url.search}` };
}

const debug = debuglog('slipway');
/** Set inside Transport.cleanup(): requests made there are let through a transport that is closing. */
const inCleanup = new AsyncLocalStorage<boolean>();
/** How long close() lets abandoned requests finish before it destroys the connections. */
const closeGraceMs = 250;

/** Error bodies and token responses are read through this cap (ggcr's limit.ReadAll uses the same). */
export const maxErrorBodyBytes = 64 * 1024;
/** A token response: JWTs of a few KiB (ECR, GCR, Entra ID); a bigger one would not fit a request header anyway. */
const maxTokenBytes = 64 * 1024;
const maxRedirects = 10;
const defaultUserAgent = 'slipway/0.1';

export interface TransportOptions {
  /** Finds credentials per registry; anonymous when absent. */
  keychain?: Keychain;
  /**
   * Registries (`host` or `host:port`) allowed to use plain HTTP or unverified TLS. Loopback
   * registries (127.0.0.0/8, `localhost`, `::1`) always speak plain HTTP.
   */
  insecure?: readonly string[];
  /** PEM certificates trusted in addition to Node's roots, for private CAs. */
  caCertificates?: string | Buffer | readonly (string | Buffer)[];
  /**
   * `certs.d` roots holding a `<host[:port]>/` directory per registry with CA certificates (`*.crt`)
   * and client certificates (`*.cert` + `*.key`), as Docker and podman read them; the first root
   * with a directory for a registry answers. `[]` reads none. See certs.ts.
   * @defaultValue `~/.config/containers/certs.d`, `/etc/containers/certs.d`, `/etc/docker/certs.d`
   */
  certDirectories?: readonly string[];
  /**
   * Concurrent requests per registry host and per kind (blob downloads, uploads, everything else).
   * @defaultValue 6 (c/image's parallel copies)
   */
  concurrency?: number;
  /** @defaultValue `"slipway/0.1"` */
  userAgent?: string;
  retry?: RetryOptions;
  /**
   * Milliseconds to wait for response headers, and between body chunks.
   * @defaultValue 120000
   */
  timeoutMs?: number;
  /**
   * HTTP proxies: by default `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` from the environment, read
   * as Go's net/http (and so docker, skopeo, crane) reads them; loopback registries never go through
   * one. `false` connects directly. See proxy.ts.
   * @defaultValue `'environment'`
   */
  proxy?: ProxyOption;
  /** Aborts every request of this transport. */
  signal?: AbortSignal;
}

/** A request body: bytes, or a thunk called once per attempt for a fresh stream. */
export type RequestBody = Uint8Array | (() => Readable | Promise<Readable>);

export interface RegistryRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** The reference's registry (`docker.io`, `localhost:5000`). */
  registry: string;
  /** A path (with query) on the registry, `/v2/...`; or an absolute URL such as an upload `Location`. */
  path: string | URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Token scopes, push scope first: `repository:dst:pull,push`, then `repository:src:pull`. */
  scopes?: readonly string[];
  /** Statuses returned to the caller rather than thrown; default any 2xx. */
  expect?: readonly number[];
  /** Return the body as a stream (the concurrency slot is held until it closes) instead of buffering it. */
  stream?: boolean;
  /**
   * Largest buffered body accepted.
   * @defaultValue 65536
   */
  maxBodyBytes?: number;
  /** Retry temporary failures; default true (bodies are bytes or thunks, so they can be replayed). */
  retry?: boolean;
  /** Follow 3xx responses; default true for GET and HEAD. */
  followRedirects?: boolean;
  /** Concurrency class; default `pull` for streamed GETs, `push` for streamed bodies, otherwise `meta`. */
  kind?: 'pull' | 'push' | 'meta';
  /**
   * One attempt at everything (reaching the registry, the request itself), no backoff: for a caller
   * with somewhere else to go, a registries.conf mirror, which a dead or failing mirror would
   * otherwise hold up for seconds on every pull. Default false.
   */
  failFast?: boolean;
  signal?: AbortSignal;
  /**
   * A clean-up after the work was given up (the courtesy `DELETE` of an upload session): it runs under
   * `signal` alone, not the transport's, which is often what was aborted (Ctrl-C); bound it with `signal`.
   */
  cleanup?: boolean;
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Final URL after redirects. */
  url: URL;
  /** First value of a header (name in any case). */
  header(name: string): string | undefined;
  /** The body when `stream` was set. */
  body?: Readable;
  /** The buffered body otherwise (empty for HEAD). */
  bytes: Buffer;
}

interface RegistryState {
  registry: string;
  /** `https://registry-1.docker.io` or `http://127.0.0.1:5000`. */
  base: URL;
  dispatcher: Dispatcher;
  /**
   * The registry's verifying dispatcher (with its certs.d material), for its token realm and redirects
   * on other hosts: the same TLS settings as Docker and containers/image use for them.
   */
  secure: Dispatcher;
  /** The challenge from pinging `/v2/`; undefined when the registry needs no auth. */
  challenge?: Challenge;
}

/** A registry's own dispatchers, made from its certs.d directory. */
interface RegistryTls {
  secure: Dispatcher;
  unverified: Dispatcher;
  directory: string;
  clientCertificate: boolean;
}

interface Attempt {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  url: URL;
  body: Dispatcher.ResponseData['body'];
  release: Release;
}

/** One HTTP client shared by every registry call of a run. Create with createTransport. */
export class Transport {
  #http: Promise<Http> | undefined;
  #closed: Promise<void> | undefined;
  readonly #agentOptions: Agent.Options;
  readonly #connectTimeoutMs: number;
  readonly #caCertificates: (string | Buffer)[];
  /** `SSL_CERT_FILE`/`SSL_CERT_DIR` as they were when the transport was created; read with the agents. */
  readonly #certEnvironment: CertificateEnvironment;
  readonly #certDirectories: readonly string[];
  /** Per registry: its certs.d dispatchers, or undefined when it has no directory. */
  readonly #hostTls = new Map<string, Promise<RegistryTls | undefined>>();
  readonly #insecure: readonly string[];
  readonly #proxy: ProxyConfig;
  readonly #keychain: Keychain | undefined;
  readonly #retry: ResolvedRetryOptions;
  readonly #userAgent: string;
  readonly #concurrency: number;
  readonly #signal: AbortSignal | undefined;
  readonly #slots = new Map<string, Semaphore>();
  // One ping and one credential lookup per registry, shared by every caller; a caller's abort ends only
  // its own wait (a client serves many operations, each with its own signal).
  readonly #states = new SharedTaskMap<{ registry: string; failFast: boolean }, RegistryState>(
    ({ registry, failFast }, signal) => this.#tracked(signal, () => this.#ping(registry, signal, failFast ? 1 : this.#retry.attempts)),
    ({ registry, failFast }) => `${registry}\n${failFast}`,
  );
  readonly #credentials = new SharedTaskMap<{ registry: string; repository: string | undefined }, Credentials | undefined>(
    ({ registry, repository }, signal) => this.#lookUpCredentials(registry, repository, signal),
    ({ registry, repository }) => `${registry}\n${repository ?? ''}`,
  );
  readonly #tokens = new TokenCache();
  /**
   * Work on the wire now (a streamed response until its body closes), each with the signal it runs
   * under: close() waits for what someone still waits on, not for what every caller gave up on.
   */
  readonly #inflight = new Set<{ signal: AbortSignal | undefined }>();
  /** Distinct `Warning: 299` texts registries sent, for a front end to show once each. */
  readonly warnings = new Set<string>();
  /** Every secret this transport has handled, scrubbed from any message built from a server's reply. */
  readonly secrets = new SecretSet();

  constructor(options: TransportOptions = {}) {
    const concurrency = options.concurrency ?? 6;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidArgumentError(`concurrency must be a positive integer, got ${concurrency}`);
    const timeout = options.timeoutMs ?? 120_000;
    const extraCa = options.caCertificates === undefined ? [] : Array.isArray(options.caCertificates) ? options.caCertificates : [options.caCertificates];
    const common = { keepAliveTimeout: 30_000, headersTimeout: timeout, bodyTimeout: timeout };
    this.#agentOptions = common;
    // undici's own connect timeout is 10 s: a shorter timeoutMs bounds the connect too. 0 turns off
    // the header and body timeouts only: undici would read a connect timeout of 0 as none at all.
    this.#connectTimeoutMs = timeout > 0 ? Math.min(timeout, 10_000) : 10_000;
    this.#caCertificates = extraCa as (string | Buffer)[];
    this.#certEnvironment = certificateEnvironment();
    this.#certDirectories = options.certDirectories ?? defaultCertDirectories();
    this.#insecure = options.insecure ?? [];
    this.#proxy = ProxyConfig.resolve(options.proxy);
    this.secrets.add(...this.#proxy.secrets);
    this.secrets.addWhole(...this.#proxy.pairs);
    this.#keychain = options.keychain;
    this.#retry = resolveRetryOptions(options.retry);
    this.#userAgent = options.userAgent ?? defaultUserAgent;
    this.#concurrency = concurrency;
    this.#signal = options.signal;
  }

  /** The signal the transport was created with (a client's, a CLI run's): aborts every request it sends. */
  get signal(): AbortSignal | undefined {
    return this.#signal;
  }

  /** The retry policy in force, for callers that retry whole operations (upload recovery, download resume). */
  get retryOptions(): ResolvedRetryOptions {
    return this.#retry;
  }

  /**
   * Closes pooled connections. Idempotent: the first call's promise is shared (undici 7 rejects a
   * second `Agent.close()` with UND_ERR_DESTROYED). Requests after it are refused, also when the
   * transport never sent one (undici is loaded lazily: its agents must not appear after close).
   * Requests under way finish first (a session's clean-up DELETE, a caller's own call), except
   * those whose signal has aborted: nobody waits for them, and undici's graceful close would wait
   * up to its 10 s connect timeout for one stuck in a TLS handshake nobody answers, so once only
   * such requests are left the connections are destroyed after {@link closeGraceMs}.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#http === undefined) return;
      const http = await this.#http.catch(() => undefined);
      if (!http) return;
      while ([...this.#inflight].some((work) => !work.signal?.aborted)) await sleep(20);
      // What is still connecting now was for calls given up on: end it, or a handshake nobody answers
      // outlives close() (Agent.destroy does not reach it) and keeps the process up for 10 s.
      http.destroyConnecting(new AbortedError('the registry transport was closed'));
      const dispatchers = http.all();
      const graceful = Promise.all(dispatchers.map((d) => d.close())).then(
        () => true,
        () => true,
      );
      const closed = await Promise.race([graceful, sleep(closeGraceMs, false, { ref: false })]);
      if (!closed) await Promise.all(dispatchers.map((d) => d.destroy())).catch(() => undefined);
    })();
    return this.#closed;
  }

  #undici(): Promise<Http> {
    // A clean-up close() is waiting for (see cleanup()) may still send its requests.
    if (this.#closed !== undefined && inCleanup.getStore() !== true) return Promise.reject(new InvalidArgumentError('this registry transport is closed'));
    this.#http ??= (async () => {
      const { Agent, buildConnector, request } = await loadUndici();
      const common = this.#agentOptions;
      // undici's proxy code is loaded only when a proxy is configured (see undici.ts on start-up time).
      const proxyParts = this.#proxy.enabled ? await loadUndiciProxy() : undefined;
      // One TLS context for every verifying connection (see secureContextTrusting on its cost).
      const verified = this.#caCertificates.length > 0 ? { secureContext: secureContextTrusting(this.#caCertificates) } : {};
      const made: { dispatcher: Dispatcher; agents: Dispatcher[] }[] = [];
      const connectors: TrackedConnector[] = [];
      const timeout = this.#connectTimeoutMs;
      const make = (tls: ConnectionOptions): Dispatcher => {
        const connector = trackConnecting(buildConnector, { ...tls, timeout });
        connectors.push(connector);
        const direct = new Agent({ ...common, connect: connector.connect });
        // Through a proxy the connects are undici's own (not tracked): they get the connect timeout at least.
        const routed = proxyParts
          ? withProxies(direct, this.#proxy, { ...proxyParts, agent: common, requestTls: { ...tls, timeout }, proxyTls: { ...verified, timeout } })
          : { dispatcher: direct, agents: [] };
        made.push(routed);
        return routed.dispatcher;
      };
      // SSL_CERT_FILE/SSL_CERT_DIR are read only when a registry's certificate is refused without them:
      // images commonly point both at the system bundle, and reading and comparing it cost every run
      // ~25 ms (plain-HTTP loopback registries included, which try HTTPS first) for nothing.
      let environmentCa: Promise<string[]> | undefined;
      let environmentSecure: Promise<Dispatcher | undefined> | undefined;
      const readEnvironmentCa = (): Promise<string[]> => {
        environmentCa ??= namesCertificates(this.#certEnvironment) ? readEnvironmentCertificates(this.#certEnvironment).then(notTrustedByDefault) : Promise.resolve([]);
        // A missing SSL_CERT_FILE is reported on every call that needs it, not remembered.
        environmentCa.catch(() => (environmentCa = undefined));
        return environmentCa;
      };
      return {
        secure: make(verified),
        environmentCa: readEnvironmentCa,
        environmentSecure: () =>
          (environmentSecure ??= readEnvironmentCa().then((extra) =>
            extra.length === 0 ? undefined : make({ secureContext: secureContextTrusting([...this.#caCertificates, ...extra]) }),
          )).catch((err: unknown) => {
            environmentSecure = undefined;
            throw err;
          }),
        unverified: make({ rejectUnauthorized: false }),
        make,
        all: () => made.flatMap((m) => [m.dispatcher, ...m.agents]),
        destroyConnecting: (reason: Error) => {
          for (const connector of connectors) connector.destroyConnecting(reason);
        },
        request,
      };
    })();
    return this.#http;
  }

  /** The base URL the registry is spoken to at (after the first ping), e.g. `http://127.0.0.1:5000`. */
  async baseUrl(registry: string, signal?: AbortSignal): Promise<URL> {
    const linked = linkSignals(signal, this.#signal);
    try {
      return new URL((await this.#state(registry, linked.signal)).base);
    } finally {
      linked.dispose();
    }
  }

  /**
   * Sends one logical request: authenticates, retries temporary failures, follows redirects, and
   * throws RegistryError for an unexpected status or NetworkError when the registry cannot be reached.
   */
  async request(req: RegistryRequest): Promise<RegistryResponse> {
    const linked = req.cleanup ? linkSignals(req.signal) : linkSignals(req.signal, this.#signal);
    const work = { signal: linked.signal };
    this.#inflight.add(work);
    const done = (): void => {
      this.#inflight.delete(work);
      linked.dispose();
    };
    let response: RegistryResponse | undefined;
    try {
      response = await this.#request(req, linked.signal);
      return response;
    } finally {
      // A streamed body is still to be read, under the same signals: it stays under way until it closes.
      const body = response?.body;
      if (body && !body.closed) body.once('close', done);
      else done();
    }
  }

  /**
   * Runs `work`, a clean-up of one or more requests (an upload session's DELETE, and the GET that
   * finds its live Location when the first is refused), as one piece under way: close() waits for
   * all of it, not only for the request in flight when it was called, and lets its requests through.
   * `signal` bounds it (a timeout: nobody waits on a clean-up for long).
   */
  cleanup<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    return this.#tracked(signal, () => inCleanup.run(true, work));
  }

  /** Runs `work` counted as under way (see close()). */
  async #tracked<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    const entry = { signal };
    this.#inflight.add(entry);
    try {
      return await work();
    } finally {
      this.#inflight.delete(entry);
    }
  }

  async #request(req: RegistryRequest, signal: AbortSignal | undefined): Promise<RegistryResponse> {
    throwIfAborted(signal);
    const state = await this.#state(req.registry, signal, req.failFast === true);
    const url = new URL(req.path, state.base);
    if (url.host !== state.base.host) await checkHop(state.base, url, `location for ${req.method} ${redactUrl(url)}`, this.#insecure);
    const scopes = [...(req.scopes ?? [])];
    const kind = req.kind ?? (req.stream && req.method === 'GET' ? 'pull' : typeof req.body === 'function' ? 'push' : 'meta');
    const retry = req.failFast === true ? false : (req.retry ?? true);
    const follow = req.followRedirects ?? (req.method === 'GET' || req.method === 'HEAD');
    let authRetried = false;

    for (let attempt = 1; ; attempt++) {
      const { authorization, lease } = await this.#authorization(state, scopes, signal);
      let response: Attempt;
      try {
        response = await this.#send(state, req, url, authorization, kind, follow, signal);
      } catch (err) {
        if (signal?.aborted) throw new AbortedError(`${req.method} ${redactUrl(url)}: aborted`, { cause: signal.reason });
        if (SlipwayError.is(err)) throw err;
        // The body's own source failed (a layout blob nobody may read): a file's error names its path,
        // and blaming the upload URL sent the user to look at the registry.
        const path = (err as NodeJS.ErrnoException).path;
        if (isErrnoError(err) && typeof path === 'string') {
          throw new SlipwayError('SLIPWAY_IO', `reading ${JSON.stringify(path)} to send it to ${state.registry} failed: ${err.message}`, { cause: err });
        }
        const temporary = isTemporaryNetworkError(err);
        if (retry && temporary && attempt < this.#retry.attempts) {
          const delay = backoffDelay(attempt, this.#retry);
          debug('%s %s: %s; retry %d in %dms', req.method, redactUrl(url), describeNetworkError(err), attempt, delay);
          await pause(delay, signal);
          continue;
        }
        // The hop that failed (a redirect to blob storage may go through another proxy, or none).
        const failed = failedHop.get(err as object) ?? url;
        throw new NetworkError(req.method, redactUrl(failed), `${this.#describe(err, failed)}${attempt > 1 ? ` after ${attempt} attempts` : ''}`, {
          cause: err,
          errno: errnoOf(err),
          temporary,
        });
      }

      const { status } = response;
      debug('%s %s -> %d (attempt %d)', req.method, redactUrl(response.url), status, attempt);
      this.#noteWarnings(state.registry, response.headers.warning);

      let staleToken = false;
      if (status === 401 && response.url.host === state.base.host) {
        const challenge = pickChallenge(parseChallenges(response.headers['www-authenticate']));
        // Registries may answer the ping without auth but challenge per repository; learn it now, also
        // for a request that is not re-sent, so the next one authenticates.
        if (challenge) state.challenge ??= challenge;
        // The token this request sent is no good any more (expired early, revoked): drop that very cache
        // entry, whatever `retry` says, so the next request fetches a fresh one. Not the entry of the
        // challenge's scope: distribution 2.8 challenges an upload-status GET with `:pull` where the
        // token in use is `:pull,push`. A token refused for insufficient_scope is still good for its scope.
        if (lease && challenge?.params.error !== 'insufficient_scope') staleToken = this.#tokens.reject(lease);
        // failFast turns off the backoff retries, not this one re-request: without it a mirror that
        // challenges per repository (an anonymous ping, then 401 with the scope) would never be used.
        // A request with `retry: false` is not re-sent (a PUT may have left bytes in the session); it
        // fails, and its caller's recovery goes on with a fresh token.
        if (!authRetried && challenge && (retry || req.failFast === true)) {
          authRetried = true;
          if (challenge.scheme === 'bearer') {
            const wanted = challenge.params.scope;
            // insufficient_scope names the scope the registry wants: add what is missing and re-request once (c/image, ggcr).
            // One the scopes held already cover is not added: distribution 2.8 challenges an upload-status
            // GET with `:pull` where the request holds `:pull,push`, and the re-request then reuses the cache.
            if (wanted) for (const scope of wanted.split(' ')) if (scope && !scopes.some((held) => covers(held, scope))) scopes.push(scope);
          }
          await dump(response);
          attempt--;
          continue;
        }
      } else if (lease) {
        this.#tokens.accept(lease);
      }

      const expected = req.expect ? req.expect.includes(status) : status >= 200 && status < 300;
      if (!expected && retry && isTemporaryStatus(status) && attempt < this.#retry.attempts) {
        const retryAfter = parseRetryAfter(response.headers['retry-after']);
        // Never sooner than our own backoff: a Retry-After in the past (or 0) must not become a tight loop.
        const delay = Math.max(backoffDelay(attempt, this.#retry), Math.min(retryAfter ?? 0, this.#retry.maxRetryAfterMs));
        debug('%s %s: status %d; retry %d in %dms', req.method, redactUrl(response.url), status, attempt, delay);
        await dump(response);
        await pause(delay, signal);
        continue;
      }
      if (!expected) {
        const hint = status === 401 || status === 403 ? await this.#authHint(state, scopes, status, response.headers['www-authenticate'], staleToken) : undefined;
        throw await this.#error(req.method, response, hint);
      }

      if (req.stream && req.method !== 'HEAD') {
        const body = response.body;
        body.once('close', response.release);
        // Destroying an unread undici body emits RequestAbortedError; callers that discard a body
        // must not crash the process for it. Their own listeners still see every error.
        body.on('error', ignore);
        return makeResponse(response, Buffer.alloc(0), body);
      }
      let bytes: Buffer;
      try {
        bytes = req.method === 'HEAD' ? Buffer.alloc(0) : await readCapped(response.body, req.maxBodyBytes ?? maxErrorBodyBytes);
      } catch (err) {
        if (err instanceof BodyTooLargeError) {
          throw new SlipwayError('SLIPWAY_REGISTRY', `${req.method} ${redactUrl(response.url)}: response body exceeds ${err.limit} bytes`, { cause: err });
        }
        // A body cut short (a reset mid-manifest) is as temporary as a failed connect: bodies sent are
        // bytes or thunks, so the request can be sent again.
        if (retry && isTemporaryNetworkError(err) && attempt < this.#retry.attempts && !signal?.aborted) {
          const delay = backoffDelay(attempt, this.#retry);
          debug('%s %s: reading the body: %s; retry %d in %dms', req.method, redactUrl(response.url), describeNetworkError(err), attempt, delay);
          // The connection's slot is given back before the wait, as the retry on a status does.
          await dump(response);
          await pause(delay, signal);
          continue;
        }
        throw new NetworkError(req.method, redactUrl(response.url), `reading response: ${this.#describe(err, response.url)}`, {
          cause: err,
          errno: errnoOf(err),
          temporary: isTemporaryNetworkError(err),
        });
      } finally {
        await dump(response);
      }
      return makeResponse(response, bytes);
    }
  }

  /**
   * A network failure in words, naming the proxy when the request went through one (a refused
   * connection is then the proxy's, not the registry's) and saying what a 407 asks for.
   */
  #describe(err: unknown, url: URL): string {
    const route = this.#routeOrNone(url);
    if (!route) return describeNetworkError(err);
    if (proxyRefusal(err) === 407) {
      return !route.hasCredentials
        ? `proxy ${route.label} asks for credentials (HTTP 407 Proxy Authentication Required): put them in its URL, http://user:password@host:port`
        : `proxy ${route.label} refused the credentials in its URL (HTTP 407 Proxy Authentication Required)`;
    }
    return `${describeNetworkError(err)} through proxy ${route.label}`;
  }

  /** `Warning: 299 - "…"` headers (distribution-spec: show them, deduplicated, take no action). */
  #noteWarnings(registry: string, header: string | string[] | undefined): void {
    for (const value of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
      const text = /^299\s+\S+\s+"(.*)"/.exec(value)?.[1];
      if (text === undefined || this.warnings.has(text) || text.length > 4096) continue;
      this.warnings.add(text);
      debug('warning from %s: %s', registry, text);
    }
  }

  /**
   * Dispatchers with the registry's certs.d material (CAs on top of the system roots,
   * `caCertificates` and `SSL_CERT_FILE`/`SSL_CERT_DIR`, client certificates), made once per registry; undefined when it has none.
   */
  #registryTls(registry: string, http: Http): Promise<RegistryTls | undefined> {
    let found = this.#hostTls.get(registry);
    if (!found) {
      found = readHostCertificates(this.#certDirectories, registry).then(async (certs) => {
        if (!certs) return undefined;
        debug('TLS for %s from %s: %d CA, %d client certificates', registry, certs.directory, certs.ca.length, certs.cert.length);
        const client = certs.cert.length > 0 ? { cert: certs.cert, key: certs.key } : undefined;
        const ca = [...this.#caCertificates, ...(await http.environmentCa()), ...certs.ca];
        return {
          secure: http.make({ secureContext: secureContextTrusting(ca, client) }),
          unverified: http.make({ rejectUnauthorized: false, ...client }),
          directory: certs.directory,
          clientCertificate: certs.cert.length > 0,
        };
      });
      // A failed read (a key without its certificate) is reported on every call, not remembered.
      found.catch(() => this.#hostTls.delete(registry));
      this.#hostTls.set(registry, found);
    }
    return found;
  }

  /**
   * A TLS 1.3 registry that refuses our client certificate (or wants one) completes the handshake and
   * then closes the connection: no alert reaches the client, only "other side closed". Say so.
   */
  #clientCertificateHint(registry: string, err: unknown, certs: RegistryTls | undefined): string {
    const errno = errnoOf(err);
    if (errno !== 'UND_ERR_SOCKET' && errno !== 'ECONNRESET') return '';
    return certs?.clientCertificate
      ? `; if the registry requires client certificates, it refused the one in ${certs.directory}`
      : `; if the registry requires a client certificate, put client.cert and client.key in ${this.#certsDirectoryFor(registry, certs)}`;
  }

  /** How SSL_CERT_FILE/SSL_CERT_DIR could trust a CA, or that the ones set did not hold it. */
  #environmentCaHint(): string {
    const { file, directories } = this.#certEnvironment;
    if (file === undefined && directories.length === 0) return '; or point SSL_CERT_FILE at its CA (or SSL_CERT_DIR at a directory of CAs), trusted for every host';
    const read = [...(file === undefined ? [] : [`SSL_CERT_FILE (${file})`]), ...(directories.length === 0 ? [] : [`SSL_CERT_DIR (${directories.join(':')})`])];
    return `; ${read.join(' and ')} did not hold its CA`;
  }

  /** The certs.d directory a registry's TLS material is in, or would go in (the first root). */
  #certsDirectoryFor(registry: string, certs: RegistryTls | undefined): string {
    return certs?.directory ?? join(this.#certDirectories[0] ?? '<certs.d>', registry);
  }

  /** The proxy a request to `url` goes through, for messages: never throws (see routeFor). */
  #routeOrNone(url: URL): ProxyRoute | undefined {
    try {
      return this.#proxy.routeFor(url);
    } catch {
      return undefined;
    }
  }

  /** The registry's base URL and auth challenge, found by pinging `/v2/` once (failures are not remembered). */
  #state(registry: string, signal: AbortSignal | undefined, failFast = false): Promise<RegistryState> {
    return this.#states.get({ registry, failFast }, signal);
  }

  async #ping(registry: string, signal: AbortSignal | undefined, attempts: number): Promise<RegistryState> {
    const host = registryHost(registry);
    const insecure = matchesInsecure(host, this.#insecure) || matchesInsecure(registry, this.#insecure);
    // An insecure registry is tried over HTTPS without verification, then plain HTTP, as dockerd does.
    // Loopback registries may speak plain HTTP (Docker's default insecure range is 127.0.0.0/8), but
    // when they speak TLS the certificate is still verified (pass caCertificates for a private CA).
    const http = await this.#undici();
    const certs = await this.#registryTls(registry, http);
    const tls = certs ?? http;
    const candidates: [string, Dispatcher][] = insecure
      ? [
          [`https://${host}`, tls.unverified],
          [`http://${host}`, tls.unverified],
        ]
      : isLoopback(host)
        ? [
            [`https://${host}`, tls.secure],
            [`http://${host}`, tls.secure],
          ]
        : [[`https://${host}`, tls.secure]];
    let lastError: unknown;
    let lastUrl = new URL('/v2/', candidates.at(-1)![0]);
    let timeouts = 0;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let unreachable = false;
      let tlsFailure: unknown;
      for (let c = 0; c < candidates.length; c++) {
        const [base, dispatcher] = candidates[c]!;
        const url = new URL('/v2/', base);
        try {
          // An unusable proxy URL fails here, with its own error (see ProxyConfig.routeFor).
          this.#proxy.routeFor(url);
          const res = await http.request(dispatcher, { ...at(url), method: 'GET', headers: { 'user-agent': this.#userAgent }, signal });
          const text = res.statusCode === 400 && tlsFailure !== undefined ? (await readCapped(res.body, 1024, true)).toString('utf8') : '';
          await res.body.dump({ limit: maxErrorBodyBytes });
          // Go's servers answer plain HTTP on a TLS port with this 400: the registry speaks TLS, and the
          // HTTPS attempt's failure is the one to report (a registry wanting a client certificate ends
          // up here on loopback, where plain HTTP is tried next).
          if (/HTTP request to an HTTPS server/i.test(text)) {
            const httpsUrl = new URL('/v2/', candidates[0]![0]);
            throw new NetworkError('GET', httpsUrl.href, `registry ${registry} speaks HTTPS, and the TLS connection failed: ${this.#describe(tlsFailure, httpsUrl)}${this.#clientCertificateHint(registry, tlsFailure, certs)}`, {
              cause: tlsFailure,
              errno: errnoOf(tlsFailure),
              temporary: false,
            });
          }
          if (isTemporaryStatus(res.statusCode) && attempt < attempts) {
            unreachable = true;
            break;
          }
          // The distribution spec's first endpoint: a registry answers /v2/ (200, or 401 to say how to
          // log in); a 404 there is a web server that is not one. Going on made every call a "manifest
          // not found" (exit 3, "absent" to a script) where skopeo and crane stop here.
          if (res.statusCode === 404) {
            throw new NetworkError('GET', url.href, `${registry} is not an OCI registry: it answered 404 Not Found at /v2/, where a registry answers 200 or 401`, { temporary: false });
          }
          const challenge = res.statusCode === 401 ? pickChallenge(parseChallenges(res.headers['www-authenticate'])) : undefined;
          debug('ping %s -> %d %s', url.href, res.statusCode, challenge ? `(${challenge.scheme})` : '');
          return { registry, base: new URL(base), dispatcher, secure: tls.secure, ...(challenge ? { challenge } : {}) };
        } catch (err) {
          if (signal?.aborted) throw new AbortedError(`pinging ${registry}: aborted`, { cause: signal.reason });
          if (SlipwayError.is(err)) throw err;
          lastError = err;
          lastUrl = url;
          if (url.protocol === 'https:') tlsFailure = err;
          if (isCertificateError(err)) {
            // Refused by the default trust: once more, trusting the CAs SSL_CERT_FILE/SSL_CERT_DIR add
            // (read now, the first time one is needed). The registry keeps the wider dispatcher.
            const wider = dispatcher === http.secure ? await http.environmentSecure() : undefined;
            if (wider) {
              for (const candidate of candidates) if (candidate[1] === http.secure) candidate[1] = wider;
              c--;
              continue;
            }
            const where = certs ? `add its CA to ${certs.directory}` : `put its CA in ${this.#certsDirectoryFor(registry, certs)}/ca.crt`;
            const proxy = this.#routeOrNone(url);
            // Kept apart from the per-registry advice, which the CLI rewrites into its flags.
            const everyRegistry = this.#environmentCaHint();
            // Through an https:// proxy the certificate may be the proxy's, which certs.d and insecure do not cover.
            const whose =
              proxy?.label.startsWith('https:') === true
                ? `TLS certificate of ${host} or of proxy ${proxy.label} not trusted (${this.#describe(err, url)}); for the registry: ${where}, pass it in caCertificates, or list ${host} in insecure; for the proxy: pass its CA in caCertificates or NODE_EXTRA_CA_CERTS${everyRegistry}`
                : `TLS certificate of ${host} not trusted (${this.#describe(err, url)}); ${where}, pass it in caCertificates, or list ${host} in insecure${everyRegistry}`;
            throw new NetworkError('GET', url.href, whose, {
              cause: err,
              errno: errnoOf(err),
              temporary: false,
            });
          }
          // Nobody listening means the registry is down, not speaking another protocol: wait and retry.
          // Anything else (a TLS handshake answered in plain HTTP) moves on to the next scheme.
          const errno = errnoOf(err);
          // A connect timeout is tried once more, not with every attempt: five made a black-holed or
          // silent host cost 55 s before the error. One more, because behind a TCP load balancer
          // (kube-proxy, an NLB) one hung backend stalls one connection and the next one works.
          if (errno === 'UND_ERR_CONNECT_TIMEOUT') {
            timeouts++;
            unreachable = true;
            break;
          }
          if (errno === 'ECONNREFUSED' || (base === candidates.at(-1)![0] && isTemporaryNetworkError(err))) {
            unreachable = true;
            break;
          }
        }
      }
      if (!unreachable || timeouts >= 2 || attempt === attempts) break;
      await pause(backoffDelay(attempt, this.#retry), signal);
    }
    // The URL the reported failure happened at: on loopback a refused or silent HTTPS port ends the
    // round before plain HTTP is tried, and naming http:// then pointed at a request never sent.
    const last = lastUrl;
    // skopeo and crane say "server gave HTTP response to HTTPS client"; what to do about it is the news.
    const plainHttp = last.protocol === 'https:' && errnoOf(lastError) === 'ERR_SSL_WRONG_VERSION_NUMBER' ? `; if ${registry} is a plain-HTTP registry, list ${registry} in insecure` : '';
    const hint = last.protocol === 'https:' ? `${plainHttp}${this.#clientCertificateHint(registry, lastError, certs)}` : '';
    throw new NetworkError('GET', last.href, `registry ${registry} unreachable: ${this.#describe(lastError, last)}${hint}`, {
      cause: lastError,
      errno: errnoOf(lastError),
      temporary: isTemporaryNetworkError(lastError),
    });
  }

  /**
   * Credentials for a request, by the repository of its first scope (the push scope when a mount asks
   * for two): a containers auth file may hold a login per namespace. Looked up once per repository.
   */
  #resolveCredentials(registry: string, scopes: readonly string[], signal: AbortSignal | undefined): Promise<Credentials | undefined> {
    return this.#credentials.get({ registry, repository: repositoryOfScopes(scopes) }, signal);
  }

  async #lookUpCredentials(registry: string, repository: string | undefined, signal: AbortSignal): Promise<Credentials | undefined> {
    const credentials = await this.#keychain?.resolve(registry, { ...(repository ? { repository } : {}), signal });
    const { secrets, pairs } = secretsOf(credentials);
    this.secrets.add(...secrets);
    this.secrets.addWhole(...pairs);
    debug('credentials for %s%s: %s', registry, repository ? ` (${repository})` : '', describeCredentials(credentials));
    return credentials;
  }

  /** The `Authorization` for a request, and the lease of the cached token in it (to report a 401 on). */
  async #authorization(state: RegistryState, scopes: string[], signal: AbortSignal | undefined): Promise<{ authorization?: string; lease?: TokenLease }> {
    const challenge = state.challenge;
    if (!challenge) return {};
    const credentials = await this.#resolveCredentials(state.registry, scopes, signal);
    if (credentials && 'registryToken' in credentials) return { authorization: `Bearer ${credentials.registryToken}` };
    if (challenge.scheme === 'basic') {
      if (!credentials || !('password' in credentials)) return {};
      return { authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` };
    }
    const lease = await this.#tokens.lease(
      tokenKey(state, challenge, scopes),
      (exchangeSignal) => this.#tracked(exchangeSignal, () => this.#fetchToken(state, challenge, scopes, credentials, exchangeSignal)),
      signal,
    );
    // In use again: redaction keeps the tokens last used (see SecretSet.addShortLived).
    this.secrets.addShortLived(lease.token, 0);
    return { authorization: `Bearer ${lease.token}`, lease };
  }

  /**
   * Exchanges credentials for a Bearer token at the challenge's realm (distribution token spec):
   * OAuth2 POST for identity tokens (GET when the realm answers 404), GET with Basic otherwise.
   */
  async #fetchToken(
    state: RegistryState,
    challenge: Challenge,
    scopes: readonly string[],
    credentials: Credentials | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ token: string; expiresInMs: number }> {
    const realm = challenge.params.realm;
    if (!realm) throw new SlipwayError('SLIPWAY_AUTH', `${state.registry} asked for a Bearer token but named no realm`);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new SlipwayError('SLIPWAY_AUTH', `${state.registry} named an invalid token realm ${JSON.stringify(redactUrl(realm))}`);
    }
    await checkHop(state.base, realmUrl, `token realm of ${state.registry}`, this.#insecure);
    const service = challenge.params.service;
    const http = await this.#undici();
    // The realm is reached with the registry's own dispatcher, whatever its host: its certs.d CA and
    // client certificate, as Docker and containers/image use one TLS configuration per registry (and,
    // for a registry listed insecure, no verification, as before).
    const dispatcher = state.dispatcher;

    const send = async (method: 'GET' | 'POST'): Promise<Attempt> => {
      const url = new URL(realmUrl);
      const headers: Record<string, string> = { 'user-agent': this.#userAgent, accept: 'application/json' };
      let body: string | undefined;
      if (method === 'POST' && credentials && 'identityToken' in credentials) {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credentials.identityToken, client_id: 'slipway' });
        if (service) form.set('service', service);
        if (scopes.length > 0) form.set('scope', scopes.join(' '));
        body = form.toString();
        headers['content-type'] = 'application/x-www-form-urlencoded';
      } else {
        if (service) url.searchParams.set('service', service);
        for (const scope of scopes) url.searchParams.append('scope', scope);
        if (credentials && 'password' in credentials) {
          headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
        } else if (credentials && 'identityToken' in credentials) {
          // Docker's convention: the identity token as the password of the `<token>` user.
          headers.authorization = `Basic ${Buffer.from(`${credentials.username ?? '<token>'}:${credentials.identityToken}`).toString('base64')}`;
        }
      }
      // An unusable proxy URL fails here, with its own error (see ProxyConfig.routeFor).
      this.#proxy.routeFor(url);
      for (let attempt = 1; ; attempt++) {
        try {
          const res = await http.request(dispatcher, { ...at(url), method, headers, body, signal });
          const result: Attempt = { status: res.statusCode, headers: res.headers, url, body: res.body, release: () => {} };
          if (isTemporaryStatus(res.statusCode) && attempt < this.#retry.attempts) {
            await dump(result);
            await pause(backoffDelay(attempt, this.#retry), signal);
            continue;
          }
          return result;
        } catch (err) {
          if (signal?.aborted) throw new AbortedError(`fetching a token for ${state.registry}: aborted`, { cause: signal.reason });
          if (!isTemporaryNetworkError(err) || attempt >= this.#retry.attempts) {
            throw new NetworkError(method, redactUrl(url), `fetching a token: ${this.#describe(err, url)}`, {
              cause: err,
              errno: errnoOf(err),
              temporary: isTemporaryNetworkError(err),
            });
          }
          await pause(backoffDelay(attempt, this.#retry), signal);
        }
      }
    };

    let method: 'GET' | 'POST' = credentials && 'identityToken' in credentials ? 'POST' : 'GET';
    let response = await send(method);
    if (response.status === 404 && method === 'POST') {
      // Registries without the OAuth2 endpoint answer 404; fall back to the GET flow as ggcr does.
      await dump(response);
      method = 'GET';
      response = await send(method);
    }
    if (response.status !== 200) {
      const error = await this.#error(method, response);
      // As for a registry's own refusal: which credentials (and from which file) the realm turned down.
      const refused = (response.status === 401 || response.status === 403) && credentials ? `; the realm refused the credentials used (${describeCredentials(credentials)})` : '';
      throw new SlipwayError('SLIPWAY_AUTH', `fetching a token for ${state.registry} (scope ${scopes.join(' ') || 'none'}): ${error.message}${refused}`, { cause: error });
    }
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    let text: string;
    try {
      text = (await readCapped(response.body, maxTokenBytes)).toString('utf8');
    } catch (err) {
      // Not passed on as the cause: a BodyTooLargeError cause reads as "this manifest is too big" upstream.
      const why = err instanceof BodyTooLargeError ? `the realm's answer exceeds ${maxTokenBytes} bytes` : `reading the realm's answer: ${describeNetworkError(err)}`;
      throw new SlipwayError('SLIPWAY_AUTH', `fetching a token for ${state.registry}: ${why}`);
    }
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (err) {
      throw new SlipwayError('SLIPWAY_AUTH', `fetching a token for ${state.registry}: the realm's answer is not a JSON token response`, { cause: err });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new SlipwayError('SLIPWAY_AUTH', `fetching a token for ${state.registry}: the realm's answer is not a JSON token response`);
    }
    // Some issuers answer `access_token` only (OAuth2), some `token` only, some both (ggcr #54).
    const token = typeof parsed.token === 'string' && parsed.token !== '' ? parsed.token : parsed.access_token;
    if (typeof token !== 'string' || token === '') throw new SlipwayError('SLIPWAY_AUTH', `fetching a token for ${state.registry}: the realm's answer has no token`);
    // The token spec's default lifetime is 60 s; renew a little early so a token never expires mid-request.
    const seconds = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
    this.secrets.addShortLived(token, seconds * 1000);
    debug('token for %s scope %s: %ds', state.registry, scopes.join(' '), seconds);
    return { token, expiresInMs: Math.max(1, seconds - Math.min(10, seconds / 4)) * 1000 };
  }

  /** One attempt, following redirects for GET/HEAD with `Authorization` dropped when the host changes. */
  async #send(
    state: RegistryState,
    req: RegistryRequest,
    start: URL,
    authorization: string | undefined,
    kind: 'pull' | 'push' | 'meta',
    follow: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Attempt> {
    const http = await this.#undici();
    // Open the body before taking a slot: a body streamed from another registry takes a download slot
    // there, and always taking download slots before upload slots keeps copies deadlock-free.
    const body = typeof req.body === 'function' ? await req.body() : req.body;
    let release: Release;
    try {
      release = await this.#slot(state.base.host, kind, signal);
    } catch (err) {
      if (body && typeof body === 'object' && 'destroy' in body) body.destroy();
      throw err;
    }
    let url = start;
    try {
      for (let hop = 0; ; hop++) {
        const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...req.headers };
        if (authorization && url.host === state.base.host) headers.authorization = authorization;
        if (body instanceof Uint8Array && headers['content-length'] === undefined) headers['content-length'] = String(body.byteLength);
        const dispatcher = url.host === state.base.host || url.protocol === 'http:' ? state.dispatcher : state.secure;
        this.#proxy.routeFor(url);
        const res = await http.request(dispatcher, {
          ...at(url),
          method: req.method,
          headers,
          body: hop === 0 ? (body ?? null) : null,
          signal,
          // undici closes the connection after every HEAD, in case a server sends a body anyway
          // (nodejs/undici#258); registries do not, and a blob HEAD per layer would otherwise cost a
          // new connection (a TLS handshake on a remote registry) each time.
          ...(req.method === 'HEAD' ? { reset: false } : {}),
        });
        const location = res.headers.location;
        if (follow && res.statusCode >= 300 && res.statusCode < 400 && res.statusCode !== 304 && typeof location === 'string') {
          await res.body.dump({ limit: maxErrorBodyBytes });
          if (hop >= maxRedirects) throw new SlipwayError('SLIPWAY_REGISTRY', `${req.method} ${redactUrl(start)}: more than ${maxRedirects} redirects`);
          const next = new URL(location, url);
          await checkHop(url, next, `redirect from ${redactUrl(url)}`, this.#insecure);
          debug('%s %s -> %d redirect to %s', req.method, redactUrl(url), res.statusCode, redactUrl(next));
          url = next;
          continue;
        }
        return { status: res.statusCode, headers: res.headers, url, body: res.body, release };
      }
    } catch (err) {
      release();
      if (typeof err === 'object' && err !== null) failedHop.set(err, url);
      throw err;
    }
  }

  #slot(host: string, kind: string, signal: AbortSignal | undefined): Promise<Release> {
    const key = `${kind} ${host}`;
    let semaphore = this.#slots.get(key);
    if (!semaphore) {
      semaphore = new Semaphore(this.#concurrency);
      this.#slots.set(key, semaphore);
    }
    return semaphore.acquire(signal);
  }

  /**
   * Which credentials a 401/403 answered, in words: a bare "401 UNAUTHORIZED" does not say whether
   * none were found (a login missing, a config not read) or some were refused. Never their values.
   */
  async #authHint(state: RegistryState, scopes: readonly string[], status: number, wwwAuthenticate: string | string[] | undefined, staleToken: boolean): Promise<string> {
    const { registry } = state;
    // A token the registry took before and now refuses expired early or was revoked (a short-lived
    // token on a slow push, clock skew): the credentials it came from are fine, and it is dropped.
    if (status === 401 && staleToken) return `${registry} refused a token it had accepted before (expired early or revoked); the next request fetches a new one`;
    if (status === 401 && !state.challenge && !pickChallenge(parseChallenges(wwwAuthenticate))) {
      // Nothing was sent: "refused the credentials used" would send the user hunting a wrong password.
      const schemes = [...new Set(parseChallenges(wwwAuthenticate).map((c) => c.scheme))];
      return schemes.length > 0
        ? `${registry} asks for ${schemes.join(', ')} authentication, which slipway does not speak (Basic and Bearer only); no credentials were sent`
        : `${registry} answered 401 without a WWW-Authenticate challenge to answer; no credentials were sent`;
    }
    const credentials = await this.#resolveCredentials(registry, scopes, undefined).catch(() => undefined);
    if (!credentials) {
      // What the keychain passed over (a credsStore not installed, logins for other paths) is why.
      const notes = (await this.#keychain?.explainMissing?.(registry).catch(() => [])) ?? [];
      return `no credentials for ${registry} were found (docker login ${registry}, a Docker config or containers auth file, or explicit credentials)${notes.map((n) => `; ${n}`).join('')}`;
    }
    // An identity token answers a Bearer challenge (it is exchanged at the realm), not a Basic one:
    // #authorization sent nothing, and "refused" would point at a token the registry never saw.
    if (state.challenge?.scheme === 'basic' && 'identityToken' in credentials) {
      return `${registry} asks for Basic authentication, and the credentials found for it are an identity token, which only a Bearer token exchange takes; no credentials were sent`;
    }
    const which = describeCredentials(credentials);
    // The realm took the login and issued a token, but not for what was asked (a pull-only user
    // pushing): "refused the credentials" would send the user to retype a password that works.
    const insufficient = parseChallenges(wwwAuthenticate).find((c) => c.scheme === 'bearer' && c.params.error === 'insufficient_scope');
    if (insufficient && state.challenge?.scheme === 'bearer') {
      const wanted = insufficient.params.scope ?? scopes.join(' ');
      return `the credentials used for ${registry} (${which}) were accepted, but do not grant ${wanted} (insufficient_scope): ask for that access, or use credentials that have it`;
    }
    return status === 401 ? `${registry} refused the credentials used (${which})` : `the credentials used for ${registry} (${which}) do not allow this`;
  }

  /** Builds the RegistryError for a response, reading its body through the cap and scrubbing secrets. */
  async #error(method: string, response: Attempt, hint?: string): Promise<RegistryError> {
    let text = '';
    try {
      text = method === 'HEAD' ? '' : (await readCapped(response.body, maxErrorBodyBytes, true)).toString('utf8');
    } catch {
      // A body that breaks while we read the error is not worth a second error.
    } finally {
      await dump(response);
    }
    const errors = parseErrorBody(text)?.map((e) => ({
      code: this.secrets.redact(e.code),
      message: this.secrets.redact(e.message),
      ...(e.detail === undefined ? {} : { detail: this.secrets.redactJson(e.detail) }),
    }));
    // Redacted before it is cut and its whitespace collapsed: a secret across the cut or holding
    // spaces would otherwise no longer match, and its first part be shown.
    const plain = errors === undefined && text.trim() !== '' ? shorten(this.secrets.redact(text.trim()).replace(/\s+/g, ' '), 200) : undefined;
    const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
    return new RegistryError({
      status: response.status,
      method,
      url: redactUrl(response.url),
      ...(errors ? { errors } : {}),
      ...(plain ? { text: plain } : {}),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      ...(hint ? { hint } : {}),
    });
  }
}

/** `text` cut to about `length` characters, never through a `REDACTED`, with `…` when cut. */
function shorten(text: string, length: number): string {
  if (text.length <= length) return text;
  const marker = text.lastIndexOf('REDACTED', length);
  const end = marker !== -1 && marker + 'REDACTED'.length > length ? marker + 'REDACTED'.length : length;
  return end >= text.length ? text : `${text.slice(0, end)}…`;
}

/** Node's certificate verification failures (`DEPTH_ZERO_SELF_SIGNED_CERT`, `ERR_TLS_CERT_ALTNAME_INVALID`, …). */
function isCertificateError(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME/.test(code)) return true;
  }
  return false;
}

/** `repository:team/app:pull,push` → `team/app`: the repository whose credentials a request uses. */
function repositoryOfScopes(scopes: readonly string[]): string | undefined {
  const first = scopes.find((scope) => scope.startsWith('repository:'));
  if (!first) return undefined;
  const name = first.slice('repository:'.length, first.lastIndexOf(':'));
  return name === '' ? undefined : name;
}

/** Whether token scope `held` grants all `wanted` does: `repository:a:pull,push` covers `repository:a:pull`. */
function covers(held: string, wanted: string): boolean {
  if (held === wanted) return true;
  const split = (scope: string): [string, string[]] => {
    const colon = scope.lastIndexOf(':');
    return [scope.slice(0, colon), scope.slice(colon + 1).split(',')];
  };
  const [heldResource, heldActions] = split(held);
  const [wantedResource, wantedActions] = split(wanted);
  return heldResource === wantedResource && (heldActions.includes('*') || wantedActions.every((action) => heldActions.includes(action)));
}

function tokenKey(state: RegistryState, challenge: Challenge, scopes: readonly string[]): string {
  return `${state.registry}\n${challenge.params.realm ?? ''}\n${challenge.params.service ?? ''}\n${scopes.join(' ')}`;
}

function ignore(): void {
  // Intentionally empty: see the streamed-body comment in request().
}

function makeResponse(attempt: Attempt, bytes: Buffer, body?: Readable): RegistryResponse {
  const headers = attempt.headers;
  return {
    status: attempt.status,
    headers,
    url: attempt.url,
    bytes,
    ...(body ? { body } : {}),
    header(name: string) {
      const value = headers[name.toLowerCase()];
      return Array.isArray(value) ? value[0] : value;
    },
  };
}

/** Discards what is left of a body (so the connection can be reused) and frees the concurrency slot. */
async function dump(attempt: Attempt): Promise<void> {
  try {
    await attempt.body.dump({ limit: maxErrorBodyBytes });
  } catch {
    // The connection is closed instead of reused; nothing else to do.
  } finally {
    attempt.release();
  }
}

async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (err) {
    throw new AbortedError('operation aborted while waiting to retry', { cause: signal?.reason ?? err });
  }
}

/** Creates the shared HTTP client. */
export function createTransport(options: TransportOptions = {}): Transport {
  return new Transport(options);
}

/** The URL of the hop a request failed on, by error: #send follows redirects, #request reports. */
const failedHop = new WeakMap<object, URL>();
