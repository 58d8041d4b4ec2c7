import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { atMostDaily } from './daily.js';

describe('atMostDaily', () => {
  it('runs once a day per directory, stamping before it runs; a missing directory runs nothing and stays missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-daily-'));
    try {
      let runs = 0;
      const task = async () => {
        runs += 1;
      };
      await atMostDaily(dir, task);
      await atMostDaily(dir, task);
      assert.equal(runs, 1, 'twice the same day: once');
      const yesterday = new Date(Date.now() - 25 * 3600 * 1000);
      await utimes(join(dir, '.pruned'), yesterday, yesterday);
      await atMostDaily(dir, task);
      assert.equal(runs, 2, 'a stamp older than a day: runs again');
      // A failing task keeps its stamp: not retried by every caller that day.
      const failing = join(dir, 'failing');
      await mkdir(failing);
      await assert.rejects(atMostDaily(failing, () => Promise.reject(new Error('boom'))), /boom/);
      await atMostDaily(failing, task);
      assert.equal(runs, 2);
      const missing = join(dir, 'missing');
      await atMostDaily(missing, task);
      assert.equal(runs, 2);
      await assert.rejects(stat(missing), 'no directory made for the stamp');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
