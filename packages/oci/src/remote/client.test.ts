// The registry client's paging against hostile `node:http` registries on port 0: a `Link` header
// that leads back to a page already read, and pages that never end, stop with SLIPWAY_REGISTRY
// instead of growing the heap until the process dies.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { SlipwayError } from '../errors.js';
import { closeAfterTests } from '../internal/test-cleanup.js';
import { MediaType } from '../v1/media-types.js';
import { createRegistryClient, type RegistryClient } from './client.js';

const { servers, transports } = closeAfterTests();

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ host: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    if (req.url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    requests.push(req.url ?? '');
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

function client(): RegistryClient {
  const c = createRegistryClient({ keychain: { resolve: async () => undefined }, retry: { baseDelayMs: 1, maxDelayMs: 5 } });
  transports.push(c.transport);
  return c;
}

const subject = `sha256:${'a'.repeat(64)}`;
const referrer = (i: number) => ({ mediaType: MediaType.OciManifest, digest: `sha256:${i.toString(16).padStart(64, '0')}`, size: 100 });

describe('paging', () => {
  it('refuses a tags Link that leads back to a page already read', async () => {
    const { host, requests } = await serve((req, res) => {
      // Page 1 links to page 2, which links back to page 1.
      const next = req.url?.includes('last=b') ? '</v2/repo/tags/list?n=1000>' : '</v2/repo/tags/list?n=1000&last=b>';
      res.writeHead(200, { 'content-type': 'application/json', link: `${next}; rel="next"` }).end(JSON.stringify({ name: 'repo', tags: ['a', 'b'] }));
    });
    await assert.rejects(client().listTags(`${host}/repo`), (err: unknown) => {
      assert.ok(SlipwayError.is(err));
      assert.equal(err.code, 'SLIPWAY_REGISTRY');
      assert.match(err.message, /listing tags of .*\/repo: the registry's Link header leads back to a page already read/);
      return true;
    });
    assert.equal(requests.length, 2);
  });

  it('stops a tag list that never ends at a million tags, not at the heap limit', async () => {
    // Every page is new (a counter in the URL) and holds 50 000 tags: 21 pages pass the cap.
    const page = JSON.stringify({ name: 'repo', tags: Array.from({ length: 50_000 }, (_, i) => `t${i}`) });
    let n = 0;
    const { host, requests } = await serve((_req, res) => {
      n++;
      res.writeHead(200, { 'content-type': 'application/json', link: `</v2/repo/tags/list?n=1000&page=${n}>; rel="next"` }).end(page);
    });
    await assert.rejects(client().listTags(`${host}/repo`), { code: 'SLIPWAY_REGISTRY', message: /more than 1000000 tags/ });
    assert.equal(requests.length, 21);
  });

  it('refuses a referrers Link loop, and more than 10 000 referrers', async () => {
    const loop = await serve((req, res) => {
      const next = req.url?.includes('page=2') ? `</v2/repo/referrers/${subject}>` : `</v2/repo/referrers/${subject}?page=2>`;
      res.writeHead(200, { 'content-type': MediaType.OciIndex, link: `${next}; rel="next"` }).end(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [referrer(1)] }));
    });
    await assert.rejects(client().referrers(`${loop.host}/repo`, subject), { code: 'SLIPWAY_REGISTRY', message: /leads back to a page already read/ });
    assert.equal(loop.requests.length, 2);

    let n = 0;
    const many = await serve((_req, res) => {
      n++;
      const manifests = Array.from({ length: 3000 }, (_, i) => referrer(n * 3000 + i));
      res.writeHead(200, { 'content-type': MediaType.OciIndex, link: `</v2/repo/referrers/${subject}?page=${n}>; rel="next"` }).end(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
    });
    await assert.rejects(client().referrers(`${many.host}/repo`, subject), { code: 'SLIPWAY_REGISTRY', message: /more than 10000/ });
    assert.equal(many.requests.length, 4);
  });

  it('leaves out names that are not valid tags (terminal escapes, newlines), keeping the rest', async () => {
    const { host } = await serve((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'repo', tags: ['v1', '\u001b[31mred', 'a\nforged line', '.hidden', 'x'.repeat(129), 'v_2.0-rc'] })),
    );
    assert.deepEqual(await client().listTags(`${host}/repo`), ['v1', 'v_2.0-rc']);
  });

  it('still follows an ordinary Link chain to its end', async () => {
    const { host } = await serve((req, res) => {
      const last = /last=(\w+)/.exec(req.url ?? '')?.[1];
      if (last === 'b') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'repo', tags: ['c'] }));
      res.writeHead(200, { 'content-type': 'application/json', link: '</v2/repo/tags/list?n=1000&last=b>; rel="next"' }).end(JSON.stringify({ name: 'repo', tags: ['a', 'b'] }));
    });
    assert.deepEqual(await client().listTags(`${host}/repo`), ['a', 'b', 'c']);
  });
});
