import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { SlipwayError } from '../errors.js';
import { makeTar, type TestEntry } from '../internal/tar-fixtures.js';
import { imageSourceConformance } from '../testing/conformance.js';
import { errorOf } from '../testing/rejection.js';
import { sha256 } from '../v1/digest.js';
import type { Descriptor } from '../v1/manifest.js';
import { MediaType } from '../v1/media-types.js';
import type { ImageSource, ManifestBytes } from '../v1/source.js';
import { sink } from './sink.js';
import { list, open } from './source.js';

const hex = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

interface Image {
  manifest: ManifestBytes;
  blobs: { descriptor: Descriptor; bytes: Buffer }[];
}

function image(seed: string, platform = { architecture: 'amd64', os: 'linux' }): Image {
  const config = Buffer.from(JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: [] }, seed }));
  const layer = gzipSync(Buffer.from(`layer ${seed}`.repeat(1000)));
  const blobs = [
    { descriptor: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length }, bytes: config },
    { descriptor: { mediaType: MediaType.OciLayerGzip, digest: sha256(layer), size: layer.length }, bytes: layer },
  ];
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: blobs[0]!.descriptor, layers: [blobs[1]!.descriptor] }));
  return { manifest: { descriptor: { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length }, bytes }, blobs };
}

function indexOf(images: Image[]): ManifestBytes {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: images.map((img, i) => ({ ...img.manifest.descriptor, platform: { architecture: ['amd64', 'arm64'][i] ?? 'riscv64', os: 'linux' } })),
    }),
  );
  return { descriptor: { mediaType: MediaType.OciIndex, digest: sha256(bytes), size: bytes.length }, bytes };
}

/** Writes an image through the sink the way the copy engine does: blobs, then the manifest under the tag. */
async function put(dir: string, img: Image, tag?: string): Promise<void> {
  const target = sink(dir, tag ? { tag } : {});
  for (const b of img.blobs) await target.putBlob(b.descriptor, async () => Readable.from([b.bytes]));
  await target.putManifest(img.manifest, tag ? { tag } : {});
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A layout directory as tar entries (what `tar -cf x.tar -C dir .` would hold). */
async function tarEntries(root: string): Promise<TestEntry[]> {
  const out: TestEntry[] = [];
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) {
        out.push({ name: `${relative(root, full)}/`, type: 'directory' });
        await walk(full);
      } else out.push({ name: relative(root, full), body: await readFile(full) });
    }
  };
  await walk(root);
  return out;
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-layout-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

imageSourceConformance('OCI layout directory written by layout.sink', async () => {
  const target = join(dir, 'conf-dir');
  const img = image('conf');
  await put(target, img, 'v1');
  return { source: await open(target), expected: { rootDigest: img.manifest.descriptor.digest, contains: img.blobs.map((b) => b.descriptor.digest) } };
});

imageSourceConformance('gzipped OCI layout tar with an index root', async () => {
  const target = join(dir, 'conf-index');
  const a = image('a');
  const b = image('b', { architecture: 'arm64', os: 'linux' });
  await put(target, a);
  await put(target, b);
  const idx = indexOf([a, b]);
  await sink(target).putManifest(idx, { tag: 'multi' });
  const path = join(dir, 'conf-index.tar.gz');
  await writeFile(path, gzipSync(await makeTar(await tarEntries(target))));
  return { source: await open(path), expected: { rootDigest: idx.descriptor.digest, rootMediaType: MediaType.OciIndex, contains: [a.manifest.descriptor.digest, b.blobs[1]!.descriptor.digest] } };
});

describe('layout.open', () => {
  it('selects by ref name, digest or position, and lists the images when none is chosen', async () => {
    const target = join(dir, 'multi');
    const a = image('1');
    const b = image('2');
    await put(target, a, 'app:1');
    await put(target, b, 'app:2');
    await put(target, b, 'latest');
    const err = await errorOf(open(target));
    assert.equal(err.code, 'SLIPWAY_INVALID_ARG');
    assert.match(err.message, /holds 2 images; choose one/);
    assert.match(err.message, /"app:1" \(sha256:/);
    for (const [selector, want] of [['app:1', a], ['docker.io/library/app:2', b], ['latest', b], [b.manifest.descriptor.digest, b], [0, a]] as const) {
      const source = await open(target, { image: selector });
      assert.equal((await source.root()).descriptor.digest, want.manifest.descriptor.digest, String(selector));
      await source.close();
    }
    assert.equal((await errorOf(open(target, { image: 'app:3' }))).code, 'SLIPWAY_NOT_FOUND');
    // A selector that can name nothing is the selector's fault (exit 2), not a missing image (exit 3).
    for (const [selector, message] of [
      ['@-1', /neither a position @N .* nor a digest/],
      ['@abc', /neither a position @N/],
      ['sha256:abc', /"sha256:abc" is not a digest/],
      ['@sha256:abc', /"@sha256:abc" is not a digest/],
    ] as const) {
      const err = await errorOf(open(target, { image: selector }));
      assert.equal(err.code, 'SLIPWAY_INVALID_ARG', selector);
      assert.match(err.message, message);
    }
    assert.match((await errorOf(open(target, { image: 7 }))).message, /image @7 is out of range: .* holds 3 entries/);
    // '@1' as a string (the library's option) is the position; a ref name that looks like a digest's
    // start (`sha256:v1`, valid: ':' is a separator) is found like any name.
    const second = await open(target, { image: '@1' });
    assert.equal((await second.root()).descriptor.digest, b.manifest.descriptor.digest);
    await second.close();
    await put(target, a, 'sha256:v1');
    const odd = await open(target, { image: 'sha256:v1' });
    assert.equal((await odd.root()).descriptor.digest, a.manifest.descriptor.digest);
    await odd.close();
    assert.deepEqual((await list(target)).map((i) => i.refName), ['app:1', 'app:2', 'latest', 'sha256:v1']);
  });

  it('reports a corrupted blob as a digest mismatch while streaming, and a resized one at once', async () => {
    const target = join(dir, 'corrupt');
    const img = image('corrupt');
    await put(target, img, 'x');
    const layer = img.blobs[1]!;
    const path = join(target, 'blobs', 'sha256', layer.descriptor.digest.slice(7));
    const bytes = Buffer.from(layer.bytes);
    bytes[bytes.length - 5]! ^= 0xff;
    await writeFile(path, bytes);
    const source = await open(target);
    assert.equal((await errorOf(readAll(await source.blob(layer.descriptor)))).code, 'SLIPWAY_DIGEST_MISMATCH');
    await writeFile(path, Buffer.concat([layer.bytes, Buffer.from('x')]));
    assert.equal((await errorOf(source.blob(layer.descriptor))).code, 'SLIPWAY_SIZE_MISMATCH');
    const manifestPath = join(target, 'blobs', 'sha256', img.manifest.descriptor.digest.slice(7));
    const m = Buffer.from(img.manifest.bytes);
    m[m.length - 2] = 0x20;
    await writeFile(manifestPath, m);
    assert.equal((await errorOf(source.root())).code, 'SLIPWAY_DIGEST_MISMATCH');
    await source.close();
  });

  it('follows a symlinked blob inside the layout, refuses one leaving it', async () => {
    const target = join(dir, 'links');
    const img = image('links');
    await put(target, img, 'x');
    const layer = img.blobs[1]!.descriptor;
    const blob = join(target, 'blobs', 'sha256', layer.digest.slice(7));
    await mkdir(join(target, 'store'));
    await writeFile(join(target, 'store', 'layer'), await readFile(blob));
    await rm(blob);
    await symlink('../../store/layer', blob);
    const source = await open(target);
    assert.equal(sha256(await readAll(await source.blob(layer))), layer.digest);
    await rm(blob);
    const outside = join(dir, 'outside-layer');
    await writeFile(outside, img.blobs[1]!.bytes);
    await symlink(outside, blob);
    const err = await errorOf(source.blob(layer));
    assert.equal(err.code, 'SLIPWAY_INVALID_ARCHIVE');
    assert.match(err.message, /symlink that leaves the layout/);
    await source.close();
  });

  it('refuses a blobs directory that is a symlink out of the layout', async () => {
    const target = join(dir, 'blobs-link');
    const img = image('blobs-link');
    await put(target, img, 'x');
    const elsewhere = join(dir, 'elsewhere-blobs');
    const { rename } = await import('node:fs/promises');
    await rename(join(target, 'blobs'), elsewhere);
    await symlink(elsewhere, join(target, 'blobs'));
    const source = await open(target);
    const err = await errorOf(source.root());
    assert.equal(err.code, 'SLIPWAY_INVALID_ARCHIVE');
    assert.match(err.message, /leaves the layout/);
    assert.match(err.message, /^invalid OCI layout "/, 'a directory is not called an archive');
    await source.close();
  });

  it('names a manifest over the 4 MiB limit as a manifest, in a layout directory', async () => {
    const target = join(dir, 'huge-manifest');
    const img = image('huge');
    await put(target, img, 'small');
    // The same manifest, padded with whitespace (still valid JSON) to one byte over the limit.
    const padded = Buffer.concat([img.manifest.bytes, Buffer.alloc(4 * 1024 * 1024 + 1 - img.manifest.bytes.length, 0x20)]);
    await writeFile(join(target, 'blobs', 'sha256', hex(padded)), padded);
    const descriptor = { mediaType: MediaType.OciManifest, digest: sha256(padded), size: padded.length, annotations: { 'org.opencontainers.image.ref.name': 'huge' } };
    await writeFile(join(target, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [descriptor] }));
    const source = await open(target, { image: 'huge' });
    const err = await errorOf(source.root());
    assert.equal(err.code, 'SLIPWAY_INVALID_ARCHIVE');
    assert.match(err.message, new RegExp(`^invalid OCI layout ".*huge-manifest": manifest ${descriptor.digest} is 4194305 bytes, more than the 4194304-byte limit registries must accept`));
    await source.close();
  });

  describe('refuses malformed layouts with SLIPWAY_INVALID_ARCHIVE', () => {
    const cases: [string, TestEntry[], RegExp][] = [
      ['no oci-layout', [{ name: 'index.json', body: '{"schemaVersion":2,"manifests":[]}' }], /no "oci-layout" file/],
      ['an unknown layout version', [{ name: 'oci-layout', body: '{"imageLayoutVersion":"2.0.0"}' }, { name: 'index.json', body: '{}' }], /unsupported imageLayoutVersion "2.0.0"/],
      ['no index.json', [{ name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }], /no "index.json"/],
      ['index.json with "manifests": null', [{ name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }, { name: 'index.json', body: '{"schemaVersion":2,"manifests":null}' }], /"index.json": invalid manifest: index has no "manifests" array/],
      ['an empty index.json', [{ name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }, { name: 'index.json', body: '{"schemaVersion":2,"manifests":[]}' }], /lists no images/],
      ['an index.json over the size cap', [{ name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }, { name: 'index.json', body: ' '.repeat(5 * 1024 * 1024) }], /"index.json" is \d+ bytes, more than/],
      ['index.json as a hard link', [{ name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }, { name: 'x', body: '{}' }, { name: 'index.json', type: 'link', linkname: 'x' }], /"index.json" is a link/],
    ];
    for (const [what, entries, pattern] of cases) {
      it(what, async () => {
        const path = join(dir, `bad-${hex(what).slice(0, 8)}.tar`);
        await writeFile(path, await makeTar(entries));
        const err = await errorOf(open(path));
        assert.equal(err.code, 'SLIPWAY_INVALID_ARCHIVE', err.message);
        assert.match(err.message, pattern);
      });
    }

    it('a name asked of an empty layout is SLIPWAY_NOT_FOUND, as in a full one (one being written for the first time)', async () => {
      const path = join(dir, 'empty-named.tar');
      await writeFile(path, await makeTar([{ name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }, { name: 'index.json', body: '{"schemaVersion":2,"manifests":[]}' }]));
      for (const image of ['big', 0] as const) {
        const err = await errorOf(open(path, { image }));
        assert.equal(err.code, 'SLIPWAY_NOT_FOUND', err.message);
        assert.match(err.message, /^no image "(big|@0)" in ".*empty-named\.tar": its "index\.json" lists no images$/);
      }
    });

    it('a manifest that index.json names but the layout lacks is SLIPWAY_NOT_FOUND', async () => {
      const img = image('missing');
      const path = join(dir, 'missing.tar');
      await writeFile(
        path,
        await makeTar([
          { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
          { name: 'index.json', body: JSON.stringify({ schemaVersion: 2, manifests: [img.manifest.descriptor] }) },
        ]),
      );
      const source = await open(path);
      assert.equal((await errorOf(source.root())).code, 'SLIPWAY_NOT_FOUND');
      await source.close();
    });
  });
});

describe('layout.sink', () => {
  it('writes a layout other readers accept: oci-layout, index.json with the ref name, blobs by digest', async () => {
    const target = join(dir, 'sink-basic');
    const img = image('basic');
    const s = sink(target, { tag: 'app:1' });
    assert.equal(await s.current(), undefined);
    await put(target, img, 'app:1');
    assert.deepEqual(JSON.parse(await readFile(join(target, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(join(target, 'index.json'), 'utf8'));
    assert.equal(index.manifests.length, 1);
    assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'app:1');
    assert.deepEqual(await s.current(), img.manifest.descriptor);
    for (const b of img.blobs) assert.ok(await s.hasBlob(b.descriptor));
    assert.ok(await s.hasManifest(img.manifest.descriptor));
    // Re-tagging replaces the entry; other tags stay.
    const other = image('other');
    await put(target, other, 'app:1');
    await put(target, img, 'app:0');
    const after = JSON.parse(await readFile(join(target, 'index.json'), 'utf8'));
    assert.deepEqual(after.manifests.map((m: Descriptor) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest]), [
      ['app:1', other.manifest.descriptor.digest],
      ['app:0', img.manifest.descriptor.digest],
    ]);
    const names = (await readdir(join(target, 'blobs', 'sha256'))).filter((n) => n.startsWith('.tmp-'));
    assert.deepEqual(names, [], 'no temp files left');
  });

  it('removes what a killed writer left (.tmp- files untouched for an hour) when the layout is next written; a fresh one stays', async () => {
    const target = join(dir, 'sink-sweep');
    await put(target, image('sweep-a'), 'a');
    const blobs = join(target, 'blobs', 'sha256');
    const stale = [join(blobs, '.tmp-0123456789ab'), join(target, '.tmp-ba9876543210')];
    const fresh = join(blobs, '.tmp-00000000ffff');
    const old = new Date(Date.now() - 2 * 3600_000);
    for (const path of [...stale, fresh]) await writeFile(path, 'half a blob');
    for (const path of stale) await utimes(path, old, old);
    // Not ours by name: left alone whatever its age.
    const foreign = join(blobs, '.tmp-someone-else');
    await writeFile(foreign, 'x');
    await utimes(foreign, old, old);
    await put(target, image('sweep-b'), 'b');
    assert.deepEqual((await readdir(blobs)).filter((n) => n.startsWith('.tmp-')).sort(), ['.tmp-00000000ffff', '.tmp-someone-else']);
    assert.deepEqual((await readdir(target)).filter((n) => n.startsWith('.tmp-')), []);
  });

  it('refuses bad bytes without leaving a file, and writes each blob once under concurrency', async () => {
    const target = join(dir, 'sink-verify');
    const img = image('verify');
    const s = sink(target);
    const layer = img.blobs[1]!;
    const err = await errorOf(s.putBlob(layer.descriptor, async () => Readable.from([Buffer.from('not the layer')])));
    assert.ok(err.code === 'SLIPWAY_DIGEST_MISMATCH' || err.code === 'SLIPWAY_SIZE_MISMATCH', err.code);
    assert.equal(await s.hasBlob(layer.descriptor), false);
    assert.deepEqual((await readdir(join(target, 'blobs', 'sha256'))).length, 0);
    let opened = 0;
    await Promise.all(
      Array.from({ length: 5 }, () =>
        s.putBlob(layer.descriptor, async () => {
          opened++;
          return Readable.from([layer.bytes]);
        }),
      ),
    );
    assert.equal(opened, 1);
    assert.ok(await s.hasBlob(layer.descriptor));
    const bad = { ...img.manifest, bytes: Buffer.from('{}') };
    assert.equal((await errorOf(s.putManifest(bad, { tag: 'x' }))).code, 'SLIPWAY_SIZE_MISMATCH');
    // The per-call tag is held to the same rule as the sink's: the pattern and the 255-character limit.
    for (const tag of ['a'.repeat(256), 'not a ref name!']) {
      const err = await errorOf(s.putManifest(img.manifest, { tag }));
      assert.equal(err.code, 'SLIPWAY_INVALID_ARG');
      assert.match(err.message, /invalid layout tag .*: want an image-spec ref name/);
    }
  });

  it('keeps every tag when manifests are tagged concurrently', async () => {
    const target = join(dir, 'sink-concurrent');
    const imgs = Array.from({ length: 8 }, (_, i) => image(`c${i}`));
    for (const img of imgs) for (const b of img.blobs) await sink(target).putBlob(b.descriptor, async () => Readable.from([b.bytes]));
    await Promise.all(imgs.map((img, i) => sink(target).putManifest(img.manifest, { tag: `t${i}` })));
    const index = JSON.parse(await readFile(join(target, 'index.json'), 'utf8'));
    assert.equal(index.manifests.length, 8);
  });

  it('keeps every tag when several processes tag into one layout at once, behind a killed writer\'s lock', async () => {
    const target = join(dir, 'sink-processes');
    await put(target, image('seed'), 'seed');
    // Each process tags five manifests of its own; index.json is rewritten whole for each tag.
    const child = `
      const { sink } = await import(process.argv[1]);
      const { createHash } = await import('node:crypto');
      const [dir, name] = process.argv.slice(2);
      for (let i = 0; i < 5; i++) {
        const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', annotations: { who: name + i } }));
        const descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:' + createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
        await sink(dir, { tag: name + '-' + i }).putManifest({ descriptor, bytes }, { tag: name + '-' + i });
      }`;
    const sinkModule = new URL('./sink.js', import.meta.url).href;
    // They start behind a lock another host's writer left when it was killed: all of them find it
    // stale at once, and must take it over one at a time (removing it blindly lost 1 to 8 tags of 16).
    const lock = join(target, '.tmp-slipway-index.lock');
    await writeFile(lock, 'killed.elsewhere 4242 0123456789abcdef\n');
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(lock, longAgo, longAgo);
    const runs = Array.from({ length: 6 }, (_, n) =>
      new Promise<number | null>((resolve) => spawn(process.execPath, ['--input-type=module', '-e', child, sinkModule, target, `p${n}`], { stdio: 'inherit' }).on('close', resolve)),
    );
    assert.deepEqual(await Promise.all(runs), [0, 0, 0, 0, 0, 0]);
    const tags = (await list(target)).map((i) => i.refName).sort();
    assert.equal(tags.length, 31, `lost tags: ${tags.join(' ')}`);
    assert.deepEqual((await readdir(target)).filter((n) => n.includes('lock')), [], 'the lock went with its writer');
  });

  it('takes over a lock file a killed writer left, and waits on a live one only until cancelled', async () => {
    const target = join(dir, 'sink-stale-lock');
    await put(target, image('stale'), 'first');
    const lock = join(target, '.tmp-slipway-index.lock');
    await writeFile(lock, 'elsewhere 1\n');
    const img = image('after-stale');
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(lock, longAgo, longAgo);
    await put(target, img, 'second');
    assert.deepEqual((await list(target)).map((i) => i.refName).sort(), ['first', 'second']);
    // A fresh lock: its writer is at work; a cancelled tagging stops waiting, and writes nothing.
    await writeFile(lock, 'elsewhere 2\n');
    const err = await errorOf(sink(target, { tag: 'third' }).putManifest(img.manifest, { tag: 'third', signal: AbortSignal.timeout(200) }));
    assert.equal(err.code, 'SLIPWAY_ABORTED');
    assert.deepEqual((await list(target)).map((i) => i.refName).sort(), ['first', 'second']);
    assert.equal(await readFile(lock, 'utf8'), 'elsewhere 2\n', 'the live writer\'s lock is left alone');
    await rm(lock);
    // This host's writer that is gone: its lock is taken over at once, not after the 10 s wait.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    await writeFile(lock, `${hostname()} ${gone} fedcba9876543210\n`);
    const started = Date.now();
    await put(target, image('after-dead-pid'), 'fourth');
    assert.ok(Date.now() - started < 5000, `waited ${Date.now() - started} ms on a dead process's lock`);
    assert.deepEqual(await readdir(target).then((names) => names.filter((n) => n.includes('lock'))), []);
  });

  it('starts a new layout from several copies at once, every tag kept', async () => {
    // Each sink creates the marker and index.json on its first write: the others must neither take
    // those (or their temp files) for foreign content nor replace an index already holding tags.
    for (let round = 0; round < 5; round++) {
      const target = join(dir, `sink-fresh-${round}`);
      const imgs = Array.from({ length: 6 }, (_, i) => image(`fresh${round}-${i}`));
      await Promise.all(imgs.map((img, i) => put(target, img, `t${i}`)));
      const index = JSON.parse(await readFile(join(target, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
      assert.deepEqual(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']).sort(), imgs.map((_, i) => `t${i}`));
    }
  });

  it('refuses a non-empty directory that is not a layout, and invalid tags', async () => {
    const target = join(dir, 'not-a-layout');
    await mkdir(target);
    await writeFile(join(target, 'important.txt'), 'keep me');
    const err = await errorOf(put(target, image('x'), 'x'));
    assert.equal(err.code, 'SLIPWAY_INVALID_ARG');
    assert.equal(await readFile(join(target, 'important.txt'), 'utf8'), 'keep me');
    assert.throws(() => sink(target, { tag: 'bad tag' }), (e: unknown) => SlipwayError.is(e) && e.code === 'SLIPWAY_INVALID_ARG');
  });

  it('copies a layout into another (layout source → layout sink) with identical digests', async () => {
    const from = join(dir, 'copy-from');
    const to = join(dir, 'copy-to');
    const img = image('copy');
    await put(from, img, 'v1');
    const source: ImageSource = await open(from);
    const root = await source.root();
    const target = sink(to, { tag: 'v1' });
    for (const b of img.blobs) await target.putBlob(b.descriptor, () => source.blob(b.descriptor));
    await target.putManifest(root, { tag: 'v1' });
    await source.close?.();
    const copied = await open(to);
    assert.deepEqual((await copied.root()).bytes, root.bytes);
    await copied.close();
  });
});
