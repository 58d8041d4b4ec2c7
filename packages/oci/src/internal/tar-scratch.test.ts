import assert from 'node:assert/strict';
import fs, { createWriteStream, existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { fileReleased, makeScratch, makeStaging, removeScratch, removeScratchDirectoriesSync } from './tar-scratch.js';

test('removeScratchDirectoriesSync removes every scratch directory still held, and only those', async () => {
  const kept = await makeScratch();
  const removed = await makeScratch();
  await writeFile(join(kept, 'export.tar'), 'spooled bytes');
  await removeScratch(removed);
  removeScratchDirectoriesSync();
  assert.equal(existsSync(kept), false, 'a spool left by an interrupted run is gone');
  assert.equal(existsSync(removed), false);
  removeScratchDirectoriesSync(); // idempotent: nothing left to remove
});

test('fileReleased waits for a write stream still opening its file, so removing the file afterwards sticks', async () => {
  const dir = await makeScratch();
  try {
    const path = join(dir, 'layer.gz.tmp-x');
    // The open is held back, as a busy libuv thread pool does: the failing stage ends the pipeline first.
    const slowOpen = { ...fs, open: (...args: Parameters<typeof fs.open>) => void setTimeout(() => fs.open(...args), 50) };
    const file = createWriteStream(path, { flags: 'wx', fs: slowOpen });
    const failing = new Transform({ transform: (_chunk, _encoding, callback) => setImmediate(() => callback(new Error('stage failed'))) });
    await assert.rejects(pipeline(Readable.from([Buffer.from('layer bytes')]), failing, file), /stage failed/);
    await fileReleased(file);
    await rm(path, { force: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(existsSync(path), false, 'the temp file was created after it was removed');
    await fileReleased(file); // already released: returns at once
  } finally {
    await removeScratch(dir);
  }
});

test('a new staging directory sweeps the ones this host\'s killed processes left, and nothing else', async () => {
  const base = await makeScratch();
  try {
    const host = hostname().replace(/[^A-Za-z0-9.]/g, '_');
    // A pid certainly not running: a process that has exited.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    const make = async (name: string, old: boolean, writing = false) => {
      const dir = join(base, name);
      const blob = join(dir, 'layout', 'blobs', 'sha256', 'a'.repeat(64));
      await mkdir(join(dir, 'layout', 'blobs', 'sha256'), { recursive: true });
      await writeFile(blob, 'half an image');
      if (old) for (const path of [blob, join(dir, 'layout', 'blobs', 'sha256'), join(dir, 'layout'), dir]) await utimes(path, twoHoursAgo, twoHoursAgo);
      // A blob still being written: only the file itself is touched.
      if (writing) await writeFile(blob, 'more of it');
    };
    await make(`slipway-staging-${host}-${dead}-abc123`, true); // killed: goes
    await make(`slipway-staging-${host}-${dead}-fresh1`, false); // touched lately: stays
    await make(`slipway-staging-${host}-${dead}-write1`, true, true); // a blob written to lately: stays
    await make(`slipway-staging-other.host-${dead}-abc123`, true); // another host's (a shared volume): stays
    await make(`slipway-staging-${host}-${process.ppid}-live12`, true); // its process runs: stays
    await make('slipway-abc123', true); // not a staging name: stays
    await mkdir(join(base, 'unrelated'));
    const made = await makeStaging(base, 'the test directory');
    assert.match(made, new RegExp(`slipway-staging-${host.replace(/\./g, '\\.')}-${process.pid}-[A-Za-z0-9]{6}$`));
    assert.deepEqual(
      (await readdir(base)).sort(),
      [`slipway-staging-${host}-${dead}-fresh1`, `slipway-staging-${host}-${dead}-write1`, `slipway-staging-other.host-${dead}-abc123`, `slipway-staging-${host}-${process.ppid}-live12`, 'slipway-abc123', 'unrelated', made.slice(base.length + 1)].sort(),
    );
    await removeScratch(made);
  } finally {
    await removeScratch(base);
  }
});
