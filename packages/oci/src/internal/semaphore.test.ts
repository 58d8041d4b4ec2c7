import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AbortedError } from '../errors.js';
import { Semaphore } from './semaphore.js';

describe('Semaphore', () => {
  it('never runs more than its limit and serves waiters in order', async () => {
    const semaphore = new Semaphore(2);
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        semaphore.run(async () => {
          active++;
          peak = Math.max(peak, active);
          order.push(i);
          await new Promise((resolve) => setTimeout(resolve, 5));
          active--;
        }),
      ),
    );
    assert.equal(peak, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('releases a slot once even when release is called twice', async () => {
    const semaphore = new Semaphore(1);
    const release = await semaphore.acquire();
    release();
    release();
    const a = await semaphore.acquire();
    let second = false;
    const b = semaphore.acquire().then((r) => ((second = true), r));
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(second, false);
    a();
    (await b)();
  });

  it('rejects an aborted waiter and forgets it', async () => {
    const semaphore = new Semaphore(1);
    const held = await semaphore.acquire();
    const controller = new AbortController();
    const waiting = semaphore.acquire(controller.signal);
    controller.abort();
    await assert.rejects(waiting, AbortedError);
    held();
    const next = await semaphore.acquire();
    next();
  });
});
