/**
 * Registry and network errors. A RegistryError carries the protocol (status, method, redacted URL and
 * the registry's `errors[]`), not just a status line, and says whether retrying may help.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#error-codes
 * @module
 */
import { SlipwayError } from '../errors.js';

export interface RegistryErrorDetail {
  code: string;
  message: string;
  detail?: unknown;
}

export interface RegistryErrorInit {
  status: number;
  method: string;
  /** Already redacted. */
  url: string;
  errors?: RegistryErrorDetail[];
  /** A non-JSON body, already redacted and truncated. */
  text?: string;
  /** Delay asked for by `Retry-After`, in milliseconds. */
  retryAfterMs?: number;
  /** Appended to the message: what the client knows that the registry did not say (whose credentials). */
  hint?: string;
  cause?: unknown;
}

const temporaryCodes = new Set(['TOOMANYREQUESTS', 'UNAVAILABLE']);

/** Statuses worth retrying: timeouts, rate limits and server errors except "not implemented". */
export function isTemporaryStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

export class RegistryError extends SlipwayError {
  readonly status: number;
  readonly method: string;
  readonly url: string;
  readonly errors: RegistryErrorDetail[];
  readonly temporary: boolean;
  readonly retryAfterMs?: number;

  constructor(init: RegistryErrorInit) {
    const errors = init.errors ?? [];
    super(init.status === 401 || init.status === 403 ? 'SLIPWAY_AUTH' : 'SLIPWAY_REGISTRY', formatMessage(init, errors) + (init.hint ? `; ${init.hint}` : ''), { cause: init.cause });
    this.status = init.status;
    this.method = init.method;
    this.url = init.url;
    this.errors = errors;
    this.temporary = isTemporaryStatus(init.status) || errors.some((e) => temporaryCodes.has(e.code));
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
  }

  /** True when the registry said the thing does not exist (404, or a *_UNKNOWN code). */
  get notFound(): boolean {
    return this.status === 404 || this.errors.some((e) => e.code === 'MANIFEST_UNKNOWN' || e.code === 'BLOB_UNKNOWN' || e.code === 'NAME_UNKNOWN');
  }

  static override is(value: unknown): value is RegistryError {
    return SlipwayError.is(value) && typeof (value as { status?: unknown }).status === 'number' && Array.isArray((value as { errors?: unknown }).errors);
  }
}

function formatMessage(init: RegistryErrorInit, errors: RegistryErrorDetail[]): string {
  const where = `${init.method} ${init.url}`;
  const statusText = `${init.status} ${statusNames[init.status] ?? ''}`.trim();
  if (errors.length > 0) {
    const parts = errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code));
    return `${where}: ${parts.join('; ')} (${statusText})`;
  }
  if (init.text) return `${where}: ${statusText}: ${init.text}`;
  // HEAD responses carry no body, so the reason is only visible with GET (ggcr adds the same hint).
  const hint = init.method === 'HEAD' ? ' (HEAD responses have no body; a GET shows the registry\'s reason)' : '';
  return `${where}: unexpected status ${statusText}${hint}`;
}

const statusNames: Record<number, string> = {
  // A redirect reaching here was not followed: a PUT's, or one without a Location header.
  301: 'Moved Permanently (a redirect not followed)',
  302: 'Found (a redirect not followed)',
  303: 'See Other (a redirect not followed)',
  307: 'Temporary Redirect (not followed)',
  308: 'Permanent Redirect (not followed)',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  416: 'Range Not Satisfiable',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Parses `{"errors":[{code,message,detail}]}`; returns undefined for anything else. */
export function parseErrorBody(text: string): RegistryErrorDetail[] | undefined {
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body !== 'object' || body === null) return undefined;
    const list = (body as { errors?: unknown }).errors;
    if (!Array.isArray(list)) return undefined;
    return list
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
      .map((e) => ({
        code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
        message: typeof e.message === 'string' ? e.message : '',
        ...(e.detail === undefined ? {} : { detail: e.detail }),
      }));
  } catch {
    return undefined;
  }
}

/** A request that never got an HTTP answer (connection refused or reset, TLS failure, timeout). */
export class NetworkError extends SlipwayError {
  readonly method: string;
  readonly url: string;
  /** The system or undici error code (`ECONNRESET`, `UND_ERR_SOCKET`), when known. */
  readonly errno?: string;
  readonly temporary: boolean;

  constructor(method: string, url: string, why: string, options: { cause?: unknown; errno?: string; temporary: boolean }) {
    super('SLIPWAY_NETWORK', `${method} ${url}: ${why}`, { cause: options.cause });
    this.method = method;
    this.url = url;
    if (options.errno !== undefined) this.errno = options.errno;
    this.temporary = options.temporary;
  }
}
