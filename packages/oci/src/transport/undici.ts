/**
 * undici, loaded on first use, and only the parts slipway calls: Agent, Client and the request API.
 *
 * Why not `import('undici')`: its index evaluates every dispatcher, the fetch, WebSocket, cache and
 * mock stacks and all interceptors, about 70 ms here, a fifth of a CLI no-op copy (0.34 s); Agent,
 * Client and the request API alone take about 25 ms (measured: the no-op went from 335 to 291 ms).
 * undici's package.json has no "exports" map, so its `lib/` files are importable as they are; should a
 * release move them, the whole package is loaded instead (the same classes, only a slower start), and
 * the unit test beside this file fails so that the lost start-up time does not go unnoticed.
 * @module
 */
import type { Socket } from 'node:net';
import type { Agent, buildConnector, Client, Dispatcher, Pool, ProxyAgent } from 'undici';
import { errnoOf, markTlsHandshakeTimeout } from './retry.js';

export interface UndiciParts {
  Agent: typeof Agent;
  Client: typeof Client;
  /** undici's own connector factory (what an Agent's `connect` options object becomes). */
  buildConnector: typeof buildConnector;
  /**
   * undici's request API on `dispatcher` (`origin` + `path` in `options`), what `dispatcher.request()`
   * is, except that an abort rejects at once even while the connection is still being made (see
   * {@link abortable}).
   */
  request: (dispatcher: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
  /** `lib`: only the parts were evaluated; `package`: the whole package (the lib layout was not found). */
  loadedFrom: 'lib' | 'package';
}

type RequestApi = (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

// Specifiers in variables: TypeScript has no declarations for undici's lib files (types come from
// the package's index.d.ts, imported above).
const agentModule = 'undici/lib/dispatcher/agent.js';
const clientModule = 'undici/lib/dispatcher/client.js';
const requestModule = 'undici/lib/api/api-request.js';
const connectModule = 'undici/lib/core/connect.js';

let loading: Promise<UndiciParts> | undefined;

/** undici's parts, imported once per process. */
export function loadUndici(): Promise<UndiciParts> {
  loading ??= loadUndiciParts('lib').catch(() => loadUndiciParts('package'));
  return loading;
}

/** Exported for tests: each way of loading, without the process-wide memo. */
export async function loadUndiciParts(from: 'lib' | 'package'): Promise<UndiciParts> {
  if (from === 'package') {
    const undici = await import('undici');
    return {
      Agent: undici.Agent,
      Client: undici.Client,
      buildConnector: undici.buildConnector,
      request: (dispatcher, options) => abortable(dispatcher.request(options), options.signal),
      loadedFrom: 'package',
    };
  }
  const [agent, client, api, connector] = (await Promise.all([import(agentModule), import(clientModule), import(requestModule), import(connectModule)])) as [
    { default: unknown },
    { default: unknown },
    { default: unknown },
    { default: unknown },
  ];
  if (typeof agent.default !== 'function' || typeof client.default !== 'function' || typeof api.default !== 'function' || typeof connector.default !== 'function') {
    throw new Error('undici lib layout changed');
  }
  const apiRequest = api.default as RequestApi;
  return {
    Agent: agent.default as typeof Agent,
    Client: client.default as typeof Client,
    buildConnector: connector.default as typeof buildConnector,
    request: (dispatcher, options) => abortable(apiRequest.call(dispatcher, options), options.signal),
    loadedFrom: 'lib',
  };
}

/** What routing requests through a proxy takes: loaded only when a proxy is configured. */
export interface UndiciProxyParts {
  ProxyAgent: typeof ProxyAgent;
  Pool: typeof Pool;
}

let loadingProxy: Promise<UndiciProxyParts> | undefined;

/**
 * undici's ProxyAgent, imported once per process, on first use. From the package index, not its lib
 * file: the agent talks to the proxy through the `connect` API, which only the index mixes into
 * `Dispatcher.prototype` (a lib-only load fails with "this[kClient].connect is not a function"). The
 * index costs start-up time, which only runs with a proxy pay.
 */
export function loadUndiciProxy(): Promise<UndiciProxyParts> {
  loadingProxy ??= import('undici').then((undici) => ({ ProxyAgent: undici.ProxyAgent, Pool: undici.Pool }));
  return loadingProxy;
}

/**
 * `response`, rejected as soon as `signal` aborts. undici 7 only records an abort that comes while
 * the request waits for its connection (the TLS handshake to a host that accepted the TCP connection
 * and then says nothing), and rejects when the connect times out, 10 s later: Ctrl-C had to wait
 * that long. An answer that still arrives after the abort has its body destroyed, freeing the socket.
 */
export function abortable(response: Promise<Dispatcher.ResponseData>, signal: Dispatcher.RequestOptions['signal']): Promise<Dispatcher.ResponseData> {
  if (!isAbortSignal(signal)) return response;
  const late = (): void => {
    response.then(
      (res) => res.body.destroy(),
      () => undefined,
    );
  };
  if (signal.aborted) {
    late();
    return Promise.reject(abortReason(signal));
  }
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      late();
      reject(abortReason(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    response.then(
      (res) => {
        signal.removeEventListener('abort', onAbort);
        resolve(res);
      },
      (err: Error) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function isAbortSignal(signal: unknown): signal is AbortSignal {
  return typeof signal === 'object' && signal !== null && typeof (signal as AbortSignal).addEventListener === 'function' && 'aborted' in signal;
}

/** What undici rejects an aborted request with: the signal's reason when it is an Error, else an AbortError. */
function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException('This operation was aborted', 'AbortError');
}

/** A connector for an Agent or Client, and a way to end the connections it has not finished making. */
export interface TrackedConnector {
  connect: buildConnector.connector;
  /** Destroys every socket still connecting (TCP or TLS handshake), failing its connect with `reason`. */
  destroyConnecting(reason: Error): void;
}

/**
 * undici's connector, remembering each socket until its connect ends. undici attaches a socket to
 * its client only once the handshake is done, so `destroy()` on an Agent or Client does not reach a
 * socket still in its TLS handshake with a host that accepted TCP and then said nothing: that socket
 * kept the process alive until the connect timeout, 10 s after Ctrl-C had already rejected the call.
 */
export function trackConnecting(build: typeof buildConnector, options: buildConnector.BuildOptions): TrackedConnector {
  const connecting = new Set<Socket>();
  const connector = build(options);
  const connect: buildConnector.connector = (target, callback) => {
    let tcpConnected = false;
    // undici's connector returns the socket it made (its type says void): remembered until it is
    // connected (handed back here) or closed (a failed connect destroys it).
    const socket = (connector as unknown as (o: buildConnector.Options, c: buildConnector.Callback) => Socket | undefined)(target, (...args) => {
      if (args[1]) connecting.delete(args[1]);
      // undici's connect timeout covers TCP and TLS alike; which one stalled is what the user needs
      // (nothing at that address, or something there that does not speak TLS).
      if (args[0] && tcpConnected && target.protocol === 'https:' && errnoOf(args[0]) === 'UND_ERR_CONNECT_TIMEOUT') markTlsHandshakeTimeout(args[0]);
      callback(...args);
    });
    if (socket && !socket.destroyed) {
      connecting.add(socket);
      socket.once('connect', () => (tcpConnected = true));
      socket.once('close', () => connecting.delete(socket));
    }
  };
  return {
    connect,
    destroyConnecting(reason) {
      // An error, not a bare destroy: the connector's 'error' handler then fails the connect and
      // clears its timeout, instead of the socket closing silently under a pending connect.
      for (const socket of [...connecting]) socket.destroy(reason);
      connecting.clear();
    },
  };
}
