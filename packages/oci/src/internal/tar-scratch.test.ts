import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeScratch, removeScratch, removeScratchDirectoriesSync } from './tar-scratch.js';

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
