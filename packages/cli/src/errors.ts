/**
 * Errors → exit codes and one-line messages. The codes are the stable `SlipwayError.code`s, so the
 * mapping survives message changes.
 * @module
 */
import { isErrnoError, SlipwayError } from '@slipway/oci';
import { ExitCode, interruptedExitCode } from './command.js';

export interface DescribedError {
  code: string;
  message: string;
  exitCode: number;
  /** What an operation finished before it failed (a repository copy's tags), for the `--json` error object. */
  partial?: unknown;
}

const exitCodes: Partial<Record<string, number>> = {
  SLIPWAY_USAGE: ExitCode.Usage,
  SLIPWAY_INVALID_ARG: ExitCode.Usage,
  SLIPWAY_INVALID_REFERENCE: ExitCode.Usage,
  SLIPWAY_INVALID_PLATFORM: ExitCode.Usage,
  SLIPWAY_NOT_FOUND: ExitCode.NotFound,
  // The platform asked for is not in the source: it does not exist there.
  SLIPWAY_PLATFORM_MISMATCH: ExitCode.NotFound,
  SLIPWAY_AUTH: ExitCode.Auth,
  SLIPWAY_DESTINATION_EXISTS: ExitCode.Conflict,
  SLIPWAY_ABORTED: ExitCode.Interrupted,
};

export function describeError(err: unknown, signal?: AbortSignal): DescribedError {
  const partial = (err as { partial?: unknown } | undefined)?.partial;
  const withPartial = partial === undefined ? {} : { partial };
  if (signal?.aborted) return { code: 'SLIPWAY_ABORTED', message: 'interrupted', exitCode: interruptedExitCode(signal), ...withPartial };
  if (SlipwayError.is(err) || (err instanceof Error && (err as { code?: unknown }).code === 'SLIPWAY_USAGE')) {
    const code = (err as unknown as { code: string }).code;
    // A registry 404 / *_UNKNOWN arrives as SLIPWAY_REGISTRY with `notFound` set (transport's RegistryError).
    const notFound = (err as { notFound?: unknown }).notFound === true;
    // A build context or Dockerfile that does not exist is as absent as a missing archive (exit 3); the
    // code stays SLIPWAY_CONTEXT, which scripts and providers already match on.
    const missingContext = code === 'SLIPWAY_CONTEXT' && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    const exitCode = notFound || missingContext ? ExitCode.NotFound : (exitCodes[code] ?? ExitCode.Failure);
    return { code: notFound ? 'SLIPWAY_NOT_FOUND' : code, message: inCliTerms(err.message), exitCode, ...withPartial };
  }
  const message = err instanceof Error ? err.message : String(err);
  // A file system's refusal the library let through (an archive nobody may read, a full disk) is
  // no bug of ours: a SlipwayError's code and exit 1, Node's own words (they name the path).
  if (isErrnoError(err)) return { code: 'SLIPWAY_IO', message, exitCode: ExitCode.Failure };
  return { code: 'SLIPWAY_INTERNAL', message: `unexpected error: ${message}`, exitCode: ExitCode.Failure };
}

/**
 * The library's messages name its options (`overwrite`, `insecure`, `caCertificates`, the `image`
 * option); at the command line those are flags, or not there at all: say what to type here.
 */
export function inCliTerms(message: string): string {
  return message
    .replace(/\bpass overwrite \(slipway: --overwrite\)/g, 'pass --overwrite')
    .replace(/\bselect one platform \(slipway: --platform\)/g, 'select one with --platform')
    .replace(/choose one with the image option \(([^)]*)\), or in the source name \(([^)]*)\)/g, 'choose one in the source name ($2), or for push with --image ($1)')
    .replace(/\bthe image option \(/g, '--image (')
    .replace(/\bthe image option\b/g, '--image')
    .replace(/, pass it in caCertificates, or list (\S+) in insecure\b/g, ', or pass --insecure $1 (no verification)')
    .replace(/pass its CA in caCertificates or NODE_EXTRA_CA_CERTS/g, 'pass its CA in NODE_EXTRA_CA_CERTS')
    .replace(/\blist (\S+) in insecure\b/g, 'pass --insecure $1')
    .replace(/\bset TMPDIR or the tempDir option\b/g, 'set TMPDIR');
}
