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
 * A proxy URL may carry `user:password@` (sent as `Proxy-Authorization: Basic`): the password is a
 * secret like a registry's, and every message names a proxy by {@link ProxyRoute.label}, which has neither.
 * @module
 */
import { BlockList, isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Agent, Dispatcher, ProxyAgent } from 'undici';
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
  /** The proxy's URL, credentials included: for the dispatcher only, never for a message. */
  readonly url: URL;
  /** `http://proxy.corp:3128`: scheme, host and port, for messages and logs. */
  readonly label: string;
}

type Matcher = (host: string, port: string) => boolean;

const defaultPorts: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** Where each origin's requests go; see the module comment. */
export class ProxyConfig {
  readonly #http: ProxyRoute | undefined;
  readonly #https: ProxyRoute | undefined;
  readonly #bypassAll: boolean;
  readonly #matchers: Matcher[];

  private constructor(http: ProxyRoute | undefined, https: ProxyRoute | undefined, noProxy: string) {
    this.#http = http;
    this.#https = https;
    const { all, matchers } = parseNoProxy(noProxy);
    this.#bypassAll = all;
    this.#matchers = matchers;
  }

  /** Settings from `option`; throws InvalidArgumentError (without the URL's credentials) for a bad proxy URL. */
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

  /** The proxies' passwords (as written and decoded) and `user:password` pairs, for a transport's secret set. */
  get secrets(): string[] {
    const out: string[] = [];
    for (const route of [this.#http, this.#https]) {
      if (!route || route.url.password === '') continue;
      const user = safeDecode(route.url.username);
      const password = safeDecode(route.url.password);
      out.push(route.url.password, password, `${user}:${password}`);
    }
    return out;
  }

  /** The proxy for a request to `origin`, or undefined to connect directly. */
  routeFor(origin: URL): ProxyRoute | undefined {
    const route = origin.protocol === 'https:' ? this.#https : origin.protocol === 'http:' ? this.#http : undefined;
    if (!route || this.#bypassAll) return undefined;
    const host = canonicalHost(origin.host);
    if (isLoopback(host)) return undefined;
    const port = origin.port || defaultPorts[origin.protocol] || '';
    return this.#matchers.some((matches) => matches(host, port)) ? undefined : route;
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

/**
 * A proxy URL as Go reads one: `proxy:3128` and `user:pw@proxy:3128` mean `http://…`; only http and
 * https proxies are taken (undici's SOCKS support has no test bed here, so SOCKS is refused rather
 * than half-supported).
 */
export function parseProxyUrl(text: string, what: string): ProxyRoute {
  const trimmed = text.trim();
  let url: URL | undefined;
  // `host:3128` parses as scheme "host:" with path "3128"; only a real `scheme://` counts as one.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) url = URL.canParse(trimmed) ? new URL(trimmed) : undefined;
  else if (URL.canParse(`http://${trimmed}`)) url = new URL(`http://${trimmed}`);
  // Never echo the text: it may hold a password.
  if (!url || url.hostname === '') throw new InvalidArgumentError(`${what} is not a valid URL (want http://[user:password@]host:port)`);
  const label = `${url.protocol}//${url.host}`;
  if (url.protocol === 'socks5:' || url.protocol === 'socks5h:' || url.protocol === 'socks:') {
    throw new InvalidArgumentError(`${what} ${label} is a SOCKS proxy, which slipway does not support; use an HTTP proxy`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`${what} ${label} has unsupported scheme "${url.protocol}"; want http:// or https://`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new InvalidArgumentError(`${what} ${label} has a path or query; a proxy URL is scheme://[user:password@]host:port`);
  }
  return { url, label };
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
      const family = isIP(address);
      const prefix = Number(bits);
      if (family !== 0 && prefix <= (family === 4 ? 32 : 128)) {
        const block = new BlockList();
        block.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
        matchers.push((host) => isIP(host) !== 0 && block.check(host, isIP(host) === 4 ? 'ipv4' : 'ipv6'));
      }
      continue;
    }
    const { name, port } = splitEntry(entry);
    if (name === '') continue;
    if (isIP(name) !== 0) {
      matchers.push((host, p) => sameAddress(host, name) && (port === '' || port === p));
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

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  const family = isIP(a);
  if (family === 0 || family !== isIP(b)) return false;
  const list = new BlockList();
  list.addAddress(b, family === 4 ? 'ipv4' : 'ipv6');
  return list.check(a, family === 4 ? 'ipv4' : 'ipv6');
}

/** What {@link withProxies} needs besides the routes. */
export interface ProxiedDispatcherOptions {
  /** undici's ProxyAgent class (loaded lazily: see undici.ts). */
  ProxyAgent: typeof ProxyAgent;
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
    let agent = agents.get(route.url.href);
    if (!agent) {
      agent = new options.ProxyAgent({
        ...options.agent,
        uri: route.url.href,
        proxyTunnel: false,
        requestTls: options.requestTls,
        proxyTls: options.proxyTls,
      });
      agents.set(route.url.href, agent);
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
