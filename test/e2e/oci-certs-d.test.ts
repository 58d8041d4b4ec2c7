// Per-registry TLS from certs.d directories (Docker's and podman's layout) against the real registry
// serving HTTPS with a throwaway CA, and requiring client certificates (http.tls.clientcas): a CA in
// `<root>/<host:port>/*.crt`, a client pair in `*.cert` + `*.key`, the first root with a directory
// answering alone, clear errors for a missing or refused client certificate, through a proxy too,
// and the CLI finding `$XDG_CONFIG_HOME/containers/certs.d` by itself.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { copy, remote, SlipwayError } from '@slipway/oci';
import { pushBusyboxImage, type PushedImage } from '../support/fixtures.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { SQUID_BIN, startSquid } from '../support/squid.js';
import { hasTool, run } from '../support/tools.js';

const main = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));
const anonymous = { resolve: async () => undefined };

async function rejection(work: Promise<unknown>): Promise<SlipwayError> {
  try {
    await work;
  } catch (err) {
    assert.ok(SlipwayError.is(err), `not a SlipwayError: ${String(err)}`);
    return err;
  }
  assert.fail('expected a failure');
}

describe('certs.d: per-registry CAs and client certificates', { skip: hasTool('buildah') ? false : 'needs buildah (apt-get install buildah)' }, () => {
  let work: string;
  let source: TestRegistry;
  let tls: TestRegistry;
  let mutual: TestRegistry;
  let image: PushedImage;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'slipway-certs-d-'));
    [source, tls, mutual] = await Promise.all([
      startRegistry(),
      startRegistry({ tls: true }),
      startRegistry({ tls: true, clientCertificates: true, tlsNames: ['mtls.slipway.test'] }),
    ]);
    image = await pushBusyboxImage(source.host, 'certs/source', 'amd64');
  });
  after(async () => {
    await Promise.all([source?.stop(), tls?.stop(), mutual?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  let roots = 0;
  /** A fresh certs.d root with one directory per entry: `{ 'host:port': { 'ca.crt': path, … } }`. */
  async function certsRoot(entries: Record<string, Record<string, string>>): Promise<string> {
    const root = join(work, `root-${++roots}`);
    for (const [host, files] of Object.entries(entries)) {
      await mkdir(join(root, host), { recursive: true });
      for (const [name, from] of Object.entries(files)) await copyFile(from, join(root, host, name));
    }
    return root;
  }

  it('trusts the CA in <root>/<host:port>/ca.crt for that registry only, and names the place when it is missing', async () => {
    const root = await certsRoot({ [tls.host]: { 'ca.crt': tls.caPath! } });
    const client = remote.createRegistryClient({ keychain: anonymous, certDirectories: [root] });
    try {
      const result = await copy.copy(client.source(image.ref), client.sink(`${tls.host}/app:1`));
      assert.equal(result.digest, image.digest);
      assert.equal((await client.head(`${tls.host}/app:1`))?.digest, image.digest);
      assert.equal((await client.transport.baseUrl(tls.host)).protocol, 'https:');
      // The mutual-TLS registry has another CA: this root holds nothing for it.
      const err = await rejection(client.head(`${mutual.host}/app:1`));
      assert.match(err.message, new RegExp(`not trusted .*put its CA in ${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/${mutual.host}/ca\\.crt`));
    } finally {
      await client.close();
    }
  });

  it('the first root holding a directory for the registry answers alone, as containers/image reads them', async () => {
    // The first root's directory holds the wrong CA (the client CA); the right one in the second is not read.
    const first = await certsRoot({ [tls.host]: { 'other.crt': mutual.caPath! } });
    const second = await certsRoot({ [tls.host]: { 'ca.crt': tls.caPath! } });
    const shadowed = remote.createRegistryClient({ keychain: anonymous, certDirectories: [first, second], retry: { attempts: 1 } });
    const direct = remote.createRegistryClient({ keychain: anonymous, certDirectories: [join(work, 'missing'), second] });
    try {
      const err = await rejection(shadowed.head(`${tls.host}/app:1`));
      assert.match(err.message, new RegExp(`not trusted .*add its CA to ${first.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/`));
      assert.equal((await direct.head(`${tls.host}/app:1`))?.digest, image.digest, 'a root without the directory is passed over');
    } finally {
      await Promise.all([shadowed.close(), direct.close()]);
    }
  });

  it('presents the client certificate from client.cert + client.key to a registry that requires one', async () => {
    const root = await certsRoot({ [mutual.host]: { 'ca.crt': mutual.caPath!, 'client.cert': mutual.clientCertPath!, 'client.key': mutual.clientKeyPath! } });
    const client = remote.createRegistryClient({ keychain: anonymous, certDirectories: [root] });
    try {
      const result = await copy.copy(client.source(image.ref), client.sink(`${mutual.host}/app:1`));
      assert.equal(result.digest, image.digest);
      assert.equal((await client.head(`${mutual.host}/app:1`))?.digest, image.digest);
      assert.deepEqual(await client.listTags(`${mutual.host}/app`), ['1']);
    } finally {
      await client.close();
    }
    // What skopeo makes of the same registry with the same directory: the digest agrees.
    if (hasTool('skopeo')) {
      const inspected = await run('skopeo', ['inspect', '--format', '{{.Digest}}', '--cert-dir', join(root, mutual.host), `docker://${mutual.host}/app:1`]);
      assert.equal(inspected.code, 0, inspected.stderr);
      assert.equal(inspected.stdout.trim(), image.digest);
    }
  });

  it('says what to do when the client certificate is missing, refused, or half there', async () => {
    const noClient = await certsRoot({ [mutual.host]: { 'ca.crt': mutual.caPath! } });
    // A certificate the registry's client CA did not sign: the server's own pair.
    const wrongClient = await certsRoot({ [mutual.host]: { 'ca.crt': mutual.caPath!, 'client.cert': join(mutual.dataDir, 'server.crt'), 'client.key': join(mutual.dataDir, 'server.key') } });
    const keyOnly = await certsRoot({ [mutual.host]: { 'ca.crt': mutual.caPath!, 'client.key': mutual.clientKeyPath! } });
    const cases: [string, RegExp][] = [
      [noClient, /speaks HTTPS, and the TLS connection failed: .*if the registry requires a client certificate, put client\.cert and client\.key in .*root-\d+\/127\.0\.0\.1:\d+/],
      [wrongClient, /speaks HTTPS, and the TLS connection failed: .*it refused the one in .*root-\d+\/127\.0\.0\.1:\d+/],
      [keyOnly, /client key .*client\.key has no certificate client\.cert beside it/],
    ];
    for (const [root, expected] of cases) {
      const client = remote.createRegistryClient({ keychain: anonymous, certDirectories: [root], retry: { attempts: 1 } });
      try {
        const err = await rejection(client.head(`${mutual.host}/app:1`));
        assert.match(err.message, expected);
      } finally {
        await client.close();
      }
    }
  });

  it('reaches a token realm on another port of the host with the registry\'s certs.d CA, as Docker does', async () => {
    // docker_auth's layout: the realm on the same name, its own port, the registry's certificate.
    const tokenRegistry = await startRegistry({ auth: 'token', tls: true, tokenTls: true });
    try {
      assert.match(tokenRegistry.tokenIssuer!.realm, /^https:\/\/127\.0\.0\.1:\d+\/token$/);
      assert.notEqual(new URL(tokenRegistry.tokenIssuer!.realm).port, String(tokenRegistry.port));
      const root = await certsRoot({ [tokenRegistry.host]: { 'ca.crt': tokenRegistry.caPath! } });
      const credentials = { [tokenRegistry.host]: { username: tokenRegistry.username, password: tokenRegistry.password } };
      const client = remote.createRegistryClient({ credentials, certDirectories: [root] });
      try {
        const result = await copy.copy(client.source(image.ref), client.sink(`${tokenRegistry.host}/app:1`));
        assert.equal(result.digest, image.digest);
        assert.deepEqual(await client.listTags(`${tokenRegistry.host}/app`), ['1']);
      } finally {
        await client.close();
      }
      assert.ok(tokenRegistry.tokenIssuer!.requests.some((r) => r.status === 200), 'tokens were issued over the realm\'s TLS');
    } finally {
      await tokenRegistry.stop();
    }
  });

  it('keeps the client certificate inside a proxy tunnel', { skip: hasTool(SQUID_BIN) ? false : `needs ${SQUID_BIN} (apt-get install squid)` }, async () => {
    const squid = await startSquid({ hosts: { 'mtls.slipway.test': '127.0.0.1' } });
    const name = `mtls.slipway.test:${mutual.port}`;
    const root = await certsRoot({ [name]: { 'ca.crt': mutual.caPath!, 'client.cert': mutual.clientCertPath!, 'client.key': mutual.clientKeyPath! } });
    const client = remote.createRegistryClient({ keychain: anonymous, certDirectories: [root], proxy: { httpsProxy: squid.url } });
    try {
      assert.equal((await client.head(`${name}/app:1`))?.digest, image.digest);
    } finally {
      await client.close();
      await squid.stop();
    }
  });

  it('the CLI reads $XDG_CONFIG_HOME/containers/certs.d without being told', async () => {
    const config = join(work, 'xdg');
    const dir = join(config, 'containers', 'certs.d', mutual.host);
    await mkdir(dir, { recursive: true });
    await Promise.all([copyFile(mutual.caPath!, join(dir, 'ca.crt')), copyFile(mutual.clientCertPath!, join(dir, 'client.cert')), copyFile(mutual.clientKeyPath!, join(dir, 'client.key'))]);
    await writeFile(join(dir, 'README'), 'files with other suffixes are ignored, as by Docker\n');
    const result = await run(process.execPath, [main, 'digest', `${mutual.host}/app:1`], { env: { XDG_CONFIG_HOME: config, HTTPS_PROXY: '', https_proxy: '' }, timeoutMs: 60_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), image.digest);
  });
});
