import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextLink, pushScope } from './paths.js';

describe('nextLink', () => {
  it('finds rel="next" among several links, relative or absolute', () => {
    assert.equal(nextLink('</v2/a/tags/list?last=b&n=1000>; rel="next"'), '/v2/a/tags/list?last=b&n=1000');
    assert.equal(nextLink('<https://r/v2/x?a=1,2>; rel="prev", <https://r/v2/x?last=z>; rel=next'), 'https://r/v2/x?last=z');
    assert.equal(nextLink('</v2/a/tags/list?last=b>; rel="prev"'), undefined);
    assert.equal(nextLink(undefined), undefined);
  });
  it('orders push scopes the way registries expect', () => {
    assert.equal(pushScope('team/app'), 'repository:team/app:pull,push');
  });
});
