// `slipway copy --referrers` between two real registries (distribution 2.8: no referrers API, so both
// sides use the sha256-<hex> fallback tag), with artifacts attached by regctl and the result read back
// by regctl and skopeo.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { copyImage } from '@slipway/engine';
import { startFaultProxy } from '../support/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { hasTool, run, runChecked } from '../support/tools.js';
import { pushBuildahIndex, skopeoRaw, type PushedIndex } from './copy-fixtures.js';
import { sha256Text } from './oci-archive-fixtures.js';
import { regctl, regctlPath, type ListedReferrer as Listed } from './regctl-artifacts.js';

const main = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));
const missing = [...['buildah', 'skopeo'].filter((tool) => !hasTool(tool)), ...(regctlPath ? [] : ['regctl (scripts/install-go-tools.sh)'])];

describe('slipway copy --referrers against real registries', { skip: missing.length > 0 ? `needs ${missing.join(', ')}` : false }, () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let work: string;
  let index: PushedIndex;
  /** Attached to the index: an SBOM and a signature; a signature of the SBOM; an SBOM of the arm64 child. */
  const attached = { sbom: '', sig: '', sbomSig: '', armSbom: '' };

  const { referrersOf, attach, tags } = regctl(
    () => [src.host, dst.host],
    () => work,
  );
  const slipway = (args: string[]) => run(process.execPath, [main, ...args], { env: { HOME: work }, timeoutMs: 120_000 });
  const copyJson = async (args: string[]) => {
    const outcome = await slipway(['copy', ...args, '--json', '-q']);
    assert.equal(outcome.code, 0, outcome.stderr);
    return JSON.parse(outcome.stdout) as { digest: string; noop: boolean; referrers: { digest: string; artifactType?: string; subject: string }[]; stats: Record<string, number> };
  };

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    work = await mkdtemp(join(tmpdir(), 'slipway-referrers-e2e-'));
    index = await pushBuildahIndex(`${src.host}/app:1`);
    const arm = index.children.find((c) => c.platform === 'linux/arm64')!;
    attached.sbom = await attach(index.reference, 'application/example.sbom', 'sbom of the index', 'org.example.kind=sbom');
    attached.sig = await attach(index.reference, 'application/example.sig', 'signature of the index');
    attached.sbomSig = await attach(`${src.host}/app@${attached.sbom}`, 'application/example.sig', 'signature of the sbom');
    attached.armSbom = await attach(`${src.host}/app@${arm.digest}`, 'application/example.sbom', 'sbom of the arm64 image');
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('without --referrers copies the image only', async () => {
    const result = await copyJson([index.reference, `${dst.host}/plain:1`]);
    assert.equal(result.digest, index.digest);
    assert.deepEqual(result.referrers, []);
    assert.deepEqual(await referrersOf(`${dst.host}/plain:1`), []);
    assert.deepEqual(await tags(`${dst.host}/plain`), ['1']);
  });

  it('--referrers copies every referrer, recursively, by digest, with the fallback index the referrers API would show', async () => {
    const result = await copyJson([index.reference, `${dst.host}/app:1`, '--referrers']);
    assert.equal(result.digest, index.digest);
    const arm = index.children.find((c) => c.platform === 'linux/arm64')!;
    const got = result.referrers.map((r) => `${r.subject} ${r.digest} ${r.artifactType}`).sort();
    const want = [
      `${index.digest} ${attached.sbom} application/example.sbom`,
      `${index.digest} ${attached.sig} application/example.sig`,
      `${attached.sbom} ${attached.sbomSig} application/example.sig`,
      `${arm.digest} ${attached.armSbom} application/example.sbom`,
    ].sort();
    assert.deepEqual(got, want);
    // The same descriptors (artifactType, annotations, size) as regctl wrote at the source.
    for (const subject of [index.digest, attached.sbom, arm.digest]) {
      const at = (host: string) => referrersOf(`${host}/app@${subject}`);
      assert.deepEqual(await at(dst.host), await at(src.host), `referrers of ${subject}`);
    }
    assert.equal((await referrersOf(`${dst.host}/app@${attached.sbom}`))[0]?.annotations, undefined);
    assert.deepEqual((await referrersOf(`${dst.host}/app:1`)).find((d) => d.digest === attached.sbom)?.annotations, { 'org.example.kind': 'sbom' });
    for (const digest of Object.values(attached)) {
      assert.equal(sha256Text(await skopeoRaw(`${dst.host}/app@${digest}`)), digest, `referrer ${digest} byte for byte`);
    }
    assert.equal(sha256Text(await skopeoRaw(`${dst.host}/app:1`)), index.digest);
    // Fallback tags only, no tag for a referrer itself.
    const fallback = (digest: string) => digest.replace(':', '-');
    assert.deepEqual(await tags(`${dst.host}/app`), ['1', fallback(index.digest), fallback(arm.digest), fallback(attached.sbom)].sort());
  });

  it('reads each referrer\'s manifest from the source once: the copy takes the bytes the subject check read', async () => {
    const proxy = await startFaultProxy({ target: src });
    try {
      const result = await copyImage({ source: `${proxy.host}/app:1`, destination: `${dst.host}/counted:1`, referrers: true });
      assert.equal(result.referrers.length, 4);
      for (const { digest } of result.referrers) {
        const reads = proxy.requestsMatching({ method: 'GET', path: `/manifests/${digest}` });
        assert.equal(reads.length, 1, `${digest}: ${reads.map((r) => r.path).join(', ')}`);
      }
    } finally {
      await proxy.stop();
    }
  });

  it('copying again is a no-op for the image and leaves each fallback index without duplicates; plain output lists the referrers', async () => {
    const fallbackIndex = async () => skopeoRaw(`${dst.host}/app:${index.digest.replace(':', '-')}`);
    const beforeIndex = await fallbackIndex();
    const again = await slipway(['copy', index.reference, `${dst.host}/app:1`, '--referrers']);
    assert.equal(again.code, 0, again.stderr);
    const lines = again.stdout.trim().split('\n');
    assert.equal(lines[0], `${dst.host}/app:1@${index.digest}`);
    assert.equal(lines.length, 5);
    assert.ok(lines.includes(`referrer ${attached.sbomSig} application/example.sig -> ${attached.sbom}`), again.stdout);
    assert.match(again.stderr, /already holds sha256:[0-9a-f]{64}: nothing to copy/);
    assert.equal(await fallbackIndex(), beforeIndex, 'fallback index unchanged');
    const listed = (JSON.parse(beforeIndex) as { manifests: Listed[] }).manifests.map((d) => d.digest);
    assert.deepEqual(listed.sort(), [attached.sbom, attached.sig].sort());
  });

  it('--platform: only the referrers of what was copied', async () => {
    const arm = index.children.find((c) => c.platform === 'linux/arm64')!;
    const result = await copyJson([index.reference, `${dst.host}/arm:1`, '--platform', 'linux/arm64', '--referrers']);
    assert.equal(result.digest, arm.digest);
    assert.deepEqual(result.referrers, [{ digest: attached.armSbom, artifactType: 'application/example.sbom', subject: arm.digest }]);
    assert.deepEqual((await referrersOf(`${dst.host}/arm:1`)).map((d) => d.digest), [attached.armSbom]);
  });

  it('copying an artifact that has a subject adds it to the destination fallback tag, as crane and regctl do', async () => {
    // The subject goes first, then the signature alone, by digest: without the tag regctl lists nothing.
    await copyJson([index.reference, `${dst.host}/signed:1`]);
    const first = await copyJson([`${src.host}/app@${attached.sig}`, `${dst.host}/signed:sig`]);
    assert.equal(first.digest, attached.sig);
    assert.equal(first.stats.manifestsPut, 2, 'the artifact, then the fallback index');
    const listed = await referrersOf(`${dst.host}/signed:1`);
    assert.deepEqual(listed.map((d) => d.digest), [attached.sig]);
    assert.deepEqual(listed, (await referrersOf(`${src.host}/app:1`)).filter((d) => d.digest === attached.sig), 'the descriptor regctl wrote at the source');
    // Again: a no-op for the artifact, and the fallback tag already lists it (no second entry, no write
    // of any kind: the registry's own log shows no manifest PUT for the run).
    const puts = async () => ((await dst.log()).match(/"PUT \/v2\/signed\/manifests\//g) ?? []).length;
    const before = await puts();
    const again = await copyJson([`${src.host}/app@${attached.sig}`, `${dst.host}/signed:sig`]);
    assert.equal(again.noop, true);
    assert.equal(again.stats.manifestsPut, 0);
    assert.equal(await puts(), before, 'a no-op writes nothing');
    assert.ok(before >= 3, `the first runs' PUTs are in the log (${before})`);
    assert.deepEqual((await referrersOf(`${dst.host}/signed:1`)).map((d) => d.digest), [attached.sig]);
  });

  it('a docker-archive source with --referrers is a usage error', async () => {
    const archive = join(work, 'arm.tar');
    await runChecked('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${src.host}/app:1`, `docker-archive:${archive}`, '--override-arch', 'arm64']);
    const outcome = await slipway(['copy', `docker-archive:${archive}`, `${dst.host}/fromtar:1`, '--referrers']);
    assert.equal(outcome.code, 2, outcome.stderr);
    assert.match(outcome.stderr, /referrers are only copied from a registry source/);
    assert.deepEqual(await tags(`${dst.host}/fromtar`).catch(() => []), []);
  });
});
