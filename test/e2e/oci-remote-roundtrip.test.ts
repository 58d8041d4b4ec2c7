// The registry client against the real CNCF registry (open mode): push an image and an index, read
// them back, and cross-check digests with skopeo, an independent client.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { MediaType, name, RegistryError, remote, sha256, type Descriptor, type ManifestBytes } from '@slipway/oci';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { hasTool, run } from '../support/tools.js';

interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

function blob(mediaType: string, bytes: Buffer): Blob {
  return { descriptor: { mediaType, digest: sha256(bytes), size: bytes.length }, bytes };
}

function manifestBytes(body: object): ManifestBytes {
  const bytes = Buffer.from(JSON.stringify(body));
  const mediaType = (body as { mediaType: string }).mediaType;
  return { descriptor: { mediaType, digest: sha256(bytes), size: bytes.length }, bytes };
}

/** A small OCI image with random layers (the registry does not look inside layers). */
function makeImage(layerSizes: number[], architecture = 'amd64') {
  const config = blob(MediaType.OciConfig, Buffer.from(JSON.stringify({ architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
  const layers = layerSizes.map((size) => blob(MediaType.OciLayerGzip, randomBytes(size)));
  const manifest = manifestBytes({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: config.descriptor,
    layers: layers.map((l) => l.descriptor),
  });
  return { config, layers, manifest };
}

const opener = (bytes: Buffer) => async () => Readable.from([bytes]);

describe('remote client against the real registry (open)', () => {
  let registry: TestRegistry;
  let client: remote.RegistryClient;

  before(async () => {
    registry = await startRegistry({ auth: 'none' });
    client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });
  });
  after(async () => {
    await client?.close();
    await registry?.stop();
  });

  it('pushes an image, reads it back byte for byte, and skopeo sees the same digest', async (t) => {
    const image = makeImage([1024, 300_000, 5]);
    const ref = name.parseReference(`${registry.host}/roundtrip/app:1.0`);
    const sink = client.sink(ref);
    assert.equal(sink.tag, '1.0');
    assert.equal(await sink.current(), undefined, 'nothing at the tag yet');
    for (const b of [image.config, ...image.layers]) {
      assert.equal(await sink.hasBlob(b.descriptor), false);
      await sink.putBlob(b.descriptor, opener(b.bytes));
      assert.equal(await sink.hasBlob(b.descriptor), true);
    }
    await sink.putManifest(image.manifest, { tag: '1.0' });

    const current = await sink.current();
    assert.deepEqual(current, image.manifest.descriptor);
    assert.deepEqual(await client.head(ref), image.manifest.descriptor);

    const source = client.source(ref);
    const root = await source.root();
    assert.deepEqual(root.descriptor, image.manifest.descriptor);
    assert.deepEqual(Buffer.from(root.bytes), Buffer.from(image.manifest.bytes));
    for (const b of image.layers) assert.deepEqual(await buffer(await source.blob(b.descriptor)), b.bytes);
    const byDigest = await client.getManifest(ref.withDigest(image.manifest.descriptor.digest));
    assert.deepEqual(Buffer.from(byDigest.bytes), Buffer.from(image.manifest.bytes));
    assert.equal(source.location?.registry, registry.host);

    if (!hasTool('skopeo')) {
      t.skip('skopeo not installed (apt-get install skopeo): cannot cross-check the digest with an independent client');
      return;
    }
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref.toString()}`]);
    assert.equal(raw.code, 0, raw.stderr);
    // The manifest is ASCII JSON, so the utf8 round trip through stdout keeps its bytes.
    assert.equal(sha256(Buffer.from(raw.stdout)), image.manifest.descriptor.digest);
  });

  it('pushes an index of two images by digest then by tag, and lists tags', async () => {
    const amd = makeImage([2048], 'amd64');
    const arm = makeImage([4096], 'arm64');
    const ref = name.parseReference(`${registry.host}/roundtrip/multi:v1`);
    const sink = client.sink(ref);
    for (const image of [amd, arm]) {
      for (const b of [image.config, ...image.layers]) await sink.putBlob(b.descriptor, opener(b.bytes));
      assert.equal(await sink.hasManifest(image.manifest.descriptor), false);
      await sink.putManifest(image.manifest);
      assert.equal(await sink.hasManifest(image.manifest.descriptor), true);
    }
    const index = manifestBytes({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        { ...amd.manifest.descriptor, platform: { os: 'linux', architecture: 'amd64' } },
        { ...arm.manifest.descriptor, platform: { os: 'linux', architecture: 'arm64' } },
      ],
    });
    await sink.putManifest(index, { tag: 'v1' });
    await client.sink(ref.withTag('v2')).putManifest(index, { tag: 'v2' });

    const root = await client.source(ref).root();
    assert.equal(root.descriptor.mediaType, MediaType.OciIndex);
    assert.equal(root.descriptor.digest, index.descriptor.digest);
    const child = await client.source(ref).manifest(arm.manifest.descriptor);
    assert.deepEqual(Buffer.from(child.bytes), Buffer.from(arm.manifest.bytes));

    const tags = await client.listTags(name.parseRepository(`${registry.host}/roundtrip/multi`));
    assert.deepEqual(tags.sort(), ['v1', 'v2']);
  });

  it('deletes a manifest and then reports it absent', async () => {
    const image = makeImage([100]);
    const ref = name.parseReference(`${registry.host}/roundtrip/delete:gone`);
    const sink = client.sink(ref);
    for (const b of [image.config, ...image.layers]) await sink.putBlob(b.descriptor, opener(b.bytes));
    await sink.putManifest(image.manifest, { tag: 'gone' });
    assert.ok(await client.head(ref));
    await client.deleteManifest(ref);
    assert.equal(await client.head(ref), undefined);
    await assert.rejects(client.getManifest(ref), (err: unknown) => {
      assert.ok(RegistryError.is(err), String(err));
      assert.equal(err.status, 404);
      assert.match(err.message, /^GET http:\/\/127\.0\.0\.1:\d+\/v2\/roundtrip\/delete\/manifests\/gone: MANIFEST_UNKNOWN/);
      return true;
    });
  });

  it('reports referrers through the fallback tag when the registry has no referrers API', async () => {
    const image = makeImage([10]);
    const ref = name.parseReference(`${registry.host}/roundtrip/referrers:base`);
    const sink = client.sink(ref);
    for (const b of [image.config, ...image.layers]) await sink.putBlob(b.descriptor, opener(b.bytes));
    await sink.putManifest(image.manifest, { tag: 'base' });
    assert.deepEqual(await client.referrers(ref, image.manifest.descriptor.digest), []);

    const empty = blob(MediaType.OciEmpty, Buffer.from('{}'));
    await sink.putBlob(empty.descriptor, opener(empty.bytes));
    const signature = manifestBytes({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType: 'application/example.signature',
      config: empty.descriptor,
      layers: [empty.descriptor],
      subject: image.manifest.descriptor,
    });
    await sink.putManifest(signature);
    const fallback = manifestBytes({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [{ ...signature.descriptor, artifactType: 'application/example.signature' }],
    });
    await sink.putManifest(fallback, { tag: image.manifest.descriptor.digest.replace(':', '-') });
    const found = await client.referrers(ref, image.manifest.descriptor.digest);
    assert.deepEqual(found.map((d) => d.digest), [signature.descriptor.digest]);
    assert.deepEqual(await client.referrers(ref, image.manifest.descriptor.digest, { artifactType: 'other/type' }), []);
  });

  it('uploads chunked (several PATCHes with Content-Range) when a blob is over maxMonolithicBytes', async () => {
    const chunked = remote.createRegistryClient({ keychain: { resolve: async () => undefined }, chunkSize: 64 * 1024, maxMonolithicBytes: 100_000 });
    try {
      const image = makeImage([300_000, 1000, 1]); // 1 byte: distribution answers `Range: 0-0` for it and for an empty session
      const ref = name.parseReference(`${registry.host}/roundtrip/chunked:1`);
      const sink = chunked.sink(ref);
      const progress = new Map<string, number[]>();
      for (const b of [image.config, ...image.layers]) {
        const seen: number[] = [];
        progress.set(b.descriptor.digest, seen);
        await sink.putBlob(b.descriptor, opener(b.bytes), { onProgress: (n) => seen.push(n) });
      }
      await sink.putManifest(image.manifest, { tag: '1' });
      const big = image.layers[0]!;
      assert.deepEqual(await buffer(await chunked.source(ref).blob(big.descriptor)), big.bytes);
      // 300 000 bytes in 64 KiB chunks: 5 PATCHes, progress after each.
      assert.deepEqual(progress.get(big.descriptor.digest), [65536, 131072, 196608, 262144, 300000]);
      assert.equal(progress.get(image.config.descriptor.digest)?.at(-1), image.config.bytes.length);
      const log = await registry.log();
      const patches = log.split('\n').filter((line) => /PATCH \/v2\/roundtrip\/chunked\/blobs\/uploads\//.test(line) || /http.request.method=PATCH.*roundtrip\/chunked/.test(line));
      assert.ok(patches.length >= 5, `the registry saw the PATCHes (${patches.length})`);
    } finally {
      await chunked.close();
    }
  });

  it('mounts a blob from another repository instead of uploading it', async () => {
    const image = makeImage([50_000]);
    const from = name.parseReference(`${registry.host}/mount/source:1`);
    const to = name.parseReference(`${registry.host}/mount/target:1`);
    const fromSink = client.sink(from);
    for (const b of [image.config, ...image.layers]) await fromSink.putBlob(b.descriptor, opener(b.bytes));
    const sink = client.sink(to);
    let opened = 0;
    for (const b of [image.config, ...image.layers]) {
      await sink.putBlob(
        b.descriptor,
        async () => {
          opened++;
          return Readable.from([b.bytes]);
        },
        { mountFrom: client.source(from).location! },
      );
    }
    assert.equal(opened, 0, 'a mounted blob is never read from the source');
    await sink.putManifest(image.manifest, { tag: '1' });
    assert.deepEqual(await client.head(to), image.manifest.descriptor);
    const log = await registry.log();
    assert.match(log, /mount=sha256/, 'the registry saw a mount request');
  });
});
