import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { SlipwayError } from '../errors.js';
import { digestOf, type Digest } from '../v1/digest.js';
import type { Descriptor } from '../v1/manifest.js';
import { MediaType } from '../v1/media-types.js';
import { parsePlatform, parsePlatforms } from '../v1/platform.js';
import { copy, DestinationExistsError, sharedCopyState, type CopyEvent } from './copy.js';
import type { ImageSink } from '../v1/source.js';
import { MemoryRegistry } from './memory.js';
import { PlatformMismatchError, resolvePlatform } from './select.js';

const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

/** Stores a small image (config + layers) and returns its manifest descriptor with the platform set. */
function addImage(registry: MemoryRegistry, repository: string, platform: string, layers: string[], tag?: string): Descriptor {
  const p = parsePlatform(platform);
  const config = registry.addBlob(repository, encode({ ...p, rootfs: { type: 'layers', diff_ids: [] }, config: {} }), MediaType.OciConfig);
  const layerDescriptors = layers.map((text) => registry.addBlob(repository, new TextEncoder().encode(text), MediaType.OciLayerGzip));
  const bytes = encode({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: layerDescriptors });
  return { ...registry.addManifest(repository, bytes, MediaType.OciManifest, tag), platform: p };
}

function addIndex(registry: MemoryRegistry, repository: string, children: Descriptor[], tag?: string, extra: Record<string, unknown> = {}): Descriptor {
  const bytes = encode({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: children, ...extra });
  return registry.addManifest(repository, bytes, MediaType.OciIndex, tag);
}

/** An index of three platforms sharing one base layer, plus an attestation for the arm64 child. */
function multiPlatform(registry: MemoryRegistry, repository = 'src', tag = 'v1') {
  const amd64 = addImage(registry, repository, 'linux/amd64', ['base', 'amd64 app']);
  const arm64 = addImage(registry, repository, 'linux/arm64', ['base', 'arm64 app']);
  const armv7 = addImage(registry, repository, 'linux/arm/v7', ['base', 'armv7 app']);
  const attestationManifest = addImage(registry, repository, 'unknown/unknown', ['provenance']);
  const attestation: Descriptor = {
    ...attestationManifest,
    platform: { os: 'unknown', architecture: 'unknown' },
    annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': arm64.digest },
  };
  const index = addIndex(registry, repository, [amd64, arm64, armv7, attestation], tag, { annotations: { 'org.example': 'kept' } });
  return { index, amd64, arm64, armv7, attestation };
}

const destinationRequests = (registry: MemoryRegistry) => registry.requests.filter((r) => r.repository === 'dst');

describe('copy', () => {
  it('copies a whole index byte for byte, each shared blob once, the tag last', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const dst = new MemoryRegistry({ host: 'dst.test' });
    const { index, amd64, arm64, armv7 } = multiPlatform(src);
    const result = await copy(src.source('src', 'v1'), dst.sink('dst', 'latest'));
    assert.equal(result.digest, index.digest);
    assert.equal(result.sourceDigest, index.digest);
    assert.equal(result.noop, false);
    assert.equal(dst.tagged('dst', 'latest'), index.digest);
    assert.deepEqual(
      result.platforms,
      [
        { platform: 'linux/amd64', digest: amd64.digest },
        { platform: 'linux/arm64', digest: arm64.digest },
        { platform: 'linux/arm/v7', digest: armv7.digest },
      ],
    );
    // 4 configs + base + 3 app layers + provenance = 9 distinct blobs; "base" is shared by three children.
    assert.equal(result.stats.blobsCopied, 9);
    assert.equal(result.stats.manifestsPut, 5);
    const blobPuts = dst.requests.filter((r) => r.kind === 'blob' && r.method === 'PUT').map((r) => r.target);
    assert.equal(new Set(blobPuts).size, blobPuts.length, 'a blob was uploaded twice');
    const manifestPuts = dst.requests.filter((r) => r.kind === 'manifest' && r.method === 'PUT');
    assert.deepEqual(manifestPuts.at(-1), { method: 'PUT', kind: 'manifest', repository: 'dst', target: 'latest' });
    assert.equal(result.stats.bytesCopied, blobPuts.reduce((sum, digest) => sum + dst.blobBytes('dst', digest as Digest)!.byteLength, 0));
  });

  it('present: a root the destination is known to hold is written under the new tag alone, a known child is not asked for', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const dst = new MemoryRegistry({ host: 'dst.test' });
    const { index, amd64, arm64, armv7, attestation } = multiPlatform(src);
    await copy(src.source('src', 'v1'), dst.sink('dst', 'v1'));
    dst.requests.length = 0;
    const shared = sharedCopyState();
    shared.present.add(index.digest);
    const again = await copy(src.source('src', 'v1'), dst.sink('dst', 'alias'), { shared });
    assert.equal(again.digest, index.digest);
    assert.equal(dst.tagged('dst', 'alias'), index.digest);
    assert.deepEqual(again.stats, { blobsCopied: 0, blobsSkipped: 0, blobsMounted: 0, bytesCopied: 0, manifestsPut: 1 });
    assert.deepEqual(
      dst.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.kind} ${r.target}`),
      ['HEAD manifest alias', 'PUT manifest alias', 'HEAD manifest alias'],
      'the tag checked before and after, the index written: no child or blob request, no second look before the write',
    );
    // A new index sharing children: those named present are not even HEADed; the new one is walked.
    const amd64Only = addIndex(src, 'src', [amd64, armv7, attestation], 'v2');
    dst.requests.length = 0;
    const known = sharedCopyState();
    for (const digest of [amd64.digest, armv7.digest]) known.present.add(digest);
    const partial = await copy(src.source('src', 'v2'), dst.sink('dst', 'v2'), { shared: known });
    assert.equal(partial.digest, amd64Only.digest);
    const childHeads = dst.requests.filter((r) => r.kind === 'manifest' && r.method === 'HEAD' && r.target !== 'v2').map((r) => r.target);
    assert.deepEqual(childHeads, [attestation.digest], 'only the attestation, not named present, was asked for');
    assert.ok(!dst.requests.some((r) => r.target === arm64.digest));
    assert.ok(known.present.has(attestation.digest) && known.present.has(amd64Only.digest), 'what a HEAD found and what was written are known present now');
  });

  it('knownCurrent stands for the first look at the tag, and the tag is still checked before the write: another writer is never replaced', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const { index, amd64 } = multiPlatform(src);
    // Told the tag was free, but another writer took it since: refused before the root is written.
    const dst = new MemoryRegistry({ host: 'dst.test' });
    const theirs = addImage(dst, 'dst', 'linux/amd64', ['theirs'], 'v1');
    await assert.rejects(copy(src.source('src', 'v1'), dst.sink('dst', 'v1'), { knownCurrent: null }), (err: unknown) => err instanceof DestinationExistsError && err.existing === theirs.digest);
    assert.equal(dst.tagged('dst', 'v1'), theirs.digest, 'the other writer\'s image kept');
    assert.ok(!dst.requests.some((r) => r.kind === 'manifest' && r.method === 'PUT' && r.target === 'v1'));
    // The same with nothing to store first (the image is there under another tag, known present):
    // the check before the write is what stops it.
    await copy(src.source('src', 'v1'), dst.sink('dst', 'other'));
    const shared = sharedCopyState();
    shared.present.add(index.digest);
    await assert.rejects(copy(src.source('src', 'v1'), dst.sink('dst', 'v1'), { knownCurrent: null, shared }), (err: unknown) => err instanceof DestinationExistsError && err.existing === theirs.digest);
    assert.equal(dst.tagged('dst', 'v1'), theirs.digest, 'the other writer\'s image kept');
    // Told the tag holds another image: refused at once, not a request sent.
    const quiet = new MemoryRegistry({ host: 'quiet.test' });
    await assert.rejects(copy(src.source('src', 'v1'), quiet.sink('dst', 'v1'), { knownCurrent: amd64 }), (err: unknown) => err instanceof DestinationExistsError && err.existing === amd64.digest);
    assert.deepEqual(destinationRequests(quiet), []);
    // Told the tag holds the image: a no-op without asking.
    const same = new MemoryRegistry({ host: 'same.test' });
    const noop = await copy(src.source('src', 'v1'), same.sink('dst', 'v1'), { knownCurrent: index });
    assert.equal(noop.noop, true);
    assert.deepEqual(destinationRequests(same), []);
  });

  it('shared: copies side by side into one repository move each blob once; a move that failed is taken over', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const { amd64, arm64 } = multiPlatform(src);
    addIndex(src, 'src', [amd64, arm64], 'v2');
    // The first upload of the shared "base" layer fails once: the copy that finds it failed moves it itself.
    let failOnce = true;
    const dst = new MemoryRegistry({
      host: 'dst.test',
      beforeRequest: async (request) => {
        await delay(2);
        if (failOnce && request.kind === 'blob' && request.method === 'PUT' && request.target === digestOf(new TextEncoder().encode('base'))) {
          failOnce = false;
          throw new SlipwayError('SLIPWAY_REGISTRY', 'upload refused once');
        }
      },
    });
    const shared = sharedCopyState();
    const results = await Promise.allSettled([
      copy(src.source('src', 'v1'), dst.sink('dst', 'v1'), { shared }),
      copy(src.source('src', 'v2'), dst.sink('dst', 'v2'), { shared }),
    ]);
    const failed = results.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 1, 'the copy whose upload failed fails');
    const other = results.find((r) => r.status === 'fulfilled')!;
    assert.ok(other.status === 'fulfilled');
    // The failed copy's other moves were cancelled with it; the survivor found or moved every blob itself.
    const v2 = addIndex(src, 'src', [amd64, arm64]);
    assert.equal(dst.tagged('dst', 'v2'), v2.digest);
    for (const digest of ['base', 'amd64 app', 'arm64 app'].map((text) => digestOf(new TextEncoder().encode(text)))) {
      assert.ok(dst.blobBytes('dst', digest), `${digest} stored`);
    }
    // Side by side, without failures: every blob once.
    const clean = new MemoryRegistry({ host: 'clean.test', beforeRequest: () => delay(2) });
    const together = sharedCopyState();
    const both = await Promise.all([copy(src.source('src', 'v1'), clean.sink('dst', 'v1'), { shared: together }), copy(src.source('src', 'v2'), clean.sink('dst', 'v2'), { shared: together })]);
    const puts = clean.requests.filter((r) => r.kind === 'blob' && r.method === 'PUT').map((r) => r.target);
    assert.equal(new Set(puts).size, puts.length, 'a blob was uploaded twice');
    assert.equal(both[0].stats.blobsCopied + both[1].stats.blobsCopied, puts.length);
    // 4 configs, base, 3 app layers, provenance: v2's blobs are all v1's too.
    assert.equal(puts.length, 9);
  });

  it('selects one platform from an index: the child as-is, its digest the result', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const { index, armv7 } = multiPlatform(src);
    const result = await copy(src.source('src', 'v1'), dst.sink('dst', 'arm'), { platforms: [parsePlatform('linux/arm/v7')] });
    assert.equal(result.digest, armv7.digest);
    assert.equal(result.sourceDigest, index.digest);
    assert.equal(result.mediaType, MediaType.OciManifest);
    assert.deepEqual(result.platforms, [{ platform: 'linux/arm/v7', digest: armv7.digest }]);
    assert.equal(dst.tagged('dst', 'arm'), armv7.digest);
    assert.equal(result.stats.blobsCopied, 3);
    assert.equal(result.stats.manifestsPut, 1);
    assert.equal(dst.hasManifest('dst', index.digest), false);
  });

  it('copies a subset as a new index keeping the other fields, the kept descriptors and their attestations', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const { index, amd64, arm64, attestation } = multiPlatform(src);
    const result = await copy(src.source('src', 'v1'), dst.sink('dst', 'two'), { platforms: parsePlatforms('linux/arm64,linux/amd64') });
    assert.notEqual(result.digest, index.digest);
    assert.equal(result.mediaType, MediaType.OciIndex);
    const stored = JSON.parse(Buffer.from(src.lookup('src', 'v1')!.bytes).toString()) as { manifests: Descriptor[] };
    const written = JSON.parse(Buffer.from(dst.lookup('dst', 'two')!.bytes).toString()) as Record<string, unknown> & { manifests: Descriptor[] };
    assert.equal(digestOf(dst.lookup('dst', 'two')!.bytes), result.digest);
    assert.deepEqual(written.annotations, { 'org.example': 'kept' });
    assert.equal(written.mediaType, MediaType.OciIndex);
    assert.deepEqual(written.manifests, [stored.manifests[0], stored.manifests[1], stored.manifests[3]]);
    assert.deepEqual(written.manifests.map((d) => d.digest), [amd64.digest, arm64.digest, attestation.digest]);
    assert.deepEqual(result.platforms.map((p) => p.platform), ['linux/amd64', 'linux/arm64']);
  });

  it('keeps the original index when the subset names every platform', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const { index } = multiPlatform(src);
    const result = await copy(src.source('src', 'v1'), dst.sink('dst', 'all'), { platforms: parsePlatforms('linux/amd64,linux/arm64,linux/arm') });
    assert.equal(result.digest, index.digest);
  });

  it('refuses a platform the index lacks, listing what it has', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    multiPlatform(src);
    for (const wanted of [[parsePlatform('linux/s390x')], parsePlatforms('linux/amd64,linux/riscv64')]) {
      await assert.rejects(copy(src.source('src', 'v1'), dst.sink('dst', 'x'), { platforms: wanted }), (err: unknown) => {
        assert.ok(err instanceof PlatformMismatchError);
        assert.equal(err.code, 'SLIPWAY_PLATFORM_MISMATCH');
        assert.match(err.message, /available: linux\/amd64, linux\/arm64, linux\/arm\/v7$/);
        assert.deepEqual(err.available, ['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
        return true;
      });
    }
    assert.equal(destinationRequests(dst).length, 0);
  });

  it('reads the platform of an index entry that states none from its config, not linux/amd64 by default', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const { platform: _arm64Platform, ...arm64 } = addImage(src, 'src', 'linux/arm64', ['arm64 app']);
    const amd64 = addImage(src, 'src', 'linux/amd64', ['amd64 app']);
    addIndex(src, 'src', [arm64, amd64], 'bare');
    src.requests.length = 0;
    const one = await copy(src.source('src', 'bare'), dst.sink('dst', 'arm'), { platforms: [parsePlatform('linux/arm64')] });
    assert.equal(one.digest, arm64.digest, 'the arm64 image, found through its config');
    assert.equal(src.requests.filter((r) => r.kind === 'manifest' && r.method === 'GET' && r.target === arm64.digest).length, 1, 'read once: to learn its platform');
    const amd = await copy(src.source('src', 'bare'), dst.sink('dst', 'amd'), { platforms: [parsePlatform('linux/amd64')] });
    assert.equal(amd.digest, amd64.digest, 'not the first entry, which is arm64');
    const all = await copy(src.source('src', 'bare'), dst.sink('dst', 'all'));
    assert.deepEqual(all.platforms.map((p) => p.platform), ['linux/arm64', 'linux/amd64']);
  });

  it('selects a platform inside an index that is an entry of the index', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const arm64 = addImage(src, 'src', 'linux/arm64', ['arm64 app']);
    const inner = addIndex(src, 'src', [arm64]);
    const amd64 = addImage(src, 'src', 'linux/amd64', ['amd64 app']);
    const outer = addIndex(src, 'src', [amd64, inner], 'nested');
    const one = await copy(src.source('src', 'nested'), dst.sink('dst', 'arm'), { platforms: [parsePlatform('linux/arm64')] });
    assert.equal(one.digest, arm64.digest, 'an image manifest, not the inner index');
    const subset = await copy(src.source('src', 'nested'), dst.sink('dst', 'sub'), { platforms: parsePlatforms('linux/arm64,linux/amd64') });
    assert.equal(subset.digest, outer.digest, 'both entries kept: the index as it was');
    assert.deepEqual(subset.platforms.map((p) => `${p.platform} ${p.digest}`), [`linux/amd64 ${amd64.digest}`, `linux/arm64 ${arm64.digest}`]);
  });

  it('a subset that takes some images of a nested index lists them directly, with their attestations, and nothing else of it', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const amd64 = addImage(src, 'src', 'linux/amd64', ['amd64 app']);
    const arm64 = addImage(src, 'src', 'linux/arm64', ['arm64 app']);
    const provenance = addImage(src, 'src', 'unknown/unknown', ['provenance of arm64']);
    const attestation: Descriptor = {
      ...provenance,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': arm64.digest },
    };
    const inner = addIndex(src, 'src', [amd64, arm64, attestation]);
    const s390x = addImage(src, 'src', 'linux/s390x', ['s390x app']);
    const ppc = addImage(src, 'src', 'linux/ppc64le', ['ppc app']);
    addIndex(src, 'src', [inner, s390x, ppc], 'nested', { annotations: { 'org.example': 'kept' } });

    const subset = await copy(src.source('src', 'nested'), dst.sink('dst', 'sub'), { platforms: parsePlatforms('linux/s390x,linux/arm64') });
    const written = JSON.parse(Buffer.from((await dst.source('dst', 'sub').root()).bytes).toString()) as { manifests: Descriptor[]; annotations: Record<string, string> };
    assert.deepEqual(
      written.manifests.map((d) => d.digest),
      [arm64.digest, attestation.digest, s390x.digest],
      'arm64 and its attestation where the nested index was, then s390x: no amd64, no ppc64le, no nested index',
    );
    assert.deepEqual(written.manifests[1], attestation, 'descriptors as the nested index wrote them');
    assert.deepEqual(written.annotations, { 'org.example': 'kept' });
    assert.deepEqual(subset.platforms.map((p) => `${p.platform} ${p.digest}`).sort(), [`linux/arm64 ${arm64.digest}`, `linux/s390x ${s390x.digest}`]);
    for (const absent of [amd64, ppc, inner]) assert.equal(await dst.sink('dst').hasManifest(absent), false, `${absent.digest} was not copied`);
    for (const present of [arm64, provenance, s390x]) assert.equal(await dst.sink('dst').hasManifest(present), true);

    // An image the nested index lists without a platform is listed with the one its config names.
    const { platform: _stated, ...bare } = arm64;
    const innerBare = addIndex(src, 'src', [amd64, bare]);
    addIndex(src, 'src', [innerBare, s390x], 'nested-bare');
    await copy(src.source('src', 'nested-bare'), dst.sink('dst', 'sub-bare'), { platforms: parsePlatforms('linux/arm64,linux/s390x') });
    const writtenBare = JSON.parse(Buffer.from((await dst.source('dst', 'sub-bare').root()).bytes).toString()) as { manifests: Descriptor[] };
    assert.deepEqual(writtenBare.manifests[0], { ...bare, platform: { os: 'linux', architecture: 'arm64' } });

    // Every image of the nested index wanted: it is kept whole, as it was.
    const whole = await copy(src.source('src', 'nested'), dst.sink('dst', 'whole'), { platforms: parsePlatforms('linux/amd64,linux/arm64,linux/s390x') });
    const wholeIndex = JSON.parse(Buffer.from((await dst.source('dst', 'whole').root()).bytes).toString()) as { manifests: Descriptor[] };
    assert.deepEqual(wholeIndex.manifests.map((d) => d.digest), [inner.digest, s390x.digest]);
    assert.deepEqual(whole.platforms.map((p) => p.platform).sort(), ['linux/amd64', 'linux/arm64', 'linux/s390x']);
  });

  it('reads a nested index once however often it is listed, and bounds the entries looked at', async () => {
    const src = new MemoryRegistry();
    const arm64 = addImage(src, 'src', 'linux/arm64', ['arm64 app']);
    let level = addIndex(src, 'src', [arm64]);
    for (let depth = 0; depth < 3; depth++) level = addIndex(src, 'src', Array.from({ length: 12 }, () => level));
    addIndex(src, 'src', [level], 'fanned');
    src.requests.length = 0;
    const source = src.source('src', 'fanned');
    const root = await source.root();
    const { platforms } = await resolvePlatform(source, root, undefined);
    assert.deepEqual(platforms, [{ platform: 'linux/arm64', digest: arm64.digest }]);
    const reads = src.requests.filter((r) => r.kind === 'manifest' && r.method === 'GET').length;
    assert.ok(reads <= 6, `${reads} manifest reads`);
  });

  it('bounds what a full copy loads, entries marked as attestations included: width, then depth', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const amd64 = addImage(src, 'src', 'linux/amd64', ['app']);
    const marked = (d: Descriptor): Descriptor => ({ ...d, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd64.digest } });
    // 5000 distinct attestation images: before, the limit skipped them and the copy read every one.
    const wide = Array.from({ length: 5000 }, (_, i) => marked(addImage(src, 'src', 'unknown/unknown', [`att ${i}`])));
    addIndex(src, 'src', [amd64, ...wide], 'wide');
    src.requests.length = 0;
    const refused = (what: RegExp) => (err: unknown) => {
      assert.ok(SlipwayError.is(err));
      assert.equal(err.code, 'SLIPWAY_INVALID_MANIFEST');
      assert.match(err.message, what);
      return true;
    };
    await assert.rejects(copy(src.source('src', 'wide'), dst.sink('dst', 'wide')), refused(/more than 4096 entries/));
    assert.ok(src.requests.filter((r) => r.kind === 'manifest').length < 10, 'refused before reading the children');
    await assert.rejects(copy(src.source('src', 'wide'), dst.sink('dst', 'wide'), { platforms: parsePlatforms('linux/amd64,linux/arm64') }), refused(/more than 4096 entries/));
    // A chain of 3000 indexes, each the attestation of the next: before, the stack overflowed.
    let level = amd64;
    for (let depth = 0; depth < 3000; depth++) level = marked(addIndex(src, 'src', [level]));
    addIndex(src, 'src', [level], 'deep');
    await assert.rejects(copy(src.source('src', 'deep'), dst.sink('dst', 'deep')), refused(/indexes nested more than 4 deep/));
    assert.equal(dst.requests.filter((r) => r.method === 'PUT').length, 0, 'nothing written');
  });

  it('copies an image of many layers without a MaxListenersExceededWarning', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    addImage(src, 'src', 'linux/amd64', Array.from({ length: 40 }, (_, i) => `layer ${i}`), 'many');
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      for (const signal of [undefined, new AbortController().signal]) {
        await copy(src.source('src', 'many'), dst.sink('dst', 'many'), { jobs: 1, overwrite: true, ...(signal ? { signal } : {}) });
      }
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings.map((w) => w.name), []);
  });

  it('without overwrite, a tag taken by another writer while the blobs moved is not overwritten', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    addImage(src, 'src', 'linux/amd64', ['first app'], 'one');
    addImage(src, 'src', 'linux/amd64', ['second app'], 'two');
    // The first copy finds the tag free, then its blobs are held until the second copy has taken it.
    let taken!: () => void;
    const tagTaken = new Promise<void>((resolve) => (taken = resolve));
    const slow = dst.sink('dst', 'shared');
    const held: ImageSink = {
      ...slow,
      name: slow.name,
      current: slow.current.bind(slow),
      hasBlob: slow.hasBlob.bind(slow),
      hasManifest: slow.hasManifest.bind(slow),
      putManifest: slow.putManifest.bind(slow),
      putBlob: async (descriptor, open, options) => {
        await tagTaken;
        return slow.putBlob(descriptor, open, options);
      },
    };
    const first = copy(src.source('src', 'one'), held);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = await copy(src.source('src', 'two'), dst.sink('dst', 'shared'));
    taken();
    await assert.rejects(first, DestinationExistsError);
    assert.equal(dst.tagged('dst', 'shared'), second.digest, 'the tag still holds what the second copy wrote');
  });

  it('without overwrite, of two copies that found the tag free at the same moment, the one whose write landed first is refused', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    addImage(src, 'src', 'linux/amd64', ['first app'], 'one');
    addImage(src, 'src', 'linux/amd64', ['second app'], 'two');
    // Both tagged writes wait until both copies are about to write (both have checked the tag by
    // then); the first lands first, and its next question reaches the registry after the second's
    // write: two copies in step over the network.
    let arrived = 0;
    let release!: () => void;
    const bothReady = new Promise<void>((resolve) => (release = resolve));
    let secondWritten!: () => void;
    const afterSecond = new Promise<void>((resolve) => (secondWritten = resolve));
    const order: string[] = [];
    const gated = (label: string): ImageSink => {
      const inner = dst.sink('dst', 'shared');
      let wrote = false;
      return {
        name: inner.name,
        tag: 'shared',
        current: async (options) => {
          if (wrote && label === 'first') await afterSecond;
          return inner.current(options);
        },
        hasBlob: inner.hasBlob.bind(inner),
        putBlob: inner.putBlob.bind(inner),
        hasManifest: inner.hasManifest.bind(inner),
        putManifest: async (manifest, options) => {
          if (options?.tag === undefined) return inner.putManifest(manifest, options);
          if (++arrived === 2) release();
          await bothReady;
          if (label === 'second') await delay(5);
          await inner.putManifest(manifest, options);
          order.push(label);
          wrote = true;
          if (label === 'second') secondWritten();
        },
      };
    };
    const [first, second] = await Promise.allSettled([copy(src.source('src', 'one'), gated('first')), copy(src.source('src', 'two'), gated('second'))]);
    assert.deepEqual(order, ['first', 'second']);
    assert.equal(first.status, 'rejected');
    assert.ok(first.reason instanceof DestinationExistsError);
    assert.equal(second.status, 'fulfilled');
    assert.equal(dst.tagged('dst', 'shared'), (second as PromiseFulfilledResult<{ digest: Digest }>).value.digest);
  });

  it('refuses two platforms that select the same image (linux/arm and linux/arm/v7)', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    multiPlatform(src);
    await assert.rejects(copy(src.source('src', 'v1'), dst.sink('dst', 'x'), { platforms: parsePlatforms('linux/arm,linux/arm/v7') }), (err: unknown) => {
      assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_PLATFORM', String(err));
      assert.match(err.message, /linux\/arm and linux\/arm\/v7 both select/);
      return true;
    });
    assert.equal(destinationRequests(dst).length, 0);
  });

  it('checks a single image against its config instead of copying the wrong architecture', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const image = addImage(src, 'src', 'linux/arm64', ['only'], 'single');
    await assert.rejects(
      copy(src.source('src', 'single'), dst.sink('dst', 'x'), { platforms: [parsePlatform('linux/amd64')] }),
      (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_PLATFORM_MISMATCH' && /single linux\/arm64 image, not linux\/amd64/.test(err.message),
    );
    assert.equal(dst.tagged('dst', 'x'), undefined);
    const ok = await copy(src.source('src', 'single'), dst.sink('dst', 'x'), { platforms: [parsePlatform('linux/arm64/v8')] });
    assert.equal(ok.digest, image.digest);
    assert.deepEqual(ok.platforms, [{ platform: 'linux/arm64', digest: image.digest }]);
  });

  it('refuses an index entry of an unknown media type by name, and copies the platforms that leave it out', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const amd64 = addImage(src, 'src', 'linux/amd64', ['a']);
    const arm64 = addImage(src, 'src', 'linux/arm64', ['b']);
    const odd = { ...arm64, mediaType: 'application/vnd.example.unknown+json', platform: { os: 'linux', architecture: 's390x' } };
    const index = addIndex(src, 'src', [amd64, odd], 'odd');
    for (const platforms of [[], [parsePlatform('linux/s390x')]]) {
      await assert.rejects(copy(src.source('src', 'odd'), dst.sink('dst', 'x'), { platforms }), (err: unknown) => {
        assert.ok(SlipwayError.is(err));
        assert.equal(err.code, 'SLIPWAY_UNSUPPORTED_MEDIA_TYPE');
        assert.ok(err.message.includes(`index entry ${arm64.digest} has media type "application/vnd.example.unknown+json"`), err.message);
        return true;
      });
    }
    assert.equal(dst.tagged('dst', 'x'), undefined);
    const ok = await copy(src.source('src', 'odd'), dst.sink('dst', 'x'), { platforms: [parsePlatform('linux/amd64')] });
    assert.equal(ok.digest, amd64.digest);
    assert.equal(ok.sourceDigest, index.digest);
  });

  it('reads each source blob once, even the config it read to check the platform', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    addImage(src, 'src', 'linux/arm64', ['layer one', 'layer two'], 'single');
    for (const platforms of [[], [parsePlatform('linux/arm64')]]) {
      src.requests.length = 0;
      const result = await copy(src.source('src', 'single'), dst.sink(`dst${platforms.length}`, 'x'), { platforms });
      assert.equal(result.stats.blobsCopied, 3);
      const gets = src.requests.filter((r) => r.kind === 'blob' && r.method === 'GET').map((r) => r.target);
      assert.equal(gets.length, 3, `source blob GETs: ${gets.join(', ')}`);
      assert.equal(new Set(gets).size, 3, 'a blob was read twice');
    }
  });

  it('is a no-op costing one destination request when the digest is already there', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const { index } = multiPlatform(src);
    await copy(src.source('src', 'v1'), dst.sink('dst', 'latest'));
    const before = destinationRequests(dst).length;
    const events: CopyEvent[] = [];
    const again = await copy(src.source('src', 'v1'), dst.sink('dst', 'latest'), { onProgress: (e) => events.push(e) });
    assert.equal(again.noop, true);
    assert.equal(again.digest, index.digest);
    assert.deepEqual(again.stats, { blobsCopied: 0, blobsSkipped: 0, blobsMounted: 0, bytesCopied: 0, manifestsPut: 0 });
    assert.deepEqual(destinationRequests(dst).slice(before), [{ method: 'HEAD', kind: 'manifest', repository: 'dst', target: 'latest' }]);
    assert.deepEqual(events, []);
  });

  it('refuses to replace a different image unless overwrite is set', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const { index } = multiPlatform(src);
    const other = addImage(dst, 'dst', 'linux/amd64', ['someone else'], 'latest');
    await assert.rejects(copy(src.source('src', 'v1'), dst.sink('dst', 'latest')), (err: unknown) => {
      assert.ok(err instanceof DestinationExistsError);
      assert.equal(err.code, 'SLIPWAY_DESTINATION_EXISTS');
      assert.ok(err.message.includes(other.digest) && err.message.includes(index.digest), err.message);
      return true;
    });
    assert.equal(dst.tagged('dst', 'latest'), other.digest);
    const replaced = await copy(src.source('src', 'v1'), dst.sink('dst', 'latest'), { overwrite: true });
    assert.equal(replaced.digest, index.digest);
    assert.equal(dst.tagged('dst', 'latest'), index.digest);
  });

  it('mounts blobs from another repository of the same registry without reading them', async () => {
    const registry = new MemoryRegistry();
    multiPlatform(registry);
    const result = await copy(registry.source('src', 'v1'), registry.sink('dst', 'latest'));
    assert.equal(result.stats.blobsMounted, 9);
    assert.equal(result.stats.blobsCopied, 0);
    assert.equal(result.stats.bytesCopied, 0);
    assert.equal(registry.requests.filter((r) => r.kind === 'blob' && r.method === 'GET').length, 0);
  });

  it('skips blobs and whole children the destination already has', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const { index, amd64 } = multiPlatform(src);
    await copy(src.source('src', 'v1'), dst.sink('dst', 'amd64'), { platforms: [parsePlatform('linux/amd64')] });
    src.requests.length = 0;
    const result = await copy(src.source('src', 'v1'), dst.sink('dst', 'latest'));
    assert.equal(result.digest, index.digest);
    // amd64's subtree is present: neither its manifest nor its blobs are read; "base" is skipped by HEAD.
    assert.equal(src.requests.some((r) => r.target === amd64.digest), false);
    assert.equal(result.stats.blobsSkipped, 1);
    assert.equal(result.stats.manifestsPut, 4);
  });

  it('bounds concurrency by jobs', async () => {
    let active = 0;
    let peak = 0;
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({
      host: 'other.test',
      beforeRequest: async () => {
        active += 1;
        peak = Math.max(peak, active);
        await delay(5);
        active -= 1;
      },
    });
    multiPlatform(src);
    await copy(src.source('src', 'v1'), dst.sink('dst', 'latest'), { jobs: 2 });
    assert.equal(peak, 2);
  });

  it('aborts everything on the first error and never writes the tag', async () => {
    const src = new MemoryRegistry();
    const { amd64 } = multiPlatform(src);
    const amd64Layer = (JSON.parse(Buffer.from(src.lookup('src', amd64.digest)!.bytes).toString()) as { layers: Descriptor[] }).layers[1]!;
    const boom = new Error('upload refused');
    let afterFailure = 0;
    let failed = false;
    const dst = new MemoryRegistry({
      host: 'other.test',
      beforeRequest: async (request) => {
        if (failed) afterFailure += 1;
        if (request.method === 'PUT' && request.target === amd64Layer.digest) {
          failed = true;
          throw boom;
        }
        await delay(2);
      },
    });
    await assert.rejects(copy(src.source('src', 'v1'), dst.sink('dst', 'latest'), { jobs: 1 }), (err: unknown) => err === boom);
    assert.equal(dst.tagged('dst', 'latest'), undefined);
    assert.equal(afterFailure, 0, 'requests were started after the first error');
  });

  it('stops when the caller aborts, with SLIPWAY_ABORTED', async () => {
    const src = new MemoryRegistry();
    multiPlatform(src);
    const controller = new AbortController();
    const dst = new MemoryRegistry({
      host: 'other.test',
      beforeRequest: async (request, signal) => {
        if (request.kind === 'blob' && request.method === 'PUT') controller.abort(new Error('user pressed ^C'));
        await delay(1, undefined, { signal });
      },
    });
    await assert.rejects(
      copy(src.source('src', 'v1'), dst.sink('dst', 'latest'), { signal: controller.signal }),
      (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_ABORTED',
    );
    assert.equal(dst.tagged('dst', 'latest'), undefined);
  });

  it('reports progress with final totals equal to what moved', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    multiPlatform(src);
    const events: CopyEvent[] = [];
    const result = await copy(src.source('src', 'v1'), dst.sink('dst', 'latest'), { onProgress: (e) => events.push(e) });
    assert.equal(events[0]?.type, 'plan');
    const plan = events[0];
    assert.equal(plan.type === 'plan' && plan.manifests, 5);
    assert.equal(plan.totals.blobsTotal, 9);
    const last = events.at(-1)!;
    assert.deepEqual(last.type === 'manifest-done' && last.tag, 'latest');
    assert.equal(last.totals.bytesDone, last.totals.bytesTotal);
    assert.equal(last.totals.bytesTotal, result.stats.bytesCopied);
    assert.equal(events.filter((e) => e.type === 'blob-done').length, 9);
    assert.ok(events.some((e) => e.type === 'blob-progress'));
    for (const e of events) assert.ok(e.totals.bytesDone <= e.totals.bytesTotal);
  });

  it('copies a nested index (index of indexes) bottom-up', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const { index } = multiPlatform(src);
    const outer = addIndex(src, 'src', [index], 'outer');
    const result = await copy(src.source('src', 'outer'), dst.sink('dst', 'outer'));
    assert.equal(result.digest, outer.digest);
    assert.equal(result.stats.manifestsPut, 6);
    assert.ok(dst.hasManifest('dst', index.digest));
  });

  it('rejects a bad jobs value', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry();
    await assert.rejects(copy(src.source('a', 'b'), dst.sink('c', 'd'), { jobs: 0 }), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_ARG');
  });

  it('matches arm variants: linux/arm/v7 exactly, linux/arm as Docker does (v7, else v6, else v5), whatever the order', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    // busybox's and debian's indexes list arm/v5 and arm/v6 before arm/v7.
    const v5 = addImage(src, 'src', 'linux/arm/v5', ['v5']);
    const v6 = addImage(src, 'src', 'linux/arm/v6', ['v6']);
    const v7 = addImage(src, 'src', 'linux/arm/v7', ['v7']);
    addIndex(src, 'src', [v5, v6, v7], 'arm');
    addIndex(src, 'src', [v5, v6], 'old-arm');
    const pick = async (tag: string, p: string) => (await copy(src.source('src', tag), dst.sink('dst', 'arm'), { platforms: [parsePlatform(p)], overwrite: true })).digest;
    assert.equal(await pick('arm', 'linux/arm/v7'), v7.digest);
    assert.equal(await pick('arm', 'linux/arm/v6'), v6.digest);
    assert.equal(await pick('arm', 'linux/arm'), v7.digest);
    assert.equal(await pick('arm', 'linux/arm/7'), v7.digest, "containerd's spelling of v7");
    assert.equal(await pick('old-arm', 'linux/arm'), v6.digest);
    // Two spellings of one choice are refused now that they always select the same image.
    await assert.rejects(copy(src.source('src', 'arm'), dst.sink('dst', 'two'), { platforms: parsePlatforms('linux/arm,linux/arm/v7') }), { code: 'SLIPWAY_INVALID_PLATFORM' });
  });

  it('takes an entry whose variant is an empty string as having none (arm: v7)', async () => {
    const src = new MemoryRegistry();
    const dst = new MemoryRegistry({ host: 'other.test' });
    const v7 = addImage(src, 'src', 'linux/arm/v7', ['v7']);
    addIndex(src, 'src', [{ ...v7, platform: { os: 'linux', architecture: 'arm', variant: '' } }], 'empty');
    assert.equal((await copy(src.source('src', 'empty'), dst.sink('dst', 'e'), { platforms: [parsePlatform('linux/arm/v7')] })).digest, v7.digest);
  });
});

describe('copy into a sink that holds one image, knows images by config, or commits at the end', () => {
  /** `dst`'s sink with the optional contract fields set, recording commit calls. */
  const special = (registry: MemoryRegistry, fields: Partial<Pick<ImageSink, 'singleImage' | 'identity'>>, current?: () => Promise<Descriptor | undefined>) => {
    const inner = registry.sink('dst', 'latest');
    const commits: string[] = [];
    const sink: ImageSink = {
      name: 'special',
      ...fields,
      current: current ?? ((o) => inner.current(o)),
      hasBlob: (d, o) => inner.hasBlob(d, o),
      putBlob: (d, open, o) => inner.putBlob(d, open, o),
      hasManifest: (d, o) => inner.hasManifest(d, o),
      putManifest: (m, o) => inner.putManifest(m, o),
      commit: async (root) => {
        commits.push(root.digest);
      },
    };
    return { sink, commits };
  };

  it('an index without a platform selected goes to a sink that names its own platform as that platform\'s image (docker pull\'s choice)', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const dst = new MemoryRegistry({ host: 'dst.test' });
    const { arm64 } = multiPlatform(src);
    const { sink, commits } = special(dst, { singleImage: true });
    const result = await copy(src.source('src', 'v1'), { ...sink, platform: () => Promise.resolve(parsePlatform('linux/arm64')) });
    assert.equal(result.digest, arm64.digest);
    assert.equal(result.sinkPlatform, 'linux/arm64');
    assert.deepEqual(commits, [arm64.digest]);
    // Chosen only when nothing was selected: a selection is the caller's.
    const chosen = await copy(src.source('src', 'v1'), { ...special(new MemoryRegistry(), { singleImage: true }).sink, platform: () => Promise.resolve(parsePlatform('linux/arm64')) }, { platforms: parsePlatforms(['linux/amd64']) });
    assert.equal(chosen.sinkPlatform, undefined);

    const other = new MemoryRegistry({ host: 'other.test' });
    const refused = special(other, { singleImage: true });
    await assert.rejects(copy(src.source('src', 'v1'), { ...refused.sink, platform: () => Promise.resolve(parsePlatform('linux/s390x')) }), (err: unknown) => {
      assert.ok(err instanceof PlatformMismatchError, String(err));
      assert.match(err.message, /^special runs linux\/s390x, and .*no image for platform linux\/s390x; available: linux\/amd64, linux\/arm64, linux\/arm\/v7; select one platform/);
      return true;
    });
    assert.deepEqual(destinationRequests(other), [], 'nothing moved');
  });

  it('an index without one platform selected is refused before anything moves, naming the platforms', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const dst = new MemoryRegistry({ host: 'dst.test' });
    multiPlatform(src);
    const { sink, commits } = special(dst, { singleImage: true });
    await assert.rejects(copy(src.source('src', 'v1'), sink), (err: unknown) => {
      assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_ARG');
      assert.match(err.message, /special holds one image, and .* is an index \(linux\/amd64, linux\/arm64, linux\/arm\/v7.*\): select one platform/);
      return true;
    });
    assert.deepEqual(destinationRequests(dst), []);
    assert.deepEqual(commits, []);
    // Two platforms asked for: said so, not as if none was given.
    await assert.rejects(copy(src.source('src', 'v1'), sink, { platforms: parsePlatforms(['linux/amd64', 'linux/arm64']) }), /special holds one image, and 2 platforms were selected \(linux\/amd64, linux\/arm64\): select one platform/);
    assert.deepEqual(commits, []);
    const one = await copy(src.source('src', 'v1'), sink, { platforms: parsePlatforms(['linux/arm64']) });
    assert.deepEqual(commits, [one.digest], 'committed once, with the root, after it was stored');
    assert.equal(dst.hasManifest('dst', one.digest), true);
  });

  it('an index of one image and its attestation is that image for a single-image sink, as skopeo takes it', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const dst = new MemoryRegistry({ host: 'dst.test' });
    const amd64 = addImage(src, 'src', 'linux/amd64', ['app']);
    const provenance = addImage(src, 'src', 'unknown/unknown', ['provenance']);
    const attestation: Descriptor = { ...provenance, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd64.digest } };
    addIndex(src, 'src', [amd64, attestation], 'buildx');
    const { sink, commits } = special(dst, { singleImage: true });
    const result = await copy(src.source('src', 'buildx'), sink);
    assert.equal(result.digest, amd64.digest);
    assert.deepEqual(commits, [amd64.digest]);
  });

  it('foreign, zstd, encrypted and non-tar layers are refused by a single-image sink before anything moves', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const config = src.addBlob('src', encode({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }), MediaType.OciConfig);
    const foreign = { mediaType: MediaType.DockerForeignLayerGzip, digest: `sha256:${'f'.repeat(64)}` as Digest, size: 10, urls: ['https://example.invalid/layer'] };
    src.addManifest('src', encode({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [foreign] }), MediaType.OciManifest, 'foreign');
    const zstd = src.addBlob('src', new TextEncoder().encode('zstd bytes'), 'application/vnd.oci.image.layer.v1.tar+zstd');
    src.addManifest('src', encode({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [zstd] }), MediaType.OciManifest, 'zstd');
    const dst = new MemoryRegistry({ host: 'dst.test' });
    const { sink } = special(dst, { singleImage: true });
    await assert.rejects(copy(src.source('src', 'foreign'), sink), /needs every layer's bytes, and .* has a foreign layer sha256:f+ \(at https:\/\/example\.invalid\/layer\)/);
    await assert.rejects(copy(src.source('src', 'zstd'), sink), /has zstd layers \(application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd\), which docker load before Docker 23 cannot read/);
    // Not a tar at all: an encrypted layer, an attestation's in-toto statement.
    const encrypted = src.addBlob('src', new TextEncoder().encode('sealed'), 'application/vnd.oci.image.layer.v1.tar+gzip+encrypted');
    src.addManifest('src', encode({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [encrypted] }), MediaType.OciManifest, 'encrypted');
    await assert.rejects(copy(src.source('src', 'encrypted'), sink), /layer sha256:[0-9a-f]{64} of .* is application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip\+encrypted, not a tar \(plain or gzip\): it is encrypted/);
    const statement = src.addBlob('src', encode({ _type: 'https://in-toto.io/Statement/v0.1' }), 'application/vnd.in-toto+json');
    src.addManifest('src', encode({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [statement] }), MediaType.OciManifest, 'attestation');
    await assert.rejects(copy(src.source('src', 'attestation'), sink), /is application\/vnd\.in-toto\+json, not a tar \(plain or gzip\); copy it to an oci-archive: or a registry instead/);
    assert.deepEqual(destinationRequests(dst), []);
  });

  it('leaves foreign layers to their URLs unless asked to include them, then copies them from the source', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const config = src.addBlob('src', encode({ architecture: 'amd64', os: 'windows', rootfs: { type: 'layers', diff_ids: [] } }), MediaType.DockerConfig);
    const base = src.addBlob('src', new TextEncoder().encode('windows base layer'), MediaType.DockerForeignLayerGzip);
    const foreign = { ...base, urls: ['https://example.invalid/base'] };
    const own = src.addBlob('src', new TextEncoder().encode('app layer'), MediaType.DockerLayerGzip);
    src.addManifest('src', encode({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config, layers: [foreign, own] }), MediaType.DockerManifest, 'held');
    // The same image from a source that leaves the base to its URL, as a registry mirroring it would.
    src.addManifest('bare', encode({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: src.addBlob('bare', encode({ architecture: 'amd64', os: 'windows', rootfs: { type: 'layers', diff_ids: [] } }), MediaType.DockerConfig), layers: [foreign] }), MediaType.DockerManifest, 'bare');

    const dst = new MemoryRegistry({ host: 'dst.test' });
    await copy(src.source('src', 'held'), dst.sink('plain', 'held'));
    assert.deepEqual([dst.hasBlob('plain', foreign.digest), dst.hasBlob('plain', own.digest)], [false, true], 'by default the foreign layer stays at its URL');
    const included = await copy(src.source('src', 'held'), dst.sink('airgap', 'held'), { includeNondistributable: true });
    assert.deepEqual([dst.hasBlob('airgap', foreign.digest), dst.hasBlob('airgap', own.digest)], [true, true]);
    assert.equal(included.stats.blobsCopied, 3, 'config, foreign base and app layer');
    await assert.rejects(copy(src.source('bare', 'bare'), dst.sink('airgap-bare', 'bare'), { includeNondistributable: true }), (err: unknown) => {
      assert.ok(err instanceof SlipwayError);
      assert.equal(err.code, 'SLIPWAY_NOT_FOUND');
      assert.match(err.message, /does not hold foreign layer sha256:[0-9a-f]{64}, which it leaves to https:\/\/example\.invalid\/base: slipway copies a foreign layer only from the source/);
      return true;
    });
    // A single-image sink takes it too when included (docker load needs its bytes).
    const { sink } = special(new MemoryRegistry({ host: 'docker.test' }), { singleImage: true });
    await assert.rejects(copy(src.source('src', 'held'), sink), /include it \(slipway: --include-nondistributable\) or copy to an oci-archive: or a registry instead/);
    const { sink: including } = special(new MemoryRegistry({ host: 'docker2.test' }), { singleImage: true });
    assert.equal((await copy(src.source('src', 'held'), including, { includeNondistributable: true })).stats.blobsCopied, 3);
  });

  it('an artifact is refused by a single-image sink', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const config = src.addBlob('src', encode({}), 'application/vnd.example.thing.v1+json');
    src.addManifest('src', encode({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [] }), MediaType.OciManifest, 'v1');
    const { sink } = special(new MemoryRegistry({ host: 'dst.test' }), { singleImage: true });
    await assert.rejects(copy(src.source('src', 'v1'), sink), /is an artifact \(config application\/vnd\.example\.thing\.v1\+json\), not an image/);
  });

  it('identity "config": the config digest at the destination is the same image (no-op, no commit); another is refused as an image ID', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const { arm64, amd64 } = multiPlatform(src);
    const configOf = (d: Descriptor) => (JSON.parse(Buffer.from(src.lookup('src', d.digest)!.bytes).toString('utf8')) as { config: Descriptor }).config;
    const held = configOf(arm64);
    const { sink, commits } = special(new MemoryRegistry({ host: 'dst.test' }), { singleImage: true, identity: 'config' }, async () => held);
    const same = await copy(src.source('src', 'v1'), sink, { platforms: parsePlatforms(['linux/arm64']) });
    assert.equal(same.noop, true);
    assert.deepEqual(commits, []);
    await assert.rejects(copy(src.source('src', 'v1'), sink, { platforms: parsePlatforms(['linux/amd64']) }), (err: unknown) => {
      assert.ok(err instanceof DestinationExistsError);
      assert.equal(err.message, `special already holds image ID ${held.digest}, not the source's image ID ${configOf(amd64).digest}; pass overwrite (slipway: --overwrite) to replace it`);
      return true;
    });
  });

  it('a failed copy never commits', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const { arm64 } = multiPlatform(src);
    const { sink, commits } = special(new MemoryRegistry({ host: 'dst.test' }), {});
    const failing: ImageSink = { ...sink, putBlob: () => Promise.reject(new Error('disk full')) };
    await assert.rejects(copy(src.source('src', arm64.digest), failing), /disk full/);
    assert.deepEqual(commits, []);
  });
});

describe('the platforms a copy reports', () => {
  it('a child listed twice is one platform; a platform without os or architecture is none', async () => {
    const src = new MemoryRegistry({ host: 'src.test' });
    const dst = new MemoryRegistry({ host: 'dst.test' });
    const amd64 = addImage(src, 'src', 'linux/amd64', ['app']);
    addIndex(src, 'src', [amd64, amd64], 'twice');
    assert.deepEqual((await copy(src.source('src', 'twice'), dst.sink('dst', 'twice'))).platforms, [{ platform: 'linux/amd64', digest: amd64.digest }]);
    addIndex(src, 'src', [{ ...amd64, platform: {} as never }, { ...amd64, platform: { architecture: 'amd64' } as never }], 'partial');
    assert.deepEqual((await copy(src.source('src', 'partial'), dst.sink('dst', 'partial'))).platforms, []);
    await assert.rejects(copy(src.source('src', 'partial'), dst.sink('dst', 'p2'), { platforms: parsePlatforms(['linux/amd64']) }), /no image for platform linux\/amd64; available: none$/);
  });
});
