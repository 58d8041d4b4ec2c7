import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { createGzip } from 'node:zlib';
import { SlipwayError } from '../errors.js';
import { makeTar, type TestEntry } from './tar-fixtures.js';
import { indexTar, normaliseEntryName, openEntry, readEntry, requireEntry, resolveEntry, spoolTransform } from './tar-index.js';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(SlipwayError.is(err), `want a SlipwayError, got ${String(err)}`);
    return `${err.code}: ${err.message}`;
  }
  assert.fail('expected a rejection');
}

describe('indexTar', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-tar-index-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('records data offsets that read back the exact bytes, across pax and long-name headers', async () => {
    const longName = `${'d'.repeat(120)}/${'f'.repeat(150)}`;
    const big = randomBytes(700_001);
    const entries: TestEntry[] = [
      { name: './', type: 'directory' },
      { name: './a.txt', body: 'hello' },
      { name: 'empty', body: '' },
      { name: longName, body: 'long name body' },
      { name: 'dir/', type: 'directory' },
      { name: 'dir/big.bin', body: big },
      { name: 'dir/ü-unicode', body: 'pax path' },
    ];
    const file = join(dir, 'a.tar');
    await writeFile(file, await makeTar(entries));
    const index = await indexTar(Readable.from([await readFile(file)]), { archive: 'a.tar' });
    assert.deepEqual([...index.entries.keys()].sort(), ['a.txt', 'dir', 'dir/big.bin', 'dir/ü-unicode', 'empty', longName].sort());
    for (const e of entries.filter((x) => x.body !== undefined)) {
      const entry = requireEntry(index, e.name, 'a.tar', 'file');
      const chunks: Buffer[] = [];
      for await (const chunk of openEntry(file, entry)) chunks.push(chunk as Buffer);
      assert.deepEqual(Buffer.concat(chunks), Buffer.from(e.body!), e.name);
      assert.deepEqual(await readEntry(file, entry, 1 << 20, 'a.tar'), Buffer.from(e.body!));
    }
  });

  it('spools a gunzipped stream to a file whose offsets match the index', async () => {
    const tar = await makeTar([{ name: 'x', body: randomBytes(5000) }, { name: 'y', body: 'why' }]);
    const spool = join(dir, 'spool.tar');
    const gz = Readable.from([tar]).pipe(createGzip());
    const { createGunzip } = await import('node:zlib');
    const index = await indexTar(gz.pipe(createGunzip()), { archive: 'x.tar.gz', spoolTo: spool });
    assert.deepEqual(await readFile(spool), tar);
    assert.equal((await readEntry(spool, requireEntry(index, 'y', 'x', 'file'), 100, 'x')).toString(), 'why');
  });

  it('follows relative symlinks and hard links inside the archive, as docker save writes them', async () => {
    const file = join(dir, 'links.tar');
    await writeFile(
      file,
      await makeTar([
        { name: 'aaa/layer.tar', body: 'layer' },
        { name: 'bbb/layer.tar', type: 'symlink', linkname: '../aaa/layer.tar' },
        { name: 'ccc/layer.tar', type: 'link', linkname: 'aaa/layer.tar' },
      ]),
    );
    const index = await indexTar(Readable.from([await readFile(file)]), { archive: 'links.tar' });
    assert.equal(resolveEntry(index, 'bbb/layer.tar', 'links.tar')?.name, 'aaa/layer.tar');
    assert.equal(resolveEntry(index, 'ccc/layer.tar', 'links.tar')?.name, 'aaa/layer.tar');
    assert.equal(resolveEntry(index, 'nope', 'links.tar'), undefined);
  });

  const bad: [string, TestEntry[], RegExp][] = [
    ['a ".." component', [{ name: 'ok', body: '1' }, { name: 'blobs/../../etc/passwd', body: 'x' }], /"\.\." path component/],
    ['an absolute path', [{ name: '/etc/passwd', body: 'x' }], /absolute path/],
    ['a duplicate entry', [{ name: 'manifest.json', body: '[]' }, { name: './manifest.json', body: '[{}]' }], /"manifest.json" appears more than once/],
  ];
  for (const [what, entries, pattern] of bad) {
    it(`refuses an archive with ${what}`, async () => {
      const message = await codeOf(indexTar(Readable.from([await makeTar(entries)]), { archive: 'bad.tar' }));
      assert.match(message, /^SLIPWAY_INVALID_ARCHIVE: invalid archive "bad.tar"/);
      assert.match(message, pattern);
    });
  }

  it('refuses a link or directory whose header claims data: Go\'s reader (docker load, skopeo) would parse those bytes as entries', async () => {
    const tar = await makeTar([
      { name: 'pad', type: 'symlink', linkname: 'target' },
      { name: 'next', body: 'x'.repeat(600) },
    ]);
    // The symlink's header (the first block) now says 512 bytes: tar-stream would skip the next header.
    tar.write('00000001000\0', 124, 'latin1');
    tar.write('        ', 148, 'latin1');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += tar[i]!;
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    assert.match(await codeOf(indexTar(Readable.from([tar]), { archive: 'x.tar' })), /^SLIPWAY_INVALID_ARCHIVE: .*entry "pad" is a symbolic link whose header claims 512 bytes of data/);
  });

  it('ends at the end-of-archive marker, as docker load and skopeo read: a second tar after it is not read, trailing bytes are ignored', async () => {
    const first = await makeTar([{ name: 'manifest.json', body: '[]' }]);
    const second = await makeTar([{ name: 'layer.tar', body: 'only after the marker' }]);
    const concatenated = join(dir, 'concatenated.tar');
    await writeFile(concatenated, Buffer.concat([first, second]));
    const read = await indexTar(Readable.from([await readFile(concatenated)]), { archive: 'c.tar', readBack: concatenated });
    assert.deepEqual([...read.entries.keys()], ['manifest.json']);
    for (const trailer of ['garbage!', 'x'.repeat(2000)]) {
      const trailing = join(dir, 'trailing.tar');
      await writeFile(trailing, Buffer.concat([first, Buffer.from(trailer)]));
      const index = await indexTar(Readable.from([await readFile(trailing)]), { archive: 't.tar', readBack: trailing });
      assert.deepEqual([...index.entries.keys()], ['manifest.json'], `${trailer.length} bytes after the marker`);
    }
    // A second tar and then bytes tar-stream cannot parse: still only the first tar's entries.
    const both = join(dir, 'both-and-garbage.tar');
    await writeFile(both, Buffer.concat([first, second, Buffer.alloc(512, 0x78)]));
    assert.deepEqual([...(await indexTar(Readable.from([await readFile(both)]), { archive: 'b.tar', readBack: both })).entries.keys()], ['manifest.json']);
    // Without the marker, bytes that are not a header are still an error.
    const cut = join(dir, 'cut.tar');
    await writeFile(cut, Buffer.concat([first.subarray(0, first.length - 1024), Buffer.from('x'.repeat(2000))]));
    assert.match(await codeOf(indexTar(Readable.from([await readFile(cut)]), { archive: 'cut.tar', readBack: cut })), /^SLIPWAY_INVALID_ARCHIVE/);
  });

  it('names a spool it cannot write as the scratch copy failing, not as the archive being cut short', async () => {
    // The spool's directory is gone: its open fails, as a full disk's writes do (e2e: a full tmpfs).
    const tar = await makeTar([{ name: 'x', body: randomBytes(300_000) }]);
    const message = await codeOf(indexTar(Readable.from([tar]), { archive: '/dev/stdin', spoolTo: join(dir, 'gone', 'spool', 'archive.tar') }));
    assert.match(message, /^SLIPWAY_IO: archive "\/dev\/stdin": keeping its scratch copy under ".*gone" failed: .*ENOENT/);
  });

  it('refuses a truncated tar, naming it truncated', async () => {
    const tar = await makeTar([{ name: 'big', body: randomBytes(10_000) }]);
    const message = await codeOf(indexTar(Readable.from([tar.subarray(0, 4096)]), { archive: 't.tar' }));
    assert.match(message, /SLIPWAY_INVALID_ARCHIVE: .*truncated/);
  });

  it('refuses bytes that are not a tar', async () => {
    const message = await codeOf(indexTar(Readable.from([randomBytes(4096)]), { archive: 'noise' }));
    assert.match(message, /SLIPWAY_INVALID_ARCHIVE: .*not a tar/);
    // A short text file is no tar cut short.
    assert.match(await codeOf(indexTar(Readable.from([Buffer.from('hello tar\n')]), { archive: 'note.txt' })), /SLIPWAY_INVALID_ARCHIVE: invalid archive "note.txt": not a tar: 10 bytes, less than one 512-byte tar header$/);
  });

  it('refuses links that leave the archive, dangle or loop', async () => {
    const tar = await makeTar([
      { name: 'escape', type: 'symlink', linkname: '../../etc/passwd' },
      { name: 'absolute', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'dangling', type: 'symlink', linkname: 'nothing-here' },
      { name: 'loop1', type: 'symlink', linkname: 'loop2' },
      { name: 'loop2', type: 'symlink', linkname: 'loop1' },
      { name: 'adir', type: 'directory' },
    ]);
    const index = await indexTar(Readable.from([tar]), { archive: 'l.tar' });
    for (const [name, pattern] of [
      ['escape', /leaves the archive/],
      ['absolute', /absolute path/],
      ['dangling', /points at nothing/],
      ['loop1', /loop/],
      ['adir', /is a directory, not a regular file/],
    ] as const) {
      assert.throws(() => resolveEntry(index, name, 'l.tar'), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_ARCHIVE' && pattern.test(err.message), name);
    }
  });

  it('normalises names', () => {
    assert.equal(normaliseEntryName('./a//b/./c/', 'x'), 'a/b/c');
    assert.equal(normaliseEntryName('./', 'x'), '');
  });

  it('reports an error the input stream emits while tar-stream is still loading, without crashing the process', () => {
    // A fresh process: here tar-stream is already loaded (tar-fixtures), and its first import takes
    // several event-loop turns. The input errors on the next tick (a file that vanished, a daemon
    // connection reset), before indexTar has piped it anywhere.
    const script = [
      `const { indexTar } = await import(${JSON.stringify(new URL('./tar-index.js', import.meta.url).href)});`,
      `const { Readable } = await import('node:stream');`,
      `const input = new Readable({ read() {} });`,
      `input.destroy(new Error('connection reset by peer'));`,
      `await indexTar(input, { archive: 'gone.tar' }).then(() => console.log('resolved'), (e) => console.log('rejected: ' + e.message));`,
    ].join('\n');
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout.trim(), 'rejected: connection reset by peer');
  });

  it('honours an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const input = Readable.from([Buffer.alloc(1024)]);
    const message = await codeOf(indexTar(input, { archive: 'a', signal: controller.signal }));
    assert.match(message, /^SLIPWAY_ABORTED/);
    // A file stream would hold its descriptor open until destroyed (pushes aborted at once leaked one).
    assert.equal(input.destroyed, true, 'the input is closed');
  });
});

describe('spoolTransform', () => {
  it('fails, rather than waits forever, when the spool file fails while full (a full disk)', async () => {
    // The file takes one chunk, says it is full, then fails that write: it never drains.
    const full = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, callback) {
        setImmediate(() => callback(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })));
      },
    });
    const out = new PassThrough();
    out.resume();
    const input = Readable.from([randomBytes(1024), randomBytes(1024), randomBytes(1024)]);
    await assert.rejects(pipeline(input, spoolTransform(full), out, { signal: AbortSignal.timeout(5000) }), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
  });

  it('passes every byte on and writes them all to the file', async () => {
    const written: Buffer[] = [];
    const file = new Writable({
      highWaterMark: 16,
      write(chunk: Buffer, _encoding, callback) {
        written.push(chunk);
        setImmediate(callback);
      },
    });
    const passed: Buffer[] = [];
    const out = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        passed.push(chunk);
        callback();
      },
    });
    const chunks = [randomBytes(100), randomBytes(200), randomBytes(300)];
    await pipeline(Readable.from(chunks), spoolTransform(file), out);
    assert.deepEqual(Buffer.concat(passed), Buffer.concat(chunks));
    assert.deepEqual(Buffer.concat(written), Buffer.concat(chunks));
  });
});
