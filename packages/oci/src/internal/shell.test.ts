import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shellWord } from './shell.js';

test('shellWord leaves plain paths alone and single-quotes the rest, quotes included', () => {
  assert.equal(shellWord('/tmp/lay-1/oci-layout'), '/tmp/lay-1/oci-layout');
  assert.equal(shellWord('my dir'), `'my dir'`);
  assert.equal(shellWord(`it's dir/x`), `'it'\\''s dir/x'`);
  assert.equal(shellWord('$HOME'), `'$HOME'`);
});
