// TLS against the real registry serving HTTPS with a throwaway CA: verified by default (a clear
// error naming the fix), trusted with caCertificates, and accepted unverified when listed insecure.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { remote, SlipwayError } from '@slipway/oci';
import { startRegistry, type TestRegistry } from '../support/registry.js';

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
});
