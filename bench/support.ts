/**
 * Bench plumbing: the test harness (real registry starter, counting proxy), timed child processes,
 * peak RSS through GNU time, medians.
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type * as FaultProxyModule from '../test/support/fault-proxy.js';
import type * as RegistryModule from '../test/support/registry.js';
import type * as ToolsModule from '../test/support/tools.js';

export type TestRegistry = RegistryModule.TestRegistry;
export type FaultProxy = FaultProxyModule.FaultProxy;

// The harness compiles to test/dist/support; bench compiles to bench/dist, one level deeper than its
// sources, so a static relative import could not be right both for tsc and for node. Types come from
// the referenced test project, the code from its output.
const testSupport = new URL('../../test/dist/support/', import.meta.url);

export interface Harness {
  registry: typeof RegistryModule;
  proxy: typeof FaultProxyModule;
  tools: typeof ToolsModule;
}

export async function loadHarness(): Promise<Harness> {
  const load = async <T>(file: string): Promise<T> => (await import(new URL(file, testSupport).href)) as T;
  return {
    registry: await load<typeof RegistryModule>('registry.js'),
    proxy: await load<typeof FaultProxyModule>('fault-proxy.js'),
    tools: await load<typeof ToolsModule>('tools.js'),
  };
}

export interface Timed {
  seconds: number;
  code: number;
  stdout: string;
  stderr: string;
  /** Peak resident set size in MB (GNU time's %M). */
  rssMB?: number;
  /** User + system CPU seconds of the child (GNU time's %U + %S). */
  cpuSeconds?: number;
}

export interface TimedOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Run under GNU time for CPU seconds and peak RSS (adds its fork/exec, about a millisecond). */
  stats?: boolean;
}

/** The CLI every bench runs as `node CLI …` (a fresh process per run, as a user's shell starts it). */
export const CLI = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));

export const GNU_TIME = '/usr/bin/time';
const hasGnuTime = existsSync(GNU_TIME);

/**
 * Runs a command to completion and reports its wall time (spawn to exit), and with `stats` (when GNU
 * time is installed) its CPU time and peak RSS. Never throws for a non-zero exit.
 */
export async function runTimed(cmd: string, args: readonly string[], options: TimedOptions = {}): Promise<Timed> {
  let statsFile: string | undefined;
  let argv = [cmd, ...args];
  if (options.stats && hasGnuTime) {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-bench-time-'));
    statsFile = join(dir, 'stats');
    argv = [GNU_TIME, '-f', '%U %S %M', '-o', statsFile, ...argv];
  }
  const env = { ...process.env, ...options.env };
  try {
    const result = await new Promise<Timed>((resolve, reject) => {
      const started = performance.now();
      const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({
          seconds: (performance.now() - started) / 1000,
          code: code ?? -1,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        });
      });
    });
    if (statsFile) {
      const text = await readFile(statsFile, 'utf8').catch(() => '');
      // GNU time prints "Command exited with non-zero status N" before the figures on failure.
      const [user, system, kb] = (text.trim().split('\n').pop() ?? '').split(' ').map(Number);
      if (user !== undefined && system !== undefined && Number.isFinite(user + system)) result.cpuSeconds = user + system;
      if (kb !== undefined && Number.isFinite(kb) && kb > 0) result.rssMB = kb / 1024;
    }
    return result;
  } finally {
    if (statsFile) await rm(join(statsFile, '..'), { recursive: true, force: true });
  }
}

/** Like runTimed, but throws with the command's output when it fails. */
export async function runOk(cmd: string, args: readonly string[], options: TimedOptions = {}): Promise<Timed> {
  const r = await runTimed(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}:\n${(r.stderr + r.stdout).slice(-3000)}`);
  return r;
}

/** Times an in-process call; CPU is this whole process's (nothing else runs in it while the bench times a call). */
export async function timeCall<T>(call: () => Promise<T>): Promise<{ seconds: number; cpuSeconds: number; value: T }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const value = await call();
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6, value };
}

/**
 * CPU seconds (user + system) used so far by the process whose command line contains `needle`
 * (a registry's config path), read from /proc; undefined when none is found.
 */
export async function processCpuSeconds(needle: string): Promise<number | undefined> {
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes(needle)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th (clock ticks, 100 Hz on Linux).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (Number.isFinite(ticks)) return ticks / 100;
  }
  return undefined;
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function minimum(values: readonly number[]): number | undefined {
  return values.length === 0 ? undefined : Math.min(...values);
}

/** One line of progress on stderr, so stdout keeps only the report. */
export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}
