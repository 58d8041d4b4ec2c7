// Registries behind a real forward proxy (Debian's squid): HTTPS through CONNECT tunnels, plain
// HTTP in absolute form, proxy authentication, NO_PROXY, a proxy that is down, and the proxy
// password never in any message. The destination's name, registry.slipway.test, resolves only in
// the proxy's hosts file: a request that reached it went through the proxy.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { copy, parsePlatform, remote, SlipwayError } from '@slipway/oci';
import { silentServer } from '@slipway/oci/testing';
import { pushBusyboxIndex, type PushedImage } from '../support/fixtures.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { freePort, startRegistry, type TestRegistry } from '../support/registry.js';
import { SQUID_BIN, startSquid, type Squid } from '../support/squid.js';
import { hasTool, run } from '../support/tools.js';

const main = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));
const NAME = 'registry.slipway.test';
const PROXY_USER = { username: 'proxy-user', password: 'proxy-CANARY-9d2e7b' };
const missing = [SQUID_BIN, 'buildah'].filter((tool) => !hasTool(tool));
if (missing.length > 0) console.error(`\n*** SKIPPED: proxy tests need ${missing.join(' and ')} (scripts/ci-setup.sh installs squid and buildah) ***\n`);

const anonymous = { resolve: async () => undefined };

function assertNoCanary(text: string, where: string): void {
  assert.ok(!text.includes(PROXY_USER.password), `proxy password in ${where}: ${text}`);
  assert.ok(!text.includes(Buffer.from(`${PROXY_USER.username}:${PROXY_USER.password}`).toString('base64')), `encoded proxy credentials in ${where}`);
}

/** The error `work` rejects with, checked to be a SlipwayError free of the proxy password. */
async function failure(work: Promise<unknown>): Promise<SlipwayError> {
  try {
    await work;
  } catch (err) {
    assert.ok(SlipwayError.is(err), `not a SlipwayError: ${String(err)}`);
    assertNoCanary(`${err.message} ${JSON.stringify(err)} ${err.stack ?? ''}`, 'the error');
    return err;
  }
  assert.fail('expected a failure');
}

describe('registries behind an HTTP proxy (squid)', { skip: missing.length > 0 ? `needs ${missing.join(' and ')}` : false }, () => {
  let squid: Squid;
  let source: TestRegistry;
  let tlsRegistry: TestRegistry;
  let plainRegistry: TestRegistry;
  let image: PushedImage;
  let ca: string;

  before(async () => {
    [squid, source, tlsRegistry, plainRegistry] = await Promise.all([
      startSquid({ hosts: { [NAME]: '127.0.0.1' }, users: [PROXY_USER] }),
      startRegistry(),
      startRegistry({ tls: true, tlsNames: [NAME] }),
      startRegistry(),
    ]);
    ca = await readFile(tlsRegistry.caPath!, 'utf8');
    image = await pushBusyboxIndex(source.host, 'proxy/source', { arches: ['amd64', 'arm64'] });
  });
  after(() => Promise.all([squid?.stop(), source?.stop(), tlsRegistry?.stop(), plainRegistry?.stop()]));

  const tlsRef = (path: string): string => `${NAME}:${tlsRegistry.port}/${path}`;
  const plainRef = (path: string): string => `${NAME}:${plainRegistry.port}/${path}`;

  it('copies into an HTTPS registry through a CONNECT tunnel, verifying its certificate inside the tunnel', async () => {
    const client = remote.createRegistryClient({ keychain: anonymous, caCertificates: ca, proxy: { httpsProxy: squid.urlWithCredentials() } });
    try {
      const result = await copy.copy(client.source(image.ref), client.sink(tlsRef('app:1')));
      assert.equal(result.digest, image.digest);
      // The source is on loopback: never proxied. The destination answers through the proxy only.
      assert.equal((await client.head(tlsRef('app:1')))?.digest, image.digest);
      assert.equal((await client.transport.baseUrl(tlsRef('app:1').split('/')[0]!)).protocol, 'https:');
    } finally {
      await client.close();
    }
    const log = await squid.accessLog();
    assert.ok(log.some((line) => line.includes(`CONNECT ${NAME}:${tlsRegistry.port} ${PROXY_USER.username}`)), `no authenticated CONNECT in squid's log:\n${log.join('\n')}`);
    assert.ok(!log.some((line) => line.includes(`:${source.port}`)), 'the loopback source went through the proxy');

    // Without the proxy the name does not resolve: the copy above cannot have gone direct.
    const direct = remote.createRegistryClient({ keychain: anonymous, caCertificates: ca, proxy: false, retry: { attempts: 1 } });
    try {
      const err = await failure(direct.head(tlsRef('app:1')));
      assert.equal(err.code, 'SLIPWAY_NETWORK');
      assert.match(err.message, /host not found|ENOTFOUND|EAI_AGAIN/);
    } finally {
      await direct.close();
    }
  });

  it('sends plain HTTP registry requests in absolute form through an http:// proxy', async () => {
    const client = remote.createRegistryClient({ keychain: anonymous, insecure: [`${NAME}:${plainRegistry.port}`], proxy: { httpProxy: squid.urlWithCredentials(), httpsProxy: squid.urlWithCredentials() } });
    try {
      const result = await copy.copy(client.source(image.ref), client.sink(plainRef('app:2')), { platforms: [parsePlatform('linux/arm64')] });
      assert.equal(result.digest, (await client.head(plainRef('app:2')))?.digest);
      assert.equal((await client.transport.baseUrl(`${NAME}:${plainRegistry.port}`)).protocol, 'http:');
    } finally {
      await client.close();
    }
    const log = await squid.accessLog();
    const absolute = `http://${NAME}:${plainRegistry.port}/v2/`;
    assert.ok(log.some((line) => / PUT /.test(line) && line.includes(absolute)), `no absolute-form PUT in squid's log:\n${log.join('\n')}`);
    assert.ok(log.some((line) => / HEAD /.test(line) && line.includes(absolute)), `no absolute-form HEAD in squid's log:\n${log.join('\n')}`);
  });

  it('a 407 says whether the proxy wants credentials or refused them, for tunnels and plain requests, never showing the password', async () => {
    const wrong = `http://${PROXY_USER.username}:wrong-${PROXY_USER.password}@127.0.0.1:${squid.port}`;
    for (const proxyUrl of [squid.url, wrong]) {
      const tunnel = remote.createRegistryClient({ keychain: anonymous, caCertificates: ca, proxy: { httpsProxy: proxyUrl }, retry: { attempts: 1 } });
      const plain = remote.createRegistryClient({ keychain: anonymous, insecure: [`${NAME}:${plainRegistry.port}`], proxy: { httpProxy: proxyUrl, httpsProxy: proxyUrl }, retry: { attempts: 1 } });
      try {
        const expected =
          proxyUrl === squid.url
            ? /proxy http:\/\/127\.0\.0\.1:\d+ asks for credentials \(HTTP 407 Proxy Authentication Required\): put them in its URL/
            : /proxy http:\/\/127\.0\.0\.1:\d+ refused the credentials in its URL \(HTTP 407 Proxy Authentication Required\)/;
        // Through a CONNECT tunnel (https://) and in absolute form (http://) alike.
        for (const err of [await failure(tunnel.head(tlsRef('app:1'))), await failure(plain.head(plainRef('app:2')))]) {
          assert.equal(err.code, 'SLIPWAY_NETWORK');
          assert.match(err.message, expected);
          assert.ok(!err.message.includes('wrong-'), 'no part of the proxy password');
        }
      } finally {
        await Promise.all([tunnel.close(), plain.close()]);
      }
    }
  });

  it('NO_PROXY sends a matching host directly (here: a name only the proxy resolves, so it fails to resolve)', async () => {
    const client = remote.createRegistryClient({
      keychain: anonymous,
      caCertificates: ca,
      proxy: { httpsProxy: squid.urlWithCredentials(), noProxy: `other.test,.slipway.test` },
      retry: { attempts: 1 },
    });
    try {
      const err = await failure(client.head(tlsRef('app:1')));
      assert.match(err.message, /host not found|ENOTFOUND|EAI_AGAIN/);
      assert.doesNotMatch(err.message, /through proxy/);
    } finally {
      await client.close();
    }
  });

  it('a proxy that is down: "unreachable … through proxy", without its credentials', async () => {
    const dead = `http://${PROXY_USER.username}:${PROXY_USER.password}@127.0.0.1:${await freePort()}`;
    const client = remote.createRegistryClient({ keychain: anonymous, caCertificates: ca, proxy: { httpsProxy: dead }, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
    try {
      const err = await failure(client.head(tlsRef('app:1')));
      assert.equal(err.code, 'SLIPWAY_NETWORK');
      assert.match(err.message, /unreachable: connection refused \(ECONNREFUSED\) through proxy http:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      await client.close();
    }
  });

  it('a proxy that accepts the connection and never answers the CONNECT fails within timeoutMs', async () => {
    // squid cannot be made to hang on demand; a listener that never speaks is the fault to inject.
    const silent = await silentServer();
    const client = remote.createRegistryClient({
      keychain: anonymous,
      proxy: { httpsProxy: `http://${silent.host}` },
      timeoutMs: 1500,
      retry: { attempts: 1 },
    });
    const started = Date.now();
    try {
      const err = await failure(client.head(tlsRef('app:1')));
      assert.match(err.message, /timed out waiting for response headers .*through proxy http:\/\/127\.0\.0\.1:\d+/);
      // undici's own pool to the proxy would wait 300 s; a generous bound, far from that.
      assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
    } finally {
      await client.close();
      await silent.close();
    }
  });

  it('a redirect to a NO_PROXY host that fails is reported as that hop, not as the proxy\'s', async () => {
    const faults = await startFaultProxy({ target: plainRegistry });
    const name = `${NAME}:${faults.port}`;
    const blob = `sha256:${'e'.repeat(64)}` as const;
    faults.inject({ match: { method: 'GET', path: `/blobs/${blob}` }, fault: { status: 307, headers: { location: 'http://blobs.slipway.test:1/storage/blob' } }, times: Infinity });
    const client = remote.createRegistryClient({
      keychain: anonymous,
      insecure: [name],
      proxy: { httpProxy: squid.urlWithCredentials(), httpsProxy: squid.urlWithCredentials(), noProxy: 'blobs.slipway.test' },
      retry: { attempts: 1 },
    });
    try {
      const err = await failure(client.blob(`${name}/proxy/redirect`, { mediaType: 'application/octet-stream', digest: blob, size: 1 }).then((s) => s.toArray()));
      assert.match(err.message, /blobs\.slipway\.test/);
      assert.match(err.message, /host not found|ENOTFOUND|EAI_AGAIN/);
      assert.doesNotMatch(err.message, /through proxy/, 'the failed hop went direct');
    } finally {
      await client.close();
      await faults.stop();
    }
  });

  it('a proxy URL no request needs breaks nothing: SOCKS in HTTP_PROXY and a copy between loopback registries', async () => {
    const result = await run(process.execPath, [main, 'copy', image.ref, `${source.host}/proxy/copied:1`], {
      env: { HTTP_PROXY: `socks5://${PROXY_USER.username}:${PROXY_USER.password}@127.0.0.1:1080`, HTTPS_PROXY: 'http://proxy.corp:3128/proxy.pac' },
      timeoutMs: 60_000,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), `${source.host}/proxy/copied:1@${image.digest}`);
    assertNoCanary(result.stdout + result.stderr, 'the CLI output');
  });

  it('the CLI takes HTTPS_PROXY / NO_PROXY from the environment, and keeps the proxy password out of every output', async () => {
    const cli = (args: string[], env: Record<string, string>) =>
      run(process.execPath, [main, ...args], { env: { NODE_EXTRA_CA_CERTS: tlsRegistry.caPath!, NODE_DEBUG: 'slipway', HTTP_PROXY: '', http_proxy: '', NO_PROXY: '', no_proxy: '', ...env }, timeoutMs: 60_000 });
    const ok = await cli(['digest', tlsRef('app:1')], { HTTPS_PROXY: squid.urlWithCredentials() });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), image.digest);
    assertNoCanary(ok.stdout + ok.stderr, 'the CLI output (NODE_DEBUG=slipway)');

    const wrong = await cli(['digest', tlsRef('app:1'), '--json'], { https_proxy: `http://${PROXY_USER.username}:x${PROXY_USER.password}@127.0.0.1:${squid.port}` });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stdout + wrong.stderr, /407/);
    assertNoCanary(wrong.stdout + wrong.stderr, 'the CLI output of a refused proxy login');

    const bypassed = await cli(['digest', tlsRef('app:1')], { HTTPS_PROXY: squid.urlWithCredentials(), NO_PROXY: NAME });
    assert.notEqual(bypassed.code, 0);
    assert.match(bypassed.stderr, /host not found|ENOTFOUND|EAI_AGAIN/);

    const malformed = await cli(['digest', tlsRef('app:1')], { HTTPS_PROXY: `socks5://${PROXY_USER.username}:${PROXY_USER.password}@127.0.0.1:1080` });
    assert.equal(malformed.code, 2, malformed.stderr);
    assert.match(malformed.stderr, /HTTPS_PROXY .*SOCKS/);
    assertNoCanary(malformed.stdout + malformed.stderr, 'the CLI output for a malformed proxy');
  });
});
