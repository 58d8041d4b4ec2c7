import assert from 'node:assert/strict';
import fs, { createWriteStream, existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { fileReleased, makeScratch, removeScratch, removeScratchDirectoriesSync } from './tar-scratch.js';

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
