// Oracle test for the build-context hash: for tricky contexts, the set of paths slipway hashes must
// equal the set a real BuildKit puts in the image for `COPY . /ctx/` (FROM scratch, exported as a
// tar), in both .dockerignore dialects:
//   legacy   — the Docker 20.10 CLI (`DOCKER_BUILDKIT=1 /usr/bin/docker build`, its fsutil walker);
//   buildkit — buildctl + buildkitd built from current BuildKit (fsutil FilterFS, patternmatcher 0.6).
// File contents, executable bits and symlink texts are compared too.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { extract } from 'tar-stream';
import { hashContext, type ContextHashResult, type ContextWarning, type IgnoreDialect } from '@slipway/build';
import { DOCKER_CLI, run, runChecked, skipUnlessDocker } from '../support/tools.js';
import { BUILDCTL, skipUnlessBuildKit, startBuildkitd, type Buildkitd } from './build-harness.js';

type Node = string | { mode: number; content: string } | { dir: true } | { link: string } | { hardlink: string } | { fifo: true };

interface Case {
  name: string;
  files: Record<string, Node>;
  /** Dockerfile location relative to the context (default "Dockerfile"). */
  dockerfile?: string;
  /** Named contexts (buildkit dialect only: Docker 20.10 has no --build-context). */
  named?: Record<string, Record<string, Node>>;
  /** The dialects where the engine drops specials (FIFOs) instead of copying them. */
  dropsSpecials?: IgnoreDialect[];
}

const DOCKERFILE = 'FROM scratch\nCOPY . /ctx/\n';

const cases: Case[] = [
  {
    name: 're-includes into ignored directories',
    files: {
      '.dockerignore': 'node_modules\n!node_modules/keep\n!**/keep.txt\nvendor\n!vendor/deep\nbuild/*\n!build/out/**\n',
      'node_modules/a/index.js': 'a', 'node_modules/a/keep.txt': 'k', 'node_modules/keep/x.js': 'x', 'node_modules/keep/sub/y.js': 'y',
      'src/keep.txt': 'k', 'src/app.js': 'app', 'vendor/deep/er/keep.txt': 'k', 'vendor/other.go': 'o',
      'build/tmp/t': 't', 'build/out/bin/app': 'bin', 'build/out.txt': 'o',
    },
  },
  {
    name: 'double stars, trailing globs and trailing slashes',
    files: {
      '.dockerignore': '**/*.log\n**/tmp\na/**/b\ndocs/**\n!docs/sub/**\n**.md\nout/\ndir/*/x\n',
      'a/b/c.log': 'l', 'x.log': 'l', 'tmp/t': 't', 'a/tmp/t2': 't', 'a/x/b': 'b', 'a/b/c': 'c', 'a/y/z/b': 'b', 'keep.md': 'm', 'sub/readme.md': 'm',
      'docs/readme.txt': 'r', 'docs/sub/inner.txt': 'i', 'out/o': 'o', 'out.txt': 'o', 'dir/a/x': 'x', 'dir/a/y': 'y', 'dir/b/c/x': 'x',
    },
  },
  {
    name: 'leading slash, ./, .., and Clean',
    files: {
      '.dockerignore': '/root-only.txt\n./dot.txt\nsub/./x\n../deep/a\n/deep//a/b/\nz/../y\n/\n.\n',
      'root-only.txt': 'r', 'sub/root-only.txt': 'r', 'dot.txt': 'd', 'sub/dot.txt': 'd', 'sub/x': 'x', 'deep/a/b': 'b', 'deep/a/c': 'c', y: 'y', 'z/q': 'q',
    },
  },
  {
    name: 'comments, whitespace, CRLF, BOM and escapes',
    files: {
      '.dockerignore': '\ufeff# a comment\r\n #hash\r\n   spaced.txt   \r\n\r\n\t\r\n\\#literal\r\n!  kept.txt\r\nkept.txt\r\n',
      '#hash': 'h', '#literal': 'l', '# a comment': 'c', 'spaced.txt': 's', 'kept.txt': 'k', 'other.txt': 'o',
    },
  },
  {
    name: 'Dockerfile-specific ignore file beside a Dockerfile in a subdirectory',
    dockerfile: 'df/app.Dockerfile',
    files: { '.dockerignore': 'a.txt\n', 'df/app.Dockerfile.dockerignore': 'b.txt\ndf/app.Dockerfile.dockerignore\n', 'a.txt': 'a', 'b.txt': 'b' },
  },
  {
    name: 'Dockerfile.dockerignore beats .dockerignore for the default Dockerfile',
    files: { '.dockerignore': 'a.txt\n', 'Dockerfile.dockerignore': 'b.txt\n', 'a.txt': 'a', 'b.txt': 'b' },
  },
  {
    name: 'symlinks, empty directories, executable bits',
    files: {
      'run.sh': { mode: 0o755, content: '#!/bin/sh\n' }, 'data.txt': { mode: 0o644, content: 'd' }, 'odd.bin': { mode: 0o710, content: 'o' },
      emptydir: { dir: true }, 'empty/nested': { dir: true }, link: { link: 'data.txt' }, dirlink: { link: 'emptydir' },
      dangling: { link: '/nonexistent/target' }, up: { link: '../outside' },
    },
  },
  {
    name: 'dotfiles, unicode and awkward names',
    files: {
      '.dockerignore': '*.md\n!😀.md\nbr\\[1\\].txt\n日本\nq\\?.txt\n',
      '.hidden': 'h', '.config/x': 'x', 'é.txt': 'e', '日本/語.txt': 'j', '😀.md': 'e', 'plain.md': 'p', 'with space.txt': 's',
      'hash#.txt': 'h', 'bang!.txt': 'b', 'br[1].txt': 'b', 'q?.txt': 'q', 'star*.txt': 's', 'a\u{e000}': 'p', 'a\u{1f600}': 's',
    },
  },
  {
    name: 'character classes and ?',
    files: {
      '.dockerignore': 'file[0-9]\n[xy].txt\nfile[!a]\n?.md\n[[:digit:]]*\n',
      file1: '1', file2: '2', filea: 'a', fileb: 'b', 'file!': '!', 'x.txt': 'x', 'y.txt': 'y', 'z.txt': 'z', 'a.md': 'a', 'ab.md': 'ab', '9lives': '9',
    },
  },
  {
    name: 'regular-expression characters (the dialects differ)',
    files: {
      '.dockerignore': 'a+b\n(x)\n{y}\nm|n\nc$\nd.e\nk^l\n',
      'a+b': '1', aab: '2', '(x)': '3', x: '4', '{y}': '5', 'm|n': '6', mz: '7', zn: '8', c$: '9', 'c': '10', 'd.e': '11', dxe: '12', 'k^l': '13',
    },
  },
  {
    name: 'an excluded directory walked for a re-include that matches nothing',
    files: { '.dockerignore': 'foo\n!foo/nonexistent\nbar\n!bar/sub\n', 'foo/sub/x': 'x', 'foo/y': 'y', 'bar/sub/z': 'z', 'bar/w': 'w' },
  },
  {
    name: 'exclude everything, re-include some',
    files: { '.dockerignore': '*\n!*.go\n!src\n!Dockerfile\n', 'a.go': 'a', 'b.txt': 'b', 'src/c.txt': 'c', 'src/d.go': 'd', 'sub/e.go': 'e' },
  },
  {
    name: 'the Dockerfile and .dockerignore can ignore themselves',
    files: { '.dockerignore': '.dockerignore\nDockerfile\n*.txt\n', 'a.txt': 'a', 'b.bin': 'b' },
  },
  {
    name: 'FIFOs are skipped with a warning',
    files: { 'pipe': { fifo: true }, 'sub/pipe2': { fifo: true }, 'sub/f': 'f' },
    dropsSpecials: ['legacy'],
  },
  {
    name: 'hard links',
    files: { 'a/orig.txt': 'shared bytes', 'a/same.txt': { hardlink: 'a/orig.txt' }, 'b/other.txt': { hardlink: 'a/orig.txt' } },
  },
  {
    name: 'a context big enough for worker threads (4,800 entries)',
    files: Object.fromEntries([
      ['.dockerignore', '**/*.tmp\nd1*\n!d1/keep/**\nd2/s1\n'],
      ...Array.from({ length: 4000 }, (_, i): [string, string] => [`d${i % 40}/s${i % 3}/${i % 7 === 0 ? 'keep/' : ''}f${i}.${i % 5 === 0 ? 'tmp' : 'txt'}`, `${i}`]),
    ]),
  },
  {
    name: 'named contexts with their own .dockerignore',
    files: { 'main.txt': 'm' },
    named: { lib: { '.dockerignore': 'secret\n*.tmp\n', secret: 's', 'lib.go': 'l', 'x.tmp': 't', 'inner/secret': 'kept: the pattern is anchored' } },
  },
];

async function writeTree(root: string, files: Record<string, Node>): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const [path, node] of Object.entries(files)) {
    const abs = join(root, path);
    await mkdir(dirname(abs), { recursive: true });
    if (typeof node === 'string') await writeFile(abs, node, { mode: 0o644 });
    else if ('dir' in node) await mkdir(abs, { recursive: true });
    else if ('link' in node) await symlink(node.link, abs);
    else if ('hardlink' in node) await link(join(root, node.hardlink), abs);
    else if ('fifo' in node) await runChecked('mkfifo', [abs]);
    else {
      await writeFile(abs, node.content);
      await chmod(abs, node.mode);
    }
  }
}

interface OutEntry {
  type: string;
  mode: number;
  digest?: string;
  target?: string;
}

/** Entries of the exported image tar under `prefix/`. */
async function readTar(file: string, prefix: string): Promise<Map<string, OutEntry>> {
  const out = new Map<string, OutEntry>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const hash = createHash('sha256');
      stream.on('data', (d: unknown) => {
        hash.update(d as Uint8Array);
      });
      stream.on('end', () => {
        const name = header.name.replace(/\/$/, '');
        if (name.startsWith(`${prefix}/`)) {
          const entry: OutEntry = { type: header.type ?? 'file', mode: header.mode ?? 0 };
          if (header.type === 'file') entry.digest = `sha256:${hash.digest('hex')}`;
          // A hard link is a file with its target's bytes (the target comes earlier in the tar).
          if (header.type === 'link') {
            const target = out.get((header.linkname ?? '').replace(/^\/+/, '').slice(prefix.length + 1));
            entry.type = 'file';
            if (target?.digest !== undefined) entry.digest = target.digest;
          }
          if (header.type === 'symlink') entry.target = header.linkname ?? '';
          out.set(name.slice(prefix.length + 1), entry);
        }
        next();
      });
      stream.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  createReadStream(file).pipe(ex);
  await done;
  return out;
}

function compare(t: TestContext, label: string, result: ContextHashResult, specials: ContextWarning[], out: Map<string, OutEntry>, named: string | undefined, specialsDropped: boolean): void {
  const ours = new Map(result.entries!.filter((e) => e.context === named).map((e) => [e.path, e]));
  const expected = new Set(ours.keys());
  // Sockets/FIFOs: slipway skips them (with a warning); current BuildKit copies them, 20.10 does not.
  if (!specialsDropped) for (const w of specials) if (w.context === named) for (const p of w.paths ?? []) expected.add(p);
  const engine = [...out.keys()].sort();
  assert.deepEqual(engine, [...expected].sort(), `${label}: paths in the image vs paths hashed`);
  for (const [path, e] of ours) {
    const o = out.get(path)!;
    if (e.type === 'file') {
      assert.equal(o.type, 'file', `${label}: ${path} type`);
      assert.equal(o.digest, e.digest, `${label}: ${path} content`);
      assert.equal((o.mode & 0o100) !== 0, e.executable, `${label}: ${path} executable bit`);
    } else if (e.type === 'symlink') {
      assert.deepEqual([o.type, o.target], ['symlink', e.target], `${label}: ${path} symlink`);
    } else {
      assert.equal(o.type, 'directory', `${label}: ${path} type`);
    }
  }
  t.diagnostic(`${label}${named ? ` [${named}]` : ''}: ${engine.length} paths agree`);
}

describe('context hash oracle: hashed paths equal what BuildKit copies', () => {
  let work: string;
  let buildkitd: Buildkitd | undefined;
  let buildkitError: string | undefined;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'slipway-ctx-oracle-'));
    if (BUILDCTL) {
      try {
        buildkitd = await startBuildkitd();
      } catch (e) {
        buildkitError = (e as Error).message;
      }
    }
  });
  after(async () => {
    await buildkitd?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function prepare(c: Case, i: number, dialect: IgnoreDialect): Promise<{ root: string; named: Record<string, string> }> {
    const root = join(work, `case-${i}-${dialect}`);
    await writeTree(root, c.files);
    const df = join(root, c.dockerfile ?? 'Dockerfile');
    await mkdir(dirname(df), { recursive: true });
    const namedLines = Object.keys(c.named ?? {}).map((n) => `COPY --from=${n} . /${n}/\n`).join('');
    await writeFile(df, DOCKERFILE + namedLines);
    const named: Record<string, string> = {};
    for (const [name, files] of Object.entries(c.named ?? {})) {
      named[name] = join(work, `case-${i}-${dialect}-${name}`);
      await writeTree(named[name], files);
    }
    return { root, named };
  }

  cases.forEach((c, i) => {
    // Docker 20.10's client has no --build-context (it needs the dockerfile 1.4 frontend), so named
    // contexts have only the BuildKit oracle below; the docker builder refuses them up front.
    if (!c.named) test(`legacy (Docker 20.10 CLI): ${c.name}`, async (t) => {
      if (!(await skipUnlessDocker(t, 'the legacy .dockerignore oracle'))) return;
      const { root } = await prepare(c, i, 'legacy');
      const out = join(work, `legacy-${i}.tar`);
      const dockerfile = join(root, c.dockerfile ?? 'Dockerfile');
      const build = await run(DOCKER_CLI, ['build', '-q', '-f', dockerfile, '-o', `type=tar,dest=${out}`, root], { env: { DOCKER_BUILDKIT: '1' }, timeoutMs: 180_000 });
      assert.equal(build.code, 0, build.stderr);
      const specials: ContextWarning[] = [];
      const result = await hashContext({ context: root, dockerfile, ignoreDialect: 'legacy', cacheDir: false, listEntries: true, onWarning: (w) => specials.push(w) });
      compare(t, c.name, result, specials, await readTar(out, 'ctx'), undefined, c.dropsSpecials?.includes('legacy') ?? false);
    });

    test(`buildkit (buildctl + buildkitd): ${c.name}`, async (t) => {
      if (!skipUnlessBuildKit(t)) return;
      if (!buildkitd) return t.skip(`SKIPPED: buildkitd did not start: ${buildkitError ?? 'unknown'}`);
      const { root, named } = await prepare(c, i, 'buildkit');
      const out = join(work, `buildkit-${i}.tar`);
      const dockerfile = join(root, c.dockerfile ?? 'Dockerfile');
      const args = ['--addr', buildkitd.address, 'build', '--frontend', 'dockerfile.v0', '--local', `context=${root}`, '--local', `dockerfile=${dirname(dockerfile)}`,
        '--opt', `filename=${dockerfile.slice(dirname(dockerfile).length + 1)}`, '--output', `type=tar,dest=${out}`];
      for (const [name, dir] of Object.entries(named)) args.push('--local', `${name}=${dir}`, '--opt', `context:${name}=local:${name}`);
      const build = await run(BUILDCTL!, args, { timeoutMs: 180_000 });
      assert.equal(build.code, 0, build.stderr);
      const specials: ContextWarning[] = [];
      const result = await hashContext({ context: root, dockerfile, namedContexts: named, ignoreDialect: 'buildkit', cacheDir: false, listEntries: true, onWarning: (w) => specials.push(w) });
      compare(t, c.name, result, specials, await readTar(out, 'ctx'), undefined, c.dropsSpecials?.includes('buildkit') ?? false);
      for (const name of Object.keys(named)) compare(t, c.name, result, specials, await readTar(out, name), name, false);
    });
  });
});
