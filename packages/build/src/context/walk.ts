/**
 * The context walker: one synchronous routine that runs on the main thread or in a worker.
 *
 * It reproduces what BuildKit's file sync sends (fsutil's walkers) and emits entries already in
 * the final bytewise path order, so nothing has to sort 100k paths afterwards: inside a directory
 * each child `x` has the key `x` and, when it is a directory, its subtree has the key `x/`;
 * sorting those keys per directory and visiting them depth-first yields the global order of full
 * slash paths (e.g. `a`, `a b`, `a b/x`, `a.txt`, `a/b`).
 *
 * A walk task stops descending once it has seen `budget` directory entries; the directories it
 * did not enter are left as placeholders (`Kind.Subtree`) and returned as new tasks, so workers
 * share big trees dynamically and the caller splices the pieces back in order.
 * @module
 */
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import type { IgnoreDialect, PatternMatcher } from './ignore.js';

export const Kind = {
  File: 0,
  Dir: 1,
  Symlink: 2,
  /** Socket, FIFO or device: sent by BuildKit's walker but never hashed (pulumi-docker #614). */
  Special: 3,
  /** Placeholder: the subtree of directory `path` was left to another task. */
  Subtree: 4,
  /** BuildKit and buildah dialects: an excluded directory walked for `!` re-includes; kept only if something inside is. */
  CondDir: 5,
} as const;

/** Flag OR-ed into a kind: the entry's parent directory is excluded (BuildKit and buildah dialects). */
export const PARENT_SKIPPED = 8;
export const KIND_MASK = 7;

/** Stats recorded per entry (files only; zeros otherwise): exec bit, size, mtime ms, ctime ms, inode. */
export const STAT_FIELDS = 5;

export interface DirTask {
  /** Directory path relative to the context root, slash separated; '' for the root. */
  rel: string;
  /** BuildKit dialect: the directory's pattern match info (null for the root). */
  info: Uint8Array | null;
  /** The directory itself is excluded and only walked because a `!` pattern may reach inside. */
  skipped: boolean;
}

export interface WalkChunk {
  dir: string;
  paths: string[];
  kinds: Uint8Array;
  stats: Float64Array;
  /** Link text for each symlink entry, in entry order. */
  links: string[];
  leftovers: DirTask[];
  /** Directory entries read (the work measure used for budgets). */
  seen: number;
  /** Some path holds a UTF-16 surrogate (astral character): plain string comparison is not bytewise there. */
  surrogates: boolean;
}

export class ContextWalkError extends Error {
  constructor(readonly path: string, readonly errno: string, message: string) {
    super(message);
  }
}

interface Item {
  key: string;
  path: string;
  kind: number;
  info: Uint8Array | null;
  skipped: boolean;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** Compares two strings by their UTF-8 bytes (JavaScript's `<` compares UTF-16 code units). */
export function compareBytewise(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (astral code points, 4 UTF-8 bytes) sort after U+E000..U+FFFF in UTF-8.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

const byKey = (a: Item, b: Item): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
const byKeyBytewise = (a: Item, b: Item): number => compareBytewise(a.key, b.key);

function errnoOf(e: unknown): string {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'EIO';
}

/** Walks one task (a directory and, within `budget`, its subtree). Synchronous by design: it is hot. */
export function walkTask(root: string, matcher: PatternMatcher | null, dialect: IgnoreDialect, task: DirTask, budget: number, statFiles = true): WalkChunk {
  const paths: string[] = [];
  const links: string[] = [];
  // Growable typed arrays: far cheaper than number[] + a copy for 100k entries.
  let kinds = new Uint8Array(1024);
  let stats = new Float64Array(1024 * STAT_FIELDS);
  let n = 0;
  const push = (path: string, kind: number, exec: number, size: number, mtime: number, ctime: number, ino: number): void => {
    if (n === kinds.length) {
      const k = new Uint8Array(n * 2);
      k.set(kinds);
      kinds = k;
      const st = new Float64Array(n * 2 * STAT_FIELDS);
      st.set(stats);
      stats = st;
    }
    paths.push(path);
    kinds[n] = kind;
    const o = n * STAT_FIELDS;
    stats[o] = exec;
    stats[o + 1] = size;
    stats[o + 2] = mtime;
    stats[o + 3] = ctime;
    stats[o + 4] = ino;
    n++;
  };
  const chunk = { leftovers: [] as DirTask[], seen: 0, surrogates: false };
  const buildkit = dialect === 'buildkit';
  // BuildKit's FilterFS and buildah's copier send an excluded directory only when something inside
  // is sent (buildah creates it implicitly); the legacy walker sends it as soon as it walks it.
  const lazyDirs = dialect !== 'legacy';

  const visit = (rel: string, info: Uint8Array | null, skipped: boolean): void => {
    const abs = rel === '' ? root : `${root}/${rel}`;
    let dirents;
    try {
      dirents = readdirSync(abs, { withFileTypes: true });
    } catch (e) {
      const code = errnoOf(e);
      // A directory that vanished mid-walk is skipped, as fsutil does (isNotExist → SkipDir).
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      // BuildKit ignores permission errors inside excluded directories it only walks for `!` patterns.
      if (skipped && buildkit && (code === 'EACCES' || code === 'EPERM')) return;
      throw new ContextWalkError(rel, code, `cannot read directory "${rel === '' ? '.' : rel}": ${code}`);
    }
    chunk.seen += dirents.length;
    const items: Item[] = [];
    let surrogates = false;
    for (const d of dirents) {
      const name = d.name;
      if (SURROGATE.test(name)) surrogates = true;
      const path = rel === '' ? name : `${rel}/${name}`;
      const isDir = d.isDirectory();
      let childInfo: Uint8Array | null = null;
      if (matcher !== null) {
        let excluded: boolean;
        if (buildkit && isDir) {
          const r = matcher.matchesWithParent(path, rel === '' ? null : info);
          excluded = r.excluded;
          childInfo = r.info;
        } else if (buildkit) {
          excluded = matcher.excludedWithParent(path, rel === '' ? null : info);
        } else {
          excluded = matcher.matchesLegacy(path);
        }
        if (excluded) {
          // Files are dropped; a directory is pruned unless a `!` pattern might re-include inside it.
          if (!isDir || !matcher.mayReincludeUnder(path)) continue;
          // Legacy fsutil sends such a directory itself; BuildKit and buildah only when something inside is sent.
          items.push({ key: name, path, kind: lazyDirs ? Kind.CondDir : Kind.Dir, info: null, skipped: false });
          items.push({ key: `${name}/`, path, kind: Kind.Subtree, info: childInfo, skipped: true });
          continue;
        }
      }
      if (isDir) {
        items.push({ key: name, path, kind: Kind.Dir, info: null, skipped: false });
        items.push({ key: `${name}/`, path, kind: Kind.Subtree, info: childInfo, skipped: false });
      } else if (d.isFile()) {
        items.push({ key: name, path, kind: Kind.File, info: null, skipped: false });
      } else if (d.isSymbolicLink()) {
        items.push({ key: name, path, kind: Kind.Symlink, info: null, skipped: false });
      } else {
        items.push({ key: name, path, kind: Kind.Special, info: null, skipped: false });
      }
    }
    if (surrogates) chunk.surrogates = true;
    items.sort(surrogates ? byKeyBytewise : byKey);
    const flag = skipped && lazyDirs ? PARENT_SKIPPED : 0;
    for (const item of items) {
      let kind = item.kind;
      if (kind === Kind.Subtree) {
        if (chunk.seen > budget) {
          push(item.path, Kind.Subtree, 0, 0, 0, 0, 0);
          chunk.leftovers.push({ rel: item.path, info: item.info, skipped: item.skipped });
        } else {
          visit(item.path, item.info, item.skipped);
        }
        continue;
      }
      if (kind === Kind.File && !statFiles) {
        // No stat cache to compare with: the hasher fstat's the file as it reads it.
        push(item.path, Kind.File | flag, 0, 0, NaN, NaN, NaN);
        continue;
      }
      if (kind === Kind.File) {
        let st;
        try {
          st = lstatSync(`${root}/${item.path}`, { throwIfNoEntry: false });
        } catch (e) {
          throw new ContextWalkError(item.path, errnoOf(e), `cannot stat "${item.path}": ${errnoOf(e)}`);
        }
        if (st === undefined) {
          // A name that is not valid UTF-8 cannot round-trip through a JavaScript string.
          if (item.path.includes('\uFFFD')) {
            throw new ContextWalkError(item.path, 'EILSEQ', `file name "${item.path}" is not valid UTF-8 and cannot be hashed`);
          }
          continue; // deleted since readdir
        }
        if (st.isFile()) {
          push(item.path, Kind.File | flag, st.mode & 0o100 ? 1 : 0, st.size, st.mtimeMs, st.ctimeMs, st.ino);
          continue;
        }
        // Replaced since readdir: record what is there now.
        kind = st.isDirectory() ? Kind.Dir : st.isSymbolicLink() ? Kind.Symlink : Kind.Special;
      }
      if (kind === Kind.Symlink) {
        let target: string;
        try {
          target = readlinkSync(`${root}/${item.path}`);
        } catch (e) {
          if (errnoOf(e) === 'ENOENT') continue;
          throw new ContextWalkError(item.path, errnoOf(e), `cannot read symlink "${item.path}": ${errnoOf(e)}`);
        }
        links.push(target);
      }
      push(item.path, kind | flag, 0, 0, 0, 0, 0);
    }
  };

  visit(task.rel, task.info, task.skipped);
  return { dir: task.rel, paths, kinds: kinds.slice(0, n), stats: stats.slice(0, n * STAT_FIELDS), links, ...chunk };
}
