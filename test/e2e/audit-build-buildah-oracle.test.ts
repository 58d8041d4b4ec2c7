// Oracle for buildah's `.dockerignore` semantics (the gap test/e2e/context-oracle.test.ts leaves:
// it covers the Docker 20.10 CLI and buildctl). For each tricky context, buildah 1.28 builds
// `FROM scratch` + `COPY . /ctx/` exported as a tar; the paths, contents, executable bits and
// symlink texts in it must equal the entries hashContext reports in the dialect build() uses for
// the buildah builder (asked of the builder itself, so this test follows any change there).
// The other dialects' agreement is printed as a diagnostic, to show which one buildah speaks.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { extract } from 'tar-stream';
import { builders, hashContext, type ContextHashResult, type ContextWarning, type IgnoreDialect } from '@slipway/build';
import { BUILDAH_ENV, run, runChecked, skipUnless } from '../support/tools.js';

type Node = string | { mode: number; content: string } | { dir: true } | { link: string } | { hardlink: string } | { fifo: true };

interface Case {
  name: string;
  files: Record<string, Node>;
  /** Dockerfile location relative to the context (default "Dockerfile"). */
  dockerfile?: string;
  /** Named contexts, copied with `COPY --from=NAME . /NAME/`. */
  named?: Record<string, Record<string, Node>>;
  /** The dialects where the engine drops specials (FIFOs) instead of copying them. */
  dropsSpecials?: IgnoreDialect[];
}

const DOCKERFILE = 'FROM scratch\nCOPY . /ctx/\n';

// The cases of context-oracle.test.ts (so all three engines are held to the same contexts), plus
// buildah's own ignore file, .containerignore.
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


cases.push(
  {
    name: 'buildah: .containerignore beside .dockerignore',
    files: { '.containerignore': 'a.txt\n', '.dockerignore': 'b.txt\n', 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c' },
  },
  {
    name: 'buildah: .containerignore alone',
    files: { '.containerignore': '*.log\n!keep.log\n', 'x.log': 'x', 'keep.log': 'k', 'y.txt': 'y' },
  },
  {
    name: 'buildah: <Dockerfile>.dockerignore, then <Dockerfile>.containerignore, then .containerignore, then .dockerignore',
    dockerfile: 'df/app.Dockerfile',
    files: { '.containerignore': 'a\n', '.dockerignore': 'b\n', 'df/app.Dockerfile.containerignore': 'c\n', a: 'a', b: 'b', c: 'c', d: 'd' },
  },
  {
    name: 'buildah: <Dockerfile>.dockerignore wins over <Dockerfile>.containerignore',
    dockerfile: 'df/app.Dockerfile',
    files: { '.containerignore': 'a\n', 'df/app.Dockerfile.containerignore': 'c\n', 'df/app.Dockerfile.dockerignore': 'd\n', a: 'a', b: 'b', c: 'c', d: 'd' },
  },
  {
    name: 'buildah: slashes, spaces and BOMs in patterns and re-includes',
    files: {
      '.dockerignore': '*\n!/keep1\n!./keep2\n!  keep3\n! keep4\n!Dockerfile\n!.dockerignore\n \t/x\n//y//\n\ufeff# bom-comment\n!\ufeffkeep5\n!d\n!d/../keep6\n',
      keep1: '1', keep2: '2', keep3: '3', keep4: '4', keep5: '5', keep6: '6', x: 'x', y: 'y', '# bom-comment': 'c', 'd/e': 'e', other: 'o',
    },
  },
  {
    name: 'buildah: an excluded directory is entered when a re-include starts with its path',
    files: { '.dockerignore': 'fo\nbar\n!fo*/keep\n!b*/keep\n', 'fo/keep': 'k', 'fo/other': 'o', 'bar/keep': 'k', 'bar/other': 'o' },
  },
);

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

/** Entries of the exported tar under `prefix/` (hard links resolved to their target's bytes). */
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
        const name = header.name.replace(/^\.?\//, '').replace(/\/$/, '');
        if (name.startsWith(`${prefix}/`)) {
          const entry: OutEntry = { type: header.type ?? 'file', mode: header.mode ?? 0 };
          if (header.type === 'file') entry.digest = `sha256:${hash.digest('hex')}`;
          if (header.type === 'link') {
            const target = out.get((header.linkname ?? '').replace(/^\.?\/+/, '').slice(prefix.length + 1));
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

/** Differences between what the engine copied and what hashContext hashed (empty: they agree). */
function differences(result: ContextHashResult, specials: ContextWarning[], out: Map<string, OutEntry>, named: string | undefined, specialsDropped: boolean): string[] {
  const problems: string[] = [];
  const ours = new Map(result.entries!.filter((e) => e.context === named).map((e) => [e.path, e]));
  const expected = new Set(ours.keys());
  if (!specialsDropped) for (const w of specials) if (w.context === named) for (const p of w.paths ?? []) expected.add(p);
  for (const p of out.keys()) if (!expected.has(p)) problems.push(`copied but not hashed: ${p}`);
  for (const p of expected) if (!out.has(p)) problems.push(`hashed but not copied: ${p}`);
  for (const [path, e] of ours) {
    const o = out.get(path);
    if (!o) continue;
    if (e.type === 'file') {
      if (o.type !== 'file') problems.push(`${path}: ${o.type} in the image, file hashed`);
      else if (o.digest !== e.digest) problems.push(`${path}: content differs`);
      else if (((o.mode & 0o100) !== 0) !== e.executable) problems.push(`${path}: executable bit differs`);
    } else if (e.type === 'symlink') {
      if (o.type !== 'symlink' || o.target !== e.target) problems.push(`${path}: symlink ${o.type} -> ${o.target ?? ''} vs -> ${e.target ?? ''}`);
    } else if (o.type !== 'directory') {
      problems.push(`${path}: ${o.type} in the image, directory hashed`);
    }
  }
  return problems;
}

describe('context hash oracle for buildah: hashed paths equal what buildah copies', () => {
  let work: string;
  let dialect: IgnoreDialect;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'slipway-ctx-oracle-buildah-'));
    const builder: builders.Builder = new builders.BuildahBuilder({ env: { ...BUILDAH_ENV } });
    dialect = builder.ignoreDialect ? await builder.ignoreDialect() : 'buildkit';
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  async function buildahCopy(t: TestContext, c: Case, i: number): Promise<{ root: string; dockerfile: string; named: Record<string, string>; tar: string }> {
    const root = join(work, `case-${i}`);
    await writeTree(root, c.files);
    const dockerfile = join(root, c.dockerfile ?? 'Dockerfile');
    await mkdir(dirname(dockerfile), { recursive: true });
    await writeFile(dockerfile, DOCKERFILE + Object.keys(c.named ?? {}).map((n) => `COPY --from=${n} . /${n}/\n`).join(''));
    const named: Record<string, string> = {};
    for (const [name, files] of Object.entries(c.named ?? {})) {
      named[name] = join(work, `case-${i}-${name}`);
      await writeTree(named[name], files);
    }
    const tar = join(work, `buildah-${i}.tar`);
    const iid = join(work, `buildah-${i}.iid`);
    const args = ['build', '--layers=false', '--iidfile', iid, '-f', dockerfile, '--output', `type=tar,dest=${tar}`];
    for (const [name, dir] of Object.entries(named)) args.push('--build-context', `${name}=${dir}`);
    args.push(root);
    const built = await run('buildah', args, { env: { ...BUILDAH_ENV }, timeoutMs: 180_000 });
    // The committed image is not needed: keep vfs storage small.
    const id = (await readFile(iid, 'utf8').catch(() => '')).trim();
    if (id) await run('buildah', ['rmi', '-f', id], { env: { ...BUILDAH_ENV } });
    assert.equal(built.code, 0, built.stderr);
    t.diagnostic(`buildah copied case ${i}`);
    return { root, dockerfile, named, tar };
  }

  cases.forEach((c, i) => {
    test(`buildah 1.28: ${c.name}`, async (t) => {
      if (!skipUnless(t, 'buildah', 'the buildah .dockerignore oracle')) return;
      const { root, dockerfile, named, tar } = await buildahCopy(t, c, i);
      const verdicts: string[] = [];
      let ours: string[] = [];
      for (const d of ['buildkit', 'legacy', 'buildah'] as const) {
        const specials: ContextWarning[] = [];
        let result: ContextHashResult;
        try {
          result = await hashContext({ context: root, dockerfile, namedContexts: named, ignoreDialect: d, cacheDir: false, listEntries: true, onWarning: (w) => specials.push(w) });
        } catch (e) {
          if (d === dialect) throw e;
          verdicts.push(`${d}: ${(e as Error).message.split('\n')[0]}`);
          continue;
        }
        const problems: string[] = [];
        for (const n of [undefined, ...Object.keys(named)]) {
          const out = await readTarCached(tar, n ?? 'ctx');
          problems.push(...differences(result, specials, out, n, c.dropsSpecials?.includes(dialect) ?? false).map((p) => `${n ? `[${n}] ` : ''}${p}`));
        }
        verdicts.push(`${d}: ${problems.length === 0 ? 'agrees' : `${problems.length} differences`}`);
        if (d === dialect) ours = problems;
      }
      t.diagnostic(`${c.name}: ${verdicts.join('; ')}`);
      assert.deepEqual(ours, [], `buildah vs hashContext (dialect ${dialect}, the one build() uses for buildah)`);
    });
  });
});

const tars = new Map<string, Map<string, OutEntry>>();
async function readTarCached(file: string, prefix: string): Promise<Map<string, OutEntry>> {
  const key = `${file}\0${prefix}`;
  if (!tars.has(key)) tars.set(key, await readTar(file, prefix));
  return tars.get(key)!;
}
