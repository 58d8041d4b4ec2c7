#!/usr/bin/env node
/**
 * `slipway` entry point: dispatch to a command, wire SIGINT/SIGTERM/SIGHUP to an AbortSignal.
 * @module
 */
// First: it sets V8 flags that must be in place before any module compiles WebAssembly.
import './v8-flags.js';
import { constants, fstat, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { commands } from './commands/index.js';
import { ExitCode, interruptedExitCode, namedStream, wantsJson, type CommandIo, type StdioAt } from './command.js';

/** The first error writing stdout other than EPIPE (a reader that went away, `| head`): `> /dev/full`. */
let stdoutError: NodeJS.ErrnoException | undefined;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') stdoutError ??= err;
});
// Progress and messages are best-effort: a log collector or `2>&1 | head` that goes away must not
// crash a copy half-way (an unhandled EPIPE 'error' did, leaving a daemon export spool behind).
process.stderr.on('error', () => undefined);

/** What `path` is, and which of file descriptors 0, 1 and 2 are the same file, pipe or terminal. */
async function stdioAt(path: string): Promise<StdioAt | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return undefined;
  const [stdin, stdout, stderr] = await Promise.all(
    [0, 1, 2].map(async (fd) => {
      const open = await promisify(fstat)(fd).catch(() => undefined);
      return open !== undefined && open.dev === info.dev && open.ino === info.ino;
    }),
  );
  // Only a path that names the stream itself (`/dev/stdout`, `/dev/fd/2`): `/dev/stderr` with stderr
  // sent to /dev/null on purpose and stdout closed is the same file as fd 1, and no closed stream.
  const named = namedStream(path);
  const closedAtStart = named !== undefined && (named === 1 ? stdout === true : stderr === true) && (await reopenedAsDevNull(named, info));
  return { info, stdin: stdin === true, stdout: stdout === true, stderr: stderr === true, closedAtStart };
}

/** /dev/null's device number (major 1, minor 3) on Linux. */
const DEV_NULL_RDEV = (1 << 8) | 3;

/**
 * Whether `fd` is the /dev/null Node opens at start-up for a standard stream that was closed (`>&-`).
 * Node opens it read-write (`PlatformInit` in src/node.cc); a shell's `> /dev/null` opens it
 * write-only, and that one is the user's choice. Linux only (/proc/self/fdinfo): elsewhere, false.
 */
async function reopenedAsDevNull(fd: number, info: Stats): Promise<boolean> {
  if (!info.isCharacterDevice() || info.rdev !== DEV_NULL_RDEV) return false;
  const fdinfo = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch(() => '');
  const flags = /^flags:\s*([0-7]+)$/m.exec(fdinfo)?.[1];
  return flags !== undefined && (parseInt(flags, 8) & 3) === constants.O_RDWR;
}

async function main(argv: string[], controller: AbortController): Promise<number> {
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts += 1;
    // The first signal names the exit code (128 + its number, see interruptedExitCode).
    if (!controller.signal.aborted) controller.abort(Object.assign(new Error('interrupted'), { signal }));
    if (interrupts > 1) process.exit(interruptedExitCode(controller.signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed terminal or dropped ssh session: stop as for Ctrl-C, cleaning up, rather than die mid-way.
  process.on('SIGHUP', onSignal);
  const io: CommandIo = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
    // Node creates process.stdin on first access (a handle on fd 0): only a command that reads it should.
    get stdin() {
      return process.stdin;
    },
    stdioAt,
  };
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const lines = ['usage: slipway COMMAND [ARGS]', '', 'commands:'];
    for (const [commandName, load] of Object.entries(commands)) lines.push(`  ${commandName.padEnd(14)} ${(await load()).summary}`);
    io.stdout.write(lines.join('\n') + '\n');
    return name === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  if (name === '--version') {
    io.stdout.write('slipway 0.1.0\n');
    return ExitCode.Ok;
  }
  const load = commands[name];
  if (!load) {
    const message = name.startsWith('-') ? `a command comes first, not "${name}"; run "slipway --help"` : `unknown command "${name}"; run "slipway --help"`;
    io.stderr.write(`slipway: ${message}\n`);
    // --json promises one error object on stdout, whatever went wrong.
    if (wantsJson(argv)) io.stdout.write(JSON.stringify({ error: { code: 'SLIPWAY_USAGE', message, exitCode: ExitCode.Usage } }, null, 2) + '\n');
    return ExitCode.Usage;
  }
  const command = await load();
  // However the process ends (a second Ctrl-C exits at once), scratch directories (a daemon export
  // spool as big as the image) go with it. Imported here, not at start-up: the command has loaded the
  // library already if it uses it, and `--version`, `--help` or a usage error need not load it at all.
  const { removeScratchDirectoriesSync } = await import('@slipway/oci');
  process.on('exit', removeScratchDirectoriesSync);
  const code = await command.run(rest, io);
  // A signal that came after the work was done (and its result printed) does not undo it.
  return controller.signal.aborted && code !== ExitCode.Ok ? interruptedExitCode(controller.signal) : code;
}

/** Resolves once everything written to `stream` so far has been handed to the OS, or has failed to be. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0 && !stream.destroyed) {
      // A file's writes are synchronous, and their errors are emitted on the next tick.
      setImmediate(resolve);
      return;
    }
    if (stream.destroyed) return resolve();
    stream.write('', () => resolve());
    // A reader that went away (`| head`) never takes the rest: that is not ours to wait for.
    stream.once('error', () => resolve());
  });
}

// Exit as soon as the command is done: waiting for idle keep-alive sockets and V8's background work
// to wind down cost about 60 ms per run (measured on a no-op copy). But not before stdout and stderr
// are flushed: a pipe takes 64 KiB at once, and libuv queues the rest (a 10 000-line `tags` or a big
// `manifest` piped into another program lost everything past 64 KiB).
/** Aborted by SIGINT, SIGTERM or SIGHUP. */
const interrupted = new AbortController();
const code = await main(process.argv.slice(2), interrupted);
// Interrupted, and failed for it, nothing is owed to a reader: one that stalled (`| sleep 60`, an
// archive's reader that stopped reading) must not keep the process up until SIGKILL. A command that
// finished before the signal still has its result written out whole.
if (!interrupted.signal.aborted || code === ExitCode.Ok) await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
if (stdoutError && code === ExitCode.Ok) {
  // What the command printed is its result: a result that could not be written is a failure.
  process.stderr.write(`slipway: writing the result to standard output: ${stdoutError.code ?? stdoutError.message}\n`);
  process.exit(ExitCode.Failure);
}
process.exit(code);
