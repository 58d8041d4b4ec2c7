// Proves the shared test bed works against the real parts: the CNCF registry in its three auth
// modes, the token issuer, the fault proxy, restart/kill, buildah indexes and skopeo.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { test } from 'node:test';
import { startFaultProxy } from '../support/fault-proxy.js';
import { busyboxOciLayout, hasBusyboxDeb, pushBusyboxImage, pushBusyboxIndex, skopeoInspectRaw } from '../support/fixtures.js';
import { CANARY_PASSWORD, startRegistry } from '../support/registry.js';
import type { TestRegistry } from '../support/registry.js';
import { run, skipUnless } from '../support/tools.js';

function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Monolithic blob upload (POST then PUT ?digest=) following Location, as the spec describes. */
async function uploadBlob(base: string, repo: string, data: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; digest: string }> {
  const digest = sha256(data);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers, redirect: 'manual' });
  await start.arrayBuffer();
  if (start.status !== 202) return { status: start.status, digest };
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: data, redirect: 'manual' });
  await put.arrayBuffer();
  return { status: put.status, digest };
}

async function withRegistry(t: { after: (fn: () => Promise<void>) => void }, r: TestRegistry): Promise<TestRegistry> {
  t.after(() => r.stop());
  return r;
}

test('open registry accepts a skopeo push and serves the manifest', async (t) => {
  if (!skipUnless(t, 'skopeo', 'push cross-check') || !skipUnless(t, 'buildah', 'OCI layout fixture')) return;
  if (!hasBusyboxDeb('amd64')) return t.skip('SKIPPED: busybox-static .deb missing; run scripts/ci-setup.sh');
  const reg = await withRegistry(t, await startRegistry());
  const layout = await busyboxOciLayout('amd64');
  const r = await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout.dir}:${layout.tag}`, `docker://${reg.host}/testbed/busybox:v1`]);
  assert.equal(r.code, 0, r.stderr);

  const index = JSON.parse(await readFile(`${layout.dir}/index.json`, 'utf8')) as { manifests: { digest: string }[] };
  const res = await fetch(`${reg.url}/v2/testbed/busybox/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), index.manifests[0]!.digest);
  assert.equal(sha256(body), index.manifests[0]!.digest);
});

test('a registry logging only errors starts too (its own listening socket found in /proc), and says nothing at info', async (t) => {
  const reg = await withRegistry(t, await startRegistry({ logLevel: 'error' }));
  const res = await fetch(`${reg.url}/v2/`);
  await res.arrayBuffer();
  assert.equal(res.status, 200);
  assert.doesNotMatch(await reg.log(), /level=info/);
});

test('htpasswd registry rejects anonymous callers and accepts the user', async (t) => {
  if (!skipUnless(t, 'htpasswd', 'bcrypt htpasswd file')) return;
  const reg = await withRegistry(t, await startRegistry({ auth: 'htpasswd', password: CANARY_PASSWORD }));
  assert.equal(reg.password, CANARY_PASSWORD);
  const anon = await fetch(`${reg.url}/v2/`);
  assert.equal(anon.status, 401);
  assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic realm=/);
  const wrong = await fetch(`${reg.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from(`${reg.username}:nope`).toString('base64')}` } });
  assert.equal(wrong.status, 401);
  const ok = await fetch(`${reg.url}/v2/`, { headers: { authorization: reg.basicAuth() } });
  assert.equal(ok.status, 200);
  const blob = await uploadBlob(reg.url, 'private/app', Buffer.from('hello htpasswd'), { authorization: reg.basicAuth() });
  assert.equal(blob.status, 201);
  assert.equal((await uploadBlob(reg.url, 'private/app', Buffer.from('anonymous'))).status, 401);
});

test('token registry: Bearer challenge, issued tokens work, pull-only grant cannot push', async (t) => {
  const reg = await withRegistry(t, await startRegistry({ auth: 'token' }));
  const issuer = reg.tokenIssuer!;
  const anon = await fetch(`${reg.url}/v2/`);
  assert.equal(anon.status, 401);
  const challenge = anon.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /^Bearer /);
  assert.ok(challenge.includes(`realm="${issuer.realm}"`), challenge);
  assert.ok(challenge.includes(`service="${issuer.service}"`), challenge);

  const getToken = async (scope: string, auth?: string): Promise<Response> => fetch(
    `${issuer.realm}?service=${encodeURIComponent(issuer.service)}&scope=${encodeURIComponent(scope)}`,
    { headers: auth === undefined ? {} : { authorization: auth } });

  // Push scope first, as clients do before an upload.
  const res = await getToken('repository:team/app:pull,push', reg.basicAuth());
  assert.equal(res.status, 200);
  const body = await res.json() as { token: string; access_token: string; expires_in: number; issued_at: string };
  assert.equal(body.token, body.access_token);
  assert.equal(body.expires_in, 300);
  assert.ok(!Number.isNaN(Date.parse(body.issued_at)));
  const pushed = await uploadBlob(reg.url, 'team/app', Buffer.from('token push'), { authorization: `Bearer ${body.token}` });
  assert.equal(pushed.status, 201);
  const head = await fetch(`${reg.url}/v2/team/app/blobs/${pushed.digest}`, { method: 'HEAD', headers: { authorization: `Bearer ${body.token}` } });
  assert.equal(head.status, 200);

  assert.equal((await getToken('repository:team/app:pull', `Basic ${Buffer.from(`${reg.username}:wrong`).toString('base64')}`)).status, 401);

  // The same user limited to pull: the issuer grants only pull, the registry refuses the upload.
  issuer.setGrants(reg.username, [{ repo: '*', actions: ['pull'] }]);
  const limited = await (await getToken('repository:team/app:pull,push', reg.basicAuth())).json() as { token: string };
  const denied = await uploadBlob(reg.url, 'team/app', Buffer.from('denied'), { authorization: `Bearer ${limited.token}` });
  assert.equal(denied.status, 401);
  const pull = await fetch(`${reg.url}/v2/team/app/blobs/${pushed.digest}`, { headers: { authorization: `Bearer ${limited.token}` } });
  assert.equal(pull.status, 200);
  assert.equal(await pull.text(), 'token push');

  // Anonymous callers get a token without access, which the registry refuses.
  const anonToken = await (await getToken('repository:team/app:pull')).json() as { token: string };
  assert.equal((await fetch(`${reg.url}/v2/team/app/tags/list`, { headers: { authorization: `Bearer ${anonToken.token}` } })).status, 401);

  const scopes = issuer.requests.map((r) => r.scopes.join(' '));
  assert.deepEqual(scopes, ['repository:team/app:pull,push', 'repository:team/app:pull', 'repository:team/app:pull,push', 'repository:team/app:pull']);
  assert.deepEqual(issuer.requests.map((r) => r.status), [200, 401, 200, 200]);
  assert.deepEqual(issuer.requests[2]!.granted, [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
  assert.equal(issuer.requests[3]!.account, undefined);
});

test('fault proxy injects a 503 once, then forwards; uploads keep going through it', async (t) => {
  const reg = await withRegistry(t, await startRegistry());
  const proxy = await startFaultProxy({ target: reg });
  t.after(() => proxy.stop());
  const fault = proxy.inject({ match: { method: 'GET', path: /^\/v2\/$/ }, fault: { status: 503 }, times: 1 });
  assert.equal((await fetch(`${proxy.url}/v2/`)).status, 503);
  assert.equal((await fetch(`${proxy.url}/v2/`)).status, 200);
  assert.equal(fault.hits, 1);
  assert.equal(fault.remaining, 0);

  const up = await uploadBlob(proxy.url, 'via/proxy', Buffer.from('through the proxy'));
  assert.equal(up.status, 201);
  const seen = proxy.requests.map((r) => `${r.method} ${r.path.split('?')[0]!.replace(/uploads\/[^/]+$/, 'uploads/ID')} ${r.status}`);
  assert.deepEqual(seen, ['GET /v2/ 503', 'GET /v2/ 200', 'POST /v2/via/proxy/blobs/uploads/ 202', 'PUT /v2/via/proxy/blobs/uploads/ID 201']);
  assert.equal(proxy.requests[0]!.forwarded, false);
  assert.equal(proxy.requests[3]!.forwarded, true);
});

test('restart keeps stored content on the same port; kill then restart too', async (t) => {
  const reg = await withRegistry(t, await startRegistry());
  const up = await uploadBlob(reg.url, 'persist/me', Buffer.from('survives restarts'));
  assert.equal(up.status, 201);
  const port = reg.port;
  await reg.restart();
  assert.equal(reg.port, port);
  assert.equal(await (await fetch(`${reg.url}/v2/persist/me/blobs/${up.digest}`)).text(), 'survives restarts');
  await reg.kill();
  assert.equal(reg.running, false);
  await assert.rejects(fetch(`${reg.url}/v2/`));
  await reg.restart();
  assert.equal(reg.running, true);
  assert.equal((await fetch(`${reg.url}/v2/persist/me/blobs/${up.digest}`, { method: 'HEAD' })).status, 200);
});

test('TLS registry: verification fails without the CA and succeeds with it', async (t) => {
  const reg = await withRegistry(t, await startRegistry({ tls: true }));
  assert.match(reg.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const ca = await readFile(reg.caPath!, 'utf8');
  const get = (withCa: boolean): Promise<number> => new Promise((resolve, reject) => {
    const req = httpsRequest(`${reg.url}/v2/`, { ca: withCa ? ca : undefined, agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.end();
  });
  await assert.rejects(get(false), /self[- ]signed|unable to verify|UNABLE_TO_GET_ISSUER/i);
  assert.equal(await get(true), 200);
});

test('buildah index holds linux/amd64, linux/arm64 and linux/arm/v7', async (t) => {
  if (!skipUnless(t, 'buildah', 'multi-platform index') || !skipUnless(t, 'skopeo', 'inspect --raw')) return;
  for (const a of ['amd64', 'arm64', 'arm'] as const) {
    if (!hasBusyboxDeb(a)) return t.skip(`SKIPPED: busybox-static .deb for ${a} missing; run scripts/ci-setup.sh`);
  }
  const reg = await withRegistry(t, await startRegistry());
  const pushed = await pushBusyboxIndex(reg.host, 'testbed/multi', { tag: 'v1' });
  assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/);
  const raw = await skopeoInspectRaw(pushed.ref) as { mediaType?: string; manifests: { digest: string; platform: { os: string; architecture: string; variant?: string } }[] };
  assert.equal(raw.mediaType, 'application/vnd.oci.image.index.v1+json');
  const platforms = raw.manifests.map((m) => [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/')).sort();
  assert.deepEqual(platforms, ['linux/amd64', 'linux/arm/v7', 'linux/arm64']);
  for (const m of raw.manifests) {
    const child = await fetch(`${reg.url}/v2/testbed/multi/manifests/${m.digest}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(child.status, 200, `child ${m.digest} pushed`);
  }
  // A single-platform push of the same arm64 image lands on the same child digest (deterministic builds).
  const single = await pushBusyboxImage(reg.host, 'testbed/single', 'arm64');
  assert.ok(raw.manifests.some((m) => m.digest === single.digest), 'single arm64 digest equals the index child');
});

test('fixtures push to htpasswd and token registries with credentials (real clients speak to our issuer)', async (t) => {
  if (!skipUnless(t, 'buildah', 'push with credentials') || !skipUnless(t, 'skopeo', 'inspect with credentials')) return;
  if (!hasBusyboxDeb('amd64')) return t.skip('SKIPPED: busybox-static .deb missing; run scripts/ci-setup.sh');
  const basic = await withRegistry(t, await startRegistry({ auth: 'htpasswd' }));
  const token = await withRegistry(t, await startRegistry({ auth: 'token' }));
  for (const reg of [basic, token]) {
    const creds = { username: reg.username, password: reg.password };
    const pushed = await pushBusyboxImage(reg.host, 'auth/busybox', 'amd64', { creds });
    const raw = await skopeoInspectRaw(pushed.ref, { creds }) as { config: { digest: string } };
    assert.match(raw.config.digest, /^sha256:/);
    const anon = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--no-creds', `docker://${pushed.ref}`]);
    assert.notEqual(anon.code, 0, 'anonymous inspect must fail');
  }
  const asked = token.tokenIssuer!.requests.filter((r) => r.account === token.username).flatMap((r) => r.scopes);
  assert.ok(asked.some((s) => s === 'repository:auth/busybox:pull,push' || s === 'repository:auth/busybox:push,pull'), asked.join(' | '));
});
