import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { SlipwayError } from '../errors.js';
import { makeTar, type TestEntry } from '../internal/tar-fixtures.js';
import { imageSourceConformance } from '../testing/conformance.js';
import { errorOf } from '../testing/rejection.js';
import { sha256 } from '../v1/digest.js';
import type { Descriptor } from '../v1/manifest.js';
import { MediaType } from '../v1/media-types.js';
import { cacheUsage, pruneCache } from './compress.js';
import { archiveDigest } from './fingerprint.js';
import { list, open, openAny, type TarballOptions } from './source.js';

interface FakeImage {
  tags: string[];
  layers: Buffer[];
  /** Overrides the config's diff_ids (to test a layer that does not match). */
  diffIDs?: string[];
  /** LayerSources for manifest.json. */
  layerSources?: Record<string, unknown>;
}

const hex = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** A small but real layer: a tar holding one file. */
async function layerTar(name: string, body: string): Promise<Buffer> {
  return makeTar([{ name, body }]);
}

/** The entries of a pre-Docker-25 `docker save` archive for these images. */
function dockerSaveEntries(images: FakeImage[]): { entries: TestEntry[]; configs: Buffer[] } {
  const entries: TestEntry[] = [];
  const seen = new Set<string>();
  const manifest: unknown[] = [];
  const configs: Buffer[] = [];
  for (const image of images) {
    const diffIDs = image.diffIDs ?? image.layers.map((l) => `sha256:${hex(l)}`);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIDs }, history: [{ created_by: image.tags.join(',') }] }));
    configs.push(config);
    const layerPaths = image.layers.map((l) => {
      const dir = hex(l);
      if (!seen.has(dir)) {
        seen.add(dir);
        entries.push({ name: `${dir}/`, type: 'directory' }, { name: `${dir}/VERSION`, body: '1.0' }, { name: `${dir}/layer.tar`, body: l });
      }
      return `${dir}/layer.tar`;
    });
    entries.push({ name: `${hex(config)}.json`, body: config });
    manifest.push({ Config: `${hex(config)}.json`, RepoTags: image.tags, Layers: layerPaths, ...(image.layerSources ? { LayerSources: image.layerSources } : {}) });
  }
  entries.push({ name: 'manifest.json', body: JSON.stringify(manifest) });
  return { entries, configs };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

let dir: string;
let layerA: Buffer;
let layerB: Buffer;
let layerC: Buffer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-tarball-test-'));
  layerA = await layerTar('bin/a', 'a'.repeat(50_000));
  layerB = await layerTar('etc/b', 'bee');
  layerC = await layerTar('etc/c', 'sea');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function archive(name: string, entries: TestEntry[], gzip = false): Promise<string> {
  const path = join(dir, name);
  const tar = await makeTar(entries);
  await writeFile(path, gzip ? gzipSync(tar) : tar);
  return path;
}

function options(extra: TarballOptions = {}): TarballOptions {
  return { cacheDir: join(dir, 'cache'), tempDir: dir, ...extra };
}

imageSourceConformance('docker save archive (synthesised manifest)', async () => {
  const { entries, configs } = dockerSaveEntries([{ tags: ['app:1'], layers: [layerA, layerB] }]);
  const path = await archive('conf.tar', entries);
  return { source: await open(path, options()), expected: { rootMediaType: MediaType.DockerManifest, contains: [sha256(configs[0]!)] } };
});

imageSourceConformance('gzipped docker save archive', async () => {
  const { entries, configs } = dockerSaveEntries([{ tags: ['app:1'], layers: [layerA, layerB] }]);
  const path = await archive('conf.tar.gz', entries, true);
  return { source: await open(path, options({ cacheDir: false })), expected: { contains: [sha256(configs[0]!)] } };
});

describe('tarball.open', () => {
  it('synthesises a Docker v2 manifest whose layers decompress to the diff IDs', async () => {
    const { entries, configs } = dockerSaveEntries([{ tags: ['app:1'], layers: [layerA, layerB] }]);
    const source = await open(await archive('synth.tar', entries), options({ cacheDir: false }));
    try {
      const root = await source.root();
      const manifest = JSON.parse(Buffer.from(root.bytes).toString());
      assert.equal(manifest.mediaType, MediaType.DockerManifest);
      assert.equal(manifest.config.digest, sha256(configs[0]!));
      assert.equal(manifest.config.mediaType, MediaType.DockerConfig);
      assert.equal(manifest.layers.length, 2);
      const { gunzipSync } = await import('node:zlib');
      for (const [i, layer] of manifest.layers.entries()) {
        assert.equal(layer.mediaType, MediaType.DockerLayerGzip);
        const gz = await readAll(await source.blob(layer));
        assert.deepEqual(gunzipSync(gz), [layerA, layerB][i]);
      }
      assert.deepEqual(source.stats, { compressed: 2, cached: 0, passedThrough: 0 });
      assert.equal(source.format, 'docker-save');
      assert.deepEqual(source.tags, ['app:1']);
    } finally {
      await source.close();
    }
  });

  it('gives the same digest for the plain and the gzipped archive, and on every run', async () => {
    const { entries } = dockerSaveEntries([{ tags: ['app:1'], layers: [layerA] }]);
    const digests = new Set<string>();
    for (const [name, gz] of [['same.tar', false], ['same.tar.gz', true], ['same2.tar', false]] as const) {
      const source = await open(await archive(name, entries, gz), options({ cacheDir: false }));
      digests.add((await source.root()).descriptor.digest);
      await source.close();
    }
    assert.equal(digests.size, 1);
  });

  it('reads an archive repacked with tar --sparse (old GNU and pax) as the same image', async (t) => {
    if (!spawnSync('tar', ['--version'], { encoding: 'utf8' }).stdout?.startsWith('tar (GNU tar)')) return t.skip('GNU tar is not installed (apt-get install tar): it writes the sparse archives');
    // A layer with long runs of zeros, which `cp --sparse=always` turns into holes for tar to find.
    const holey = await makeTar([{ name: 'var/lib/db', body: Buffer.concat([randomBytes(5000), Buffer.alloc(300_000), randomBytes(3000), Buffer.alloc(70_000)]) }]);
    const { entries } = dockerSaveEntries([{ tags: ['app:sparse'], layers: [holey, layerB] }]);
    const plain = await archive('sparse-plain.tar', entries);
    const tree = join(dir, 'sparse-tree');
    await rm(tree, { recursive: true, force: true });
    await mkdir(tree);
    assert.equal(spawnSync('tar', ['-C', tree, '-xf', plain]).status, 0);
    const layerPath = join(tree, hex(holey), 'layer.tar');
    assert.equal(spawnSync('cp', ['--sparse=always', layerPath, `${layerPath}.holes`]).status, 0);
    assert.equal(spawnSync('mv', [`${layerPath}.holes`, layerPath]).status, 0);
    if ((await stat(layerPath)).blocks * 512 >= holey.length / 2) return t.skip(`the filesystem under ${tmpdir()} keeps no holes, so tar --sparse stores no map`);
    const plainSource = await open(plain, options({ cacheDir: false }));
    const want = (await plainSource.root()).descriptor.digest;
    await plainSource.close();
    for (const format of [['--format=gnu'], ['--format=posix'], ['--format=posix', '--sparse-version=0.1']]) {
      const repacked = join(dir, `sparse-${format.join('')}.tar`);
      const made = spawnSync('tar', ['-C', tree, '--sparse', ...format, '-cf', repacked, '.'], { encoding: 'utf8' });
      assert.equal(made.status, 0, made.stderr);
      const source = await open(repacked, options({ cacheDir: false }));
      try {
        const root = await source.root();
        assert.equal(root.descriptor.digest, want, `${format.join(' ')}: the same image`);
        // Every layer was checked against its diff ID while compressing, holes read back as zeros.
        const { gunzipSync } = await import('node:zlib');
        const manifest = JSON.parse(Buffer.from(root.bytes).toString()) as { layers: Descriptor[] };
        assert.equal(hex(gunzipSync(await readAll(await source.blob(manifest.layers[0]!)))), hex(holey));
      } finally {
        await source.close();
      }
    }
  });

  it('selects images of a multi-image archive by tag, normalised tag, position or image ID', async () => {
    const { entries, configs } = dockerSaveEntries([
      { tags: ['app:1', 'app:latest'], layers: [layerA] },
      { tags: ['registry.example:5000/team/app:2'], layers: [layerA, layerC] },
      { tags: [], layers: [layerB] },
    ]);
    const path = await archive('multi.tar', entries);
    const err = await errorOf(open(path, options()));
    assert.equal(err.code, 'SLIPWAY_INVALID_ARG');
    assert.match(err.message, /holds 3 images; choose one with the image option/);
    assert.match(err.message, /"app:1" = "app:latest", "registry.example:5000\/team\/app:2", @2 \(untagged/);
    const cases: [string | number, number][] = [['app:latest', 0], ['docker.io/library/app:1', 0], ['registry.example:5000/team/app:2', 1], [2, 2], [sha256(configs[1]!), 1]];
    for (const [selector, want] of cases) {
      const source = await open(path, options({ image: selector }));
      const manifest = JSON.parse(Buffer.from((await source.root()).bytes).toString());
      assert.equal(manifest.config.digest, sha256(configs[want]!), String(selector));
      await source.close();
    }
    assert.equal((await errorOf(open(path, options({ image: 'app:3' })))).code, 'SLIPWAY_NOT_FOUND');
    assert.equal((await errorOf(open(path, options({ image: 7 })))).code, 'SLIPWAY_INVALID_ARG');
    assert.deepEqual((await list(path)).map((i) => i.tags), [['app:1', 'app:latest'], ['registry.example:5000/team/app:2'], []]);
  });

  it('keeps the layer cache bounded: entries unused for long go, then the least recently used beyond a size, once a day on open', async () => {
    const cacheDir = join(dir, 'cache-bounded');
    const fill = async (name: string, layers: Buffer[]) => {
      const source = await open(await archive(name, dockerSaveEntries([{ tags: [`${name}:1`], layers }]).entries), options({ cacheDir }));
      await source.root();
      await source.close();
    };
    const layerC2 = await layerTar('etc/c2', 'x'.repeat(20_000));
    await fill('bounded-a.tar', [layerA]);
    await fill('bounded-b.tar', [layerB, layerC2]);
    const layersDir = join(cacheDir, 'layers');
    const records = async () => (await readdir(layersDir)).filter((n) => n.endsWith('.json')).sort();
    assert.equal((await records()).length, 3);
    assert.ok((await stat(join(cacheDir, '.pruned'))).isFile(), 'the daily prune ran on the first open that had a cache');
    const usage = await cacheUsage(cacheDir);
    assert.equal(usage.layers, 3);

    // Cancelled: stops before removing anything.
    await assert.rejects(pruneCache({ cacheDir, unusedForMs: -1, signal: AbortSignal.abort() }), { code: 'SLIPWAY_ABORTED' });
    assert.equal((await records()).length, 3);

    // Age: a record last used 40 days ago goes, with its layer; a temp file of another process, written a
    // minute ago, stays even when everything unused for 0 days is asked to go.
    const old = new Date(Date.now() - 40 * 24 * 3600 * 1000);
    const [oldest, ...rest] = await records();
    await utimes(join(layersDir, oldest!), old, old);
    await writeFile(join(layersDir, `${rest[0]!.replace(/\.json$/, '.gz')}.tmp-abc123`), 'in flight');
    assert.equal(await pruneCache({ cacheDir }), 1);
    assert.deepEqual(await records(), rest);
    assert.equal((await readdir(layersDir)).some((n) => n === oldest!.replace(/\.json$/, '.gz')), false, 'its layer went with it');

    // Size: the least recently used go first, until the rest fit.
    const [older, newer] = rest as [string, string];
    const hourAgo = new Date(Date.now() - 3600 * 1000);
    await utimes(join(layersDir, older), hourAgo, hourAgo);
    const newerBytes = (await stat(join(layersDir, newer))).size + (await stat(join(layersDir, newer.replace(/\.json$/, '.gz')))).size;
    assert.equal(await pruneCache({ cacheDir, maxBytes: newerBytes }), 1);
    assert.deepEqual(await records(), [newer]);
    assert.equal((await cacheUsage(cacheDir)).layerBytes, newerBytes);
    assert.equal(await pruneCache({ cacheDir, unusedForMs: -1 }), 1, 'unused for no time at all: everything');
    assert.ok((await readdir(layersDir)).some((n) => n.includes('.tmp-')), 'the young temp file is still there');
    // A temp file untouched for two hours was left by a process killed mid-write: any prune removes it
    // (before, only one older than the unused-for age, 30 days by default), and usage counts it meanwhile.
    const orphan = join(layersDir, `${'f'.repeat(64)}.gz.tmp-dead01`);
    await writeFile(orphan, Buffer.alloc(3000));
    const twoHoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
    await utimes(orphan, twoHoursAgo, twoHoursAgo);
    const withOrphan = await cacheUsage(cacheDir);
    assert.equal(withOrphan.incompleteFiles, 2);
    assert.equal(withOrphan.incompleteBytes, 3000 + 'in flight'.length);
    await pruneCache({ cacheDir });
    assert.equal((await readdir(layersDir)).includes(`${'f'.repeat(64)}.gz.tmp-dead01`), false, 'the orphaned temp file went');
    assert.equal((await cacheUsage(cacheDir)).incompleteFiles, 1, 'the young one stays');

    // The stamp holds the daily prune back for a day; an older stamp lets it run on the next open.
    const stale = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await fill('bounded-c.tar', [layerA]);
    const [again] = await records();
    await utimes(join(layersDir, again!), old, old);
    await fill('bounded-d.tar', [layerB]);
    assert.equal((await records()).length, 2, 'stamped today: not pruned');
    await utimes(join(cacheDir, '.pruned'), stale, stale);
    await fill('bounded-e.tar', [layerB]);
    assert.equal((await records()).length, 1, 'stamp two days old: the 40-day-old entry went');
  });

  it('a cache it cannot read is reported (SLIPWAY_IO), not taken for an empty one; the push itself still works without it', async () => {
    const cacheDir = join(dir, 'cache-unreadable');
    await mkdir(cacheDir, { recursive: true });
    // A file where the layers directory belongs: readdir fails (ENOTDIR) for root too, as EACCES would.
    await writeFile(join(cacheDir, 'layers'), 'not a directory');
    for (const call of [() => cacheUsage(cacheDir), () => pruneCache({ cacheDir })]) {
      await assert.rejects(call(), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_IO' && /reading the layer cache ".*layers" failed: ENOTDIR/.test(err.message));
    }
    const { entries } = dockerSaveEntries([{ tags: ['app:1'], layers: [layerA] }]);
    const source = await open(await archive('unreadable-cache.tar', entries), options({ cacheDir }));
    try {
      await source.root();
      assert.deepEqual(source.stats, { compressed: 1, cached: 0, passedThrough: 0 });
    } finally {
      await source.close();
    }
  });

  it('compresses once: a second open uses the cache; a missing cached file is recompressed and verified', async () => {
    const cacheDir = join(dir, 'cache-once');
    const { entries } = dockerSaveEntries([{ tags: ['app:1'], layers: [layerA, layerC] }]);
    const path = await archive('once.tar', entries);
    const first = await open(path, options({ cacheDir }));
    const root1 = await first.root();
    assert.deepEqual(first.stats, { compressed: 2, cached: 0, passedThrough: 0 });
    await first.close();
    const gzFiles = (await readdir(join(cacheDir, 'layers'))).filter((n) => n.endsWith('.gz'));
    assert.equal(gzFiles.length, 2);
    const mtimes = await Promise.all(gzFiles.map(async (n) => (await stat(join(cacheDir, 'layers', n))).mtimeMs));

    const second = await open(path, options({ cacheDir }));
    assert.deepEqual((await second.root()).bytes, root1.bytes);
    assert.deepEqual(second.stats, { compressed: 0, cached: 2, passedThrough: 0 });
    await second.close();
    assert.deepEqual(await Promise.all(gzFiles.map(async (n) => (await stat(join(cacheDir, 'layers', n))).mtimeMs)), mtimes, 'cached files untouched');

    // Cache pruned of its compressed bytes: the digests are still known, and blobs are recompressed on read.
    for (const n of gzFiles) await rm(join(cacheDir, 'layers', n));
    const third = await open(path, options({ cacheDir }));
    const manifest = JSON.parse(Buffer.from((await third.root()).bytes).toString());
    assert.deepEqual((await third.root()).bytes, root1.bytes);
    for (const layer of manifest.layers) assert.equal(sha256(await readAll(await third.blob(layer))), layer.digest);
    await third.close();
  });

  it('drops a corrupt cache entry when its bytes fail verification', async () => {
    const cacheDir = join(dir, 'cache-corrupt');
    const { entries } = dockerSaveEntries([{ tags: ['app:1'], layers: [layerA] }]);
    const path = await archive('corrupt-cache.tar', entries);
    const first = await open(path, options({ cacheDir }));
    const layer = JSON.parse(Buffer.from((await first.root()).bytes).toString()).layers[0];
    await first.close();
    const gz = join(cacheDir, 'layers', (await readdir(join(cacheDir, 'layers'))).find((n) => n.endsWith('.gz'))!);
    const bytes = await readFile(gz);
    bytes[bytes.length - 10]! ^= 0xff;
    await writeFile(gz, bytes);
    const second = await open(path, options({ cacheDir }));
    await second.root();
    const err = await errorOf(readAll(await second.blob(layer)));
    assert.equal(err.code, 'SLIPWAY_DIGEST_MISMATCH');
    await second.close();
    await new Promise((r) => setTimeout(r, 50));
    const third = await open(path, options({ cacheDir }));
    await third.root();
    assert.equal(third.stats.compressed, 1, 'recompressed after the corrupt entry was dropped');
    assert.equal(sha256(await readAll(await third.blob(layer))), layer.digest);
    await third.close();
  });

  it('passes already-gzipped layers through as stored', async () => {
    const gz = gzipSync(layerB, { level: 1 });
    const { entries } = dockerSaveEntries([{ tags: ['app:1'], layers: [gz], diffIDs: [`sha256:${hex(layerB)}`] }]);
    const source = await open(await archive('passthrough.tar', entries), options());
    const manifest = JSON.parse(Buffer.from((await source.root()).bytes).toString());
    assert.equal(manifest.layers[0].digest, sha256(gz));
    assert.equal(manifest.layers[0].size, gz.length);
    assert.equal(source.stats.passedThrough, 1);
    await source.close();
  });

  it('checks an already-gzipped layer against its diff_id, and refuses one that does not decompress', async () => {
    const gz = gzipSync(layerB, { level: 1 });
    // The config names another layer's diff_id: the layer was swapped.
    const swapped = dockerSaveEntries([{ tags: ['app:1'], layers: [gz], diffIDs: [`sha256:${hex(layerA)}`] }]);
    const first = await open(await archive('gz-wrong-diffid.tar', swapped.entries), options());
    const mismatch = await errorOf(first.root());
    assert.equal(mismatch.code, 'SLIPWAY_DIGEST_MISMATCH');
    assert.match(mismatch.message, /\(decompressed\) against its diff_id in the image config/);
    await first.close();
    // A good gzip header and trailer length around deflate data that is garbage.
    const corrupt = Buffer.from(gz);
    for (let i = 12; i < 40; i++) corrupt[i] = 0xff;
    const broken = dockerSaveEntries([{ tags: ['app:1'], layers: [corrupt], diffIDs: [`sha256:${hex(layerB)}`] }]);
    const second = await open(await archive('gz-corrupt.tar', broken.entries), options());
    const invalid = await errorOf(second.root());
    assert.equal(invalid.code, 'SLIPWAY_INVALID_ARCHIVE');
    assert.match(invalid.message, /its gzip data cannot be decompressed/);
    await second.close();
  });

  it('passes a large already-gzipped layer through (crane and skopeo archives of real images)', async () => {
    // Bigger than any stream buffer: hashing it must consume every byte, not stall after 16 KiB.
    const tar = await makeTar([{ name: 'big.bin', body: randomBytes(1 << 20) }]);
    const gz = gzipSync(tar, { level: 1 });
    const { entries } = dockerSaveEntries([{ tags: ['big:1'], layers: [gz], diffIDs: [`sha256:${hex(tar)}`] }]);
    const source = await open(await archive('passthrough-big.tar', entries), options());
    const manifest = JSON.parse(Buffer.from((await source.root({ signal: AbortSignal.timeout(20_000) })).bytes).toString());
    assert.equal(manifest.layers[0].digest, sha256(gz));
    assert.equal(source.stats.passedThrough, 1);
    assert.deepEqual(await readAll(await source.blob(manifest.layers[0])), gz);
    await source.close();
  });

  it('keeps foreign layers from LayerSources in the manifest, and says it does not hold their bytes', async () => {
    const foreign = { mediaType: MediaType.DockerForeignLayerGzip, digest: sha256('foreign'), size: 7, urls: ['https://example.invalid/layer'] };
    const { entries } = dockerSaveEntries([{ tags: ['win:1'], layers: [layerA, layerB], layerSources: { [`sha256:${hex(layerA)}`]: foreign } }]);
    const source = await open(await archive('foreign.tar', entries), options());
    const manifest = JSON.parse(Buffer.from((await source.root()).bytes).toString());
    assert.deepEqual(manifest.layers[0], foreign);
    const err = await errorOf(source.blob(manifest.layers[0]));
    assert.equal(err.code, 'SLIPWAY_NOT_FOUND');
    assert.match(err.message, /foreign layer/);
    await source.close();
  });

  it('refuses a layer that does not match its diff_id', async () => {
    const { entries } = dockerSaveEntries([{ tags: ['app:1'], layers: [layerA], diffIDs: [`sha256:${hex('something else')}`] }]);
    const source = await open(await archive('diffid.tar', entries), options({ cacheDir: false }));
    const err = await errorOf(source.root());
    assert.equal(err.code, 'SLIPWAY_DIGEST_MISMATCH');
    assert.match(err.message, /diff_id/);
    await source.close();
  });

  it('cancels compression on abort and leaves no temp files', async () => {
    const big = await makeTar([{ name: 'big', body: Buffer.alloc(8 * 1024 * 1024, 7) }]);
    const cacheDir = join(dir, 'cache-abort');
    const { entries } = dockerSaveEntries([{ tags: ['app:1'], layers: [big] }]);
    const source = await open(await archive('abort.tar', entries), options({ cacheDir }));
    const controller = new AbortController();
    const pending = source.root({ signal: controller.signal });
    setImmediate(() => controller.abort());
    assert.equal((await errorOf(pending)).code, 'SLIPWAY_ABORTED');
    await source.close();
    const left = await readdir(join(cacheDir, 'layers')).catch(() => []);
    assert.deepEqual(left.filter((n) => n.includes('.tmp-')), []);
  });

  it("one caller's abort does not cancel another caller's wait for the same compression", async () => {
    const big = await makeTar([{ name: 'big', body: Buffer.alloc(4 * 1024 * 1024, 3) }]);
    const { entries } = dockerSaveEntries([{ tags: ['app:1'], layers: [big] }]);
    const source = await open(await archive('shared.tar', entries), options({ cacheDir: false }));
    const controller = new AbortController();
    const aborted = source.root({ signal: controller.signal });
    const patient = source.root();
    setImmediate(() => controller.abort());
    assert.equal((await errorOf(aborted)).code, 'SLIPWAY_ABORTED');
    assert.match((await patient).descriptor.digest, /^sha256:/);
    await source.close();
  });

  it('serves the OCI layout of a Docker 25+ archive when it is complete, and falls back when it is not (moby#47065, #47210)', async () => {
    const { entries, configs } = dockerSaveEntries([{ tags: ['app:1'], layers: [layerA] }]);
    const config = configs[0]!;
    const blobs: TestEntry[] = [
      { name: `blobs/sha256/${hex(config)}`, body: config },
      { name: `blobs/sha256/${hex(layerA)}`, body: layerA },
    ];
    const ociManifest = (layers: unknown[]) =>
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length }, layers }));
    const complete = ociManifest([{ mediaType: MediaType.OciLayer, digest: `sha256:${hex(layerA)}`, size: layerA.length }]);
    const noLayers = ociManifest([]);
    const index = (m: Buffer | null) =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: m === null ? null : [{ mediaType: MediaType.OciManifest, digest: sha256(m), size: m.length, annotations: { 'io.containerd.image.name': 'docker.io/library/app:1', 'org.opencontainers.image.ref.name': '1' } }],
      });
    const layout = (m: Buffer, indexed: Buffer | null): TestEntry[] => [
      ...blobs,
      { name: `blobs/sha256/${hex(m)}`, body: m },
      { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', body: index(indexed) },
    ];

    const good = await open(await archive('hybrid.tar', [...entries, ...layout(complete, complete)]), options({ image: 'app:1' }));
    assert.equal(good.format, 'oci-layout');
    assert.equal((await good.root()).descriptor.digest, sha256(complete));
    await good.close();

    for (const [name, entriesOf] of [
      ['hybrid-nolayers.tar', layout(noLayers, noLayers)],
      ['hybrid-null.tar', layout(complete, null)],
    ] as const) {
      const fallback = await open(await archive(name, [...entries, ...entriesOf]), options());
      assert.equal(fallback.format, 'docker-save', name);
      assert.equal(JSON.parse(Buffer.from((await fallback.root()).bytes).toString()).mediaType, MediaType.DockerManifest);
      await fallback.close();
    }
  });

  it('reads an OCI layout tar without manifest.json, and openAny opens layout directories too', async () => {
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length }, layers: [] }));
    const entries: TestEntry[] = [
      { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', body: JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.OciManifest, digest: sha256(m), size: m.length, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }) },
      { name: `blobs/sha256/${hex(config)}`, body: config },
      { name: `blobs/sha256/${hex(m)}`, body: m },
    ];
    const path = await archive('oci-only.tar.gz', entries, true);
    const source = await open(path, options());
    assert.equal(source.format, 'oci-layout');
    // Named the way skopeo reads it (`docker-archive:` would name a transport that cannot read it).
    assert.equal(source.name, `oci-archive:${path}:v1`);
    assert.deepEqual(source.tags, ['v1']);
    assert.equal((await source.root()).descriptor.digest, sha256(m));
    await source.close();
    const { mkdir } = await import('node:fs/promises');
    const layoutDir = join(dir, 'layout-dir');
    for (const e of entries) {
      await mkdir(join(layoutDir, e.name, '..'), { recursive: true });
      await writeFile(join(layoutDir, e.name), e.body!);
    }
    const any = await openAny(layoutDir);
    assert.equal(any.name, `oci:${layoutDir}:v1`, 'a name slipway and skopeo both take back');
    assert.equal((await any.root()).descriptor.digest, sha256(m));
    await any.close?.();
  });

  describe('refuses malformed and hostile archives with SLIPWAY_INVALID_ARCHIVE naming the entry', () => {
    const cases: [string, () => Promise<TestEntry[]>, RegExp, 'open' | 'root'][] = [
      ['a manifest.json over the size cap', async () => [{ name: 'manifest.json', body: `[${' '.repeat(9 * 1024 * 1024)}]` }], /"manifest.json" is \d+ bytes, more than the 8388608-byte limit/, 'open'],
      ['a manifest.json that is not JSON', async () => [{ name: 'manifest.json', body: '[{"Config":' }], /"manifest.json" is not valid JSON/, 'open'],
      ['a manifest.json that is not a list', async () => [{ name: 'manifest.json', body: '{"Config":"x"}' }], /not a JSON array/, 'open'],
      ['a manifest.json item without Layers', async () => [{ name: 'manifest.json', body: '[{"Config":"c.json"}]' }], /"manifest.json"\[0\] has no "Layers"/, 'open'],
      ['manifest.json as a symlink', async () => [{ name: 'real.json', body: '[]' }, { name: 'manifest.json', type: 'symlink', linkname: 'real.json' }], /"manifest.json" is a symbolic link/, 'open'],
      [
        'a missing config',
        async () => [{ name: 'manifest.json', body: JSON.stringify([{ Config: 'gone.json', RepoTags: ['a:1'], Layers: [] }]) }],
        /image config "gone.json" is missing/,
        'open',
      ],
      [
        'a missing layer',
        async () => {
          const { entries } = dockerSaveEntries([{ tags: ['a:1'], layers: [layerA] }]);
          return entries.filter((e) => !e.name.endsWith('layer.tar'));
        },
        /layer "[0-9a-f]{64}\/layer.tar" is missing/,
        'root',
      ],
      [
        'a layer path that is a symlink leaving the archive',
        async () => {
          const { entries } = dockerSaveEntries([{ tags: ['a:1'], layers: [layerA] }]);
          return entries.map((e) => (e.name.endsWith('layer.tar') ? { name: e.name, type: 'symlink' as const, linkname: '../../../etc/passwd' } : e));
        },
        /symlink that leaves the archive/,
        'root',
      ],
      [
        'a layer path with ".."',
        async () => [
          { name: 'c.json', body: '{"rootfs":{"diff_ids":["sha256:' + '0'.repeat(64) + '"]}}' },
          { name: 'manifest.json', body: JSON.stringify([{ Config: 'c.json', RepoTags: ['a:1'], Layers: ['../outside/layer.tar'] }]) },
        ],
        /"\.\." path component/,
        'root',
      ],
      [
        'a config with fewer diff_ids than layers',
        async () => {
          const { entries } = dockerSaveEntries([{ tags: ['a:1'], layers: [layerA, layerB], diffIDs: [`sha256:${hex(layerA)}`] }]);
          return entries;
        },
        /lists 1 diff_ids but "manifest.json" lists 2 layers/,
        'root',
      ],
      ['an archive that is neither format', async () => [{ name: 'hello.txt', body: 'hi' }], /neither a docker save archive[^;]*$/, 'open'],
      [
        'a docker save made one directory up (tar cf x.tar dir/), with what to do',
        async () => dockerSaveEntries([{ tags: ['a:1'], layers: [layerA], diffIDs: [`sha256:${hex(layerA)}`] }]).entries.map((e) => ({ ...e, name: `saved/${e.name}` })),
        /neither a docker save archive .*; it holds manifest\.json under "saved\/": make the archive from inside that directory \(tar -C saved -cf ARCHIVE \.\)$/,
        'open',
      ],
      ['duplicate manifest.json entries', async () => [{ name: 'manifest.json', body: '[]' }, { name: 'manifest.json', body: '[]' }], /"manifest.json" appears more than once/, 'open'],
    ];
    for (const [what, make, pattern, when] of cases) {
      it(what, async () => {
        const path = await archive(`bad-${hex(what).slice(0, 8)}.tar`, await make());
        const err = await errorOf(
          (async () => {
            const source = await open(path, options({ cacheDir: false }));
            if (when === 'open') {
              await source.close();
              assert.fail('open should have failed');
            }
            try {
              await source.root();
            } finally {
              await source.close();
            }
          })(),
        );
        assert.equal(err.code, 'SLIPWAY_INVALID_ARCHIVE', err.message);
        assert.match(err.message, pattern);
      });
    }

    it('a truncated archive', async () => {
      const { entries } = dockerSaveEntries([{ tags: ['a:1'], layers: [layerA] }]);
      const tar = await makeTar(entries);
      const path = join(dir, 'truncated.tar');
      await writeFile(path, tar.subarray(0, 30_000));
      const err = await errorOf(open(path, options()));
      assert.equal(err.code, 'SLIPWAY_INVALID_ARCHIVE');
      assert.match(err.message, /truncated/);
    });

    it('a corrupt gzip stream', async () => {
      const { entries } = dockerSaveEntries([{ tags: ['a:1'], layers: [layerA] }]);
      const gz = gzipSync(await makeTar(entries));
      gz[gz.length - 100]! ^= 0xff;
      gz[200]! ^= 0xff;
      const path = join(dir, 'corrupt.tar.gz');
      await writeFile(path, gz);
      const err = await errorOf(open(path, options()));
      assert.equal(err.code, 'SLIPWAY_INVALID_ARCHIVE');
      // Only the CRC in the trailer wrong: zlib's "incorrect data check", whatever the tar's bytes.
      const badCrc = gzipSync(await makeTar(entries));
      badCrc[badCrc.length - 8]! ^= 0xff;
      const crcPath = join(dir, 'bad-crc.tar.gz');
      await writeFile(crcPath, badCrc);
      const crc = await errorOf(open(crcPath, options()));
      assert.equal(crc.code, 'SLIPWAY_INVALID_ARCHIVE');
      assert.match(crc.message, /corrupt gzip stream \(incorrect data check\)/);
    });

    it('a zstd-compressed archive, with a hint', async () => {
      const path = join(dir, 'x.tar.zst');
      await writeFile(path, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]));
      const err = await errorOf(open(path, options()));
      assert.equal(err.code, 'SLIPWAY_INVALID_ARCHIVE');
      assert.match(err.message, /zstd-compressed archives are not supported/);
    });
  });

  it('reports a missing archive as SLIPWAY_NOT_FOUND', async () => {
    assert.equal((await errorOf(open(join(dir, 'nope.tar')))).code, 'SLIPWAY_NOT_FOUND');
  });

  it('never writes outside its temp and cache directories', async () => {
    const { entries } = dockerSaveEntries([{ tags: ['a:1'], layers: [layerA] }]);
    const path = await archive('contained.tar.gz', entries, true);
    const sandbox = await mkdtemp(join(tmpdir(), 'slipway-sandbox-'));
    const source = await open(path, { tempDir: sandbox, cacheDir: false });
    await source.root();
    assert.equal((await readdir(sandbox)).length, 2, 'one scratch dir for the gunzipped archive, one for compressed layers');
    await source.close();
    assert.deepEqual(await readdir(sandbox), [], 'close() removes every scratch file');
    await rm(sandbox, { recursive: true });
  });

  it('compresses layers concurrently into one scratch directory, all of it removed on close', async () => {
    // Several layers ask for the scratch directory at the same time; each asking for its own
    // mkdtemp would leave all but the last one behind after close().
    const { entries } = dockerSaveEntries([{ tags: ['a:1'], layers: [layerA, layerB, layerC] }]);
    const path = await archive('concurrent.tar', entries);
    const sandbox = await mkdtemp(join(tmpdir(), 'slipway-sandbox-'));
    const source = await open(path, { tempDir: sandbox, cacheDir: false, concurrency: 3 });
    await source.root();
    assert.equal((await readdir(sandbox)).length, 1, 'one scratch dir for the compressed layers');
    await source.close();
    assert.deepEqual(await readdir(sandbox), [], 'close() removes every scratch file');
    await rm(sandbox, { recursive: true });
  });
});

describe('tarball.open on a pipe', () => {
  /** Opens `fifo` while `file`'s bytes are written into it, as `docker save app | slipway push /dev/stdin` does. */
  async function openThroughPipe(file: string, fifo: string, extra: TarballOptions = {}) {
    // The writer is a child process: the test's own blocking open of the FIFO would take a
    // thread-pool thread the reader needs (with UV_THREADPOOL_SIZE=1, a deadlock).
    const writer = spawn('sh', ['-c', 'exec cat "$1" > "$2"', 'sh', file, fifo], { stdio: 'ignore' });
    const fed = new Promise((resolve) => writer.on('close', resolve));
    try {
      return await open(fifo, options(extra));
    } finally {
      await fed;
    }
  }

  it('a given stream that has ended is refused, and one destroyed before its first byte is an invalid archive (neither waits for ever)', async () => {
    const ended = Readable.from([]);
    ended.resume();
    await new Promise((resolve) => ended.on('end', resolve));
    const refused = await errorOf(open('/dev/stdin', options({ stream: ended })));
    assert.equal(refused.code, 'SLIPWAY_INVALID_ARG');
    assert.match(refused.message, /has already ended/);
    const silent = new Readable({ read() {} });
    setTimeout(() => silent.destroy(), 50);
    const closed = await errorOf(open('/dev/stdin', options({ stream: silent })));
    assert.equal(closed.code, 'SLIPWAY_INVALID_ARCHIVE');
    assert.match(closed.message, /closed before the archive began/);
  });

  it('a given stream that fails mid-archive is SLIPWAY_IO, saying what was read and why', async () => {
    const path = await archive('stream-broken.tar', dockerSaveEntries([{ tags: ['app:1'], layers: [layerA] }]).entries);
    const bytes = await readFile(path);
    const broken = new Readable({ read() {} });
    broken.push(bytes.subarray(0, 1024));
    setTimeout(() => broken.destroy(new Error('producer broke')), 50);
    const err = await errorOf(open('/dev/stdin', options({ stream: broken })));
    assert.equal(err.code, 'SLIPWAY_IO');
    assert.match(err.message, /^reading archive "\/dev\/stdin" from its stream failed: producer broke$/);
  });

  it('a writer that holds the pipe open and sends nothing does not hold a cancelled open', async () => {
    const work = await mkdtemp(join(dir, 'pipe-silent-'));
    const fifo = join(work, 'stdin');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    const writer = spawn('sh', ['-c', 'exec sleep 30 > "$1"', 'sh', fifo], { stdio: 'ignore' });
    try {
      const started = Date.now();
      const err = await errorOf(open(fifo, options({ signal: AbortSignal.timeout(500) })));
      assert.equal(err.code, 'SLIPWAY_ABORTED');
      assert.ok(Date.now() - started < 10_000, 'ended by the abort, not by the writer');
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('reads a pipe once into scratch, plain or gzipped: the same image as from the file, and nothing left after close', async () => {
    const { entries } = dockerSaveEntries([{ tags: ['app:1'], layers: [layerA, layerB, gzipSync(layerC)], diffIDs: [`sha256:${hex(layerA)}`, `sha256:${hex(layerB)}`, `sha256:${hex(layerC)}`] }]);
    const work = await mkdtemp(join(dir, 'pipe-'));
    const fifo = join(work, 'stdin');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    const fromFile = await open(await archive('pipe-plain.tar', entries), options());
    const expected = (await fromFile.root()).descriptor.digest;
    await fromFile.close();
    for (const gzip of [false, true]) {
      const file = await archive(gzip ? 'pipe-source.tar.gz' : 'pipe-source.tar', entries, gzip);
      const scratchBefore = (await readdir(dir)).filter((n) => n.startsWith('slipway-'));
      const source = await openThroughPipe(file, fifo);
      assert.deepEqual(source.tags, ['app:1']);
      const root = await source.root();
      assert.equal(root.descriptor.digest, expected, gzip ? 'gzipped stream' : 'plain stream');
      const manifest = JSON.parse(Buffer.from(root.bytes).toString()) as { layers: Descriptor[] };
      // Every blob still reads back (the spool, not the pipe, is what byte ranges come from).
      for (const layer of manifest.layers) assert.equal(sha256(await readAll(await source.blob(layer))), layer.digest);
      await source.close();
      assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('slipway-')), scratchBefore, 'the spool went with close()');
    }
  });

  it('two archives through the same pipe are two archives: no cache entry is keyed by the pipe', async () => {
    // The already-gzipped layer's digest is cached per archive identity; a pipe's path is the same for every stream.
    const first = dockerSaveEntries([{ tags: ['app:1'], layers: [gzipSync(layerA, { level: 1 })], diffIDs: [`sha256:${hex(layerA)}`] }]).entries;
    const second = dockerSaveEntries([{ tags: ['app:1'], layers: [gzipSync(layerA, { level: 9 })], diffIDs: [`sha256:${hex(layerA)}`] }]).entries;
    const work = await mkdtemp(join(dir, 'pipe-twice-'));
    const fifo = join(work, 'stdin');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    const digests: string[] = [];
    for (const [i, entries] of [first, second].entries()) {
      const source = await openThroughPipe(await archive(`pipe-twice-${i}.tar`, entries), fifo, { cacheDir: join(work, 'cache') });
      const manifest = JSON.parse(Buffer.from((await source.root()).bytes).toString()) as { layers: { digest: string }[] };
      digests.push(manifest.layers[0]!.digest);
      await source.close();
    }
    assert.notEqual(digests[0], digests[1], 'the second stream\'s layer got its own digest');
  });

  it('a zstd stream is refused with the hint, and an empty one is an invalid archive', async () => {
    const work = await mkdtemp(join(dir, 'pipe-bad-'));
    const fifo = join(work, 'stdin');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    const zstd = join(work, 'zstd.bin');
    await writeFile(zstd, Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(64)]));
    const refused = await errorOf(openThroughPipe(zstd, fifo));
    assert.equal(refused.code, 'SLIPWAY_INVALID_ARCHIVE');
    assert.match(refused.message, /zstd-compressed archives are not supported/);
    const empty = await errorOf(open('/dev/null', options()));
    assert.equal(empty.code, 'SLIPWAY_INVALID_ARCHIVE');
    assert.match(empty.message, /empty tar/);
    // A big file of zeros (sparse: no disk used) is found empty from its first two blocks (the
    // message says so), not read to its end (13 s for 2 GB, then "no entries").
    const zeros = join(work, 'zeros.tar');
    await writeFile(zeros, '');
    await truncate(zeros, 2 ** 31);
    const zeroed = await errorOf(open(zeros, options()));
    assert.equal(zeroed.code, 'SLIPWAY_INVALID_ARCHIVE');
    assert.match(zeroed.message, /empty tar \(it starts with the end-of-archive marker\)$/);
  });
});

describe('archiveDigest', () => {
  it('hashes content, or stat facts without reading', async () => {
    const path = join(dir, 'fp.tar');
    await writeFile(path, 'abc');
    assert.equal(await archiveDigest(path), `sha256:${hex('abc')}`);
    const s1 = await archiveDigest(path, { mode: 'stat' });
    assert.match(s1, /^sha256:[0-9a-f]{64}$/);
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(path, 'abd');
    assert.notEqual(await archiveDigest(path, { mode: 'stat' }), s1);
    const link = join(dir, 'fp-link.tar');
    await symlink(path, link);
    assert.equal(await archiveDigest(link, { mode: 'stat' }), await archiveDigest(path, { mode: 'stat' }), 'a symlink fingerprints as its target');
    assert.equal((await errorOf(archiveDigest(join(dir, 'missing.tar')))).code, 'SLIPWAY_NOT_FOUND');
  });
});
