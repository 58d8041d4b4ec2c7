/**
 * Reads Docker's `config.json` and the containers `auth.json` (same `auths` format), with
 * `credHelpers` per registry and a global `credsStore`. Files are only read, never written.
 * @see https://docs.docker.com/reference/cli/docker/#credential-store-options
 * @module
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SlipwayError } from '../errors.js';
import type { Credentials } from './credentials.js';
import { runCredentialHelper, type HelperOptions } from './helper.js';

/** Docker Hub's key in `auths`, `credHelpers` and credential stores (the v1 index URL, kept for compatibility). */
export const dockerHubConfigKey = 'https://index.docker.io/v1/';

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface AuthFile {
  path: string;
  auths: Record<string, AuthEntry>;
  credHelpers: Record<string, string>;
  credsStore?: string;
}

/** Reads and checks one auth file; undefined when it does not exist. */
export async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new SlipwayError('SLIPWAY_AUTH', `reading ${path}: ${(err as Error).message}`, { cause: err });
  }
  // An empty file is an empty config: docker/cli's LoadFromReader ignores io.EOF from its JSON
  // decoder, so `docker pull` goes on anonymously (a `touch ~/.docker/config.json`, a CI step that
  // truncated it). containers auth files are read by this same function.
  if (text.trim() === '') return { path, auths: {}, credHelpers: {} };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    // Never quote the file: it holds credentials.
    throw new SlipwayError('SLIPWAY_AUTH', `reading ${path}: not valid JSON`);
  }
  if (typeof body !== 'object' || body === null) throw new SlipwayError('SLIPWAY_AUTH', `reading ${path}: not a JSON object`);
  const record = body as Record<string, unknown>;
  const auths = typeof record.auths === 'object' && record.auths !== null ? (record.auths as Record<string, AuthEntry>) : {};
  const credHelpers = typeof record.credHelpers === 'object' && record.credHelpers !== null ? (record.credHelpers as Record<string, string>) : {};
  return { path, auths, credHelpers, ...(typeof record.credsStore === 'string' && record.credsStore !== '' ? { credsStore: record.credsStore } : {}) };
}

/** `https://host:5000/v1/` → `host:5000` (Docker's ConvertToHostname); Hub aliases become `docker.io`. */
export function normalizeRegistryKey(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').split('/')[0]!.toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'registry.hub.docker.com' ? 'docker.io' : host;
}

/** The server URL a helper is asked about: Hub's legacy key, otherwise the host. */
export function serverUrlFor(registry: string): string {
  return normalizeRegistryKey(registry) === 'docker.io' ? dockerHubConfigKey : registry;
}

/**
 * A containers auth file key scoped below a registry (`registry.io/team`, `registry.io/team/app`):
 * its host and path segments. Undefined for whole-registry keys, including Docker's legacy URL
 * spellings (`https://index.docker.io/v1/`), which only ever name a host.
 */
function scopedKey(key: string): { host: string; path: string[] } | undefined {
  if (/^[a-z]+:\/\//i.test(key)) return undefined;
  const [host, ...path] = key.replace(/\/+$/, '').split('/');
  if (path.length === 0 || path.some((segment) => segment === '')) return undefined;
  // `host/v1/` without a scheme is still Docker's legacy spelling of a whole registry.
  if (path.length === 1 && (path[0] === 'v1' || path[0] === 'v2')) return undefined;
  return { host: normalizeRegistryKey(host!), path };
}

function lookup<T>(map: Record<string, T>, registry: string): T | undefined {
  const wanted = normalizeRegistryKey(registry);
  if (wanted === 'docker.io' && map[dockerHubConfigKey] !== undefined) return map[dockerHubConfigKey];
  if (map[registry] !== undefined) return map[registry];
  for (const [key, value] of Object.entries(map)) {
    // Repository-scoped keys are for repositoryEntry; only whole-registry keys apply here.
    if (scopedKey(key)) continue;
    if (normalizeRegistryKey(key) === wanted) return value;
  }
  return undefined;
}

/** An `auths` entry scoped to a namespace or repository, with how many path segments its key names. */
export interface ScopedAuthEntry {
  key: string;
  segments: number;
  credentials: Credentials;
}

/**
 * The most specific `auths` entry of `file` whose key names `repository` on `registry` or one of
 * its parent namespaces, as podman and skopeo match them (containers-auth.json(5)): for
 * `registry.io/team/app`, the key `registry.io/team/app` beats `registry.io/team`; `registry.io/teams`
 * does not match (whole path segments only). Whole-registry keys are not considered here.
 */
export function repositoryEntry(file: AuthFile, registry: string, repository: string): ScopedAuthEntry | undefined {
  const wanted = normalizeRegistryKey(registry);
  const segments = repository.split('/');
  let best: { key: string; entry: AuthEntry; segments: number } | undefined;
  for (const [key, entry] of Object.entries(file.auths)) {
    const scoped = scopedKey(key);
    if (!scoped || scoped.host !== wanted || scoped.path.length > segments.length) continue;
    if (!scoped.path.every((segment, i) => segment === segments[i])) continue;
    if (!best || scoped.path.length > best.segments) best = { key, entry, segments: scoped.path.length };
  }
  if (!best) return undefined;
  const credentials = fromEntry(best.entry, `${file.path} auths entry for ${best.key}`);
  return credentials ? { key: best.key, segments: best.segments, credentials } : undefined;
}

function fromEntry(entry: AuthEntry, where: string): Credentials | undefined {
  // A hand-edited config may hold a number or an object where a string belongs: say which field,
  // never its value (these are the secret fields), rather than crash in Buffer.from.
  for (const field of ['auth', 'username', 'password', 'identitytoken', 'registrytoken'] as const) {
    const value: unknown = entry[field];
    if (value !== undefined && value !== null && typeof value !== 'string') {
      throw new SlipwayError('SLIPWAY_AUTH', `${where}: the "${field}" field is not a string`);
    }
  }
  if (entry.registrytoken) return { registryToken: entry.registrytoken };
  if (entry.identitytoken) return { identityToken: entry.identitytoken, ...(entry.username ? { username: entry.username } : {}) };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new SlipwayError('SLIPWAY_AUTH', `${where}: the "auth" field is not base64 of "user:password"`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  return undefined;
}

/**
 * Credentials for `registry` from one auth file, as docker/cli decides: a `credHelpers` entry wins,
 * then `credsStore`, then inline `auths` (also used when the store has nothing for the registry).
 */
export async function credentialsFromFile(
  file: AuthFile,
  registry: string,
  options: HelperOptions & {
    /** Told when a missing credsStore was passed over (for {@link Keychain.explainMissing}). */
    onSkippedStore?: (note: string) => void;
  },
): Promise<Credentials | undefined> {
  const perRegistry = lookup(file.credHelpers, registry);
  const helper = perRegistry ?? file.credsStore;
  if (helper) {
    try {
      const found = await runCredentialHelper(helper, serverUrlFor(registry), options);
      if (found) return found;
    } catch (err) {
      // A global credsStore copied from a desktop machine (`desktop`, `osxkeychain`) is often missing in
      // CI; fall back to inline auths then. A per-registry helper that is missing is a real error.
      if (perRegistry || !(err instanceof SlipwayError && err.message.includes('not on PATH'))) throw err;
      options.onSkippedStore?.(`credsStore "${helper}" in ${file.path} is not installed (no docker-credential-${helper} on PATH), so its logins were not read`);
    }
  }
  const entry = lookup(file.auths, registry);
  return entry ? fromEntry(entry, `${file.path} auths entry for ${registry}`) : undefined;
}

/** The `auths` keys of `file` scoped to a path of `registry` (`registry.io/team`), for "found nothing" hints. */
export function scopedKeysFor(file: AuthFile, registry: string): string[] {
  const wanted = normalizeRegistryKey(registry);
  return Object.keys(file.auths).filter((key) => {
    const scoped = scopedKey(key);
    return scoped !== undefined && scoped.host === wanted && scoped.path.length > 0;
  });
}

/** Docker's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker'), 'config.json');
}

/** The containers auth files in the order podman and skopeo read them. */
export function containersAuthPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const paths: string[] = [];
  if (env.REGISTRY_AUTH_FILE) paths.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) paths.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  paths.push(join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'containers', 'auth.json'));
  return paths;
}
