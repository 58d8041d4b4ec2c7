import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SlipwayError } from '../errors.js';
import { formatPlatform, normalizePlatform, parsePlatform, parsePlatforms, platformMatches, type Platform } from './platform.js';

// [input, expected] — the os/arch[/variant][:osversion] syntax of buildx and crane, containerd's normalisation.
const valid: [string, Platform][] = [
  ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
  ['linux/arm64', { os: 'linux', architecture: 'arm64' }],
  ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }],
  ['linux/arm/v6', { os: 'linux', architecture: 'arm', variant: 'v6' }],
  ['linux/arm64/v8', { os: 'linux', architecture: 'arm64' }],
  ['linux/amd64/v1', { os: 'linux', architecture: 'amd64' }],
  ['linux/amd64/v3', { os: 'linux', architecture: 'amd64', variant: 'v3' }],
  ['linux/x86_64', { os: 'linux', architecture: 'amd64' }],
  ['linux/aarch64', { os: 'linux', architecture: 'arm64' }],
  ['linux/armhf', { os: 'linux', architecture: 'arm' }],
  ['Linux/AMD64', { os: 'linux', architecture: 'amd64' }],
  [' linux/s390x ', { os: 'linux', architecture: 's390x' }],
  ['windows/amd64:10.0.17763.1', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' }],
  ['windows/arm64/v8:10.0.20348', { os: 'windows', architecture: 'arm64', 'os.version': '10.0.20348' }],
  ['linux/riscv64', { os: 'linux', architecture: 'riscv64' }],
];

const invalid: [string, string][] = [
  ['', 'empty'],
  ['   ', 'empty'],
  ['linux', 'two or three'],
  ['linux/arm/v7/x', 'two or three'],
  ['linux/', 'malformed component ""'],
  ['/amd64', 'malformed component ""'],
  ['linux//amd64', 'malformed component ""'],
  ['linux/am$d64', 'malformed component "am$d64"'],
  ['linux/amd 64', 'malformed component'],
  ['linux/amd64:', 'malformed os version'],
  ['windows/amd64:10 0', 'malformed os version'],
  ['linux/amd64:1:2', 'malformed os version'],
];

describe('parsePlatform', () => {
  for (const [input, want] of valid) {
    it(`parses ${JSON.stringify(input)}`, () => {
      assert.deepEqual(parsePlatform(input), want);
      // The formatted form parses back to the same platform.
      assert.deepEqual(parsePlatform(formatPlatform(want)), want);
    });
  }
  for (const [input, why] of invalid) {
    it(`rejects ${JSON.stringify(input)} with SLIPWAY_INVALID_PLATFORM`, () => {
      assert.throws(
        () => parsePlatform(input),
        (err: unknown) => {
          assert.ok(SlipwayError.is(err));
          assert.equal(err.code, 'SLIPWAY_INVALID_PLATFORM');
          assert.ok(err.message.startsWith(`invalid platform ${JSON.stringify(input)}: `), err.message);
          assert.ok(err.message.includes(why), `says why (${why}): ${err.message}`);
          assert.match(err.message, /want os\/arch\[\/variant\]\[:osversion\]/);
          return true;
        },
      );
    });
  }
});

describe('parsePlatforms', () => {
  it('reads comma-separated lists and arrays; nothing at all is no platform', () => {
    assert.deepEqual(parsePlatforms('linux/amd64, linux/arm/v7'), [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm', variant: 'v7' }]);
    assert.deepEqual(parsePlatforms(['linux/amd64', 'linux/arm64,linux/s390x']).map(formatPlatform), ['linux/amd64', 'linux/arm64', 'linux/s390x']);
    assert.deepEqual(parsePlatforms([]), []);
    assert.deepEqual(parsePlatforms(' '), []);
    assert.deepEqual(parsePlatforms(['linux/amd64', '']).map(formatPlatform), ['linux/amd64'], 'an empty array element is no platform');
  });

  it('refuses an empty entry in a list (a platform lost in editing)', () => {
    for (const list of ['linux/amd64,', 'linux/amd64,,linux/arm64', ',linux/amd64']) {
      assert.throws(() => parsePlatforms(list), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_PLATFORM' && /an empty entry/.test(err.message));
    }
  });

  it('refuses a platform listed twice, also under another spelling', () => {
    for (const list of ['linux/amd64,linux/amd64', 'linux/amd64,linux/x86_64', 'linux/arm64,linux/arm64/v8']) {
      assert.throws(() => parsePlatforms(list), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_PLATFORM' && /listed twice/.test(err.message));
    }
  });
});

describe('platformMatches', () => {
  const p = parsePlatform;
  it('compares os and architecture, and variant or os.version only when asked for', () => {
    assert.ok(platformMatches(p('linux/arm/v7'), p('linux/arm')));
    assert.ok(platformMatches(p('linux/arm/v7'), p('linux/arm/v7')));
    assert.ok(!platformMatches(p('linux/arm/v6'), p('linux/arm/v7')));
    assert.ok(platformMatches({ os: 'linux', architecture: 'arm' }, p('linux/arm/v7')), 'arm without a variant is v7');
    assert.ok(platformMatches(p('linux/arm64'), p('linux/arm64/v8')));
    assert.ok(!platformMatches(p('linux/amd64'), p('linux/arm64')));
    assert.ok(!platformMatches(p('windows/amd64'), p('linux/amd64')));
    assert.ok(platformMatches(p('windows/amd64:10.0.17763.1'), p('windows/amd64')));
    assert.ok(!platformMatches(p('windows/amd64:10.0.17763.1'), p('windows/amd64:10.0.20348')));
    assert.ok(platformMatches({ os: 'linux', architecture: 'x86_64' }, p('linux/amd64')), 'a config spelling uname -m names still matches');
  });

  it('normalises without touching the input', () => {
    const input: Platform = { os: 'linux', architecture: 'aarch64', variant: 'v8' };
    assert.deepEqual(normalizePlatform(input), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(input, { os: 'linux', architecture: 'aarch64', variant: 'v8' });
  });
});
