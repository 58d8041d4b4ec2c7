/**
 * The stat cache: what the last run saw for each entry of a context (kind, executable bit, size,
 * mtime, ctime, inode → content digest), so an unchanged context costs a walk and `lstat`s, not a
 * re-read. One compact binary file per context, written atomically (temp file + rename).
 *
 * Git's "racy" rule applies: the cache file's own mtime is the moment it was written, and any
 * entry whose mtime or ctime is in that second or later is re-hashed next time, since the file
 * may have changed again within the timestamp granularity without its stat changing.
 * @module
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { atMostDaily } from '@slipway/oci';

const MAGIC = Buffer.from('SLWCTX\x00\x01', 'latin1');
export const CACHE_STAT_FIELDS = 4;

export interface CacheSnapshot {
  count: number;
  /**
   * Entry paths in bytewise order, joined with NUL: one string rather than 100k (a warm run of a
   * big context must stay light on the heap). Path j is `blob.slice(starts[j], starts[j + 1] - 1)`.
   */
  blob: string;
  starts: Uint32Array;
  /** kind (0 file, 1 dir, 2 symlink) | executable << 4 */
  kinds: Uint8Array;
  /** size, mtime ms, ctime ms, inode per entry */
  stats: Float64Array;
  /** 32 bytes per entry: content digest (files), digest of the link text (symlinks), zeros (dirs). */
  digests: Uint8Array;
  dockerfileDigest: string | null;
  /** Hex SHA-256 of the entry records as the context digest serialises them (absent in older caches). */
  sectionDigest?: string;
  /** The huge-context figures of that run, when it computed them (they depend on the entries only). */
  directorySizes?: CachedDirectorySizes;
  /** Entries with mtime/ctime at or after this instant (ms) are racy. */
  racyFromMs: number;
  surrogates: boolean;
}

export interface CachedDirectorySizes {
  top: { path: string; bytes: number; files: number }[];
  junk: string[];
}

function isDirectorySizes(v: unknown): v is CachedDirectorySizes {
  if (typeof v !== 'object' || v === null) return false;
  const { top, junk } = v as { top?: unknown; junk?: unknown };
  return (
    Array.isArray(top) &&
    top.every((d) => typeof d === 'object' && d !== null && typeof (d as { path?: unknown }).path === 'string' && Number.isFinite((d as { bytes?: unknown }).bytes) && Number.isFinite((d as { files?: unknown }).files)) &&
    Array.isArray(junk) &&
    junk.every((j) => typeof j === 'string')
  );
}

/** `$XDG_CACHE_HOME/slipway/context`, else `~/.cache/slipway/context`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.cache'), 'slipway', 'context');
}

/** One cache file per (context, dialect, role): role distinguishes the Dockerfile or named context. */
export function cacheFileFor(cacheDir: string, root: string, dialect: string, role: string): string {
  const key = createHash('sha256').update(JSON.stringify([1, root, dialect, role])).digest('hex').slice(0, 40);
  return join(cacheDir, `${key}.bin`);
}

export async function loadCache(file: string): Promise<CacheSnapshot | undefined> {
  let data: Buffer;
  let mtimeMs: number;
  try {
    const fh = await open(file, 'r');
    try {
      mtimeMs = (await fh.stat()).mtimeMs;
      data = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
  try {
    return decode(data, mtimeMs);
  } catch {
    return undefined; // corrupt or from another version: start over
  }
}

function decode(data: Buffer, mtimeMs: number): CacheSnapshot {
  if (data.length < 12 || !data.subarray(0, 8).equals(MAGIC)) throw new Error('bad magic');
  const headerLen = data.readUInt32LE(8);
  const header = JSON.parse(data.toString('utf8', 12, 12 + headerLen)) as { count: number; pathBytes: number; dockerfileDigest: string | null; sectionDigest?: unknown; directorySizes?: unknown };
  const count = header.count;
  let off = 12 + headerLen;
  const blob = data.toString('utf8', off, off + header.pathBytes);
  off += header.pathBytes;
  off = (off + 7) & ~7;
  const statBytes = count * CACHE_STAT_FIELDS * 8;
  const statView = data.subarray(off, off + statBytes);
  const stats = (data.byteOffset + off) % 8 === 0
    ? new Float64Array(data.buffer, data.byteOffset + off, count * CACHE_STAT_FIELDS)
    : new Float64Array(new Uint8Array(statView).buffer);
  off += statBytes;
  const kinds = data.subarray(off, off + count);
  off += count;
  const digests = data.subarray(off, off + count * 32);
  if (digests.length !== count * 32) throw new Error('truncated');
  const starts = new Uint32Array(count + 1);
  let at = 0;
  for (let j = 0; j < count; j++) {
    starts[j] = at;
    const nul = blob.indexOf('\0', at);
    at = nul === -1 ? blob.length + 1 : nul + 1;
  }
  starts[count] = at;
  if (count > 0 && at !== blob.length + 1) throw new Error('path count mismatch');
  return {
    count,
    blob,
    starts,
    kinds,
    stats,
    digests,
    dockerfileDigest: header.dockerfileDigest,
    ...(typeof header.sectionDigest === 'string' && /^[0-9a-f]{64}$/.test(header.sectionDigest) ? { sectionDigest: header.sectionDigest } : {}),
    ...(isDirectorySizes(header.directorySizes) ? { directorySizes: header.directorySizes } : {}),
    racyFromMs: Math.floor(mtimeMs / 1000) * 1000,
    surrogates: /[\uD800-\uDFFF]/.test(blob),
  };
}

/** Path j of a snapshot. */
export function snapshotPath(s: CacheSnapshot, j: number): string {
  return s.blob.slice(s.starts[j], s.starts[j + 1]! - 1);
}

/** Whether path j of a snapshot equals `p`, without allocating. */
export function snapshotPathIs(s: CacheSnapshot, j: number, p: string): boolean {
  const start = s.starts[j]!;
  return s.starts[j + 1]! - 1 - start === p.length && s.blob.startsWith(p, start);
}

export interface CacheWrite {
  paths: string[];
  kinds: Uint8Array;
  stats: Float64Array;
  digests: Uint8Array;
  dockerfileDigest: string | null;
  sectionDigest: string;
  directorySizes?: CachedDirectorySizes;
}

export async function saveCache(file: string, c: CacheWrite): Promise<void> {
  const count = c.paths.length;
  const blob = Buffer.from(c.paths.join('\0'), 'utf8');
  const header = Buffer.from(JSON.stringify({ version: 1, count, pathBytes: blob.length, dockerfileDigest: c.dockerfileDigest, sectionDigest: c.sectionDigest, ...(c.directorySizes ? { directorySizes: c.directorySizes } : {}) }), 'utf8');
  const pre = 12 + header.length + blob.length;
  const pad = ((pre + 7) & ~7) - pre;
  const lenBuf = Buffer.alloc(4);
  lenBuf.writeUInt32LE(header.length);
  const data = Buffer.concat([
    MAGIC,
    lenBuf,
    header,
    blob,
    Buffer.alloc(pad),
    Buffer.from(c.stats.buffer, c.stats.byteOffset, count * CACHE_STAT_FIELDS * 8),
    Buffer.from(c.kinds.buffer, c.kinds.byteOffset, count),
    Buffer.from(c.digests.buffer, c.digests.byteOffset, count * 32),
  ]);
  await mkdir(join(file, '..'), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await writeFile(tmp, data, { mode: 0o600 });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * Keeps the cache directory bounded: one file per context ever hashed (temporary directories
 * included) would otherwise pile up. Removes stat caches unused for `maxAgeMs` (by mtime: a cache
 * is rewritten whenever its context changes), then the oldest beyond `maxFiles`, and leftover temp
 * files. Returns how many files were removed.
 */
export async function pruneCache(dir: string, opts: { maxAgeMs?: number; maxFiles?: number; now?: number } = {}): Promise<number> {
  const now = opts.now ?? Date.now();
  const maxAge = opts.maxAgeMs ?? 30 * DAY_MS;
  const maxFiles = opts.maxFiles ?? 2000;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const files: { path: string; mtimeMs: number }[] = [];
  let removed = 0;
  for (const name of names) {
    const isCache = name.endsWith('.bin');
    if (!isCache && !name.endsWith('.tmp')) continue;
    const path = join(dir, name);
    const st = await stat(path).catch(() => undefined);
    if (!st) continue;
    if (now - st.mtimeMs > (isCache ? maxAge : 3600_000)) {
      await rm(path, { force: true });
      removed++;
    } else if (isCache) {
      files.push({ path, mtimeMs: st.mtimeMs });
    }
  }
  files.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const f of files.slice(maxFiles)) {
    await rm(f.path, { force: true });
    removed++;
  }
  return removed;
}

/** How many stat caches `dir` holds and their bytes (nothing, for a directory that does not exist). */
export async function cacheUsage(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.bin')) continue;
    const st = await stat(join(dir, name)).catch(() => undefined);
    if (!st) continue;
    files++;
    bytes += st.size;
  }
  return { files, bytes };
}

/** Prunes at most once a day per cache directory (a `.pruned` stamp records the last time). */
export async function pruneCacheDaily(dir: string): Promise<void> {
  await atMostDaily(dir, () => pruneCache(dir));
}
