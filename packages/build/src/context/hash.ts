/**
 * `hashContext`: the exact build-context hash.
 *
 * The set of entries is the set BuildKit sends for `COPY . .` (see walk.ts and ignore.ts). Each
 * entry is hashed as length-prefixed fields — type, slash path, executable bit (never the full
 * mode: umask 022 and 002 checkouts must agree; pulumi-docker-build #222, #358, PR #979), size,
 * content SHA-256 or link text (never the link's target: EvalSymlinks gives machine-specific
 * paths) — in bytewise path order, after the Dockerfile's content (not its path). A tar stream is
 * never hashed: tar headers carry mtimes (MaterializeInc/pulumi-docker-buildkit PR #7, reverted).
 * @module
 */
import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { AbortedError, InvalidArgumentError, SlipwayError, throwIfAborted } from '@slipway/oci';
import { CACHE_STAT_FIELDS, cacheFileFor, defaultCacheDir, loadCache, pruneCacheDaily, saveCache, snapshotPath, snapshotPathIs, type CacheSnapshot } from './cache.js';
import { FileHashError, hashFileInto } from './hashfile.js';
import { IgnorePatternError, PatternMatcher, parseIgnoreFile, parseIgnoreFileBuildah, type IgnoreDialect } from './ignore.js';
import { acquireWorkerPool, releaseWorkerPool, warmWorkers, WorkerLostError, type WorkerPool } from './pool.js';
import type { EncodedChunk, HashReply, WalkReply } from './protocol.js';
import { compareBytewise, ContextWalkError, Kind, KIND_MASK, PARENT_SKIPPED, STAT_FIELDS, walkTask, type DirTask, type WalkChunk } from './walk.js';

export type { IgnoreDialect } from './ignore.js';

export interface HashContextOptions {
  /** The build context directory. */
  context: string;
  /**
   * The Dockerfile: a path (relative to the current directory, as `docker build -f`) or inline
   * text. Default: `<context>/Dockerfile`, else `<context>/dockerfile`. Its content is hashed, not
   * its path, and `<Dockerfile>.dockerignore` beside it takes precedence over `<context>/.dockerignore`.
   */
  dockerfile?: string | { inline: string };
  /** `--build-context` values by name: local directories are hashed with their own `.dockerignore`; other values (`docker-image://…`, URLs) are hashed as text. */
  namedContexts?: Record<string, string>;
  /** Stat cache directory; `false` disables the cache (and `changes`). Default: `$XDG_CACHE_HOME/slipway/context`. */
  cacheDir?: string | false;
  /**
   * `.dockerignore` semantics of the client that will send the context (default `buildkit`; `legacy`
   * for the Docker 20.10 CLI; `buildah`, which also reads `.containerignore` and applies no ignore
   * file to named contexts).
   */
  ignoreDialect?: IgnoreDialect;
  /** Return every hashed entry in `entries`. */
  listEntries?: boolean;
  /** Warn above these sizes (defaults: HUGE_CONTEXT_FILES files, HUGE_CONTEXT_BYTES bytes). */
  hugeContext?: { files?: number; bytes?: number };
  /**
   * Walk with worker threads beside the main thread. Default: when workers of an earlier hash in
   * this process are still parked (see pool.ts), or when the previous run of the context was big (a
   * stat cache over PARALLEL_WALK_CACHE_BYTES, ≈ 45k entries). Smaller contexts stay on the main
   * thread: a cold worker's start-up (~40–60 ms) costs more than the lstat calls it takes over, and
   * even with workers the first MAIN_FIRST_BUDGET entries are walked on the main thread. A walk
   * without a stat cache does no lstat at all.
   */
  parallelWalk?: boolean;
  /** Worker threads for hashing (and parallel walks): default available parallelism, at most 8. */
  concurrency?: number;
  signal?: AbortSignal;
  onWarning?: (warning: ContextWarning) => void;
  /** Diagnostics: called with the wall time of each phase as it ends. */
  onTiming?: (phase: ContextPhase, ms: number) => void;
}

export type ContextPhase = 'prepare' | 'walk' | 'compare' | 'hash' | 'digest' | 'finish';

export interface ContextWarning {
  code: 'special-files' | 'huge-context' | 'cache-write';
  message: string;
  /** The named context concerned (absent: the main context). */
  context?: string;
  /** `special-files`: the skipped paths, relative to the context. */
  paths?: string[];
}

export interface ContextEntry {
  /** Slash path relative to its context. */
  path: string;
  /** The named context holding the entry (absent: the main context). */
  context?: string;
  type: 'file' | 'dir' | 'symlink';
  executable: boolean;
  size: number;
  /** `sha256:…` of a file's content. */
  digest?: string;
  /** A symlink's text. */
  target?: string;
}

export interface ContextChanges {
  added: string[];
  removed: string[];
  changed: string[];
  dockerfileChanged: boolean;
}

export interface DirectorySize {
  path: string;
  bytes: number;
  files: number;
}

export interface ContextHashResult {
  /** `sha256:<hex>` over the Dockerfile content and every entry of every local context. */
  digest: string;
  files: number;
  directories: number;
  symlinks: number;
  /** Total size of the regular files. */
  bytes: number;
  dockerfile: { path?: string; inline: boolean; digest: string };
  /** The ignore file applied to the main context, or null. */
  ignoreFile: string | null;
  /** What differs from the previous cached run of this context (absent without a previous run or with the cache off). */
  changes?: ContextChanges;
  warnings: string[];
  /** Largest top-level directories (and well-known heavy ones anywhere), for huge contexts. */
  biggestDirectories?: DirectorySize[];
  entries?: ContextEntry[];
  /** How the work went: files read this run vs taken from the stat cache. */
  stats: { hashedFiles: number; hashedBytes: number; cachedFiles: number };
}

/** Above either threshold the hash warns and names the biggest directories. */
export const HUGE_CONTEXT_FILES = 50_000;
export const HUGE_CONTEXT_BYTES = 500 * 1024 * 1024;

/** Directories that are rarely meant to be in an image; suggested for `.dockerignore`. */
const JUNK = /(?:^|\/)(\.git|node_modules|\.venv|venv|__pycache__|\.terraform|\.pulumi|\.cache|\.next|coverage|\.tox|\.gradle|\.idea|\.pytest_cache|\.mypy_cache)(?=\/)/;

/** Entries the main thread walks before it decides the context is big enough for workers. */
const MAIN_FIRST_BUDGET = 3000;
const MAIN_SLICE_BUDGET = 600;
const WORKER_WALK_BUDGET = 6000;
/**
 * A stat cache this big (≈ 45k entries at ~85 bytes each) means a context worth walking in parallel
 * even with cold workers (see parallelWalk): measured on 100k files and 2 cores, a one-shot warm
 * hash took 0.41 s with one cold worker beside the main thread against 0.45 s without.
 */
export const PARALLEL_WALK_CACHE_BYTES = 4 * 1024 * 1024;
/** Below both, files are hashed on the main thread rather than starting workers. */
const INLINE_HASH_FILES = 400;
const INLINE_HASH_BYTES = 24 * 1024 * 1024;

interface Ctx {
  id: number;
  /** '' for the main context. */
  name: string;
  root: string;
  ignoreFile: string | null;
  patterns: string[];
  matcher: PatternMatcher | null;
  cacheRole: string;
}

/** A context's entries in final order, after splicing, lazy-directory resolution and dropping specials. */
interface Entries {
  paths: string[];
  /** 0 file, 1 dir, 2 symlink */
  kinds: Uint8Array;
  /** exec, size, mtime ms, ctime ms, inode */
  stats: Float64Array;
  /** Link text by entry index (symlinks only). */
  links: Map<number, string>;
  specials: string[];
  surrogates: boolean;
}

function contextError(message: string, cause?: unknown): SlipwayError {
  return new SlipwayError('SLIPWAY_CONTEXT', message, cause === undefined ? undefined : { cause });
}

function isLocalContext(value: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && !value.startsWith('target:') && !value.startsWith('oci-layout:');
}

async function resolveDir(path: string, what: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(resolve(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw contextError(`${what} "${path}" ${code === 'ENOENT' ? 'does not exist' : `cannot be opened: ${code}`}`, e);
  }
  const st = await stat(real);
  if (!st.isDirectory()) throw contextError(`${what} "${path}" is not a directory`);
  return real;
}

async function readOptional(path: string, what: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw contextError(`cannot read ${what} "${path}": ${code ?? String(e)}`, e);
  }
}

function compileIgnore(file: string | null, content: Buffer | null, dialect: IgnoreDialect): { patterns: string[]; matcher: PatternMatcher | null } {
  if (content === null) return { patterns: [], matcher: null };
  try {
    const patterns = dialect === 'buildah' ? parseIgnoreFileBuildah(content) : parseIgnoreFile(content);
    const matcher = new PatternMatcher(patterns, dialect);
    return { patterns, matcher: matcher.isEmpty ? null : matcher };
  } catch (e) {
    if (e instanceof IgnorePatternError) throw contextError(`${file}: ${e.message}`, e);
    throw e;
  }
}

interface DockerfileInfo {
  digest: Buffer;
  path?: string;
  inline: boolean;
  /** `<Dockerfile>.dockerignore`, checked before `<context>/.dockerignore`. */
  ignoreCandidate: string | null;
}

async function resolveDockerfile(option: HashContextOptions['dockerfile'], root: string): Promise<DockerfileInfo> {
  if (typeof option === 'object' && option !== null) {
    if (typeof option.inline !== 'string') throw new InvalidArgumentError('dockerfile.inline must be a string');
    return { digest: createHash('sha256').update(option.inline, 'utf8').digest(), inline: true, ignoreCandidate: null };
  }
  let path: string;
  let nominal: string;
  if (typeof option === 'string') {
    path = resolve(option);
    nominal = path;
  } else {
    // BuildKit falls back to lowercase `dockerfile` (moby/moby#10858) but keeps the nominal name for the ignore file.
    nominal = join(root, 'Dockerfile');
    path = nominal;
    try {
      await stat(path);
    } catch {
      const lower = join(root, 'dockerfile');
      if ((await readOptional(lower, 'Dockerfile')) !== null) path = lower;
    }
  }
  const content = await readOptional(path, 'Dockerfile');
  // The ENOENT cause is what front ends read as "not found" (the CLI's exit 3), as for build's own check.
  if (content === null) throw contextError(`Dockerfile "${typeof option === 'string' ? option : path}" does not exist`, Object.assign(new Error(`${path}: no such file`), { code: 'ENOENT' }));
  return { digest: createHash('sha256').update(content).digest(), path, inline: false, ignoreCandidate: join(dirname(nominal), `${basename(nominal)}.dockerignore`) };
}

// ---------------------------------------------------------------------------------------------
// Walking
// ---------------------------------------------------------------------------------------------

interface ChunkLike {
  paths: string[];
  kinds: Uint8Array;
  stats: Float64Array;
  links: string[];
  surrogates: boolean;
}

function decodeChunk(c: EncodedChunk): ChunkLike {
  return { paths: c.count === 0 ? [] : c.paths.split('\0'), kinds: c.kinds, stats: c.stats, links: c.links, surrogates: c.surrogates };
}

function walkFailure(ctx: Ctx, message: string): SlipwayError {
  return contextError(`walking ${describe(ctx)}: ${message}`);
}

class Walker {
  private readonly chunks = new Map<number, Map<string, ChunkLike>>();
  private readonly queue: { ctx: Ctx; task: DirTask }[] = [];
  private inflight = 0;
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private mainSeen = 0;
  /** Walk replies received: until the first, workers may still be starting and the main thread walks on. */
  private replies = 0;

  constructor(
    private readonly ctxs: Ctx[],
    private readonly dialect: IgnoreDialect,
    private readonly getPool: () => WorkerPool,
    private readonly hasPool: () => boolean,
    /** Worker threads that walk beside the main thread. */
    private readonly walkers: number,
    /** Contexts with a stat cache to compare against get their files lstat'ed during the walk. */
    private readonly statFiles: (ctx: Ctx) => boolean,
    private readonly signal: AbortSignal | undefined,
  ) {
    for (const ctx of ctxs) {
      this.chunks.set(ctx.id, new Map());
      this.queue.push({ ctx, task: { rel: '', info: null, skipped: false } });
    }
  }

  private store(ctx: Ctx, chunk: ChunkLike & { dir: string }, leftovers: DirTask[]): void {
    this.chunks.get(ctx.id)!.set(chunk.dir, chunk);
    for (const task of leftovers) this.queue.push({ ctx, task });
  }

  private walkHere(ctx: Ctx, task: DirTask, budget: number): void {
    let chunk: WalkChunk;
    try {
      chunk = walkTask(ctx.root, ctx.matcher, this.dialect, task, budget, this.statFiles(ctx));
    } catch (e) {
      if (e instanceof ContextWalkError) throw walkFailure(ctx, e.message);
      throw contextError(`walking ${describe(ctx)}: ${(e as Error).message}`, e);
    }
    this.mainSeen += chunk.seen;
    this.store(ctx, chunk, chunk.leftovers);
  }

  private dispatch(pool: WorkerPool): void {
    // Workers take the oldest (shallowest, largest) subtrees; the main thread nibbles the newest.
    while (this.queue.length > 0 && pool.minInflight < 2) {
      const { ctx, task } = this.queue.shift()!;
      this.inflight++;
      pool.request({ type: 'walk', ctx: ctx.id, task, budget: WORKER_WALK_BUDGET, statFiles: this.statFiles(ctx) }).then(
        (reply) => {
          this.inflight--;
          this.replies++;
          const r = reply as WalkReply;
          if (r.error) this.failure ??= walkFailure(ctx, r.error.message);
          else if (r.chunk) this.store(ctx, { ...decodeChunk(r.chunk), dir: r.chunk.dir }, r.chunk.leftovers);
          this.wake?.();
        },
        (e: unknown) => {
          this.inflight--;
          this.failure ??= e instanceof Error ? e : new Error(String(e));
          this.wake?.();
        },
      );
    }
  }

  async run(): Promise<Map<number, Map<string, ChunkLike>>> {
    let lastYield = performance.now();
    while (this.queue.length > 0 || this.inflight > 0) {
      if (this.failure) throw this.failure;
      throwIfAborted(this.signal);
      // Small contexts stay on the main thread: a worker round trip costs more than their walk.
      const big = this.mainSeen >= MAIN_FIRST_BUDGET;
      if (!this.hasPool() && this.walkers > 0 && big && this.queue.length > 1) this.getPool().grow(this.walkers);
      if (this.hasPool() && (big || this.walkers === 0)) this.dispatch(this.getPool());
      // The main thread walks too, in slices, until the workers are up: from then on it only hands out
      // tasks and splices, which measured faster on 2 cores (walk phase 170–210 ms against 185–245 ms
      // on 100k files) than also walking and competing with the workers for the cores.
      if (this.queue.length > 0 && (!this.hasPool() || !big || this.replies === 0)) {
        const { ctx, task } = this.queue.pop()!;
        this.walkHere(ctx, task, this.hasPool() ? MAIN_SLICE_BUDGET : MAIN_FIRST_BUDGET);
        // Yield now and then: worker replies get handled, and a caller's abort can fire.
        if (performance.now() - lastYield > (this.hasPool() ? 4 : 10)) {
          await yieldToLoop();
          lastYield = performance.now();
        }
      } else {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    }
    if (this.failure) throw this.failure;
    return this.chunks;
  }
}

/** Splices a context's chunks into final order and resolves BuildKit's lazily sent directories. */
function assemble(chunks: Map<string, ChunkLike>): Entries {
  let total = 0;
  let surrogates = false;
  for (const c of chunks.values()) {
    total += c.paths.length;
    if (c.surrogates) surrogates = true;
  }
  const paths: string[] = new Array<string>(total);
  const kinds = new Uint8Array(total);
  const stats = new Float64Array(total * STAT_FIELDS);
  const linkOf = new Map<number, string>();
  let n = 0;
  let condDirs: Set<string> | undefined;
  const stack: { c: ChunkLike; i: number; link: number }[] = [];
  const root = chunks.get('');
  if (root) stack.push({ c: root, i: 0, link: 0 });
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const c = top.c;
    const count = c.paths.length;
    if (top.i >= count) {
      stack.pop();
      continue;
    }
    // Copy the run of ordinary entries up to the next placeholder in bulk.
    const start = top.i;
    let end = start;
    for (; end < count; end++) {
      const kind = c.kinds[end]! & KIND_MASK;
      if (kind === Kind.Subtree) break;
      if (kind === Kind.CondDir) (condDirs ??= new Set()).add(c.paths[end]!);
      else if (kind === Kind.Symlink) linkOf.set(n + end - start, c.links[top.link++]!);
      paths[n + end - start] = c.paths[end]!;
    }
    kinds.set(c.kinds.subarray(start, end), n);
    stats.set(c.stats.subarray(start * STAT_FIELDS, end * STAT_FIELDS), n * STAT_FIELDS);
    n += end - start;
    top.i = end;
    if (end < count) {
      const path = c.paths[end]!;
      const sub = chunks.get(path);
      if (!sub) throw new Error(`internal: missing walk chunk for "${path}"`);
      top.i = end + 1;
      stack.push({ c: sub, i: 0, link: 0 });
    }
  }

  // BuildKit sends an excluded directory only when something inside it is sent.
  let kept: Set<string> | undefined;
  if (condDirs) {
    kept = new Set();
    for (let i = 0; i < n; i++) {
      const k = kinds[i]!;
      if ((k & PARENT_SKIPPED) === 0 || (k & KIND_MASK) === Kind.CondDir) continue;
      let p = paths[i]!;
      for (;;) {
        const slash = p.lastIndexOf('/');
        if (slash === -1) break;
        p = p.slice(0, slash);
        if (!condDirs.has(p) || kept.has(p)) break;
        kept.add(p);
      }
    }
  }

  // Compact: drop specials (reported) and unsent conditional directories.
  const specials: string[] = [];
  const links = new Map<number, string>();
  let w = 0;
  for (let i = 0; i < n; i++) {
    const kind = kinds[i]! & KIND_MASK;
    if (kind === Kind.Special) {
      specials.push(paths[i]!);
      continue;
    }
    let out = kind;
    if (kind === Kind.CondDir) {
      if (!kept!.has(paths[i]!)) continue;
      out = Kind.Dir;
    }
    paths[w] = paths[i]!;
    kinds[w] = out;
    if (w !== i) for (let f = 0; f < STAT_FIELDS; f++) stats[w * STAT_FIELDS + f] = stats[i * STAT_FIELDS + f]!;
    if (kind === Kind.Symlink) links.set(w, linkOf.get(i)!);
    w++;
  }
  paths.length = w;
  return { paths, kinds: kinds.subarray(0, w), stats: stats.subarray(0, w * STAT_FIELDS), links, specials, surrogates };
}

// ---------------------------------------------------------------------------------------------
// Digest
// ---------------------------------------------------------------------------------------------

const TYPE_BYTE = [0x66 /* f */, 0x64 /* d */, 0x6c /* l */];

/** Streams length-prefixed fields into one SHA-256 through a reusable buffer (one update per MiB). */
class DigestWriter {
  private readonly hash = createHash('sha256');
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private off = 0;

  private ensure(n: number): void {
    if (this.off + n > this.buf.length) {
      this.hash.update(this.buf.subarray(0, this.off));
      this.off = 0;
    }
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.off++] = b;
  }

  u64(v: number): void {
    this.ensure(8);
    this.buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000), this.off);
    this.buf.writeUInt32BE(v >>> 0, this.off + 4);
    this.off += 8;
  }

  /**
   * One regular-file record — type, path, executable bit, size, content digest — written in one
   * go: this runs once per file of the context, so it avoids per-field calls and bounds checks.
   */
  file(path: string, exec: number, size: number, digests: Uint8Array, index: number): void {
    if (path.length * 3 + 64 > this.buf.length) {
      this.byte(TYPE_BYTE[Kind.File]!);
      this.field(path);
      this.byte(exec);
      this.u64(size);
      this.field(digests.subarray(index * 32, index * 32 + 32));
      return;
    }
    this.ensure(path.length * 3 + 64);
    const buf = this.buf;
    let o = this.off;
    buf[o] = 0x66; // f
    const start = o + 5;
    let len = 0;
    for (; len < path.length; len++) {
      const c = path.charCodeAt(len);
      if (c >= 0x80) break;
      buf[start + len] = c;
    }
    if (len < path.length) len = buf.write(path, start, 'utf8');
    buf[o + 1] = len >>> 24;
    buf[o + 2] = (len >>> 16) & 0xff;
    buf[o + 3] = (len >>> 8) & 0xff;
    buf[o + 4] = len & 0xff;
    o = start + len;
    buf[o++] = exec;
    const hi = Math.floor(size / 0x1_0000_0000);
    buf[o++] = hi >>> 24;
    buf[o++] = (hi >>> 16) & 0xff;
    buf[o++] = (hi >>> 8) & 0xff;
    buf[o++] = hi & 0xff;
    buf[o++] = size >>> 24;
    buf[o++] = (size >>> 16) & 0xff;
    buf[o++] = (size >>> 8) & 0xff;
    buf[o++] = size & 0xff;
    buf[o++] = 0;
    buf[o++] = 0;
    buf[o++] = 0;
    buf[o++] = 32;
    const from = index * 32;
    for (let k = 0; k < 32; k++) buf[o + k] = digests[from + k]!;
    this.off = o + 32;
  }

  field(data: string | Uint8Array): void {
    if (typeof data === 'string' && data.length * 3 + 4 <= 4096) {
      this.ensure(data.length * 3 + 4);
      const buf = this.buf;
      const o = this.off + 4;
      let len = 0;
      // ASCII fast path (most paths): a plain loop beats a call into the UTF-8 encoder for short strings.
      for (; len < data.length; len++) {
        const c = data.charCodeAt(len);
        if (c >= 0x80) break;
        buf[o + len] = c;
      }
      if (len < data.length) len = buf.write(data, o, 'utf8');
      buf[this.off] = len >>> 24;
      buf[this.off + 1] = (len >>> 16) & 0xff;
      buf[this.off + 2] = (len >>> 8) & 0xff;
      buf[this.off + 3] = len & 0xff;
      this.off = o + len;
      return;
    }
    const len = typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length;
    if (len + 4 > this.buf.length) {
      this.ensure(this.buf.length);
      this.hash.update(Buffer.from([len >>> 24, (len >>> 16) & 255, (len >>> 8) & 255, len & 255]));
      this.hash.update(data);
      return;
    }
    this.ensure(len + 4);
    this.buf.writeUInt32BE(len, this.off);
    if (typeof data === 'string') this.buf.write(data, this.off + 4, 'utf8');
    else this.buf.set(data, this.off + 4);
    this.off += 4 + len;
  }

  digest(): string {
    return `sha256:${this.raw().toString('hex')}`;
  }

  raw(): Buffer {
    this.hash.update(this.buf.subarray(0, this.off));
    return this.hash.digest();
  }
}

// ---------------------------------------------------------------------------------------------
// The entry point
// ---------------------------------------------------------------------------------------------

interface CtxResult {
  ctx: Ctx;
  /** Against the snapshot: entry indexes added, paths removed, entry indexes changed. */
  added: number[];
  removed: string[];
  changed: number[];
  /** (entry index, snapshot index) pairs of files re-read: changed or not is known after hashing. */
  recheck: number[];
  entries: Entries;
  digests: Uint8Array;
  sizes: Float64Array;
  cacheFile?: string;
  snapshot?: CacheSnapshot;
  /** SHA-256 of the context's entry records in order (set when the digest is computed). */
  section?: Buffer;
  /** Regular files and their bytes (set with `section`). */
  files?: number;
  bytes?: number;
  /** Every entry is the snapshot's (set with `section`). */
  unchanged?: boolean;
  /** Huge-context figures, when computed or taken from an unchanged snapshot. */
  directorySizes?: { top: DirectorySize[]; junk: string[] };
}

/**
 * Whether this run's entries are exactly the snapshot's: same count, nothing added, removed or
 * changed once re-read files are settled (a hit means same kind, executable bit, size and
 * digest; symlink text and directory kinds are compared in {@link compareWithCache}).
 */
function unchangedSince(r: CtxResult): boolean {
  const s = r.snapshot;
  if (!s?.sectionDigest || s.count !== r.entries.paths.length) return false;
  settleChanges(r);
  return r.added.length === 0 && r.removed.length === 0 && r.changed.length === 0;
}

/** The section digest: every entry record of one context, in order. */
function sectionDigest(r: CtxResult): Buffer {
  const w = new DigestWriter();
  const { paths, kinds, stats, links } = r.entries;
  for (let i = 0; i < paths.length; i++) {
    const kind = kinds[i]!;
    if (kind === Kind.File) {
      w.file(paths[i]!, stats[i * STAT_FIELDS]!, r.sizes[i]!, r.digests, i);
      continue;
    }
    w.byte(TYPE_BYTE[kind]!);
    w.field(paths[i]!);
    if (kind === Kind.Symlink) {
      const target = links.get(i)!;
      w.byte(0);
      w.u64(Buffer.byteLength(target, 'utf8'));
      w.field(target);
    } else {
      w.byte(0);
      w.u64(0);
      w.field('');
    }
  }
  return w.raw();
}

export async function hashContext(options: HashContextOptions): Promise<ContextHashResult> {
  const seen = new Set<string>();
  const onWarning = options.onWarning;
  const first = onWarning ? { ...options, onWarning: (w: ContextWarning) => (seen.add(JSON.stringify(w)), onWarning(w)) } : options;
  try {
    return await hashContextOnce(first, false);
  } catch (err) {
    // A parked worker that died between two hashes is only noticed once this hash has taken its
    // pool (the 'exit' event comes later): walk again, once, with new workers. Warnings the first
    // attempt already reported are not reported twice.
    if (!(err instanceof WorkerLostError) || !err.reusedPool) throw err;
    const again = onWarning ? { ...options, onWarning: (w: ContextWarning) => (seen.has(JSON.stringify(w)) ? undefined : onWarning(w)) } : options;
    return hashContextOnce(again, true);
  }
}

async function hashContextOnce(options: HashContextOptions, freshPool: boolean): Promise<ContextHashResult> {
  if (typeof options !== 'object' || options === null || typeof options.context !== 'string' || options.context === '') {
    throw new InvalidArgumentError('hashContext: options.context must be a non-empty path');
  }
  const { signal } = options;
  throwIfAborted(signal);
  const dialect: IgnoreDialect = options.ignoreDialect ?? 'buildkit';
  if (dialect !== 'buildkit' && dialect !== 'legacy' && dialect !== 'buildah') throw new InvalidArgumentError(`hashContext: unknown ignoreDialect "${String(dialect)}"`);
  const cacheDir = options.cacheDir === false ? undefined : options.cacheDir ?? defaultCacheDir();
  if (cacheDir !== undefined && !isAbsolute(resolve(cacheDir))) throw new InvalidArgumentError('hashContext: cacheDir must be a path');
  const warnings: ContextWarning[] = [];
  let phaseStart = performance.now();
  const phase = (name: ContextPhase): void => {
    const now = performance.now();
    options.onTiming?.(name, now - phaseStart);
    phaseStart = now;
  };
  const warn = (w: ContextWarning): void => {
    warnings.push(w);
    options.onWarning?.(w);
  };

  const mainRoot = await resolveDir(options.context, 'build context');
  const dockerfile = await resolveDockerfile(options.dockerfile, mainRoot);

  // Ignore file of the main context: `<Dockerfile>.dockerignore` first (pulumi-docker #863).
  // buildah 1.28 (buildah's parse.ContainerIgnoreFile): `<Dockerfile>.dockerignore`, then
  // `<Dockerfile>.containerignore`, then `.containerignore`, then `.dockerignore`.
  const candidates =
    dialect === 'buildah'
      ? [
          ...(dockerfile.ignoreCandidate ? [dockerfile.ignoreCandidate, dockerfile.ignoreCandidate.replace(/\.dockerignore$/, '.containerignore')] : []),
          join(mainRoot, '.containerignore'),
          join(mainRoot, '.dockerignore'),
        ]
      : [...(dockerfile.ignoreCandidate ? [dockerfile.ignoreCandidate] : []), join(mainRoot, '.dockerignore')];
  let ignoreFile: string | null = null;
  let ignoreContent: Buffer | null = null;
  for (const candidate of candidates) {
    ignoreContent = await readOptional(candidate, 'ignore file');
    if (ignoreContent !== null) {
      ignoreFile = candidate;
      break;
    }
  }
  const ctxs: Ctx[] = [
    { id: 0, name: '', root: mainRoot, ignoreFile, ...compileIgnore(ignoreFile, ignoreContent, dialect), cacheRole: dockerfile.path ? `dockerfile:${dockerfile.path}` : 'inline' },
  ];

  // Named contexts, each with its own `.dockerignore` (pulumi-docker-build PR #980).
  const remote: [string, string][] = [];
  const names = Object.keys(options.namedContexts ?? {}).sort(compareBytewise);
  for (const name of names) {
    const value = options.namedContexts![name]!;
    if (typeof value !== 'string' || value === '') throw new InvalidArgumentError(`hashContext: named context "${name}" must be a non-empty string`);
    if (!isLocalContext(value)) {
      remote.push([name, value]);
      continue;
    }
    const root = await resolveDir(value, `build context "${name}"`);
    const file = join(root, '.dockerignore');
    // buildah 1.28 copies a named context whole: its .dockerignore is not read.
    const content = dialect === 'buildah' ? null : await readOptional(file, 'ignore file');
    ctxs.push({ id: ctxs.length, name, root, ignoreFile: content === null ? null : file, ...compileIgnore(file, content, dialect), cacheRole: 'named' });
  }

  // Start loading the stat caches while walking.
  const cacheFiles = ctxs.map((c) => (cacheDir === undefined ? undefined : cacheFileFor(resolve(cacheDir), c.root, dialect, c.cacheRole)));
  const cacheSizes = await Promise.all(cacheFiles.map((f) => (f === undefined ? Promise.resolve(-1) : stat(f).then((st) => st.size, () => -1))));
  const cacheExists = cacheSizes.map((size) => size >= 0);
  const snapshots = Promise.all(cacheFiles.map((f) => (f === undefined ? Promise.resolve(undefined) : loadCache(f))));

  const concurrency = Math.max(1, Math.min(options.concurrency ?? Math.min(availableParallelism(), 8), 64));
  let pool: WorkerPool | undefined;
  const getPool = (): WorkerPool => {
    if (!pool) {
      pool = acquireWorkerPool(signal, concurrency, freshPool);
      for (const c of ctxs) pool.setup({ type: 'context', ctx: c.id, root: c.root, patterns: c.patterns, dialect });
    }
    return pool;
  };
  // Hashing: one worker per core. Walking: the main thread, then one worker per core when it pays.
  const warm = freshPool ? 0 : warmWorkers();
  const parallelWalk = options.parallelWalk ?? ((warm > 0 && warm <= concurrency) || cacheSizes.some((size) => size > PARALLEL_WALK_CACHE_BYTES));
  const walkers = parallelWalk ? concurrency : 0;

  try {
    phase('prepare');
    // Start the walking workers now, so their start-up overlaps the main thread's walk.
    if (walkers > 0) getPool().grow(walkers);
    const chunkSets = await new Walker(ctxs, dialect, getPool, () => pool !== undefined, walkers, (c) => cacheExists[c.id] === true, signal).run();
    const loaded = await snapshots;
    throwIfAborted(signal);
    phase('walk');

    // Stat cache: reuse digests of unchanged files, collect the rest.
    const results: CtxResult[] = [];
    const toHash: { r: CtxResult; index: number; size: number }[] = [];
    let cachedFiles = 0;
    for (const ctx of ctxs) {
      const entries = assemble(chunkSets.get(ctx.id)!);
      const n = entries.paths.length;
      const r: CtxResult = { ctx, added: [], removed: [], changed: [], recheck: [], entries, digests: new Uint8Array(n * 32), sizes: new Float64Array(n) };
      const snapshot = loaded[ctx.id];
      if (cacheFiles[ctx.id] !== undefined) r.cacheFile = cacheFiles[ctx.id];
      if (snapshot) r.snapshot = snapshot;
      cachedFiles += compareWithCache(r, (index, size) => toHash.push({ r, index, size }));
      results.push(r);
    }

    phase('compare');
    const hashed = await hashFiles(toHash, () => {
      const p = getPool();
      p.grow(concurrency);
      return p;
    }, () => pool, signal);

    phase('hash');
    // Changes against the previous run.
    let changes: ContextChanges | undefined;
    if (results.every((r) => r.snapshot !== undefined)) {
      changes = { added: [], removed: [], changed: [], dockerfileChanged: results[0]!.snapshot!.dockerfileDigest !== dockerfile.digest.toString('hex') };
      for (const r of results) {
        settleChanges(r);
        for (const i of r.added) changes.added.push(prefixed(r.ctx, r.entries.paths[i]!));
        for (const p of r.removed) changes.removed.push(prefixed(r.ctx, p));
        for (const i of r.changed) changes.changed.push(prefixed(r.ctx, r.entries.paths[i]!));
      }
    }

    // The digest: one section digest per context (its entries in order), then the sections. An
    // unchanged context (every entry a stat-cache hit, nothing added, removed or changed) has the
    // section digest its cache recorded, so a warm run does not re-serialise 100k records.
    let files = 0;
    let directories = 0;
    let symlinks = 0;
    let bytes = 0;
    for (const r of results) {
      const { paths, kinds } = r.entries;
      r.files = 0;
      r.bytes = 0;
      for (let i = 0; i < paths.length; i++) {
        const kind = kinds[i]!;
        if (kind === Kind.File) {
          r.files++;
          r.bytes += r.sizes[i]!;
        } else if (kind === Kind.Symlink) symlinks++;
        else directories++;
      }
      files += r.files;
      bytes += r.bytes;
      r.unchanged = unchangedSince(r);
      r.section = r.unchanged ? Buffer.from(r.snapshot!.sectionDigest!, 'hex') : sectionDigest(r);
    }
    const w = new DigestWriter();
    w.field('slipway.context.v2');
    w.field(dockerfile.digest);
    for (const r of results) {
      w.byte(0x63 /* c */);
      w.field(r.ctx.name);
      w.field(r.section!);
    }
    for (const [name, value] of remote) {
      w.byte(0x72 /* r */);
      w.field(name);
      w.field(value);
    }
    const digest = w.digest();
    phase('digest');

    // Warnings: special files, huge contexts.
    for (const r of results) {
      const sp = r.entries.specials;
      if (sp.length > 0) {
        const shown = sp.slice(0, 5).map((p) => `"${prefixed(r.ctx, p)}"`).join(', ');
        warn({
          code: 'special-files',
          message: `skipped ${sp.length} socket/FIFO/device file${sp.length === 1 ? '' : 's'} in ${describe(r.ctx)}: ${shown}${sp.length > 5 ? `, and ${sp.length - 5} more` : ''}`,
          ...(r.ctx.name === '' ? {} : { context: r.ctx.name }),
          paths: sp,
        });
      }
    }
    let biggest: DirectorySize[] | undefined;
    for (const r of results) {
      const ctxFiles = r.files!;
      const ctxBytes = r.bytes!;
      if (ctxFiles > (options.hugeContext?.files ?? HUGE_CONTEXT_FILES) || ctxBytes > (options.hugeContext?.bytes ?? HUGE_CONTEXT_BYTES)) {
        // They depend on the entries only: an unchanged context reuses the figures its cache recorded.
        const sizes = r.unchanged && r.snapshot?.directorySizes ? r.snapshot.directorySizes : directorySizes(r);
        r.directorySizes = sizes;
        biggest = [...(biggest ?? []), ...sizes.top];
        const list = sizes.top.slice(0, 5).map((d) => `${d.path} (${formatBytes(d.bytes)}, ${d.files} files)`).join(', ');
        const suggest = sizes.junk.length > 0 ? `; if they are not needed in the image, add to ${r.ctx.ignoreFile ?? join(r.ctx.root, '.dockerignore')}: ${sizes.junk.join(', ')}` : '';
        warn({
          code: 'huge-context',
          message: `${describe(r.ctx)} is large: ${ctxFiles} files, ${formatBytes(ctxBytes)}; biggest directories: ${list}${suggest}`,
        });
      }
    }

    // Save the stat caches (only when something was read or the entry set moved).
    let saved = false;
    for (const r of results) {
      if (r.cacheFile === undefined) continue;
      const dockerfileMoved = r.ctx.id === 0 && r.snapshot?.dockerfileDigest !== dockerfile.digest.toString('hex');
      if (r.snapshot) settleChanges(r);
      const dirty =
        !r.snapshot ||
        r.added.length + r.removed.length + r.changed.length > 0 ||
        r.snapshot.sectionDigest !== r.section!.toString('hex') ||
        // Huge-context figures the cache does not hold yet: record them for the next run.
        (r.directorySizes !== undefined && r.snapshot.directorySizes === undefined);
      if (!dirty && !hashed.touched.has(r) && !dockerfileMoved) continue;
      try {
        await saveCache(r.cacheFile, cacheRecord(r, r.ctx.id === 0 ? dockerfile.digest.toString('hex') : null, hashed.uncacheable));
        saved = true;
      } catch (e) {
        warn({ code: 'cache-write', message: `cannot write the context stat cache "${r.cacheFile}": ${(e as Error).message}` });
      }
    }
    if (saved && cacheDir !== undefined) await pruneCacheDaily(resolve(cacheDir)).catch(() => undefined);

    const result: ContextHashResult = {
      digest,
      files,
      directories,
      symlinks,
      bytes,
      dockerfile: { ...(dockerfile.path ? { path: dockerfile.path } : {}), inline: dockerfile.inline, digest: `sha256:${dockerfile.digest.toString('hex')}` },
      ignoreFile,
      warnings: warnings.map((x) => x.message),
      stats: { hashedFiles: hashed.files, hashedBytes: hashed.bytes, cachedFiles },
    };
    if (changes) result.changes = changes;
    if (biggest) result.biggestDirectories = biggest;
    if (options.listEntries) result.entries = listEntries(results);
    phase('finish');
    return result;
  } finally {
    if (pool) await releaseWorkerPool(pool);
  }
}

function prefixed(ctx: Ctx, path: string): string {
  return ctx.name === '' ? path : `${ctx.name}:${path}`;
}

function describe(ctx: Ctx): string {
  return ctx.name === '' ? `build context "${ctx.root}"` : `build context "${ctx.name}" (${ctx.root})`;
}

/**
 * One merge-join of this run's entries with the snapshot (both in bytewise order): copies the
 * digests of files whose stat is unchanged and not racy, reports the rest as misses, and notes
 * what was added, removed or changed (files that miss are judged after they are hashed).
 * Returns the number of hits.
 */
function compareWithCache(r: CtxResult, miss: (index: number, size: number) => void): number {
  const { paths, kinds, stats, links } = r.entries;
  const s = r.snapshot;
  const bytewise = r.entries.surrogates || (s?.surrogates ?? false);
  let j = 0;
  let hits = 0;
  const m = s?.count ?? 0;
  // Digests of hits are copied in runs (entry i ↔ snapshot i - shift), one `set` per run rather
  // than 32 byte moves per file: an unchanged context is a single run.
  let runFrom = -1;
  let runShift = 0;
  const flush = (end: number): void => {
    if (runFrom >= 0) r.digests.set(s!.digests.subarray((runFrom - runShift) * 32, (end - runShift) * 32), runFrom * 32);
    runFrom = -1;
  };
  for (let i = 0; i < paths.length; i++) {
    const kind = kinds[i]!;
    if (kind === Kind.Symlink) {
      createHash('sha256').update(links.get(i)!, 'utf8').digest().copy(r.digests, i * 32);
    }
    const size = stats[i * STAT_FIELDS + 1]!;
    if (kind === Kind.File) r.sizes[i] = size;
    if (s) {
      const p = paths[i]!;
      if (j < m && !snapshotPathIs(s, j, p)) {
        for (;;) {
          const q = snapshotPath(s, j);
          if (!(bytewise ? compareBytewise(q, p) < 0 : q < p)) break;
          r.removed.push(q);
          if (++j >= m) break;
        }
      }
      if (j < m && snapshotPathIs(s, j, p)) {
        const now = kind | (kind === Kind.File ? stats[i * STAT_FIELDS]! << 4 : 0);
        if (kind === Kind.File && s.kinds[j] === now) {
          const o = j * CACHE_STAT_FIELDS;
          const mtime = stats[i * STAT_FIELDS + 2]!;
          const ctime = stats[i * STAT_FIELDS + 3]!;
          if (
            s.stats[o] === size &&
            s.stats[o + 1] === mtime &&
            s.stats[o + 2] === ctime &&
            s.stats[o + 3] === stats[i * STAT_FIELDS + 4] &&
            mtime < s.racyFromMs &&
            ctime < s.racyFromMs
          ) {
            if (runFrom >= 0 && i - j !== runShift) flush(i);
            if (runFrom < 0) {
              runFrom = i;
              runShift = i - j;
            }
            hits++;
            j++;
            continue;
          }
        }
        flush(i);
        if (kind === Kind.File) r.recheck.push(i, j);
        else if (s.kinds[j] !== now || (kind === Kind.Symlink && !equalDigest(s.digests, j, r.digests, i))) r.changed.push(i);
        j++;
      } else {
        flush(i);
        r.added.push(i);
      }
    }
    if (kind === Kind.File) miss(i, size);
  }
  flush(paths.length);
  for (; j < m; j++) r.removed.push(snapshotPath(s!, j));
  return hits;
}

/** After hashing: which re-read files really changed (content, executable bit or type). */
function settleChanges(r: CtxResult): void {
  const s = r.snapshot;
  if (!s) return;
  const { kinds, stats } = r.entries;
  for (let k = 0; k < r.recheck.length; k += 2) {
    const i = r.recheck[k]!;
    const j = r.recheck[k + 1]!;
    const now = kinds[i]! | (stats[i * STAT_FIELDS]! << 4);
    if (s.kinds[j] !== now || !equalDigest(s.digests, j, r.digests, i)) r.changed.push(i);
  }
  r.recheck.length = 0; // settled: a second call adds nothing
  r.changed.sort((a, b) => a - b);
}

function equalDigest(a: Uint8Array, i: number, b: Uint8Array, j: number): boolean {
  for (let k = 0; k < 32; k++) if (a[i * 32 + k] !== b[j * 32 + k]) return false;
  return true;
}

function cacheRecord(r: CtxResult, dockerfileDigest: string | null, uncacheable: Set<string>): Parameters<typeof saveCache>[1] {
  const { paths, kinds, stats } = r.entries;
  const n = paths.length;
  const ckinds = new Uint8Array(n);
  const cstats = new Float64Array(n * CACHE_STAT_FIELDS);
  for (let i = 0; i < n; i++) {
    const kind = kinds[i]!;
    ckinds[i] = kind | (kind === Kind.File ? stats[i * STAT_FIELDS]! << 4 : 0);
    if (kind !== Kind.File) continue;
    const o = i * CACHE_STAT_FIELDS;
    cstats[o] = stats[i * STAT_FIELDS + 1]!;
    // A file whose size changed while it was read must not be trusted next time.
    cstats[o + 1] = uncacheable.size > 0 && uncacheable.has(`${r.ctx.id}\0${paths[i]}`) ? -1 : stats[i * STAT_FIELDS + 2]!;
    cstats[o + 2] = stats[i * STAT_FIELDS + 3]!;
    cstats[o + 3] = stats[i * STAT_FIELDS + 4]!;
  }
  return { paths, kinds: ckinds, stats: cstats, digests: r.digests, dockerfileDigest, sectionDigest: r.section!.toString('hex'), ...(r.directorySizes ? { directorySizes: r.directorySizes } : {}) };
}

interface HashOutcome {
  files: number;
  bytes: number;
  touched: Set<CtxResult>;
  uncacheable: Set<string>;
}

async function hashFiles(
  work: { r: CtxResult; index: number; size: number }[],
  getPool: () => WorkerPool,
  currentPool: () => WorkerPool | undefined,
  signal: AbortSignal | undefined,
): Promise<HashOutcome> {
  const outcome: HashOutcome = { files: work.length, bytes: 0, touched: new Set(), uncacheable: new Set() };
  if (work.length === 0) return outcome;
  let total = 0;
  for (const w of work) {
    total += w.size;
    outcome.touched.add(w.r);
  }
  const absOf = (w: { r: CtxResult; index: number }): string => `${w.r.ctx.root}/${w.r.entries.paths[w.index]}`;
  const record = (w: { r: CtxResult; index: number; size: number }, size: number, fstat: Float64Array, at: number): void => {
    w.r.sizes[w.index] = size;
    outcome.bytes += size;
    // What fstat saw while reading is what the cache remembers (the walk's lstat may be older or absent).
    w.r.entries.stats.set(fstat.subarray(at, at + STAT_FIELDS), w.index * STAT_FIELDS);
    if (size !== fstat[at + 1]) outcome.uncacheable.add(`${w.r.ctx.id}\0${w.r.entries.paths[w.index]}`);
  };
  const fail = (w: { r: CtxResult; index: number }, errno: string, message: string): SlipwayError => {
    const path = w.r.entries.paths[w.index]!;
    // A name that is not valid UTF-8 cannot round-trip through a JavaScript string.
    const hint = errno === 'ENOENT' && path.includes('\uFFFD') ? ' (the file name is not valid UTF-8)' : '';
    return contextError(`cannot read "${prefixed(w.r.ctx, path)}" in ${describe(w.r.ctx)}: ${message === errno ? errno : `${message} (${errno})`}${hint}`);
  };

  if (currentPool() === undefined && work.length <= INLINE_HASH_FILES && total <= INLINE_HASH_BYTES) {
    const buffer = Buffer.allocUnsafe(1 << 20);
    const fstat = new Float64Array(STAT_FIELDS);
    let lastYield = performance.now();
    for (const w of work) {
      try {
        record(w, hashFileInto(absOf(w), buffer, w.r.digests, w.index * 32, fstat, 0), fstat, 0);
      } catch (e) {
        if (e instanceof FileHashError) throw fail(w, e.errno, e.message);
        throw e;
      }
      if (performance.now() - lastYield > 8) {
        await yieldToLoop();
        throwIfAborted(signal);
        lastYield = performance.now();
      }
    }
    return outcome;
  }

  // Largest first, so the long files start early and small ones fill the gaps at the end.
  work.sort((a, b) => b.size - a.size);
  const pool = getPool();
  const batches: (typeof work)[] = [];
  let batch: typeof work = [];
  let batchBytes = 0;
  for (const w of work) {
    batch.push(w);
    batchBytes += w.size;
    if (batch.length >= 256 || batchBytes >= 8 * 1024 * 1024) {
      batches.push(batch);
      batch = [];
      batchBytes = 0;
    }
  }
  if (batch.length > 0) batches.push(batch);

  let next = 0;
  let failure: Error | undefined;
  await new Promise<void>((resolveAll, rejectAll) => {
    let running = 0;
    const pump = (): void => {
      if (failure) {
        if (running === 0) rejectAll(failure);
        return;
      }
      if (signal?.aborted) {
        failure = new AbortedError('context hashing aborted', { cause: signal.reason });
        if (running === 0) rejectAll(failure);
        return;
      }
      while (next < batches.length && pool.minInflight < 2) {
        const b = batches[next++]!;
        running++;
        pool.request({ type: 'hash', files: b.map(absOf) }).then(
          (reply) => {
            running--;
            const h = reply as HashReply;
            if (h.errors.length > 0) {
              const e = h.errors[0]!;
              failure ??= fail(b[e.index]!, e.errno, e.message);
            } else {
              for (let k = 0; k < b.length; k++) {
                const w = b[k]!;
                w.r.digests.set(h.digests.subarray(k * 32, k * 32 + 32), w.index * 32);
                record(w, h.sizes[k]!, h.stats, k * STAT_FIELDS);
              }
            }
            if (next >= batches.length && running === 0 && !failure) resolveAll();
            else pump();
          },
          (e: unknown) => {
            running--;
            failure ??= e instanceof Error ? e : new Error(String(e));
            pump();
          },
        );
      }
      if (next >= batches.length && running === 0 && !failure) resolveAll();
    };
    pump();
  });
  return outcome;
}

function directorySizes(r: CtxResult): { top: DirectorySize[]; junk: string[] } {
  // Sum per parent directory first (a few thousand keys), then roll up: cheap even for 100k files.
  const byParent = new Map<string, DirectorySize>();
  const { paths, kinds } = r.entries;
  // Entries are in path order, so a directory's files are mostly consecutive: reuse the last one.
  let d: DirectorySize | undefined;
  for (let i = 0; i < paths.length; i++) {
    if (kinds[i] !== Kind.File) continue;
    const p = paths[i]!;
    const slash = p.lastIndexOf('/');
    if (slash === -1) continue;
    if (!d || slash !== d.path.length || !p.startsWith(d.path)) {
      const parent = p.slice(0, slash);
      d = byParent.get(parent);
      if (!d) byParent.set(parent, (d = { path: parent, bytes: 0, files: 0 }));
    }
    d.bytes += r.sizes[i]!;
    d.files++;
  }
  const byTop = new Map<string, DirectorySize>();
  const byJunk = new Map<string, DirectorySize>();
  const add = (map: Map<string, DirectorySize>, key: string, from: DirectorySize): void => {
    let d = map.get(key);
    if (!d) map.set(key, (d = { path: prefixed(r.ctx, key), bytes: 0, files: 0 }));
    d.bytes += from.bytes;
    d.files += from.files;
  };
  for (const [parent, d] of byParent) {
    const slash = parent.indexOf('/');
    add(byTop, slash === -1 ? parent : parent.slice(0, slash), d);
    const m = JUNK.exec(`${parent}/`);
    if (m) add(byJunk, `${parent}/`.slice(0, m.index + m[0].length).replace(/^\//, ''), d);
  }
  const top = [...byTop.values()].sort((a, b) => b.bytes - a.bytes).slice(0, 10);
  for (const d of [...byJunk.values()].sort((a, b) => b.bytes - a.bytes).slice(0, 10)) if (!top.some((t) => t.path === d.path)) top.push(d);
  // Suggest `.dockerignore` lines for the heavy directories that are rarely wanted in an image.
  const junkNames = new Set<string>();
  for (const dir of byJunk.keys()) {
    const name = dir.slice(dir.lastIndexOf('/') + 1);
    junkNames.add(dir.includes('/') ? `**/${name}` : name);
  }
  return { top, junk: [...junkNames].slice(0, 8) };
}

function listEntries(results: CtxResult[]): ContextEntry[] {
  const out: ContextEntry[] = [];
  for (const r of results) {
    const { paths, kinds, stats, links } = r.entries;
    for (let i = 0; i < paths.length; i++) {
      const kind = kinds[i]!;
      const path = paths[i]!;
      const named = r.ctx.name === '' ? {} : { context: r.ctx.name };
      if (kind === Kind.File) {
        out.push({ path, ...named, type: 'file', executable: stats[i * STAT_FIELDS] === 1, size: r.sizes[i]!, digest: `sha256:${Buffer.from(r.digests.subarray(i * 32, i * 32 + 32)).toString('hex')}` });
      } else if (kind === Kind.Symlink) {
        const target = links.get(i)!;
        out.push({ path, ...named, type: 'symlink', executable: false, size: Buffer.byteLength(target, 'utf8'), target });
      } else {
        out.push({ path, ...named, type: 'dir', executable: false, size: 0 });
      }
    }
  }
  return out;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}
