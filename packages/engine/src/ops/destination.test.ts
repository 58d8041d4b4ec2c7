import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copy, layout, MediaType, SlipwayError } from '@slipway/oci';
import { copyImage, parseDestination } from './copy-image.js';

/** An OCI layout at `dir` holding one small image tagged v1; its descriptor. */
async function layoutWithImage(dir: string) {
  const memory = new copy.MemoryRegistry({ host: 'memory.test' });
  const config = memory.addBlob('app', Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'), MediaType.OciConfig);
  const image = memory.addManifest('app', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [] })), MediaType.OciManifest, 'v1');
  await copy.copy(memory.source('app', 'v1'), layout.sink(dir, { tag: 'v1' }));
  return image;
}

test('destinations: registries, and skopeo\'s spellings of local places (the path ends at the first colon)', () => {
  const registry = parseDestination('docker://registry.test:5000/team/app');
  assert.equal(registry.kind === 'registry' && registry.reference.toString(), 'registry.test:5000/team/app:latest');
  assert.deepEqual(parseDestination('oci:out/layout:v1'), { kind: 'oci-layout', path: 'out/layout', name: 'v1' });
  assert.deepEqual(parseDestination('oci:out/layout'), { kind: 'oci-layout', path: 'out/layout' });
  assert.deepEqual(parseDestination('oci-archive:/tmp/a.tar:app:1'), { kind: 'oci-archive', path: '/tmp/a.tar', name: 'app:1' });
  assert.deepEqual(parseDestination('docker-archive:a.tar:registry.test:5000/app:1'), { kind: 'docker-archive', path: 'a.tar', name: 'registry.test:5000/app:1' });
  assert.deepEqual(parseDestination('docker-archive:a.tar:'), { kind: 'docker-archive', path: 'a.tar' });
  assert.deepEqual(parseDestination('docker-daemon:app:1'), { kind: 'docker-daemon', image: 'app:1' });
});

test('destinations slipway cannot write are usage errors, never Docker Hub repositories', () => {
  const refused = (text: string, pattern: RegExp) =>
    assert.throws(() => parseDestination(text), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_REFERENCE' && pattern.test(err.message), text);
  refused('dir:out', /dir: location, which slipway does not write/);
  refused('containers-storage:app:1', /slipway does not write/);
  refused('oci:', /nothing after "oci:"/);
  refused('oci-archive::name', /no path before the name/);
  refused('docker-daemon:', /nothing after/);
});

test('a registry destination may name the digest the result must have, with or without a tag', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  for (const [text, tag] of [
    [`registry.test/app@${digest}`, undefined],
    [`registry.test/app:v1@${digest}`, 'v1'],
  ] as const) {
    const spec = parseDestination(text);
    assert.ok(spec.kind === 'registry');
    assert.equal(spec.reference.digest, digest);
    assert.equal(spec.reference.tag, tag, `${text}: no default tag beside a digest`);
  }
});

test('the image option with a registry or daemon source is refused, not ignored', async () => {
  for (const source of ['registry.invalid/app:1', 'docker-daemon:app:1']) {
    await assert.rejects(copyImage({ source, destination: 'registry.invalid/copy:1', image: 'app:2' }), (err: unknown) => {
      assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_ARG', String(err));
      assert.match(err.message, /the image option \("app:2"\) picks an image of an archive or OCI layout/);
      return true;
    });
  }
});

test('a file system that refuses a local destination is SLIPWAY_IO naming the path, and /proc does not hang (Node 20 recursive mkdir)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-destination-io-'));
  try {
    await layoutWithImage(join(dir, 'src'));
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    for (const [destination, pattern] of [
      [`oci-archive:${file}/x.tar`, /^\w+ ".*a-file.*" failed: ENOTDIR \(copying oci:.* to oci-archive:.*\/a-file\/x\.tar\)$/],
      [`oci:${file}:v1`, /failed: ENOTDIR \(copying/],
      ['oci:/proc/slipway-no-such-dir/layout:v1', /^mkdir "\/proc\/slipway-no-such-dir" failed: ENOENT \(copying/],
    ] as const) {
      await assert.rejects(copyImage({ source: `oci:${join(dir, 'src')}:v1`, destination }), (err: unknown) => {
        assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_IO', String(err));
        assert.match(err.message, pattern);
        return true;
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('destinationStream: an archive is written into the stream, ended after it, and never compared; any other destination refuses it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-destination-stream-'));
  try {
    const image = await layoutWithImage(join(dir, 'src'));
    const source = `oci:${join(dir, 'src')}:v1`;

    // The path names the stream only: a file already there is neither read nor touched.
    const named = join(dir, 'named.tar');
    await writeFile(named, 'left alone');
    const chunks: Buffer[] = [];
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => stream.on('end', resolve));
    const result = await copyImage({ source, destination: `docker-archive:${named}:app:1`, destinationStream: stream });
    await ended;
    assert.equal(result.digest, image.digest);
    assert.equal(result.noop, false);
    assert.equal(await readFile(named, 'utf8'), 'left alone');
    const streamed = join(dir, 'streamed.tar');
    await writeFile(streamed, Buffer.concat(chunks));
    const written = join(dir, 'written.tar');
    await copyImage({ source, destination: `docker-archive:${written}:app:1` });
    assert.deepEqual(await readFile(streamed), await readFile(written), 'the bytes a file gets');

    for (const destination of ['registry.invalid/app:1', `oci:${join(dir, 'layout')}`, 'docker-daemon:app:1']) {
      await assert.rejects(copyImage({ source, destination, destinationStream: new PassThrough() }), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_ARG' && /destinationStream is for an oci-archive: or docker-archive: destination/.test(err.message), destination);
    }
    await assert.rejects(copyImage({ source, destination: `oci-archive:${join(dir, 'x.tar')}`, destinationStream: 'stdout' as unknown as PassThrough }), /destinationStream must be a writable stream, got "stdout"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('sourceStream: an archive read from the stream (the path only names it), once; any other source refuses it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-source-stream-'));
  try {
    const image = await layoutWithImage(join(dir, 'src'));
    const archive = join(dir, 'app.tar');
    await copyImage({ source: `oci:${join(dir, 'src')}:v1`, destination: `oci-archive:${archive}:v1` });
    const bytes = await readFile(archive);

    for (const source of [`oci-archive:/dev/stdin:v1`, '/dev/stdin']) {
      const copied = await copyImage({ source, destination: `oci:${join(dir, 'out')}:from-stream`, sourceStream: Readable.from([bytes]), overwrite: true });
      assert.equal(copied.digest, image.digest, source);
    }
    for (const source of ['registry.invalid/app:1', `oci:${join(dir, 'src')}:v1`, 'docker-daemon:app:1']) {
      await assert.rejects(copyImage({ source, destination: `oci:${join(dir, 'never')}`, sourceStream: Readable.from([bytes]) }), (err: unknown) => SlipwayError.is(err) && /sourceStream is for an archive source/.test(err.message), source);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
