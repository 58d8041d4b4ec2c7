/**
 * The Docker Engine API connection both daemon ends use: a host string (`DOCKER_HOST`) to an undici
 * client, and the daemon's error bodies to messages.
 * @module
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Client } from 'undici';
import { InvalidArgumentError, SlipwayError } from '../errors.js';
import { readCapped } from '../internal/read.js';
import { loadUndici, type UndiciParts } from '../transport/undici.js';

export const defaultDockerHost = 'unix:///var/run/docker.sock';

/** An undici client for a Docker host string (undici is imported here, not at load: see transport/undici.ts). */
export async function connect(host: string): Promise<{ client: Client; shown: string; request: UndiciParts['request'] }> {
  const { Client, request } = await loadUndici();
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new InvalidArgumentError(`invalid Docker host ${JSON.stringify(host)}: want unix:///absolute/path`);
    return { client: new Client('http://localhost', { socketPath }), shown: host, request };
  }
  if (host.startsWith('tcp://') || host.startsWith('http://') || host.startsWith('https://')) {
    let url: URL;
    try {
      url = new URL(host.replace(/^tcp:/, 'http:'));
    } catch (err) {
      throw new InvalidArgumentError(`invalid Docker host ${JSON.stringify(host)}`, { cause: err });
    }
    const tls = url.protocol === 'https:' || (process.env.DOCKER_TLS_VERIFY ?? '') !== '';
    // Shown without any userinfo a URL might carry.
    const shown = `${url.protocol === 'https:' || tls ? 'https' : 'tcp'}://${url.host}`;
    if (!tls) return { client: new Client(`http://${url.host}`), shown, request };
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
    return { client: new Client(`https://${url.host}`, { connect: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } }), shown, request };
  }
  throw new InvalidArgumentError(`unsupported Docker host ${JSON.stringify(host)}: want unix:// or tcp:// (ssh:// and npipe:// are not supported)`);
}

export function unreachable(shown: string, err: unknown): SlipwayError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
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

