#!/usr/bin/env node
/**
 * `slipway` entry point: dispatch to a command, wire SIGINT/SIGTERM to an AbortSignal.
 * @module
 */
import { commands } from './commands/index.js';
import { ExitCode, type CommandIo } from './command.js';

async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts += 1;
    controller.abort(new Error('interrupted'));
    if (interrupts > 1) process.exit(ExitCode.Interrupted);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const io: CommandIo = { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal };
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
    if (argv.includes('--json')) io.stdout.write(JSON.stringify({ error: { code: 'SLIPWAY_USAGE', message, exitCode: ExitCode.Usage } }, null, 2) + '\n');
    return ExitCode.Usage;
  }
  const command = await load();
  const code = await command.run(rest, io);
  return controller.signal.aborted ? ExitCode.Interrupted : code;
}

/** Resolves once everything written to `stream` so far has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0) return resolve();
    stream.write('', () => resolve());
    // A reader that went away (`| head`) never takes the rest: that is not ours to wait for.
    stream.once('error', () => resolve());
  });
}

// Exit as soon as the command is done: waiting for idle keep-alive sockets and V8's background work
// to wind down cost about 60 ms per run (measured on a no-op copy). But not before stdout and stderr
// are flushed: a pipe takes 64 KiB at once, and libuv queues the rest (a 10 000-line `tags` or a big
// `manifest` piped into another program lost everything past 64 KiB).
const code = await main(process.argv.slice(2));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
