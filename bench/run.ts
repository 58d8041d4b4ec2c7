/**
 * `npm run bench`: registry copy and push performance of slipway beside skopeo, crane and regctl,
 * as ratios to skopeo, with the project's goals marked met or missed; then the context bench when
 * `bench/context-bench.ts` exists. Prints markdown on stdout (progress goes to stderr) and writes
 * `bench/results/latest.json`.
 *
 * Environment: SLIPWAY_BENCH_TRIALS (copy and no-op trials, default 5), SLIPWAY_BENCH_PUSH_TRIALS
 * (default 3), SLIPWAY_BENCH_DIR (fixture cache, default `$TMPDIR/slipway-bench-fixtures`),
 * SLIPWAY_BENCH_REGISTRIES (`debian,v3`, the registry builds the copy bench runs against), SLIPWAY_BENCH_SKIP_COPY=1
 * (context bench only).
 * @module
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { makeWorkDir, runCopyBench, type Row } from './copy-bench.js';
import { buildFixtures, type Fixtures } from './fixtures.js';
import { mirrorBenchSetup, runMirrorBench, type MirrorRow } from './mirror-bench.js';
import { loadHarness, log, runTimed, type Harness } from './support.js';

interface Goal {
  scenario: Row['scenario'];
  registry?: string;
  tool: string;
  what: string;
  metric: 'ratio' | 'requests' | 'rssMB';
  target: number;
  measured?: number;
  /** For a time goal: the same scenario's floor row (copy-bench.ts `floors`) ÷ skopeo, from the same run. */
  floor?: number;
  /** undefined when it could not be measured. */
  met?: boolean;
}

const GOALS: Omit<Goal, 'measured' | 'met'>[] = [
  { scenario: 'full-copy', tool: 'slipway CLI', what: 'full copy time ÷ skopeo', metric: 'ratio', target: 0.6 },
  { scenario: 'full-copy', tool: 'slipway library (in-process)', what: 'full copy time ÷ skopeo', metric: 'ratio', target: 0.6 },
  { scenario: 'noop-copy', tool: 'slipway CLI', what: 'no-op copy time ÷ skopeo', metric: 'ratio', target: 0.5 },
  { scenario: 'noop-copy', tool: 'slipway library (in-process)', what: 'no-op copy time ÷ skopeo', metric: 'ratio', target: 0.5 },
  { scenario: 'noop-copy', tool: 'slipway CLI', what: 'no-op copy: requests to the destination', metric: 'requests', target: 2 },
  { scenario: 'noop-copy', tool: 'slipway library (in-process)', what: 'no-op copy: requests to the destination', metric: 'requests', target: 2 },
  { scenario: 'copy-1g', tool: 'slipway CLI', what: 'peak RSS copying a 1 GB layer (MB)', metric: 'rssMB', target: 150 },
  // Cold is the like-for-like row: skopeo, crane and regctl compress every layer on every push.
  { scenario: 'push-archive', tool: 'slipway CLI, cold layer cache', what: 'docker-save push time ÷ skopeo', metric: 'ratio', target: 0.6 },
  { scenario: 'push-archive', tool: 'slipway library (in-process), cold layer cache', what: 'docker-save push time ÷ skopeo', metric: 'ratio', target: 0.6 },
];

interface ContextRow {
  name: string;
  slipwaySeconds: number;
  peerName: string;
  peerSeconds: number;
  ratio: number;
}

interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  freeMemoryGiB: number;
  kernel: string;
  node: string;
  loadStart: number[];
  loadEnd?: number[];
  versions: Record<string, string>;
}

async function machineInfo(harness: Harness): Promise<Machine> {
  const versions: Record<string, string> = {};
  const registry = await runTimed('/usr/bin/docker-registry', ['--version']).catch(() => undefined);
  if (registry?.code === 0) versions['docker-registry'] = registry.stdout.trim().split(/\s+/).pop() ?? '';
  const v3 = harness.registry.registryV3Path();
  const v3Version = v3 ? await runTimed(v3, ['--version']).catch(() => undefined) : undefined;
  if (v3Version?.code === 0) versions['distribution'] = v3Version.stdout.trim().split(/\s+/).pop()?.replace(/\+unknown$/, '') ?? '';
  const docker = await runTimed('/usr/bin/docker', ['version', '--format', '{{.Server.Version}}']).catch(() => undefined);
  versions.dockerd = docker?.code === 0 ? docker.stdout.trim() : 'not reachable';
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    freeMemoryGiB: Math.round(freemem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    loadStart: loadavg().map((n) => Math.round(n * 100) / 100),
    versions,
  };
}

const fmt = (n: number | undefined, digits = 3): string => (n === undefined ? '—' : n.toFixed(digits));

function evaluate(rows: Row[]): Goal[] {
  const registries = [...new Set(rows.map((r) => r.registry))];
  return registries.flatMap((registry) =>
    GOALS.map((g) => {
      const row = rows.find((r) => r.scenario === g.scenario && r.tool === g.tool && r.registry === registry);
      const measured = row?.status === 'ok' ? (g.metric === 'ratio' ? row.ratio : g.metric === 'requests' ? row.requests : row.rssMB) : undefined;
      // Node's start-up bounds only a fresh process (the CLI), not a call inside a running one.
      const floorRow =
        g.metric === 'ratio'
          ? rows.find((r) => r.scenario === g.scenario && r.registry === registry && r.tool.startsWith('floor:') && r.status === 'ok' && (!r.tool.includes('start-up') || g.tool.startsWith('slipway CLI')))
          : undefined;
      const goal: Goal = { ...g, ...(registry ? { registry } : {}), ...(floorRow?.ratio !== undefined ? { floor: floorRow.ratio } : {}) };
      return measured === undefined ? goal : { ...goal, measured, met: measured <= g.target };
    }),
  );
}

function renderRows(rows: Row[]): string {
  const out: string[] = [];
  let label = '';
  for (const r of rows) {
    if (r.label !== label) {
      label = r.label;
      out.push(
        '',
        `### ${label}`,
        '',
        '| tool | median s | best s | × skopeo (median) | × skopeo (best) | client CPU s | registries CPU s | peak RSS MB | dest. requests | status | note |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
      );
    }
    out.push(
      `| ${r.tool} | ${fmt(r.seconds)} | ${fmt(r.min)} | ${fmt(r.ratio, 2)} | ${fmt(r.ratioBest, 2)} | ${fmt(r.cpuSeconds, 2)} | ${fmt(r.registryCpuSeconds, 2)} | ${fmt(r.rssMB, 0)} | ${r.requests ?? '—'} | ${r.status} | ${(r.note ?? '').replace(/\|/g, '\\|')} |`,
    );
  }
  return out.join('\n');
}

function renderGoals(goals: Goal[]): string {
  const lines = [
    '',
    '### Goals',
    '',
    'floor = the scenario\'s floor row ÷ skopeo in this run: the least time anything can take here (see copy-bench.ts `floors`).',
    '',
    '| goal | tool | registry | target | measured | floor | result |',
    '|---|---|---|---:|---:|---:|---|',
  ];
  for (const g of goals) {
    const result = g.met === undefined ? 'NOT MEASURED' : g.met ? 'met' : '**MISSED**';
    const digits = g.metric === 'ratio' ? 2 : 0;
    lines.push(`| ${g.what} | ${g.tool} | ${g.registry ?? '—'} | ≤ ${g.target} | ${fmt(g.measured, digits)} | ${fmt(g.floor, 2)} | ${result} |`);
  }
  return lines.join('\n');
}

function renderMachine(m: Machine, fixtures: Fixtures | undefined, trials: number, pushTrials: number): string {
  const v = Object.entries(m.versions)
    .map(([k, x]) => `${k} ${x}`)
    .join(', ');
  const lines = [
    '## slipway bench',
    '',
    `- machine: ${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB (${m.freeMemoryGiB} free), Linux ${m.kernel}, Node ${m.node}`,
    `- load average (1/5/15 min) at start ${m.loadStart.join(' / ')}, at end ${m.loadEnd?.join(' / ') ?? '—'}` +
      (m.loadStart[0]! > m.cores ? ` — the machine is shared and busy (load > ${m.cores} cores): absolute times are inflated and noisy; ratios are the figure to read` : ''),
    `- tools: ${v}`,
    `- ${trials} trials per copy measurement, ${pushTrials} per push (the 1 GB copy: one), median reported, tools interleaved round-robin; every full copy and push into a fresh empty registry on loopback`,
    '- client CPU s = user + system CPU of the client process (GNU time), or of the bench process during an in-process call; registries CPU s = what the source and destination registry processes spent on the copy (/proc), the same work whoever the client is',
    '- slipway CLI = `node packages/cli/dist/main.js …` wall time, Node start-up included; slipway library = the engine op (`copyImage`/`pushArchive`) called inside this process (a long-lived Pulumi/Terraform provider), new registry client per call',
  ];
  if (fixtures) {
    lines.push(
      `- fixtures (${fixtures.dir}): random incompressible layers, gzip-wrapped; docker-save archive: ${fixtures.archive.origin}`,
      '- push "cold" = empty slipway layer cache (compresses every layer, as skopeo, crane and regctl always do); "warm" = the cache holds the compressed layers from an earlier push of the same archive',
    );
  }
  return lines.join('\n');
}

async function contextBench(workDir: string): Promise<{ rows: ContextRow[]; note?: string }> {
  // Not a static import: the context helper owns that file and it may not exist yet.
  const specifier = './context-bench.js';
  let mod: { runContextBench?: (options: { workDir: string; log: (message: string) => void }) => Promise<ContextRow[]> };
  try {
    mod = (await import(specifier)) as typeof mod;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return { rows: [], note: 'context bench skipped: bench/context-bench.ts does not exist yet' };
    throw err;
  }
  if (typeof mod.runContextBench !== 'function') return { rows: [], note: 'context bench skipped: bench/context-bench.ts does not export runContextBench' };
  return { rows: await mod.runContextBench({ workDir, log }) };
}

function renderMirror(result: { rows: MirrorRow[]; note?: string }): string {
  if (result.note) return `\n### Repository mirror\n\n${result.note}`;
  if (result.rows.length === 0) return '';
  const lines = ['', `### Repository mirror: ${mirrorBenchSetup}`, '', '| case | tool | s | × crane | source requests | destination requests | status |', '|---|---|---:|---:|---:|---:|---|'];
  for (const r of result.rows) {
    const crane = result.rows.find((c) => c.case === r.case && c.tool === 'crane')?.seconds;
    const ratio = r.seconds !== undefined && crane ? r.seconds / crane : undefined;
    lines.push(`| ${r.case} | ${r.tool} | ${fmt(r.seconds)} | ${fmt(ratio, 2)} | ${r.sourceRequests ?? '—'} | ${r.destinationRequests ?? '—'} | ${r.status.replace(/\|/g, '\\|')} |`);
  }
  return lines.join('\n');
}

function renderContext(result: { rows: ContextRow[]; note?: string }): string {
  if (result.note) return `\n### Context bench\n\n${result.note}`;
  const lines = ['', '### Context bench', '', '| case | slipway s | peer | peer s | ratio |', '|---|---:|---|---:|---:|'];
  for (const r of result.rows) lines.push(`| ${r.name} | ${fmt(r.slipwaySeconds)} | ${r.peerName} | ${fmt(r.peerSeconds)} | ${fmt(r.ratio, 2)} |`);
  return lines.join('\n');
}

/**
 * Registry builds to run the copy bench against (`SLIPWAY_BENCH_REGISTRIES`, default both):
 * Debian's docker-registry 2.8, whose Go (1.19) hashes without SHA-NI and so spends ~0.8 CPU-s taking
 * in 200 MB, and distribution v3 (Go with SHA-NI), where the client's own cost shows.
 */
function registryBuilds(harness: Harness): ('debian' | 'v3')[] {
  const asked = (process.env.SLIPWAY_BENCH_REGISTRIES ?? 'debian,v3').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const a of asked) if (a !== 'debian' && a !== 'v3') throw new Error(`SLIPWAY_BENCH_REGISTRIES: unknown registry build "${a}" (debian, v3)`);
  const builds = asked as ('debian' | 'v3')[];
  if (builds.includes('v3') && harness.registry.registryV3Path() === undefined) {
    log('*** distribution v3 is not built (scripts/install-go-tools.sh distribution): the copy bench runs against docker-registry 2.8 only ***');
    return builds.filter((b) => b !== 'v3');
  }
  return builds;
}

function count(variable: string, fallback: number): number {
  const value = Number(process.env[variable] ?? fallback);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${variable} must be a positive integer, got ${process.env[variable]}`);
  return value;
}

async function main(): Promise<void> {
  const trials = count('SLIPWAY_BENCH_TRIALS', 5);
  const pushTrials = count('SLIPWAY_BENCH_PUSH_TRIALS', 3);
  const started = Date.now();
  const harness = await loadHarness();
  const machine = await machineInfo(harness);
  log(`load average ${machine.loadStart.join(' ')} on ${machine.cores} cores`);
  const workDir = await makeWorkDir();
  const rows: Row[] = [];
  let fixtures: Fixtures | undefined;
  let context: { rows: ContextRow[]; note?: string };
  let mirror: { rows: MirrorRow[]; note?: string } = { rows: [] };
  try {
    if (process.env.SLIPWAY_BENCH_SKIP_COPY !== '1') {
      const docker = machine.versions.dockerd !== 'not reachable';
      fixtures = await buildFixtures({ docker });
      // The docker-daemon: scenario copies the archive fixture back out of the Engine.
      const daemonImage = docker ? await loadIntoDocker(fixtures.archive.path) : undefined;
      if (!docker) log('*** the Docker Engine is not reachable: no docker-daemon: scenario (scripts/start-dockerd.sh) ***');
      try {
        for (const implementation of registryBuilds(harness)) {
          const registry = implementation === 'v3' ? `distribution ${machine.versions['distribution'] ?? 'v3'}` : `docker-registry ${machine.versions['docker-registry'] ?? '2.8'}`;
          log(`copy bench against ${registry}`);
          const found = (await runCopyBench({ harness, fixtures, trials, pushTrials, workDir, versions: machine.versions, implementation, ...(daemonImage ? { daemonImage } : {}) })).rows;
          rows.push(...found.map((r) => ({ ...r, registry, label: `${r.label} — registry: ${registry}` })));
        }
      } finally {
        if (daemonImage) await runTimed('/usr/bin/docker', ['rmi', '-f', daemonImage]);
      }
      log('mirror bench (copy --all-tags, crane copy --all-tags, skopeo sync)');
      mirror = await runMirrorBench({ harness, workDir, log });
    }
    const contextDir = `${workDir}/context`;
    await mkdir(contextDir, { recursive: true });
    context = await contextBench(contextDir);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  machine.loadEnd = loadavg().map((n) => Math.round(n * 100) / 100);
  const goals = evaluate(rows);
  const seconds = (Date.now() - started) / 1000;

  const report = [renderMachine(machine, fixtures, trials, pushTrials), renderRows(rows), rows.length > 0 ? renderGoals(goals) : '', renderMirror(mirror), renderContext(context), '', `bench took ${seconds.toFixed(0)} s`, ''].join('\n');
  process.stdout.write(report);

  const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
  await mkdir(resultsDir, { recursive: true });
  const json = { date: new Date().toISOString(), seconds, trials, pushTrials, machine, fixtures, rows, goals, mirror, context };
  await writeFile(`${resultsDir}latest.json`, JSON.stringify(json, null, 2) + '\n');
  log(`wrote ${resultsDir}latest.json`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});

/** Loads a docker-save archive into the Engine; the tag it holds (the first RepoTag `docker load` reports). */
async function loadIntoDocker(archive: string): Promise<string | undefined> {
  const loaded = await runTimed('/usr/bin/docker', ['load', '-i', archive]);
  const tag = /Loaded image: (\S+)/.exec(loaded.stdout)?.[1];
  if (loaded.code !== 0 || !tag) log(`*** docker load of the archive failed: no docker-daemon: scenario (${loaded.stderr.trim().slice(0, 200)}) ***`);
  return loaded.code === 0 ? tag : undefined;
}
