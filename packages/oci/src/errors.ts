/**
 * Errors thrown by slipway: one base class with a stable `code`, a brand that survives two
 * copies of the package being loaded (Pulumi may load a provider twice), and `cause` chaining.
 * Messages are lowercase, context first, quote user input, and never contain credentials.
 * @module
 */

const brand = Symbol.for('slipway.error');

export type ErrorCode =
  | 'SLIPWAY_INVALID_ARG'
  | 'SLIPWAY_INVALID_REFERENCE'
  | 'SLIPWAY_INVALID_PLATFORM'
  | 'SLIPWAY_INVALID_MANIFEST'
  | 'SLIPWAY_UNSUPPORTED_MEDIA_TYPE'
  | 'SLIPWAY_DIGEST_MISMATCH'
  | 'SLIPWAY_SIZE_MISMATCH'
  | 'SLIPWAY_NOT_FOUND'
  | 'SLIPWAY_PLATFORM_MISMATCH'
  | 'SLIPWAY_REGISTRY'
  | 'SLIPWAY_NETWORK'
  | 'SLIPWAY_AUTH'
  | 'SLIPWAY_INVALID_ARCHIVE'
  | 'SLIPWAY_DESTINATION_EXISTS'
  /** A local file or directory could not be read or written (a full disk, a read-only or missing directory). */
  | 'SLIPWAY_IO'
  | 'SLIPWAY_ABORTED'
  | 'SLIPWAY_BUILD'
  | 'SLIPWAY_BUILDER_UNAVAILABLE'
  | 'SLIPWAY_CONTEXT';

export class SlipwayError extends Error {
  readonly code: ErrorCode;
  readonly [brand] = true;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** True for any slipway error, even one thrown by another loaded copy of this package. */
  static is(value: unknown): value is SlipwayError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}

export class InvalidArgumentError extends SlipwayError {
  constructor(message: string, options?: { cause?: unknown; code?: ErrorCode }) {
    super(options?.code ?? 'SLIPWAY_INVALID_ARG', message, options);
  }
}

export class DigestMismatchError extends SlipwayError {
  constructor(readonly want: string, readonly got: string, what: string) {
    super('SLIPWAY_DIGEST_MISMATCH', `verifying ${what}: got ${got}, want ${want}`);
  }
}

export class SizeMismatchError extends SlipwayError {
  constructor(readonly want: number, readonly got: number, what: string) {
    super('SLIPWAY_SIZE_MISMATCH', `verifying ${what}: got ${got} bytes, want ${want}`);
  }
}

export class NotFoundError extends SlipwayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SLIPWAY_NOT_FOUND', message, options);
  }
}

export class UnsupportedMediaTypeError extends SlipwayError {
  constructor(readonly mediaType: string, message?: string) {
    super('SLIPWAY_UNSUPPORTED_MEDIA_TYPE', message ?? `unsupported media type "${mediaType}"`);
  }
}

export class AbortedError extends SlipwayError {
  constructor(message = 'operation aborted', options?: { cause?: unknown }) {
    super('SLIPWAY_ABORTED', message, options);
  }
}

/** An operating system's error (ENOSPC, EPIPE, ENXIO…): a Node error whose code is an errno name. */
export function isErrnoError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

/** Throws an AbortedError carrying the signal's reason when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError('operation aborted', { cause: signal.reason });
}
