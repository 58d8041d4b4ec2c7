import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AbortedError } from '../errors.js';
import { SharedTask, SharedTaskMap } from './shared-task.js';

/** A task that resolves when told to, and records the signal it ran under. */
function deferredTask() {
  let runs = 0;
  let release: ((value: string) => void) | undefined;
  let signal: AbortSignal | undefined;
  const task = new SharedTask<string>((s) => {
    runs++;
    signal = s;
    return new Promise<string>((resolve, reject) => {
      release = resolve;
      s.addEventListener('abort', () => reject(new AbortedError('task aborted', { cause: s.reason })), { once: true });
    });
  });
  return { task, runs: () => runs, release: (v: string) => release!(v), signal: () => signal! };
}

describe('SharedTask', () => {
  it("runs once for concurrent callers; one caller's abort leaves the others waiting", async () => {
    const d = deferredTask();
    const first = new AbortController();
    const a = d.task.get(first.signal);
    const b = d.task.get(new AbortController().signal);
    const c = d.task.get();
    first.abort(new Error('first caller gone'));
    await assert.rejects(a, (err: unknown) => err instanceof AbortedError);
    assert.equal(d.signal().aborted, false, 'the shared work goes on while others wait');
    d.release('done');
    assert.equal(await b, 'done');
    assert.equal(await c, 'done');
    assert.equal(d.runs(), 1);
  });

  it('cancels the work when every waiter has aborted, and runs afresh on the next call', async () => {
    const d = deferredTask();
    const x = new AbortController();
    const y = new AbortController();
    const a = d.task.get(x.signal);
    const b = d.task.get(y.signal);
    x.abort();
    y.abort();
    await assert.rejects(a, (err: unknown) => err instanceof AbortedError);
    await assert.rejects(b, (err: unknown) => err instanceof AbortedError);
    assert.equal(d.signal().aborted, true);
    const again = d.task.get();
    d.release('second');
    assert.equal(await again, 'second');
    assert.equal(d.runs(), 2);
  });

  it('cancel() waits for a run every caller gave up on, until it has finished cleaning up', async () => {
    let finishCleanup: (() => void) | undefined;
    const task = new SharedTask<string>(
      (s) =>
        new Promise<string>((_resolve, reject) => {
          // Aborted, the run still has files to remove before it settles.
          s.addEventListener('abort', () => (finishCleanup = () => reject(new AbortedError('task aborted'))), { once: true });
        }),
    );
    const caller = new AbortController();
    const waiting = task.get(caller.signal);
    caller.abort();
    await assert.rejects(waiting, (err: unknown) => err instanceof AbortedError);
    assert.ok(finishCleanup, 'the abandoned run was aborted');
    let cancelled = false;
    const cancelling = task.cancel().then(() => (cancelled = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(cancelled, false, 'cancel() returned while the abandoned run was still cleaning up');
    finishCleanup();
    await cancelling;
    assert.equal(cancelled, true);
  });

  it('keeps a result and forgets a failure', async () => {
    let runs = 0;
    const task = new SharedTask<number>(async () => {
      runs++;
      if (runs === 1) throw new Error('transient');
      return runs;
    });
    await assert.rejects(task.get(), /transient/);
    assert.equal(await task.get(), 2);
    assert.equal(await task.get(), 2);
    assert.equal(runs, 2);
  });

  it('fails its waiters with SLIPWAY_ABORTED when cancel() stops the work, however the work noticed', async () => {
    // Streams stopped by a signal reject with Node's bare AbortError (ABORT_ERR), not ours.
    const task = new SharedTask<string>(
      (s) =>
        new Promise<string>((_resolve, reject) => {
          s.addEventListener('abort', () => reject(Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' })), { once: true });
        }),
    );
    const withoutSignal = task.get();
    const withSignal = task.get(new AbortController().signal);
    await task.cancel();
    for (const waiting of [withoutSignal, withSignal]) {
      await assert.rejects(waiting, (err: Error & { code?: string }) => err instanceof AbortedError && err.code === 'SLIPWAY_ABORTED');
    }
  });

  it('refuses an already aborted signal without starting work', async () => {
    const d = deferredTask();
    await assert.rejects(d.task.get(AbortSignal.abort()), (err: unknown) => err instanceof AbortedError);
    assert.equal(d.runs(), 0);
  });
});

describe('SharedTaskMap', () => {
  it('shares work per key only', async () => {
    const seen: string[] = [];
    const map = new SharedTaskMap<string, string>(async (key) => {
      seen.push(key);
      return key.toUpperCase();
    });
    const results = await Promise.all([map.get('a'), map.get('a'), map.get('b')]);
    assert.deepEqual(results, ['A', 'A', 'B']);
    assert.deepEqual(seen.sort(), ['a', 'b']);
  });
});
