import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { errorOf } from '../testing/rejection.js';
import { makeTar } from './tar-fixtures.js';
import { indexTar, openEntry, peekEntry, readEntry, requireEntry, type TarIndex } from './tar-index.js';

const hash = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Data and holes: `[randomBytes, zeroBytes]` pairs, so a file with holes on disk can be made of it. */
function pattern(pairs: readonly (readonly [number, number])[]): Buffer {
  return Buffer.concat(pairs.flatMap(([data, hole]) => [randomBytes(data), Buffer.alloc(hole)]));
}

const gnuTar = spawnSync('tar', ['--version'], { encoding: 'utf8' }).stdout?.startsWith('tar (GNU tar)') === true;

async function index(path: string, gzipped = false): Promise<TarIndex> {
  if (!gzipped) return indexTar(createReadStream(path), { archive: path, readBack: path });
  return indexTar(createReadStream(path), { archive: path, gunzip: true, spoolTo: `${path}.spool` });
}

describe('GNU sparse tar entries', () => {
  let dir: string;
  /** Four segments or fewer: fits an old GNU header. Ends in a hole. */
  let few: Buffer;
  /** Ten segments: needs extension blocks in the old GNU format. */
  let many: Buffer;
  let holesOnDisk = false;
  let skip: string | false = false;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-tar-sparse-'));
    few = pattern([
      [10_000, 256 * 1024],
      [7_000, 128 * 1024],
    ]);
    many = pattern(Array.from({ length: 10 }, () => [8192, 65536] as const));
    await mkdir(join(dir, 'src'));
    for (const [name, bytes] of [
      ['few.bin', few],
      ['many.bin', many],
      // All holes: Docker's empty layer is 1024 zero bytes; tar --sparse stores no data for it at all.
      ['empty-layer.tar', Buffer.alloc(1024)],
      ['zeros.bin', Buffer.alloc(64 * 1024)],
    ] as const) {
      await writeFile(join(dir, `${name}.full`), bytes);
      // tar --sparse stores what the filesystem reports as holes: cp punches them for runs of zeros.
      spawnSync('cp', ['--sparse=always', join(dir, `${name}.full`), join(dir, 'src', name)]);
    }
    await writeFile(join(dir, 'src', 'after.txt'), 'the entry after the sparse ones\n');
    const onDisk = await stat(join(dir, 'src', 'few.bin')).catch(() => undefined);
    holesOnDisk = onDisk !== undefined && onDisk.blocks * 512 < few.length / 2;
    if (!gnuTar) skip = 'GNU tar is not installed (apt-get install tar): it writes the sparse archives these tests read';
    else if (!holesOnDisk) skip = `the filesystem under ${tmpdir()} keeps no holes (cp --sparse=always made none), so tar --sparse stores no map`;
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** GNU tar's own sparse archive of `files` from src/. */
  function sparseTar(name: string, formatArgs: string[], files: string[]): string {
    const path = join(dir, name);
    const made = spawnSync('tar', ['-C', join(dir, 'src'), '--sparse', ...formatArgs, '-cf', path, ...files], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    return path;
  }

  const formats: { label: string; args: string[] }[] = [
    { label: 'old GNU (typeflag S)', args: ['--format=gnu'] },
    { label: 'pax 1.0', args: ['--format=posix', '--sparse-version=1.0'] },
    { label: 'pax 0.1', args: ['--format=posix', '--sparse-version=0.1'] },
  ];

  for (const { label, args } of formats) {
    it(`${label}: reads back the file with its holes as zeros, and the entry after it`, async (t) => {
      if (skip) return t.skip(skip);
      const path = sparseTar(`few-${args.join('')}.tar`, args, ['few.bin', 'after.txt']);
      const listed = spawnSync('tar', ['-tvf', path], { encoding: 'utf8' }).stdout;
      assert.match(listed, /few\.bin/);
      for (const gzipped of [false, true]) {
        let file = path;
        if (gzipped) {
          file = `${path}.gz`;
          await writeFile(file, gzipSync(await readFile(path)));
        }
        const tar = gzipped ? `${path}.gz.spool` : path;
        const idx = await index(file, gzipped);
        const entry = requireEntry(idx, 'few.bin', file, 'file');
        assert.ok(entry.sparse, `${label}: the entry is read as sparse (else this test proves nothing)`);
        assert.ok(entry.sparse.segments.length >= 2);
        assert.equal(entry.size, few.length);
        assert.equal(hash(await readAll(openEntry(tar, entry))), hash(few), `${label}${gzipped ? ', gzipped' : ''}: the bytes are the file's`);
        assert.deepEqual(await peekEntry(tar, entry, 100), few.subarray(0, 100));
        assert.equal(hash(await readEntry(tar, entry, few.length, file)), hash(few));
        const next = requireEntry(idx, 'after.txt', file, 'file');
        assert.equal((await readEntry(tar, next, 1000, file)).toString(), 'the entry after the sparse ones\n');
      }
    });
  }

  for (const { label, args } of formats.slice(1)) {
    it(`${label}: a map of ten segments reads back whole`, async (t) => {
      if (skip) return t.skip(skip);
      const path = sparseTar(`many-${args.join('')}.tar`, args, ['many.bin', 'after.txt']);
      const idx = await index(path);
      const entry = requireEntry(idx, 'many.bin', path, 'file');
      assert.ok(entry.sparse && entry.sparse.segments.length >= 10, `${label}: ${entry.sparse?.segments.length} segments`);
      assert.equal(hash(await readAll(openEntry(path, entry))), hash(many));
      assert.equal((await readEntry(path, requireEntry(idx, 'after.txt', path, 'file'), 1000, path)).toString(), 'the entry after the sparse ones\n');
    });
  }

  for (const { label, args } of formats) {
    it(`${label}: a file that is all holes (no data stored) reads back as its zeros`, async (t) => {
      if (skip) return t.skip(skip);
      const path = sparseTar(`holes-${args.join('')}.tar`, args, ['empty-layer.tar', 'zeros.bin', 'after.txt']);
      const idx = await index(path);
      for (const [name, size] of [
        ['empty-layer.tar', 1024],
        ['zeros.bin', 64 * 1024],
      ] as const) {
        const entry = requireEntry(idx, name, path, 'file');
        assert.equal(entry.type, 'file', `${label} ${name}`);
        assert.equal(entry.size, size, `${label} ${name}`);
        assert.deepEqual(await readAll(openEntry(path, entry)), Buffer.alloc(size), `${label} ${name}`);
      }
      assert.equal((await readEntry(path, requireEntry(idx, 'after.txt', path, 'file'), 1000, path)).toString(), 'the entry after the sparse ones\n');
    });
  }

  it('old GNU with extension blocks (more than four segments): refused by name, not read wrong', async (t) => {
    if (skip) return t.skip(skip);
    for (const files of [['many.bin', 'after.txt'], ['many.bin']]) {
      const path = sparseTar(`many-gnu-${files.length}.tar`, ['--format=gnu'], files);
      const err = await errorOf(index(path));
      assert.equal(err.code, 'SLIPWAY_INVALID_ARCHIVE');
      assert.match(err.message, /sparse entry "many\.bin" has more data segments than an old GNU header holds/);
    }
  });

  it('pax 0.0 (repeated offset/numbytes records): refused by name', async (t) => {
    if (skip) return t.skip(skip);
    const path = sparseTar('few-0.0.tar', ['--format=posix', '--sparse-version=0.0'], ['few.bin']);
    const err = await errorOf(index(path));
    assert.equal(err.code, 'SLIPWAY_INVALID_ARCHIVE');
    assert.match(err.message, /"few\.bin" is in a GNU sparse format slipway does not read .*GNU\.sparse\.offset/);
  });

  // Hand-made maps (tar-stream writes the pax records): each would read back as some other file.
  const hostile: { label: string; pax: Record<string, string>; body: Buffer; want: RegExp }[] = [
    { label: 'pax 0.1 map past the real size', pax: { 'GNU.sparse.name': 'f', 'GNU.sparse.size': '10', 'GNU.sparse.map': '8,4' }, body: Buffer.alloc(4, 1), want: /past its size of 10 bytes/ },
    { label: 'pax 0.1 segments out of order', pax: { 'GNU.sparse.name': 'f', 'GNU.sparse.size': '100', 'GNU.sparse.map': '50,2,10,2' }, body: Buffer.alloc(4, 1), want: /out of order/ },
    { label: 'pax 0.1 map that accounts for other data', pax: { 'GNU.sparse.name': 'f', 'GNU.sparse.size': '100', 'GNU.sparse.map': '0,3' }, body: Buffer.alloc(4, 1), want: /accounts for 3 bytes of data, and the archive holds 4/ },
    {
      label: 'pax 0.1 entry declaring a petabyte of holes',
      pax: { 'GNU.sparse.name': 'f', 'GNU.sparse.size': String(2 ** 50), 'GNU.sparse.map': '0,4' },
      body: Buffer.alloc(4, 1),
      want: /declares 1125899906842620 bytes of holes, more than the 68719476736 slipway reads back as zeros/,
    },
    { label: 'pax 0.1 odd map', pax: { 'GNU.sparse.name': 'f', 'GNU.sparse.size': '100', 'GNU.sparse.map': '0,3,9' }, body: Buffer.alloc(3, 1), want: /odd count/ },
    { label: 'pax 0.1 non-numeric size', pax: { 'GNU.sparse.name': 'f', 'GNU.sparse.size': 'x', 'GNU.sparse.map': '0,3' }, body: Buffer.alloc(3, 1), want: /not a size/ },
    { label: 'pax 1.0 without a name', pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.realsize': '10' }, body: Buffer.alloc(512), want: /has no GNU\.sparse\.name/ },
    {
      label: 'pax 1.0 map cut short by the end of the data',
      pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'f', 'GNU.sparse.realsize': '100' },
      body: Buffer.from('3\n0\n1\n'),
      want: /sparse map of "f" is cut short/,
    },
    {
      label: 'pax 1.0 map with garbage',
      pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'f', 'GNU.sparse.realsize': '100' },
      body: Buffer.concat([Buffer.from('1\nzero\n'), Buffer.alloc(505)]),
      want: /a number in the map of sparse entry "f" is "zero"/,
    },
    {
      label: 'pax 1.0 map that accounts for other data',
      pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'f', 'GNU.sparse.realsize': '100' },
      body: Buffer.concat([Buffer.from('1\n0\n9\n'), Buffer.alloc(506), Buffer.alloc(5, 7)]),
      want: /accounts for 9 bytes of data, and the archive holds 5/,
    },
  ];
  for (const { label, pax, body, want } of hostile) {
    it(`refuses ${label}`, async () => {
      const path = join(dir, `hostile-${hash(Buffer.from(label)).slice(0, 8)}.tar`);
      await writeFile(path, await makeTar([{ name: 'GNUSparseFile.0/f', body, pax }]));
      const err = await errorOf(index(path));
      assert.equal(err.code, 'SLIPWAY_INVALID_ARCHIVE');
      assert.match(err.message, want);
    });
  }

  it('a hand-made pax 1.0 entry reads back as its map says (holes at the start, the middle and the end)', async () => {
    const map = Buffer.from('2\n3\n2\n8\n1\n');
    const body = Buffer.concat([map, Buffer.alloc(512 - map.length), Buffer.from([1, 2, 3])]);
    const path = join(dir, 'handmade-1.0.tar');
    await writeFile(path, await makeTar([{ name: 'GNUSparseFile.0/f', body, pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'f', 'GNU.sparse.realsize': '12' } }, { name: 'g', body: 'next' }]));
    const idx = await index(path);
    const entry = requireEntry(idx, 'f', path, 'file');
    assert.deepEqual([...(await readAll(openEntry(path, entry)))], [0, 0, 0, 1, 2, 0, 0, 0, 3, 0, 0, 0]);
    assert.equal((await readEntry(path, requireEntry(idx, 'g', path, 'file'), 10, path)).toString(), 'next');
  });
});
