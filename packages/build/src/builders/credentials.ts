/**
 * Credentials for a builder child process: a temporary Docker config directory (0700) whose
 * `config.json` (0600) holds only the registries this build talks to, handed over through
 * `DOCKER_CONFIG` (docker, buildctl, buildx) or `REGISTRY_AUTH_FILE`/`--authfile` (buildah, whose
 * containers-auth.json format is the same `auths` map). We never `docker login`: that writes the
 * user's config and races in keychains (pulumi-docker #24, #362; MaterializeInc PR #8). Credential
 * helpers are resolved by the Keychain, once per registry, never all at once (docker/cli #1591).
 * @module
 */
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { name as names, type auth } from '@slipway/oci';

type Credentials = auth.Credentials;
type Keychain = auth.Keychain;

export interface TemporaryDockerConfig {
  /** The directory to use as `DOCKER_CONFIG`. */
  dir: string;
  /** `dir/config.json`, also a valid containers auth file. */
  file: string;
  /** Registries that got credentials (names only). */
  registries: string[];
  /** Secret strings to redact from output (passwords, tokens, base64 auth). */
  secrets: string[];
  /** Removes the directory; safe to call twice. */
  remove(): Promise<void>;
}

/** The key Docker uses in `auths` for a registry: Docker Hub keeps its legacy index URL. */
export function dockerConfigKey(registry: string): string {
  return registry === names.dockerHubRegistry || registry === 'index.docker.io' || registry === names.dockerHubApiHost
    ? 'https://index.docker.io/v1/'
    : registry;
}

function entry(credentials: Credentials): { value: Record<string, string>; secrets: string[] } {
  const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
  if ('password' in credentials) {
    const auth = b64(`${credentials.username}:${credentials.password}`);
    return { value: { auth }, secrets: [credentials.password, auth] };
  }
  if ('identityToken' in credentials) {
    // Docker stores an identity token with the user "<token>" (or the real name) and no password.
    const auth = b64(`${credentials.username ?? '<token>'}:`);
    return { value: { auth, identitytoken: credentials.identityToken }, secrets: [credentials.identityToken] };
  }
  return { value: { registrytoken: credentials.registryToken }, secrets: [credentials.registryToken] };
}

/**
 * Writes the temporary config. Registries whose credentials cannot be found are left out (the
 * builder then goes anonymous, as docker would). The caller must `remove()` it in a finally.
 */
export async function writeDockerConfig(options: {
  registries: Iterable<string>;
  keychain?: Keychain;
  signal?: AbortSignal;
  /** Parent directory (default the OS temp dir). */
  parent?: string;
}): Promise<TemporaryDockerConfig> {
  const dir = await mkdtemp(join(options.parent ?? tmpdir(), 'slipway-auth-'));
  const remove = async (): Promise<void> => {
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await chmod(dir, 0o700);
    const auths: Record<string, Record<string, string>> = {};
    const secrets: string[] = [];
    const registries: string[] = [];
    for (const registry of new Set(options.registries)) {
      const credentials = options.keychain ? await options.keychain.resolve(registry, options.signal ? { signal: options.signal } : {}) : undefined;
      if (!credentials) continue;
      const { value, secrets: found } = entry(credentials);
      auths[dockerConfigKey(registry)] = value;
      secrets.push(...found);
      registries.push(registry);
    }
    const file = join(dir, 'config.json');
    // Only `auths`: no credsStore/credHelpers, so the tool cannot reach the user's helpers or other registries.
    await writeFile(file, JSON.stringify({ auths }, null, 2) + '\n', { mode: 0o600 });
    await chmod(file, 0o600);
    return { dir, file, registries, secrets, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
