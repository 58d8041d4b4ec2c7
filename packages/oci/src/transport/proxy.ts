/**
 * Which requests go through an HTTP proxy, decided per origin as Go's `net/http` does
 * (`ProxyFromEnvironment`, golang.org/x/net/http/httpproxy), because docker, containerd, skopeo,
 * crane and regctl all take their proxy that way and a CI image or corporate desktop is set up for
 * them: `HTTPS_PROXY` for https:// origins, `HTTP_PROXY` for http:// ones (an https:// origin never
 * falls back to `HTTP_PROXY`), upper case before lower case, and `NO_PROXY` exempting hosts.
 *
 * Decided per origin, not per registry: a token realm (auth.docker.io) and a redirect to blob storage
 * (a CDN, S3) are other hosts, and `NO_PROXY` may name some of them and not others.
 *
 * `NO_PROXY`, comma-separated: `*` (nothing is proxied); an IP (`10.1.2.3`, `[::1]`) or IP with port
 * (`10.1.2.3:5000`); a CIDR block (`10.0.0.0/8`, any port); a domain (`corp.example`: that name and
 * every subdomain; `.corp.example` or `*.corp.example`: subdomains only), with an optional port.
 * Loopback hosts (`localhost`, 127.0.0.0/8, `::1`) are never proxied, as in Go: a proxy elsewhere
 * cannot reach this machine's loopback, and nobody lists it in `NO_PROXY` for the Go tools.
 *
 * A proxy URL may carry `user:password@` or a lone `user@` (a token), sent as `Proxy-Authorization:
 * Basic`, as Go sends them: they are secrets like a registry's, and every message names a proxy by
 * {@link ProxyRoute.label}, which has neither. A proxy URL that cannot be used (SOCKS, another scheme,
 * no host) fails the requests that would go through it, not the others: a stray `HTTP_PROXY` must not
 * break a copy between loopback registries (Go reports it per request too). A path is ignored, as Go
 * ignores it.
 * @module
 */
import { BlockList, isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Agent, Dispatcher, Pool, ProxyAgent } from 'undici';
import { InvalidArgumentError } from '../errors.js';
import { hostname, isLoopback } from './hosts.js';

/** Proxies to use instead of the environment's. An empty or absent field means none for that scheme. */
export interface ProxySettings {
  /** Proxy for http:// origins (`HTTP_PROXY`): `http://proxy:3128`, `https://…`; no scheme means http://. */
  httpProxy?: string;
  /** Proxy for https:// origins (`HTTPS_PROXY`). */
  httpsProxy?: string;
  /** Hosts that bypass the proxy (`NO_PROXY` syntax, see the module comment). */
  noProxy?: string;
}

/**
 * `'environment'` (the default): `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` (or their lower-case forms);
 * explicit settings; or `false` for direct connections whatever the environment says.
 */
export type ProxyOption = 'environment' | ProxySettings | false;

/** A proxy a request goes through. */
export interface ProxyRoute {
  /** The proxy's origin, `http://proxy.corp:3128`, without credentials: for messages, logs and the dispatcher. */
  readonly label: string;
  /** `Basic …` from the URL's user (and password), for `Proxy-Authorization`; a secret. */
  readonly authorization?: string;
  /** Whether the URL carried a password (or a lone user name, a token): what a 407 means depends on it. */
  readonly hasCredentials: boolean;
}

/** A configured proxy: usable, or the error every request that needs it fails with. */
type ProxySlot = ProxyRoute | InvalidArgumentError | undefined;

type Matcher = (host: string, port: string) => boolean;

const defaultPorts: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** Where each origin's requests go; see the module comment. */
export class ProxyConfig {
  readonly #http: ProxySlot;
  readonly #https: ProxySlot;
  readonly #secrets: string[];
  readonly #pairs: string[];
  readonly #bypassAll: boolean;
  readonly #matchers: Matcher[];

  private constructor(http: ParsedProxy | undefined, https: ParsedProxy | undefined, noProxy: string) {
    this.#http = http?.slot;
    this.#https = https?.slot;
    this.#secrets = [...(http?.secrets ?? []), ...(https?.secrets ?? [])];
    this.#pairs = [...(http?.pairs ?? []), ...(https?.pairs ?? [])];
    const { all, matchers } = parseNoProxy(noProxy);
    this.#bypassAll = all;
    this.#matchers = matchers;
  }

  /** Settings from `option`; a proxy URL that cannot be used fails only the requests that need it (routeFor). */
  static resolve(option: ProxyOption | undefined, env: NodeJS.ProcessEnv = process.env): ProxyConfig {
    if (option === false) return new ProxyConfig(undefined, undefined, '');
    if (option === undefined || option === 'environment') {
      // Upper case first, as Go's getEnvAny reads them; errors name the variable that was read.
      const pick = (upper: string, lower: string): { value?: string; name: string } =>
        env[upper] ? { value: env[upper], name: upper } : env[lower] ? { value: env[lower], name: lower } : { name: upper };
      const http = pick('HTTP_PROXY', 'http_proxy');
      const https = pick('HTTPS_PROXY', 'https_proxy');
      return new ProxyConfig(
        http.value ? parseProxyUrl(http.value, http.name) : undefined,
        https.value ? parseProxyUrl(https.value, https.name) : undefined,
        pick('NO_PROXY', 'no_proxy').value ?? '',
      );
    }
    return new ProxyConfig(
      option.httpProxy ? parseProxyUrl(option.httpProxy, 'proxy.httpProxy') : undefined,
      option.httpsProxy ? parseProxyUrl(option.httpsProxy, 'proxy.httpsProxy') : undefined,
      option.noProxy ?? '',
    );
  }

  /** True when some origin may go through a proxy. */
  get enabled(): boolean {
    return !this.#bypassAll && (this.#http !== undefined || this.#https !== undefined);
  }

  /** The proxies' passwords (as written and decoded) and lone-user tokens, for a transport's secret set. */
  get secrets(): string[] {
    return this.#secrets;
  }

  /** The proxies' `user:password` pairs, redacted whole only (SecretSet.addWhole). */
  get pairs(): string[] {
    return this.#pairs;
  }

  /**
   * The proxy for a request to `origin`, or undefined to connect directly. Throws the proxy URL's
   * InvalidArgumentError when the request would need a proxy that cannot be used.
   */
  routeFor(origin: URL): ProxyRoute | undefined {
    const slot = origin.protocol === 'https:' ? this.#https : origin.protocol === 'http:' ? this.#http : undefined;
    if (!slot || this.#bypassAll) return undefined;
    const host = canonicalHost(origin.host);
    if (isLoopback(host)) return undefined;
    const port = origin.port || defaultPorts[origin.protocol] || '';
    if (this.#matchers.some((matches) => matches(host, port))) return undefined;
    if (slot instanceof InvalidArgumentError) throw slot;
    return slot;
  }
}

/** `Host` of a URL (`[::1]:5000`, `Registry.Corp.:443`) → bare lower-case name without a trailing dot. */
function canonicalHost(host: string): string {
  return hostname(host).toLowerCase().replace(/\.$/, '');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

interface ParsedProxy {
  slot: ProxyRoute | InvalidArgumentError;
  secrets: string[];
  pairs: string[];
}

/**
 * A proxy URL as Go reads one: `proxy:3128` and `user:pw@proxy:3128` mean `http://…`, a path is
 * ignored; only http and https proxies are taken (undici's SOCKS support has no test bed here, so
 * SOCKS is refused rather than half-supported). Never throws: a bad URL becomes the error its
 * requests fail with, which never quotes the text (it may hold a password).
 */
export function parseProxyUrl(text: string, what: string): ParsedProxy {
  const trimmed = text.trim();
  let url: URL | undefined;
  // `host:3128` parses as scheme "host:" with path "3128"; only a real `scheme://` counts as one.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) url = URL.canParse(trimmed) ? new URL(trimmed) : undefined;
  else if (URL.canParse(`http://${trimmed}`)) url = new URL(`http://${trimmed}`);
  const bad = (why: string): ParsedProxy => ({ slot: new InvalidArgumentError(`${what} ${why}`), secrets: [], pairs: [] });
  if (!url || url.hostname === '') return bad('is not a valid URL (want http://[user:password@]host:port)');
  // An `@` that did not end up in the user info sits in a path, query or fragment: a password with an
  // unencoded `/`, `?` or `#`. Then the "host" is really part of the password: do not show it.
  const atInHost = url.username === '' && url.password === '' && trimmed.includes('@');
  if (atInHost) return bad("is not a valid URL: an '@' after a '/', '?' or '#' (percent-encode those characters in the user name and password)");
  const label = `${url.protocol}//${url.host}`;
  if (url.protocol === 'socks5:' || url.protocol === 'socks5h:' || url.protocol === 'socks:') {
    return bad(`${label} is a SOCKS proxy, which slipway does not support; use an HTTP proxy`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return bad(`${label} has unsupported scheme "${url.protocol}"; want http:// or https://`);
  const user = safeDecode(url.username);
  const password = safeDecode(url.password);
  const hasCredentials = url.username !== '' || url.password !== '';
  const pair = `${user}:${password}`;
  // The pair is redacted whole only: its start is the user name (see SecretSet.addWhole). A proxy
  // with a user and no password has the user as its secret.
  const secrets = !hasCredentials ? [] : [...new Set(password === '' ? [url.username, user] : [url.password, password])];
  return {
    slot: { label, hasCredentials, ...(hasCredentials ? { authorization: `Basic ${Buffer.from(pair).toString('base64')}` } : {}) },
    secrets,
    pairs: hasCredentials ? [pair] : [],
  };
}

/** `NO_PROXY` entries as matchers; see the module comment for the syntax. */
function parseNoProxy(value: string): { all: boolean; matchers: Matcher[] } {
  const matchers: Matcher[] = [];
  for (const raw of value.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return { all: true, matchers: [] };
    const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
    if (cidr) {
      const [, address, bits] = cidr as unknown as [string, string, string];
      const prefix = Number(bits);
      if (isIP(address) !== 0 && prefix <= (isIP(address) === 4 ? 32 : 128)) matchers.push(addressMatcher(address, prefix, ''));
      continue;
    }
    const { name, port } = splitEntry(entry);
    if (name === '') continue;
    if (isIP(name) !== 0) {
      matchers.push(addressMatcher(name, undefined, port));
      continue;
    }
    // `*.corp` and `.corp` match subdomains only; `corp` matches itself and its subdomains.
    const subdomainsOnly = name.startsWith('.') || name.startsWith('*.');
    const domain = name.replace(/^\*?\.+/, '').replace(/\.$/, '');
    if (domain === '') continue;
    matchers.push((host, p) => (host.endsWith(`.${domain}`) || (!subdomainsOnly && host === domain)) && (port === '' || port === p));
  }
  return { all: false, matchers };
}

/** `corp.example:5000` → name + port; `[fd00::1]:5000` and bare `fd00::1` keep the address whole. */
function splitEntry(entry: string): { name: string; port: string } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { name: bracketed[1]!, port: bracketed[2] ?? '' };
  if (isIP(entry) === 6) return { name: entry, port: '' };
  const withPort = /^(.*):(\d+)$/.exec(entry);
  return withPort ? { name: withPort[1]!, port: withPort[2]! } : { name: entry, port: '' };
}

/**
 * An IP entry (`prefix` undefined) or CIDR block, compared as addresses (so `fd00:0::1` is `fd00::1`),
 * on `port` when one is given. A name never matches. An IPv4 address and its IPv4-mapped IPv6 spelling
 * (`::ffff:10.0.0.1`) are the same host either way round, as Go's `net.IP.Equal` has it; BlockList
 * already treats them so (an IPv4-compatible `::a00:1` stays a different address, in both).
 */
function addressMatcher(address: string, prefix: number | undefined, port: string): Matcher {
  const version = isIP(address);
  const block = new BlockList();
  if (prefix === undefined) block.addAddress(address, version === 4 ? 'ipv4' : 'ipv6');
  else block.addSubnet(address, prefix, version === 4 ? 'ipv4' : 'ipv6');
  return (host, p) => {
    const hostVersion = isIP(host);
    return hostVersion !== 0 && block.check(host, hostVersion === 4 ? 'ipv4' : 'ipv6') && (port === '' || port === p);
  };
}

/** What {@link withProxies} needs besides the routes. */
export interface ProxiedDispatcherOptions {
  /** undici's ProxyAgent and Pool classes (loaded lazily: see undici.ts). */
  ProxyAgent: typeof ProxyAgent;
  Pool: typeof Pool;
  /** Keep-alive and timeouts, as the direct agent has them. */
  agent: Agent.Options;
  /** TLS towards the registry, inside the tunnel: extra CAs, or no verification for an insecure registry. */
  requestTls: ConnectionOptions;
  /** TLS towards an https:// proxy (extra CAs). */
  proxyTls: ConnectionOptions;
}

/**
 * `direct`, with each request whose origin {@link ProxyConfig.routeFor} routes sent through that
 * proxy instead: https:// origins in a CONNECT tunnel; http:// origins through an http:// proxy as
 * absolute-form requests, as Go and curl send them (proxies commonly allow CONNECT to port 443 only:
 * squid's default `SSL_ports`). Returns the dispatcher and the proxy agents it made, to close with it.
 */
export function withProxies(direct: Dispatcher, config: ProxyConfig, options: ProxiedDispatcherOptions): { dispatcher: Dispatcher; agents: Dispatcher[] } {
  const agents = new Map<string, ProxyAgent>();
  const agentFor = (route: ProxyRoute): ProxyAgent => {
    const key = `${route.label}\n${route.authorization ?? ''}`;
    let agent = agents.get(key);
    if (!agent) {
      // undici sends credentials only when the URL has both user and password; Go sends a lone user
      // (a token) too: the header is built here, from the URL's user info, and the URI goes bare.
      // The connection to the proxy gets the agent's timeouts: undici's default pool waits 300 s for a
      // CONNECT answer, whatever timeoutMs says (a proxy that accepts and never answers).
      const pool = (origin: string | URL, opts: object): Pool => new options.Pool(origin, { ...options.agent, ...opts });
      agent = new options.ProxyAgent({
        ...options.agent,
        uri: route.label,
        ...(route.authorization ? { token: route.authorization } : {}),
        proxyTunnel: false,
        requestTls: options.requestTls,
        proxyTls: options.proxyTls,
        clientFactory: pool,
        factory: pool,
      });
      agents.set(key, agent);
    }
    return agent;
  };
  const dispatcher = direct.compose((dispatch) => (opts, handler) => {
    const route = opts.origin === undefined ? undefined : config.routeFor(new URL(String(opts.origin)));
    return route ? agentFor(route).dispatch(opts, handler) : dispatch(opts, handler);
  });
  return {
    dispatcher,
    get agents() {
      return [...agents.values()];
    },
  };
}
