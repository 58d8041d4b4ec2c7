// `copyImage({ referrers: true })` from a registry that lists referrers through the OCI 1.1 API
// (go-containerregistry's registry, scripts/ggcr-registry): the referrers are found with
// `GET /v2/<name>/referrers/<digest>` (counted through the fault proxy, never by reading the fallback
// tag). Into distribution 2.8, which has no such API, the destination gets the fallback tag index;
// into a registry that indexes referrers and says so (`OCI-Subject` on the PUT), no tag is written.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { copyImage } from '@slipway/engine';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { busyboxOciLayout } from '../support/fixtures.js';
import { ggcrRegistryPath, startGgcrRegistry, type GgcrRegistry } from '../support/ggcr-registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { hasTool } from '../support/tools.js';
import { regctl, regctlPath } from './regctl-artifacts.js';

const missing = [
  ...(hasTool('buildah') ? [] : ['buildah']),
  ...(regctlPath ? [] : ['regctl (scripts/install-go-tools.sh)']),
  ...(ggcrRegistryPath() ? [] : ['ggcr-registry (scripts/install-go-tools.sh ggcr-registry)']),
];
if (missing.length > 0) console.error(`\n*** SKIPPED: copy of referrers listed by the referrers API needs ${missing.join(', ')} ***\n`);

interface Listed {
  digest: string;
  artifactType?: string;
}

describe('copy --referrers from a registry with the referrers API into one without', { skip: missing.length > 0 ? `needs ${missing.join(', ')}` : false }, () => {
  let src: GgcrRegistry;
  let proxy: FaultProxy;
  let dst: TestRegistry;
  let indexing: GgcrRegistry;
  let work: string;
  let digest: string;
  const attached = { sbom: '', sig: '', sbomSig: '' };

  const tool = regctl(
    () => [src.host, dst.host, indexing.host],
    () => work,
  );
  const { attach, tags } = tool;
  /** Digest and artifactType only: what these tests compare between registries. */
  const referrersOf = async (reference: string): Promise<Listed[]> =>
    (await tool.referrersOf(reference)).map((d) => ({ digest: d.digest, ...(d.artifactType ? { artifactType: d.artifactType } : {}) }));

  before(async () => {
    [src, dst, indexing] = await Promise.all([startGgcrRegistry(), startRegistry(), startGgcrRegistry({ ociSubject: true })]);
    proxy = await startFaultProxy({ target: src.url });
    work = await mkdtemp(join(tmpdir(), 'slipway-referrers-api-e2e-'));
    const layout = await busyboxOciLayout('amd64');
    digest = (await copyImage({ source: `oci:${layout.dir}:${layout.tag}`, destination: `${src.host}/app:1` })).digest;
    attached.sbom = await attach(`${src.host}/app@${digest}`, 'application/example.sbom', 'sbom of the image');
    attached.sig = await attach(`${src.host}/app@${digest}`, 'application/example.sig', 'signature of the image');
    attached.sbomSig = await attach(`${src.host}/app@${attached.sbom}`, 'application/example.sig', 'signature of the sbom');
  });
  after(async () => {
    await proxy?.stop();
    await Promise.all([src?.stop(), dst?.stop(), indexing?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('finds the referrers through the API, copies them by digest, and writes the fallback index at the destination', async () => {
    proxy.clearRequests();
    const result = await copyImage({ source: `${proxy.host}/app:1`, destination: `${dst.host}/app:1`, referrers: true });
    assert.equal(result.digest, digest);
    assert.deepEqual(
      result.referrers.map((r) => `${r.subject} ${r.digest} ${r.artifactType}`).sort(),
      [`${digest} ${attached.sbom} application/example.sbom`, `${digest} ${attached.sig} application/example.sig`, `${attached.sbom} ${attached.sbomSig} application/example.sig`].sort(),
    );
    // Listed by the API at the source, for the image and for each referrer found (its referrers in turn).
    const listings = proxy.requestsMatching({ method: 'GET', path: /^\/v2\/app\/referrers\/sha256:[0-9a-f]{64}/ });
    assert.ok(listings.length >= 2, listings.map((r) => r.path).join(', '));
    assert.ok(listings.every((r) => r.status === 200), listings.map((r) => `${r.path} ${r.status}`).join(', '));
    assert.equal(proxy.requestsMatching({ method: 'GET', path: /\/manifests\/sha256-/ }).length, 0, 'a fallback tag was read at the source');
    // The destination lists the same referrers, from the fallback tags slipway wrote. Its artifactType
    // is the manifest's own, as distribution spec v1.1 says; go-containerregistry's API answers the
    // config media type instead (application/vnd.oci.empty.v1+json here), so only digests are compared.
    const digests = (listed: Listed[]) => listed.map((d) => d.digest);
    for (const subject of [digest, attached.sbom]) {
      assert.deepEqual(digests(await referrersOf(`${dst.host}/app@${subject}`)), digests(await referrersOf(`${src.host}/app@${subject}`)), `referrers of ${subject}`);
    }
    assert.deepEqual(
      await referrersOf(`${dst.host}/app@${digest}`),
      [
        { digest: attached.sbom, artifactType: 'application/example.sbom' },
        { digest: attached.sig, artifactType: 'application/example.sig' },
      ].sort((a, b) => a.digest.localeCompare(b.digest)),
    );
    assert.deepEqual(await tags(`${dst.host}/app`), ['1', digest.replace(':', '-'), attached.sbom.replace(':', '-')].sort());
  });

  it('into a registry that answers OCI-Subject: the referrers are indexed by the registry, and no fallback tag is written', async () => {
    const destination = await startFaultProxy({ target: indexing.url });
    try {
      const result = await copyImage({ source: `${src.host}/app:1`, destination: `${destination.host}/app:1`, referrers: true });
      assert.equal(result.referrers.length, 3);
      const subjects = destination.requestsMatching({ method: 'PUT', path: /\/manifests\/sha256:/ }).filter((r) => r.status === 201);
      assert.equal(subjects.length, 3, 'each referrer stored by digest');
      assert.equal(destination.requestsMatching({ path: /\/manifests\/sha256-/ }).length, 0, 'a fallback tag was read or written');
    } finally {
      await destination.stop();
    }
    assert.deepEqual(await tags(`${indexing.host}/app`), ['1']);
    // The registry's own referrers API lists what was copied.
    for (const subject of [digest, attached.sbom]) {
      assert.deepEqual(
        (await referrersOf(`${indexing.host}/app@${subject}`)).map((d) => d.digest),
        (await referrersOf(`${src.host}/app@${subject}`)).map((d) => d.digest),
        `referrers of ${subject}`,
      );
    }
  });
});
