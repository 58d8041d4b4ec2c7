import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AbortedError, InvalidArgumentError, SlipwayError } from '../errors.js';
import { createParallelGzip, defaultBlockSize, looksIncompressible, parallelGzipFormat, type ParallelGzipOptions } from './parallel-gzip.js';

const MiB = 1 << 20;

/** Text-like bytes: words from a small vocabulary with numbers, compressible like source or logs. */
function textLike(size: number, seed = 1): Buffer {
  const words = ['layer', 'registry', 'manifest', 'digest', 'sha256', 'blob', 'config', 'tar', 'gzip', 'usr/lib', 'export', 'const', 'function', 'return', '{', '}', '\n'];
  const out = Buffer.alloc(size);
  let o = 0;
  let x = seed;
  while (o < size) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const word = `${words[x % words.length]!}${x % 7 === 0 ? String(x % 1000) : ''} `;
    o += out.write(word, o);
  }
  return out;
}

function chunked(bytes: Buffer, size: number): Readable {
  return Readable.from((function* () {
    for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
  })());
}

async function gzipOf(bytes: Buffer, options: ParallelGzipOptions = {}, chunk = 64 * 1024): Promise<Buffer> {
  const gz = createParallelGzip(options);
  const out = buffer(gz);
  await pipeline(chunked(bytes, chunk), gz);
  return out;
}

const haveGzip = existsSync('/usr/bin/gzip') && existsSync('/usr/bin/zcat') && existsSync('/usr/bin/gunzip');

/** Decompresses with the real gzip binaries (gzip -t, gunzip -c, zcat) and checks each gives `want`. */
function checkWithBinaries(gz: Buffer, want: Buffer): void {
  const test = spawnSync('/usr/bin/gzip', ['-t'], { input: gz });
  assert.equal(test.status, 0, `gzip -t: ${test.stderr.toString()}`);
  for (const [cmd, args] of [['/usr/bin/gunzip', ['-c']], ['/usr/bin/zcat', []]] as const) {
    const r = spawnSync(cmd, args, { input: gz, maxBuffer: 256 * MiB });
    assert.equal(r.status, 0, `${cmd}: ${r.stderr.toString()}`);
    assert.ok(r.stdout.equals(want), `${cmd} reproduces the input (${r.stdout.length} vs ${want.length} bytes)`);
  }
}

describe('parallel gzip', () => {
  const small = 64 * 1024;
  const random = randomBytes(3 * MiB + 12345);
  const text = textLike(3 * MiB + 777);
  // Alternating random and text stretches, with boundaries inside blocks.
  const mixed = Buffer.concat([randomBytes(700_000), textLike(900_000, 7), randomBytes(1_500_000), textLike(300_000, 9), Buffer.alloc(200_000)]);
  const cases: [string, Buffer, ParallelGzipOptions?][] = [
    ['empty input', Buffer.alloc(0)],
    ['one byte', Buffer.from([0x42])],
    ['exactly one small block', randomBytes(small), { blockSize: small }],
    ['exactly three small blocks of text', textLike(3 * small), { blockSize: small }],
    ['exactly two default blocks', Buffer.concat([randomBytes(defaultBlockSize), textLike(defaultBlockSize)])],
    ['random (incompressible)', random],
    ['highly compressible (zeros)', Buffer.alloc(2 * MiB + 5)],
    ['text-like', text],
    ['mixed random, text and zeros', mixed],
    ['mixed, small blocks, level 1', mixed, { blockSize: small, level: 1 }],
    ['mixed, level 9', mixed, { level: 9 }],
  ];

  for (const [name, input, options] of cases) {
    it(`round-trips ${name} through Node's gunzip and the gzip binaries`, async (t) => {
      const gz = await gzipOf(input, options);
      assert.deepEqual([...gz.subarray(0, 4)], [0x1f, 0x8b, 0x08, 0x00], 'gzip magic, deflate, no flags');
      assert.ok(gunzipSync(gz).equals(input), 'Node gunzip reproduces the input');
      assert.equal(gz.readUInt32LE(gz.length - 4), input.length % 2 ** 32, 'ISIZE');
      if (!haveGzip) return t.skip('GZIP BINARIES MISSING: /usr/bin/gzip, gunzip or zcat not installed (apt-get install gzip)');
      checkWithBinaries(gz, input);
    });
  }

  it('is deterministic: same bytes on every run and whatever the input chunking', async () => {
    const a = await gzipOf(mixed, {}, 64 * 1024);
    const b = await gzipOf(mixed, {}, 64 * 1024);
    const c = await gzipOf(mixed, {}, 1000);
    const d = await gzipOf(mixed, {}, 3 * MiB);
    assert.ok(a.equals(b), 'two runs');
    assert.ok(a.equals(c), 'small chunks');
    assert.ok(a.equals(d), 'one big chunk');
    assert.ok(!a.equals(await gzipOf(mixed, { level: 1 })), 'the level changes the bytes (it is part of the cache key)');
    assert.match(parallelGzipFormat, /block=1048576/);
  });

  it('stores incompressible blocks (framing only) and compresses the rest close to one-stream level 6', async () => {
    const gz = await gzipOf(random);
    const blocks = Math.ceil(random.length / defaultBlockSize);
    let framing = 0;
    for (let b = 0; b < blocks; b++) framing += 5 * Math.ceil(Math.min(defaultBlockSize, random.length - b * defaultBlockSize) / 0xffff);
    assert.equal(gz.length, 10 + random.length + framing + 8, 'header + stored blocks + trailer');

    const ours = (await gzipOf(text)).length;
    const zlib6 = gzipSync(text, { level: 6 }).length;
    assert.ok(ours < text.length / 3, `text compresses (${ours} of ${text.length})`);
    assert.ok(ours <= zlib6 * 1.01, `within 1 % of one-stream level 6 (${ours} vs ${zlib6})`);
  });

  it('probes blocks: random is incompressible; text, zeros and repeated random are not', () => {
    assert.equal(looksIncompressible(randomBytes(MiB)), true);
    assert.equal(looksIncompressible(randomBytes(8192)), true);
    // Too short for the histogram to mean anything: left to zlib, which stores it if it must.
    assert.equal(looksIncompressible(randomBytes(100)), false);
    assert.equal(looksIncompressible(textLike(MiB)), false);
    assert.equal(looksIncompressible(Buffer.alloc(MiB)), false);
    // A flat histogram but LZ-redundant: 4 KiB of random bytes repeated.
    const pattern = randomBytes(4096);
    assert.equal(looksIncompressible(Buffer.concat(Array.from({ length: 256 }, () => pattern))), false);
    assert.equal(looksIncompressible(Buffer.alloc(0)), false);
  });

  it('keeps memory flat: reads at most a few blocks ahead of a stalled reader, then streams on', async (t) => {
    const rnd = randomBytes(MiB);
    const txt = textLike(MiB, 3);
    const total = 64;
    let produced = 0;
    let i = 0;
    const source = new Readable({
      highWaterMark: 64 * 1024,
      read() {
        if (i === total) return void this.push(null);
        // Mostly random (the stored path, fast), every 4th MiB compressible (the zlib path).
        const chunk = i++ % 4 === 0 ? txt : rnd;
        produced += chunk.length;
        this.push(chunk);
      },
    });
    let delivered = 0;
    let release: (() => void) | undefined;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        delivered += chunk.length;
        // The first chunk is held until the test lets go: a registry that stopped reading.
        if (delivered === chunk.length) void stalled.then(() => callback());
        else callback();
      },
    });
    const done = pipeline(source, createParallelGzip(), sink);
    let last = -1;
    while (produced !== last) {
      last = produced;
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    t.diagnostic(`read ahead of a stalled reader: ${produced / MiB} MiB`);
    assert.ok(produced <= 16 * MiB, `read ${produced / MiB} MiB ahead of a stalled reader (bound: 16 MiB)`);
    release?.();
    await done;
    assert.equal(produced, total * MiB);
    assert.ok(delivered > (total * 3) / 4 * MiB, 'everything went through once released');
  });

  it('honours an abort signal (before and during) and rejects bad options', async () => {
    const pre = new AbortController();
    pre.abort();
    await assert.rejects(pipeline(chunked(text, 64 * 1024), createParallelGzip({ signal: pre.signal }), new Writable({ write: (_c, _e, cb) => cb() })), (err: unknown) => {
      assert.ok(err instanceof AbortedError);
      return true;
    });

    const during = new AbortController();
    let written = 0;
    const started = Date.now();
    const endless = Readable.from((function* () {
      for (;;) yield textLike(256 * 1024, 5);
    })());
    await assert.rejects(
      pipeline(endless, createParallelGzip({ signal: during.signal }), new Writable({
        write(chunk: Buffer, _e, cb) {
          written += chunk.length;
          if (written > 100_000) during.abort(new Error('user cancelled'));
          cb();
        },
      })),
      (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_ABORTED',
    );
    assert.ok(Date.now() - started < 5000, 'stopped promptly');

    // pipeline's own signal works too.
    const viaPipeline = new AbortController();
    setTimeout(() => viaPipeline.abort(), 20);
    await assert.rejects(pipeline(Readable.from((function* () { for (;;) yield randomBytes(64 * 1024); })()), createParallelGzip(), new Writable({ write: (_c, _e, cb) => setImmediate(cb) }), { signal: viaPipeline.signal }), { name: 'AbortError' });

    assert.throws(() => createParallelGzip({ level: 0 }), InvalidArgumentError);
    assert.throws(() => createParallelGzip({ level: 10 }), InvalidArgumentError);
    assert.throws(() => createParallelGzip({ blockSize: 0 }), InvalidArgumentError);
    assert.throws(() => createParallelGzip({ maxInFlight: 0 }), InvalidArgumentError);
  });
});
