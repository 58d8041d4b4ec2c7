/**
 * The Docker Engine API connection both daemon ends use: a host string (`DOCKER_HOST`) to an undici
 * client, requests whose failures say which daemon, image inspection, and the daemon's error bodies
 * to messages.
 * @module
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { buildConnector, Client, Dispatcher } from 'undici';
import { AbortedError, InvalidArgumentError, SlipwayError } from '../errors.js';
import { redactUserinfo } from '../name/reference.js';
import { readCapped } from '../internal/read.js';
import type { Digest } from '../v1/digest.js';
import type { Platform } from '../v1/platform.js';
import { loadUndici, trackConnecting, type UndiciParts } from '../transport/undici.js';

export const defaultDockerHost = 'unix:///var/run/docker.sock';

/** The Docker host to use: the one given, else `DOCKER_HOST` (empty means unset, as the docker CLI reads it), else the default socket. */
export function dockerHost(given: string | undefined): string {
  return given ?? (process.env.DOCKER_HOST || defaultDockerHost);
}

export interface EngineConnection {
  client: Client;
  /** The host as messages show it (never userinfo). */
  shown: string;
  request: UndiciParts['request'];
  /**
   * Destroys the client and any connection it is still making (a TLS handshake a `tcp://` host never
   * answers outlives `client.destroy()`, see trackConnecting): what every way out of a failure uses.
   */
  destroy(): Promise<void>;
}

/** An undici client for a Docker host string (undici is imported here, not at load: see transport/undici.ts). */
export async function connect(host: string): Promise<EngineConnection> {
  const { Client, buildConnector, request } = await loadUndici();
  const made = (origin: string, shown: string, options: buildConnector.BuildOptions): EngineConnection => {
    const connector = trackConnecting(buildConnector, options);
    const client = new Client(origin, { connect: connector.connect });
    return {
      client,
      shown,
      request,
      destroy: async () => {
        connector.destroyConnecting(new AbortedError(`the connection to the Docker daemon at ${shown} was closed`));
        await client.destroy().catch(() => undefined);
      },
    };
  };
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new InvalidArgumentError(`invalid Docker host ${JSON.stringify(redactUserinfo(host))}: want unix:///absolute/path`);
    return made('http://localhost', host, { socketPath });
  }
  if (host.startsWith('tcp://') || host.startsWith('http://') || host.startsWith('https://')) {
    let url: URL;
    try {
      url = new URL(host.replace(/^tcp:/, 'http:'));
    } catch {
      // Not kept as the cause: the URL parser's error quotes the input (message and `input`), userinfo and all.
      throw new InvalidArgumentError(`invalid Docker host ${JSON.stringify(redactUserinfo(host))}`);
    }
    const tls = url.protocol === 'https:' || (process.env.DOCKER_TLS_VERIFY ?? '') !== '';
    // Shown without any userinfo a URL might carry.
    const shown = `${url.protocol === 'https:' || tls ? 'https' : 'tcp'}://${url.host}`;
    if (!tls) return made(`http://${url.host}`, shown, {});
    const certs = process.env.DOCKER_CERT_PATH || join(homedir(), '.docker');
    const read = (name: string) => {
      try {
        return readFileSync(join(certs, name));
      } catch {
        return undefined;
      }
    };
    const ca = read('ca.pem');
    const cert = read('cert.pem');
    const key = read('key.pem');
    return made(`https://${url.host}`, shown, { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) });
  }
  throw new InvalidArgumentError(`unsupported Docker host ${JSON.stringify(redactUserinfo(host))}: want unix:// or tcp:// (ssh:// and npipe:// are not supported)`);
}

export function unreachable(shown: string, err: unknown, during?: string): SlipwayError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  // A daemon that answered and then went (killed mid-load, a socket proxy gone) was reached: "cannot
  // reach" sent the user to check DOCKER_HOST.
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') {
    return new SlipwayError('SLIPWAY_NETWORK', `the connection to the Docker daemon at ${shown} broke off${during ? ` during ${during}` : ''} (${code})`, { cause: err });
  }
  return new SlipwayError('SLIPWAY_NETWORK', `cannot reach the Docker daemon at ${shown}${code ? ` (${code})` : ''}`, { cause: err });
}

export async function daemonMessage(body: Readable): Promise<string> {
  try {
    const text = (await readCapped(body, 16 * 1024, true)).toString('utf8');
    const message = (JSON.parse(text) as { message?: unknown }).message;
    return typeof message === 'string' ? message : text.slice(0, 200);
  } catch {
    return '';
  }
}

/** Sends one request; a cancellation is AbortedError, any other failure SLIPWAY_NETWORK naming the daemon. */
export async function send(connection: EngineConnection, options: Omit<Dispatcher.RequestOptions, 'origin'>): Promise<Dispatcher.ResponseData> {
  const request = `${options.method} ${options.path.replace(/\?.*$/, '')}`;
  let answer: Dispatcher.ResponseData;
  try {
    answer = await connection.request(connection.client, options);
  } catch (err) {
    const signal = options.signal as AbortSignal | undefined;
    if (signal?.aborted) throw new AbortedError('operation aborted', { cause: signal.reason });
    throw unreachable(connection.shown, err, request);
  }
  // The Engine (and Podman's Docker API) puts Api-Version on every answer. A DOCKER_HOST naming
  // something else (a registry, a web server) gave "image not found" or a 404 with no reason.
  if (answer.headers['api-version'] === undefined) {
    await answer.body.dump().catch(() => undefined);
    throw new SlipwayError('SLIPWAY_NETWORK', `${connection.shown} does not answer as a Docker Engine does (HTTP ${answer.statusCode} to ${request}, with no Api-Version header): check DOCKER_HOST`);
  }
  return answer;
}

/** The ID of the image `image` names in the daemon (`GET /images/{name}/json`), or undefined when it has none. */
export async function inspectImageId(connection: EngineConnection, image: string, signal?: AbortSignal): Promise<Digest | undefined> {
  const { shown } = connection;
  const answer = await send(connection, { method: 'GET', path: `/images/${encodeURIComponent(image)}/json`, ...(signal ? { signal } : {}) });
  if (answer.statusCode === 404) {
    await answer.body.dump();
    return undefined;
  }
  if (answer.statusCode !== 200) {
    throw new SlipwayError('SLIPWAY_NETWORK', `Docker daemon at ${shown} answered ${answer.statusCode} to inspecting ${JSON.stringify(image)}: ${await daemonMessage(answer.body)}`);
  }
  const id = (JSON.parse((await readCapped(answer.body, 4 * 1024 * 1024)).toString('utf8')) as { Id?: unknown }).Id;
  if (typeof id !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(id)) throw new SlipwayError('SLIPWAY_NETWORK', `Docker daemon at ${shown} returned no image ID for ${JSON.stringify(image)}`);
  return id as Digest;
}

/** Points `image` (`name:tag`, as docker shows it) at the image `id` (`POST /images/{id}/tag`). */
export async function tagImage(connection: EngineConnection, id: Digest, image: string, signal?: AbortSignal): Promise<void> {
  const colon = image.lastIndexOf(':');
  const tagged = colon > image.lastIndexOf('/');
  const query = new URLSearchParams({ repo: tagged ? image.slice(0, colon) : image, tag: tagged ? image.slice(colon + 1) : 'latest' });
  const answer = await send(connection, { method: 'POST', path: `/images/${encodeURIComponent(id)}/tag?${query.toString()}`, ...(signal ? { signal } : {}) });
  if (answer.statusCode !== 201 && answer.statusCode !== 200) {
    throw new SlipwayError('SLIPWAY_NETWORK', `Docker daemon at ${connection.shown} answered ${answer.statusCode} to tagging ${id} as ${JSON.stringify(image)}: ${await daemonMessage(answer.body)}`);
  }
  await answer.body.dump();
}

/**
 * The platform the daemon runs (`GET /version`: `Os`, `Arch` in Go's names, as `docker pull` picks
 * by). No variant: the Engine does not report one, and an arm index is matched v7 first.
 */
export async function enginePlatform(connection: EngineConnection, signal?: AbortSignal): Promise<Platform> {
  const { shown } = connection;
  const answer = await send(connection, { method: 'GET', path: '/version', ...(signal ? { signal } : {}) });
  if (answer.statusCode !== 200) {
    throw new SlipwayError('SLIPWAY_NETWORK', `Docker daemon at ${shown} answered ${answer.statusCode} to GET /version: ${await daemonMessage(answer.body)}`);
  }
  let version: { Os?: unknown; Arch?: unknown } | null;
  try {
    version = JSON.parse((await readCapped(answer.body, 1024 * 1024)).toString('utf8')) as { Os?: unknown; Arch?: unknown } | null;
  } catch (err) {
    throw new SlipwayError('SLIPWAY_NETWORK', `Docker daemon at ${shown} answered GET /version with something that is not JSON`, { cause: err });
  }
  const { Os: os, Arch: architecture } = version ?? {};
  if (typeof os !== 'string' || typeof architecture !== 'string' || os === '' || architecture === '') {
    throw new SlipwayError('SLIPWAY_NETWORK', `Docker daemon at ${shown} did not say which platform it runs (GET /version has no Os and Arch)`);
  }
  return { os, architecture };
}
