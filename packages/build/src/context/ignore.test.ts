import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goClean, goFilepathMatch, goRegexToJs, goTrimSpace, GoPatternError } from './go.js';
import { IgnorePatternError, PatternMatcher, parseIgnoreFile } from './ignore.js';

test('goClean follows filepath.Clean', () => {
  const cases: [string, string][] = [
    ['', '.'], ['.', '.'], ['./', '.'], ['/', '/'], ['//a//b/', '/a/b'], ['./foo', 'foo'], ['foo/', 'foo'],
    ['a/./b', 'a/b'], ['a/../b', 'b'], ['../a', '../a'], ['a/../../b', '../b'], ['/../a', '/a'], ['a/b/../..', '.'],
    ['!./foo', '!./foo'], ['**/', '**'], ['..', '..'], ['../..', '../..'], ['a/..', '.'],
  ];
  for (const [input, want] of cases) assert.equal(goClean(input), want, `Clean(${JSON.stringify(input)})`);
});

test('goTrimSpace trims what Go calls space, not what JavaScript does', () => {
  assert.equal(goTrimSpace('\t a \r\n'), 'a');
  assert.equal(goTrimSpace('\u0085a\u00a0'), 'a'); // NEL and NBSP are Unicode spaces in Go
  assert.equal(goTrimSpace('\ufeffa'), '\ufeffa'); // a BOM is not (JavaScript's trim() removes it)
});

test('goFilepathMatch reports malformed patterns like filepath.Match', () => {
  assert.equal(goFilepathMatch('*.go', 'a.go'), true);
  assert.equal(goFilepathMatch('*.go', 'a/b.go'), false);
  assert.equal(goFilepathMatch('[a-c]?', 'bz'), true);
  assert.equal(goFilepathMatch('[^a]', 'a'), false);
  for (const bad of ['[', 'a\\', '[a-]', '[]', '[z-a']) {
    assert.throws(() => goFilepathMatch(bad, 'a'), GoPatternError, bad);
  }
  // Go only validates up to the first failing chunk: "a*[" against "." fails on "a" first.
  assert.equal(goFilepathMatch('a*[', '.'), false);
});

test('goRegexToJs keeps RE2 semantics', () => {
  const match = (re: string, s: string): boolean => new RegExp(goRegexToJs(re), 'u').test(s);
  assert.equal(match('^a+b$', 'aab'), true);
  assert.equal(match('^a.b$', 'a\nb'), false); // `.` excludes only \n
  assert.equal(match('^a.b$', 'a\rb'), true); // (JavaScript's `.` also excludes \r)
  assert.equal(match('^[]a]$', ']'), true); // `]` first in a class is literal
  assert.equal(match('^[a-]$', '-'), true);
  assert.equal(match('^[[:digit:]]+$', '042'), true);
  assert.equal(match('^\\s$', '\u00a0'), false); // RE2 \s is ASCII only
  assert.equal(match('^x{2}$', 'xx'), true);
  assert.equal(match('^x{$', 'x{'), true); // not a repeat: a literal brace
  assert.equal(match('^a|b$', 'ax'), true);
  assert.equal(match('^?a', 'a'), true); // RE2 allows repeating an assertion
  assert.equal(match('^a??$', ''), true); // lazy optional
  assert.equal(match('^a??b$', 'ab'), true);
  assert.throws(() => goRegexToJs('a**'), GoPatternError);
  assert.throws(() => goRegexToJs('(a'), GoPatternError);
  assert.throws(() => goRegexToJs('\\1'), GoPatternError);
  assert.throws(() => goRegexToJs('x{1001}'), GoPatternError);
});

test('parseIgnoreFile mirrors ignorefile.ReadAll', () => {
  const text = '\ufeff# comment\n  # not a comment\n\n  node_modules  \r\n!  keep.txt\n/abs/path\n./dot/slash/\n!/x\n#c\n\t\n/\n';
  assert.deepEqual(parseIgnoreFile(text), ['# not a comment', 'node_modules', '!keep.txt', 'abs/path', 'dot/slash', '!x', '/']);
  assert.deepEqual(parseIgnoreFile('a\nb'), ['a', 'b']);
  assert.deepEqual(parseIgnoreFile(Buffer.from('x/../y\n')), ['y']);
  assert.throws(() => parseIgnoreFile(`${'a'.repeat(70_000)}\n`), IgnorePatternError);
});

test('PatternMatcher rejects a bare "!" and malformed patterns', () => {
  assert.throws(() => new PatternMatcher(['!'], 'buildkit'), /illegal exclusion pattern/);
  assert.throws(() => new PatternMatcher(['a['], 'buildkit'), IgnorePatternError);
  assert.throws(() => new PatternMatcher(['x\\'], 'legacy'), IgnorePatternError);
});

test('buildkit dialect: fast paths and parent results', () => {
  const pm = new PatternMatcher(['**.go', 'bar/a+b', 'docs/**', '!docs/keep', 'a^b'], 'buildkit');
  const ex = (p: string, parent: Uint8Array | null = null): boolean => pm.matchesWithParent(p, parent).excluded;
  assert.equal(ex('y.go'), true); // `**foo` is a suffix match in patternmatcher 0.6
  assert.equal(ex('bar/aab'), false); // `+` is escaped
  assert.equal(ex('bar/a+b'), true);
  assert.equal(ex('a^b'), true); // exact match: no regular expression involved
  const docs = pm.matchesWithParent('docs', null);
  assert.equal(docs.excluded, false); // `docs/**` is the prefix "docs/"
  assert.equal(ex('docs/a', docs.info), true);
  const keep = pm.matchesWithParent('docs/keep', docs.info);
  assert.equal(keep.excluded, false);
  assert.equal(ex('docs/keep/x', keep.info), false);
  assert.equal(pm.onlyPrefixExceptions, true);
  assert.equal(pm.mayReincludeUnder('docs'), true);
  assert.equal(pm.mayReincludeUnder('bar'), false);
  const wild = new PatternMatcher(['node_modules', '!**/keep.txt'], 'buildkit');
  assert.equal(wild.onlyPrefixExceptions, false);
  assert.equal(wild.mayReincludeUnder('node_modules'), true);
});

test('legacy dialect: raw regular-expression characters and one-parent matching', () => {
  const pm = new PatternMatcher(['**.go', 'bar/a+b', 'node_modules', '!**/keep.txt', 'a^b'], 'legacy');
  assert.equal(pm.matchesLegacy('y.go'), false); // `(.*/)?\.go`: only a file named ".go"
  assert.equal(pm.matchesLegacy('.go'), true);
  assert.equal(pm.matchesLegacy('bar/aab'), true); // `+` is a live quantifier in 20.10
  assert.equal(pm.matchesLegacy('bar/a+b'), false);
  assert.equal(pm.matchesLegacy('a^b'), false);
  assert.equal(pm.matchesLegacy('node_modules/x/y'), true);
  assert.equal(pm.matchesLegacy('node_modules/x/keep.txt'), false);
  // …but the 20.10 walker never gets there: the prefix check prunes node_modules.
  assert.equal(pm.mayReincludeUnder('node_modules'), false);
  const trailing = new PatternMatcher(['build/*', '!build/out/**'], 'legacy');
  assert.equal(trailing.matchesLegacy('build/out'), true);
  assert.equal(trailing.matchesLegacy('build/out/bin'), false);
  const deep = new PatternMatcher(['**/node_modules'], 'legacy');
  // Matches() checks only the parent at the pattern's depth (2): "a/b" — not "a/b/node_modules".
  assert.equal(deep.matchesLegacy('a/b/node_modules/x'), false);
  assert.equal(deep.matchesLegacy('a/node_modules/x'), true);
});

test('ignoreDialectForDockerCli: 20.10 is legacy, buildx-era clients are buildkit', async () => {
  const { ignoreDialectForDockerCli } = await import('./ignore.js');
  assert.equal(ignoreDialectForDockerCli('20.10.24+dfsg1'), 'legacy');
  assert.equal(ignoreDialectForDockerCli('19.03.15'), 'legacy');
  assert.equal(ignoreDialectForDockerCli('24.0.7'), 'buildkit');
  assert.equal(ignoreDialectForDockerCli('v28.5.2'), 'buildkit');
  assert.equal(ignoreDialectForDockerCli('garbage'), 'legacy');
});

test('buildah dialect: imagebuilder parsing, containers/storage matching, the copier\'s descent rule', async () => {
  const { parseIgnoreFileBuildah } = await import('./ignore.js');
  // `#` only in the first byte (a BOM or a space before it makes a pattern); every edge `/` trimmed.
  assert.deepEqual(parseIgnoreFileBuildah('\ufeff# bom\n# c\n #sp\n//x//\n\n!/k\r\n'), ['\ufeff# bom', ' #sp', 'x', '!/k\r']);
  const m = (lines: string, dialect: 'buildah' | 'legacy' = 'buildah'): PatternMatcher =>
    new PatternMatcher(dialect === 'buildah' ? parseIgnoreFileBuildah(lines) : parseIgnoreFile(lines), dialect);
  const everything = (extra: string): PatternMatcher => m(`*\n${extra}\n`);
  assert.equal(everything('!/keep').matchesLegacy('keep'), false, '`!/keep` re-includes keep');
  assert.equal(everything('!./keep').matchesLegacy('keep'), false, 'a `!` rest is cleaned again');
  assert.equal(everything('!  keep').matchesLegacy('keep'), true, 'spaces after `!` stay in the pattern');
  assert.equal(everything('!\ufeffkeep').matchesLegacy('keep'), false, 'text/scanner drops a leading BOM');
  assert.equal(m(' /x').matchesLegacy('x'), false, 'a space before `/` keeps the slash: the pattern matches nothing');
  assert.equal(m('\ufeff# c').matchesLegacy('# c'), true, 'a BOM before `#` is a pattern');
  assert.equal(m('a+b').matchesLegacy('aab'), true, '`+` is live regular-expression syntax, as in the legacy matcher');
  // Descent into an excluded directory: a plain string prefix of a `!` pattern's text.
  assert.equal(m('fo\n!fo*/keep').mayReincludeUnder('fo'), true);
  assert.equal(m('fo\n!f*/keep').mayReincludeUnder('fo'), false);
  assert.equal(m('fo\n!fo*/keep', 'legacy').mayReincludeUnder('fo'), false, 'the legacy walker compares whole components');
  assert.throws(() => m('!'), IgnorePatternError);
});
