/**
 * The HTTP layer under every registry call: connection reuse, per-host concurrency, retries with
 * backoff and `Retry-After`, hand-followed redirects, Basic and Bearer auth, typed registry errors.
 * @module
 */
export { createTransport, maxErrorBodyBytes, Transport } from './transport.js';
export type { RegistryRequest, RegistryResponse, RequestBody, TransportOptions } from './transport.js';
export { isTemporaryStatus, NetworkError, parseErrorBody, RegistryError } from './errors.js';
export type { RegistryErrorDetail } from './errors.js';
export { parseChallenges, pickChallenge } from './challenge.js';
export type { Challenge } from './challenge.js';
export { parseRetryAfter } from './retry.js';
export type { RetryOptions } from './retry.js';
export { isLoopback } from './hosts.js';
export { ProxyConfig } from './proxy.js';
export type { ProxyOption, ProxyRoute, ProxySettings } from './proxy.js';
