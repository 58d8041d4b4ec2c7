import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from '../errors.js';
import { parseProxyUrl, ProxyConfig } from './proxy.js';

const HTTP = 'http://proxy.corp:3128';
const HTTPS = 'http://secure-proxy.corp:3129';

/** The proxy label a URL goes through, or 'direct'. */
function via(config: ProxyConfig, url: string): string {
  return config.routeFor(new URL(url))?.label ?? 'direct';
}

test('the environment is read as Go reads it: upper case first, https:// origins never fall back to HTTP_PROXY', () => {
  const both = ProxyConfig.resolve('environment', { HTTP_PROXY: HTTP, https_proxy: HTTPS, http_proxy: 'http://lower:1' });
  assert.equal(via(both, 'http://registry.corp/v2/'), HTTP);
  assert.equal(via(both, 'https://registry.corp/v2/'), HTTPS);
  const httpOnly = ProxyConfig.resolve(undefined, { http_proxy: HTTP });
  assert.equal(via(httpOnly, 'http://registry.corp/v2/'), HTTP);
  assert.equal(via(httpOnly, 'https://registry.corp/v2/'), 'direct');
  const none = ProxyConfig.resolve('environment', {});
  assert.equal(none.enabled, false);
  assert.equal(via(none, 'https://registry.corp/v2/'), 'direct');
  assert.equal(ProxyConfig.resolve(false, { HTTPS_PROXY: HTTPS }).enabled, false, 'false ignores the environment');
  const explicit = ProxyConfig.resolve({ httpsProxy: HTTPS }, { HTTPS_PROXY: 'http://ignored:1' });
  assert.equal(via(explicit, 'https://ghcr.io/v2/'), HTTPS);
});

test('loopback origins are never proxied, whatever NO_PROXY says', () => {
  const config = ProxyConfig.resolve({ httpProxy: HTTP, httpsProxy: HTTPS });
  for (const url of ['http://127.0.0.1:5000/v2/', 'http://127.1.2.3/v2/', 'https://localhost:5000/v2/', 'http://[::1]:5000/v2/', 'http://app.localhost/v2/']) {
    assert.equal(via(config, url), 'direct', url);
  }
  assert.equal(via(config, 'http://10.0.0.5:5000/v2/'), HTTP);
});

test('NO_PROXY: domains with and without a leading dot, ports, IPs, CIDR blocks and *', () => {
  const config = ProxyConfig.resolve({
    httpsProxy: HTTPS,
    noProxy: ' internal.corp , .svc.corp,*.cluster.local, registry.corp:5000, 10.1.2.3, 192.168.0.0/16 ,[fd00::7]:443, fd00:1::/32, Mixed.Case',
  });
  const cases: [string, string][] = [
    ['https://internal.corp/v2/', 'direct'],
    ['https://a.b.internal.corp/v2/', 'direct'],
    ['https://notinternal.corp/v2/', HTTPS],
    ['https://svc.corp/v2/', HTTPS],
    ['https://x.svc.corp/v2/', 'direct'],
    ['https://cluster.local/v2/', HTTPS],
    ['https://r.cluster.local/v2/', 'direct'],
    ['https://registry.corp:5000/v2/', 'direct'],
    ['https://registry.corp/v2/', HTTPS],
    ['https://10.1.2.3:5000/v2/', 'direct'],
    ['https://10.1.2.4/v2/', HTTPS],
    ['https://192.168.44.1/v2/', 'direct'],
    ['https://192.169.0.1/v2/', HTTPS],
    ['https://[fd00::7]/v2/', 'direct'],
    ['https://[fd00::7]:5000/v2/', HTTPS],
    ['https://[fd00:1:0::9]/v2/', 'direct'],
    ['https://mixed.case./v2/', 'direct'],
    ['https://ghcr.io/v2/', HTTPS],
  ];
  for (const [url, want] of cases) assert.equal(via(config, url), want, url);
  const all = ProxyConfig.resolve('environment', { HTTPS_PROXY: HTTPS, no_proxy: 'x.corp,*' });
  assert.equal(all.enabled, false);
  assert.equal(via(all, 'https://ghcr.io/v2/'), 'direct');
});

test('proxy URLs: scheme optional, path ignored, lone user names sent as Go sends them', () => {
  const route = (text: string) => {
    const { slot } = parseProxyUrl(text, 'HTTPS_PROXY');
    assert.ok(!(slot instanceof InvalidArgumentError), text);
    return slot;
  };
  assert.equal(route('proxy.corp:3128').label, 'http://proxy.corp:3128');
  assert.equal(route('https://proxy.corp').label, 'https://proxy.corp');
  assert.equal(route('http://proxy.corp:3128/proxy.pac?x=1').label, 'http://proxy.corp:3128');
  const withCredentials = route('bob:s3cret-CANARY@proxy.corp:3128');
  assert.equal(withCredentials.label, 'http://proxy.corp:3128');
  assert.equal(withCredentials.authorization, `Basic ${Buffer.from('bob:s3cret-CANARY').toString('base64')}`);
  assert.equal(withCredentials.hasCredentials, true);
  const token = route('http://TOKEN-CANARY@proxy.corp:3128');
  assert.equal(token.authorization, `Basic ${Buffer.from('TOKEN-CANARY:').toString('base64')}`);
  assert.equal(route('http://proxy.corp:3128').authorization, undefined);
});

test('an unusable proxy URL fails only the requests that need it, naming the variable and never the password', () => {
  const bad = [
    'socks5://bob:s3cret-CANARY@proxy.corp:1080',
    'ftp://bob:s3cret-CANARY@proxy.corp',
    'http://bob:s3cret-CANARY@',
    '::::',
    // An unencoded '/' in the password: the "host" would be part of it.
    'http://bob:1234/s3cret-CANARY@proxy.corp:3128',
  ];
  for (const text of bad) {
    const config = ProxyConfig.resolve('environment', { HTTPS_PROXY: text });
    assert.equal(config.routeFor(new URL('https://127.0.0.1:5000/v2/')), undefined, 'loopback is never proxied, so never fails');
    assert.equal(config.routeFor(new URL('http://registry.corp/v2/')), undefined, 'http:// origins do not use HTTPS_PROXY');
    assert.throws(
      () => config.routeFor(new URL('https://registry.corp/v2/')),
      (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError, text);
        assert.match(err.message, /^HTTPS_PROXY /, 'the message names the variable');
        assert.doesNotMatch(err.message, /s3cret|CANARY|1234/, 'no part of the password is echoed');
        return true;
      },
    );
  }
  assert.throws(() => ProxyConfig.resolve({ httpProxy: 'socks5://p:1080' }).routeFor(new URL('http://r.corp/')), /proxy\.httpProxy .*SOCKS/);
  assert.equal(ProxyConfig.resolve({ httpProxy: 'socks5://p:1080', noProxy: 'r.corp' }).routeFor(new URL('http://r.corp/')), undefined, 'NO_PROXY still applies');
});

test('the proxy password (as written and decoded) and a lone-user token go to the secret set, user:password as a pair', () => {
  const config = ProxyConfig.resolve('environment', { HTTPS_PROXY: 'http://bob:p%40ss-CANARY@proxy.corp:3128', HTTP_PROXY: 'http://TOKEN-CANARY@proxy.corp:3128' });
  assert.deepEqual([...config.secrets].sort(), ['TOKEN-CANARY', 'p%40ss-CANARY', 'p@ss-CANARY'].sort());
  // Redacted whole only: the start of a pair is the user name, which messages may name.
  assert.deepEqual([...config.pairs].sort(), ['TOKEN-CANARY:', 'bob:p@ss-CANARY'].sort());
});

test('IPv4-mapped loopback in the spelling URLs normalise it to is loopback too', () => {
  const config = ProxyConfig.resolve({ httpsProxy: HTTPS });
  assert.equal(via(config, 'https://[::ffff:127.0.0.1]:5000/v2/'), 'direct');
  assert.equal(new URL('https://[::ffff:127.0.0.1]/').hostname, '[::ffff:7f00:1]');
  assert.equal(via(config, 'https://[::ffff:10.0.0.1]/v2/'), HTTPS);
});

test('NO_PROXY: an IPv4 address and its IPv4-mapped IPv6 spelling name the same host, either way round', () => {
  const config = ProxyConfig.resolve({ httpsProxy: HTTPS, noProxy: '10.0.0.1, ::ffff:10.0.0.2, 10.9.0.0/16' });
  assert.equal(via(config, 'https://[::ffff:10.0.0.1]/v2/'), 'direct');
  assert.equal(via(config, 'https://10.0.0.2/v2/'), 'direct');
  assert.equal(via(config, 'https://[::ffff:10.9.3.4]/v2/'), 'direct');
  // `::a00:1` is IPv4-compatible, not mapped: another address, as in Go.
  assert.equal(via(config, 'https://[::a00:1]/v2/'), HTTPS);
  assert.equal(via(config, 'https://10.0.0.3/v2/'), HTTPS);
});
