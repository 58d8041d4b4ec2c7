// Blobs named by sha512 (the image spec allows it, distribution stores them) copied between two real
// registries: distribution confirms such an upload with the blob's sha256 in Docker-Content-Digest,
// which the distribution spec allows ("MAY differ from the provided digest").
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { copyImage } from '@slipway/engine';
import { MediaType } from '@slipway/oci';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { skopeoRaw } from './copy-fixtures.js';
import { hasTool } from '../support/tools.js';

const sha512 = (bytes: Buffer) => `sha512:${createHash('sha512').update(bytes).digest('hex')}`;
const sha256 = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

/** Pushes `bytes` under its sha512 digest with a plain monolithic upload (the fixture, not slipway). */
async function pushSha512Blob(registry: TestRegistry, repository: string, bytes: Buffer): Promise<void> {
  const started = await fetch(`${registry.url}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  assert.equal(started.status, 202);
  const location = new URL(started.headers.get('location')!, registry.url);
  location.searchParams.set('digest', sha512(bytes));
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
  assert.equal(put.status, 201, await put.text());
}

describe('copy of an image whose blobs are named by sha512', { skip: hasTool('skopeo') ? false : 'needs skopeo' }, () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  it('arrives byte for byte, each blob under its sha512 name', async () => {
    const layer = randomBytes(3000);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} }));
    for (const blob of [layer, config]) await pushSha512Blob(src, 'app', blob);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: sha512(config), size: config.length },
      layers: [{ mediaType: MediaType.OciLayerGzip, digest: sha512(layer), size: layer.length }],
    });
    const put = await fetch(`${src.url}/v2/app/manifests/1`, { method: 'PUT', headers: { 'content-type': MediaType.OciManifest }, body: manifest });
    assert.equal(put.status, 201, await put.text());

    const result = await copyImage({ source: `${src.host}/app:1`, destination: `${dst.host}/app:1` });
    assert.equal(result.digest, sha256(manifest));
    assert.equal(await skopeoRaw(`${dst.host}/app:1`), manifest);
    for (const blob of [layer, config]) {
      const got = await fetch(`${dst.url}/v2/app/blobs/${sha512(blob)}`);
      assert.equal(got.status, 200);
      assert.deepEqual(Buffer.from(await got.arrayBuffer()), blob);
    }
  });
});
