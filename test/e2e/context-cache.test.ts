// The context hash on real checkouts and through the CLI: two git clones made under umask 022 and
// 002 hash equal; touching a file keeps the digest; an edit changes it and `--explain` names it; a
// racy entry (mtime not older than the cache) is re-read; `--list`, `--json`, exit codes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashContext } from '@slipway/build';
import { run, runChecked, skipUnless } from '../support/tools.js';

const CLI = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));

describe('context hash on real checkouts', () => {
  let work: string;
  let origin: string;
  let cacheHome: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'slipway-ctx-cache-'));
    origin = join(work, 'origin');
    cacheHome = join(work, 'xdg');
    await mkdir(join(origin, 'src/lib'), { recursive: true });
    await mkdir(join(origin, 'node_modules/pkg'), { recursive: true });
    await writeFile(join(origin, 'Dockerfile'), 'FROM scratch\nCOPY . /app/\n');
    await writeFile(join(origin, '.dockerignore'), '.git\nnode_modules\n*.log\n');
    await writeFile(join(origin, 'src/main.go'), 'package main\n');
    await writeFile(join(origin, 'src/lib/util.go'), 'package lib\n');
    await writeFile(join(origin, 'run.sh'), '#!/bin/sh\necho hi\n');
    await chmod(join(origin, 'run.sh'), 0o755);
    await writeFile(join(origin, 'node_modules/pkg/index.js'), 'x');
    await writeFile(join(origin, 'debug.log'), 'noise');
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return run(process.execPath, [CLI, 'hash-context', ...args], { env: { XDG_CACHE_HOME: cacheHome, ...env }, timeoutMs: 120_000 });
  }

  test('clones under umask 022 and 002 hash equal (and their modes really differ)', async (t) => {
    if (!skipUnless(t, 'git', 'cloning a checkout under two umasks')) return;
    const git = (args: string[], cwd: string): Promise<unknown> => runChecked('git', args, { cwd, env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@localhost', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@localhost' } });
    await git(['init', '-q'], origin);
    await git(['add', '-A', '--force'], origin);
    await git(['commit', '-q', '-m', 'origin'], origin);
    for (const umask of ['022', '002']) await runChecked('/bin/sh', ['-c', `umask ${umask} && git clone -q "${origin}" "${join(work, `clone-${umask}`)}"`]);
    const a = join(work, 'clone-022');
    const b = join(work, 'clone-002');
    assert.equal((await stat(join(a, 'src/main.go'))).mode & 0o777, 0o644);
    assert.equal((await stat(join(b, 'src/main.go'))).mode & 0o777, 0o664);
    assert.equal((await stat(join(b, 'run.sh'))).mode & 0o777, 0o775);
    const ha = await hashContext({ context: a, cacheDir: false, listEntries: true });
    const hb = await hashContext({ context: b, cacheDir: false });
    assert.equal(ha.digest, hb.digest);
    assert.deepEqual(ha.entries!.filter((e) => e.type === 'file').map((e) => `${e.path}${e.executable ? '*' : ''}`), ['.dockerignore', 'Dockerfile', 'run.sh*', 'src/lib/util.go', 'src/main.go']);
    // The CLI agrees with the library.
    const out = await cli(['--no-cache', b]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout.trim(), ha.digest);
  });

  test('touch keeps the digest; an edit changes it and --explain names it; racy entries are re-read', async () => {
    const ctx = join(work, 'edit');
    await mkdir(join(ctx, 'src'), { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY . /app/\n');
    await writeFile(join(ctx, 'src/a.txt'), 'alpha');
    await writeFile(join(ctx, 'src/b.txt'), 'bravo');
    const hourAgo = new Date(Date.now() - 3600_000);
    for (const f of ['Dockerfile', 'src/a.txt', 'src/b.txt']) await utimes(join(ctx, f), hourAgo, hourAgo);

    const first = JSON.parse((await cli(['--json', ctx])).stdout) as { digest: string; changes?: unknown; stats: { hashedFiles: number } };
    assert.match(first.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(first.changes, undefined);
    assert.equal(first.stats.hashedFiles, 3);
    // The cache was written this second and every file's ctime is this second: all racy once.
    const settle = JSON.parse((await cli(['--json', ctx])).stdout) as { stats: { hashedFiles: number } };
    assert.equal(settle.stats.hashedFiles <= 3, true);
    await new Promise((r) => setTimeout(r, 1100));
    await cli(['--json', ctx]); // written a second later than every ctime: nothing racy from now on
    const calm = JSON.parse((await cli(['--json', ctx])).stdout) as { digest: string; stats: { hashedFiles: number; cachedFiles: number } };
    assert.deepEqual([calm.digest, calm.stats.hashedFiles, calm.stats.cachedFiles], [first.digest, 0, 3]);

    // Touch: new mtime, same bytes → re-read, same digest, nothing "changed".
    const later = new Date(Date.now() - 1800_000);
    await utimes(join(ctx, 'src/a.txt'), later, later);
    const touched = JSON.parse((await cli(['--json', ctx])).stdout) as { digest: string; changes: { changed: string[] }; stats: { hashedFiles: number } };
    assert.equal(touched.digest, first.digest);
    assert.equal(touched.stats.hashedFiles, 1);
    assert.deepEqual(touched.changes.changed, []);

    // Racy: an mtime in the future is never older than the cache, so the file is re-read every time
    // even though its stat does not move (the window where an edit could hide behind equal stats).
    const future = new Date(Date.now() + 3600_000);
    await utimes(join(ctx, 'src/b.txt'), future, future);
    await new Promise((r) => setTimeout(r, 1100)); // a.txt's new ctime must fall out of the racy second
    await cli(['--json', ctx]);
    const racy = JSON.parse((await cli(['--json', ctx])).stdout) as { stats: { hashedFiles: number } };
    assert.equal(racy.stats.hashedFiles, 1);

    // Edit: same size, new content → new digest, named by --explain.
    await writeFile(join(ctx, 'src/a.txt'), 'alphA');
    await writeFile(join(ctx, 'src/new.txt'), 'n');
    const explained = await cli(['--explain', ctx]);
    assert.equal(explained.code, 0, explained.stderr);
    const lines = explained.stdout.trim().split('\n');
    assert.notEqual(lines[0], first.digest);
    assert.match(explained.stdout, /since the last run: 1 added, 0 removed, 1 changed/);
    assert.match(explained.stdout, /^ {2}\+ src\/new\.txt$/m);
    assert.match(explained.stdout, /^ {2}~ src\/a\.txt$/m);
    const again = await cli(['--explain', ctx]);
    assert.match(again.stdout, /nothing changed since the last run/);
    // The stat cache is one file per context under XDG_CACHE_HOME.
    assert.ok((await readdir(join(cacheHome, 'slipway', 'context'))).some((f) => f.endsWith('.bin')));
  });

  test('--list, --build-context, and exit codes', async () => {
    const ctx = join(work, 'list');
    const lib = join(work, 'list-lib');
    await mkdir(join(ctx, 'empty'), { recursive: true });
    await mkdir(lib, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\n');
    await writeFile(join(lib, 'x.go'), 'x');
    await writeFile(join(lib, '.dockerignore'), 'secret\n');
    await writeFile(join(lib, 'secret'), 's');
    const listed = await cli(['--list', '--no-cache', '--build-context', `lib=${lib}`, ctx]);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = listed.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    assert.deepEqual(rows.map((r) => [r[0], r.at(-1)]), [['file', 'Dockerfile'], ['dir', 'empty'], ['file', 'lib:.dockerignore'], ['file', 'lib:x.go']]);
    const missing = await cli([join(work, 'nope')]);
    // A context that does not exist is "not found" (exit 3), as a missing archive or image is.
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /build context ".*nope" does not exist/);
    const noDockerfile = await cli(['-f', 'absent.Dockerfile', ctx]);
    assert.equal(noDockerfile.code, 3, noDockerfile.stderr);
    assert.match(noDockerfile.stderr, /Dockerfile "absent\.Dockerfile" does not exist/);
    const json = await cli(['--json', join(work, 'nope')]);
    assert.equal((JSON.parse(json.stdout) as { error: { code: string } }).error.code, 'SLIPWAY_CONTEXT');
    assert.equal((await cli(['--bogus', ctx])).code, 2);
    assert.equal((await cli(['--build-context', 'novalue', ctx])).code, 2);
    await writeFile(join(ctx, '.dockerignore'), '[\n');
    const bad = await cli([ctx]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid pattern "\["/);
  });
});
