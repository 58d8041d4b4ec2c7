// Transport behaviour against real node:http servers on port 0 (retries, Retry-After, resets,
// redirects, Basic and Bearer flows, error shape and redaction, concurrency, abort).
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as connectNet, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { AbortedError, SlipwayError } from '../errors.js';
import { staticKeychain } from '../auth/keychain.js';
import type { Credentials } from '../auth/credentials.js';
import { NetworkError, RegistryError } from './errors.js';
import { Transport, type TransportOptions } from './transport.js';
import { silentServer } from '../testing/silent-server.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface TestServer {
  host: string;
  seen: Seen[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string, count: number) => void;

const servers: Server[] = [];
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

async function serve(handler: Handler): Promise<TestServer> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body, seen.filter((s) => s.url === req.url).length);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { host: `127.0.0.1:${port}`, seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

const fast: TransportOptions = { retry: { baseDelayMs: 1, maxDelayMs: 5 } };

function transport(options: TransportOptions & { credentials?: Record<string, Credentials> } = {}): Transport {
  const { credentials, ...rest } = options;
  const t = new Transport({ ...fast, ...rest, ...(credentials ? { keychain: staticKeychain(credentials) } : {}) });
  after(() => t.close());
  return t;
}

const v2 = (path: string) => path === '/v2/';

describe('transport retries', () => {
  it('retries 503 with backoff and then succeeds', async () => {
    const server = await serve((req, res, _b, count) => {
      if (v2(req.url!)) return json(res, 200, {});
      if (count <= 2) return json(res, 503, { errors: [{ code: 'UNAVAILABLE', message: 'busy' }] });
      json(res, 200, { ok: true });
    });
    const res = await transport().request({ method: 'GET', registry: server.host, path: '/v2/x/tags/list' });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.bytes.toString()), { ok: true });
    assert.equal(server.seen.filter((s) => s.url === '/v2/x/tags/list').length, 3);
  });

  it('gives up after the configured attempts with a temporary RegistryError', async () => {
    const server = await serve((req, res) => (v2(req.url!) ? json(res, 200, {}) : json(res, 502, { errors: [{ code: 'UNAVAILABLE', message: 'down' }] })));
    await assert.rejects(transport({ retry: { attempts: 3, baseDelayMs: 1 } }).request({ method: 'GET', registry: server.host, path: '/v2/x/tags/list' }), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.status, 502);
      assert.equal(err.temporary, true);
      assert.equal(err.code, 'SLIPWAY_REGISTRY');
      return true;
    });
    assert.equal(server.seen.filter((s) => s.url === '/v2/x/tags/list').length, 3);
  });

  it('honours Retry-After in seconds on 429', async () => {
    const server = await serve((req, res, _b, count) => {
      if (v2(req.url!)) return json(res, 200, {});
      if (count === 1) return json(res, 429, { errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }, { 'retry-after': '1' });
      json(res, 200, {});
    });
    const started = Date.now();
    await transport().request({ method: 'GET', registry: server.host, path: '/v2/a/tags/list' });
    const waited = Date.now() - started;
    assert.ok(waited >= 950, `waited ${waited}ms for Retry-After: 1`);
  });

  it('never retries sooner than its own backoff, whatever Retry-After says (0, negative, a past date)', async () => {
    for (const retryAfter of ['0', '-5', 'Wed, 21 Oct 2015 07:28:00 GMT']) {
      const times: number[] = [];
      const server = await serve((req, res) => {
        if (v2(req.url!)) return json(res, 200, {});
        times.push(performance.now());
        json(res, 429, { errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }, { 'retry-after': retryAfter });
      });
      const t = transport({ retry: { attempts: 3, baseDelayMs: 200, maxDelayMs: 400 } });
      await assert.rejects(t.request({ method: 'GET', registry: server.host, path: '/v2/x' }), { status: 429 });
      assert.equal(times.length, 3);
      const gaps = times.slice(1).map((at, i) => at - times[i]!);
      // backoffDelay(1) with base 200 is at least 100 ms (half, plus jitter); before, these came back to back.
      for (const gap of gaps) assert.ok(gap >= 90, `Retry-After ${retryAfter}: retried after ${gap.toFixed(0)} ms`);
    }
  });

  it('caps a long Retry-After (HTTP-date form) at maxRetryAfterMs', async () => {
    const server = await serve((req, res, _b, count) => {
      if (v2(req.url!)) return json(res, 200, {});
      if (count === 1) return json(res, 429, {}, { 'retry-after': new Date(Date.now() + 3_600_000).toUTCString() });
      json(res, 200, {});
    });
    const started = Date.now();
    await transport({ retry: { maxRetryAfterMs: 50 } }).request({ method: 'GET', registry: server.host, path: '/v2/a/tags/list' });
    assert.ok(Date.now() - started < 2000);
    assert.equal(server.seen.filter((s) => s.url === '/v2/a/tags/list').length, 2);
  });

  it('retries a connection reset, replaying a thunk body', async () => {
    let opened = 0;
    const server = await serve((req, res, body, count) => {
      if (v2(req.url!)) return json(res, 200, {});
      if (count === 1) return req.socket.destroy();
      res.writeHead(201, { 'x-body': body });
      res.end();
    });
    const res = await transport().request({
      method: 'PUT',
      registry: server.host,
      path: '/v2/a/blobs/uploads/1',
      body: () => {
        opened++;
        return Readable.from([Buffer.from('payload')]);
      },
      headers: { 'content-length': '7' },
    });
    assert.equal(res.status, 201);
    assert.equal(res.header('x-body'), 'payload');
    assert.equal(opened, 2);
  });

  it('a body whose file cannot be read is that file\'s error (SLIPWAY_IO naming it), not a network error at the upload URL', async () => {
    const server = await serve((req, res) => (v2(req.url!) ? json(res, 200, {}) : json(res, 201, {})));
    const missing = join(tmpdir(), `slipway-no-such-blob-${process.pid}`);
    await assert.rejects(
      transport().request({ method: 'PUT', registry: server.host, path: '/v2/a/blobs/uploads/1?_state=SECRET&digest=sha256:ab', body: () => createReadStream(missing), headers: { 'content-length': '7' } }),
      (err: unknown) => {
        assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_IO' && !(err instanceof NetworkError), String(err));
        assert.equal(err.message, `reading "${missing}" to send it to ${server.host} failed: ENOENT: no such file or directory, open '${missing}'`);
        return true;
      },
    );
  });

  it('retries a buffered body cut short mid-way (a manifest), as it does a failed connect', async () => {
    const manifest = JSON.stringify({ schemaVersion: 2, padding: 'p'.repeat(5000) });
    const server = await serve((_req, res, _body, count) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(manifest.length) });
      if (count === 1) {
        // Headers and part of the body, then the connection dies.
        res.write(manifest.slice(0, 1000));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      res.end(manifest);
    });
    const response = await transport().request({ method: 'GET', registry: server.host, path: '/v2/a/manifests/1', maxBodyBytes: 1 << 20 });
    assert.equal(response.bytes.toString('utf8'), manifest);
    assert.equal(server.seen.filter((s) => s.url === '/v2/a/manifests/1').length, 2);
  });

  it('does not retry when retry is false, and reports the network error clearly', async () => {
    const server = await serve((req, res) => (v2(req.url!) ? json(res, 200, {}) : req.socket.destroy()));
    await assert.rejects(transport().request({ method: 'GET', registry: server.host, path: '/v2/a/tags/list', retry: false }), (err: unknown) => {
      assert.ok(err instanceof NetworkError);
      assert.equal(err.code, 'SLIPWAY_NETWORK');
      assert.match(err.message, /^GET http:\/\/127\.0\.0\.1:\d+\/v2\/a\/tags\/list: /);
      return true;
    });
    assert.equal(server.seen.filter((s) => s.url === '/v2/a/tags/list').length, 1);
  });

  it('does not retry 4xx other than 408 and 429', async () => {
    const server = await serve((req, res) => (v2(req.url!) ? json(res, 200, {}) : json(res, 400, { errors: [{ code: 'NAME_INVALID', message: 'bad name' }] })));
    await assert.rejects(transport().request({ method: 'GET', registry: server.host, path: '/v2/a/tags/list' }), { status: 400 });
    assert.equal(server.seen.filter((s) => s.url === '/v2/a/tags/list').length, 1);
  });

  it('reports a registry that is down after retrying', async () => {
    const server = await serve(() => {});
    await server.close();
    await assert.rejects(transport({ retry: { attempts: 2, baseDelayMs: 1 } }).request({ method: 'GET', registry: server.host, path: '/v2/' }), (err: unknown) => {
      assert.ok(err instanceof NetworkError);
      assert.match(err.message, /unreachable: connection refused \(ECONNREFUSED\)/);
      return true;
    });
  });
});

describe('transport errors', () => {
  it('refuses a web server that answers 404 at /v2/ as not a registry, asking nothing else', async () => {
    // What `python3 -m http.server` or a site on the wrong port does: every path is 404. Going on made
    // every lookup "not found" (exit 3 in the CLI, read by scripts as "the image is absent").
    const server = await serve((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html><body>File not found</body></html>');
    });
    await assert.rejects(transport().request({ method: 'HEAD', registry: server.host, path: '/v2/x/y/manifests/1' }), (err: unknown) => {
      assert.ok(err instanceof NetworkError, String(err));
      assert.equal(err.code, 'SLIPWAY_NETWORK');
      assert.equal(err.temporary, false);
      assert.match(err.message, new RegExp(`^GET http://${server.host}/v2/: ${server.host} is not an OCI registry: it answered 404 Not Found at /v2/`));
      return true;
    });
    assert.deepEqual(
      server.seen.map((s) => `${s.method} ${s.url}`),
      ['GET /v2/'],
      'one ping, no retries, no manifest request',
    );
  });

  it('a plain-HTTP registry on a non-loopback address without insecure: says so and what to do, not OpenSSL\'s "wrong version number"', async (t) => {
    const address = Object.values(networkInterfaces())
      .flat()
      .find((info) => info !== undefined && info.family === 'IPv4' && !info.internal)?.address;
    if (address === undefined) {
      t.skip('NOT TESTED: this machine has no non-loopback IPv4 address to serve plain HTTP on');
      return;
    }
    const server = createServer((_req, res) => json(res, 200, {}));
    await new Promise<void>((resolve) => server.listen(0, address, resolve));
    after(() => server.close());
    const host = `${address}:${(server.address() as AddressInfo).port}`;
    await assert.rejects(transport({ retry: { attempts: 1 } }).request({ method: 'GET', registry: host, path: '/v2/x/tags/list' }), (err: unknown) => {
      assert.ok(err instanceof NetworkError, String(err));
      assert.equal(
        err.message,
        `GET https://${host}/v2/: registry ${host} unreachable: the server answered the TLS handshake without TLS (plain HTTP, or another protocol) (ERR_SSL_WRONG_VERSION_NUMBER); if ${host} is a plain-HTTP registry, list ${host} in insecure`,
      );
      return true;
    });
    const listed = await transport({ insecure: [host] }).request({ method: 'GET', registry: host, path: '/v2/x/tags/list' });
    assert.equal(listed.status, 200);
    listed.body?.resume();
  });

  it('formats METHOD url: CODE: message, redacts upload state, and keeps errors[]', async () => {
    const server = await serve((req, res) =>
      v2(req.url!) ? json(res, 200, {}) : json(res, 400, { errors: [{ code: 'MANIFEST_INVALID', message: 'manifest invalid', detail: { why: 'x' } }] }),
    );
    await assert.rejects(
      transport().request({ method: 'PUT', registry: server.host, path: '/v2/app/manifests/1.0?_state=SECRETSTATE&digest=sha256:ab', body: Buffer.from('{}') }),
      (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.message, `PUT http://${server.host}/v2/app/manifests/1.0?_state=REDACTED&digest=sha256%3Aab: MANIFEST_INVALID: manifest invalid (400 Bad Request)`);
        assert.deepEqual(err.errors, [{ code: 'MANIFEST_INVALID', message: 'manifest invalid', detail: { why: 'x' } }]);
        assert.equal(err.temporary, false);
        assert.ok(!err.url.includes('SECRETSTATE'));
        return true;
      },
    );
  });

  it('uses SLIPWAY_AUTH for 401 and 403 and hints that HEAD has no body', async () => {
    const server = await serve((req, res) => (v2(req.url!) ? json(res, 200, {}) : (res.writeHead(403), res.end())));
    await assert.rejects(transport().request({ method: 'HEAD', registry: server.host, path: '/v2/a/manifests/1' }), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.code, 'SLIPWAY_AUTH');
      assert.match(err.message, /403 Forbidden \(HEAD responses have no body/);
      return true;
    });
  });

  it('reads error bodies through a 64 KiB cap and quotes plain-text bodies briefly', async () => {
    const server = await serve((req, res) => {
      if (v2(req.url!)) return json(res, 200, {});
      res.writeHead(429, { 'content-type': 'text/plain' });
      res.end('Too Many Requests (HAP429).' + 'x'.repeat(2 * 1024 * 1024));
    });
    await assert.rejects(transport({ retry: { attempts: 1 } }).request({ method: 'GET', registry: server.host, path: '/v2/a/tags/list' }), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.ok(err.message.includes('Too Many Requests (HAP429)'));
      assert.ok(err.message.length < 400, `message stays short: ${err.message.length}`);
      assert.equal(err.temporary, true);
      return true;
    });
  });

  it('never puts a password or token into a message, even when the server echoes it', async () => {
    const canary = 'canary-secret-9d1f77';
    const server = await serve((req, res) => {
      if (v2(req.url!)) return json(res, 401, {}, { 'www-authenticate': 'Basic realm="x"' });
      json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: `bad credentials ${req.headers.authorization} ${canary}`, detail: canary }] }, {
        'www-authenticate': 'Basic realm="x"',
      });
    });
    const t = transport({ credentials: { [server.host]: { username: 'u', password: canary } } });
    await assert.rejects(t.request({ method: 'GET', registry: server.host, path: '/v2/a/tags/list' }), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      const text = `${err.message} ${JSON.stringify(err.errors)}`;
      assert.ok(!text.includes(canary), text);
      assert.ok(!text.includes(Buffer.from(`u:${canary}`).toString('base64')), text);
      assert.match(err.message, /UNAUTHORIZED: bad credentials Basic REDACTED REDACTED/);
      return true;
    });
  });

  it('redacts a secret before cutting a plain-text body short, and finds it escaped in errors[].detail', async () => {
    const password = 'pw"with\\quote-0123456789abcdef';
    for (const mode of ['cut', 'detail'] as const) {
      const server = await serve((req, res) => {
        if (v2(req.url!)) return json(res, 401, {}, { 'www-authenticate': 'Basic realm="x"' });
        const sent = Buffer.from(req.headers.authorization!.replace(/^Basic /, ''), 'base64').toString();
        if (mode === 'detail') return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad login', detail: { tried: sent } }] }, { 'www-authenticate': 'Basic realm="x"' });
        // The password straddles the 200th character of the quoted body.
        res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Basic realm="x"' });
        res.end(`login   failed:\n${'x'.repeat(180)} ${sent.slice(2)} please retry`);
      });
      const t = transport({ credentials: { [server.host]: { username: 'u', password } } });
      await assert.rejects(t.request({ method: 'GET', registry: server.host, path: '/v2/a/tags/list' }), (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        const text = `${err.message} ${JSON.stringify(err.errors)}`;
        assert.ok(!text.includes(password.slice(0, 6)) && !text.includes(JSON.stringify(password).slice(1, 9)), text);
        if (mode === 'cut') assert.match(err.message, /401 Unauthorized: login failed: x+ REDACTED…; 127\.0\.0\.1:\d+ refused the credentials used/);
        else assert.deepEqual(err.errors[0]!.detail, { tried: 'REDACTED' });
        return true;
      });
    }
  });

  it('redacts an identity token a realm echoes URL-encoded, or as the <token> pair of a Basic header', async () => {
    const identityToken = 'refresh+tok/en=with space';
    for (const oauth of [true, false]) {
      // With the OAuth2 endpoint: a 400 quoting the form. Without (404): the GET with `<token>:…` in Basic, quoted back.
      const issuer = await serve((req, res, body) => {
        if (req.method === 'POST') return oauth ? res.writeHead(400, { 'content-type': 'text/plain' }).end(`invalid_grant: ${body}`) : json(res, 404, {});
        json(res, 401, { errors: [{ code: 'DENIED', message: `bad ${req.headers.authorization!.replace(/^Basic /, '')}` }] });
      });
      const registry = await serve((_req, res) => json(res, 401, {}, { 'www-authenticate': `Bearer realm="http://${issuer.host}/token",service="s"` }));
      const t = transport({ credentials: { [registry.host]: { identityToken } }, retry: { attempts: 1 } });
      await assert.rejects(t.request({ method: 'GET', registry: registry.host, path: '/v2/a/tags/list', scopes: ['repository:a:pull'] }), (err: unknown) => {
        assert.ok(SlipwayError.is(err));
        const text = `${err.message} ${JSON.stringify((err.cause as RegistryError).errors)}`;
        for (const form of [encodeURIComponent(identityToken), new URLSearchParams({ t: identityToken }).toString().slice(2), Buffer.from(`<token>:${identityToken}`).toString('base64')]) {
          assert.ok(!text.includes(form), `${form} in ${text}`);
        }
        assert.match(err.message, oauth ? /refresh_token=REDACTED&/ : /DENIED: bad REDACTED/);
        return true;
      });
    }
  });

  it('says no credentials were sent when the challenge is one slipway cannot answer, or missing', async () => {
    for (const [header, message] of [
      ['Negotiate', /asks for negotiate authentication, which slipway does not speak \(Basic and Bearer only\); no credentials were sent/],
      [undefined, /answered 401 without a WWW-Authenticate challenge to answer; no credentials were sent/],
    ] as const) {
      const server = await serve((_req, res) => json(res, 401, {}, header ? { 'www-authenticate': header } : {}));
      const t = transport({ credentials: { [server.host]: { username: 'u', password: 'p' } } });
      await assert.rejects(t.request({ method: 'GET', registry: server.host, path: '/v2/a/manifests/1', scopes: ['repository:a:pull'] }), (err: unknown) => {
        assert.ok(SlipwayError.is(err));
        assert.match(err.message, message);
        assert.doesNotMatch(err.message, /refused the credentials/);
        return true;
      });
    }
  });

  it('does not say an identity token was refused by a Basic registry it was never sent to', async () => {
    const server = await serve((req, res) => json(res, 401, {}, { 'www-authenticate': 'Basic realm="x"' }));
    const t = transport({ credentials: { [server.host]: { identityToken: 'idtok-1234' } } });
    await assert.rejects(t.request({ method: 'GET', registry: server.host, path: '/v2/a/tags/list', scopes: ['repository:a:pull'] }), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.match(err.message, /asks for Basic authentication, and the credentials found for it are an identity token, which only a Bearer token exchange takes; no credentials were sent$/);
      return true;
    });
    assert.ok(server.seen.every((s) => s.headers.authorization === undefined), 'nothing was sent');
  });

  it('names a redirect it did not follow', async () => {
    const server = await serve((_req, res) => res.writeHead(302).end());
    await assert.rejects(transport().request({ method: 'GET', registry: server.host, path: '/v2/a/manifests/1' }), /unexpected status 302 Found \(a redirect not followed\)$/);
  });

  it('refuses an oversize buffered body', async () => {
    const server = await serve((req, res) => (v2(req.url!) ? json(res, 200, {}) : (res.writeHead(200), res.end(Buffer.alloc(100_000)))));
    await assert.rejects(transport().request({ method: 'GET', registry: server.host, path: '/v2/a/tags/list', maxBodyBytes: 1000 }), /response body exceeds 1000 bytes/);
  });
});

describe('transport redirects', () => {
  it('follows a redirect to another host by hand and drops Authorization there', async () => {
    const storage = await serve((_req, res) => {
      res.writeHead(200);
      res.end('blob-bytes');
    });
    const registry = await serve((req, res) => {
      if (v2(req.url!)) return json(res, 401, {}, { 'www-authenticate': 'Basic realm="r"' });
      res.writeHead(307, { location: `http://${storage.host}/bucket/blob?X-Amz-Signature=abc` });
      res.end();
    });
    const t = transport({ credentials: { [registry.host]: { username: 'u', password: 'p4ssword' } } });
    const res = await t.request({ method: 'GET', registry: registry.host, path: '/v2/a/blobs/sha256:1', stream: true });
    const chunks: Buffer[] = [];
    for await (const c of res.body!) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'blob-bytes');
    assert.equal(res.url.host, storage.host);
    assert.ok(registry.seen.find((s) => s.url === '/v2/a/blobs/sha256:1')?.headers.authorization?.startsWith('Basic '));
    assert.equal(storage.seen[0]?.headers.authorization, undefined, 'no Authorization to the storage host');
  });

  it('does not follow redirects for PUT', async () => {
    const registry = await serve((req, res) => {
      if (v2(req.url!)) return json(res, 200, {});
      res.writeHead(307, { location: '/elsewhere' });
      res.end();
    });
    const res = await transport().request({ method: 'PUT', registry: registry.host, path: '/v2/a/manifests/1', body: Buffer.from('{}'), expect: [307] });
    assert.equal(res.status, 307);
    assert.equal(registry.seen.filter((s) => s.url === '/elsewhere').length, 0);
  });
});

describe('transport auth', () => {
  async function tokenRegistry(options: { oauth?: boolean; expiresIn?: number; field?: 'token' | 'access_token' } = {}) {
    const issued: { method: string; scopes: string[]; authorization?: string; body: string }[] = [];
    let serial = 0;
    const issuer = await serve((req, res, body) => {
      const url = new URL(req.url!, 'http://x');
      const params = req.method === 'POST' ? new URLSearchParams(body) : url.searchParams;
      if (req.method === 'POST' && !options.oauth) return json(res, 404, {});
      const scopes = params.getAll('scope').flatMap((s) => s.split(' '));
      issued.push({ method: req.method!, scopes, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), body });
      const token = `tok-${++serial}-${scopes.join('+')}`;
      json(res, 200, { [options.field ?? 'token']: token, expires_in: options.expiresIn ?? 300 });
    });
    const challenge = (scope?: string, error?: string) =>
      `Bearer realm="http://${issuer.host}/token",service="reg,istry"${scope ? `,scope="${scope}"` : ''}${error ? `,error="${error}"` : ''}`;
    const registry = await serve((req, res) => {
      const auth = req.headers.authorization;
      if (v2(req.url!)) return json(res, 401, {}, { 'www-authenticate': challenge() });
      if (!auth?.startsWith('Bearer tok-')) return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'no' }] }, { 'www-authenticate': challenge('repository:a:pull') });
      if (req.url === '/v2/needs-more' && !auth.includes('repository:extra:pull')) {
        return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'scope' }] }, { 'www-authenticate': challenge('repository:extra:pull', 'insufficient_scope') });
      }
      json(res, 200, { auth });
    });
    return { issuer, registry, issued };
  }

  it('fetches a token with scopes in order, service with a comma, and caches it per scope set', async () => {
    const { registry, issued } = await tokenRegistry();
    const t = transport({ credentials: { [registry.host]: { username: 'u', password: 'p4ss' } } });
    const push = ['repository:dst:pull,push', 'repository:src:pull'];
    for (let i = 0; i < 3; i++) await t.request({ method: 'GET', registry: registry.host, path: '/v2/x', scopes: push });
    await t.request({ method: 'GET', registry: registry.host, path: '/v2/x', scopes: ['repository:dst:pull'] });
    assert.equal(issued.length, 2);
    assert.deepEqual(issued[0]!.scopes, push);
    assert.equal(issued[0]!.authorization, `Basic ${Buffer.from('u:p4ss').toString('base64')}`);
    assert.deepEqual(issued[1]!.scopes, ['repository:dst:pull']);
  });

  it('refuses token answers that are JSON but not an object, or too big, with SLIPWAY_AUTH', async () => {
    for (const [answer, message] of [
      ['null', /the realm's answer is not a JSON token response/],
      ['[1,2]', /the realm's answer is not a JSON token response/],
      [JSON.stringify({ token: 'x'.repeat(100 * 1024) }), /the realm's answer exceeds 65536 bytes/],
    ] as const) {
      const issuer = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(answer));
      const registry = await serve((req, res) => json(res, 401, {}, { 'www-authenticate': `Bearer realm="http://${issuer.host}/token",service="s"` }));
      const t = transport({ credentials: { [registry.host]: { username: 'u', password: 'p' } } });
      await assert.rejects(t.request({ method: 'GET', registry: registry.host, path: '/v2/a/manifests/1', scopes: ['repository:a:pull'] }), (err: unknown) => {
        assert.ok(SlipwayError.is(err));
        assert.equal(err.code, 'SLIPWAY_AUTH');
        assert.match(err.message, message);
        return true;
      });
    }
    // A JWT of 12 KiB is big but valid (node:http takes 16 KiB of request headers).
    const big = 'j'.repeat(12 * 1024);
    const issuer = await serve((_req, res) => json(res, 200, { token: big }));
    const registry = await serve((req, res) =>
      req.headers.authorization === `Bearer ${big}` ? json(res, 200, {}) : json(res, 401, {}, { 'www-authenticate': `Bearer realm="http://${issuer.host}/token",service="s"` }),
    );
    const t = transport({ credentials: { [registry.host]: { username: 'u', password: 'p' } } });
    assert.equal((await t.request({ method: 'GET', registry: registry.host, path: '/v2/a/manifests/1', scopes: ['repository:a:pull'] })).status, 200);
  });

  it('refreshes an expired token', async () => {
    const { registry, issued } = await tokenRegistry({ expiresIn: 1 });
    const t = transport();
    await t.request({ method: 'GET', registry: registry.host, path: '/v2/x', scopes: ['repository:a:pull'] });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await t.request({ method: 'GET', registry: registry.host, path: '/v2/x', scopes: ['repository:a:pull'] });
    assert.equal(issued.length, 2);
  });

  it('adds the scope an insufficient_scope challenge names and re-requests once', async () => {
    const { registry, issued } = await tokenRegistry({ field: 'access_token' });
    const res = await transport().request({ method: 'GET', registry: registry.host, path: '/v2/needs-more', scopes: ['repository:a:pull'] });
    assert.equal(res.status, 200);
    assert.deepEqual(issued.at(-1)!.scopes, ['repository:a:pull', 'repository:extra:pull']);
    assert.equal(issued.length, 2);
  });

  it('exchanges an identity token with an OAuth2 POST', async () => {
    const { registry, issued } = await tokenRegistry({ oauth: true });
    await transport({ credentials: { [registry.host]: { identityToken: 'refresh-abc' } } }).request({
      method: 'GET',
      registry: registry.host,
      path: '/v2/x',
      scopes: ['repository:a:pull'],
    });
    assert.equal(issued[0]!.method, 'POST');
    const form = new URLSearchParams(issued[0]!.body);
    assert.equal(form.get('grant_type'), 'refresh_token');
    assert.equal(form.get('refresh_token'), 'refresh-abc');
    assert.equal(form.get('service'), 'reg,istry');
    assert.equal(form.get('scope'), 'repository:a:pull');
  });

  it('falls back to GET when the OAuth2 endpoint answers 404', async () => {
    const { registry, issued } = await tokenRegistry({ oauth: false });
    await transport({ credentials: { [registry.host]: { identityToken: 'refresh-abc' } } }).request({
      method: 'GET',
      registry: registry.host,
      path: '/v2/x',
      scopes: ['repository:a:pull'],
    });
    assert.equal(issued.length, 1);
    assert.equal(issued[0]!.method, 'GET');
    assert.equal(issued[0]!.authorization, `Basic ${Buffer.from('<token>:refresh-abc').toString('base64')}`);
  });

  /**
   * A token registry whose tokens can be revoked, answering a revoked one as distribution 2.8 answers
   * an upload-status GET: a 401 challenging `repository:a:pull`, whatever scope the token was for.
   */
  async function revokingRegistry() {
    const issued: string[][] = [];
    const revoked = new Set<string>();
    const issuer = await serve((req, res) => {
      const scopes = new URL(req.url!, 'http://x').searchParams.getAll('scope');
      issued.push(scopes);
      json(res, 200, { token: `tok-${issued.length}`, expires_in: 300 });
    });
    const challenge = `Bearer realm="http://${issuer.host}/token",service="s"`;
    const refused: string[] = [];
    const registry = await serve((req, res) => {
      const token = req.headers.authorization?.replace(/^Bearer /, '');
      if (v2(req.url!)) return json(res, 401, {}, { 'www-authenticate': challenge });
      if (!token?.startsWith('tok-') || revoked.has(token)) {
        refused.push(`${req.method} ${token ?? 'none'}`);
        return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }, { 'www-authenticate': `${challenge},scope="repository:a:pull",error="invalid_token"` });
      }
      json(res, req.method === 'PUT' ? 201 : 200, {});
    });
    return { registry, issued, revoked, refused };
  }

  it('drops a token the registry stops accepting, also on a request not re-sent, and the next request gets a fresh one', async () => {
    const { registry, issued, revoked, refused } = await revokingRegistry();
    const t = transport({ credentials: { [registry.host]: { username: 'u', password: 'p4ss' } } });
    const push = ['repository:a:pull,push'];
    const put = () => t.request({ method: 'PUT', registry: registry.host, path: '/v2/a/blobs/uploads/1?digest=sha256:0', body: Buffer.from('x'), scopes: push, retry: false, expect: [201] });
    assert.equal((await put()).status, 201);
    revoked.add('tok-1');
    // Not re-sent (retry: false), so it fails; not the credentials' fault, and it says so.
    await assert.rejects(put(), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.status, 401);
      assert.match(err.message, /refused a token it had accepted before \(expired early or revoked\); the next request fetches a new one$/);
      assert.doesNotMatch(err.message, /refused the credentials/);
      return true;
    });
    // The dropped entry is the one used (pull,push), not the one the challenge names (pull).
    assert.equal((await put()).status, 201);
    assert.deepEqual(issued, [push, push]);
    assert.deepEqual(refused, ['PUT tok-1']);
  });

  it('re-requests once when a token is refused, and later requests of the same scope use the fresh token at once', async () => {
    const { registry, issued, revoked, refused } = await revokingRegistry();
    const t = transport({ credentials: { [registry.host]: { username: 'u', password: 'p4ss' } } });
    const push = ['repository:a:pull,push'];
    const get = () => t.request({ method: 'GET', registry: registry.host, path: '/v2/a/blobs/uploads/1', scopes: push });
    await get();
    revoked.add('tok-1');
    await get();
    await get();
    assert.deepEqual(refused, ['GET tok-1'], 'one 401, then the fresh token every time');
    // `repository:a:pull` from the challenge is covered by the scope held: not added, one token.
    assert.deepEqual(issued, [push, push]);
  });

  it('blames the credentials when a token never accepted is refused', async () => {
    const { registry, revoked } = await revokingRegistry();
    for (let i = 1; i <= 4; i++) revoked.add(`tok-${i}`);
    const t = transport({ credentials: { [registry.host]: { username: 'u', password: 'p4ss' } } });
    await assert.rejects(t.request({ method: 'GET', registry: registry.host, path: '/v2/a/tags/list', scopes: ['repository:a:pull'] }), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.match(err.message, /refused the credentials used \(basic \(user "u"\) from the credentials given\)$/);
      return true;
    });
  });

  it('sends a registry token as is', async () => {
    const registry = await serve((req, res) => {
      if (v2(req.url!)) return json(res, 401, {}, { 'www-authenticate': 'Bearer realm="https://auth.invalid/token"' });
      json(res, req.headers.authorization === 'Bearer tok-direct' ? 200 : 401, {});
    });
    const res = await transport({ credentials: { [registry.host]: { registryToken: 'tok-direct' } } }).request({ method: 'GET', registry: registry.host, path: '/v2/x' });
    assert.equal(res.status, 200);
  });

  it('refuses a token realm on a private address for a public registry', async () => {
    // checkHop is what guards realms and redirects; a loopback registry may use a loopback realm.
    const { checkHop } = await import('./hosts.js');
    await assert.rejects(checkHop(new URL('https://registry.example.com'), new URL('http://169.254.169.254/token'), 'token realm'), /downgrades|private/);
    await assert.rejects(checkHop(new URL('https://203.0.113.5'), new URL('https://10.0.0.1/token'), 'token realm'), /^SlipwayError: token realm points from public address 203\.0\.113\.5 to private address 10\.0\.0\.1; refusing/);
    await assert.doesNotReject(checkHop(new URL('http://127.0.0.1:5000'), new URL('http://127.0.0.1:6000/token'), 'token realm'));
    // A registry the user listed as insecure is trusted with its network.
    await assert.doesNotReject(checkHop(new URL('https://203.0.113.5'), new URL('https://10.0.0.1/token'), 'token realm', ['203.0.113.5']));
    // The same addresses spelled as IPv4-mapped IPv6 (a URL normalises [::ffff:169.254.169.254] to
    // [::ffff:a9fe:a9fe]) or as a bare number are the same addresses.
    await assert.rejects(checkHop(new URL('https://203.0.113.5'), new URL('https://[::ffff:169.254.169.254]/latest/meta-data/'), 'redirect'), /link-local address \[::ffff:a9fe:a9fe\]/);
    await assert.rejects(checkHop(new URL('https://203.0.113.5'), new URL('https://[::ffff:10.0.0.1]/blob'), 'redirect'), /to private address \[::ffff:a00:1\]/);
    await assert.rejects(checkHop(new URL('https://203.0.113.5'), new URL('https://2852039166/latest'), 'redirect'), /link-local address 169\.254\.169\.254/);
    await assert.doesNotReject(checkHop(new URL('https://203.0.113.5'), new URL('https://[::ffff:8.8.8.8]/blob'), 'redirect'));
  });

  it('judges a registry name by every address it resolves to, and keeps cloud metadata (link-local) out of reach', async (t) => {
    // Names only a private mount of /etc/hosts knows: one public, one public plus a private record (an
    // attacker controlling a public registry's DNS), one private. The real resolver reads them.
    const work = await mkdtemp(join(tmpdir(), 'slipway-hosts-'));
    after(() => rm(work, { recursive: true, force: true }));
    const hosts = join(work, 'hosts');
    await writeFile(hosts, '127.0.0.1 localhost\n203.0.113.7 public-only.test\n203.0.113.8 mixed.test\n10.255.255.1 mixed.test\n10.1.2.3 inside.test\n');
    const hostsModule = new URL('./hosts.js', import.meta.url).href;
    const script = `
      const { checkHop } = await import(${JSON.stringify(hostsModule)});
      const verdict = (from, to) => checkHop(new URL(from), new URL(to), 'redirect').then(() => 'followed', (err) => 'refused: ' + err.message);
      console.log(JSON.stringify([
        await verdict('https://public-only.test', 'https://10.9.9.9/blob'),
        await verdict('https://mixed.test', 'https://10.9.9.9/blob'),
        await verdict('https://inside.test', 'https://10.9.9.9/blob'),
        await verdict('https://inside.test', 'https://169.254.169.254/latest/meta-data/'),
        await verdict('http://127.0.0.1:5000', 'http://169.254.169.254/latest/meta-data/'),
      ]));`;
    const run = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind "$1" /etc/hosts && exec "$2" --input-type=module -e "$3"', 'sh', hosts, process.execPath, script], { encoding: 'utf8', timeout: 30_000 });
    if (run.status !== 0 && /unshare|mount|Operation not permitted|permission denied/i.test(run.stderr)) {
      t.skip(`NOT TESTED: a private /etc/hosts needs unshare -m and mount (root with CAP_SYS_ADMIN): ${run.stderr.trim()}`);
      return;
    }
    assert.equal(run.status, 0, run.stderr);
    const [publicOnly, mixed, inside, metadata, loopbackMetadata] = JSON.parse(run.stdout) as string[];
    assert.match(publicOnly!, /^refused: redirect points from public-only\.test \(resolving to 203\.0\.113\.7\) to private address 10\.9\.9\.9/);
    assert.match(mixed!, /^refused: redirect points from mixed\.test \(resolving to .*203\.0\.113\.8.*\) to private address/);
    assert.equal(inside, 'followed');
    assert.match(metadata!, /^refused: .* to link-local address 169\.254\.169\.254 \(where clouds serve instance metadata\)/);
    assert.match(loopbackMetadata!, /^refused: .*link-local/);
  });

  it('follows a registry whose name resolves to a private address into its private network (on-premises storage)', async (t) => {
    const { checkHop, isPrivateAddress } = await import('./hosts.js');
    // This machine's own name: /etc/hosts or DNS gives a private or loopback address on most hosts.
    const name = hostname();
    const addresses = (await lookup(name, { all: true }).catch(() => [])).map((a) => a.address);
    if (!addresses.some((address) => isPrivateAddress(address)) || isPrivateAddress(name)) {
      t.skip(`NOT TESTED: this machine's name ${name} resolves to no private address (${addresses.join(', ') || 'nothing'})`);
      return;
    }
    await assert.doesNotReject(checkHop(new URL(`https://${name}:5000`), new URL('https://10.1.2.3:9000/bucket/blob'), 'redirect'));
  });
});

describe('transport concurrency and cancellation', () => {
  it('bounds concurrent requests per host', async () => {
    let active = 0;
    let peak = 0;
    const server = await serve((req, res) => {
      if (v2(req.url!)) return json(res, 200, {});
      active++;
      peak = Math.max(peak, active);
      setTimeout(() => {
        active--;
        json(res, 200, {});
      }, 20);
    });
    const t = transport({ concurrency: 3 });
    await Promise.all(Array.from({ length: 12 }, (_, i) => t.request({ method: 'GET', registry: server.host, path: `/v2/r/tags/list?i=${i}` })));
    assert.equal(peak, 3);
  });

  it('close() is idempotent before and after the first request, and a closed transport refuses requests', async () => {
    const server = await serve((req, res) => json(res, 200, v2(req.url!) ? {} : { tags: [] }));
    // Closed before undici was ever loaded: no agent may be created afterwards.
    const unused = transport();
    await unused.close();
    await unused.close();
    const refused = await unused.request({ method: 'GET', registry: server.host, path: '/v2/r/tags/list' }).catch((e: unknown) => e);
    assert.ok(SlipwayError.is(refused) && refused.code === 'SLIPWAY_INVALID_ARG', String(refused));
    assert.match(refused.message, /closed/);
    assert.equal(server.seen.length, 0, 'nothing was sent');
    // Closed after a request: a second close resolves (undici 7 rejects a second Agent.close()).
    const used = transport();
    assert.equal((await used.request({ method: 'GET', registry: server.host, path: '/v2/r/tags/list' })).status, 200);
    await used.close();
    await used.close();
    await assert.rejects(used.request({ method: 'GET', registry: server.host, path: '/v2/r/tags/list' }), (e: unknown) => SlipwayError.is(e));
  });

  it('keeps the connection open across HEAD requests (undici resets it after HEAD by default)', async () => {
    const server = await serve((req, res) => {
      if (v2(req.url!)) return json(res, 200, {});
      res.writeHead(req.method === 'HEAD' ? 200 : 404, { 'content-length': '7', 'docker-content-digest': 'sha256:x' });
      res.end(req.method === 'HEAD' ? undefined : 'missing');
    });
    const raw = servers[servers.length - 1]!;
    let connections = 0;
    raw.on('connection', () => connections++);
    const t = transport();
    let afterFirst = 0;
    for (let i = 0; i < 5; i++) {
      const r = await t.request({ method: 'HEAD', registry: server.host, path: `/v2/r/blobs/sha256:${i}`, expect: [200] });
      assert.equal(r.status, 200);
      if (i === 0) afterFirst = connections;
    }
    await assert.rejects(t.request({ method: 'GET', registry: server.host, path: '/v2/r/blobs/sha256:gone', retry: false }), RegistryError);
    assert.equal(server.seen.filter((s) => s.method === 'HEAD').length, 5);
    // Four more HEADs and a GET after the first HEAD, and not one new connection.
    assert.ok(afterFirst > 0);
    assert.equal(connections, afterFirst);
  });

  it('holds a streamed body slot until the body closes', async () => {
    const server = await serve((req, res) => {
      if (v2(req.url!)) return json(res, 200, {});
      res.writeHead(200);
      res.end('data');
    });
    const t = transport({ concurrency: 1 });
    const first = await t.request({ method: 'GET', registry: server.host, path: '/v2/a/blobs/1', stream: true });
    let secondDone = false;
    const second = t.request({ method: 'GET', registry: server.host, path: '/v2/a/blobs/2', stream: true }).then((r) => {
      secondDone = true;
      return r;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(secondDone, false, 'the second download waits for the first body');
    first.body!.destroy();
    const r2 = await second;
    r2.body!.destroy();
    assert.equal(secondDone, true);
  });

  it('aborts a slow request promptly with AbortedError', async () => {
    const server = await serve((req, res) => {
      if (v2(req.url!)) return json(res, 200, {});
      setTimeout(() => json(res, 200, {}), 5000).unref();
    });
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('user cancelled')), 50);
    await assert.rejects(transport().request({ method: 'GET', registry: server.host, path: '/v2/slow', signal: controller.signal }), (err: unknown) => {
      assert.ok(err instanceof AbortedError);
      assert.ok(SlipwayError.is(err));
      assert.equal(err.code, 'SLIPWAY_ABORTED');
      return true;
    });
    assert.ok(Date.now() - started < 1000);
  });

  it("one caller's abort during the shared /v2/ ping does not fail another caller", async () => {
    // A client serves many operations at once (a provider's resources), each with its own signal.
    let pings = 0;
    const server = await serve((req, res) => {
      if (v2(req.url!)) {
        pings++;
        setTimeout(() => json(res, 200, {}), 150).unref();
        return;
      }
      json(res, 200, { ok: true });
    });
    const t = transport();
    const impatient = new AbortController();
    const first = t.request({ method: 'GET', registry: server.host, path: '/v2/a/tags/list', signal: impatient.signal });
    const second = t.request({ method: 'GET', registry: server.host, path: '/v2/b/tags/list', signal: new AbortController().signal });
    setTimeout(() => impatient.abort(new Error('first caller cancelled')), 30);
    await assert.rejects(first, (err: unknown) => err instanceof AbortedError);
    const res = await second;
    assert.equal(res.status, 200);
    res.body?.destroy();
    assert.equal(pings, 1, 'one ping served both callers');
  });

  it('aborts while waiting for a retry', async () => {
    const server = await serve((req, res) => (v2(req.url!) ? json(res, 200, {}) : json(res, 503, {}, { 'retry-after': '30' })));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await assert.rejects(
      transport().request({ method: 'GET', registry: server.host, path: '/v2/x', signal: controller.signal }),
      (err: unknown) => err instanceof AbortedError,
    );
    assert.ok(Date.now() - started < 2000);
  });

  it('collects Warning: 299 texts once each', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { warning: '299 - "this repository is deprecated"' });
      res.end('{}');
    });
    const t = transport();
    await t.request({ method: 'GET', registry: server.host, path: '/v2/x' });
    await t.request({ method: 'GET', registry: server.host, path: '/v2/x' });
    assert.deepEqual([...t.warnings], ['this repository is deprecated']);
  });

  it('speaks plain HTTP to loopback after trying TLS, and remembers it', async () => {
    const server = await serve((req, res) => json(res, 200, {}));
    const t = transport();
    assert.equal((await t.baseUrl(server.host)).protocol, 'http:');
    await t.request({ method: 'GET', registry: server.host, path: '/v2/x' });
    assert.equal(server.seen.filter((s) => s.url === '/v2/').length, 1, 'one ping');
  });
});

describe('Transport.close', () => {
  it('lets a request someone still waits on finish', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/v2/') return res.end();
      setTimeout(() => res.end('{"name":"x","tags":["1"]}'), 600);
    });
    const transport = new Transport();
    await transport.request({ method: 'GET', registry: server.host, path: '/v2/' });
    const pending = transport.request({ method: 'GET', registry: server.host, path: '/v2/x/tags/list' });
    await new Promise((r) => setTimeout(r, 50));
    await transport.close();
    assert.equal((await pending).status, 200, 'finished, not cut by close()');
  });

  it('does not wait for an abandoned request stuck in a TLS handshake', async () => {
    const silent = await silentServer();
    const { host, sockets } = silent;
    const transport = new Transport();
    try {
      const controller = new AbortController();
      const pending = transport.request({ method: 'GET', registry: host, path: '/v2/x/tags/list', signal: controller.signal });
      while (sockets.length === 0) await new Promise((r) => setTimeout(r, 10));
      controller.abort();
      await assert.rejects(pending, (err: unknown) => err instanceof AbortedError);
      const started = Date.now();
      const closedByClient = Promise.all(sockets.map((socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve()))))).then(() => true);
      await transport.close();
      assert.ok(Date.now() - started < 2000, `close took ${Date.now() - started} ms`);
      // The handshake's socket must go with close(), not at undici's 10 s connect timeout: it kept
      // the CLI's process alive that long after Ctrl-C (Agent.destroy does not reach it).
      const gone = await Promise.race([closedByClient, new Promise((r) => setTimeout(() => r(false), 2000))]);
      assert.equal(gone, true, 'the client still holds the connection it was making');
    } finally {
      await silent.close();
    }
  });

  it('bounds the TLS connect through a proxy by timeoutMs too', async () => {
    // A CONNECT proxy that tunnels every request to a host that accepts and then says nothing.
    const silent = await silentServer();
    const proxy = createServer();
    proxy.on('connect', (_req: IncomingMessage, client: Socket) => {
      client.on('error', () => undefined);
      const upstream = connectNet(silent.port, '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(client).pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const transport = new Transport({ timeoutMs: 300, retry: { attempts: 1 }, proxy: { httpsProxy: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` } });
    try {
      const started = Date.now();
      await assert.rejects(transport.request({ method: 'GET', registry: 'registry.example.test', path: '/v2/x/tags/list' }), (err: unknown) => err instanceof NetworkError);
      assert.ok(silent.sockets.length > 0, 'the request went through the proxy');
      assert.ok(Date.now() - started < 5000, `the connect through the proxy was given ${Date.now() - started} ms, not timeoutMs`);
    } finally {
      await transport.close();
      proxy.closeAllConnections();
      proxy.close();
      await silent.close();
    }
  });

  it('gives up on a silent host after a second connect timeout and says the TLS handshake stalled', async () => {
    const silent = await silentServer();
    const { host, sockets } = silent;
    // Five attempts allowed: connect timeouts use two of them (5 × 10 s made a silent host cost 55 s).
    const transport = new Transport({ timeoutMs: 300, retry: { attempts: 5, baseDelayMs: 1 } });
    try {
      await assert.rejects(transport.request({ method: 'GET', registry: host, path: '/v2/x/tags/list' }), (err: unknown) => {
        assert.ok(err instanceof NetworkError);
        assert.match(err.message, /TLS handshake timed out: the host accepted the connection but never answered TLS/);
        // The URL of the attempt that failed, not the plain-HTTP one that was never sent.
        assert.match(err.message, new RegExp(`GET https://${host.replace('.', '\\.')}/v2/`));
        return true;
      });
      assert.equal(sockets.length, 2, `two connections, not one per attempt: ${sockets.length}`);
    } finally {
      await transport.close();
      await silent.close();
    }
  });

  it('reaches a registry behind a balancer whose first backend hangs in the TLS handshake', async () => {
    // A TCP balancer in front of a loopback registry: the first connection goes to a backend that
    // accepts and says nothing, the next ones to the registry (plain HTTP, which loopback may speak).
    const silent = await silentServer();
    const registry = createServer((req, res) => {
      res.writeHead(req.url === '/v2/' ? 200 : 404, { 'docker-distribution-api-version': 'registry/2.0' });
      res.end('{}');
    });
    await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
    let connections = 0;
    const balancer = createNetServer((client) => {
      client.on('error', () => undefined);
      const port = connections++ === 0 ? silent.port : (registry.address() as AddressInfo).port;
      const upstream = connectNet(port, '127.0.0.1', () => client.pipe(upstream).pipe(client));
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => balancer.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(balancer.address() as AddressInfo).port}`;
    const transport = new Transport({ timeoutMs: 300, retry: { attempts: 5, baseDelayMs: 1 } });
    try {
      const response = await transport.request({ method: 'GET', registry: host, path: '/v2/' });
      assert.equal(response.status, 200);
      assert.ok(connections >= 2, `${connections} connections`);
    } finally {
      await transport.close();
      balancer.close();
      registry.closeAllConnections();
      registry.close();
      await silent.close();
    }
  });

  it('bounds the connect by a timeoutMs shorter than undici\'s 10 s', async () => {
    const silent = await silentServer();
    const { host } = silent;
    // One attempt: the HTTPS handshake's connect timeout ends the ping (it is not retried, nor is HTTP tried).
    const transport = new Transport({ timeoutMs: 300, retry: { attempts: 1 }, insecure: [] });
    try {
      const started = Date.now();
      await assert.rejects(transport.request({ method: 'GET', registry: host, path: '/v2/x/tags/list' }), (err: unknown) => err instanceof NetworkError);
      assert.ok(Date.now() - started < 5000, `the connect was given ${Date.now() - started} ms, not timeoutMs`);
    } finally {
      await transport.close();
      await silent.close();
    }
  });
});
