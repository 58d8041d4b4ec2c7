import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactText, redactUrl, SecretSet, shortLivedGraceMs, shortLivedLimit } from './redact.js';

describe('redaction', () => {
  it('keeps safe query parameters and replaces the rest', () => {
    assert.equal(
      redactUrl('http://r:5000/v2/a/blobs/uploads/u?_state=abc&digest=sha256:1&mount=sha256:2&from=b'),
      'http://r:5000/v2/a/blobs/uploads/u?_state=REDACTED&digest=sha256%3A1&mount=sha256%3A2&from=b',
    );
    assert.equal(redactUrl('https://s3/b/k?X-Amz-Signature=s&X-Amz-Credential=c'), 'https://s3/b/k?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED');
    assert.equal(redactUrl('https://user:pw@auth/token?service=s&scope=repository:a:pull&token=t'), 'https://auth/token?service=s&scope=repository%3Aa%3Apull&token=REDACTED');
    assert.equal(redactUrl('http://r/v2/'), 'http://r/v2/');
    assert.equal(redactUrl('not a url'), '<unparseable URL>');
  });

  it('removes secrets, their base64 forms, and Authorization values from text', () => {
    const secrets = new SecretSet();
    secrets.add('hunter2-secret', 'ab', undefined);
    const b64 = Buffer.from('hunter2-secret').toString('base64');
    assert.equal(secrets.redact(`pw hunter2-secret b64 ${b64} Bearer eyJ.abc.def Basic dXNlcjpwdw==`), 'pw REDACTED b64 REDACTED Bearer REDACTED Basic REDACTED');
    assert.equal(secrets.redact('ab is too short to hide'), 'ab is too short to hide');
    assert.equal(redactText('token: Bearer abc'), 'token: Bearer REDACTED');
  });

  it('forgets a short-lived secret (a token) only an hour after it expires; credentials never', () => {
    let now = 0;
    const secrets = new SecretSet(() => now);
    secrets.add('long-lived-password');
    const token = 'eyJtoken.first.signature';
    secrets.addShortLived(token, 300_000);
    assert.equal(secrets.redact(`${token} ${Buffer.from(token).toString('base64')} ${encodeURIComponent(token)}`), 'REDACTED REDACTED REDACTED');
    // Many newer tokens do not push it out while it may still be in use.
    for (let i = 0; i < 1000; i++) secrets.addShortLived(`eyJtoken.other-${i}.signature`, 300_000);
    now = 300_000 + shortLivedGraceMs - 1;
    secrets.addShortLived('eyJtoken.later.signature', 300_000);
    assert.equal(secrets.redact(token), 'REDACTED', 'still within the grace after expiry');
    now += 1;
    secrets.addShortLived('eyJtoken.latest.signature', 300_000);
    assert.equal(secrets.redact(token), token, 'forgotten an hour after it expired');
    assert.equal(secrets.redact('eyJtoken.other-999.signature'), 'eyJtoken.other-999.signature', 'its contemporaries too');
    assert.equal(secrets.redact('eyJtoken.latest.signature'), 'REDACTED');
    assert.equal(secrets.redact('long-lived-password'), 'REDACTED', 'credentials are never forgotten');
  });

  it('remembers at most the last used short-lived secrets, and redacts among a thousand of them', () => {
    const secrets = new SecretSet();
    const token = (i: number) => `eyJtoken.${i}.signature`;
    secrets.addShortLived(token(0), 300_000);
    for (let i = 1; i <= shortLivedLimit + 500; i++) {
      secrets.addShortLived(token(i), 300_000);
      // Token 0 is used by a long request all along: used again, it stays.
      if (i % 100 === 0) secrets.addShortLived(token(0), 0);
    }
    assert.equal(secrets.redact(token(0)), 'REDACTED', 'the token in use stays');
    assert.equal(secrets.redact(token(1)), token(1), 'the least recently used went beyond the limit');
    assert.equal(secrets.redact(token(shortLivedLimit + 500)), 'REDACTED');
    const detail = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, `value ${i} with ${token(shortLivedLimit + (i % 400))} inside`]));
    const redacted = secrets.redactJson(detail) as Record<string, string>;
    assert.equal(redacted.k7, 'value 7 with REDACTED inside');
    assert.equal(Object.values(redacted).filter((v) => v.includes('eyJ')).length, 0);
  });

  it('redacts the start of a secret a server quotes in part, or a text cut in the middle of one', () => {
    const token = 'opaqueTOKEN-0123456789abcdefghijklmnopqrstuvwxyz';
    const secrets = new SecretSet();
    secrets.add(token, 'pw-CANARY');
    // A server that quotes the first 23 characters: all 23 go.
    assert.equal(secrets.redact(`token ${token.slice(0, 23)}... is invalid`), 'token REDACTED... is invalid');
    // An error body cut (at our cap) inside a secret: its start goes, from 6 characters.
    assert.equal(secrets.redact(`detail: ${token.slice(0, 7)}`), 'detail: REDACTED');
    assert.equal(secrets.redact(`detail: pw-CAN`), 'detail: REDACTED');
    // Inside a text, a few characters in common are an accident, not a leak.
    assert.equal(secrets.redact('the opaque layer'), 'the opaque layer');
    assert.equal(secrets.redact('pw-CANDY and more'), 'pw-CANDY and more');
    // A user:password pair is redacted whole only: its start is the user name, which stays readable.
    const login = new SecretSet();
    login.add('pw-CANARY-0123456789');
    login.addWhole('gitlab-ci-token:pw-CANARY-0123456789');
    assert.equal(login.redact('DENIED: user gitlab-ci-token may not read project app'), 'DENIED: user gitlab-ci-token may not read project app');
    assert.equal(login.redact('basic (user "gitlab-ci-token")'), 'basic (user "gitlab-ci-token")');
    assert.equal(login.redact('sent gitlab-ci-token:pw-CANARY-0123456789 as Basic'), 'sent REDACTED as Basic');
    assert.equal(login.redact('cut at gitlab-ci-token:pw-CANA'), 'cut at gitlab-ci-token:REDACTED', 'the password in it still goes in part');
    // A secret that starts another, longer one: the longer match wins.
    const nested = new SecretSet();
    nested.add('abcd1234', 'abcd1234567890XYZ-long-secret');
    assert.equal(nested.redact('x abcd1234567890XYZ-lo'), 'x REDACTED');
  });

  it('redacts overlapping and nested secrets whole', () => {
    assert.equal(redactText('user:hunter2-pw!', ['hunter2-pw', 'user:hunter2-pw']), 'REDACTED!');
    assert.equal(redactText('xxZWabcd1234yy', ['ZWab', 'abcd1234']), 'xxREDACTEDyy', 'overlapping: neither leaves a piece');
    assert.equal(redactText('aaaa bbbb aaaa', ['aaaa', 'bbbb']), 'REDACTED REDACTED REDACTED');
  });

  it('removes a secret as a server quotes it: JSON-escaped, URL-encoded in a form or a query', () => {
    const secret = 'pw "with" \\back/slash+plus= and space';
    const secrets = new SecretSet();
    secrets.add(secret);
    const forms = [JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret), new URLSearchParams({ p: secret }).toString().slice(2)];
    for (const form of forms) {
      assert.notEqual(form, secret);
      assert.equal(secrets.redact(`echo ${form} end`), 'echo REDACTED end', form);
    }
  });

  it('replaces a secret holding another whole', () => {
    const secrets = new SecretSet();
    secrets.add('s3cret', 'user:s3cret');
    assert.equal(secrets.redact('sent user:s3cret'), 'sent REDACTED');
  });

  it('redacts every string of a JSON value, keys and deep nesting included', () => {
    const secrets = new SecretSet();
    secrets.add('pw"q\\x');
    let deep: unknown = 'pw"q\\x';
    for (let i = 0; i < 100; i++) deep = [deep];
    const redacted = secrets.redactJson({ tried: 'user:pw"q\\x', list: [1, null, true, { 'pw"q\\x': 'k' }], deep });
    const text = JSON.stringify(redacted);
    assert.ok(!text.includes('pw"q') && !text.includes('pw\\"q'), text);
    assert.deepEqual((redacted as { tried: string }).tried, 'user:REDACTED');
    assert.deepEqual((redacted as { list: unknown[] }).list, [1, null, true, { REDACTED: 'k' }]);
  });
});
