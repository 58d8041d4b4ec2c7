// Each fault the proxy offers, observed by a plain HTTP client in front of the real registry.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startFaultProxy } from '../support/fault-proxy.js';
import type { FaultProxy } from '../support/fault-proxy.js';
import { startRegistry } from '../support/registry.js';
import type { TestRegistry } from '../support/registry.js';

const blob = randomBytes(256 * 1024);
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
let reg: TestRegistry;
let proxy: FaultProxy;
let blobUrl: string;

before(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy({ target: reg });
  const start = await fetch(`${reg.url}/v2/faults/blob/blobs/uploads/`, { method: 'POST' });
  const loc = new URL(start.headers.get('location')!, reg.url);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(put.status, 201);
  blobUrl = `${proxy.url}/v2/faults/blob/blobs/${digest}`;
});
after(async () => {
  await proxy.stop();
  await reg.stop();
});

test('status faults: 429 carries Retry-After (seconds or date); skip lets earlier matches through', async () => {
  proxy.clearRequests();
  proxy.inject({ match: { path: '/blobs/' }, fault: { status: 429, retryAfter: 3 } });
  proxy.inject({ match: { method: 'HEAD' }, fault: { status: 429, retryAfter: 'Wed, 21 Oct 2015 07:28:00 GMT' } });
  proxy.inject({ match: { method: 'GET', path: /\/blobs\// }, fault: { status: 502 }, skip: 1 });
  const r1 = await fetch(blobUrl);
  assert.equal(r1.status, 429);
  assert.equal(r1.headers.get('retry-after'), '3');
  await r1.arrayBuffer();
  const r2 = await fetch(blobUrl, { method: 'HEAD' });
  assert.equal(r2.status, 429);
  assert.equal(r2.headers.get('retry-after'), 'Wed, 21 Oct 2015 07:28:00 GMT');
  const r3 = await fetch(blobUrl); // skipped by the 502 rule
  assert.equal(r3.status, 200);
  assert.equal((await r3.arrayBuffer()).byteLength, blob.length);
  const r4 = await fetch(blobUrl);
  assert.equal(r4.status, 502);
  await r4.arrayBuffer();
  assert.deepEqual(proxy.requests.map((r) => r.status), [429, 429, 200, 502]);
  assert.deepEqual(proxy.requests.map((r) => r.forwarded), [false, false, true, false]);
});

test('reset before-forward never reaches the registry; before-response does', async () => {
  proxy.clearRequests();
  proxy.inject({ match: { path: /^\/v2\/$/ }, fault: { reset: 'before-forward' } });
  await assert.rejects(fetch(`${proxy.url}/v2/`));
  assert.equal(proxy.requests[0]!.forwarded, false);

  // A manifest PUT that the registry commits but whose answer is lost.
  const config = Buffer.from('{}');
  const cfgDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  const up = await fetch(`${reg.url}/v2/faults/lost/blobs/uploads/`, { method: 'POST' });
  const loc = new URL(up.headers.get('location')!, reg.url);
  loc.searchParams.set('digest', cfgDigest);
  assert.equal((await fetch(loc, { method: 'PUT', body: config })).status, 201);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgDigest, size: config.length }, layers: [] });
  proxy.inject({ match: { method: 'PUT', path: '/manifests/' }, fault: { reset: 'before-response' } });
  await assert.rejects(fetch(`${proxy.url}/v2/faults/lost/manifests/v1`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } }));
  const put = proxy.requestsMatching({ method: 'PUT' })[0]!;
  assert.equal(put.forwarded, true);
  assert.equal(put.status, 0);
  assert.equal((await fetch(`${reg.url}/v2/faults/lost/manifests/v1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).status, 200);
});

test('reset and truncate mid-body cut the download at the given byte; corrupt flips one byte', async () => {
  proxy.clearRequests();
  proxy.inject({ match: { path: digest }, fault: { reset: { afterBytes: 1000 } } });
  const r1 = await fetch(blobUrl);
  assert.equal(r1.status, 200);
  await assert.rejects(r1.arrayBuffer());
  assert.equal(proxy.requests[0]!.responseBytes, 1000);

  proxy.inject({ match: { path: digest }, fault: { truncate: { afterBytes: 70_000 } } });
  const r2 = await fetch(blobUrl);
  assert.equal(r2.headers.get('content-length'), String(blob.length));
  await assert.rejects(r2.arrayBuffer());
  assert.equal(proxy.requests[1]!.responseBytes, 70_000);

  proxy.inject({ match: { path: digest }, fault: { corrupt: { atByte: 100_000 } } });
  const body = Buffer.from(await (await fetch(blobUrl)).arrayBuffer());
  assert.equal(body.length, blob.length);
  assert.equal(body[100_000], blob[100_000]! ^ 0xff);
  body[100_000] = blob[100_000]!;
  assert.ok(body.equals(blob));

  const clean = Buffer.from(await (await fetch(blobUrl)).arrayBuffer());
  assert.ok(clean.equals(blob));
});

test('reset after request bytes kills an upload midway; delay slows one request', async () => {
  proxy.clearRequests();
  const start = await fetch(`${proxy.url}/v2/faults/upload/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const loc = start.headers.get('location')!;
  assert.ok(loc.startsWith(proxy.url) || loc.startsWith('/'), `Location goes through the proxy: ${loc}`);
  proxy.inject({ match: { method: 'PATCH' }, fault: { reset: { afterRequestBytes: 4096 } } });
  await assert.rejects(fetch(new URL(loc, proxy.url), { method: 'PATCH', body: blob, headers: { 'content-type': 'application/octet-stream' } }));
  assert.equal(proxy.requestsMatching({ method: 'PATCH' })[0]!.requestBytes, 4096);

  proxy.inject({ match: { path: /^\/v2\/$/ }, fault: { delayMs: 300 } });
  const t0 = Date.now();
  assert.equal((await fetch(`${proxy.url}/v2/`, { headers: { authorization: 'Basic c2VjcmV0OnNlY3JldA==' } })).status, 200);
  assert.ok(Date.now() - t0 >= 290);
  const last = proxy.requests[proxy.requests.length - 1]!;
  assert.equal(last.fault, 'delay 300 ms');
  assert.equal(last.headers.authorization, '<redacted>');
});
