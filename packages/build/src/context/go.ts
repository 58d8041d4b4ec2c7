/**
 * Small re-implementations of Go standard-library behaviour that Docker's `.dockerignore` handling
 * depends on: `filepath.Clean`, `strings.TrimSpace`, `filepath.Match` (only its syntax errors
 * matter to us) and the RE2 regular-expression syntax that moby's pattern matcher compiles
 * patterns into. Exactness matters here: a pattern that Go reads one way and we read another
 * makes the hashed file set differ from the set BuildKit sends (pulumi-docker #594, #607).
 * @module
 */

/** Go's `filepath.Clean` on a Unix system: purely lexical. */
export function goClean(path: string): string {
  if (path === '') return '.';
  const rooted = path.charCodeAt(0) === 0x2f;
  const n = path.length;
  let out = rooted ? '/' : '';
  // `dotdot` marks where `..` may no longer backtrack: after the root slash or a leading run of `..`.
  let dotdot = rooted ? 1 : 0;
  let r = rooted ? 1 : 0;
  while (r < n) {
    const c = path.charCodeAt(r);
    if (c === 0x2f) {
      r++;
    } else if (c === 0x2e && (r + 1 === n || path.charCodeAt(r + 1) === 0x2f)) {
      r++;
    } else if (c === 0x2e && path.charCodeAt(r + 1) === 0x2e && (r + 2 === n || path.charCodeAt(r + 2) === 0x2f)) {
      r += 2;
      if (out.length > dotdot) {
        let w = out.length - 1;
        while (w > dotdot && out.charCodeAt(w) !== 0x2f) w--;
        out = out.slice(0, w);
      } else if (!rooted) {
        out += out.length > 0 ? '/..' : '..';
        dotdot = out.length;
      }
    } else {
      if ((rooted && out.length !== 1) || (!rooted && out.length !== 0)) out += '/';
      let end = path.indexOf('/', r);
      if (end === -1) end = n;
      out += path.slice(r, end);
      r = end;
    }
  }
  return out === '' ? '.' : out;
}

/** Go's `unicode.IsSpace` (differs from JavaScript's `trim`: U+0085 is space, U+FEFF is not). */
function isGoSpace(c: number): boolean {
  switch (c) {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x20: case 0x85: case 0xa0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200a;
  }
}

/** Go's `strings.TrimSpace`. */
export function goTrimSpace(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isGoSpace(s.charCodeAt(start))) start++;
  while (end > start && isGoSpace(s.charCodeAt(end - 1))) end--;
  return s.slice(start, end);
}

export class GoPatternError extends Error {}

/**
 * Go's `filepath.Match(pattern, name)` on Unix, including when it reports `ErrBadPattern`
 * (moby calls `Match(pattern, ".")` only to reject malformed patterns).
 */
export function goFilepathMatch(pattern: string, name: string): boolean {
  let pat = pattern;
  let nm = name;
  outer: while (pat.length > 0) {
    let star = false;
    while (pat.length > 0 && pat[0] === '*') {
      pat = pat.slice(1);
      star = true;
    }
    // Scan one chunk: up to the next unescaped `*` outside a class.
    let inRange = false;
    let i = 0;
    for (; i < pat.length; i++) {
      const ch = pat[i];
      if (ch === '\\') {
        if (i + 1 < pat.length) i++;
      } else if (ch === '[') {
        inRange = true;
      } else if (ch === ']') {
        inRange = false;
      } else if (ch === '*' && !inRange) {
        break;
      }
    }
    const chunk = pat.slice(0, i);
    pat = pat.slice(i);
    if (star && chunk === '') return !nm.includes('/');
    const first = matchChunk(chunk, nm);
    if (first.ok && (first.rest.length === 0 || pat.length > 0)) {
      nm = first.rest;
      continue;
    }
    if (first.err) throw new GoPatternError('syntax error in pattern');
    if (star) {
      for (let j = 0; j < nm.length && nm[j] !== '/'; j++) {
        const t = matchChunk(chunk, nm.slice(j + 1));
        if (t.ok) {
          if (pat.length === 0 && t.rest.length > 0) continue;
          nm = t.rest;
          continue outer;
        }
        if (t.err) throw new GoPatternError('syntax error in pattern');
      }
    }
    return false;
  }
  return nm.length === 0;
}

function matchChunk(chunkIn: string, sIn: string): { rest: string; ok: boolean; err: boolean } {
  // Go scans the whole chunk even after a mismatch so that syntax errors are always reported.
  let chunk = [...chunkIn];
  let s = [...sIn];
  let failed = false;
  while (chunk.length > 0) {
    failed = failed || s.length === 0;
    const c = chunk[0]!;
    if (c === '[') {
      let r = -1;
      if (!failed) {
        r = s[0]!.codePointAt(0)!;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
      let negated = false;
      if (chunk.length > 0 && chunk[0] === '^') {
        negated = true;
        chunk = chunk.slice(1);
      }
      let match = false;
      let nrange = 0;
      for (;;) {
        if (chunk.length > 0 && chunk[0] === ']' && nrange > 0) {
          chunk = chunk.slice(1);
          break;
        }
        const lo = getEsc(chunk);
        if (!lo) return { rest: '', ok: false, err: true };
        chunk = lo.rest;
        let hi = lo.r;
        if (chunk[0] === '-') {
          const h = getEsc(chunk.slice(1));
          if (!h) return { rest: '', ok: false, err: true };
          chunk = h.rest;
          hi = h.r;
        }
        if (lo.r <= r && r <= hi) match = true;
        nrange++;
      }
      failed = failed || match === negated;
    } else if (c === '?') {
      if (!failed) {
        failed = s[0] === '/';
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    } else {
      if (c === '\\') {
        chunk = chunk.slice(1);
        if (chunk.length === 0) return { rest: '', ok: false, err: true };
      }
      if (!failed) {
        failed = chunk[0] !== s[0];
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    }
  }
  if (failed) return { rest: '', ok: false, err: false };
  return { rest: s.join(''), ok: true, err: false };
}

function getEsc(chunk: string[]): { r: number; rest: string[] } | undefined {
  if (chunk.length === 0 || chunk[0] === '-' || chunk[0] === ']') return undefined;
  let c = chunk;
  if (c[0] === '\\') {
    c = c.slice(1);
    if (c.length === 0) return undefined;
  }
  const r = c[0]!.codePointAt(0)!;
  const rest = c.slice(1);
  if (rest.length === 0) return undefined;
  return { r, rest };
}

// ---------------------------------------------------------------------------------------------
// RE2 (Go `regexp`) syntax → JavaScript RegExp source (used with the `u` flag).
// ---------------------------------------------------------------------------------------------

type Range = [number, number];

const MAX_RUNE = 0x10ffff;

const perlClasses: Record<string, Range[]> = {
  d: [[0x30, 0x39]],
  s: [[0x09, 0x0a], [0x0c, 0x0d], [0x20, 0x20]],
  w: [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]],
};

const posixClasses: Record<string, Range[]> = {
  alnum: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]],
  alpha: [[0x41, 0x5a], [0x61, 0x7a]],
  ascii: [[0x00, 0x7f]],
  blank: [[0x09, 0x09], [0x20, 0x20]],
  cntrl: [[0x00, 0x1f], [0x7f, 0x7f]],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]],
  space: [[0x09, 0x0d], [0x20, 0x20]],
  upper: [[0x41, 0x5a]],
  word: [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]],
  xdigit: [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]],
};

function negate(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of sorted) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= MAX_RUNE) out.push([next, MAX_RUNE]);
  return out;
}

function hex(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

function classSource(ranges: Range[], negated: boolean): string {
  const body = ranges.map(([lo, hi]) => (lo === hi ? hex(lo) : `${hex(lo)}-${hex(hi)}`)).join('');
  if (body === '') return negated ? '[^]' : '[]';
  return `[${negated ? '^' : ''}${body}]`;
}

const isAlnum = (c: string): boolean => /^[0-9A-Za-z]$/.test(c);

/**
 * Translates a Go RE2 regular expression into JavaScript `u`-mode source with the same match set.
 * Throws GoPatternError for invalid syntax and for the few RE2 features a `.dockerignore` pattern
 * is very unlikely to reach (`\p{…}` classes, inline flags): refusing loudly beats guessing.
 */
export function goRegexToJs(src: string): string {
  const cps = [...src];
  let i = 0;
  let out = '';
  // Output offset where the last atom began and whether it was a zero-width assertion
  // (RE2 lets `^*` repeat an assertion; JavaScript needs it wrapped in a group).
  let atomStart = -1;
  let atomIsAssertion = false;
  // 'op' right after a repetition operator (a following `?` makes it non-greedy), 'lazy' after that.
  let lastRepeat: 'none' | 'op' | 'lazy' = 'none';
  const depthStack: number[] = [];

  const fail = (why: string): never => {
    throw new GoPatternError(`${why} in regular expression \`${src}\``);
  };

  const atom = (text: string, assertion = false): void => {
    atomStart = out.length;
    atomIsAssertion = assertion;
    lastRepeat = 'none';
    out += text;
  };

  const repeat = (op: string): void => {
    if (lastRepeat === 'op' && op === '?') {
      out += '?';
      lastRepeat = 'lazy';
      return;
    }
    if (lastRepeat !== 'none') fail(`invalid nested repetition operator \`${op}\``);
    if (atomStart < 0) fail(`missing argument to repetition operator \`${op}\``);
    if (atomIsAssertion) {
      out = `${out.slice(0, atomStart)}(?:${out.slice(atomStart)})`;
      atomIsAssertion = false;
    }
    out += op;
    lastRepeat = 'op';
  };

  /** Parses an escape after `\` (cps[i] is the char after the backslash); returns ranges or a code point. */
  const parseEscape = (inClass: boolean): { cp?: number; ranges?: Range[]; assertion?: string; literal?: string } => {
    const c = cps[i];
    if (c === undefined) fail('trailing backslash at end of expression');
    const ch = c!;
    i++;
    if (ch >= '1' && ch <= '7') {
      // A single non-zero digit would be a back-reference, which RE2 rejects.
      if (!(cps[i] !== undefined && cps[i]! >= '0' && cps[i]! <= '7')) fail(`invalid escape sequence \`\\${ch}\``);
    }
    if (ch >= '0' && ch <= '7') {
      let v = ch.charCodeAt(0) - 0x30;
      for (let k = 0; k < 2 && cps[i] !== undefined && cps[i]! >= '0' && cps[i]! <= '7'; k++) {
        v = v * 8 + (cps[i]!.charCodeAt(0) - 0x30);
        i++;
      }
      return { cp: v };
    }
    if (ch === 'x') {
      if (cps[i] === '{') {
        const close = cps.indexOf('}', i);
        const digits = close < 0 ? '' : cps.slice(i + 1, close).join('');
        if (close < 0 || !/^[0-9A-Fa-f]+$/.test(digits) || parseInt(digits, 16) > MAX_RUNE) fail('invalid escape sequence `\\x{`');
        i = close + 1;
        return { cp: parseInt(digits, 16) };
      }
      const digits = cps.slice(i, i + 2).join('');
      if (!/^[0-9A-Fa-f]{2}$/.test(digits)) fail('invalid escape sequence `\\x`');
      i += 2;
      return { cp: parseInt(digits, 16) };
    }
    const simple: Record<string, number> = { a: 7, f: 12, t: 9, n: 10, r: 13, v: 11 };
    if (simple[ch] !== undefined) return { cp: simple[ch] };
    const lower = ch.toLowerCase();
    if (perlClasses[lower] !== undefined && (ch === lower || ch === lower.toUpperCase())) {
      const base = perlClasses[lower];
      return { ranges: ch === lower ? base : negate(base) };
    }
    if (!inClass) {
      if (ch === 'b') return { assertion: '\\b' };
      if (ch === 'B') return { assertion: '\\B' };
      if (ch === 'A') return { assertion: '^' };
      if (ch === 'z') return { assertion: '$' };
      if (ch === 'Q') {
        let lit = '';
        while (i < cps.length && !(cps[i] === '\\' && cps[i + 1] === 'E')) lit += cps[i++];
        if (i < cps.length) i += 2;
        return { literal: lit };
      }
    }
    if (ch === 'p' || ch === 'P') fail('unsupported Unicode class escape');
    const code = ch.codePointAt(0)!;
    if (code < 0x80 && !isAlnum(ch)) return { cp: code };
    return fail(`invalid escape sequence \`\\${ch}\``);
  };

  const parseClass = (): void => {
    // cps[i] is the char after `[`
    let negated = false;
    if (cps[i] === '^') {
      negated = true;
      i++;
    }
    const ranges: Range[] = [];
    let first = true;
    for (;;) {
      const c = cps[i];
      if (c === undefined) fail('missing closing ]');
      if (c === ']' && !first) {
        i++;
        break;
      }
      first = false;
      if (c === '[' && cps[i + 1] === ':') {
        const end = cps.indexOf(':', i + 2);
        if (end > 0 && cps[end + 1] === ']') {
          let name = cps.slice(i + 2, end).join('');
          let neg = false;
          if (name.startsWith('^')) {
            neg = true;
            name = name.slice(1);
          }
          const cls = posixClasses[name];
          if (!cls) fail(`invalid character class range \`[:${name}:]\``);
          ranges.push(...(neg ? negate(cls!) : cls!));
          i = end + 2;
          continue;
        }
      }
      const readChar = (): number | Range[] => {
        const ch = cps[i];
        if (ch === undefined) return fail('missing closing ]');
        if (ch === '\\') {
          i++;
          const e = parseEscape(true);
          if (e.ranges) return e.ranges;
          if (e.cp === undefined) return fail('invalid escape sequence in class');
          return e.cp;
        }
        i++;
        return ch.codePointAt(0)!;
      };
      const lo = readChar();
      if (typeof lo !== 'number') {
        ranges.push(...lo);
        continue;
      }
      let hi = lo;
      if (cps[i] === '-' && cps[i + 1] !== undefined && cps[i + 1] !== ']') {
        i++;
        const h = readChar();
        if (typeof h !== 'number') return fail('invalid character class range');
        hi = h;
        if (hi < lo) fail('invalid character class range');
      }
      ranges.push([lo, hi]);
    }
    atom(classSource(ranges, negated));
  };

  while (i < cps.length) {
    const c = cps[i]!;
    switch (c) {
      case '\\': {
        i++;
        const e = parseEscape(false);
        if (e.assertion !== undefined) atom(e.assertion, true);
        else if (e.ranges) atom(classSource(e.ranges, false));
        else if (e.literal !== undefined) {
          if (e.literal.length > 0) atom(`(?:${[...e.literal].map((x) => hex(x.codePointAt(0)!)).join('')})`);
        } else atom(hex(e.cp!));
        break;
      }
      case '[':
        i++;
        parseClass();
        break;
      case '(': {
        i++;
        if (cps[i] === '?') {
          if (cps[i + 1] === ':') {
            i += 2;
          } else if (cps[i + 1] === 'P' && cps[i + 2] === '<') {
            const close = cps.indexOf('>', i);
            if (close < 0) fail('invalid named capture');
            i = close + 1;
          } else if (cps[i + 1] === '<') {
            const close = cps.indexOf('>', i);
            if (close < 0) fail('invalid named capture');
            i = close + 1;
          } else {
            fail('unsupported inline flags');
          }
        }
        depthStack.push(out.length);
        out += '(?:';
        atomStart = -1;
        lastRepeat = 'none';
        break;
      }
      case ')': {
        i++;
        const start = depthStack.pop();
        if (start === undefined) fail('unexpected )');
        out += ')';
        atomStart = start!;
        atomIsAssertion = false;
        lastRepeat = 'none';
        break;
      }
      case '|':
        i++;
        out += '|';
        atomStart = -1;
        lastRepeat = 'none';
        break;
      case '*':
      case '+':
      case '?':
        i++;
        repeat(c);
        break;
      case '{': {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(cps.slice(i, i + 16).join(''));
        if (m) {
          const min = Number(m[1]);
          const max = m[2] === undefined ? min : m[3] === '' ? -1 : Number(m[3]);
          if (min > 1000 || max > 1000 || (max >= 0 && max < min)) fail(`invalid repeat count \`${m[0]}\``);
          i += m[0].length;
          repeat(m[0]);
        } else {
          i++;
          atom('\\{');
        }
        break;
      }
      case '}':
        i++;
        atom('\\}');
        break;
      case '.':
        i++;
        atom('[^\\n]');
        break;
      case '^':
        i++;
        atom('^', true);
        break;
      case '$':
        i++;
        atom('$', true);
        break;
      default:
        i++;
        atom(hex(c.codePointAt(0)!));
    }
  }
  if (depthStack.length > 0) fail('missing closing )');
  try {
    new RegExp(out, 'u');
  } catch (e) {
    throw new GoPatternError(`cannot translate regular expression \`${src}\`: ${(e as Error).message}`);
  }
  return out;
}
