import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorOf } from '../testing/rejection.js';
import { TokenCache, type FetchedToken } from './tokens.js';

/** An exchange the test settles by hand, recording the signal it ran under. */
function exchange() {
  const calls: { signal: AbortSignal; resolve: (t: FetchedToken) => void; reject: (e: unknown) => void }[] = [];
  const fetch = (signal: AbortSignal) =>
    new Promise<FetchedToken>((resolve, reject) => {
      calls.push({ signal, resolve, reject });
    });
  return { calls, fetch };
}

describe('TokenCache', () => {
  it('shares one exchange between callers; one caller aborting ends only its own wait', async () => {
    const cache = new TokenCache();
    const { calls, fetch } = exchange();
    const leaving = new AbortController();
    const a = cache.get('k', fetch, leaving.signal);
    const b = cache.get('k', fetch);
    await Promise.resolve();
    assert.equal(calls.length, 1, 'one exchange');
    leaving.abort(new Error('caller A gave up'));
    assert.equal((await errorOf(a)).code, 'SLIPWAY_ABORTED');
    assert.equal(calls[0]!.signal.aborted, false, 'the exchange goes on for B');
    calls[0]!.resolve({ token: 't1', expiresInMs: 60_000 });
    assert.equal(await b, 't1');
    assert.equal(await cache.get('k', fetch), 't1', 'cached');
    assert.equal(calls.length, 1);
  });

  it('cancels the exchange when every caller has gone, and starts a new one for the next', async () => {
    const cache = new TokenCache();
    const { calls, fetch } = exchange();
    const one = new AbortController();
    const two = new AbortController();
    const a = cache.get('k', fetch, one.signal);
    const b = cache.get('k', fetch, two.signal);
    await Promise.resolve();
    one.abort();
    two.abort();
    await Promise.allSettled([a, b]);
    assert.equal(calls[0]!.signal.aborted, true);
    calls[0]!.reject(new Error('aborted'));
    const c = cache.get('k', fetch);
    await Promise.resolve();
    assert.equal(calls.length, 2);
    calls[1]!.resolve({ token: 't2', expiresInMs: 60_000 });
    assert.equal(await c, 't2');
  });

  it('forgets a failed exchange, and a token once it expires', async () => {
    let now = 1000;
    const cache = new TokenCache(() => now);
    const { calls, fetch } = exchange();
    const failed = cache.get('k', fetch);
    await Promise.resolve();
    calls[0]!.reject(new Error('realm said no'));
    await assert.rejects(failed, /realm said no/);
    const second = cache.get('k', fetch);
    await Promise.resolve();
    calls[1]!.resolve({ token: 't', expiresInMs: 500 });
    assert.equal(await second, 't');
    now += 499;
    assert.equal(await cache.get('k', fetch), 't');
    now += 1;
    const third = cache.get('k', fetch);
    await Promise.resolve();
    assert.equal(calls.length, 3, 'expired: exchanged again');
    calls[2]!.resolve({ token: 'u', expiresInMs: 500 });
    assert.equal(await third, 'u');
  });

  it('forgets expired tokens of other keys when it fetches a new one (a client pushing to many repositories)', async () => {
    let now = 1000;
    const cache = new TokenCache(() => now);
    for (let i = 0; i < 50; i++) assert.equal(await cache.get(`repo-${i}`, async () => ({ token: `t${i}`, expiresInMs: 500 })), `t${i}`);
    assert.equal(cache.size, 50);
    now += 400;
    await cache.get('fresh-a', async () => ({ token: 'a', expiresInMs: 500 }));
    assert.equal(cache.size, 51, 'none had expired yet');
    now += 100;
    await cache.get('fresh-b', async () => ({ token: 'b', expiresInMs: 500 }));
    assert.equal(cache.size, 2, 'the 50 expired ones went; the live one and the new one stay');
    assert.equal(await cache.get('fresh-a', async () => assert.fail('still cached')), 'a');
  });

  it('drops a rejected token only while it is still the cached one, and says whether it had worked', async () => {
    const cache = new TokenCache();
    let serial = 0;
    const fetch = async () => ({ token: `t${++serial}`, expiresInMs: 60_000 });
    const first = await cache.lease('k', fetch);
    const alsoFirst = await cache.lease('k', fetch);
    assert.equal(alsoFirst.token, 't1', 'shared');
    cache.accept(first);
    assert.equal(cache.reject(first), true, 'it had been accepted');
    const second = await cache.lease('k', fetch);
    assert.equal(second.token, 't2', 'a fresh token after the 401');
    // A request still in flight with t1 sees its 401 later: t2 must survive it.
    assert.equal(cache.reject(alsoFirst), true);
    assert.equal((await cache.lease('k', fetch)).token, 't2');
    assert.equal(cache.reject(second), false, 't2 was never accepted');
    assert.equal((await cache.lease('k', fetch)).token, 't3');
  });
});
