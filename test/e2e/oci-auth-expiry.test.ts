// A Bearer token the registry stops accepting in the middle of a push (revoked, or expired early by
// clock skew) against the real CNCF registry 2.8 in token mode. A node:http proxy in front of it
// revokes the token of every monolithic blob PUT by removing it, so the registry itself answers with
// its own 401 challenge — and challenges the upload-status GET that recovery sends with `:pull`, not
// the `:pull,push` of the token in use. The copy must drop the token the registry refused (the PUT
// is sent with retry off: it fails, its recovery goes on) and finish with fresh ones.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CANARY_PASSWORD, CANARY_USERNAME, startRegistry, type TestRegistry } from '../support/registry.js';
import { putRawBlob, putRawManifest, slipway } from './audit-support.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

interface RevokingProxy {
  host: string;
  /** Requests as the registry saw them: `METHOD path -> status`, with `(revoked)` where a token was taken away. */
  log: string[];
  /** How many tokens were revoked. */
  revoked: () => number;
  /** How many requests arrived carrying a token already revoked. */
  reusedRevoked: () => number;
  stop(): Promise<void>;
}

/**
 * Forwards to `target`, keeping the client's Host header (so the registry's upload Locations name the
 * proxy). A PUT with a body to an upload session revokes the token it carries; any request carrying a
 * revoked token goes on without it, and the registry answers 401 as it does to a token it refuses.
 */
async function startRevokingProxy(target: TestRegistry): Promise<RevokingProxy> {
  const revoked = new Set<string>();
  const log: string[] = [];
  let reused = 0;
  const server: Server = createServer((req, res) => {
    const headers = { ...req.headers };
    const token = headers.authorization?.startsWith('Bearer ') ? headers.authorization : undefined;
    const monolithic = req.method === 'PUT' && req.url!.includes('/blobs/uploads/') && Number(headers['content-length'] ?? 0) > 0;
    if (token && revoked.has(token)) reused++;
    if (token && monolithic) revoked.add(token);
    const refused = token !== undefined && revoked.has(token);
    if (refused) delete headers.authorization;
    const upstream = httpRequest({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers }, (answer) => {
      log.push(`${req.method} ${req.url!.split('?')[0]} -> ${answer.statusCode}${refused ? ' (revoked)' : ''}`);
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    revoked: () => revoked.size,
    reusedRevoked: () => reused,
    stop: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a token revoked mid-push (registry 2.8, token auth)', () => {
  let open: TestRegistry;
  let token: TestRegistry;
  let proxy: RevokingProxy;
  let work: string;
  let source: string;
  let digest: string;

  before(async () => {
    [open, token] = await Promise.all([startRegistry(), startRegistry({ auth: 'token', username: CANARY_USERNAME, password: CANARY_PASSWORD })]);
    proxy = await startRevokingProxy(token);
    work = await mkdtemp(join(tmpdir(), 'slipway-auth-expiry-'));
    const config = await putRawBlob(open, 'src/app', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })), 'application/vnd.oci.image.config.v1+json');
    const layers = [];
    for (let i = 0; i < 3; i++) layers.push(await putRawBlob(open, 'src/app', Buffer.alloc(3000 + i, 0x41 + i), 'application/vnd.oci.image.layer.v1.tar'));
    const put = await putRawManifest(open, 'src/app', '1', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers })), OCI_MANIFEST);
    assert.equal(put.status, 201, put.body);
    source = `${open.host}/src/app:1`;
    digest = put.descriptor.digest;
    const auth = Buffer.from(`${CANARY_USERNAME}:${CANARY_PASSWORD}`).toString('base64');
    await writeFile(join(work, 'config.json'), JSON.stringify({ auths: { [proxy.host]: { auth } } }));
  });
  after(async () => {
    await proxy?.stop();
    await Promise.all([open?.stop(), token?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('drops each refused token and finishes the copy with fresh ones', async () => {
    const issued = token.tokenIssuer!.requests.length;
    const out = await slipway(['copy', source, `${proxy.host}/dst/app:1`, '--jobs', '1', '-q'], { DOCKER_CONFIG: work });
    assert.equal(out.code, 0, `${out.stderr}\n${proxy.log.join('\n')}`);
    assert.match(out.stdout, new RegExp(`${proxy.host}/dst/app:1@${digest}`));
    // Every blob's monolithic PUT lost its token (4 blobs), and each was recovered from.
    assert.equal(proxy.revoked(), 4, proxy.log.join('\n'));
    assert.equal(proxy.log.filter((l) => l.includes('(revoked)')).length, 4, 'a revoked token is never sent again after its 401');
    assert.equal(proxy.reusedRevoked(), 0);
    // One token to start with, and one after each revocation: no more.
    assert.equal(token.tokenIssuer!.requests.length - issued, 5);
    assert.ok(!`${out.stdout}${out.stderr}`.includes(CANARY_PASSWORD));
    const again = await slipway(['digest', `${proxy.host}/dst/app:1`], { DOCKER_CONFIG: work });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim().split('@').at(-1), digest);
  });
});
