// Acceptance audit: transport and upload promises against the real registry.
//  - keep-alive: many sequential calls share one TCP connection (counted by a plain TCP relay);
//  - the per-host concurrency bound (`jobs`) holds for parallel blob downloads;
//  - a typed RegistryError from the registry (status, codes, method) with the upload URL redacted;
//  - cross-repository mount with fallback: distribution's 202 (blob not in `from`) and a refused mount
//    (400 like Docker Hub, 401 like Harbor) both end in a normal upload;
//  - an AbortSignal stops an upload in flight promptly and nothing is committed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, afterEach, before, describe, it } from 'node:test';
import { MediaType, name, RegistryError, remote, sha256, SlipwayError, type Descriptor, type ManifestBytes } from '@slipway/oci';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { maxInFlight } from './audit-support.js';

const anonymous = { resolve: async () => undefined };

function blob(bytes: Buffer) {
  return { descriptor: { mediaType: MediaType.OciLayerGzip, digest: sha256(bytes), size: bytes.length } as Descriptor, bytes };
}

/** A byte-for-byte TCP relay in front of the registry that counts the connections clients open. */
async function startRelay(target: TestRegistry): Promise<{ host: string; connections: () => number; stop: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    count += 1;
    const upstream = createConnection({ host: '127.0.0.1', port: target.port });
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    connections: () => count,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('transport and uploads against the real registry (audit)', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let direct: remote.RegistryClient;
  const blobs = Array.from({ length: 8 }, () => blob(randomBytes(50_000)));

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ target: registry });
    direct = remote.createRegistryClient({ keychain: anonymous });
    const sink = direct.sink(`${registry.host}/audit/base:1`);
    for (const b of blobs) await sink.putBlob(b.descriptor, async () => Readable.from([b.bytes]));
  });
  afterEach(() => {
    proxy.clearFaults();
    proxy.clearRequests();
  });
  after(async () => {
    await direct?.close();
    await proxy?.stop();
    await registry?.stop();
  });

  // undici closes the connection after every HEAD (nodejs/undici#258: interop with servers that send a
  // body on HEAD) unless the response says `Connection: keep-alive`, which Go's net/http never does
  // on HTTP/1.1; so this counts the calls that can be kept alive: GETs, POSTs, PUTs.
  it('keeps connections alive: 30 GETs and 5 uploads in a row over one TCP connection', async () => {
    const relay = await startRelay(registry);
    const client = remote.createRegistryClient({ keychain: anonymous });
    try {
      await client.listTags(`${relay.host}/audit/base`).catch(() => undefined); // ping, first connection
      const warm = relay.connections();
      for (let i = 0; i < 30; i++) {
        const b = blobs[i % blobs.length]!;
        assert.ok((await buffer(await client.blob(`${relay.host}/audit/base`, b.descriptor))).equals(b.bytes));
      }
      const sink = client.sink(`${relay.host}/audit/kept:1`);
      for (const b of blobs.slice(0, 5)) await sink.putBlob(b.descriptor, async () => Readable.from([b.bytes]));
      assert.equal(relay.connections() - warm, 0, `${relay.connections() - warm} new TCP connections for 30 GETs and 5 uploads (POST + PUT)`);
    } finally {
      await client.close();
      await relay.stop();
    }
  });

  it('bounds concurrent requests per host by jobs', async () => {
    const client = remote.createRegistryClient({ keychain: anonymous, jobs: 2 });
    proxy.inject({ match: { method: 'GET', path: '/v2/audit/base/blobs/' }, fault: { delayMs: 200 }, times: Infinity });
    try {
      const got = await Promise.all(blobs.map(async (b) => buffer(await client.blob(`${proxy.host}/audit/base`, b.descriptor))));
      got.forEach((bytes, i) => assert.ok(bytes.equals(blobs[i]!.bytes)));
      const gets = proxy.requestsMatching({ method: 'GET', path: '/v2/audit/base/blobs/' });
      assert.equal(gets.length, blobs.length);
      assert.equal(maxInFlight(gets), 2, 'two downloads at once, never more');
    } finally {
      await client.close();
    }
  });

  it('throws a typed RegistryError: status, registry codes, method, and the upload URL redacted', async () => {
    const missing = blob(randomBytes(10));
    await assert.rejects(direct.blob(`${registry.host}/audit/base`, missing.descriptor), (err: unknown) => {
      assert.ok(SlipwayError.is(err), String(err));
      const cause = RegistryError.is(err) ? err : (err as { cause?: unknown }).cause;
      assert.ok(RegistryError.is(cause), `a RegistryError, or one as cause: ${String(err)}`);
      assert.equal(cause.status, 404);
      assert.equal(cause.method, 'GET');
      assert.deepEqual(cause.errors.map((e) => e.code), ['BLOB_UNKNOWN']);
      assert.equal(cause.notFound, true);
      return true;
    });

    // Every upload PUT/PATCH refused: the error names the session URL, whose _state is an opaque secret.
    proxy.inject({ match: { path: '/v2/audit/refused/blobs/uploads/' }, fault: { status: 400 }, times: Infinity, skip: 1 });
    const client = remote.createRegistryClient({ keychain: anonymous, retry: { attempts: 2, baseDelayMs: 1 } });
    try {
      const b = blob(randomBytes(1000));
      await assert.rejects(client.sink(`${proxy.host}/audit/refused:1`).putBlob(b.descriptor, async () => Readable.from([b.bytes])), (err: unknown) => {
        assert.ok(RegistryError.is(err), String(err));
        assert.equal(err.status, 400);
        assert.equal(err.code, 'SLIPWAY_REGISTRY');
        assert.deepEqual(err.errors.map((e) => e.code), ['UNAVAILABLE']);
        assert.match(err.url, /\/v2\/audit\/refused\/blobs\/uploads\/[0-9a-f-]+\?.*_state=REDACTED/);
        assert.ok(!/_state=(?!REDACTED)/.test(err.message), err.message);
        return true;
      });
      // The real _state values the registry handed out never reached the message.
      const states = proxy.requests.map((r) => new URL(r.path, 'http://x').searchParams.get('_state')).filter((s): s is string => !!s);
      assert.ok(states.length > 0, 'the registry used upload state tokens');
    } finally {
      await client.close();
    }
  });

  it('falls back to an upload when distribution cannot mount (202: the blob is not in `from`)', async () => {
    const b = blob(randomBytes(30_000));
    const client = remote.createRegistryClient({ keychain: anonymous });
    try {
      let opened = 0;
      await client.sink(`${proxy.host}/audit/target:1`).putBlob(
        b.descriptor,
        async () => {
          opened += 1;
          return Readable.from([b.bytes]);
        },
        { mountFrom: client.source(`${proxy.host}/audit/empty:1`).location! },
      );
      const mount = proxy.requestsMatching({ method: 'POST', path: /mount=sha256/ });
      assert.equal(mount.length, 1);
      assert.equal(mount[0]!.status, 202, 'distribution answered the mount with an upload session');
      assert.equal(proxy.requestsMatching({ method: 'POST', path: '/v2/audit/target/blobs/uploads/' }).length, 1, 'the 202 session was used, not a second one');
      assert.equal(opened, 1);
      assert.ok((await buffer(await direct.blob(`${registry.host}/audit/target`, b.descriptor))).equals(b.bytes));
    } finally {
      await client.close();
    }
  });

  for (const status of [400, 401]) {
    it(`falls back to a plain upload when the registry refuses the mount with ${status}`, async () => {
      const b = blobs[status === 400 ? 0 : 1]!;
      proxy.inject({ match: { method: 'POST', path: /mount=sha256/ }, fault: { status }, times: 1 });
      const client = remote.createRegistryClient({ keychain: anonymous });
      try {
        await client.sink(`${proxy.host}/audit/refused-mount-${status}:1`).putBlob(b.descriptor, async () => Readable.from([b.bytes]), {
          mountFrom: client.source(`${proxy.host}/audit/base:1`).location!,
        });
      } finally {
        await client.close();
      }
      const posts = proxy.requestsMatching({ method: 'POST', path: `/v2/audit/refused-mount-${status}/blobs/uploads/` });
      assert.deepEqual(posts.map((r) => [r.status, r.path.includes('mount=')]), [[status, true], [202, false]]);
      assert.ok((await buffer(await direct.blob(`${registry.host}/audit/refused-mount-${status}`, b.descriptor))).equals(b.bytes));
    });
  }

  it('an AbortSignal stops an upload in flight at once, and nothing is committed', async () => {
    const b = blob(randomBytes(200_000));
    proxy.inject({ match: { method: 'PUT', path: '/v2/audit/aborted/blobs/uploads/' }, fault: { delayMs: 5000 }, times: Infinity });
    const client = remote.createRegistryClient({ keychain: anonymous });
    try {
      const controller = new AbortController();
      const upload = client.sink(`${proxy.host}/audit/aborted:1`).putBlob(b.descriptor, async () => Readable.from([b.bytes]), { signal: controller.signal });
      while (proxy.requestsMatching({ method: 'PUT', path: '/v2/audit/aborted/' }).length === 0) await new Promise((r) => setTimeout(r, 20));
      const started = Date.now();
      controller.abort(new Error('audit: cancelled'));
      await assert.rejects(upload, { code: 'SLIPWAY_ABORTED' });
      assert.ok(Date.now() - started < 1000, `stopped after ${Date.now() - started} ms`);
      assert.equal(await direct.sink(`${registry.host}/audit/aborted:1`).hasBlob(b.descriptor), false, 'nothing committed');
    } finally {
      await client.close();
    }
  });

  it('pushes manifests as exact bytes (key order, indent, trailing newline kept): the registry serves that digest', async () => {
    const config = blob(Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'));
    config.descriptor.mediaType = MediaType.OciConfig;
    const layer = blobs[2]!;
    const sink = direct.sink(`${registry.host}/audit/exact:1`);
    await sink.putBlob(config.descriptor, async () => Readable.from([config.bytes]));
    await sink.putBlob(layer.descriptor, async () => Readable.from([layer.bytes]));
    // Unusual but valid JSON: keys out of the usual order, two-space indent, a trailing newline.
    const text = `{\n  "layers": [${JSON.stringify(layer.descriptor)}],\n  "config": ${JSON.stringify(config.descriptor)},\n  "mediaType": "${MediaType.OciManifest}",\n  "schemaVersion": 2\n}\n`;
    const bytes = Buffer.from(text);
    const manifest: ManifestBytes = { descriptor: { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length }, bytes };
    await sink.putManifest(manifest, { tag: '1' });
    const res = await fetch(`${registry.url}/v2/audit/exact/manifests/1`, { headers: { accept: MediaType.OciManifest } });
    assert.equal(res.headers.get('docker-content-digest'), manifest.descriptor.digest);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), 'the registry holds our bytes exactly');
    assert.equal((await direct.head(name.parseReference(`${registry.host}/audit/exact:1`)))?.digest, manifest.descriptor.digest);
  });
});
