/**
 * Context-hash bench: a 100,000-file / ~1.2 GB context (also a git repository), hashed
 *   - cold (no stat cache) beside two `sha256sum` processes over the same files  (goal ≤ 0.5×),
 *   - warm with nothing changed beside `git status` on the same tree            (goal ≤ 2.0×),
 *   - warm after touching 10 files beside `git status` after the same touches.
 * The library is timed in-process; the CLI (`slipway hash-context`, a fresh Node process) too, for
 * honesty about start-up cost. Medians of SLIPWAY_BENCH_TRIALS (default 3) trials.
 * @module
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { hashContext, type ContextHashResult } from '@slipway/build';
import { CLI, median, runOk, runTimed, timeCall } from './support.js';

export interface ContextBenchRow {
  name: string;
  slipwaySeconds: number;
  peerName: string;
  peerSeconds: number;
  ratio: number;
}

const FILES = 100_000;
const DIRS = 100;
const SUBDIRS = 10;
/** Mean file size 12,000 bytes: 90% uniform in [0, 8000), 10% uniform in [0, 168000). */
const TARGET_BYTES = 1.2e9;
const LAYOUT = `v1:${FILES}:${DIRS}:${SUBDIRS}:${TARGET_BYTES}`;

/** Deterministic sizes and offsets (a 32-bit LCG), so every run builds the same tree. */
function* fileSpecs(poolSize: number): Generator<{ dir: string; name: string; size: number; offset: number }> {
  let state = 0x2545f491;
  const next = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  for (let i = 0; i < FILES; i++) {
    const size = next() < 0.9 ? Math.floor(next() * 8000) : Math.floor(next() * 168_000);
    const offset = Math.floor(next() * (poolSize - size));
    yield { dir: `d${String(Math.floor(i / (FILES / DIRS))).padStart(3, '0')}/s${Math.floor(i / (FILES / DIRS / SUBDIRS)) % SUBDIRS}`, name: `f${i}.dat`, size, offset };
  }
}

/** Writes the tree unless a previous run left a complete one; returns its root. */
export async function ensureTree(workDir: string, log: (line: string) => void): Promise<{ root: string; bytes: number; seconds: number }> {
  const root = join(workDir, 'tree');
  const marker = join(workDir, 'tree.complete');
  if (existsSync(marker) && (await readFile(marker, 'utf8')).startsWith(`${LAYOUT}\n`)) {
    const bytes = Number((await readFile(marker, 'utf8')).split('\n')[1]);
    log(`context bench: reusing ${root} (${FILES} files, ${(bytes / 1e9).toFixed(2)} GB)`);
    return { root, bytes, seconds: 0 };
  }
  await rm(root, { recursive: true, force: true });
  await rm(marker, { force: true });
  log(`context bench: writing ${FILES} files (~${(TARGET_BYTES / 1e9).toFixed(1)} GB) to ${root}`);
  const started = performance.now();
  // Random-looking content from one 8 MiB pool at varying offsets, each file with a unique header.
  const pool = randomBytes(8 << 20);
  let bytes = 0;
  let lastDir = '';
  const pending: Promise<void>[] = [];
  for (const spec of fileSpecs(pool.length)) {
    if (spec.dir !== lastDir) {
      await Promise.all(pending.splice(0));
      await mkdir(join(root, spec.dir), { recursive: true });
      lastDir = spec.dir;
    }
    const header = Buffer.from(`slipway bench file ${spec.name}\n`);
    bytes += header.length + spec.size;
    pending.push(writeFile(join(root, spec.dir, spec.name), Buffer.concat([header, pool.subarray(spec.offset, spec.offset + spec.size)])));
    if (pending.length >= 64) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await writeFile(join(root, 'Dockerfile'), 'FROM scratch\nCOPY . /ctx/\n');
  await writeFile(join(root, '.dockerignore'), '.git\n');
  const wrote = (performance.now() - started) / 1000;
  log(`context bench: wrote ${(bytes / 1e9).toFixed(2)} GB in ${wrote.toFixed(1)} s; git add + commit (once)`);
  // One commit so `git status` compares against an index, as on a developer's checkout.
  const git = (args: string[]): Promise<unknown> => runOk('git', ['-C', root, '-c', 'gc.auto=0', '-c', 'core.looseCompression=0', ...args], { timeoutMs: 900_000 });
  await git(['init', '-q']);
  await git(['config', 'gc.auto', '0']);
  await git(['add', '-A']);
  await git(['-c', 'user.name=bench', '-c', 'user.email=bench@localhost', 'commit', '-q', '-m', 'bench tree']);
  await git(['status', '--porcelain']); // refresh the index once (racy entries)
  await writeFile(marker, `${LAYOUT}\n${bytes}\n`);
  const seconds = (performance.now() - started) / 1000;
  log(`context bench: tree ready in ${seconds.toFixed(1)} s`);
  return { root, bytes, seconds };
}

function shell(script: string, cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/bin/sh', ['-c', script], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve((performance.now() - started) / 1000) : reject(new Error(`${script}: exit ${code}: ${err.slice(-2000)}`))));
  });
}

const SHA256SUM = "find . -path ./.git -prune -o -type f -print0 | xargs -0 -P2 -n 500 sha256sum > /dev/null";

/**
 * What any Node walker pays before comparing or hashing anything: `readdir` of every directory and
 * `lstat` of every file, split over warm worker threads (one per core), returning nothing. Shown
 * beside git status as the floor under the warm-hash ratio on this machine, not as a contender.
 */
const BARE_WALK_WORKER = `
const { parentPort } = require('node:worker_threads');
const { readdirSync, lstatSync } = require('node:fs');
parentPort.on('message', (dirs) => {
  let n = 0;
  const walk = (dir) => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const path = dir + '/' + d.name;
      if (d.isDirectory()) walk(path);
      else { lstatSync(path); n++; }
    }
  };
  for (const dir of dirs) walk(dir);
  parentPort.postMessage(n);
});`;

async function bareWalkSeconds(root: string, trials: number): Promise<number[]> {
  const top = (await import('node:fs')).readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== '.git').map((d) => `${root}/${d.name}`);
  const workers = Array.from({ length: Math.max(1, availableParallelism()) }, () => new Worker(BARE_WALK_WORKER, { eval: true }));
  try {
    const once = async (): Promise<number> => {
      const started = performance.now();
      const counts = await Promise.all(
        workers.map((w, i) => new Promise<number>((resolve) => {
          w.once('message', resolve);
          w.postMessage(top.filter((_, j) => j % workers.length === i));
        })),
      );
      if (counts.reduce((a, b) => a + b, 0) < FILES) throw new Error('bare walk saw fewer files than the tree holds');
      return (performance.now() - started) / 1000;
    };
    await once(); // warm the workers (JIT, dentry cache)
    const out: number[] = [];
    for (let t = 0; t < trials; t++) out.push(await once());
    return out;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

export async function runContextBench(opts: { workDir: string; log: (line: string) => void }): Promise<ContextBenchRow[]> {
  const { log } = opts;
  const trials = Math.max(1, Number(process.env.SLIPWAY_BENCH_TRIALS ?? 3) || 3);
  await mkdir(opts.workDir, { recursive: true });
  const { root } = await ensureTree(opts.workDir, log);
  const cacheHome = await mkdtemp(join(opts.workDir, 'xdg-cache-'));
  const cacheDir = join(cacheHome, 'slipway', 'context');
  const rows: ContextBenchRow[] = [];
  const row = (name: string, ours: number[], peerName: string, peer: number[]): void => {
    const s = median(ours)!;
    const p = median(peer)!;
    rows.push({ name, slipwaySeconds: s, peerName, peerSeconds: p, ratio: s / p });
    log(`context bench: ${name}: ${s.toFixed(3)} s vs ${peerName} ${p.toFixed(3)} s → ${(s / p).toFixed(2)}× (load ${loadavg()[0]!.toFixed(2)})`);
  };
  const hash = (cache: string | false): Promise<{ seconds: number; value: ContextHashResult }> => timeCall(() => hashContext({ context: root, cacheDir: cache }));

  try {
    // Warm the page cache the way both sides will find it.
    await shell(SHA256SUM, root);

    // Cold: no stat cache at all, every byte read and hashed.
    const coldOurs: number[] = [];
    const coldPeer: number[] = [];
    const coldCli: number[] = [];
    let digest = '';
    for (let t = 0; t < trials; t++) {
      coldPeer.push(await shell(SHA256SUM, root));
      const r = await hash(false);
      coldOurs.push(r.seconds);
      if (digest && r.value.digest !== digest) throw new Error(`cold digests differ between trials: ${digest} vs ${r.value.digest}`);
      digest = r.value.digest;
      const cli = await runTimed(process.execPath, [CLI, 'hash-context', '--no-cache', '--quiet', root]);
      if (cli.code !== 0 || cli.stdout.trim() !== digest) throw new Error(`slipway hash-context failed or disagrees: ${cli.stdout}${cli.stderr}`);
      coldCli.push(cli.seconds);
    }
    row('cold hash, 100k files / 1.2 GB (library; goal ≤ 0.5)', coldOurs, 'sha256sum ×2 processes', coldPeer);
    row('cold hash (CLI, --no-cache)', coldCli, 'sha256sum ×2 processes', coldPeer);

    // Fill the stat cache, then let a second pass settle racy entries.
    await hash(cacheDir);
    const settle = await hash(cacheDir);
    if (settle.value.digest !== digest) throw new Error('the cached digest differs from the cold one');

    // Warm, nothing changed: a walk plus lstat per file, no reads.
    const warmOurs: number[] = [];
    const warmCli: number[] = [];
    const gitPeer: number[] = [];
    for (let t = 0; t < trials; t++) {
      gitPeer.push((await runOk('git', ['-C', root, 'status', '--porcelain'])).seconds);
      const r = await hash(cacheDir);
      if (r.value.stats.hashedFiles !== 0) throw new Error(`warm run read ${r.value.stats.hashedFiles} files`);
      warmOurs.push(r.seconds);
      const cli = await runTimed(process.execPath, [CLI, 'hash-context', '--quiet', root], { env: { XDG_CACHE_HOME: cacheHome } });
      if (cli.code !== 0 || cli.stdout.trim() !== digest) throw new Error(`slipway hash-context failed or disagrees: ${cli.stdout}${cli.stderr}`);
      warmCli.push(cli.seconds);
    }
    row('warm hash, nothing changed (library; goal ≤ 2.0)', warmOurs, 'git status', gitPeer);
    row('warm hash, nothing changed (CLI)', warmCli, 'git status', gitPeer);

    // Warm after touching 10 files (new mtime, same content): both re-read exactly those.
    const touchedOurs: number[] = [];
    const touchedPeer: number[] = [];
    for (let t = 0; t < trials; t++) {
      const when = new Date(Date.now() - 60_000 + t * 1000);
      for (let i = 0; i < 10; i++) await utimes(join(root, `d${String(i * 7).padStart(3, '0')}/s${i % SUBDIRS}/f${i * 7 * 1000 + (i % SUBDIRS) * 100 + 3}.dat`), when, when);
      touchedPeer.push((await runOk('git', ['-C', root, 'status', '--porcelain'])).seconds);
      const r = await hash(cacheDir);
      if (r.value.digest !== digest || r.value.changes?.changed.length !== 0) throw new Error('touching files changed the digest');
      if (r.value.stats.hashedFiles < 10) throw new Error(`expected the 10 touched files to be re-read, read ${r.value.stats.hashedFiles}`);
      touchedOurs.push(r.seconds);
    }
    row('warm hash, 10 files touched (library)', touchedOurs, 'git status, same touches', touchedPeer);
    row(`floor: bare readdir + lstat in ${availableParallelism()} warm Node workers (no cache, no hashing)`, await bareWalkSeconds(root, trials), 'git status', gitPeer);
  } finally {
    await rm(cacheHome, { recursive: true, force: true });
  }
  return rows;
}
