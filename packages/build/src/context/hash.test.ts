import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SlipwayError } from '@slipway/oci';
import { hashContext, type ContextWarning } from './hash.js';

function tree(files: Record<string, string | null>, mode = 0o644): string {
  const root = mkdtempSync(join(tmpdir(), 'slipway-ctx-'));
  for (const [path, content] of Object.entries(files)) {
    const abs = join(root, path);
    if (content === null) {
      mkdirSync(abs, { recursive: true });
      continue;
    }
    mkdirSync(join(abs, '..'), { recursive: true });
    writeFileSync(abs, content, { mode });
    if (mode !== 0o644) chmodSync(abs, mode); // the umask may have cut the group bits
  }
  return root;
}

const base = { Dockerfile: 'FROM scratch\nCOPY . /ctx/\n', 'src/main.go': 'package main\n', 'src/run.sh': '#!/bin/sh\n', 'empty/': null };

function clean(...dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

test('umask 022 and 002 checkouts hash equal; the executable bit counts', async () => {
  const a = tree(base, 0o644);
  const b = tree(base, 0o664);
  try {
    for (const root of [a, b]) chmodSync(join(root, 'empty'), root === a ? 0o755 : 0o775);
    chmodSync(join(a, 'src/run.sh'), 0o755);
    chmodSync(join(b, 'src/run.sh'), 0o775);
    const ha = await hashContext({ context: a, cacheDir: false });
    const hb = await hashContext({ context: b, cacheDir: false });
    assert.match(ha.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(ha.digest, hb.digest);
    assert.equal(ha.files, 3);
    assert.equal(ha.directories, 2);
    chmodSync(join(b, 'src/run.sh'), 0o664);
    assert.notEqual((await hashContext({ context: b, cacheDir: false })).digest, ha.digest);
  } finally {
    clean(a, b);
  }
});

test('stat cache: touch keeps the digest, an edit is named in changes, racy entries are re-hashed', async () => {
  const root = tree(base);
  const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-cache-'));
  try {
    // Files written an hour ago: not racy once the cache is written now.
    const old = new Date(Date.now() - 3600_000);
    for (const f of ['Dockerfile', 'src/main.go', 'src/run.sh']) utimesSync(join(root, f), old, old);
    const first = await hashContext({ context: root, cacheDir });
    assert.equal(first.changes, undefined);
    assert.equal(first.stats.hashedFiles, 3);
    // The files' ctimes are from this second, so they are racy until the cache is older than
    // them; pretend the cache was written an hour from now (the racy rule is tested below).
    const [cacheFile] = readdirSync(cacheDir).filter((f) => f.endsWith('.bin')).map((f) => join(cacheDir, f));
    assert.ok(cacheFile);
    const settle = (): void => {
      const future = new Date(Date.now() + 3600_000);
      utimesSync(cacheFile, future, future);
    };
    settle();

    const warm = await hashContext({ context: root, cacheDir });
    assert.equal(warm.digest, first.digest);
    assert.deepEqual([warm.stats.hashedFiles, warm.stats.cachedFiles], [0, 3]);
    assert.deepEqual(warm.changes, { added: [], removed: [], changed: [], dockerfileChanged: false });

    const later = new Date(Date.now() - 1800_000);
    utimesSync(join(root, 'src/main.go'), later, later);
    const touched = await hashContext({ context: root, cacheDir });
    assert.equal(touched.digest, first.digest);
    assert.equal(touched.stats.hashedFiles, 1);
    assert.deepEqual(touched.changes?.changed, []);
    settle();

    writeFileSync(join(root, 'src/main.go'), 'package lib\n'); // same size, new content
    writeFileSync(join(root, 'added.txt'), 'x');
    rmSync(join(root, 'empty'), { recursive: true });
    const edited = await hashContext({ context: root, cacheDir });
    assert.notEqual(edited.digest, first.digest);
    assert.deepEqual(edited.changes, { added: ['added.txt'], removed: ['empty'], changed: ['src/main.go'], dockerfileChanged: false });
    assert.equal(edited.stats.hashedFiles, 2);

    // Racy rule (git's): an entry whose mtime or ctime is not older than the second the cache was
    // written is re-hashed even when its stat is unchanged. The cache file's own mtime is that
    // instant, so set it by hand to make both outcomes deterministic.
    const files = edited.files;
    const past = new Date(Date.now() - 7200_000);
    utimesSync(cacheFile, past, past); // "written" before every file's ctime: all entries racy
    const racy = await hashContext({ context: root, cacheDir });
    assert.deepEqual([racy.stats.hashedFiles, racy.stats.cachedFiles, racy.digest], [files, 0, edited.digest]);
    settle(); // written after everything: nothing racy, nothing read
    const calm = await hashContext({ context: root, cacheDir });
    assert.deepEqual([calm.stats.hashedFiles, calm.stats.cachedFiles, calm.digest], [0, files, edited.digest]);
  } finally {
    clean(root, cacheDir);
  }
});

test('Dockerfile content counts, its path does not; <Dockerfile>.dockerignore wins', async () => {
  const root = tree({ 'a.txt': 'a', 'b.txt': 'b', '.dockerignore': 'a.txt\n' });
  const outside = tree({ 'app.Dockerfile': 'FROM scratch\n', 'app.Dockerfile.dockerignore': 'b.txt\n', 'other/app.Dockerfile': 'FROM scratch\n' });
  try {
    const h1 = await hashContext({ context: root, dockerfile: join(outside, 'app.Dockerfile'), cacheDir: false, listEntries: true });
    assert.equal(h1.ignoreFile, join(outside, 'app.Dockerfile.dockerignore'));
    assert.deepEqual(h1.entries?.map((e) => e.path), ['.dockerignore', 'a.txt']);
    const h2 = await hashContext({ context: root, dockerfile: join(outside, 'other/app.Dockerfile'), cacheDir: false, listEntries: true });
    assert.equal(h2.ignoreFile, join(root, '.dockerignore'));
    assert.deepEqual(h2.entries?.map((e) => e.path), ['.dockerignore', 'b.txt']);
    const inline = await hashContext({ context: root, dockerfile: { inline: 'FROM scratch\n' }, cacheDir: false });
    assert.equal(inline.digest, h2.digest, 'same content, same ignore file: same digest wherever the Dockerfile lives');
    assert.notEqual((await hashContext({ context: root, dockerfile: { inline: 'FROM scratch\nUSER 1\n' }, cacheDir: false })).digest, h2.digest);
    await assert.rejects(hashContext({ context: root, cacheDir: false }), (e: unknown) => SlipwayError.is(e) && e.code === 'SLIPWAY_CONTEXT' && /Dockerfile/.test(e.message));
  } finally {
    clean(root, outside);
  }
});

test('named contexts use their own .dockerignore', async () => {
  const main = tree(base);
  const lib = tree({ '.dockerignore': 'secret\n', secret: 's', 'lib.go': 'x' });
  try {
    const h = await hashContext({ context: main, namedContexts: { lib, img: 'docker-image://alpine:3' }, cacheDir: false, listEntries: true });
    assert.deepEqual(h.entries?.filter((e) => e.context === 'lib').map((e) => e.path), ['.dockerignore', 'lib.go']);
    writeFileSync(join(lib, 'secret'), 'changed');
    assert.equal((await hashContext({ context: main, namedContexts: { lib, img: 'docker-image://alpine:3' }, cacheDir: false })).digest, h.digest);
    writeFileSync(join(lib, 'lib.go'), 'y');
    assert.notEqual((await hashContext({ context: main, namedContexts: { lib, img: 'docker-image://alpine:3' }, cacheDir: false })).digest, h.digest);
    assert.notEqual((await hashContext({ context: main, namedContexts: { lib, img: 'docker-image://alpine:4' }, cacheDir: false })).digest, h.digest);
  } finally {
    clean(main, lib);
  }
});

test('symlinks hash their text; FIFOs and sockets are skipped with a warning', async () => {
  const root = tree(base);
  const server = createServer();
  try {
    symlinkSync('src/main.go', join(root, 'link'));
    symlinkSync('/nonexistent/abs', join(root, 'dangling'));
    spawnSync('mkfifo', [join(root, 'fifo')]);
    await new Promise<void>((resolve) => server.listen(join(root, 'sock'), resolve));
    const warnings: ContextWarning[] = [];
    const h = await hashContext({ context: root, cacheDir: false, listEntries: true, onWarning: (w) => warnings.push(w) });
    assert.deepEqual(h.entries?.filter((e) => e.type === 'symlink').map((e) => [e.path, e.target]), [['dangling', '/nonexistent/abs'], ['link', 'src/main.go']]);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.code, 'special-files');
    assert.deepEqual(warnings[0]!.paths, ['fifo', 'sock']);
    assert.deepEqual(h.warnings, [warnings[0]!.message]);
  } finally {
    server.close();
    clean(root);
  }
});

test('entries come in bytewise UTF-8 order, including astral characters', async () => {
  const names = ['a', 'a b', 'a.txt', 'a-c', 'a\u{e000}', 'a\u{1f600}', 'é', 'Z', 'a#!x'];
  const root = tree(Object.fromEntries(names.map((n) => [`${n}/f`, n])));
  try {
    const h = await hashContext({ context: root, dockerfile: { inline: '' }, cacheDir: false, listEntries: true });
    const paths = h.entries!.map((e) => e.path);
    const expected = names.flatMap((n) => [n, `${n}/f`]).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    assert.deepEqual(paths, expected);
  } finally {
    clean(root);
  }
});

test('a big context walked and hashed by workers equals an independent listing', async () => {
  const files: Record<string, string> = {};
  for (let d = 0; d < 30; d++) for (let f = 0; f < 120; f++) files[`d${d}/s${f % 3}/f-${f}.txt`] = `${d}:${f}`;
  const root = tree(files);
  try {
    const one = await hashContext({ context: root, dockerfile: { inline: '' }, cacheDir: false, concurrency: 1, listEntries: true });
    const four = await hashContext({ context: root, dockerfile: { inline: '' }, cacheDir: false, concurrency: 4, parallelWalk: true, hugeContext: { files: 1000 } });
    assert.equal(one.digest, four.digest);
    assert.equal(one.files, 3600);
    const listing = (readdirSync(root, { recursive: true }) as string[]).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    assert.deepEqual(one.entries!.map((e) => e.path), listing);
    assert.equal(four.warnings.length, 1);
    assert.match(four.warnings[0]!, /is large: 3600 files/);
    assert.equal(four.biggestDirectories?.length, 10);
  } finally {
    clean(root);
  }
});

test('an unreadable file is a SLIPWAY_CONTEXT error naming it', async (t) => {
  const root = tree(base);
  chmodSync(root, 0o755);
  chmodSync(join(root, 'src/main.go'), 0o000);
  try {
    if (process.getuid?.() !== 0) {
      await assert.rejects(hashContext({ context: root, cacheDir: false }), (e: unknown) => SlipwayError.is(e) && e.code === 'SLIPWAY_CONTEXT' && e.message.includes('"src/main.go"'));
      return;
    }
    // Root reads anything: run the hash in a child process without the capabilities that let it.
    // setpriv (util-linux) keeps uid 0, so the checkout stays readable wherever it is (a clone under
    // a 0700 temp directory is not readable by "nobody"); without setpriv, run as nobody.
    const module = fileURLToPath(new URL('./index.js', import.meta.url));
    const script = `import('${module}').then((m) => m.hashContext({ context: ${JSON.stringify(root)}, cacheDir: false })).then(() => process.exit(0), (e) => { console.log(JSON.stringify({ code: e.code, message: e.message })); process.exit(1); });`;
    const node = [process.execPath, '--input-type=module', '-e', script];
    const dropCaps = ['--inh-caps=-dac_override,-dac_read_search', '--bounding-set=-dac_override,-dac_read_search'];
    const child = existsSync('/usr/bin/setpriv')
      ? spawnSync('/usr/bin/setpriv', [...dropCaps, ...node], { encoding: 'utf8', cwd: '/' })
      : spawnSync(node[0]!, node.slice(1), { uid: 65534, gid: 65534, encoding: 'utf8', cwd: '/' });
    if (child.error) return t.skip(`cannot run a child without root's read-anything rights: ${child.error.message}`);
    assert.equal(child.status, 1, child.stderr);
    const e = JSON.parse(child.stdout) as { code: string; message: string };
    assert.equal(e.code, 'SLIPWAY_CONTEXT');
    assert.match(e.message, /cannot read "src\/main\.go" in build context/);
  } finally {
    clean(root);
  }
});

test('cancellation and bad input', async () => {
  const root = tree(base);
  try {
    await assert.rejects(hashContext({ context: root, cacheDir: false, signal: AbortSignal.abort() }), (e: unknown) => SlipwayError.is(e) && e.code === 'SLIPWAY_ABORTED');
    await assert.rejects(hashContext({ context: join(root, 'missing'), cacheDir: false }), (e: unknown) => SlipwayError.is(e) && e.code === 'SLIPWAY_CONTEXT' && /does not exist/.test(e.message));
    await assert.rejects(hashContext({ context: join(root, 'Dockerfile'), cacheDir: false }), /not a directory/);
    writeFileSync(join(root, '.dockerignore'), 'ok\n!\n');
    await assert.rejects(hashContext({ context: root, cacheDir: false }), (e: unknown) => SlipwayError.is(e) && e.code === 'SLIPWAY_CONTEXT' && /illegal exclusion pattern/.test(e.message));
  } finally {
    clean(root);
  }
});

test('a corrupt or truncated stat cache is ignored and rewritten', async () => {
  const root = tree(base);
  const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-cache-'));
  try {
    const first = await hashContext({ context: root, cacheDir });
    const [file] = readdirSync(cacheDir).filter((f) => f.endsWith('.bin'));
    assert.ok(file);
    for (const garbage of [Buffer.from('not a cache'), Buffer.alloc(0), Buffer.from('SLWCTX\x00\x01\xff\xff\xff\xff', 'latin1')]) {
      writeFileSync(join(cacheDir, file), garbage);
      const again = await hashContext({ context: root, cacheDir });
      assert.equal(again.digest, first.digest);
      assert.equal(again.changes, undefined);
      assert.equal(again.stats.hashedFiles, first.files);
    }
  } finally {
    clean(root, cacheDir);
  }
});

test('pruneCache drops stale and excess stat caches and old temp files', async () => {
  const { pruneCache } = await import('./cache.js');
  const dir = mkdtempSync(join(tmpdir(), 'slipway-prune-'));
  try {
    const now = Date.now();
    const make = (name: string, ageMs: number): void => {
      writeFileSync(join(dir, name), 'x');
      const t = new Date(now - ageMs);
      utimesSync(join(dir, name), t, t);
    };
    make('old.bin', 40 * 86400_000);
    for (let i = 0; i < 5; i++) make(`recent-${i}.bin`, i * 1000);
    make('left.tmp', 2 * 3600_000);
    make('fresh.tmp', 1000);
    make('other.txt', 40 * 86400_000);
    assert.equal(await pruneCache(dir, { maxFiles: 3, now }), 4);
    assert.deepEqual(readdirSync(dir).sort(), ['fresh.tmp', 'other.txt', 'recent-0.bin', 'recent-1.bin', 'recent-2.bin']);
  } finally {
    clean(dir);
  }
});

/** 30 directories × (3 subdirectories + 120 files): past the main thread's first walk budget. */
function bigTree(tag: string): string {
  const files: Record<string, string> = {};
  for (let d = 0; d < 30; d++) for (let f = 0; f < 120; f++) files[`d${d}/s${f % 3}/f-${f}.txt`] = `${tag}:${d}:${f}`;
  return tree(files);
}

test('parked workers are reused by the next hash of another context, which still hashes its own files', async () => {
  const { warmWorkers, closeIdleWorkers } = await import('./pool.js');
  const a = bigTree('a');
  const b = bigTree('b');
  try {
    const alone = await hashContext({ context: b, dockerfile: { inline: '' }, cacheDir: false, concurrency: 1 });
    const first = await hashContext({ context: a, dockerfile: { inline: '' }, cacheDir: false, concurrency: 2, parallelWalk: true });
    assert.ok(warmWorkers() > 0, 'the pool of a finished hash is parked');
    // The parked workers still know context id 0 as `a`: the next hash must redefine it.
    const second = await hashContext({ context: b, dockerfile: { inline: '' }, cacheDir: false, concurrency: 2 });
    assert.equal(second.digest, alone.digest);
    assert.notEqual(second.digest, first.digest);
    assert.equal(second.files, 3600);
  } finally {
    await closeIdleWorkers();
    clean(a, b);
  }
});

test('a parked pool bigger than the next hash asks for is not reused (concurrency is honoured)', async () => {
  const { warmWorkers, closeIdleWorkers } = await import('./pool.js');
  const root = bigTree('conc');
  try {
    const wide = await hashContext({ context: root, dockerfile: { inline: '' }, cacheDir: false, concurrency: 3, parallelWalk: true });
    assert.equal(warmWorkers(), 3);
    const narrow = await hashContext({ context: root, dockerfile: { inline: '' }, cacheDir: false, concurrency: 1, parallelWalk: true });
    assert.equal(narrow.digest, wide.digest);
    // The one-worker hash ran on a pool of its own size, and that is what is parked now.
    assert.equal(warmWorkers(), 1);
    // A wider hash may take a smaller parked pool and grow it.
    await hashContext({ context: root, dockerfile: { inline: '' }, cacheDir: false, concurrency: 2, parallelWalk: true });
    assert.equal(warmWorkers(), 2);
  } finally {
    await closeIdleWorkers();
    clean(root);
  }
});

test('a parked worker that died before the next hash costs a retry with new workers, not a failed hash', async () => {
  const { warmWorkers, closeIdleWorkers, loseParkedWorkerForTests } = await import('./pool.js');
  const root = bigTree('lost');
  try {
    const before = await hashContext({ context: root, dockerfile: { inline: '' }, cacheDir: false, concurrency: 2, parallelWalk: true });
    assert.equal(warmWorkers(), 2);
    // The next hash takes the parked pool and one of its workers ends right then, its 'exit' not yet delivered.
    assert.equal(loseParkedWorkerForTests(), true);
    assert.equal(warmWorkers(), 2);
    const timings: string[] = [];
    const after = await hashContext({ context: root, dockerfile: { inline: '' }, cacheDir: false, concurrency: 2, parallelWalk: true, onTiming: (phase) => timings.push(phase) });
    // Two attempts: the first on the reused pool (lost its worker), the retry on a fresh one.
    assert.equal(timings.filter((phase) => phase === 'prepare').length, 2, timings.join(','));
    assert.equal(after.digest, before.digest);
    assert.equal(after.files, 3600);
    assert.equal(warmWorkers(), 2, 'the retry parked its own healthy pool');
  } finally {
    await closeIdleWorkers();
    clean(root);
  }
});

test('a parked pool does not keep the process alive', () => {
  const root = bigTree('exit');
  try {
    const script = `import { hashContext } from ${JSON.stringify(new URL('./hash.js', import.meta.url).href)};
const r = await hashContext({ context: ${JSON.stringify(root)}, dockerfile: { inline: '' }, cacheDir: false, concurrency: 2, parallelWalk: true });
process.stdout.write(r.digest + ' ' + Date.now());`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    const exitedAt = Date.now();
    assert.equal(child.status, 0, child.stderr);
    const [digest, hashedAt] = child.stdout.split(' ');
    assert.match(digest ?? '', /^sha256:[0-9a-f]{64}$/);
    // The idle timer is 5 s: exiting well before it after the hash means nothing parked holds the
    // loop. Measured from the hash, not from the start: a loaded machine starts and hashes slowly.
    assert.ok(exitedAt - Number(hashedAt) < 4000, `the process took ${exitedAt - Number(hashedAt)} ms to exit after hashing`);
  } finally {
    clean(root);
  }
});

test('an unchanged context reuses its recorded section digest; any change recomputes it', async () => {
  const root = tree(base);
  const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-cache-'));
  const { loadCache } = await import('./cache.js');
  try {
    const cold = await hashContext({ context: root, cacheDir });
    assert.equal(cold.digest, (await hashContext({ context: root, cacheDir: false })).digest);
    const [name] = readdirSync(cacheDir).filter((f) => f.endsWith('.bin'));
    const cacheFile = join(cacheDir, name!);
    // As above: make every entry older than the cache, so the next run is all stat-cache hits.
    const settle = (): void => {
      const future = new Date(Date.now() + 3600_000);
      utimesSync(cacheFile, future, future);
    };
    const recorded = (await loadCache(cacheFile))?.sectionDigest;
    assert.match(recorded ?? '', /^[0-9a-f]{64}$/);
    settle();
    const warm = await hashContext({ context: root, cacheDir });
    assert.deepEqual([warm.digest, warm.stats.cachedFiles, warm.stats.hashedFiles], [cold.digest, 3, 0]);
    // The recorded section digest is what the warm run used: a forged one shows through.
    const bytes = readFileSync(cacheFile);
    writeFileSync(cacheFile, Buffer.from(bytes.toString('latin1').replace(recorded!, '0'.repeat(64)), 'latin1'));
    settle();
    assert.notEqual((await hashContext({ context: root, cacheDir })).digest, cold.digest);
    // A cache without a usable section digest (an older slipway) is recomputed, then upgraded.
    writeFileSync(cacheFile, Buffer.from(bytes.toString('latin1').replace(recorded!, 'x'.repeat(64)), 'latin1'));
    settle();
    assert.equal((await loadCache(cacheFile))?.sectionDigest, undefined);
    assert.equal((await hashContext({ context: root, cacheDir })).digest, cold.digest);
    assert.equal((await loadCache(cacheFile))?.sectionDigest, recorded);
    settle();

    // Each kind of change moves the digest, agreeing with an uncached hash, and back when undone.
    const changes: [string, () => void, () => void][] = [
      ['new empty directory', () => mkdirSync(join(root, 'new-dir')), () => rmSync(join(root, 'new-dir'), { recursive: true })],
      ['executable bit', () => chmodSync(join(root, 'src/main.go'), 0o755), () => chmodSync(join(root, 'src/main.go'), 0o644)],
      ['symlink', () => symlinkSync('src/main.go', join(root, 'link')), () => rmSync(join(root, 'link'))],
      ['removed file', () => rmSync(join(root, 'src/run.sh')), () => writeFileSync(join(root, 'src/run.sh'), '#!/bin/sh\n')],
    ];
    for (const [what, change, undo] of changes) {
      change();
      const changed = await hashContext({ context: root, cacheDir });
      assert.equal(changed.digest, (await hashContext({ context: root, cacheDir: false })).digest, what);
      assert.notEqual(changed.digest, cold.digest, what);
      settle();
      assert.equal((await hashContext({ context: root, cacheDir })).digest, changed.digest, `${what}, warm`);
      undo();
      assert.equal((await hashContext({ context: root, cacheDir })).digest, cold.digest, `${what} undone`);
      settle();
      assert.equal((await hashContext({ context: root, cacheDir })).digest, cold.digest, `${what} undone, warm`);
    }
  } finally {
    clean(root, cacheDir);
  }
});

test('an unchanged huge context reuses the directory figures its cache recorded; a change recomputes them', async () => {
  const root = tree({ Dockerfile: 'FROM scratch\n', 'small/a': 'a', 'small/b': 'b', 'big/blob': 'x'.repeat(5000) });
  const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-cache-'));
  const { loadCache } = await import('./cache.js');
  const huge = { files: 2 };
  try {
    const cold = await hashContext({ context: root, cacheDir, hugeContext: huge });
    assert.deepEqual(cold.biggestDirectories?.map((d) => d.path), ['big', 'small']);
    const [name] = readdirSync(cacheDir).filter((f) => f.endsWith('.bin'));
    const cacheFile = join(cacheDir, name!);
    const settle = (): void => {
      const future = new Date(Date.now() + 3600_000);
      utimesSync(cacheFile, future, future);
    };
    assert.deepEqual((await loadCache(cacheFile))?.directorySizes?.top, cold.biggestDirectories);
    settle();
    const warm = await hashContext({ context: root, cacheDir, hugeContext: huge });
    assert.equal(warm.stats.cachedFiles, 4);
    assert.deepEqual(warm.biggestDirectories, cold.biggestDirectories);
    assert.deepEqual(warm.warnings, cold.warnings);

    // The recorded figures are what the warm run used: forged ones show through…
    const bytes = readFileSync(cacheFile);
    writeFileSync(cacheFile, Buffer.from(bytes.toString('latin1').replace('"path":"big"', '"path":"bog"'), 'latin1'));
    settle();
    assert.deepEqual((await hashContext({ context: root, cacheDir, hugeContext: huge })).biggestDirectories?.map((d) => d.path), ['bog', 'small']);
    // …and any change to the entries recomputes them.
    writeFileSync(join(root, 'small/c'), 'y'.repeat(9000));
    const changed = await hashContext({ context: root, cacheDir, hugeContext: huge });
    assert.deepEqual(changed.biggestDirectories?.map((d) => [d.path, d.files]), [['small', 3], ['big', 1]]);
  } finally {
    clean(root, cacheDir);
  }
});
