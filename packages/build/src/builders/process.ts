/**
 * Child processes for builders: output split into lines ourselves (no line-length limit: a 64 KiB
 * scanner limit truncated errors in pulumi-docker #573/#843), a bounded tail kept for error messages,
 * secrets redacted before a line leaves this module, and cancellation that takes the whole process
 * group down (SIGINT so the tool can tell its daemon to stop the solve, SIGKILL after a grace period;
 * docker-build #533: a build ran on for 15 minutes after Ctrl-C).
 * @module
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { AbortedError, SlipwayError } from '@slipway/oci';

/** One line of builder output. */
export interface LogLine {
  stream: 'stdout' | 'stderr';
  /** The line without its newline, secrets replaced by `***`. */
  line: string;
}

export type OnLog = (line: LogLine) => void;

/** Replaces every occurrence of the given values with `***`. Values shorter than 4 characters are ignored (too many false hits). */
export class Redactor {
  private readonly values: string[];

  constructor(values: Iterable<string> = []) {
    const set = new Set<string>();
    for (const value of values) {
      // Multi-line secrets are matched line by line, because output is redacted a line at a time.
      for (const part of value.split(/\r?\n/)) if (part.trim().length >= 4) set.add(part);
    }
    // Longest first, so a secret containing another is replaced whole.
    this.values = [...set].sort((a, b) => b.length - a.length);
  }

  get empty(): boolean {
    return this.values.length === 0;
  }

  redact(text: string): string {
    let result = text;
    for (const value of this.values) if (result.includes(value)) result = result.split(value).join('***');
    return result;
  }
}

/** The last lines of output, bounded in count and bytes, for error messages. */
export class LogTail {
  private readonly lines: string[] = [];
  private bytes = 0;

  constructor(private readonly maxLines = 60, private readonly maxBytes = 32 * 1024, private readonly maxLineChars = 4096) {}

  push(line: string): void {
    // Only the copy kept for the error message is cut; listeners got the whole line.
    const kept = line.length > this.maxLineChars ? `${line.slice(0, this.maxLineChars)}… (${line.length - this.maxLineChars} more characters)` : line;
    this.lines.push(kept);
    this.bytes += kept.length + 1;
    while (this.lines.length > this.maxLines || (this.bytes > this.maxBytes && this.lines.length > 1)) {
      this.bytes -= (this.lines.shift() ?? '').length + 1;
    }
  }

  toArray(): string[] {
    return [...this.lines];
  }
}

/** Splits a byte stream into lines on `\n` (dropping a trailing `\r`), with no limit on line length. */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';

  constructor(private readonly emit: (line: string) => void) {}

  write(chunk: Buffer | string): void {
    const text = this.partial + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    let start = 0;
    for (;;) {
      const newline = text.indexOf('\n', start);
      if (newline === -1) break;
      const end = newline > start && text.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      this.emit(text.slice(start, end));
      start = newline + 1;
    }
    this.partial = text.slice(start);
  }

  end(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (rest !== '') this.emit(rest.endsWith('\r') ? rest.slice(0, -1) : rest);
  }
}

export interface RunOptions {
  /** Executable path. */
  command: string;
  args: readonly string[];
  cwd?: string;
  /** The complete environment of the child (not merged with ours: the caller decides what leaks). */
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onLog?: OnLog;
  redactor?: Redactor;
  /** Bytes written to stdin, then closed. Without it stdin is /dev/null. */
  stdin?: string;
  /** Milliseconds between SIGINT and SIGKILL on abort (default 1000, so the group is gone well within 2 s). */
  killGrace?: number;
  /** Kill the group and fail when the process runs longer than this (milliseconds). */
  timeout?: number;
  /** Keep this many lines for `tail` (default 60). */
  tailLines?: number;
}

export interface RunResult {
  exitCode: number | null;
  /** The signal that ended the process, if any. */
  exitSignal: NodeJS.Signals | null;
  /** Last lines of stdout and stderr interleaved, redacted. */
  tail: string[];
  /** Whole stdout, redacted (only kept when `captureStdout`). */
  stdout: string;
  timedOut: boolean;
}

/**
 * Runs a command in its own process group and resolves when it and its stdio have closed. It does
 * not throw on a non-zero exit (the caller knows what the exit means); it throws AbortedError when
 * the signal fired (after the group is gone) and SLIPWAY_BUILDER_UNAVAILABLE when the executable cannot be started.
 */
export async function run(options: RunOptions & { captureStdout?: boolean }): Promise<RunResult> {
  const { signal } = options;
  if (signal?.aborted) throw new AbortedError('build aborted before it started', { cause: signal.reason });
  const redactor = options.redactor ?? new Redactor();
  const tail = new LogTail(options.tailLines ?? 60);
  const stdoutParts: string[] = [];
  const child = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: options.env,
    // detached: the child leads a new process group, so one kill(-pid) reaches everything it started.
    detached: true,
    stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  let timeoutTimer: NodeJS.Timeout | undefined;

  const signalGroup = (sig: NodeJS.Signals): void => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // ESRCH: the group is already gone.
    }
  };
  const stop = (): void => {
    if (killTimer) return;
    signalGroup('SIGINT');
    killTimer = setTimeout(() => signalGroup('SIGKILL'), options.killGrace ?? 1000);
    killTimer.unref();
  };
  const onAbort = (): void => stop();
  signal?.addEventListener('abort', onAbort, { once: true });
  if (options.timeout !== undefined) {
    timeoutTimer = setTimeout(() => {
      timedOut = true;
      stop();
    }, options.timeout);
    timeoutTimer.unref();
  }

  const make = (stream: 'stdout' | 'stderr') =>
    new LineSplitter((raw) => {
      const line = redactor.redact(raw);
      tail.push(line);
      if (stream === 'stdout' && options.captureStdout) stdoutParts.push(line);
      options.onLog?.({ stream, line });
    });
  const out = make('stdout');
  const err = make('stderr');
  child.stdout?.on('data', (chunk: Buffer) => out.write(chunk));
  child.stderr?.on('data', (chunk: Buffer) => err.write(chunk));
  if (options.stdin !== undefined && child.stdin) {
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin);
  }

  try {
    const [exitCode, exitSignal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', (cause: NodeJS.ErrnoException) => {
        reject(
          new SlipwayError('SLIPWAY_BUILDER_UNAVAILABLE', `cannot run "${options.command}": ${cause.code ?? cause.message}`, { cause }),
        );
      });
      child.once('close', (code, sig) => resolve([code, sig]));
    });
    out.end();
    err.end();
    if (signal?.aborted) {
      await waitForGroupGone(pid, options.killGrace ?? 1000);
      throw new AbortedError('build aborted', { cause: signal.reason });
    }
    return { exitCode, exitSignal, tail: tail.toArray(), stdout: stdoutParts.join('\n'), timedOut };
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (timeoutTimer) clearTimeout(timeoutTimer);
    // The leader may exit before its children (a tool that forked a helper): make sure no member
    // of the group outlives the run once it was asked to stop.
    if (killTimer) {
      clearTimeout(killTimer);
      if (pid !== undefined && groupAlive(pid)) signalGroup('SIGKILL');
    }
  }
}

/** True when any process still belongs to process group `pgid` and has not exited. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // kill(2) finds zombies too: members that exited but were not reaped yet. An orphan's parent is
  // PID 1, which on some VMs reaps every 1-2 s; waiting for that made an abort take seconds longer.
  return process.platform !== 'linux' || groupHasLiveMember(pgid);
}

/** The threads /proc lists for process `pid` (0 once it is gone). */
function threadCount(pid: string): number {
  try {
    return readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return 0;
  }
}

/** Whether /proc lists a process of group `pgid` that is not a zombie (true when /proc cannot tell). */
function groupHasLiveMember(pgid: number): boolean {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // `pid (comm) state ppid pgrp …`: comm may hold spaces and parentheses, so count from the last ')'.
    const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(group) !== pgid) continue;
    if (state !== 'Z') return true;
    // A leader that exited while its other threads run shows Z too: those threads are alive.
    if (threadCount(name) > 1) return true;
  }
  return false;
}

async function waitForGroupGone(pid: number | undefined, grace: number): Promise<void> {
  if (pid === undefined) return;
  const deadline = Date.now() + grace + 500;
  while (groupAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  if (groupAlive(pid)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * Finds an executable: an absolute/relative path is taken as is; a bare name is looked up in PATH's
 * absolute directories. Returns every match, PATH order. A relative entry (`.`, an empty one) names
 * wherever the command runs, often the repository being built: a `docker` checked into it must not
 * be what runs (Go refuses such finds, exec.ErrDot; the credential helper lookup skips them too).
 */
export async function which(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const executable = async (file: string): Promise<boolean> =>
    access(file, constants.X_OK).then(
      () => true,
      () => false,
    );
  if (name.includes('/')) return (await executable(name)) ? [resolve(name)] : [];
  const found: string[] = [];
  // No PATH at all: the default execvp and libuv's spawn use (_PATH_DEFPATH).
  for (const dir of (env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    const file = join(dir, name);
    if (!found.includes(file) && (await executable(file))) found.push(file);
  }
  return found;
}
