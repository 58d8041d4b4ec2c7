/**
 * The shape every CLI command has: parse its own argv, talk to the engine, print, return an exit code.
 * @module
 */
import type { Stats } from 'node:fs';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';

export interface CommandIo {
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** Standard input; absent where there is no process's (tests). */
  stdin?: Readable;
  /**
   * What `path` is (undefined when it does not exist), and which of the process's standard streams
   * are that very file, pipe or terminal (`/dev/stdout`, or the file stdout is redirected to).
   * Absent where the streams are no process's (tests): none ever are.
   */
  stdioAt?(path: string): Promise<StdioAt | undefined>;
}

/** What {@link CommandIo.stdioAt} finds at a path. */
export interface StdioAt {
  info: Stats;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /**
   * The path names stdout or stderr (`/dev/stdout`, `/dev/fd/2`), and that stream was closed when the
   * process started (`>&-`): Node put /dev/null in its place, so whatever is written there reaches nobody.
   */
  closedAtStart: boolean;
}

/** Which standard stream a path names by name (`/dev/stdout`, `/dev/fd/2`, `/proc/self/fd/1`), if it does. */
export function namedStream(path: string): 1 | 2 | undefined {
  const match = /^\/(?:dev\/(stdout|stderr)|dev\/fd\/([12])|proc\/self\/fd\/([12]))$/.exec(path);
  if (!match) return undefined;
  return match[1] === 'stdout' || match[2] === '1' || match[3] === '1' ? 1 : 2;
}

export interface Command {
  /** One line for `slipway --help`. */
  summary: string;
  /** Full usage text for `slipway COMMAND --help`. */
  usage: string;
  /** Runs the command; returns the process exit code (see ExitCode). */
  run(argv: string[], io: CommandIo): Promise<number>;
}

/** Exit codes that mean something to scripts. */
export const ExitCode = {
  Ok: 0,
  /** The operation failed (registry refused, build failed, digest mismatch). */
  Failure: 1,
  /** Bad usage: unknown flag, malformed reference or platform. */
  Usage: 2,
  /** Something asked for does not exist (image, tag, file). */
  NotFound: 3,
  /** Authentication or authorisation failed. */
  Auth: 4,
  /** The destination exists with different content and --overwrite was not given. */
  Conflict: 5,
  /** Interrupted: SIGINT's 130; SIGTERM and SIGHUP exit 128 + their number ({@link interruptedExitCode}). */
  Interrupted: 130,
} as const;

/**
 * The exit code of a run a signal stopped: 128 + the signal's number, as a shell reports a process
 * the signal killed (SIGINT 130, SIGTERM 143, SIGHUP 129), so a supervisor that sent SIGTERM does not
 * read a user's Ctrl-C. main.ts aborts with a reason naming the signal; any other abort is 130.
 */
export function interruptedExitCode(signal: AbortSignal | undefined): number {
  const name = (signal?.reason as { signal?: unknown } | undefined)?.signal;
  const number = typeof name === 'string' ? (constants.signals as Partial<Record<string, number>>)[name] : undefined;
  return number === undefined ? ExitCode.Interrupted : 128 + number;
}

/** Whether `--json` was asked for, even malformed (`--json=true` is a usage error that still owes its JSON error object). */
export function wantsJson(argv: readonly string[]): boolean {
  return argv.some((arg) => arg === '--json' || arg.startsWith('--json='));
}
