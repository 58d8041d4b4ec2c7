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

test('proxy URLs: scheme optional, SOCKS and paths refused, and no message ever shows the password', () => {
  assert.equal(parseProxyUrl('proxy.corp:3128', 'HTTPS_PROXY').label, 'http://proxy.corp:3128');
  assert.equal(parseProxyUrl('https://proxy.corp', 'HTTPS_PROXY').label, 'https://proxy.corp');
  const withCredentials = parseProxyUrl('bob:s3cret-CANARY@proxy.corp:3128', 'HTTPS_PROXY');
  assert.equal(withCredentials.label, 'http://proxy.corp:3128');
  assert.equal(withCredentials.url.password, 's3cret-CANARY');
  const bad = ['socks5://bob:s3cret-CANARY@proxy.corp:1080', 'ftp://bob:s3cret-CANARY@proxy.corp', 'http://bob:s3cret-CANARY@proxy.corp:3128/path', 'http://bob:s3cret-CANARY@', '::::'];
  for (const text of bad) {
    assert.throws(
      () => ProxyConfig.resolve('environment', { HTTPS_PROXY: text }),
      (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError, text);
        assert.match(err.message, /^HTTPS_PROXY /, 'the message names the variable');
        assert.doesNotMatch(err.message, /s3cret|CANARY/, 'the password is never echoed');
        return true;
      },
    );
  }
  assert.throws(() => ProxyConfig.resolve({ httpProxy: 'socks5://p:1080' }), /proxy\.httpProxy .*SOCKS/);
});

test('the proxy password, decoded and as user:password, is handed to the secret set', () => {
  const config = ProxyConfig.resolve('environment', { HTTPS_PROXY: 'http://bob:p%40ss-CANARY@proxy.corp:3128', HTTP_PROXY: 'http://proxy.corp:3128' });
  assert.deepEqual(config.secrets.sort(), ['bob:p@ss-CANARY', 'p%40ss-CANARY', 'p@ss-CANARY'].sort());
});
