/**
 * Registry access shared by every op: explicit credentials, insecure hosts, cancellation.
 * @module
 */
import { auth, InvalidArgumentError, remote, type transport } from '@slipway/oci';

/** Credentials for one registry, as IaC resources take them (`registries` input). */
export interface RegistryCredential {
  /** `ghcr.io`, `127.0.0.1:5000`, `docker.io`; a scheme or path (`https://index.docker.io/v1/`) is tolerated. */
  address: string;
  username: string;
  password: string;
  /** Where they came from, for a refusal's message (`SLIPWAY_REGISTRY_PASSWORD`); never a secret. @defaultValue "the registries option" */
  origin?: string;
}

/** What every op takes besides its own inputs. */
export interface AccessOptions {
  /**
   * Explicit credentials, tried before the Docker config (`DOCKER_CONFIG` or `~/.docker/config.json`
   * with its credential helpers) and the containers auth file (`REGISTRY_AUTH_FILE`).
   */
  registries?: readonly RegistryCredential[];
  /** Registries (`host[:port]`) allowed plain HTTP or unverified TLS; loopback always is. */
  insecure?: readonly string[];
  /**
   * HTTP proxies; by default `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` from the environment (as docker,
   * skopeo and crane read them); `false` connects directly.
   */
  proxy?: transport.ProxyOption;
  /**
   * `certs.d` roots for per-registry CAs and client certificates (`<root>/<host[:port]>/*.crt`,
   * `*.cert` + `*.key`); by default the containers and Docker ones.
   */
  certDirectories?: readonly string[];
  signal?: AbortSignal;
}

/** Docker Hub goes by several names in configs; the reference parser calls it `docker.io`. */
const dockerHubAliases = new Set(['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** `https://index.docker.io/v1/` → `docker.io`; `ghcr.io/` → `ghcr.io`. */
export function normalizeAddress(address: string): string {
  const host = address
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  if (host === '') throw new InvalidArgumentError(`invalid registry address ${JSON.stringify(address)}: want host[:port]`);
  return dockerHubAliases.has(host) ? 'docker.io' : host;
}

/**
 * One client per op: the source and the destination share its pool, tokens and keychain. `jobs`, a
 * copy's parallel transfers, raises the client's per-host bound (6) to match: otherwise `--jobs 16`
 * would run 6 at a time whatever it said.
 */
export function createClient(options: AccessOptions & { jobs?: number | undefined }): remote.RegistryClient {
  const credentials: Record<string, { username: string; password: string }> = {};
  for (const entry of options.registries ?? []) {
    if (!entry.username) throw new InvalidArgumentError(`registry ${JSON.stringify(entry.address)}: username is empty`);
    credentials[normalizeAddress(entry.address)] = auth.withOrigin({ username: entry.username, password: entry.password }, entry.origin ?? 'the registries option');
  }
  return remote.createRegistryClient({
    credentials,
    ...(options.insecure ? { insecure: options.insecure } : {}),
    ...(options.proxy !== undefined ? { proxy: options.proxy } : {}),
    ...(options.certDirectories ? { certDirectories: options.certDirectories } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.jobs !== undefined && options.jobs > defaultPerHost ? { jobs: options.jobs } : {}),
  });
}

/** The client's own per-host bound (transport.ts). */
const defaultPerHost = 6;
