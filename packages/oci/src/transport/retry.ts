/**
 * Retry policy: jittered exponential backoff for temporary failures, `Retry-After` honoured up to a cap.
 * c/image waits up to 60 s on 429 with Retry-After; ggcr retries 408/429/5xx and resets without it
 * (ggcr #1569, #1636 asked for Retry-After).
 * @module
 */

export interface RetryOptions {
  /**
   * Attempts per request, the first included.
   * @defaultValue 5
   */
  attempts?: number;
  /**
   * First backoff delay in ms; doubled per attempt, with full jitter.
   * @defaultValue 200
   */
  baseDelayMs?: number;
  /**
   * Longest backoff delay in ms.
   * @defaultValue 10000
   */
  maxDelayMs?: number;
  /**
   * Longest `Retry-After` wait in ms; a longer request is shortened to this.
   * @defaultValue 60000
   */
  maxRetryAfterMs?: number;
}

export type ResolvedRetryOptions = Required<RetryOptions>;

export function resolveRetryOptions(options: RetryOptions | undefined): ResolvedRetryOptions {
  return {
    attempts: Math.max(1, options?.attempts ?? 5),
    baseDelayMs: Math.max(0, options?.baseDelayMs ?? 200),
    maxDelayMs: Math.max(0, options?.maxDelayMs ?? 10_000),
    maxRetryAfterMs: Math.max(0, options?.maxRetryAfterMs ?? 60_000),
  };
}

/** Delay before retry number `attempt` (1 for the first retry): half fixed, half random, so clients spread out. */
export function backoffDelay(attempt: number, options: ResolvedRetryOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Parses `Retry-After` as delta-seconds or an HTTP-date; undefined when absent or malformed. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Otherwise only an HTTP-date, in any of RFC 9110's three forms (`Wed, 21 Oct 2015 07:28:00 GMT`,
  // `Wednesday, 21-Oct-15 …`, `Wed Oct 21 …`): V8's Date.parse would take `-5` for the year -5.
  if (!/^[A-Za-z]{3,9},? /.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

// Connection-level failures that a retry can cure: the peer went away, reset us, or is restarting.
const temporaryErrnos = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** The error code of a socket/undici error, looking through `cause`. */
export function errnoOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (code.startsWith('E') || code.startsWith('UND_ERR'))) return code;
  }
  return undefined;
}

export function isTemporaryNetworkError(err: unknown): boolean {
  const refusal = proxyRefusal(err);
  // A proxy that could not reach the registry (502, 503, 504) is as temporary as a refused connect.
  if (refusal !== undefined) return refusal >= 502 && refusal <= 504;
  const errno = errnoOf(err);
  return errno !== undefined && temporaryErrnos.has(errno);
}

/**
 * The status with which an HTTP proxy refused a request, when that is why it failed. undici 7 says
 * it in the message alone: a refused CONNECT is a RequestAbortedError (`UND_ERR_ABORTED`, as for an
 * abort) "Proxy response (407) !== 200 when HTTP Tunneling"; a 407 to a plain-HTTP request in absolute
 * form is an InvalidArgumentError "Proxy Authentication Required (407)".
 */
export function proxyRefusal(err: unknown): number | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const message = (e as { message?: unknown }).message;
    if (typeof message !== 'string') continue;
    const match = /^Proxy response \((\d{3})\) !== 200 when HTTP Tunneling/.exec(message) ?? /^Proxy Authentication Required \((407)\)$/.exec(message);
    if (match) return Number(match[1]);
  }
  return undefined;
}

const proxyStatusWords: Record<number, string> = {
  403: 'Forbidden: it does not allow this destination',
  407: 'Proxy Authentication Required',
  502: 'Bad Gateway: it could not reach the registry',
  503: 'Service Unavailable: it could not reach the registry',
  504: 'Gateway Timeout: it could not reach the registry',
};

// Connect timeouts that happened after TCP connected, during the TLS handshake (see trackConnecting).
const tlsHandshakeTimeouts = new WeakSet<object>();

/** Records that this connect timeout was a TLS handshake nobody answered, not a TCP connect. */
export function markTlsHandshakeTimeout(err: Error): void {
  tlsHandshakeTimeouts.add(err);
}

function isTlsHandshakeTimeout(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (tlsHandshakeTimeouts.has(e)) return true;
  }
  return false;
}

/** A readable reason for a network error: `connection refused (ECONNREFUSED)`. */
export function describeNetworkError(err: unknown): string {
  const errno = errnoOf(err);
  const words: Record<string, string> = {
    ECONNRESET: 'connection reset',
    ECONNREFUSED: 'connection refused',
    EPIPE: 'connection closed while sending',
    ETIMEDOUT: 'connection timed out',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'DNS lookup failed',
    UND_ERR_SOCKET: 'connection closed by the server',
    UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
    UND_ERR_HEADERS_TIMEOUT: 'timed out waiting for response headers',
    UND_ERR_BODY_TIMEOUT: 'timed out waiting for response body',
    UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'response shorter than its Content-Length',
    UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: 'request body length differs from Content-Length',
    // OpenSSL's words for a TLS hello answered by something else: "wrong version number".
    ERR_SSL_WRONG_VERSION_NUMBER: 'the server answered the TLS handshake without TLS (plain HTTP, or another protocol)',
  };
  const refusal = proxyRefusal(err);
  if (refusal !== undefined) return `the proxy answered HTTP ${refusal}${proxyStatusWords[refusal] ? ` ${proxyStatusWords[refusal]}` : ''}`;
  if (isTlsHandshakeTimeout(err)) return `TLS handshake timed out: the host accepted the connection but never answered TLS (${errno})`;
  const message = err instanceof Error ? err.message : String(err);
  const word = errno ? words[errno] : undefined;
  return word ? `${word} (${errno})` : errno ? `${message} (${errno})` : message;
}
