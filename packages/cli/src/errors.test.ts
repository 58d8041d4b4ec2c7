import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SlipwayError } from '@slipway/oci';
import { describeError } from './errors.js';

describe('describeError', () => {
  it('a file system refusal the library let through is SLIPWAY_IO, exit 1, in Node\'s words: no "unexpected error"', () => {
    const refused = Object.assign(new Error("EACCES: permission denied, open '/srv/app.tar'"), { code: 'EACCES', syscall: 'open', path: '/srv/app.tar' });
    assert.deepEqual(describeError(refused), { code: 'SLIPWAY_IO', message: "EACCES: permission denied, open '/srv/app.tar'", exitCode: 1 });
  });

  it('anything else unknown is still an unexpected error, and a SlipwayError keeps its code', () => {
    assert.deepEqual(describeError(new TypeError('x is not a function')), { code: 'SLIPWAY_INTERNAL', message: 'unexpected error: x is not a function', exitCode: 1 });
    assert.equal(describeError(new SlipwayError('SLIPWAY_IO', 'disk')).code, 'SLIPWAY_IO');
  });
});
