import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError } from './errors.js';
import { backoffDelay, errnoOf, isTemporaryNetworkError, parseRetryAfter, resolveRetryOptions } from './retry.js';

describe('retry policy', () => {
  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT');
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2026 07:28:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2026 07:27:00 GMT', now), 0, 'a past date means now');
    assert.equal(parseRetryAfter(['5', '9'], now), 5000);
    assert.equal(parseRetryAfter('soon', now), undefined);
    // V8's Date.parse reads '-5' as the year -5 and '1.5' as a date: neither is a delay.
    assert.equal(parseRetryAfter('-5', now), undefined);
    assert.equal(parseRetryAfter('1.5', now), undefined);
    // The RFC 850 form is an HTTP-date too (RFC 9110 5.6.7).
    assert.equal(parseRetryAfter('Wednesday, 21-Oct-26 07:28:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });

  it('backs off exponentially with jitter under a ceiling', () => {
    const options = resolveRetryOptions({ baseDelayMs: 100, maxDelayMs: 1000 });
    assert.equal(backoffDelay(1, options, () => 0), 50);
    assert.equal(backoffDelay(1, options, () => 1), 100);
    assert.equal(backoffDelay(3, options, () => 1), 400);
    assert.equal(backoffDelay(10, options, () => 1), 1000);
    assert.equal(backoffDelay(10, options, () => 0), 500);
  });

  it('classifies socket errors through causes', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    assert.equal(errnoOf(new Error('wrapped', { cause: reset })), 'ECONNRESET');
    assert.equal(isTemporaryNetworkError(new Error('wrapped', { cause: reset })), true);
    assert.equal(isTemporaryNetworkError(Object.assign(new Error('x'), { code: 'UND_ERR_SOCKET' })), true);
    assert.equal(isTemporaryNetworkError(Object.assign(new Error('x'), { code: 'ENOTFOUND' })), false);
    assert.equal(isTemporaryNetworkError(new Error('plain')), false);
  });

  it('marks 408, 429, 5xx and TOOMANYREQUESTS/UNAVAILABLE as temporary, not 501 or 4xx', () => {
    const make = (status: number, code?: string) =>
      new RegistryError({ status, method: 'GET', url: 'http://r/v2/', ...(code ? { errors: [{ code, message: '' }] } : {}) });
    assert.deepEqual([408, 429, 500, 502, 503, 504].map((s) => make(s).temporary), [true, true, true, true, true, true]);
    assert.deepEqual([400, 401, 403, 404, 501].map((s) => make(s).temporary), [false, false, false, false, false]);
    assert.equal(make(400, 'TOOMANYREQUESTS').temporary, true);
    assert.equal(make(200 + 200, 'UNAVAILABLE').temporary, true);
    assert.equal(make(404, 'MANIFEST_UNKNOWN').notFound, true);
  });
});
