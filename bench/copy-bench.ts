/**
 * Registry copy and push, slipway beside skopeo, crane and regctl, against real `docker-registry`
 * instances on loopback. Every full copy or push goes into a fresh, empty registry; no-op copies go
 * into one registry that already holds the image; trials are interleaved round-robin so the load of
 * this shared machine falls on every tool alike.
 * @module
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyImage, pushArchive } from '@slipway/engine';
import type { Fixtures } from './fixtures.js';
import { CLI, log, median, minimum, processCpuSeconds, runOk, runTimed, timeCall, type Harness, type TestRegistry, type Timed } from './support.js';

const UPLOAD_FLOOR = fileURLToPath(new URL('../upload-floor.sh', import.meta.url));
export const SKOPEO = '/usr/bin/skopeo';

export type Scenario = 'full-copy' | 'noop-copy' | 'push-archive' | 'copy-1g' | 'push-daemon';

export interface Row {
  scenario: Scenario;
  /** The registry build the trial ran against (`docker-registry 2.8`, `distribution v3`). */
  registry?: string;
  /** What was measured, for the table. */
  label: string;
  tool: string;
  status: 'ok' | 'not built' | 'not installed' | 'failed' | 'unsupported';
  /** Wall seconds of each successful trial. */
  samples: number[];
  /** Median of samples. */
  seconds?: number;
  min?: number;
  /** Median seconds ÷ skopeo's median seconds for the same scenario. */
  ratio?: number;
  /** Best seconds ÷ skopeo's best seconds. */
  ratioBest?: number;
  /** Median CPU seconds (user + system) of the client: the child process, or this process for in-process calls. */
  cpuSeconds?: number;
  /** Median CPU seconds the source and destination registries spent on one trial. */
  registryCpuSeconds?: number;
  /** Largest peak RSS of the process over the trials (GNU time %M), MB. */
  rssMB?: number;
  /** Requests that reached the destination registry (counting proxy), one run. */
  requests?: number;
  note?: string;
}

interface Outcome {
  seconds: number;
  ok: boolean;
  error?: string;
  rssMB?: number;
  cpuSeconds?: number;
}

interface Contender {
  name: string;
  /** A lower bound, not a tool: no requests are counted for it. */
  floor?: boolean;
  /** Why it cannot run (then it gets a row saying so). */
  missing?: { status: Row['status']; reason: string };
  /** Called for every registry host it will talk to, before timing (regctl's per-host TLS setting). */
  prepareHost?: (host: string) => Promise<void>;
  copy?: (source: string, destination: string) => Promise<Outcome>;
  push?: (archive: string, destination: string) => Promise<Outcome>;
  /** Copy an image the Docker Engine holds (`docker-daemon:` for slipway and skopeo). */
  daemon?: (image: string, destination: string) => Promise<Outcome>;
}

export interface CopyBenchOptions {
  harness: Harness;
  fixtures: Fixtures;
  /** Trials per copy and no-op measurement. */
  trials: number;
  /** Trials per archive push (each takes seconds: cold pushes compress 200 MB). */
  pushTrials: number;
  /** Scratch directory (removed by the caller). */
  workDir: string;
  /** Versions of the peers, filled in here. */
  versions: Record<string, string>;
  /** Which registry build every source and destination runs (see test/support/registry.ts). */
  implementation: 'debian' | 'v3';
  /** An image the Docker Engine holds (the archive fixture, loaded): the docker-daemon: scenario runs when set. */
  daemonImage?: string;
}

export interface CopyBenchResult {
  rows: Row[];
}

function outcome(r: Timed): Outcome {
  const o: Outcome = { seconds: r.seconds, ok: r.code === 0 };
  if (r.rssMB !== undefined) o.rssMB = r.rssMB;
  if (r.cpuSeconds !== undefined) o.cpuSeconds = r.cpuSeconds;
  if (r.code !== 0) o.error = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ').slice(0, 400);
  return o;
}

async function inProcess(call: () => Promise<unknown>): Promise<Outcome> {
  try {
    const { seconds, cpuSeconds } = await timeCall(call);
    return { seconds, cpuSeconds, ok: true };
  } catch (err) {
    return { seconds: 0, ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
}

/** Runs `call` with XDG_CACHE_HOME pointing at `dir` (the tarball layer cache lives there). */
async function withCacheHome<T>(dir: string, call: () => Promise<T>): Promise<T> {
  const previous = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = dir;
  try {
    return await call();
  } finally {
    if (previous === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = previous;
  }
}

/** The blob files of a layout's image and its manifest file, for the upload floor. */
async function layoutFiles(dir: string, manifestDigest: string): Promise<{ manifest: string; mediaType: string; blobs: string[] }> {
  const path = (digest: string): string => join(dir, 'blobs', ...digest.split(':'));
  const manifest = path(manifestDigest);
  const parsed = JSON.parse(await readFile(manifest, 'utf8')) as { mediaType: string; config: { digest: string }; layers: { digest: string }[] };
  return { manifest, mediaType: parsed.mediaType, blobs: [parsed.config.digest, ...parsed.layers.map((l) => l.digest)].map(path) };
}

/**
 * Floors, measured in the same run: what the goals can be held against on this machine.
 * - upload: curl puts the 205 MB layout's blobs into the destination from disk (upload-floor.sh), so
 *   only the destination registry's intake is left. For the full copy this is below any copier (it
 *   reads no source); for the docker-save push it stands for the compressed layers' upload (random
 *   data compresses to its own size), without the reading, compressing or hashing a push needs.
 * - start-up: `node -e 0`, below which no Node CLI can go, beside the no-op copy.
 */
async function floors(fixtures: Fixtures): Promise<{ upload: Contender; startup: Contender }> {
  const files = await layoutFiles(fixtures.image4.dir, fixtures.image4.digest);
  const upload = async (destination: string): Promise<Outcome> => {
    const slash = destination.indexOf('/');
    const colon = destination.lastIndexOf(':');
    const args = [UPLOAD_FLOOR, destination.slice(0, slash), destination.slice(slash + 1, colon), files.manifest, files.mediaType, ...files.blobs];
    return outcome(await runTimed('/bin/bash', args, { stats: true }));
  };
  return {
    upload: {
      name: 'floor: curl uploads the 205 MB of blobs from disk',
      floor: true,
      copy: (_source, destination) => upload(destination),
      push: (_archive, destination) => upload(destination),
    },
    startup: {
      name: 'floor: `node -e 0` (Node start-up alone)',
      floor: true,
      copy: async () => outcome(await runTimed(process.execPath, ['-e', '0'], { stats: true })),
    },
  };
}

async function contenders(options: CopyBenchOptions): Promise<{ copy: Contender[]; push: Contender[]; daemon: Contender[] }> {
  const { harness, workDir, versions } = options;
  const { tools } = harness;
  const node = process.execPath;
  const cacheRoot = join(workDir, 'slipway-cache');
  let cold = 0;
  const coldCache = (): string => join(cacheRoot, `cold-${++cold}`);
  const warmCache = join(cacheRoot, 'warm');

  const cliCopy: Contender = {
    name: 'slipway CLI',
    copy: async (src, dst) => outcome(await runTimed(node, [CLI, 'copy', src, dst, '--json'], { stats: true, env: { XDG_CACHE_HOME: coldCache() } })),
  };
  const libCopy: Contender = {
    name: 'slipway library (in-process)',
    copy: (src, dst) => inProcess(() => copyImage({ source: src, destination: dst })),
  };
  const cliPush = (warm: boolean): Contender => ({
    name: `slipway CLI, ${warm ? 'warm' : 'cold'} layer cache`,
    push: async (archive, dst) => outcome(await runTimed(node, [CLI, 'push', archive, dst, '--json'], { stats: true, env: { XDG_CACHE_HOME: warm ? warmCache : coldCache() } })),
  });
  const libPush = (warm: boolean): Contender => ({
    name: `slipway library (in-process), ${warm ? 'warm' : 'cold'} layer cache`,
    push: (archive, dst) => withCacheHome(warm ? warmCache : coldCache(), () => inProcess(() => pushArchive({ archive, destination: dst }))),
  });

  const cliDaemon: Contender = {
    name: 'slipway CLI, cold layer cache',
    daemon: async (image, dst) => outcome(await runTimed(node, [CLI, 'copy', `docker-daemon:${image}`, dst, '--json'], { stats: true, env: { XDG_CACHE_HOME: coldCache() } })),
  };
  const libDaemon: Contender = {
    name: 'slipway library (in-process), cold layer cache',
    daemon: (image, dst) => withCacheHome(coldCache(), () => inProcess(() => copyImage({ source: `docker-daemon:${image}`, destination: dst }))),
  };

  const skopeo: Contender = tools.hasTool(SKOPEO)
    ? {
        name: 'skopeo',
        daemon: async (image, dst) =>
          outcome(await runTimed(SKOPEO, ['copy', '--dest-tls-verify=false', `docker-daemon:${image}`, `docker://${dst}`], { stats: true })),
        copy: async (src, dst) =>
          outcome(await runTimed(SKOPEO, ['copy', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src}`, `docker://${dst}`], { stats: true })),
        push: async (archive, dst) =>
          outcome(await runTimed(SKOPEO, ['copy', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${dst}`], { stats: true })),
      }
    : { name: 'skopeo', missing: { status: 'not installed', reason: `${SKOPEO} missing (apt-get install skopeo)` } };
  if (!skopeo.missing) versions.skopeo = (await runTimed(SKOPEO, ['--version'])).stdout.trim().replace(/^skopeo version /, '');

  const goTool = (name: string): string | undefined => {
    const path = join(tools.toolsBinDir(), name);
    return tools.hasTool(path) ? path : undefined;
  };
  const missingGo = (name: string): Contender['missing'] => ({
    status: 'not built',
    reason: `${name} not built (status: ${tools.goToolStatus(name)}; scripts/install-go-tools.sh builds it into ${tools.toolsBinDir()})`,
  });

  const cranePath = goTool('crane');
  const crane: Contender = cranePath
    ? {
        name: 'crane',
        copy: async (src, dst) => outcome(await runTimed(cranePath, ['copy', '--insecure', src, dst], { stats: true })),
        // crane reads docker-save tarballs (ggcr tarball.Image: manifest.json + uncompressed layer.tar).
        push: async (archive, dst) => outcome(await runTimed(cranePath, ['push', '--insecure', archive, dst], { stats: true })),
      }
    : { name: 'crane', missing: missingGo('crane') };
  if (cranePath) versions.crane = (await runTimed(cranePath, ['version'])).stdout.trim();

  const regctlPath = goTool('regctl');
  // regctl keeps per-host settings in $HOME/.regctl/config.json: a private HOME keeps the user's alone.
  const regctlEnv = { HOME: join(workDir, 'regctl-home') };
  const regctl: Contender = regctlPath
    ? {
        name: 'regctl',
        prepareHost: async (host) => {
          await runOk(regctlPath, ['registry', 'set', '--tls', 'disabled', host], { stats: true, env: regctlEnv });
        },
        copy: async (src, dst) => outcome(await runTimed(regctlPath, ['image', 'copy', src, dst], { stats: true, env: regctlEnv })),
        push: async (archive, dst) => outcome(await runTimed(regctlPath, ['image', 'import', dst, archive], { stats: true, env: regctlEnv })),
      }
    : { name: 'regctl', missing: missingGo('regctl') };
  if (regctlPath) versions.regctl = (await runTimed(regctlPath, ['version', '--format', '{{.VCSTag}}'], { env: regctlEnv })).stdout.trim();

  return {
    copy: [cliCopy, libCopy, skopeo, crane, regctl],
    push: [cliPush(false), libPush(false), cliPush(true), libPush(true), skopeo, crane, regctl],
    // crane and regctl read no Docker Engine.
    daemon: [cliDaemon, libDaemon, skopeo],
  };
}

/** HEAD the destination tag; the digest it holds, or undefined. */
async function destinationDigest(host: string, repository: string, tag: string): Promise<string | undefined> {
  const accept = [
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
  ].join(', ');
  const response = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { accept } });
  return response.status === 200 ? (response.headers.get('docker-content-digest') ?? undefined) : undefined;
}

/** Collects the trials of one contender in one scenario. */
class Tally {
  readonly row: Row;
  readonly #failures: string[] = [];
  readonly #cpu: number[] = [];
  readonly #registryCpu: number[] = [];

  constructor(scenario: Scenario, label: string, tool: string) {
    this.row = { scenario, label, tool, status: 'ok', samples: [] };
  }

  add(o: Outcome, problem: string | undefined, registryCpu?: number): void {
    if (o.rssMB !== undefined) this.row.rssMB = Math.max(this.row.rssMB ?? 0, o.rssMB);
    if (!o.ok || problem !== undefined) {
      this.#failures.push(problem ?? o.error ?? 'failed');
      return;
    }
    this.row.samples.push(o.seconds);
    if (o.cpuSeconds !== undefined) this.#cpu.push(o.cpuSeconds);
    if (registryCpu !== undefined) this.#registryCpu.push(registryCpu);
  }

  fail(problem: string): void {
    this.#failures.push(problem);
  }

  note(text: string): void {
    this.row.note = this.row.note ? `${this.row.note}; ${text}` : text;
  }

  finish(): Row {
    const row = this.row;
    if (this.#failures.length > 0) {
      row.status = 'failed';
      row.note = `${this.#failures.length} of ${this.#failures.length + row.samples.length} runs failed: ${this.#failures[0]}${row.note ? `; ${row.note}` : ''}`;
      // A tool that fails some runs gets no time: a median over its lucky runs would flatter it.
      row.samples = [];
      return row;
    }
    const m = median(row.samples);
    const lo = minimum(row.samples);
    const cpu = median(this.#cpu);
    const reg = median(this.#registryCpu);
    if (m !== undefined) row.seconds = m;
    if (lo !== undefined) row.min = lo;
    if (cpu !== undefined) row.cpuSeconds = cpu;
    if (reg !== undefined) row.registryCpuSeconds = reg;
    return row;
  }
}

function missingRow(scenario: Scenario, label: string, c: Contender): Row {
  return { scenario, label, tool: c.name, status: c.missing!.status, samples: [], note: c.missing!.reason };
}

function ratios(rows: Row[]): void {
  const base = rows.find((r) => r.tool === 'skopeo' && r.status === 'ok');
  if (base?.seconds === undefined || base.min === undefined) return;
  for (const r of rows) {
    if (r.status !== 'ok') continue;
    if (r.seconds !== undefined) r.ratio = r.seconds / base.seconds;
    if (r.min !== undefined) r.ratioBest = r.min / base.min;
  }
}

const say = (o: Outcome): string =>
  o.ok ? `${o.seconds.toFixed(3)} s${o.cpuSeconds === undefined ? '' : `, ${o.cpuSeconds.toFixed(2)} CPU-s`}${o.rssMB === undefined ? '' : `, ${o.rssMB.toFixed(0)} MB RSS`}` : `FAILED ${o.error ?? ''}`;

/** `{type}` of a request path, for the per-request-kind note. */
function requestKind(method: string, path: string): string {
  const p = path.replace(/\?.*$/, '');
  if (/^\/v2\/?$/.test(p)) return `${method} /v2/`;
  const m = /\/(manifests|blobs\/uploads|blobs)\//.exec(p);
  return `${method} ${m ? m[1] : p}`;
}

export async function runCopyBench(options: CopyBenchOptions): Promise<CopyBenchResult> {
  const { harness, fixtures, trials, pushTrials } = options;
  const { startRegistry } = harness.registry;
  const { implementation } = options;
  const all = await contenders(options);
  const floor = await floors(fixtures);
  const rows: Row[] = [];
  const started: TestRegistry[] = [];
  const fresh = async (): Promise<TestRegistry> => {
    const r = await startRegistry({ implementation });
    started.push(r);
    return r;
  };
  const stop = async (r: TestRegistry): Promise<void> => {
    await r.stop();
    started.splice(started.indexOf(r), 1);
  };
  const registryCpu = async (regs: TestRegistry[]): Promise<number | undefined> => {
    let sum = 0;
    for (const r of regs) {
      const s = await processCpuSeconds(`${r.dataDir}/config.yml`);
      if (s === undefined) return undefined;
      sum += s;
    }
    return sum;
  };
  const mb = (n: number): string => `${Math.round(n / 1e6)} MB`;

  /**
   * Round-robin trials into a fresh registry each: `run` gets the contender and the new registry,
   * and returns the outcome plus a problem found when checking the destination.
   */
  const intoFresh = async (
    scenario: Scenario,
    label: string,
    list: Contender[],
    rounds: number,
    run: (c: Contender, dst: TestRegistry) => Promise<{ o: Outcome; problem?: string }>,
    measureRegistries: TestRegistry[] = [],
  ): Promise<Row[]> => {
    const runnable = list.filter((c) => !c.missing);
    const tallies = new Map(runnable.map((c) => [c.name, new Tally(scenario, label, c.name)]));
    for (let trial = 1; trial <= rounds; trial++) {
      for (const c of runnable) {
        const dst = await fresh();
        await c.prepareHost?.(dst.host);
        const before = await registryCpu([...measureRegistries, dst]);
        const { o, problem } = await run(c, dst);
        const after = await registryCpu([...measureRegistries, dst]);
        tallies.get(c.name)!.add(o, problem, before !== undefined && after !== undefined && measureRegistries.length > 0 ? after - before : undefined);
        log(`${scenario.padEnd(12)} ${trial}/${rounds} ${c.name.padEnd(48)} ${problem ? `FAILED ${problem}` : say(o)}`);
        await stop(dst);
      }
    }
    const group = list.map((c) => (c.missing ? missingRow(scenario, label, c) : tallies.get(c.name)!.finish()));
    ratios(group);
    return group;
  };

  try {
    // Source registry, filled through slipway's own layout reader and pusher.
    const source = await fresh();
    log(`source registry ${source.host}: pushing the fixtures`);
    const img4 = `${source.host}/bench/img4:latest`;
    const img1g = `${source.host}/bench/big:latest`;
    for (const [dir, ref, digest] of [
      [fixtures.image4.dir, img4, fixtures.image4.digest],
      [fixtures.image1g.dir, img1g, fixtures.image1g.digest],
    ] as const) {
      const { seconds, value } = await timeCall(() => copyImage({ source: dir, destination: ref }));
      if (value.digest !== digest) throw new Error(`pushing fixture ${dir}: registry holds ${value.digest}, layout says ${digest}`);
      log(`  ${ref} (${seconds.toFixed(1)} s)`);
    }
    for (const c of all.copy) await c.prepareHost?.(source.host);

    const checked = async (o: Outcome, dst: TestRegistry, repository: string, want: string | undefined): Promise<{ o: Outcome; problem?: string }> => {
      if (!o.ok) return { o };
      const held = await destinationDigest(dst.host, repository, 'latest');
      if (held === undefined) return { o, problem: 'the destination holds no manifest at the tag' };
      if (want !== undefined && held !== want) return { o, problem: `the destination holds ${held}, want ${want}` };
      return { o };
    };

    // 1. Full copy into an empty registry.
    rows.push(
      ...(await intoFresh(
        'full-copy',
        `full copy, ${mb(fixtures.image4.bytes)} in ${fixtures.image4.layers} layers, into an empty registry`,
        [...all.copy, floor.upload],
        trials,
        async (c, dst) => checked(await c.copy!(img4, `${dst.host}/bench/img4:latest`), dst, 'bench/img4', fixtures.image4.digest),
        [source],
      )),
    );

    // 2. No-op copy: the destination already holds the image.
    {
      const scenario: Scenario = 'noop-copy';
      const label = `no-op copy (the destination already holds the ${mb(fixtures.image4.bytes)} image)`;
      const dst = await fresh();
      const dstRef = `${dst.host}/bench/img4:latest`;
      await copyImage({ source: img4, destination: dstRef });
      const proxy = await harness.proxy.startFaultProxy({ target: dst });
      const list = [...all.copy, floor.startup];
      try {
        const runnable = list.filter((c) => !c.missing);
        for (const c of runnable) {
          await c.prepareHost?.(dst.host);
          await c.prepareHost?.(proxy.host);
        }
        const tallies = new Map(runnable.map((c) => [c.name, new Tally(scenario, label, c.name)]));
        for (let trial = 1; trial <= trials; trial++) {
          for (const c of runnable) {
            const o = await c.copy!(img4, dstRef);
            tallies.get(c.name)!.add(o, undefined);
            log(`${scenario.padEnd(12)} ${trial}/${trials} ${c.name.padEnd(48)} ${say(o)}`);
          }
        }
        // One more run each through the counting proxy, untimed (the proxy adds a hop).
        for (const c of runnable.filter((r) => !r.floor)) {
          proxy.clearRequests();
          const o = await c.copy!(img4, `${proxy.host}/bench/img4:latest`);
          const tally = tallies.get(c.name)!;
          if (!o.ok) {
            tally.fail(`through the counting proxy: ${o.error ?? 'failed'}`);
            continue;
          }
          const requests = [...proxy.requests];
          tally.row.requests = requests.length;
          const kinds = new Map<string, number>();
          for (const r of requests) kinds.set(requestKind(r.method, r.path), (kinds.get(requestKind(r.method, r.path)) ?? 0) + 1);
          tally.note([...kinds].map(([k, n]) => `${n}× ${k}`).join(', '));
          log(`${scenario.padEnd(12)} via proxy ${c.name.padEnd(42)} ${requests.length} requests to the destination`);
        }
        const group = list.map((c) => (c.missing ? missingRow(scenario, label, c) : tallies.get(c.name)!.finish()));
        ratios(group);
        rows.push(...group);
      } finally {
        await proxy.stop();
        await stop(dst);
      }
    }

    // 3. 1 GB single layer: peak RSS of each process, and its time.
    {
      const group = await intoFresh(
        'copy-1g',
        `copy of a ${mb(fixtures.image1g.bytes)} single layer into an empty registry (peak RSS; one run)`,
        all.copy,
        1,
        async (c, dst) => checked(await c.copy!(img1g, `${dst.host}/bench/big:latest`), dst, 'bench/big', fixtures.image1g.digest),
      );
      for (const r of group) if (r.tool.includes('in-process')) r.note = 'RSS not separable from the bench process; the CLI row is the process figure';
      rows.push(...group);
    }

    // 4. Push of the docker-save archive into an empty registry.
    {
      // Fill the warm cache once, untimed, so "warm" means what a second push of the same archive costs.
      const dst = await fresh();
      const warm = all.push.find((c) => c.name.startsWith('slipway library') && c.name.includes('warm'))!;
      const o = await warm.push!(fixtures.archive.path, `${dst.host}/bench/save:warmup`);
      if (!o.ok) log(`warm-up push failed: ${o.error ?? ''}`);
      await stop(dst);
      rows.push(
        ...(await intoFresh(
          'push-archive',
          `push of a docker-save archive (${mb(fixtures.archive.bytes)}, ${fixtures.archive.layers} uncompressed layers) into an empty registry`,
          [...all.push, floor.upload],
          pushTrials,
          // Digests differ per tool (each compresses its own way): only presence is checked.
          async (c, d) => checked(await c.push!(fixtures.archive.path, `${d.host}/bench/save:latest`), d, 'bench/save', undefined),
        )),
      );
    }

    // 5. Copy of the same image out of the Docker Engine (`docker-daemon:`), when it answers: the
    // export stream is spooled and read as a docker-save archive (a 16 KiB spool buffer once made
    // this ~100x slower than skopeo: the daemon's stream stalls every time it is paused).
    if (options.daemonImage) {
      rows.push(
        ...(await intoFresh(
          'push-daemon',
          `copy of the same image out of the Docker Engine (docker-daemon:, ${mb(fixtures.archive.bytes)}, layers compressed on the way)`,
          all.daemon,
          pushTrials,
          async (c, d) => checked(await c.daemon!(options.daemonImage!, `${d.host}/bench/daemon:latest`), d, 'bench/daemon', undefined),
        )),
      );
    }
  } finally {
    for (const r of [...started]) await r.stop().catch(() => undefined);
    await rm(join(options.workDir, 'slipway-cache'), { recursive: true, force: true });
  }
  return { rows };
}

/** A scratch dir for one bench run. */
export function makeWorkDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'slipway-bench-run-'));
}
