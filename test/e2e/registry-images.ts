// Small OCI images for the registry client tests (oci-auth-registry, oci-faults-registry): random
// layers, since the registry does not look inside them.
import { randomBytes } from 'node:crypto';
import { MediaType, sha256, type Descriptor, type ManifestBytes } from '@slipway/oci';

function blob(mediaType: string, bytes: Buffer) {
  return { descriptor: { mediaType, digest: sha256(bytes), size: bytes.length } as Descriptor, bytes };
}

/** An amd64 OCI image with one random gzip-typed layer per size; `blobs` is the config then the layers. */
export function makeImage(layerSizes: number[]) {
  const config = blob(MediaType.OciConfig, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
  const layers = layerSizes.map((size) => blob(MediaType.OciLayerGzip, randomBytes(size)));
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: config.descriptor, layers: layers.map((l) => l.descriptor) }));
  const manifest: ManifestBytes = { descriptor: { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length }, bytes };
  return { config, layers, blobs: [config, ...layers], manifest };
}
