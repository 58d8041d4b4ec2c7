/**
 * `.dockerignore` parsing and matching with Docker's exact semantics, in two dialects:
 *
 * - `buildkit`: moby/patternmatcher v0.6 (`MatchesUsingParentResults`, exact/prefix/suffix fast
 *   paths, `.+()|{}$` escaped) as used by tonistiigi/fsutil's FilterFS — the file sync of buildx,
 *   buildctl and Docker Engine 23+.
 * - `legacy`: docker/docker 20.10 `pkg/fileutils` (`Matches` checks one parent at the pattern's
 *   depth; only `.` and `$` escaped, so `+(){}|` are live regular-expression syntax) as used by
 *   fsutil's 2020 walker inside the Docker 20.10 CLI.
 *
 * - `buildah`: buildah 1.28 (Debian 12): imagebuilder's `ParseIgnore` (lines split on `\n`, `#`
 *   only in column one, every leading and trailing `/` trimmed, no BOM handling), then
 *   containers/storage `fileutils` (the legacy matcher: `Matches`, live `+(){}|`; a `!` pattern's
 *   rest is cleaned again and loses a leading `/`; text/scanner drops a leading BOM of each
 *   pattern), walked by buildah's copier (an excluded directory is entered only when some `!`
 *   pattern's text starts with its path, and never sent itself).
 *
 * The dialects disagree on real patterns (`**.go`, `a+b`, `!**\/keep` inside an ignored
 * directory), which is why the dialect follows the client that sends the context. Each is checked
 * against its engine by test/e2e/context-oracle.test.ts and audit-build-buildah-oracle.test.ts.
 * @module
 */
import { GoPatternError, goClean, goFilepathMatch, goRegexToJs, goTrimSpace } from './go.js';

export type IgnoreDialect = 'buildkit' | 'legacy' | 'buildah';

export class IgnorePatternError extends Error {
  constructor(readonly pattern: string, message: string) {
    super(message);
  }
}

/** bufio.Scanner's default maximum token size: a longer line makes BuildKit fail to parse the file. */
const MAX_LINE_BYTES = 64 * 1024;

/**
 * Reads an ignore file the way moby/patternmatcher's `ignorefile.ReadAll` (and BuildKit's older
 * `dockerignore.ReadAll`) does: BOM stripped from the first line, `#` comments only in column one
 * (before trimming), whitespace trimmed, `!` re-includes with the rest trimmed again,
 * `filepath.Clean`, one leading `/` removed.
 */
export function parseIgnoreFile(content: Uint8Array | string): string[] {
  let buf = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
  const out: string[] = [];
  let pos = 0;
  while (pos < buf.length) {
    let nl = buf.indexOf(0x0a, pos);
    const lineStart = pos;
    pos = nl === -1 ? buf.length : nl + 1;
    if (nl === -1) nl = buf.length;
    let lineEnd = nl;
    if (lineEnd > lineStart && buf[lineEnd - 1] === 0x0d) lineEnd--;
    if (nl - lineStart >= MAX_LINE_BYTES) throw new IgnorePatternError('', 'a line is longer than 64 KiB (bufio.Scanner: token too long)');
    let pattern = buf.toString('utf8', lineStart, lineEnd);
    if (pattern.startsWith('#')) continue;
    pattern = goTrimSpace(pattern);
    if (pattern === '') continue;
    const invert = pattern[0] === '!';
    if (invert) pattern = goTrimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = goClean(pattern);
      if (pattern.length > 1 && pattern[0] === '/') pattern = pattern.slice(1);
    }
    out.push(invert ? `!${pattern}` : pattern);
  }
  return out;
}

/**
 * Reads an ignore file the way buildah 1.28 does (openshift/imagebuilder `ParseIgnoreReader`):
 * split on `\n`, skip empty lines and lines whose first byte is `#` (a BOM before the `#` makes
 * it a pattern), trim every leading and trailing `/`. Spaces are trimmed later, by the matcher.
 */
export function parseIgnoreFileBuildah(content: Uint8Array | string): string[] {
  const text = typeof content === 'string' ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line[0] === '#') continue;
    const trimmed = line.replace(/^\/+|\/+$/g, '');
    if (trimmed !== '') out.push(trimmed);
  }
  return out;
}

enum MatchType {
  Exact,
  Prefix,
  Suffix,
  Regexp,
}

export interface Pattern {
  /** The cleaned pattern without its `!`. */
  readonly cleaned: string;
  readonly exclusion: boolean;
  /** Number of path components (`len(pattern.dirs)` in Go). */
  readonly depth: number;
  test(path: string): boolean;
}

const BUILDKIT_ESCAPED = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);
const LEGACY_ESCAPED = new Set(['.', '$']);

/** Builds the Go regular expression moby builds for a cleaned pattern and decides its match type. */
function compilePattern(cleaned: string, dialect: IgnoreDialect): Pattern['test'] {
  const escaped = dialect === 'buildkit' ? BUILDKIT_ESCAPED : LEGACY_ESCAPED;
  const cps = [...cleaned];
  // containers/storage compiles through text/scanner, which drops a leading byte order mark.
  if (dialect === 'buildah' && cps[0] === '\ufeff') cps.shift();
  let re = '^';
  let type = MatchType.Exact;
  let i = 0;
  for (let n = 0; i < cps.length; n++) {
    const ch = cps[i++]!;
    if (ch === '*') {
      if (cps[i] === '*') {
        i++;
        if (cps[i] === '/') i++;
        if (i >= cps.length) {
          // "**" at the end matches everything below. The regular expression gets ".*" either way
          // (legacy always compiles it); patternmatcher 0.6 turns an otherwise exact pattern into
          // a plain prefix match instead.
          re += '.*';
          type = type === MatchType.Exact ? MatchType.Prefix : MatchType.Regexp;
        } else {
          re += '(.*/)?';
          type = MatchType.Regexp;
        }
        if (n === 0) type = MatchType.Suffix;
      } else {
        re += '[^/]*';
        type = MatchType.Regexp;
      }
    } else if (ch === '?') {
      re += '[^/]';
      type = MatchType.Regexp;
    } else if (escaped.has(ch)) {
      re += `\\${ch}`;
    } else if (ch === '\\') {
      if (i < cps.length) {
        re += `\\${cps[i++]}`;
        type = MatchType.Regexp;
      } else {
        re += '\\';
      }
    } else if (ch === '[' || ch === ']') {
      re += ch;
      type = MatchType.Regexp;
    } else {
      re += ch;
    }
  }
  if (dialect === 'buildkit') {
    switch (type) {
      case MatchType.Exact:
        return (path) => path === cleaned;
      case MatchType.Prefix: {
        const prefix = cleaned.slice(0, -2);
        return (path) => path.startsWith(prefix);
      }
      case MatchType.Suffix: {
        const suffix = cleaned.slice(2);
        const bare = suffix.startsWith('/') ? suffix.slice(1) : undefined;
        return (path) => path.endsWith(suffix) || path === bare;
      }
      default:
        break;
    }
  }
  // The legacy matcher always compiles the regular expression (no fast paths).
  const compiled = new RegExp(goRegexToJs(`${re}$`), 'u');
  return (path) => compiled.test(path);
}

/** A compiled `.dockerignore` (exclude patterns, `!` exclusions) for one dialect. */
export class PatternMatcher {
  readonly patterns: Pattern[];
  readonly exclusions: boolean;
  /** fsutil's `onlyPrefixExcludeExceptions`: every `!` pattern is a plain path prefix. */
  readonly onlyPrefixExceptions: boolean;

  constructor(patterns: readonly string[], readonly dialect: IgnoreDialect) {
    this.patterns = [];
    let exclusions = false;
    for (const original of patterns) {
      let p = goTrimSpace(original);
      if (p === '') continue;
      p = goClean(p);
      let exclusion = false;
      if (p[0] === '!') {
        if (p.length === 1) throw new IgnorePatternError(original, 'illegal exclusion pattern: "!"');
        exclusion = true;
        exclusions = true;
        p = p.slice(1);
        // containers/storage cleans a `!` pattern's rest again and drops its leading `/`
        // (`!/keep` and `!./keep` re-include `keep`; `/keep` alone matches nothing).
        if (dialect === 'buildah') p = goClean(p).replace(/^\//, '');
      }
      let test: Pattern['test'];
      try {
        goFilepathMatch(p, '.');
        test = compilePattern(p, dialect);
      } catch (e) {
        if (e instanceof GoPatternError) throw new IgnorePatternError(original, `invalid pattern "${original}": ${e.message}`);
        throw e;
      }
      this.patterns.push({ cleaned: p, exclusion, depth: p.split('/').length, test });
    }
    this.exclusions = exclusions;
    this.onlyPrefixExceptions = !this.patterns.some((p) => p.exclusion && /[*[\]?^\\]/.test(withoutTrailingGlob(p.cleaned)));
  }

  get isEmpty(): boolean {
    return this.patterns.length === 0;
  }

  /** docker/docker 20.10 `PatternMatcher.Matches`: true when the path is excluded. */
  matchesLegacy(file: string): boolean {
    let matched = false;
    const slash = file.lastIndexOf('/');
    const parentPath = slash === -1 ? '.' : file.slice(0, slash);
    let parentDirs: string[] | undefined;
    for (const pattern of this.patterns) {
      let match = pattern.test(file);
      if (!match && parentPath !== '.') {
        parentDirs ??= parentPath.split('/');
        if (pattern.depth <= parentDirs.length) match = pattern.test(parentDirs.slice(0, pattern.depth).join('/'));
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /**
   * moby/patternmatcher `MatchesUsingParentResults`: `parent` is the parent directory's match
   * info (null for top-level entries, which then fall back to checking every parent prefix).
   * Returns whether the path is excluded and this path's own match info for its children.
   */
  matchesWithParent(file: string, parent: Uint8Array | null): { excluded: boolean; info: Uint8Array } {
    const info = new Uint8Array(this.patterns.length);
    return { excluded: this.evaluate(file, parent, info), info };
  }

  /** As matchesWithParent, without the match info (for files: nothing inherits it). */
  excludedWithParent(file: string, parent: Uint8Array | null): boolean {
    return this.evaluate(file, parent, undefined);
  }

  private evaluate(file: string, parent: Uint8Array | null, info: Uint8Array | undefined): boolean {
    let matched = false;
    for (let i = 0; i < this.patterns.length; i++) {
      const pattern = this.patterns[i]!;
      let match = parent !== null && parent.length !== 0 && parent[i] === 1;
      if (!match) {
        // Skipped patterns leave their slot false, exactly like Go (children re-evaluate them).
        if (pattern.exclusion !== matched) continue;
        match = pattern.test(file);
        if (!match && (parent === null || parent.length === 0)) {
          const slash = file.lastIndexOf('/');
          if (slash !== -1) {
            let from = 0;
            for (;;) {
              const next = file.indexOf('/', from);
              if (next === -1 || next > slash) break;
              if (pattern.test(file.slice(0, next))) {
                match = true;
                break;
              }
              from = next + 1;
            }
          }
        }
      }
      if (info) info[i] = match ? 1 : 0;
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /**
   * The walkers' pruning rule for an excluded directory: may a `!` pattern re-include something
   * inside it? Legacy fsutil compares the raw pattern; BuildKit's FilterFS strips a trailing
   * `/**` or `/*` first, and descends unconditionally when any `!` pattern has wildcards.
   */
  mayReincludeUnder(dir: string): boolean {
    if (!this.exclusions) return false;
    if (this.dialect === 'buildah') {
      // buildah's copier: `strings.HasPrefix(spec+"/", path)` with both trimmed of `/` — a plain
      // string prefix, so `fo` is entered for `!fo*/keep` (and for `!foo/x`), but not for `!f*/keep`.
      for (const p of this.patterns) if (p.exclusion && `${p.cleaned.replace(/^\/+|\/+$/g, '')}/`.startsWith(dir)) return true;
      return false;
    }
    if (this.dialect === 'buildkit' && !this.onlyPrefixExceptions) return true;
    const dirSlash = `${dir}/`;
    for (const p of this.patterns) {
      if (!p.exclusion) continue;
      const base = this.dialect === 'buildkit' ? withoutTrailingGlob(p.cleaned) : p.cleaned;
      if (`${base}/`.startsWith(dirSlash)) return true;
    }
    return false;
  }
}

function withoutTrailingGlob(p: string): string {
  let s = p;
  if (s.endsWith('/**')) s = s.slice(0, -3);
  if (s.endsWith('/*')) s = s.slice(0, -2);
  return s;
}

/**
 * The dialect of a Docker CLI that sends the context itself (`DOCKER_BUILDKIT=1 docker build`):
 * 20.10 and older vendor fsutil's 2020 walker and docker/pkg/fileutils (`legacy`); newer ones build
 * through buildx, which uses current fsutil and patternmatcher (`buildkit`). Verified against
 * Debian's docker.io 20.10.24 and buildctl/buildkitd 0.34 by test/e2e/context-oracle.test.ts.
 */
export function ignoreDialectForDockerCli(version: string): IgnoreDialect {
  const major = Number(/^v?(\d+)\./.exec(version.trim())?.[1]);
  return Number.isFinite(major) && major >= 23 ? 'buildkit' : 'legacy';
}
