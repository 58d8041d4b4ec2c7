// TLS against the real registry serving HTTPS with a throwaway CA: verified by default (a clear
// error naming the fix), trusted with caCertificates or SSL_CERT_FILE, and accepted unverified when
// listed insecure.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { remote, SlipwayError } from '@slipway/oci';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { run } from '../support/tools.js';

const main = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));

describe('registry over TLS', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startRegistry({ auth: 'none', tls: true });
  });
  after(() => registry?.stop());

  const anonymous = { resolve: async () => undefined };

  it('refuses an untrusted certificate with a message that names caCertificates and insecure', async () => {
    const client = remote.createRegistryClient({ keychain: anonymous, retry: { attempts: 1 } });
    try {
      await assert.rejects(client.listTags(`${registry.host}/none`), (err: unknown) => {
        assert.ok(SlipwayError.is(err));
        assert.equal(err.code, 'SLIPWAY_NETWORK');
        assert.match(err.message, /certificate .*not trusted.*caCertificates.*insecure/);
        return true;
      });
    } finally {
      await client.close();
    }
  });

  it('verifies the certificate against caCertificates', async () => {
    const client = remote.createRegistryClient({ keychain: anonymous, caCertificates: await readFile(registry.caPath!, 'utf8') });
    try {
      assert.equal(await client.head(`${registry.host}/none:1`), undefined);
      assert.equal((await client.transport.baseUrl(registry.host)).protocol, 'https:');
    } finally {
      await client.close();
    }
  });

  it('skips verification for a registry listed in insecure', async () => {
    const client = remote.createRegistryClient({ keychain: anonymous, insecure: [registry.host] });
    try {
      assert.equal(await client.head(`${registry.host}/none:1`), undefined);
      assert.equal((await client.transport.baseUrl(registry.host)).protocol, 'https:');
    } finally {
      await client.close();
    }
  });

  it('the CLI trusts the CA that SSL_CERT_FILE names, as crane does, and refuses the registry without it', async () => {
    // An empty index: a manifest with no blobs, its digest computed here from the bytes pushed.
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as const;
    const client = remote.createRegistryClient({ keychain: anonymous, caCertificates: await readFile(registry.caPath!, 'utf8') });
    try {
      await client.putManifest(`${registry.host}/ssl-env/app:1`, { descriptor: { mediaType: 'application/vnd.oci.image.index.v1+json', digest, size: bytes.length }, bytes });
    } finally {
      await client.close();
    }
    // A home of its own: no certs.d directory, auth file or Docker config of the caller's is read.
    const home = await mkdtemp(join(tmpdir(), 'slipway-ssl-env-e2e-'));
    const env = { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), DOCKER_CONFIG: join(home, 'docker'), REGISTRY_AUTH_FILE: join(home, 'auth.json'), NODE_EXTRA_CA_CERTS: undefined, SSL_CERT_DIR: undefined };
    try {
      const trusted = await run(process.execPath, [main, 'digest', `${registry.host}/ssl-env/app:1`], { env: { ...env, SSL_CERT_FILE: registry.caPath! }, timeoutMs: 60_000 });
      assert.equal(trusted.code, 0, trusted.stderr);
      assert.equal(trusted.stdout, `${digest}\n`);
      const untrusted = await run(process.execPath, [main, 'digest', `${registry.host}/ssl-env/app:1`], { env: { ...env, SSL_CERT_FILE: undefined }, timeoutMs: 60_000 });
      assert.equal(untrusted.code, 1, untrusted.stderr);
      assert.equal(untrusted.stdout, '');
      assert.match(untrusted.stderr, /TLS certificate of 127\.0\.0\.1:\d+ not trusted .*SSL_CERT_FILE/);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
