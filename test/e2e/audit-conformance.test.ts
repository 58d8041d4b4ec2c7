// Acceptance audit: the registry ImageSource (client.source()) runs the same conformance suite as the
// archive and layout sources, against the real CNCF registry in open, htpasswd and token mode, with
// images made by buildah (an OCI index with linux/arm/v7, a Docker manifest list, a Docker v2 schema 2 image)
// and root digests taken from skopeo, an independent client. Basic, Bearer and anonymous access.
import { after, describe } from 'node:test';
import { remote, type Digest } from '@slipway/oci';
import * as testing from '@slipway/oci/testing';
import { hasBusyboxDeb, pushBusyboxImage, pushBusyboxIndex } from '../support/fixtures.js';
import { CANARY_PASSWORD, CANARY_USERNAME, startRegistry, type TestRegistry } from '../support/registry.js';
import { hasTool, runChecked } from '../support/tools.js';
import { sha256Text } from './oci-archive-fixtures.js';

const missing = [...['buildah', 'skopeo'].filter((tool) => !hasTool(tool)), ...(hasBusyboxDeb('arm') ? [] : ['busybox-static debs'])];
const skip = missing.length === 0 ? false : `SKIPPED: ${missing.join(', ')} missing (registry source conformance); run scripts/ci-setup.sh`;
if (skip) console.error(`\n*** ${skip} ***\n`);

/** skopeo's bytes for a reference, hashed: the digest an independent client sees. */
async function skopeoDigest(ref: string, creds?: { username: string; password: string }): Promise<Digest> {
  const r = await runChecked('skopeo', ['inspect', '--raw', '--tls-verify=false', ...(creds ? ['--creds', `${creds.username}:${creds.password}`] : []), `docker://${ref}`]);
  return sha256Text(r.stdout) as Digest;
}

describe('registry ImageSource conformance (audit)', { skip }, () => {
  const registries: TestRegistry[] = [];
  after(async () => {
    await Promise.all(registries.map((r) => r.stop()));
  });

  testing.imageSourceConformance('registry source: buildah index with linux/arm/v7 (open registry)', async () => {
    const registry = await startRegistry();
    registries.push(registry);
    const pushed = await pushBusyboxIndex(registry.host, 'conformance/index', { tag: 'v1' });
    const rootDigest = await skopeoDigest(pushed.ref);
    const client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });
    return {
      source: client.source(pushed.ref),
      expected: { rootDigest, rootMediaType: 'application/vnd.oci.image.index.v1+json' },
      cleanup: () => client.close(),
    };
  });

  testing.imageSourceConformance('registry source: Docker manifest list of v2 schema 2 images (htpasswd registry)', async () => {
    const registry = await startRegistry({ auth: 'htpasswd', username: CANARY_USERNAME, password: CANARY_PASSWORD });
    registries.push(registry);
    const creds = { username: CANARY_USERNAME, password: CANARY_PASSWORD };
    const pushed = await pushBusyboxIndex(registry.host, 'conformance/list', { format: 'docker', creds, arches: ['amd64', 'arm'] });
    const rootDigest = await skopeoDigest(pushed.ref, creds);
    const client = remote.createRegistryClient({ credentials: { [registry.host]: creds } });
    return {
      source: client.source(pushed.ref),
      expected: { rootDigest, rootMediaType: 'application/vnd.docker.distribution.manifest.list.v2+json' },
      cleanup: () => client.close(),
    };
  });

  testing.imageSourceConformance('registry source: Docker v2 schema 2 image by digest (Bearer token registry)', async () => {
    const registry = await startRegistry({ auth: 'token', username: CANARY_USERNAME, password: CANARY_PASSWORD });
    registries.push(registry);
    const creds = { username: CANARY_USERNAME, password: CANARY_PASSWORD };
    const pushed = await pushBusyboxImage(registry.host, 'conformance/single', 'arm64', { format: 'docker', creds });
    const rootDigest = await skopeoDigest(pushed.ref, creds);
    const client = remote.createRegistryClient({ credentials: { [registry.host]: creds } });
    return {
      source: client.source(pushed.digestRef),
      expected: { rootDigest, rootMediaType: 'application/vnd.docker.distribution.manifest.v2+json' },
      cleanup: () => client.close(),
    };
  });
});
