// Shared pieces of the build e2e tests: a private buildkitd (unix socket and root in a temp dir,
// native snapshotter because overlay on the VM's storage is not reliable), build contexts on disk,
// log collection, and reading back what a build pushed.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { createGunzip } from 'node:zlib';
import { after, before, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { extract } from 'tar-stream';
import type { builders } from '@slipway/build';
import { name, parseManifest, remote, type Descriptor } from '@slipway/oci';
import { pushBusyboxIndex } from '../support/fixtures.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { BUILDAH_ENV, DOCKER_CLI, goToolStatus, hasTool, run, skipUnless, skipUnlessDocker, toolPath, toolsBinDir } from '../support/tools.js';

export const BUILDKITD = toolPath('buildkitd');
export const BUILDCTL = toolPath('buildctl');
export const BUILDX = toolPath('buildx');

/** Skips loudly unless buildkitd and buildctl are installed (they are built from Go by install-go-tools.sh). */
export function skipUnlessBuildKit(t: TestContext, also: 'buildx' | undefined = undefined): boolean {
  const missing = [!BUILDKITD && 'buildkitd', !BUILDCTL && 'buildctl', also === 'buildx' && !BUILDX && 'buildx'].filter(Boolean);
  if (missing.length === 0) return true;
  const msg = `SKIPPED: ${missing.join(', ')} not installed in ${toolsBinDir()} (install-go-tools.sh status: buildkit=${goToolStatus('buildkit')}, buildx=${goToolStatus('buildx')})`;
  console.error(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return false;
}

export interface Buildkitd {
  /** `unix:///tmp/…/buildkitd.sock` */
  address: string;
  /** Stops the daemon and starts it again with an empty root: no build cache at all. */
  restartFresh(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a private buildkitd that allows `--network host` (the VM's dockerd has no bridge either);
 * `env` is added to the daemon's environment.
 */
export async function startBuildkitd(options: { env?: Record<string, string> } = {}): Promise<Buildkitd> {
  if (!BUILDKITD || !BUILDCTL) throw new Error('buildkitd/buildctl not installed');
  const dir = await mkdtemp(join(tmpdir(), 'slipway-buildkitd-'));
  const socket = join(dir, 'buildkitd.sock');
  const tmp = join(dir, 'tmp');
  await mkdir(tmp);
  const address = `unix://${socket}`;
  let child: ChildProcess | undefined;
  let generation = 0;
  const launch = async (): Promise<void> => {
    generation += 1;
    const root = join(dir, `root-${generation}`);
    await mkdir(root);
    const log = join(dir, `buildkitd-${generation}.log`);
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync(log, 'a');
    child = spawn(
      BUILDKITD,
      ['--root', root, '--addr', address, '--oci-worker-snapshotter=native', '--allow-insecure-entitlement', 'network.host'],
      // TMPDIR inside our dir: buildkitd leaves a `.buildkit-ssh-sock*` directory there per --ssh forward.
      { stdio: ['ignore', fd, fd], detached: true, env: { ...process.env, TMPDIR: tmp, ...options.env } },
    );
    closeSync(fd);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const probe = await run(BUILDCTL, ['--addr', address, '--timeout', '2', 'debug', 'workers'], { timeoutMs: 5000 });
      if (probe.code === 0) return;
      if (child.exitCode !== null) break;
      await sleep(200);
    }
    throw new Error(`buildkitd did not come up on ${address}:\n${(await readFile(log, 'utf8').catch(() => '')).slice(-3000)}`);
  };
  const halt = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    process.kill(-proc.pid!, 'SIGTERM');
    const timer = setTimeout(() => {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, 10_000);
    await exited;
    clearTimeout(timer);
  };
  await launch();
  return {
    address,
    async restartFresh() {
      await halt();
      await rm(join(dir, `root-${generation}`), { recursive: true, force: true });
      await launch();
    },
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Pushes the busybox base (Debian's busybox-static for amd64 and arm64, an OCI index) to the
 * registry and returns `host/base:1@digest`: builds pin it, so nothing is ever pulled from outside.
 */
export async function pushBusyboxBase(registry: TestRegistry): Promise<string> {
  const pushed = await pushBusyboxIndex(registry.host, 'base', { tag: '1', arches: ['amd64', 'arm64'] });
  return `${pushed.ref}@${pushed.digest}`;
}

/** What the build suites share: a registry holding the busybox base, a client for it, a private buildkitd. */
export interface BuildBed {
  registry: TestRegistry;
  /** The base image, `host/base:1@digest`. */
  base: string;
  /** Anonymous client for reading back what builds pushed. */
  client: remote.RegistryClient;
  /** Undefined when buildkitd/buildctl are not installed (tests skip loudly through skipUnlessBuildKit). */
  buildkitd: Buildkitd | undefined;
}

/**
 * Registers before/after hooks in the calling describe() that start a BuildBed and stop it; the
 * returned object's fields are set once before() has run. `buildkitdEnv` goes to startBuildkitd.
 */
export function useBuildBed(options: { buildkitdEnv?: Record<string, string> } = {}): BuildBed {
  const bed = {} as BuildBed;
  before(async () => {
    bed.registry = await startRegistry();
    bed.base = await pushBusyboxBase(bed.registry);
    bed.client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });
    if (BUILDCTL && hasTool('buildkitd')) bed.buildkitd = await startBuildkitd({ env: options.buildkitdEnv });
  });
  after(async () => {
    await bed.client?.close();
    await bed.buildkitd?.stop();
    await bed.registry?.stop();
  });
  return bed;
}

/**
 * The builder selection for a kind, or undefined after a loud skip when its tool (or buildkitd) is
 * missing; `purpose` names the test in the skip message ("docker <purpose>").
 */
export async function selectBuilder(t: TestContext, kind: builders.BuilderKind, buildkitd: Buildkitd | undefined, purpose: string): Promise<builders.BuilderSelection | undefined> {
  switch (kind) {
    case 'docker':
      return (await skipUnlessDocker(t, `docker ${purpose}`)) ? { kind, binary: DOCKER_CLI } : undefined;
    case 'buildah':
      return skipUnless(t, 'buildah', `buildah ${purpose}`) ? { kind, env: { ...BUILDAH_ENV } } : undefined;
    case 'buildctl':
      return skipUnlessBuildKit(t) && buildkitd ? { kind, address: buildkitd.address, binary: BUILDCTL! } : undefined;
    case 'buildx':
      return skipUnlessBuildKit(t, 'buildx') && buildkitd ? { kind, address: buildkitd.address, binary: BUILDX! } : undefined;
  }
}

const tempDirs: string[] = [];
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp dir (contexts, cache exports, XDG homes), removed when the test process exits. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `slipway-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

/** Writes files (path → content) into a fresh temp dir and returns it. */
export async function writeContext(files: Record<string, string>): Promise<string> {
  const dir = await tempDir('build-ctx');
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

/** A unique repository name per test so tests never see each other's tags. */
export function repo(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Collects builder lines for assertions. */
export function collectLog(): { lines: string[]; onLog: (line: { line: string }) => void; text(): string } {
  const lines: string[] = [];
  return { lines, onLog: (line) => lines.push(line.line), text: () => lines.join('\n') };
}

/** Reads a manifest, its config and every layer's files (path → content) of the image `ref` names. */
export async function readImage(client: remote.RegistryClient, ref: string): Promise<{
  manifest: Descriptor;
  config: Record<string, unknown>;
  configText: string;
  files: Map<string, Buffer>;
}> {
  const manifest = await client.getManifest(ref);
  const parsed = parseManifest(manifest.bytes, manifest.descriptor.mediaType);
  if (parsed.kind !== 'image') throw new Error(`${ref} is an index`);
  const repository = name.parseReference(ref).name;
  const configText = (await buffer(await client.blob(repository, parsed.manifest.config))).toString('utf8');
  const files = new Map<string, Buffer>();
  for (const layer of parsed.manifest.layers) {
    const stream = await client.blob(repository, layer);
    const tar = extract();
    const done = new Promise<void>((resolve, reject) => {
      tar.on('entry', (header, entry, next) => {
        const chunks: Buffer[] = [];
        entry.on('data', (chunk: unknown) => {
          chunks.push(chunk as Buffer);
        });
        entry.on('end', () => {
          if (header.type === 'file') files.set(header.name.replace(/^\.?\//, ''), Buffer.concat(chunks));
          next();
        });
        entry.resume();
      });
      tar.on('finish', resolve);
      tar.on('error', reject);
    });
    const compressed = /gzip/.test(layer.mediaType) || layer.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip';
    (compressed ? stream.pipe(createGunzip()) : stream).pipe(tar);
    await done;
  }
  return { manifest: manifest.descriptor, config: JSON.parse(configText) as Record<string, unknown>, configText, files };
}

/** Process ids whose command line contains `marker` (to prove a cancelled build left nothing running). */
export async function processesMatching(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push(Number(entry));
  }
  return found;
}

export { BUILDAH_ENV, DOCKER_CLI } from '../support/tools.js';
