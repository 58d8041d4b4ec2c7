// The contexts and helpers the .dockerignore oracles share (context-oracle.test.ts for the Docker
// 20.10 CLI and buildctl, audit-build-buildah-oracle.test.ts for buildah), so every engine is held
// to the same tricky contexts and the same reading of its output.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { extract } from 'tar-stream';
import type { ContextHashResult, ContextWarning, IgnoreDialect } from '@slipway/build';
import { runChecked } from '../support/tools.js';

export type Node = string | { mode: number; content: string } | { dir: true } | { link: string } | { hardlink: string } | { fifo: true };

export interface Case {
  name: string;
  files: Record<string, Node>;
  /** Dockerfile location relative to the context (default "Dockerfile"). */
  dockerfile?: string;
  /**
   * Named contexts, copied with `COPY --from=NAME . /NAME/` (not for the Docker 20.10 CLI: it has
   * no --build-context).
   */
  named?: Record<string, Record<string, Node>>;
  /** The dialects where the engine drops specials (FIFOs) instead of copying them. */
  dropsSpecials?: IgnoreDialect[];
}

const DOCKERFILE = 'FROM scratch\nCOPY . /ctx/\n';

export const oracleCases: readonly Case[] = [
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

export async function writeTree(root: string, files: Record<string, Node>): Promise<void> {
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

/**
 * Writes a case's context to `dir/tag` (its Dockerfile copies `.` to /ctx/ and each named context to
 * /NAME/) and each named context to `dir/tag-NAME`.
 */
export async function prepareCase(dir: string, tag: string, c: Case): Promise<{ root: string; dockerfile: string; named: Record<string, string> }> {
  const root = join(dir, tag);
  await writeTree(root, c.files);
  const dockerfile = join(root, c.dockerfile ?? 'Dockerfile');
  await mkdir(dirname(dockerfile), { recursive: true });
  await writeFile(dockerfile, DOCKERFILE + Object.keys(c.named ?? {}).map((n) => `COPY --from=${n} . /${n}/\n`).join(''));
  const named: Record<string, string> = {};
  for (const [name, files] of Object.entries(c.named ?? {})) {
    named[name] = join(dir, `${tag}-${name}`);
    await writeTree(named[name], files);
  }
  return { root, dockerfile, named };
}

export interface OutEntry {
  type: string;
  mode: number;
  digest?: string;
  target?: string;
}

/**
 * Entries of an exported tar under `prefix/` (hard links resolved to their target's bytes; a
 * leading `./` or `/`, as buildah writes, is dropped).
 */
export async function readTar(file: string, prefix: string): Promise<Map<string, OutEntry>> {
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
          // A hard link is a file with its target's bytes (the target comes earlier in the tar).
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

/**
 * Differences between what the engine copied (`out`, one context's entries) and what hashContext
 * hashed for context `named` (undefined: the main one); empty when they agree in paths, file
 * contents, executable bits, symlink texts and directories. Sockets/FIFOs: slipway skips them with
 * a warning; engines that copy them (`specialsDropped` false) are expected to hold those paths.
 */
export function differences(result: ContextHashResult, specials: ContextWarning[], out: Map<string, OutEntry>, named: string | undefined, specialsDropped: boolean): string[] {
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
