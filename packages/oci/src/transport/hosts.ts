/**
 * Which registries speak plain HTTP or unverified TLS, and which redirect targets are acceptable.
 * Docker treats 127.0.0.0/8 as an insecure registry range by default; slipway does the same for
 * every loopback address and `localhost`, and takes an explicit list for anything else.
 * @module
 */
import { lookup } from 'node:dns/promises';
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

/**
 * Private ranges, IPv4 also as the IPv4-mapped IPv6 addresses a URL normalises `[::ffff:10.0.0.1]`
 * to (`::ffff:a00:1`): a list per family does not cover the other family's spelling.
 */
function rangeList(v4: [string, number][], v6: [string, number][]): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of v4) {
    list.addSubnet(network, prefix, 'ipv4');
    const [a, b, c, d] = network.split('.').map(Number) as [number, number, number, number];
    list.addSubnet(`::ffff:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`, 96 + prefix, 'ipv6');
  }
  for (const [network, prefix] of v6) list.addSubnet(network, prefix, 'ipv6');
  return list;
}

/** Loopback, "this network", RFC 1918, link-local (cloud metadata at 169.254.169.254), IPv6 loopback and ULA. */
const privateRanges = rangeList(
  [
    ['127.0.0.0', 8],
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['172.16.0.0', 12],
    ['192.168.0.0', 16],
    ['169.254.0.0', 16],
  ],
  [
    ['::1', 128],
    ['::', 128],
    ['fc00::', 7],
    ['fe80::', 10],
  ],
);

/** Link-local: where clouds serve instance metadata and credentials (169.254.169.254, fe80::/10). */
const linkLocalRanges = rangeList([['169.254.0.0', 16]], [['fe80::', 10]]);

function inRanges(host: string, ranges: BlockList): boolean {
  const name = hostname(host).toLowerCase();
  const family = isIP(name);
  return family !== 0 && ranges.check(name, family === 4 ? 'ipv4' : 'ipv6');
}

/** True for loopback, RFC 1918, link-local (incl. cloud metadata 169.254.169.254) and IPv6 ULA literals, in any spelling. */
export function isPrivateAddress(host: string): boolean {
  return isLoopback(host) || inRanges(host, privateRanges);
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

/** Link-local addresses, where clouds serve instance metadata and credentials (169.254.169.254, fe80::/10), in any spelling. */
export function isLinkLocal(host: string): boolean {
  return inRanges(host, linkLocalRanges);
}

/**
 * Refuses a redirect or token realm that would leave a public registry for a private address
 * (SSRF; ggcr #2258, #2295) or downgrade to plain HTTP from a registry that speaks HTTPS.
 *
 * "Public" is what the registry's name resolves to, not the name's look: an on-premises registry
 * on a DNS name whose storage redirects to MinIO on 10.x, or a `vm` name for 127.0.0.1, is in the
 * private network already (skopeo and regctl follow such redirects; ggcr checks only realms). Every
 * address the name resolves to must be private: an attacker controlling a public registry's DNS
 * could add one private record beside the public one. Link-local targets (cloud metadata) are
 * refused from any registry that is not link-local itself. A registry the user lists in `trusted`
 * (the insecure list) is trusted with its network.
 */
export async function checkHop(from: URL, to: URL, what: string, trusted: readonly string[] = []): Promise<void> {
  if (to.protocol !== 'https:' && to.protocol !== 'http:') {
    throw new SlipwayError('SLIPWAY_REGISTRY', `${what} points at unsupported URL scheme "${to.protocol}"`);
  }
  if (from.protocol === 'https:' && to.protocol === 'http:' && !isLoopback(to.host)) {
    throw new SlipwayError('SLIPWAY_REGISTRY', `${what} downgrades from https://${from.host} to http://${to.host}; refusing`);
  }
  if (!isPrivateAddress(to.host) || matchesInsecure(from.host, trusted)) return;
  if (isLinkLocal(to.host) && !isLinkLocal(from.host)) {
    throw new SlipwayError('SLIPWAY_REGISTRY', `${what} points from ${from.host} to link-local address ${to.host} (where clouds serve instance metadata); refusing (list ${from.host} in insecure to trust it)`);
  }
  if (isPrivateAddress(from.host)) return;
  const name = hostname(from.host);
  let shown = `public address ${from.host}`;
  if (isIP(name) === 0) {
    const addresses = (await lookup(name, { all: true }).catch(() => [])).map((a) => a.address);
    if (addresses.length > 0 && addresses.every((address) => isPrivateAddress(address))) return;
    shown = `${from.host} (${addresses.length > 0 ? `resolving to ${addresses.join(', ')}` : 'not resolved'})`;
  }
  throw new SlipwayError(
    'SLIPWAY_REGISTRY',
    `${what} points from ${shown} to private address ${to.host}; refusing (a public registry may not send requests into private networks; list ${from.host} in insecure to trust it)`,
  );
}
