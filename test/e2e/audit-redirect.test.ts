// Acceptance audit: redirects to another host. The real registry (htpasswd, canary password) sits
// behind the fault proxy, which answers blob GETs with 307 to a second server on ANOTHER loopback
// address (127.0.0.2, like object storage behind a registry). That server must never see the
// Authorization header (nor the password in any form), and the bytes it serves must be verified:
// right bytes pass, wrong bytes fail with SLIPWAY_DIGEST_MISMATCH.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { copyImage } from '@slipway/engine';
import { MediaType, name, remote, sha256, SlipwayError, type Descriptor, type ManifestBytes } from '@slipway/oci';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { CANARY_PASSWORD, CANARY_USERNAME, startRegistry, type TestRegistry } from '../support/registry.js';
import { hasTool, runChecked } from '../support/tools.js';
import { sha256Text } from './oci-archive-fixtures.js';

interface StorageHit {
  path: string;
  headers: IncomingHttpHeaders;
}

function blob(mediaType: string, bytes: Buffer) {
  return { descriptor: { mediaType, digest: sha256(bytes), size: bytes.length } as Descriptor, bytes };
}

describe('blob GET redirected to another host (audit)', () => {
  let registry: TestRegistry;
  let destination: TestRegistry;
  let proxy: FaultProxy;
  let storage: Server;
  let storageHost: string;
  const hits: StorageHit[] = [];
  /** When set, the storage server flips a byte of what it serves. */
  let corrupt = false;
  const creds = { username: CANARY_USERNAME, password: CANARY_PASSWORD };
  const config = blob(MediaType.OciConfig, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
  const layer = blob(MediaType.OciLayerGzip, randomBytes(700_000));
  const manifestBody = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: config.descriptor, layers: [layer.descriptor] }));
  const manifest: ManifestBytes = { descriptor: { mediaType: MediaType.OciManifest, digest: sha256(manifestBody), size: manifestBody.length }, bytes: manifestBody };

  before(async () => {
    [registry, destination] = await Promise.all([startRegistry({ auth: 'htpasswd', ...creds }), startRegistry()]);
    proxy = await startFaultProxy({ target: registry });
    const client = remote.createRegistryClient({ credentials: { [registry.host]: creds } });
    try {
      const ref = name.parseReference(`${registry.host}/redirect/app:1`);
      const sink = client.sink(ref);
      for (const b of [config, layer]) await sink.putBlob(b.descriptor, async () => Readable.from([b.bytes]));
      await sink.putManifest(manifest, { tag: '1' });
    } finally {
      await client.close();
    }
    // "Object storage": fetches the blob from the registry itself (with the test's own credentials)
    // and serves it, so whatever the client gets really came from the registry.
    storage = createServer((req, res) => {
      hits.push({ path: req.url ?? '', headers: req.headers });
      const digest = /\/storage\/(sha256:[0-9a-f]{64})/.exec(req.url ?? '')?.[1];
      if (!digest) {
        res.writeHead(404).end();
        return;
      }
      fetch(`${registry.url}/v2/redirect/app/blobs/${digest}`, { headers: { authorization: registry.basicAuth() } })
        .then(async (up) => {
          const bytes = Buffer.from(await up.arrayBuffer());
          if (corrupt) bytes[bytes.length >> 1]! ^= 0xff;
          res.writeHead(up.status, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
          res.end(bytes);
        })
        .catch(() => res.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      storage.once('error', reject);
      storage.listen(0, '127.0.0.2', () => resolve());
    });
    storageHost = `127.0.0.2:${(storage.address() as AddressInfo).port}`;
  });
  after(async () => {
    storage?.closeAllConnections();
    await new Promise((resolve) => (storage ? storage.close(resolve) : resolve(undefined)));
    await proxy?.stop();
    await Promise.all([registry?.stop(), destination?.stop()]);
  });

  /** Blob GETs through the proxy answered 307 to the storage host, with a signed-URL-like query (one rule per blob: the Location is fixed). */
  function redirectBlob(digest: string, times = Infinity) {
    return proxy.inject({
      match: { method: 'GET', path: `/v2/redirect/app/blobs/${digest}` },
      fault: { status: 307, headers: { location: `http://${storageHost}/storage/${digest}?X-Amz-Signature=s3cr3t-signature` } },
      times,
    });
  }

  function assertNoCredentialsAtStorage(): void {
    assert.ok(hits.length > 0, 'the storage host was reached');
    const basic = Buffer.from(`${CANARY_USERNAME}:${CANARY_PASSWORD}`).toString('base64');
    for (const hit of hits) {
      assert.equal(hit.headers.authorization, undefined, `Authorization sent to ${storageHost}${hit.path}`);
      const all = JSON.stringify(hit.headers);
      assert.ok(!all.includes(CANARY_PASSWORD) && !all.includes(basic), `credentials in headers to the storage host: ${all}`);
    }
  }

  it('follows the 307 to 127.0.0.2 without Authorization, and the bytes verify', async () => {
    hits.length = 0;
    proxy.clearRequests();
    const rule = redirectBlob(layer.descriptor.digest, 1);
    const client = remote.createRegistryClient({ credentials: { [proxy.host]: creds } });
    try {
      const bytes = await buffer(await client.source(`${proxy.host}/redirect/app:1`).blob(layer.descriptor));
      assert.equal(rule.hits, 1, 'the registry side answered with the redirect');
      assert.ok(bytes.equals(layer.bytes), 'the bytes from the other host are the blob');
    } finally {
      rule.remove();
      await client.close();
    }
    // The registry hop carried credentials (it must, the registry is htpasswd) — the storage hop did not.
    const registryHop = proxy.requestsMatching({ method: 'GET', path: `/blobs/${layer.descriptor.digest}` });
    assert.equal(registryHop.length, 1);
    assert.equal(registryHop[0]!.headers.authorization, '<redacted>', 'Authorization went to the registry host');
    assert.equal(hits.length, 1);
    assert.match(hits[0]!.path, new RegExp(`^/storage/${layer.descriptor.digest}\\?X-Amz-Signature=`));
    assertNoCredentialsAtStorage();
  });

  it('rejects wrong bytes from the other host with SLIPWAY_DIGEST_MISMATCH, never quoting the signed URL', async () => {
    hits.length = 0;
    corrupt = true;
    const rule = redirectBlob(layer.descriptor.digest);
    const client = remote.createRegistryClient({ credentials: { [proxy.host]: creds }, retry: { attempts: 2, baseDelayMs: 1 } });
    try {
      await assert.rejects(
        buffer(await client.source(`${proxy.host}/redirect/app:1`).blob(layer.descriptor)),
        (err: unknown) => {
          assert.ok(SlipwayError.is(err), String(err));
          assert.equal(err.code, 'SLIPWAY_DIGEST_MISMATCH');
          assert.ok(err.message.includes(layer.descriptor.digest), err.message);
          assert.ok(!err.message.includes('s3cr3t-signature'), `signed URL in the message: ${err.message}`);
          return true;
        },
      );
    } finally {
      corrupt = false;
      rule.remove();
      await client.close();
    }
    assertNoCredentialsAtStorage();
  });

  it('copies an image whose every blob is redirected, and skopeo sees the same digest at the destination', async (t) => {
    if (!hasTool('skopeo')) {
      t.skip('SKIPPED: skopeo not installed (cross-check of the copied digest); apt-get install skopeo');
      return;
    }
    hits.length = 0;
    const rules = [redirectBlob(config.descriptor.digest), redirectBlob(layer.descriptor.digest)];
    try {
      const result = await copyImage({
        source: `${proxy.host}/redirect/app:1`,
        destination: `${destination.host}/redirected/app:1`,
        registries: [{ address: proxy.host, ...creds }],
      });
      assert.equal(result.digest, manifest.descriptor.digest);
      assert.equal(result.stats.blobsCopied, 2);
      assert.ok(rules.every((r) => r.hits >= 1), 'both blobs were redirected');
    } finally {
      for (const r of rules) r.remove();
    }
    assert.deepEqual(hits.map((h) => h.path.split('?')[0]).sort(), [`/storage/${config.descriptor.digest}`, `/storage/${layer.descriptor.digest}`].sort());
    assertNoCredentialsAtStorage();
    const raw = (await runChecked('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${destination.host}/redirected/app:1`])).stdout;
    assert.equal(sha256Text(raw), manifest.descriptor.digest);
  });
});
