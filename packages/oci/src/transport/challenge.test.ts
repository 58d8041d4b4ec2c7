import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChallenges, pickChallenge } from './challenge.js';

describe('parseChallenges', () => {
  const cases: [string | string[], { scheme: string; params: Record<string, string> }[]][] = [
    ['Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } }],
    ],
    // Quoted strings hold commas (scope action lists) and escaped quotes.
    [
      'Bearer realm="https://r/t", scope="repository:a:pull,push repository:b:pull", error="insufficient_scope"',
      [{ scheme: 'bearer', params: { realm: 'https://r/t', scope: 'repository:a:pull,push repository:b:pull', error: 'insufficient_scope' } }],
    ],
    ['Bearer realm="a\\"b",service=plain', [{ scheme: 'bearer', params: { realm: 'a"b', service: 'plain' } }]],
    // Several challenges in one header, and parameter names in any case.
    [
      'Basic realm="r1", Bearer Realm="https://t",Service="s"',
      [
        { scheme: 'basic', params: { realm: 'r1' } },
        { scheme: 'bearer', params: { realm: 'https://t', service: 's' } },
      ],
    ],
    [
      ['Negotiate', 'Bearer realm="https://t"'],
      [
        { scheme: 'negotiate', params: {} },
        { scheme: 'bearer', params: { realm: 'https://t' } },
      ],
    ],
    ['Bearer realm = "spaced" , service = x', [{ scheme: 'bearer', params: { realm: 'spaced', service: 'x' } }]],
    ['', []],
    ['Bearer', [{ scheme: 'bearer', params: {} }]],
    ['Bearer realm="unterminated', [{ scheme: 'bearer', params: { realm: 'unterminated' } }]],
  ];
  for (const [input, want] of cases) {
    it(`parses ${JSON.stringify(input)}`, () => assert.deepEqual(parseChallenges(input), want));
  }
  it('returns nothing for a missing header', () => assert.deepEqual(parseChallenges(undefined), []));
  it('prefers Bearer over Basic', () => {
    assert.equal(pickChallenge(parseChallenges('Basic realm="x", Bearer realm="y"'))?.scheme, 'bearer');
    assert.equal(pickChallenge(parseChallenges('Negotiate, Basic realm="x"'))?.scheme, 'basic');
    assert.equal(pickChallenge(parseChallenges('Negotiate')), undefined);
  });
});
