// startStreamedUpload against a node:http server on port 0 that speaks the upload protocol: bytes
// go in one chunked PATCH without Content-Range and are committed by an empty PUT; a digest the
// server does not find, a PATCH refused before its body is read, a short Range and abort() all end as
// 'failed' with the session deleted, and the producer is told through the sink.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { parseRepository } from '../name/reference.js';
import { closeAfterTests } from '../internal/test-cleanup.js';
import { Transport } from '../transport/transport.js';
import { sha256 } from '../v1/digest.js';
import { startStreamedUpload } from './streamed-upload.js';

type Mode = 'ok' | 'refuse-early' | 'short-range';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bytes: number;
}

const { servers, transports } = closeAfterTests();

/** A registry's upload endpoints, one session at a time, recording every request. */
async function serve(mode: Mode): Promise<{ host: string; seen: Seen[]; stored: () => Buffer }> {
  const seen: Seen[] = [];
  let stored: Buffer[] = [];
  const server = createServer((req, res) => {
    const record: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes: 0 };
    if (req.url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    seen.push(record);
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'POST') {
      stored = [];
      return void res.writeHead(202, { location: '/v2/test/blob/blobs/uploads/s1?_state=abc', 'content-length': '0' }).end();
    }
    if (req.method === 'PATCH' && mode === 'refuse-early') {
      // A server that rejects a PATCH without Content-Range before reading its body (ggcr #2005's proxy).
      res.writeHead(400, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_INVALID', message: 'no range' }] }));
      return;
    }
    if (req.method === 'PATCH') {
      req.on('data', (chunk: Buffer) => {
        record.bytes += chunk.length;
        stored.push(chunk);
      });
      req.on('end', () => {
        const size = Buffer.concat(stored).length;
        const end = mode === 'short-range' ? size - 2 : size - 1;
        res.writeHead(202, { location: '/v2/test/blob/blobs/uploads/s1?_state=def', range: `0-${end}`, 'content-length': '0' }).end();
      });
      return;
    }
    if (req.method === 'PUT') {
      const digest = url.searchParams.get('digest');
      const got = sha256(Buffer.concat(stored));
      if (digest !== got) {
        return void res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'digest did not match' }] }));
      }
      return void res.writeHead(201, { 'docker-content-digest': got, 'content-length': '0' }).end();
    }
    if (req.method === 'DELETE') return void res.writeHead(204).end();
    res.writeHead(405).end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen, stored: () => Buffer.concat(stored) };
}

function start(host: string) {
  const transport = new Transport({ retry: { baseDelayMs: 1, maxDelayMs: 5 } });
  transports.push(transport);
  return startStreamedUpload({ transport, repository: parseRepository(`${host}/test/blob`), highWaterMark: 64 * 1024 });
}

/** Writes `data` in 64 KiB pieces honouring backpressure, as the compressor does; stops at an 'error'. */
async function produce(sink: Writable, data: Buffer): Promise<{ error?: Error; written: number }> {
  let error: Error | undefined;
  sink.on('error', (err) => (error = err));
  sink.on('close', () => (error ??= new Error('closed before the end')));
  let written = 0;
  for (let offset = 0; offset < data.length && !error; offset += 64 * 1024) {
    const piece = data.subarray(offset, offset + 64 * 1024);
    written += piece.length;
    if (!sink.write(piece)) await new Promise<void>((resolve) => {
      const done = () => {
        sink.off('drain', done);
        sink.off('close', done);
        resolve();
      };
      sink.on('drain', done);
      sink.on('close', done);
    });
  }
  if (!error) sink.end();
  return error ? { error, written } : { written };
}

describe('startStreamedUpload', () => {
  const data = randomBytes(2 * 1024 * 1024 + 17);
  const descriptor = { mediaType: 'application/octet-stream', digest: sha256(data), size: data.length };

  it('sends one chunked PATCH without Content-Range, then commits with an empty PUT', async () => {
    const server = await serve('ok');
    const upload = start(server.host);
    assert.deepEqual(await produce(upload.sink, data), { written: data.length });
    assert.equal(await upload.finish(descriptor), 'ok');
    assert.equal(await upload.finish(descriptor), 'ok', 'idempotent');
    assert.deepEqual(server.stored(), data);
    assert.deepEqual(server.seen.map((r) => r.method), ['POST', 'PATCH', 'PUT']);
    const patch = server.seen[1]!;
    assert.equal(patch.headers['content-range'], undefined);
    assert.equal(patch.headers['content-length'], undefined);
    assert.equal(patch.headers['transfer-encoding'], 'chunked');
    assert.equal(patch.headers['content-type'], 'application/octet-stream');
    assert.equal(patch.bytes, data.length);
    const put = server.seen[2]!;
    assert.match(put.url, /^\/v2\/test\/blob\/blobs\/uploads\/s1\?_state=def&digest=sha256%3A[0-9a-f]{64}$/, 'the PATCH answer\'s Location, kept exactly');
    assert.equal(put.headers['content-length'], '0');
    assert.equal(upload.error, undefined);
    upload.abort();
    assert.equal(server.seen.length, 3, 'abort after a commit does nothing');
  });

  it('a digest the registry does not find: failed, and the session is deleted', async () => {
    const server = await serve('ok');
    const upload = start(server.host);
    await produce(upload.sink, data);
    const wrong = { ...descriptor, digest: sha256(Buffer.from('other')) };
    assert.equal(await upload.finish(wrong), 'failed');
    await waitFor(() => server.seen.some((r) => r.method === 'DELETE'));
    assert.deepEqual(server.seen.map((r) => r.method), ['POST', 'PATCH', 'PUT', 'DELETE']);
    assert.match(String(upload.error), /digest did not match/);
  });

  it('a PATCH refused before its body is read: the producer hears at once, failed, session deleted', async () => {
    const server = await serve('refuse-early');
    const upload = start(server.host);
    const big = randomBytes(64 * 1024 * 1024);
    const produced = await produce(upload.sink, big);
    assert.ok(produced.error, 'the sink reported the failure');
    assert.ok(produced.written < big.length, `stopped early (${produced.written} of ${big.length} bytes)`);
    assert.equal(await upload.finish({ ...descriptor, digest: sha256(big), size: big.length }), 'failed');
    await waitFor(() => server.seen.some((r) => r.method === 'DELETE'));
    assert.equal(server.seen.filter((r) => r.method === 'PUT').length, 0);
  });

  it('a Range short of the size: failed without a PUT', async () => {
    const server = await serve('short-range');
    const upload = start(server.host);
    await produce(upload.sink, data);
    assert.equal(await upload.finish(descriptor), 'failed');
    await waitFor(() => server.seen.some((r) => r.method === 'DELETE'));
    assert.equal(server.seen.filter((r) => r.method === 'PUT').length, 0);
    assert.equal((upload.error as { code?: string }).code, 'SLIPWAY_SIZE_MISMATCH');
  });

  it('abort() cuts the PATCH and deletes the session', async () => {
    const server = await serve('ok');
    const upload = start(server.host);
    upload.sink.write(data.subarray(0, 100_000));
    await waitFor(() => server.seen.some((r) => r.method === 'PATCH'));
    let sinkError: unknown;
    upload.sink.on('error', (err) => (sinkError = err));
    upload.abort(new Error('compression failed'));
    assert.equal(await upload.finish(descriptor), 'failed');
    await waitFor(() => server.seen.some((r) => r.method === 'DELETE'));
    assert.equal(server.seen.filter((r) => r.method === 'PUT').length, 0);
    assert.match(String(sinkError), /compression failed/);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) assert.fail('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
