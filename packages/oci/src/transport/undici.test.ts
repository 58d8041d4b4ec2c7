import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { silentServer } from '../testing/silent-server.js';
import { loadUndici, loadUndiciParts } from './undici.js';

async function echoServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('x-method', req.method ?? '');
      res.end(`${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('the transport loads only undici\'s lib parts (the whole package would cost ~45 ms more per CLI run)', async () => {
  const parts = await loadUndici();
  assert.equal(parts.loadedFrom, 'lib', 'undici moved its lib files: update the paths in undici.ts');
  assert.equal(await loadUndici(), parts, 'loaded once per process');
});

for (const from of ['lib', 'package'] as const) {
  test(`undici parts loaded from the ${from} send requests through an Agent and a Client`, async () => {
    const { server, origin } = await echoServer();
    const { Agent, Client, request, loadedFrom } = await loadUndiciParts(from);
    assert.equal(loadedFrom, from);
    const agent = new Agent({ connections: 2 });
    const client = new Client(origin);
    try {
      const put = await request(agent, { origin, path: '/v2/a?x=1', method: 'PUT', body: 'hello' });
      assert.equal(put.statusCode, 200);
      assert.equal(await put.body.text(), 'PUT /v2/a?x=1 hello');
      const head = await request(agent, { origin, path: '/v2/', method: 'HEAD', reset: false });
      assert.equal(head.headers['x-method'], 'HEAD');
      await head.body.dump();
      const viaClient = await request(client, { path: '/info', method: 'GET' });
      assert.equal(await viaClient.body.text(), 'GET /info ');
      const aborted = new AbortController();
      aborted.abort(new Error('stop'));
      await assert.rejects(request(agent, { origin, path: '/', method: 'GET', signal: aborted.signal }));
    } finally {
      await agent.close();
      await client.close();
      server.close();
    }
  });
}

test('an abort rejects a request at once while its TLS handshake hangs (undici waits for the connect timeout)', async () => {
  // Accepts the TCP connection, never says a word: the TLS client hello goes unanswered.
  const silent = await silentServer();
  const origin = `https://${silent.host}`;
  const { Agent, request } = await loadUndiciParts('lib');
  const agent = new Agent();
  try {
    const controller = new AbortController();
    const started = Date.now();
    const pending = request(agent, { origin, path: '/v2/', method: 'GET', signal: controller.signal });
    setTimeout(() => controller.abort(new Error('caller gave up')), 200);
    await assert.rejects(pending, /caller gave up/);
    assert.ok(Date.now() - started < 2000, `rejected after ${Date.now() - started} ms`);
  } finally {
    await agent.destroy();
    await silent.close();
  }
});
