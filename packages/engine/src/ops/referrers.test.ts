import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestOf, MediaType, type ManifestBytes } from '@slipway/oci';
import { referrerDescriptor } from './referrers.js';

const subject = { mediaType: MediaType.OciManifest, digest: `sha256:${'a'.repeat(64)}`, size: 10 };
const empty = { mediaType: MediaType.OciEmpty, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 };

function bytesOf(body: object, mediaType: string): ManifestBytes {
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  return { descriptor: { mediaType, digest: digestOf(bytes), size: bytes.byteLength }, bytes };
}

describe('referrerDescriptor: what the referrers API lists for a manifest (distribution spec v1.1)', () => {
  it('takes artifactType, and the manifest annotations', () => {
    const manifest = bytesOf({ schemaVersion: 2, mediaType: MediaType.OciManifest, artifactType: 'application/example.sbom', config: empty, layers: [], subject, annotations: { a: 'b' } }, MediaType.OciManifest);
    assert.deepEqual(referrerDescriptor(manifest), { ...manifest.descriptor, artifactType: 'application/example.sbom', annotations: { a: 'b' } });
  });
  it("an image manifest without artifactType: the config's mediaType", () => {
    const config = { mediaType: 'application/example.config', digest: empty.digest, size: 2 };
    const manifest = bytesOf({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [], subject }, MediaType.OciManifest);
    assert.deepEqual(referrerDescriptor(manifest), { ...manifest.descriptor, artifactType: 'application/example.config' });
  });
  it('an index without artifactType: none', () => {
    const manifest = bytesOf({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [], subject }, MediaType.OciIndex);
    assert.deepEqual(referrerDescriptor(manifest), manifest.descriptor);
  });
});
