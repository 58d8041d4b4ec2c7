// Helpers for the acceptance-audit tests: run the built CLI, put raw bytes into the real registry
// by hand (plain fetch against the distribution API, so nothing of slipway shapes what is stored),
// and measure concurrency seen at the fault proxy.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { ProxiedRequest } from '../support/fault-proxy.js';
import type { TestRegistry } from '../support/registry.js';
import { run } from '../support/tools.js';

export const cliMain = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));

export interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node packages/cli/dist/main.js ARGS` with only the given credentials sources: no Docker config,
 * auth.json or SLIPWAY_REGISTRY_* from the caller unless `env` sets them.
 */
export async function slipway(args: readonly string[], env: Record<string, string | undefined> = {}, timeoutMs = 120_000): Promise<CliOutcome> {
  const isolated: Record<string, string | undefined> = {
    DOCKER_CONFIG: '/nonexistent/slipway-audit-docker-config',
    REGISTRY_AUTH_FILE: '/nonexistent/slipway-audit-auth.json',
    XDG_RUNTIME_DIR: '/nonexistent/slipway-audit-runtime',
    SLIPWAY_REGISTRY_USERNAME: undefined,
    SLIPWAY_REGISTRY_PASSWORD: undefined,
    SLIPWAY_REGISTRY_ADDRESS: undefined,
    NODE_DEBUG: undefined,
    ...env,
  };
  const r = await run(process.execPath, [cliMain, ...args], { env: isolated, timeoutMs });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** The `--json` error object of a failed run. */
export function jsonError(outcome: CliOutcome): { code: string; message: string; exitCode: number } {
  const parsed = JSON.parse(outcome.stdout) as { error?: { code: string; message: string; exitCode: number } };
  if (!parsed.error) throw new Error(`no error object in --json output: ${outcome.stdout}`);
  return parsed.error;
}

export function sha256Of(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export interface RawDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** POST + PUT ?digest= (a monolithic upload) of exact bytes. */
export async function putRawBlob(registry: TestRegistry, repository: string, bytes: Uint8Array, mediaType: string): Promise<RawDescriptor> {
  const auth: Record<string, string> = registry.auth === 'htpasswd' ? { authorization: registry.basicAuth() } : {};
  const digest = sha256Of(bytes);
  const post = await fetch(`${registry.url}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: auth });
  if (post.status !== 202) throw new Error(`POST upload: ${post.status} ${await post.text()}`);
  const location = new URL(post.headers.get('location')!, registry.url);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: bytes, headers: { ...auth, 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`PUT blob: ${put.status} ${await put.text()}`);
  return { mediaType, digest, size: bytes.byteLength };
}

/** PUTs manifest bytes exactly as given; returns the registry's status and body (it may refuse them). */
export async function putRawManifest(
  registry: TestRegistry,
  repository: string,
  reference: string,
  bytes: Uint8Array,
  contentType: string,
): Promise<{ status: number; body: string; descriptor: RawDescriptor }> {
  const auth: Record<string, string> = registry.auth === 'htpasswd' ? { authorization: registry.basicAuth() } : {};
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${reference}`, { method: 'PUT', body: bytes, headers: { ...auth, 'content-type': contentType } });
  return { status: res.status, body: await res.text(), descriptor: { mediaType: contentType, digest: sha256Of(bytes), size: bytes.byteLength } };
}

/** Highest number of requests in flight at once among `requests` (from arrival to completion at the proxy). */
export function maxInFlight(requests: ProxiedRequest[]): number {
  const edges = requests.flatMap((r) => [
    { at: r.startedAt, delta: 1 },
    { at: r.startedAt + r.durationMs, delta: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let max = 0;
  for (const e of edges) max = Math.max(max, (now += e.delta));
  return max;
}
