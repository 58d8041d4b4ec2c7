// Oracle for buildah's `.dockerignore` semantics (the gap test/e2e/context-oracle.test.ts leaves:
// it covers the Docker 20.10 CLI and buildctl). For each tricky context, buildah 1.28 builds
// `FROM scratch` + `COPY . /ctx/` exported as a tar; the paths, contents, executable bits and
// symlink texts in it must equal the entries hashContext reports in the dialect build() uses for
// the buildah builder (asked of the builder itself, so this test follows any change there).
// The other dialects' agreement is printed as a diagnostic, to show which one buildah speaks.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builders, hashContext, type ContextHashResult, type ContextWarning, type IgnoreDialect } from '@slipway/build';
import { BUILDAH_ENV, run, skipUnless } from '../support/tools.js';
import { differences, oracleCases, prepareCase, readTar, type Case, type OutEntry } from './context-oracle-cases.js';

// The cases of context-oracle.test.ts (so all three engines are held to the same contexts), plus
// buildah's own ignore file, .containerignore.
const cases: Case[] = [
  ...oracleCases,
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
];

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
    const { root, dockerfile, named } = await prepareCase(work, `case-${i}`, c);
    const tar = join(work, `buildah-${i}.tar`);
    const iid = join(work, `buildah-${i}.iid`);
    // A storage of its own: `buildah rmi` below, in the shared storage, raced the builds of other test
    // files running beside this one ("getting top layer info: layer not known" in their cache lookups).
    const storage = ['--root', join(work, 'storage'), '--runroot', join(work, 'run')];
    const args = [...storage, 'build', '--layers=false', '--iidfile', iid, '-f', dockerfile, '--output', `type=tar,dest=${tar}`];
    for (const [name, dir] of Object.entries(named)) args.push('--build-context', `${name}=${dir}`);
    args.push(root);
    const built = await run('buildah', args, { env: { ...BUILDAH_ENV }, timeoutMs: 180_000 });
    // The committed image is not needed: keep vfs storage small.
    const id = (await readFile(iid, 'utf8').catch(() => '')).trim();
    if (id) await run('buildah', [...storage, 'rmi', '-f', id], { env: { ...BUILDAH_ENV } });
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
