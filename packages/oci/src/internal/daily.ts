/**
 * Housekeeping that runs at most once a day per directory, whoever triggers it (the layer cache's
 * prune, the context cache's): a `.pruned` stamp in the directory records the last run.
 * @module
 */
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const dayMs = 24 * 3600 * 1000;

/**
 * Runs `task` unless it ran for `dir` less than a day ago. The stamp is written first, so a run that
 * fails or is killed is not retried by every caller that day. A directory that does not exist has
 * nothing to tidy: nothing runs and nothing is created.
 */
export async function atMostDaily(dir: string, task: () => Promise<unknown>): Promise<void> {
  const stamp = join(dir, '.pruned');
  const info = await stat(stamp).catch(() => undefined);
  if (info && Date.now() - info.mtimeMs < dayMs) return;
  if (!(await stat(dir).catch(() => undefined))) return;
  await writeFile(stamp, '');
  await task();
}
