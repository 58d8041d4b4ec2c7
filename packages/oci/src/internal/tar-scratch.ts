/**
 * Private temp directories for archive readers (a gunzipped archive, a daemon's export stream,
 * compressed layers when caching is off), and the small helpers the archive code shares: gzip
 * sniffing and bounded parallel work. Everything a reader writes lives under its own scratch
 * directory, which `close()` removes.
 * @module
 */
import { createWriteStream, rmSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, open as openFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { AbortedError, InvalidArgumentError, SlipwayError } from '../errors.js';

/** Scratch directories made and not yet removed, for {@link removeScratchDirectoriesSync}. */
const live = new Set<string>();

/**
 * Creates a fresh private (0700) directory under `base` (default: the OS temp dir, TMPDIR); `what`
 * names `base` in errors (default: the tempDir option, or TMPDIR). A `base` that does not exist is a
 * setting to fix (SLIPWAY_INVALID_ARG); one the file system refuses (read-only, not writable, full)
 * is SLIPWAY_IO, as any other refused write: both name the directory, not a bare "mkdtemp ENOENT".
 */
export async function makeScratch(base?: string, what?: string, prefix = 'slipway-'): Promise<string> {
  const parent = base ?? tmpdir();
  let dir: string;
  try {
    dir = await mkdtemp(join(parent, prefix));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const message = `${what ?? (base === undefined ? 'TMPDIR' : 'tempDir')} "${parent}" cannot hold a scratch directory: ${code}`;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new InvalidArgumentError(`${message} (no such directory)`, { cause: err });
    throw new SlipwayError('SLIPWAY_IO', message, { cause: err });
  }
  live.add(dir);
  return dir;
}

/**
 * A staging directory beside an archive being written (`base` is the target's directory, so the
 * finished archive is renamed into place on the same filesystem). Its name says which host and
 * process made it, so a later run can sweep those a killed process left (SIGKILL, an OOM kill: no
 * exit hook runs), which grew to the image's size and stayed: the OS temp cleaner never looks there.
 */
export async function makeStaging(base: string, what: string): Promise<string> {
  const dir = await makeScratch(base, what, `${stagingPrefix}${stagingHost()}-${process.pid}-`);
  await sweepStaleStaging(base).catch(() => undefined);
  return dir;
}

const stagingPrefix = 'slipway-staging-';
/**
 * How long a staging directory or temp file of ours must be untouched to count as a killed run's:
 * a live writer touches its file with every chunk. The layer cache's prune holds its temp files to
 * the same hour.
 */
export const abandonedAfterMs = 3600_000;

function stagingHost(): string {
  return hostname().replace(/[^A-Za-z0-9.]/g, '_') || 'host';
}

/**
 * Removes staging directories in `base` that this host's dead processes left: same host in the
 * name, no process with that pid, and untouched for an hour. All three, because a directory in the
 * user's own folder is only ever removed when it is certainly an abandoned one of ours (a shared
 * volume seen by two hosts, or a pid namespace reusing the number, fails one of the others).
 */
async function sweepStaleStaging(base: string): Promise<void> {
  const host = stagingHost();
  const now = Date.now();
  for (const name of await readdir(base)) {
    if (!name.startsWith(stagingPrefix)) continue;
    const match = /^(.+)-(\d+)-[A-Za-z0-9]{6}$/.exec(name.slice(stagingPrefix.length));
    if (!match || match[1] !== host) continue;
    const pid = Number(match[2]);
    if (pid === process.pid || processAlive(pid)) continue;
    const dir = join(base, name);
    // The newest of the directory, its layout and every blob in it: a staging under way adds blobs as
    // it goes, and a blob being written (a temp file there) is touched by every write.
    const blobs = join(dir, 'layout', 'blobs', 'sha256');
    const files = (await readdir(blobs).catch(() => [] as string[])).map((name) => join(blobs, name));
    const times = await Promise.all([dir, join(dir, 'layout'), blobs, ...files].map((path) => stat(path).then((info) => info.mtimeMs, () => 0)));
    if (now - Math.max(...times) < abandonedAfterMs) continue;
    await rm(dir, { recursive: true, force: true });
  }
}

/** Whether a process with this pid runs on this host (EPERM: it does, as someone else's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, and belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Registers a temp file outside any scratch directory (an archive being written beside its target),
 * so that {@link removeScratchDirectoriesSync} removes it if the process exits before it is renamed.
 */
export function trackScratchPath(path: string): void {
  live.add(path);
}

/**
 * Waits until a file write stream has let go of its file (destroying it if nothing has). pipeline()
 * rejects as soon as one stage fails, while an fs.WriteStream may still be opening its file on libuv's
 * thread pool: a temp file removed before then is created just after and outlives the failure (a
 * `.tmp-` file left in the layer cache after a cancelled compression, seen in CI under load).
 */
export async function fileReleased(stream: Writable): Promise<void> {
  if (stream.closed) return;
  const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
  if (!stream.destroyed) stream.destroy();
  await closed;
}

/** The temp file was renamed into place or removed: no longer the exit hook's. */
export function untrackScratchPath(path: string): void {
  live.delete(path);
}

/**
 * Writes `final` through a temp file beside it, so that the path never holds a partial file: `write`
 * fills (and ends) the write stream of the temp file, which is then fsynced (and given `mode`, when
 * set: the file is created with it under the umask, 0644 without) and renamed over `final` once
 * `beforeRename`, if any, has not thrown. On any failure the temp file is removed, once the stream has
 * let go of it ({@link fileReleased}); meanwhile it is registered with the exit hook.
 */
export async function writeThroughTemp(final: string, write: (file: Writable) => Promise<void>, options: { mode?: number; beforeRename?: () => Promise<void> } = {}): Promise<void> {
  // Short and random: two writers of one path must not share it, and a name near the file system's
  // limit must still leave room for it. Layout readers and writers skip `.tmp-` names.
  const temp = join(dirname(final), `.tmp-${randomBytes(6).toString('hex')}`);
  trackScratchPath(temp);
  const file = createWriteStream(temp, { flags: 'wx', mode: options.mode ?? 0o644 });
  try {
    await write(file);
    const handle = await openFile(temp, 'r');
    try {
      if (options.mode !== undefined) await handle.chmod(options.mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await options.beforeRename?.();
    await rename(temp, final);
  } catch (err) {
    await fileReleased(file);
    await rm(temp, { force: true });
    throw err;
  } finally {
    untrackScratchPath(temp);
  }
}

/**
 * Removes what {@link writeThroughTemp} left in `dirs` when its process was killed (SIGKILL, an OOM
 * kill: no exit hook runs): `.tmp-` files of its own naming, untouched for an hour (a live writer
 * touches its file with every chunk). A layout's blobs directory kept four 51 MB ones for good, as
 * no later copy looked. Best effort: a directory that cannot be read is left alone.
 */
export async function sweepStaleTemps(dirs: readonly string[]): Promise<void> {
  const before = Date.now() - abandonedAfterMs;
  for (const dir of dirs) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (!/^\.tmp-[0-9a-f]{12}$/.test(name)) continue;
      const path = join(dir, name);
      const info = await lstat(path).catch(() => undefined);
      if (info?.isFile() && info.mtimeMs < before) await rm(path, { force: true }).catch(() => undefined);
    }
  }
}

export async function removeScratch(dir: string | undefined): Promise<void> {
  if (!dir) return;
  await rm(dir, { recursive: true, force: true });
  live.delete(dir);
}

/**
 * Removes, synchronously, every scratch directory this process made and has not removed yet (a
 * daemon export spool is as big as the image). For a front end's `process.on('exit')`: the library
 * itself installs no process handlers; a CLI that exits at once on a second Ctrl-C calls this.
 */
export function removeScratchDirectoriesSync(): void {
  for (const dir of live) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Best effort at exit: nothing is left to report it to.
    }
  }
  live.clear();
}

export type Compression = 'gzip' | 'zstd' | 'bzip2' | 'xz' | 'none';

/** What the first bytes say a stream is compressed with. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bzip2';
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a && head[5] === 0x00) return 'xz';
  return 'none';
}

/** The first `length` bytes of a file (fewer when the file is shorter). */
export async function peekFile(path: string, length: number): Promise<Buffer> {
  const handle = await openFile(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Runs `task` over `items` with at most `limit` at once, results in input order. The first failure
 * aborts the signal handed to the other tasks, and the call settles only after every task has.
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, task: (item: T, index: number, signal: AbortSignal) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  if (signal?.aborted) throw new AbortedError('operation aborted', { cause: signal.reason });
  const controller = new AbortController();
  // Every request of every task listens to it (a repository copy's: dozens at once): no leak.
  setMaxListeners(0, controller.signal);
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await task(items[i] as T, i, controller.signal);
      } catch (err) {
        failure ??= { err };
        controller.abort(err);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (failure) throw failure.err;
  return results;
}

/**
 * `mkdir -p`, one level at a time. Node 20's recursive `mkdir` never settles when creating the last
 * level fails with ENOENT although its parent exists (`/proc/x/y`): it spun a core until SIGKILL.
 */
export async function makeDirectories(path: string): Promise<void> {
  const missing: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    try {
      if ((await stat(dir)).isDirectory()) break;
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), { code: 'ENOTDIR', syscall: 'mkdir', path: dir });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw err;
      missing.push(dir);
    }
  }
  for (const dir of missing.reverse()) {
    try {
      await mkdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
