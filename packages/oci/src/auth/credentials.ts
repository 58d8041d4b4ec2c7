/**
 * Credentials for one registry and the Keychain that finds them.
 * @module
 */

/**
 * What a registry login needs:
 * - `username`/`password`: Basic auth, or exchanged for a Bearer token at the registry's realm;
 * - `identityToken`: an OAuth2 refresh token (Docker's `identitytoken`, ACR, `docker login` with a
 *   `<token>` username), exchanged with an OAuth2 POST;
 * - `registryToken`: a bearer token sent to the registry as is (Docker's `registrytoken`).
 */
export type Credentials =
  | { username: string; password: string }
  | { identityToken: string; username?: string }
  | { registryToken: string };

/** What a credential lookup is for, beyond the registry. */
export interface ResolveOptions {
  /**
   * The repository the credentials are for (`team/app`, `library/alpine`): containers auth files may
   * hold a login per namespace or repository (`podman login registry.io/team`). Absent for calls that
   * name no repository (the catalog).
   */
  repository?: string;
  signal?: AbortSignal;
}

/** Finds credentials for a registry. `registry` is the reference's registry (`docker.io`, `localhost:5000`). */
export interface Keychain {
  resolve(registry: string, options?: ResolveOptions): Promise<Credentials | undefined>;
  /**
   * Why {@link resolve} found nothing for `registry`, in words a login hint can carry: a configured
   * credential store that is not installed, logins that exist only for other paths of the registry.
   * Never a secret. Optional: a keychain without it has nothing to add.
   */
  explainMissing?(registry: string): Promise<string[]>;
}

/**
 * The secret values inside credentials, for redaction: `secrets` (a password, a token) and `pairs`,
 * the `user:secret` a Basic header carries, which are redacted only whole (their start is the user
 * name, which messages name on purpose).
 */
export function secretsOf(credentials: Credentials | undefined): { secrets: string[]; pairs: string[] } {
  if (!credentials) return { secrets: [], pairs: [] };
  if ('password' in credentials) return { secrets: [credentials.password], pairs: [`${credentials.username}:${credentials.password}`] };
  // The pair is what a realm without the OAuth2 endpoint is sent, base64 in a Basic header.
  if ('identityToken' in credentials) return { secrets: [credentials.identityToken], pairs: [`${credentials.username ?? '<token>'}:${credentials.identityToken}`] };
  return { secrets: [credentials.registryToken], pairs: [] };
}

/** Describes credentials without their secret, for debug output. */
export function describeCredentials(credentials: Credentials | undefined): string {
  if (!credentials) return 'anonymous';
  const origin = origins.get(credentials);
  const from = origin === undefined ? '' : ` from ${origin}`;
  if ('password' in credentials) return `basic (user ${JSON.stringify(credentials.username)})${from}`;
  if ('identityToken' in credentials) return `identity token${from}`;
  return `registry token${from}`;
}

/** Where credentials a keychain found came from (an auth file, and its key), for messages. */
const origins = new WeakMap<Credentials, string>();

/**
 * Records where `credentials` were found, so a refusal names the file to fix: with several auth
 * files, a stale login in one of them is otherwise a hunt. A path, never a secret.
 */
export function withOrigin<T extends Credentials>(credentials: T, origin: string): T {
  origins.set(credentials, origin);
  return credentials;
}

/** Whether {@link withOrigin} recorded where `credentials` came from. */
export function hasOrigin(credentials: Credentials): boolean {
  return origins.has(credentials);
}
