// Manifest answers a real registry will not produce (it validates on push), injected by a node:http
// server on port 0: oversize, schema 1, mislabelled, lying Docker-Content-Digest, missing HEAD digest.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DigestMismatchError, SlipwayError, UnsupportedMediaTypeError } from '../errors.js';
import { parseReference } from '../name/reference.js';
import { Transport } from '../transport/transport.js';
import { sha256 } from '../v1/digest.js';
import { MediaType } from '../v1/media-types.js';
import { getManifest, headManifest, putManifest } from './manifests.js';

const image = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: sha256('{}'), size: 2 },
    layers: [],
  }),
);

type Route = (req: IncomingMessage, res: ServerResponse) => void;
const routes: Record<string, Route> = {
  '/v2/': (_req, res) => res.end('{}'),
  '/v2/a/manifests/ok': (_req, res) => {
    res.writeHead(200, { 'content-type': MediaType.OciManifest, 'docker-content-digest': sha256(image), 'content-length': image.length });
    res.end(image);
  },
  '/v2/a/manifests/huge': (_req, res) => {
    res.writeHead(200, { 'content-type': MediaType.OciManifest });
    res.end(Buffer.alloc(5 * 1024 * 1024, 0x20));
  },
  '/v2/a/manifests/schema1': (_req, res) => {
    res.writeHead(200, { 'content-type': MediaType.DockerSchema1Signed });
    res.end(JSON.stringify({ schemaVersion: 1, name: 'a', tag: 'schema1', fsLayers: [] }));
  },
  '/v2/a/manifests/mislabelled': (_req, res) => {
    res.writeHead(200, { 'content-type': MediaType.OciIndex });
    res.end(image);
  },
  '/v2/a/manifests/lying': (_req, res) => {
    res.writeHead(200, { 'content-type': MediaType.OciManifest, 'docker-content-digest': sha256('something else') });
    res.end(image);
  },
  '/v2/a/manifests/nodigest': (req, res) => {
    // Old registries omit Docker-Content-Digest on HEAD; the client falls back to GET and hashes.
    res.writeHead(200, { 'content-type': MediaType.OciManifest, ...(req.method === 'HEAD' ? {} : { 'content-length': image.length }) });
    res.end(req.method === 'HEAD' ? undefined : image);
  },
  '/v2/a/manifests/rewritten': (_req, res) => {
    res.writeHead(201, { 'docker-content-digest': sha256('not what you sent') });
    res.end();
  },
};

describe('manifest answers', () => {
  let host: string;
  let transport: Transport;
  const server = createServer((req, res) => {
    req.resume();
    const path = new URL(req.url!, 'http://x').pathname;
    // Any digest serves the same bytes, so a by-digest fetch of the wrong digest gets mismatching bytes.
    const route = routes[path.startsWith('/v2/a/manifests/sha256:') ? '/v2/a/manifests/nodigest' : path];
    if (route) route(req, res);
    else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
    }
  });
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    transport = new Transport({ retry: { attempts: 1 } });
  });
  after(async () => {
    await transport.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const call = (tag: string) => ({ transport, reference: parseReference(`${host}/a:${tag}`), scopes: ['repository:a:pull'] });

  it('returns exact bytes with a computed descriptor', async () => {
    const got = await getManifest(call('ok'));
    assert.deepEqual(Buffer.from(got.bytes), image);
    assert.deepEqual(got.descriptor, { mediaType: MediaType.OciManifest, digest: sha256(image), size: image.length });
  });

  it('refuses a manifest over 4 MiB before buffering all of it', async () => {
    await assert.rejects(getManifest(call('huge')), (err: unknown) => {
      assert.ok(SlipwayError.is(err));
      assert.equal(err.code, 'SLIPWAY_INVALID_MANIFEST');
      assert.match(err.message, /larger than the 4194304-byte manifest limit/);
      return true;
    });
  });

  it('refuses schema 1 with a message saying what to do', async () => {
    await assert.rejects(getManifest(call('schema1')), (err: unknown) => {
      assert.ok(err instanceof UnsupportedMediaTypeError);
      assert.match(err.message, /schema 1 manifest, which slipway does not support.*skopeo copy --format v2s2/);
      return true;
    });
  });

  it('refuses a body whose mediaType contradicts its Content-Type', async () => {
    await assert.rejects(getManifest(call('mislabelled')), { code: 'SLIPWAY_INVALID_MANIFEST' });
  });

  it('refuses a body that does not match Docker-Content-Digest', async () => {
    await assert.rejects(getManifest(call('lying')), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.match(err.message, /Docker-Content-Digest/);
      return true;
    });
  });

  it('refuses a by-digest fetch whose bytes hash differently', async () => {
    const wrong = sha256('other');
    await assert.rejects(getManifest({ ...call('ok'), identifier: wrong }), DigestMismatchError);
  });

  it('HEAD falls back to GET when the registry omits the digest, and 404 is undefined', async () => {
    assert.deepEqual(await headManifest(call('nodigest')), { mediaType: MediaType.OciManifest, digest: sha256(image), size: image.length });
    assert.equal(await headManifest(call('missing')), undefined);
  });

  it('notices a registry that stored something other than what was pushed', async () => {
    const manifest = { descriptor: { mediaType: MediaType.OciManifest, digest: sha256(image), size: image.length }, bytes: image };
    await assert.rejects(putManifest({ ...call('rewritten'), manifest, identifier: 'rewritten' }), /the registry rewrote it/);
    const wrongBytes = { ...manifest, descriptor: { ...manifest.descriptor, digest: sha256('x') } };
    await assert.rejects(putManifest({ ...call('rewritten'), manifest: wrongBytes }), DigestMismatchError);
  });
});
