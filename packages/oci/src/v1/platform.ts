/**
 * Platforms as `os/arch[/variant][:osversion]`, the syntax of crane_image's `platform` and of
 * `docker buildx --platform`, with containerd's normalisation of architecture names.
 * @module
 */
import { InvalidArgumentError } from '../errors.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  features?: string[];
}

const component = /^[a-z0-9][a-z0-9._-]*$/;

// containerd's platforms.Normalize: the names `uname -m` prints map to the GOARCH names registries use.
const architectureAliases: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' };

/** Parses `linux/amd64`, `linux/arm/v7`, `windows/amd64:10.0.17763.1`. Throws SLIPWAY_INVALID_PLATFORM. */
export function parsePlatform(text: string): Platform {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`invalid platform "${text}": ${why}; want os/arch[/variant][:osversion], e.g. linux/arm64`, {
      code: 'SLIPWAY_INVALID_PLATFORM',
    });
  };
  const trimmed = text.trim();
  if (trimmed === '') fail('empty');
  const colon = trimmed.indexOf(':');
  const path = colon === -1 ? trimmed : trimmed.slice(0, colon);
  const osVersion = colon === -1 ? undefined : trimmed.slice(colon + 1);
  if (osVersion !== undefined && !/^[A-Za-z0-9._-]+$/.test(osVersion)) fail('malformed os version');
  const parts = path.toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3) fail('need two or three slash-separated parts');
  for (const part of parts) if (!component.test(part)) fail(`malformed component "${part}"`);
  const [os, rawArch, variant] = parts as [string, string, string | undefined];
  const platform: Platform = { os, architecture: architectureAliases[rawArch] ?? rawArch };
  if (variant !== undefined) platform.variant = variant;
  if (osVersion !== undefined) platform['os.version'] = osVersion;
  return normalizePlatform(platform);
}

/** Parses a comma-separated list (`linux/amd64,linux/arm64`), rejecting duplicates. */
export function parsePlatforms(text: string | readonly string[]): Platform[] {
  // An empty element of an array (a computed list in a Pulumi program) is no platform; an empty
  // entry inside a comma-separated string is a typo.
  const whole = typeof text === 'string' ? text : text.filter((t) => t.trim() !== '').join(',');
  if (whole.trim() === '') return [];
  const items = whole.split(',').map((t) => t.trim());
  // `linux/amd64,` or `a,,b`: a platform lost in editing, most likely; say so rather than guess.
  if (items.some((t) => t === '')) throw new InvalidArgumentError(`invalid platform list ${JSON.stringify(whole)}: an empty entry`, { code: 'SLIPWAY_INVALID_PLATFORM' });
  const seen = new Set<string>();
  const result: Platform[] = [];
  for (const item of items) {
    const platform = parsePlatform(item);
    const key = formatPlatform(platform);
    if (seen.has(key)) throw new InvalidArgumentError(`platform "${key}" listed twice`, { code: 'SLIPWAY_INVALID_PLATFORM' });
    seen.add(key);
    result.push(platform);
  }
  return result;
}

/**
 * Drops variants that carry no information: arm64's default is v8 and amd64's is v1 (containerd does
 * the same), so `linux/arm64/v8` and `linux/arm64` name one platform. A bare number is containerd's
 * spelling of a variant (`linux/arm/7` is `linux/arm/v7`), and an empty variant or os.version in an
 * index entry (`"variant": ""`) is the same as none.
 */
export function normalizePlatform(platform: Platform): Platform {
  const result: Platform = { ...platform, architecture: architectureAliases[platform.architecture] ?? platform.architecture };
  if (result.variant === '') delete result.variant;
  if (result['os.version'] === '') delete result['os.version'];
  if (result.variant !== undefined && /^[0-9]+$/.test(result.variant) && (result.architecture === 'arm' || result.architecture === 'arm64')) {
    result.variant = `v${result.variant}`;
  }
  if ((result.architecture === 'arm64' && result.variant === 'v8') || (result.architecture === 'amd64' && result.variant === 'v1')) {
    delete result.variant;
  }
  return result;
}

/**
 * The variants to try, best first, for a platform named without one: `linux/arm` is v7 to Docker and
 * containerd (an index listing arm/v5 before arm/v7, as busybox's and debian's do, must not give v5),
 * then the older ones it can run. Undefined when any variant will do.
 */
export function preferredVariants(wanted: Platform): string[] | undefined {
  const w = normalizePlatform(wanted);
  return w.architecture === 'arm' && w.variant === undefined ? ['v7', 'v6', 'v5'] : undefined;
}

export function formatPlatform(platform: Platform): string {
  let text = `${platform.os}/${platform.architecture}`;
  if (platform.variant) text += `/${platform.variant}`;
  if (platform['os.version']) text += `:${platform['os.version']}`;
  return text;
}

/**
 * True when `candidate` satisfies `wanted`: os and architecture equal; variant and os.version only
 * compared when `wanted` sets them (ggcr's rule); wanted features must be a subset.
 */
export function platformMatches(candidate: Platform, wanted: Platform): boolean {
  const c = normalizePlatform(candidate);
  const w = normalizePlatform(wanted);
  if (c.os !== w.os || c.architecture !== w.architecture) return false;
  if (w.variant !== undefined && (c.variant ?? defaultVariant(c.architecture)) !== w.variant) return false;
  if (w['os.version'] !== undefined && c['os.version'] !== w['os.version']) return false;
  for (const feature of w['os.features'] ?? []) if (!(c['os.features'] ?? []).includes(feature)) return false;
  for (const feature of w.features ?? []) if (!(c.features ?? []).includes(feature)) return false;
  return true;
}

function defaultVariant(architecture: string): string | undefined {
  return architecture === 'arm' ? 'v7' : undefined;
}

/** An index child without a platform is linux/amd64 by convention (ggcr, Docker). */
export const defaultPlatform: Platform = { os: 'linux', architecture: 'amd64' };
