// Oracle test for the build-context hash: for tricky contexts, the set of paths slipway hashes must
// equal the set a real BuildKit puts in the image for `COPY . /ctx/` (FROM scratch, exported as a
// tar), in both .dockerignore dialects:
//   legacy   — the Docker 20.10 CLI (`DOCKER_BUILDKIT=1 /usr/bin/docker build`, its fsutil walker);
//   buildkit — buildctl + buildkitd built from current BuildKit (fsutil FilterFS, patternmatcher 0.6).
// File contents, executable bits and symlink texts are compared too.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { hashContext, type ContextHashResult, type ContextWarning } from '@slipway/build';
import { DOCKER_CLI, run, skipUnlessDocker } from '../support/tools.js';
import { BUILDCTL, skipUnlessBuildKit, startBuildkitd, type Buildkitd } from './build-harness.js';
import { differences, oracleCases as cases, prepareCase, readTar, type OutEntry } from './context-oracle-cases.js';

function compare(t: TestContext, label: string, result: ContextHashResult, specials: ContextWarning[], out: Map<string, OutEntry>, named: string | undefined, specialsDropped: boolean): void {
  assert.deepEqual(differences(result, specials, out, named, specialsDropped), [], `${label}: the image vs what was hashed`);
  t.diagnostic(`${label}${named ? ` [${named}]` : ''}: ${out.size} paths agree`);
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

  cases.forEach((c, i) => {
    // Docker 20.10's client has no --build-context (it needs the dockerfile 1.4 frontend), so named
    // contexts have only the BuildKit oracle below; the docker builder refuses them up front.
    if (!c.named) test(`legacy (Docker 20.10 CLI): ${c.name}`, async (t) => {
      if (!(await skipUnlessDocker(t, 'the legacy .dockerignore oracle'))) return;
      const { root, dockerfile } = await prepareCase(work, `case-${i}-legacy`, c);
      const out = join(work, `legacy-${i}.tar`);
      const build = await run(DOCKER_CLI, ['build', '-q', '-f', dockerfile, '-o', `type=tar,dest=${out}`, root], { env: { DOCKER_BUILDKIT: '1' }, timeoutMs: 180_000 });
      assert.equal(build.code, 0, build.stderr);
      const specials: ContextWarning[] = [];
      const result = await hashContext({ context: root, dockerfile, ignoreDialect: 'legacy', cacheDir: false, listEntries: true, onWarning: (w) => specials.push(w) });
      compare(t, c.name, result, specials, await readTar(out, 'ctx'), undefined, c.dropsSpecials?.includes('legacy') ?? false);
    });

    test(`buildkit (buildctl + buildkitd): ${c.name}`, async (t) => {
      if (!skipUnlessBuildKit(t)) return;
      if (!buildkitd) return t.skip(`SKIPPED: buildkitd did not start: ${buildkitError ?? 'unknown'}`);
      const { root, dockerfile, named } = await prepareCase(work, `case-${i}-buildkit`, c);
      const out = join(work, `buildkit-${i}.tar`);
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
