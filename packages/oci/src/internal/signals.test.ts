import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
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
});
