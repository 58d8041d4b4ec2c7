// The tee of compressed layer bytes (tarball.open's onCompressedStream): a healthy consumer gets
// exactly the blob's bytes with backpressure honoured; a consumer that fails, stalls or cannot start
// is detached and changes nothing; cached, gzip and broken layers get no committed tee; cancelling
// while a tee holds compression leaves no file behind.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { makeTar, type TestEntry } from '../internal/tar-fixtures.js';
import { errorOf } from '../testing/rejection.js';
import { sha256 } from '../v1/digest.js';
import type { Descriptor } from '../v1/manifest.js';
import { open, type TarballOptions } from './source.js';
import type { CompressedLayer, CompressedTee } from './tee.js';

const hex = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

let dir: string;
/** 3 MiB of random bytes in a tar: incompressible, so several 1 MiB blocks reach the tee. */
let big: Buffer;
let small: Buffer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-tee-test-'));
  big = await makeTar([{ name: 'blob.bin', body: randomBytes(3 * 1024 * 1024) }]);
  small = await makeTar([{ name: 'etc/hello', body: 'hello '.repeat(10_000) }]);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pre-Docker-25 `docker save` archive of one image; `diffIDs` overrides the config's. */
async function archive(name: string, layers: Buffer[], diffIDs?: string[]): Promise<string> {
  const ids = diffIDs ?? layers.map((l) => `sha256:${hex(l)}`);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: ids } }));
  const entries: TestEntry[] = layers.map((l, i) => ({ name: `${i}/layer.tar`, body: l }));
  entries.push({ name: 'config.json', body: config });
  entries.push({ name: 'manifest.json', body: JSON.stringify([{ Config: 'config.json', RepoTags: ['app:1'], Layers: layers.map((_, i) => `${i}/layer.tar`) }]) });
  const path = join(dir, name);
  await writeFile(path, await makeTar(entries));
  return path;
}

interface Recorded {
  layer: CompressedLayer;
  bytes: Buffer[];
  finished: Descriptor[];
  aborted: unknown[];
  /** Most bytes the sink ever held unwritten. */
  peak: number;
  sink: Writable;
}

/** A tee recording what it gets; `write` decides how each chunk is consumed (call `done` to take it). */
function recorder(write: (chunk: Buffer, done: (err?: Error) => void, index: number) => void, extra: { highWaterMark?: number; stallMs?: number } = {}) {
  const tees: Recorded[] = [];
  const factory = (layer: CompressedLayer): CompressedTee => {
    let index = 0;
    const rec: Recorded = {
      layer,
      bytes: [],
      finished: [],
      aborted: [],
      peak: 0,
      sink: new Writable({
        highWaterMark: extra.highWaterMark ?? 256 * 1024,
        write(chunk: Buffer, _encoding, callback) {
          rec.peak = Math.max(rec.peak, this.writableLength);
          write(
            chunk,
            (err) => {
              if (!err) rec.bytes.push(chunk);
              callback(err);
            },
            index++,
          );
        },
      }),
    };
    tees.push(rec);
    return {
      sink: rec.sink,
      ...(extra.stallMs === undefined ? {} : { stallMs: extra.stallMs }),
      finish: async (descriptor) => {
        // As a real consumer would: its own buffered writes are done before it commits.
        await finished(rec.sink);
        rec.finished.push(descriptor);
        return 'ok';
      },
      abort: (reason) => {
        rec.aborted.push(reason);
      },
    };
  };
  return { tees, factory };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function options(extra: TarballOptions = {}): TarballOptions {
  return { cacheDir: join(dir, 'cache'), tempDir: dir, ...extra };
}

/** Root digest and layer descriptors of an archive opened without a tee (the reference result). */
async function reference(path: string): Promise<{ digest: string; layers: Descriptor[] }> {
  const source = await open(path, options({ cacheDir: false }));
  try {
    const root = await source.root();
    return { digest: root.descriptor.digest, layers: (JSON.parse(Buffer.from(root.bytes).toString()) as { layers: Descriptor[] }).layers };
  } finally {
    await source.close();
  }
}

describe('tarball onCompressedStream', () => {
  it('gives a slow but healthy consumer exactly the blob bytes, within its buffer, then finish', async () => {
    const path = await archive('healthy.tar', [big, small]);
    const want = await reference(path);
    for (const cacheDir of [join(dir, 'cache-healthy'), false] as const) {
      const { tees, factory } = recorder((_chunk, done) => setTimeout(done, 2));
      // Answered asynchronously once (as pushArchive does after a HEAD), synchronously the other time.
      const onCompressedStream = cacheDir === false ? factory : async (layer: CompressedLayer) => factory(layer);
      const source = await open(path, options({ cacheDir, onCompressedStream }));
      try {
        assert.equal((await source.root()).descriptor.digest, want.digest);
        assert.equal(tees.length, 2);
        for (const layer of want.layers) {
          const rec = tees.find((t) => t.finished[0]?.digest === layer.digest);
          assert.ok(rec, `a tee finished with ${layer.digest}`);
          assert.deepEqual(rec.finished, [layer]);
          assert.deepEqual(rec.aborted, []);
          const teed = Buffer.concat(rec.bytes);
          assert.equal(sha256(teed), layer.digest);
          assert.deepEqual(teed, await readAll(await source.blob(layer)));
          // Backpressure: the sink never held more than its buffer plus one compressed block.
          assert.ok(rec.peak <= 256 * 1024 + 1.1 * 1024 * 1024, `peak ${rec.peak}`);
        }
        assert.deepEqual(tees.map((t) => t.layer).sort((a, b) => b.size - a.size), [
          { diffID: `sha256:${hex(big)}`, size: big.length },
          { diffID: `sha256:${hex(small)}`, size: small.length },
        ]);
      } finally {
        await source.close();
      }
    }
    // Warm cache: nothing is compressed, so nothing is teed.
    const { tees, factory } = recorder((_chunk, done) => done());
    const warm = await open(path, options({ cacheDir: join(dir, 'cache-healthy'), onCompressedStream: factory }));
    assert.equal((await warm.root()).descriptor.digest, want.digest);
    assert.equal(warm.stats.cached, 2);
    await warm.close();
    assert.equal(tees.length, 0);
  });

  it('detaches a consumer that fails, stalls or cannot start (sync or async); compression and digests are unchanged', async () => {
    const path = await archive('detach.tar', [big]);
    const want = await reference(path);
    const failing = recorder((_chunk, done, i) => (i === 1 ? done(new Error('upload broke')) : done()));
    const stalled = recorder(() => undefined, { stallMs: 50 });
    const cases: [string, TarballOptions['onCompressedStream'], () => Recorded[]][] = [
      ['failing', failing.factory, () => failing.tees],
      ['stalled', stalled.factory, () => stalled.tees],
      [
        'throwing',
        () => {
          throw new Error('no session');
        },
        () => [],
      ],
      [
        'rejecting',
        async () => {
          await new Promise((resolve) => setImmediate(resolve));
          throw new Error('the registry said no');
        },
        () => [],
      ],
    ];
    for (const [label, factory, tees] of cases) {
      const source = await open(path, options({ cacheDir: false, onCompressedStream: factory }));
      try {
        const root = await source.root();
        assert.equal(root.descriptor.digest, want.digest, label);
        const layer = want.layers[0]!;
        assert.equal(sha256(await readAll(await source.blob(layer))), layer.digest, label);
        for (const rec of tees()) {
          assert.deepEqual(rec.finished, [], `${label}: a detached tee is never finished`);
          assert.equal(rec.aborted.length, 1, `${label}: aborted once`);
          assert.ok(Buffer.concat(rec.bytes).length < layer.size, `${label}: got only part of the blob`);
        }
        if (label === 'stalled') assert.match(String(tees()[0]!.aborted[0]), /took no bytes for 50 ms/);
        if (label === 'failing') assert.match(String(tees()[0]!.aborted[0]), /upload broke/);
      } finally {
        await source.close();
      }
    }
    assert.equal(failing.tees.length, 1);
    assert.equal(stalled.tees.length, 1);
  });

  it('keeps a slow consumer that is still taking bytes, even when a drain takes longer than stallMs', async () => {
    const path = await archive('slow.tar', [big]);
    const want = await reference(path);
    // The compressed bytes come in ~1 MiB pieces; the buffer holds three, and each takes 30 ms: a full
    // buffer drains in ~90 ms, past the 60 ms stall window, but bytes move within every window.
    const slow = recorder((_chunk, done) => setTimeout(() => done(), 30), { highWaterMark: 3 * 1024 * 1024, stallMs: 60 });
    const source = await open(path, options({ cacheDir: false, onCompressedStream: slow.factory }));
    try {
      const root = await source.root();
      assert.equal(root.descriptor.digest, want.digest);
      const layer = want.layers[0]!;
      const rec = slow.tees[0]!;
      assert.deepEqual(rec.aborted, [], 'not detached');
      assert.deepEqual(rec.finished.map((d) => d.digest), [layer.digest]);
      assert.equal(sha256(Buffer.concat(rec.bytes)), layer.digest, 'every byte, in order');
      assert.ok(rec.peak > 0);
    } finally {
      await source.close();
    }
  });

  it('gives already-gzipped layers no tee', async () => {
    const gz = gzipSync(small);
    const path = await archive('gz.tar', [gz], [`sha256:${hex(small)}`]);
    const { tees, factory } = recorder((_chunk, done) => done());
    const source = await open(path, options({ onCompressedStream: factory }));
    await source.root();
    assert.equal(source.stats.passedThrough, 1);
    await source.close();
    assert.equal(tees.length, 0);
  });

  it('aborts the tee of a layer that fails its diff_id, and caches nothing', async () => {
    const cacheDir = join(dir, 'cache-bad');
    const path = await archive('bad.tar', [big], [`sha256:${hex('something else')}`]);
    const { tees, factory } = recorder((_chunk, done) => done());
    const source = await open(path, options({ cacheDir, onCompressedStream: factory }));
    const err = await errorOf(source.root());
    await source.close();
    assert.equal(err.code, 'SLIPWAY_DIGEST_MISMATCH');
    assert.equal(tees.length, 1);
    assert.deepEqual(tees[0]!.finished, []);
    assert.equal(tees[0]!.aborted.length, 1);
    assert.deepEqual(await readdir(join(cacheDir, 'layers')), []);
  });

  it('cancelled while the tee holds compression: the tee is aborted and no file is left', async () => {
    const cacheDir = join(dir, 'cache-cancel');
    const path = await archive('cancel.tar', [big]);
    const controller = new AbortController();
    // Takes the first chunk, then never drains: compression waits (stallMs is far away) until cancelled.
    const { tees, factory } = recorder((_chunk, done, i) => {
      if (i === 0) done();
      else setImmediate(() => controller.abort(new Error('user cancelled')));
    }, { highWaterMark: 1, stallMs: 60_000 });
    const source = await open(path, options({ cacheDir, onCompressedStream: factory }));
    const started = Date.now();
    await assert.rejects(source.root({ signal: controller.signal }));
    await source.close();
    assert.ok(Date.now() - started < 10_000, 'cancelling did not wait for the stall bound');
    assert.equal(tees.length, 1);
    assert.deepEqual(tees[0]!.finished, []);
    assert.equal(tees[0]!.aborted.length, 1);
    const left = await readdir(join(cacheDir, 'layers'));
    assert.deepEqual(left, [], `left in the cache: ${left.join(', ')}`);
  });
});
