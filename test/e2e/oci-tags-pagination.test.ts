// More tags than one page holds, against both builds of the real registry. slipway asks for n=1000
// (ECR's maximum). Distribution 2.8 (Debian) ignores n for tag lists and answers everything at once
// (only its catalog paginates): there the point is that nothing is cut at 1000. Distribution v3 pages
// them: 1000 tags and `Link: <…?last=v…&n=1000>; rel="next"`, then the other 234, so there the Link
// header is what the second request must follow.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MediaType, name, remote, sha256, type ManifestBytes } from '@slipway/oci';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { registryV3Path, startRegistry, type TestRegistry } from '../support/registry.js';

const CLI = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));
const TAG_COUNT = 1234;

const v3Missing = registryV3Path() === undefined;
if (v3Missing) console.error('\n*** SKIPPED: distribution-registry (distribution v3) is not built; scripts/install-go-tools.sh distribution builds it ***\n');

for (const implementation of ['debian', 'v3'] as const) {
  describe(`tags past the first page (registry ${implementation === 'v3' ? 'distribution v3' : 'docker-registry 2.8'}, Link pagination)`, { skip: implementation === 'v3' && v3Missing ? 'distribution v3 not built' : false }, () => {
    let registry: TestRegistry;
    let proxy: FaultProxy;
    let client: remote.RegistryClient;
    const tags = Array.from({ length: TAG_COUNT }, (_, i) => `v${i}`);

    before(async () => {
      registry = await startRegistry({ auth: 'none', implementation });
      proxy = await startFaultProxy({ target: registry });
      client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
      const configDescriptor = { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length };
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDescriptor, layers: [] }));
      const manifest: ManifestBytes = { descriptor: { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length }, bytes };
      // Tagged straight on the registry (not through the proxy), 16 at a time.
      const sink = client.sink(name.parseReference(`${registry.host}/many/tags`));
      await sink.putBlob(configDescriptor, async () => Readable.from([config]));
      const queue = [...tags];
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let tag = queue.shift(); tag !== undefined; tag = queue.shift()) await sink.putManifest(manifest, { tag });
        }),
      );
    });
    after(async () => {
      await client?.close();
      await proxy?.stop();
      await registry?.stop();
    });

    it('the library returns every tag once, past 1000', async () => {
      proxy.clearRequests();
      const listed = await client.listTags(`${proxy.host}/many/tags`);
      assert.equal(listed.length, TAG_COUNT);
      assert.deepEqual([...listed].sort(), [...tags].sort());
      const pages = proxy.requestsMatching({ method: 'GET', path: /\/tags\/list/ });
      assert.ok(pages.length >= 1);
      assert.match(pages[0]!.path, /[?&]n=1000/);
      for (const later of pages.slice(1)) assert.match(later.path, /[?&]last=/, 'a later page is the one a Link header named');
      if (implementation === 'v3') {
        assert.equal(pages.length, 2, 'v3 answers 1000 tags, then the rest on the page its Link named');
        assert.match(pages[1]!.path, /[?&]n=1000/);
      } else {
        assert.equal(pages.length, 1, '2.8 answers everything at once');
      }
    });

    it('hasTags asks for one tag and does not follow the Link of a paging registry', async () => {
      proxy.clearRequests();
      assert.equal(await client.hasTags(`${proxy.host}/many/tags`), true);
      assert.equal(await client.hasTags(`${proxy.host}/many/none`), false);
      const pages = proxy.requestsMatching({ method: 'GET', path: /\/tags\/list/ });
      assert.equal(pages.length, 2, pages.map((p) => p.path).join(', '));
      for (const page of pages) assert.match(page.path, /[?&]n=1(&|$)/);
    });

    it('slipway tags --json lists them all', () => {
      const child = spawnSync(process.execPath, [CLI, 'tags', `${registry.host}/many/tags`, '--json'], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(child.status, 0, child.stderr);
      const result = JSON.parse(child.stdout) as { tags: string[] };
      assert.equal(result.tags.length, TAG_COUNT);
      assert.deepEqual(new Set(result.tags), new Set(tags));
    });
  });
}
