import assert from 'node:assert/strict';
import { getEventListeners, getMaxListeners, setMaxListeners } from 'node:events';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { linkSignals } from './signals.js';

describe('linkSignals', () => {
  it('makes nothing when one signal, or none, will do', () => {
    const a = new AbortController().signal;
    assert.equal(linkSignals().signal, undefined);
    assert.equal(linkSignals(undefined, undefined).signal, undefined);
    assert.equal(linkSignals(a).signal, a);
    assert.equal(linkSignals(a, undefined, a).signal, a, 'the same signal twice is one signal');
  });

  it('aborts with the reason of whichever signal aborts first', () => {
    for (const which of [0, 1]) {
      const controllers = [new AbortController(), new AbortController()];
      const linked = linkSignals(controllers[0]!.signal, controllers[1]!.signal);
      assert.equal(linked.signal?.aborted, false);
      controllers[which]!.abort(new Error(`reason ${which}`));
      assert.equal(linked.signal?.aborted, true);
      assert.equal((linked.signal?.reason as Error).message, `reason ${which}`);
      controllers[1 - which]!.abort(new Error('later'));
      assert.equal((linked.signal?.reason as Error).message, `reason ${which}`);
    }
  });

  it('is aborted at once when a signal already is', () => {
    const done = AbortSignal.abort(new Error('already'));
    const linked = linkSignals(new AbortController().signal, done);
    assert.equal(linked.signal?.aborted, true);
    assert.equal((linked.signal?.reason as Error).message, 'already');
  });

  it('leaves nothing on a long-lived signal once disposed, however many operations linked to it', () => {
    const longLived = new AbortController();
    for (let i = 0; i < 10_000; i++) {
      const op = new AbortController();
      const linked = linkSignals(longLived.signal, op.signal);
      linked.dispose();
      linked.dispose();
    }
    assert.equal(getEventListeners(longLived.signal, 'abort').length, 0);
    // A disposed link no longer follows: the operation is over.
    const op = new AbortController();
    const linked = linkSignals(longLived.signal, op.signal);
    linked.dispose();
    longLived.abort();
    assert.equal(linked.signal?.aborted, false);
  });

  it('unhooks from every signal once one aborted', () => {
    const a = new AbortController();
    const b = new AbortController();
    linkSignals(a.signal, b.signal);
    a.abort();
    assert.equal(getEventListeners(b.signal, 'abort').length, 0);
  });

  it('takes many operations on one signal without the MaxListenersExceededWarning, and gives the limit back', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      if (warning.name === 'MaxListenersExceededWarning') warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const client = new AbortController().signal;
      const unlimited = new AbortController().signal;
      setMaxListeners(0, unlimited);
      const links = Array.from({ length: 25 }, () => linkSignals(client, unlimited, new AbortController().signal));
      assert.equal(getEventListeners(client, 'abort').length, 25);
      assert.equal(getMaxListeners(client), 35, 'the limit rose with the listeners');
      for (const link of links) {
        link.dispose();
        link.dispose();
      }
      assert.equal(getMaxListeners(client), 10, 'and fell back once they were removed, whatever the dispose count');
      assert.equal(getEventListeners(client, 'abort').length, 0);
      // A caller's own listeners past its limit still warn: only ours are allowed for.
      for (let i = 0; i < 11; i++) client.addEventListener('abort', () => undefined);
      await turn();
      assert.equal(warnings.length, 1, warnings.map((w) => w.message).join('\n'));
      assert.match(warnings[0]!.message, /11 abort listeners/);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
