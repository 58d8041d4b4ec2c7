/**
 * Registry credentials: explicit, Docker config (`auths`, `credHelpers`, `credsStore`), containers
 * `auth.json`, or anonymous.
 * @module
 */
export { describeCredentials, withOrigin } from './credentials.js';
export type { Credentials, Keychain } from './credentials.js';
export { chainKeychains, createKeychain, fileKeychain, staticKeychain } from './keychain.js';
export type { KeychainOptions } from './keychain.js';
export { containersAuthPaths, dockerConfigPath, dockerHubConfigKey, normalizeRegistryKey } from './docker-config.js';
export { runCredentialHelper } from './helper.js';
export type { HelperOptions } from './helper.js';
