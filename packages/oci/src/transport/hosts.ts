/**
 * Which registries speak plain HTTP or unverified TLS, and which redirect targets are acceptable.
 * Docker treats 127.0.0.0/8 as an insecure registry range by default; slipway does the same for
 * every loopback address and `localhost`, and takes an explicit list for anything else.
 * @module
 */
import { BlockList, isIP } from 'node:net';
import { SlipwayError } from '../errors.js';

/** `[::1]:5000` → `::1`, `localhost:5000` → `localhost`. */
export function hostname(hostPort: string): string {
  if (hostPort.startsWith('[')) {
    const end = hostPort.indexOf(']');
    return end === -1 ? hostPort : hostPort.slice(1, end);
  }
  const colon = hostPort.lastIndexOf(':');
  return colon === -1 || hostPort.indexOf(':') !== colon ? hostPort : hostPort.slice(0, colon);
}

export function isLoopback(host: string): boolean {
  const name = hostname(host).toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return loopbackV6.check(name, 'ipv6');
  return false;
}

/** `::1` and IPv4-mapped 127.0.0.0/8 in either spelling (`::ffff:127.0.0.1`, WHATWG URL's `::ffff:7f00:1`). */
const loopbackV6 = new BlockList();
loopbackV6.addAddress('::1', 'ipv6');
loopbackV6.addSubnet('::ffff:7f00:0', 104, 'ipv6');

/** True for loopback, RFC 1918, link-local (incl. cloud metadata 169.254.169.254) and IPv6 ULA literals. */
export function isPrivateAddress(host: string): boolean {
  const name = hostname(host).toLowerCase();
  if (isLoopback(name)) return true;
  if (isIP(name) === 4) {
    const [a, b] = name.split('.').map(Number) as [number, number];
    return a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254);
  }
  if (isIP(name) === 6) return /^f[cd]/.test(name) || name.startsWith('fe80:');
  return false;
}

/**
 * Matches `host` or `host:port` entries of the insecure list against a registry host; a `*.lab.corp`
 * entry (registries.conf's wildcard) matches every subdomain of lab.corp, on any port.
 */
export function matchesInsecure(host: string, insecure: readonly string[]): boolean {
  const lower = host.toLowerCase();
  return insecure.some((entry) => {
    const e = entry.toLowerCase().replace(/^https?:\/\//, '').replace(/\/+$/, '');
    if (e.startsWith('*.')) return hostname(lower).endsWith(e.slice(1));
    return e === lower || e === hostname(lower);
  });
}

/**
 * Refuses a redirect or token realm that would leave a public registry for a private address
 * (SSRF; ggcr #2258, #2295) or downgrade to plain HTTP from a registry that speaks HTTPS.
 */
export function checkHop(from: URL, to: URL, what: string): void {
  if (to.protocol !== 'https:' && to.protocol !== 'http:') {
    throw new SlipwayError('SLIPWAY_REGISTRY', `${what} points at unsupported URL scheme "${to.protocol}"`);
  }
  if (from.protocol === 'https:' && to.protocol === 'http:' && !isLoopback(to.host)) {
    throw new SlipwayError('SLIPWAY_REGISTRY', `${what} downgrades from https://${from.host} to http://${to.host}; refusing`);
  }
  if (!isPrivateAddress(from.host) && isPrivateAddress(to.host)) {
    throw new SlipwayError('SLIPWAY_REGISTRY', `${what} points from public host ${from.host} to private address ${to.host}; refusing`);
  }
}
