// Finding and running the real tools the integration tests lean on (registry, docker, buildah,
// skopeo, Go-built peers). Missing tools make tests skip loudly, never pass silently.
import { spawn } from 'node:child_process';
import type { SpawnOptions } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

/** The Debian docker client (20.10, BuildKit via DOCKER_BUILDKIT=1). `/usr/local/bin/docker` is newer and lacks buildx. */
export const DOCKER_CLI = '/usr/bin/docker';
export const DOCKER_SOCKET = '/var/run/docker.sock';
export const REGISTRY_BIN = '/usr/bin/docker-registry';
/** distribution v3 (the CNCF registry's current release), built by install-go-tools.sh into the tools dir. */
export const REGISTRY_V3_TOOL = 'distribution-registry';

/** Root of the Go-built tools: `$SLIPWAY_TOOLS` or `/opt/slipway-tools`. */
export function toolsDir(): string {
  return process.env.SLIPWAY_TOOLS ?? '/opt/slipway-tools';
}
/** Where crane, regctl, buildkitd, buildctl, buildx, pulumi are installed. */
export function toolsBinDir(): string {
  return join(toolsDir(), 'bin');
}
/** `install-go-tools.sh` writes `<tool> ok|failed` lines here. */
export function toolsStatusFile(): string {
  return join(toolsDir(), 'status');
}
/** Cache of Debian busybox-static .debs for amd64/arm64/armhf (filled by scripts/ci-setup.sh). */
export function debCacheDir(): string {
  return join(toolsDir(), 'debs');
}

/** Build status of a Go tool as recorded by install-go-tools.sh (`crane`, `regctl`, `buildkit`, `buildx`, `pulumi`). */
export function goToolStatus(name: string): 'ok' | 'failed' | 'unknown' {
  try {
    for (const line of readFileSync(toolsStatusFile(), 'utf8').split('\n')) {
      const [tool, state] = line.trim().split(/\s+/);
      if (tool === name && (state === 'ok' || state === 'failed')) return state;
    }
  } catch {
    // no status file: the tools were never installed on this machine
  }
  return 'unknown';
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Absolute path of a tool, or undefined. Absolute names are checked as given; bare names are
 * looked up in the Go tools dir first (so crane/regctl/buildctl resolve), then in PATH and sbin.
 */
export function toolPath(name: string): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  const dirs = [toolsBinDir(), ...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const p = join(dir, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

export function hasTool(name: string): boolean {
  return toolPath(name) !== undefined;
}

/**
 * Skips the test with a loud message when `tool` is missing. Returns true when the test may go on:
 * `if (!skipUnless(t, 'buildah', 'multi-platform index')) return;`
 */
export function skipUnless(t: TestContext, tool: string, reason: string): boolean {
  if (hasTool(tool)) return true;
  const msg = `SKIPPED: ${tool} is not installed (${reason}); run scripts/ci-setup.sh to install it`;
  console.error(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return false;
}

/** Same as skipUnless for the Docker Engine. */
export async function skipUnlessDocker(t: TestContext, reason: string): Promise<boolean> {
  if (hasTool(DOCKER_CLI) && await dockerAvailable()) return true;
  const msg = `SKIPPED: Docker Engine not reachable on ${DOCKER_SOCKET} (${reason}); run scripts/start-dockerd.sh`;
  console.error(`\n*** ${msg} ***\n`);
  t.skip(msg);
  return false;
}

/** Pings the Engine API (`GET /_ping`) on the unix socket. */
export function dockerAvailable(socketPath: string = DOCKER_SOCKET, timeoutMs = 2000): Promise<boolean> {
  if (!existsSync(socketPath)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => { req.destroy(); resolve(false); });
    req.on('error', () => resolve(false));
    req.end();
  });
}

export interface RunOptions {
  cwd?: string;
  /** Added to (not replacing) the inherited environment; a value of undefined removes a variable. */
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin, then stdin is closed. */
  input?: string | Buffer;
  signal?: AbortSignal;
  /** Kill the child (SIGKILL) after this long. Default 10 minutes. */
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code; -1 when killed by a signal. */
  code: number;
  signal: NodeJS.Signals | null;
}

/** Runs a command to completion; never throws for a non-zero exit (check `code`). */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const spawnOpts: SpawnOptions = { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], signal: opts.signal, killSignal: 'SIGKILL' };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, spawnOpts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: code ?? -1, signal });
    });
    child.stdin!.on('error', () => { /* the child may exit before reading its input */ });
    child.stdin!.end(opts.input);
  });
}

/** Like run() but throws (with the command's stderr) on a non-zero exit. */
export async function runChecked(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}${r.signal ? ` (${r.signal})` : ''}:\n${r.stderr.slice(-4000)}${r.stdout.slice(-1000)}`);
  }
  return r;
}

/** Environment that makes buildah work unprivileged-style on these VMs (vfs storage, chroot isolation). */
export const BUILDAH_ENV: Readonly<Record<string, string>> = { STORAGE_DRIVER: 'vfs', BUILDAH_ISOLATION: 'chroot' };
