/**
 * `errorOf(promise)`: the SlipwayError a promise rejects with, for tests that then assert its code
 * and message. Fails the test when the promise resolves or rejects with anything else.
 * @module
 */
import assert from 'node:assert/strict';
import { SlipwayError } from '../errors.js';

export async function errorOf(promise: Promise<unknown>): Promise<SlipwayError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(SlipwayError.is(err), `want a SlipwayError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}
