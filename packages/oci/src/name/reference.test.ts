import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SlipwayError } from '../errors.js';
import { familiarString, parseReference, parseRepository, redactUserinfo, registryHost } from './reference.js';

const d256 = `sha256:${'a'.repeat(64)}`;
const d512 = `sha512:${'b'.repeat(128)}`;

// [input, registry, repository, tag, digest] — expectations follow `docker pull` / distribution/reference.
const valid: [string, string, string, string | undefined, string | undefined][] = [
  ['alpine', 'docker.io', 'library/alpine', 'latest', undefined],
  ['alpine:3.20', 'docker.io', 'library/alpine', '3.20', undefined],
  ['library/alpine', 'docker.io', 'library/alpine', 'latest', undefined],
  ['docker.io/alpine', 'docker.io', 'library/alpine', 'latest', undefined],
  ['docker.io/library/alpine:edge', 'docker.io', 'library/alpine', 'edge', undefined],
  ['index.docker.io/alpine', 'docker.io', 'library/alpine', 'latest', undefined],
  ['index.docker.io/user/app:1', 'docker.io', 'user/app', '1', undefined],
  ['user/app', 'docker.io', 'user/app', 'latest', undefined],
  ['user/team/app', 'docker.io', 'user/team/app', 'latest', undefined],
  ['localhost/app', 'localhost', 'app', 'latest', undefined],
  ['localhost:5000/app', 'localhost:5000', 'app', 'latest', undefined],
  ['localhost:5000/app:v1', 'localhost:5000', 'app', 'v1', undefined],
  ['127.0.0.1:5000/a/b/c:t', '127.0.0.1:5000', 'a/b/c', 't', undefined],
  ['ghcr.io/owner/image', 'ghcr.io', 'owner/image', 'latest', undefined],
  ['registry.example.com/app', 'registry.example.com', 'app', 'latest', undefined],
  ['Registry.Example.com/app', 'Registry.Example.com', 'app', 'latest', undefined],
  ['MyRegistry/app', 'MyRegistry', 'app', 'latest', undefined],
  ['example:443/app', 'example:443', 'app', 'latest', undefined],
  ['[::1]:5000/app', '[::1]:5000', 'app', 'latest', undefined],
  ['[::1]/app:t', '[::1]', 'app', 't', undefined],
  ['[2001:db8::1]:5000/a/b:1.0', '[2001:db8::1]:5000', 'a/b', '1.0', undefined],
  ['localhost:5000/app@' + d256, 'localhost:5000', 'app', undefined, d256],
  ['alpine@' + d256, 'docker.io', 'library/alpine', undefined, d256],
  ['alpine:3@' + d256, 'docker.io', 'library/alpine', '3', d256],
  ['r.io/app@' + d512, 'r.io', 'app', undefined, d512],
  ['r.io/a_b/c__d/e-f/g--h/i.j:t', 'r.io', 'a_b/c__d/e-f/g--h/i.j', 't', undefined],
  ['r.io/app:_tag', 'r.io', 'app', '_tag', undefined],
  ['r.io/app:V1.2-rc.3_x', 'r.io', 'app', 'V1.2-rc.3_x', undefined],
  ['r.io/app:' + 'x'.repeat(128), 'r.io', 'app', 'x'.repeat(128), undefined],
  ['a-b.c-d.io/app', 'a-b.c-d.io', 'app', 'latest', undefined],
  ['host:5000/app:5000', 'host:5000', 'app', '5000', undefined],
  ['localhost', 'docker.io', 'library/localhost', 'latest', undefined],
  ['foo.bar:1/app', 'foo.bar:1', 'app', 'latest', undefined],
];

// [input, fragment of the reason]
const invalid: [string, string][] = [
  ['', 'empty'],
  [' alpine', 'whitespace'],
  ['Alpine', 'lowercase'],
  ['user/App', 'lowercase'],
  ['r.io/App:tag', 'lowercase'],
  ['alpine:', 'tag'],
  ['alpine:-x', 'tag'],
  ['alpine:.x', 'tag'],
  ['alpine:' + 'x'.repeat(129), 'tag'],
  ['alpine:a/b', 'not a valid host'],
  ['alpine@sha256:abc', 'digest'],
  ['alpine@md5:' + 'a'.repeat(32), 'digest'],
  ['alpine@', 'digest'],
  ['a'.repeat(64), 'image ID'],
  ['r.io/', 'no repository'],
  ['r.io//app', 'empty path component'],
  ['r.io/app/', 'empty path component'],
  ['/app', 'empty path component'],
  ['-r.io/app', 'not a valid host'],
  ['r.io/-app', 'path component'],
  ['r.io/app-', 'path component'],
  ['r.io/a..b', 'path component'],
  ['r.io/a___b', 'path component'],
  ['r.io/a$b', 'path component'],
  ['r.io:port/app', 'not a valid host'],
  ['[::1/app', 'not a valid host'],
  [':tag', 'no repository'],
  ['r.io/' + 'a'.repeat(251), 'at most 255'],
  ['docker.io/' + 'a'.repeat(238), 'at most 255'],
];

describe('parseReference', () => {
  for (const [input, registry, repository, tag, digest] of valid) {
    it(`parses ${JSON.stringify(input)}`, () => {
      const ref = parseReference(input);
      assert.equal(ref.registry, registry);
      assert.equal(ref.repository, repository);
      assert.equal(ref.tag, tag);
      assert.equal(ref.digest, digest);
      assert.equal(ref.name, `${registry}/${repository}`);
      assert.equal(ref.identifier, digest ?? tag);
      // Round trip: the canonical string parses to the same reference.
      assert.equal(parseReference(ref.toString()).toString(), ref.toString());
    });
  }
  for (const [input, why] of invalid) {
    it(`rejects ${JSON.stringify(input.length > 40 ? input.slice(0, 40) + '…' : input)}`, () => {
      assert.throws(
        () => parseReference(input),
        (err: unknown) => {
          assert.ok(SlipwayError.is(err));
          assert.equal(err.code, 'SLIPWAY_INVALID_REFERENCE');
          assert.ok(err.message.includes(JSON.stringify(input).slice(0, 20)), `message quotes the input: ${err.message}`);
          assert.ok(err.message.includes(why), `message says why (${why}): ${err.message}`);
          return true;
        },
      );
    });
  }

  it('does not repeat a password typed into a reference (user:secret@host/repo)', () => {
    const typed = [
      'user:hunter2@registry.example/app:1',
      'https://user:hunter2@registry.example/app:1',
      'user:hunter2@localhost:5000/app',
      'user:hunter2@localhost:5000',
      'user:hun/ter2@registry.example/app',
      'user:hun@ter2@registry.example/app',
      'user:hun ter2@registry.example/app',
      'user:hunter2@registry.example/app@sha256:abc',
    ];
    for (const text of typed) {
      assert.throws(() => parseReference(text), (err: Error) => {
        assert.ok(!/hun|ter2/.test(err.message), err.message);
        assert.match(err.message, /user:<redacted>@.*credentials do not belong in a reference/);
        return true;
      });
    }
    for (const digestReference of ['app@sha256:abc', 'app:1.0@sha256:abc', 'registry.example:5000/app@sha256:abc']) {
      assert.equal(redactUserinfo(digestReference), digestReference, 'a digest is not userinfo');
    }
  });

  it('does not repeat a token typed as the user of a reference (https://TOKEN@host/repo)', () => {
    for (const [text, shown] of [
      ['https://ghp_S3cretTOKEN@ghcr.io/app:1', 'https://<redacted>@ghcr.io/app:1'],
      ['ghp_S3cretTOKEN@127.0.0.1:5999/a:1', '<redacted>@127.0.0.1:5999/a:1'],
      ['ghp_S3cretTOKEN@localhost/a', '<redacted>@localhost/a'],
      ['ghp_S3cretTOKEN@registry:5000/a', '<redacted>@registry:5000/a'],
      ['ghp_S3cret@TOKEN@registry.example', '<redacted>@registry.example'],
      ['https://ghp_S3cretTOKEN@registry', 'https://<redacted>@registry'],
    ]) {
      assert.equal(redactUserinfo(text!), shown);
      assert.throws(() => parseReference(text!), (err: Error) => {
        assert.ok(!err.message.includes('S3cret'), err.message);
        assert.match(err.message, /<redacted>@.*credentials do not belong in a reference/);
        return true;
      });
    }
    // Not userinfo: nothing hidden, the real reason given.
    for (const text of ['app@latest', 'team/app@v1', 'app@sha256:abc']) assert.equal(redactUserinfo(text), text);
  });

  it('accepts a name of exactly 255 characters', () => {
    const ref = parseReference('r.io/' + 'a'.repeat(250));
    assert.equal(ref.name.length, 255);
  });

  it('honours defaultTag, including none', () => {
    assert.equal(parseReference('alpine', { defaultTag: 'stable' }).tag, 'stable');
    assert.equal(parseReference('alpine', { defaultTag: null }).tag, undefined);
    assert.equal(parseReference('alpine', { defaultTag: null }).identifier, 'latest');
    assert.equal(parseReference('alpine:3', { defaultTag: 'stable' }).tag, '3');
    assert.throws(() => parseReference('alpine', { defaultTag: '-bad' }), /default tag/);
  });

  it('formats tag and digest together, digest last, and resolves by digest', () => {
    const ref = parseReference(`localhost:5000/app:1.0@${d256}`);
    assert.equal(ref.toString(), `localhost:5000/app:1.0@${d256}`);
    assert.equal(ref.identifier, d256);
  });

  it('withTag and withDigest keep the other part, as Docker does', () => {
    const tagged = parseReference('r.io/app:1');
    const both = tagged.withDigest(d256);
    assert.equal(both.toString(), `r.io/app:1@${d256}`);
    assert.equal(both.withTag('2').toString(), `r.io/app:2@${d256}`);
    assert.equal(both.without('digest').toString(), 'r.io/app:1');
    assert.equal(both.without('tag').toString(), `r.io/app@${d256}`);
    assert.equal(tagged.toString(), 'r.io/app:1', 'references are immutable');
    assert.throws(() => tagged.withTag('bad tag'), { code: 'SLIPWAY_INVALID_REFERENCE' });
    assert.throws(() => tagged.withDigest('sha256:nope'), { code: 'SLIPWAY_INVALID_REFERENCE' });
    assert.throws(() => tagged.without('tag'), { code: 'SLIPWAY_INVALID_REFERENCE' });
  });

  it('is frozen', () => {
    const ref = parseReference('alpine');
    assert.throws(() => {
      (ref as { tag?: string }).tag = 'x';
    }, TypeError);
  });
});

describe('parseRepository', () => {
  it('normalises like parseReference', () => {
    assert.equal(parseRepository('alpine').name, 'docker.io/library/alpine');
    assert.equal(parseRepository('localhost:5000/a/b').toString(), 'localhost:5000/a/b');
    assert.equal(parseRepository('[::1]:5000/a').registry, '[::1]:5000');
  });
  it('rejects tags and digests', () => {
    assert.throws(() => parseRepository('alpine:3'), { code: 'SLIPWAY_INVALID_REFERENCE' });
    assert.throws(() => parseRepository(`alpine@${d256}`), { code: 'SLIPWAY_INVALID_REFERENCE' });
  });
});

describe('registryHost and familiarString', () => {
  it('maps Docker Hub to its API host and leaves others alone', () => {
    assert.equal(registryHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryHost('index.docker.io'), 'registry-1.docker.io');
    assert.equal(registryHost('localhost:5000'), 'localhost:5000');
    assert.equal(registryHost('ghcr.io'), 'ghcr.io');
  });
  it('prints the short form Docker shows', () => {
    assert.equal(familiarString(parseReference('alpine')), 'alpine:latest');
    assert.equal(familiarString(parseReference('user/app:1')), 'user/app:1');
    assert.equal(familiarString(parseReference('docker.io/library/a/b')), 'library/a/b:latest');
    assert.equal(familiarString(parseReference('localhost:5000/app')), 'localhost:5000/app:latest');
    assert.equal(familiarString(parseRepository('alpine')), 'alpine');
  });
});
