/**
 * The default keychain: explicit credentials, then Docker's config (and its helpers), then the
 * containers auth files, then anonymous. Resolved lazily per registry and remembered.
 * @module
 */
import { SharedTaskMap } from '../internal/shared-task.js';
import { debuglog } from 'node:util';
import { InvalidArgumentError, SlipwayError } from '../errors.js';
import { hasOrigin, withOrigin, type Credentials, type Keychain } from './credentials.js';
import {
  containersAuthPaths,
  credentialsFromFile,
  dockerConfigPath,
  normalizeRegistryKey,
  readAuthFile,
  repositoryEntry,
  scopedKeysFor,
  type AuthFile,
} from './docker-config.js';

const debug = debuglog('slipway');

export interface KeychainOptions {
  /** Credentials per registry (`docker.io`, `localhost:5000`, `https://index.docker.io/v1/`), tried first. */
  credentials?: Record<string, Credentials>;
  /** Replaces the file-based lookup (Docker config, auth.json) after the explicit credentials. */
  keychain?: Keychain;
  /** Environment for file locations and helpers. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Milliseconds a credential helper may run. @defaultValue 30000 */
  helperTimeoutMs?: number;
}

/** Explicit credentials only. */
export function staticKeychain(credentials: Record<string, Credentials>): Keychain {
  const map = new Map<string, Credentials>();
  for (const [key, value] of Object.entries(credentials)) {
    checkCredentials(key, value);
    // A refusal names where the login came from; a caller may have said (withOrigin) already.
    map.set(normalizeRegistryKey(key), hasOrigin(value) ? value : withOrigin(value, 'the credentials given'));
  }
  return { resolve: async (registry) => map.get(normalizeRegistryKey(registry)) };
}

/**
 * The auth files in the order they are asked. Docker's config.json, then the containers auth files
 * (`REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`'s, `~/.config`'s); except that a `REGISTRY_AUTH_FILE` the
 * user set comes before a Docker config nobody named (no `DOCKER_CONFIG`): a file named for this run
 * beats a stale login in `~/.docker/config.json`, as skopeo and podman have it.
 */
export function authFilePaths(env: NodeJS.ProcessEnv): string[] {
  const docker = dockerConfigPath(env);
  const containers = containersAuthPaths(env);
  if (env.DOCKER_CONFIG || !env.REGISTRY_AUTH_FILE) return [docker, ...containers];
  return [containers[0]!, docker, ...containers.slice(1)];
}

/**
 * The auth files of {@link authFilePaths}, read once on first use. For a repository, the
 * first file holding a repository- or namespace-scoped `auths` key for it answers, with its most
 * specific key (as podman reads one file; files in order, so `REGISTRY_AUTH_FILE` comes before the
 * defaults). Such a login beats whole-registry entries, which are looked at next: a login for
 * `registry.io/team` is a deliberate choice for that namespace. Whole-registry answers (`credHelpers`,
 * `credsStore`, `auths`) come from the first file with one, looked up once per registry, so a
 * credential helper runs once, not once per repository.
 */
export function fileKeychain(options: Pick<KeychainOptions, 'env' | 'helperTimeoutMs'> = {}): Keychain {
  const env = options.env ?? process.env;
  let files: Promise<AuthFile[]> | undefined;
  const load = () => {
    files ??= Promise.all(authFilePaths(env).map(readAuthFile)).then((all) =>
      all.filter((f): f is AuthFile => f !== undefined),
    );
    files.catch(() => (files = undefined));
    return files;
  };
  // Per normalised registry: a credsStore passed over because it is not installed.
  const skippedStores = new Map<string, string[]>();
  const wholeRegistry = new SharedTaskMap<string, Credentials | undefined>(async (registry, signal) => {
    for (const file of await load()) {
      const found = await credentialsFromFile(file, registry, {
        env,
        signal,
        onSkippedStore: (note) => {
          const key = normalizeRegistryKey(registry);
          skippedStores.set(key, [...new Set([...(skippedStores.get(key) ?? []), note])]);
        },
        ...(options.helperTimeoutMs !== undefined ? { timeoutMs: options.helperTimeoutMs } : {}),
      });
      if (found) {
        debug('credentials for %s from %s', registry, file.path);
        return withOrigin(found, file.path);
      }
    }
    return undefined;
  }, normalizeRegistryKey);
  return {
    async resolve(registry, { repository, signal } = {}) {
      if (repository) {
        for (const file of await load()) {
          const entry = repositoryEntry(file, registry, repository);
          if (entry) {
            debug('credentials for %s/%s from %s (key %s)', registry, repository, file.path, entry.key);
            return withOrigin(entry.credentials, `${file.path}, key ${entry.key}`);
          }
        }
      }
      return wholeRegistry.get(registry, signal);
    },
    async explainMissing(registry) {
      const notes = [...(skippedStores.get(normalizeRegistryKey(registry)) ?? [])];
      for (const file of await load().catch(() => [] as AuthFile[])) {
        const keys = scopedKeysFor(file, registry);
        // A login for `host/team` answers only repositories under team/: say so, rather than "none".
        if (keys.length > 0) notes.push(`${file.path} has logins only for paths of it (${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ` and ${keys.length - 5} more` : ''}), none with credentials for this repository`);
      }
      return notes;
    },
  };
}

/** Tries each keychain in order; the first answer wins. */
export function chainKeychains(...keychains: Keychain[]): Keychain {
  return {
    async resolve(registry, options) {
      for (const keychain of keychains) {
        const found = await keychain.resolve(registry, options);
        if (found) return found;
      }
      return undefined;
    },
    explainMissing: (registry) => explainAll(keychains, registry),
  };
}

/** Every keychain's explanation, in order; one that fails to explain adds nothing. */
async function explainAll(keychains: readonly Keychain[], registry: string): Promise<string[]> {
  const notes: string[] = [];
  for (const keychain of keychains) notes.push(...((await keychain.explainMissing?.(registry).catch(() => [])) ?? []));
  return notes;
}

/**
 * The keychain slipway uses: `credentials` → (`keychain` or Docker config → containers auth.json) →
 * anonymous, resolved lazily and cached per registry and repository (failures are not cached).
 */
export function createKeychain(options: KeychainOptions = {}): Keychain {
  const chain = chainKeychains(
    ...(options.credentials ? [staticKeychain(options.credentials)] : []),
    options.keychain ? checkedKeychain(options.keychain) : fileKeychain(options),
  );
  // Resolved once per normalised registry (`https://a.io/` is `a.io`) and repository, and shared; the
  // chain is asked with the spelling the first caller used. A caller's abort ends only its own wait.
  const cache = new SharedTaskMap<{ registry: string; repository: string | undefined }, Credentials | undefined>(
    ({ registry, repository }, signal) => chain.resolve(registry, { ...(repository ? { repository } : {}), signal }),
    ({ registry, repository }) => `${normalizeRegistryKey(registry)}\n${repository ?? ''}`,
  );
  return {
    resolve(registry, { repository, signal } = {}) {
      return cache.get({ registry, repository }, signal);
    },
    explainMissing: (registry) => explainAll([chain], registry),
  };
}

/**
 * A caller's keychain, held to the contract: an answer that is no credentials (`{user, pass}`) is
 * refused by name, where it was taken for a token the registry "refused" although nothing was sent,
 * and a keychain that throws fails with a stable code (SLIPWAY_AUTH), its message kept.
 */
function checkedKeychain(keychain: Keychain): Keychain {
  return {
    async resolve(registry, options) {
      let found: Credentials | undefined;
      try {
        found = await keychain.resolve(registry, options);
      } catch (err) {
        if (SlipwayError.is(err)) throw err;
        throw new SlipwayError('SLIPWAY_AUTH', `the keychain failed for ${registry}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      if (found === undefined || found === null) return undefined;
      checkCredentials(registry, found, 'the keychain answered');
      return hasOrigin(found) ? found : withOrigin(found, 'the keychain');
    },
    ...(keychain.explainMissing ? { explainMissing: keychain.explainMissing.bind(keychain) } : {}),
  };
}

function checkCredentials(registry: string, value: Credentials, what = 'credentials'): void {
  const ok =
    typeof value === 'object' &&
    value !== null &&
    (('username' in value && 'password' in value && typeof value.username === 'string' && typeof value.password === 'string') ||
      ('identityToken' in value && typeof value.identityToken === 'string') ||
      ('registryToken' in value && typeof value.registryToken === 'string'));
  if (!ok) {
    const shapes = '{username, password}, {identityToken} or {registryToken}';
    if (what === 'credentials') throw new InvalidArgumentError(`credentials for ${JSON.stringify(registry)} must be ${shapes}`);
    throw new SlipwayError('SLIPWAY_AUTH', `${what} for ${JSON.stringify(registry)} with something that is no credentials: they must be ${shapes}`);
  }
}
