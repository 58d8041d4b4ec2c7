// openBlob against a node:http server on port 0: bytes pass through exactly, a broken body resumes with
// Range, bad content fails the stream before its last byte is handed on, and a stream opened ahead of
// its consumer survives a failure nobody listened to yet.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { DigestMismatchError } from '../errors.js';
import { NetworkError } from '../transport/errors.js';
import { parseRepository } from '../name/reference.js';
import { closeAfterTests } from '../internal/test-cleanup.js';
import { Transport } from '../transport/transport.js';
import { sha256 } from '../v1/digest.js';
import type { Descriptor } from '../v1/manifest.js';
import { openBlob } from './blobs.js';

const { servers, transports } = closeAfterTests();

/** Serves `bytes` for every blob GET (honouring `Range: bytes=N-`); `tweak` may answer instead. */
async function serve(bytes: Buffer, tweak?: (req: IncomingMessage, res: ServerResponse, count: number) => boolean): Promise<{ host: string; ranges: (string | undefined)[] }> {
  const ranges: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    if (req.url === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    ranges.push(req.headers.range);
    if (tweak?.(req, res, ranges.length)) return;
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length - start) };
    if (start > 0) res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` });
    else res.writeHead(200, headers);
    res.end(bytes.subarray(start));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, ranges };
}

function open(host: string, descriptor: Descriptor): Promise<Readable> {
  const transport = new Transport({ retry: { baseDelayMs: 1, maxDelayMs: 5 } });
  transports.push(transport);
  return openBlob({ transport, repository: parseRepository(`${host}/test/blob`), descriptor, scopes: [] });
}

/** Reads a stream to its end or error, keeping what arrived. */
async function drain(stream: Readable): Promise<{ bytes: Buffer; error?: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const chunk of stream) parts.push(chunk as Buffer);
    return { bytes: Buffer.concat(parts) };
  } catch (error) {
    return { bytes: Buffer.concat(parts), error };
  }
}

const descriptorOf = (bytes: Buffer): Descriptor => ({ mediaType: 'application/octet-stream', digest: sha256(bytes), size: bytes.length });

describe('openBlob', () => {
  const bytes = randomBytes(3 * 1024 * 1024 + 17);

  it('hands on exactly the blob, in order', async () => {
    const { host } = await serve(bytes);
    const { bytes: got, error } = await drain(await open(host, descriptorOf(bytes)));
    assert.equal(error, undefined);
    assert.ok(got.equals(bytes));
  });

  it('resumes with Range after the connection breaks mid-body, and hands on every byte once', async () => {
    const { host, ranges } = await serve(bytes, (_req, res, count) => {
      if (count !== 1) return false;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) });
      res.write(bytes.subarray(0, 1024 * 1024), () => res.destroy());
      return true;
    });
    const { bytes: got, error } = await drain(await open(host, descriptorOf(bytes)));
    assert.equal(error, undefined);
    assert.ok(got.equals(bytes));
    assert.equal(ranges[0], undefined);
    assert.match(ranges[1] ?? '', /^bytes=[1-9]\d*-$/);
  });

  it('after breaking on every attempt, fails once its resumes are spent, and says it is no longer temporary', async () => {
    const small = randomBytes(101);
    const { host, ranges } = await serve(small, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(small.length) });
      res.write(small.subarray(0, 50), () => setTimeout(() => res.destroy(), 5));
      return true;
    });
    const { error } = await drain(await open(host, descriptorOf(small)));
    assert.ok(error instanceof NetworkError, String(error));
    assert.match(error.message, /after 50 bytes and 5 resumes/);
    // An uploader reading this source must not start the whole dance again (it did: 36 GETs, 35 s).
    assert.equal(error.temporary, false);
    assert.equal(ranges.length, 6);
  });

  it('fails on a bad last byte without handing that byte on', async () => {
    const bad = Buffer.from(bytes);
    bad[bad.length - 1]! ^= 0xff;
    const { host } = await serve(bad);
    const { bytes: got, error } = await drain(await open(host, descriptorOf(bytes)));
    assert.ok(error instanceof DigestMismatchError, String(error));
    assert.match(error.message, new RegExp(`after reading ${bytes.length} bytes`));
    // A consumer streaming into an upload never gets to send the registry the complete bad blob.
    assert.ok(got.length < bytes.length, `${got.length} of ${bytes.length} bytes handed on`);
  });

  it('checks the digest of an empty blob', async () => {
    const { host } = await serve(Buffer.alloc(0));
    assert.equal((await drain(await open(host, descriptorOf(Buffer.alloc(0))))).error, undefined);
    const wrong = { ...descriptorOf(Buffer.alloc(0)), digest: sha256(Buffer.from('x')) };
    assert.ok((await drain(await open(host, wrong))).error instanceof DigestMismatchError);
  });

  it('keeps a failure that came before anyone listened for the consumer, without crashing', async () => {
    const small = randomBytes(1000);
    const bad = Buffer.from(small);
    bad[0]! ^= 0xff;
    const { host } = await serve(bad);
    const stream = await open(host, descriptorOf(small));
    // The whole body arrives and fails verification while nothing reads the stream.
    await sleep(100);
    const { bytes: got, error } = await drain(stream);
    assert.ok(error instanceof DigestMismatchError, String(error));
    assert.equal(got.length, 0);
  });
});
