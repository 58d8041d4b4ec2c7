/**
 * Pull mirrors, remapped locations and blocked registries from containers-registries.conf(5)
 * (version 2, the `[[registry]]` tables podman, skopeo, buildah and CRI-O read), so that a machine set
 * up to pull Docker Hub through a mirror (rate limits, air-gapped networks) pulls through it with
 * slipway too.
 *
 * ```toml
 * [[registry]]
 * prefix = "docker.io"                 # optional, defaults to location
 * location = "docker.io"
 * insecure = false                      # plain HTTP / unverified TLS for this location
 * blocked = false                       # refuse pulls
 * [[registry.mirror]]
 * location = "mirror.corp:5000/hub"    # a namespace in the mirror is allowed
 * insecure = true
 * pull-from-mirror = "all"             # or "digest-only", "tag-only"
 * ```
 *
 * A reference matches the entry with the longest `prefix` that equals its `registry/repository` or
 * ends at a `/` in it (`*.example.com` matches any subdomain's host). A pull tries each mirror that
 * the reference's kind allows, then the (remapped) location; pushes go where the reference says.
 * Matching looks at the name only, as skopeo's pull does (`FindRegistry(ref.Name())`): a prefix
 * scoped to one tag or digest (`quay.io/team/app:1.0`), which the man page allows, never matches there
 * either, and behaving differently from skopeo on the same file would be the worse surprise.
 *
 * Files, as containers/image reads them: the main file is `$CONTAINERS_REGISTRIES_CONF` (which must
 * exist), else `$XDG_CONFIG_HOME/containers/registries.conf` (`~/.config/...`) if present, else
 * `/etc/containers/registries.conf`; then the drop-ins (`*.conf`, name order) of
 * `/etc/containers/registries.conf.d/` (not read when the per-user main file is) and of the per-user
 * `registries.conf.d/`. A later file's entry for a prefix replaces an earlier one; within a file the
 * first stands. Version 1 tables `[registries.insecure]` and `[registries.block]` become insecure and
 * blocked entries (a file may not mix versions; drop-ins are version 2 only). `blocked` refuses pushes
 * as well as pulls, as containers/image's client does. Short-name settings say nothing here.
 *
 * `insecure` applies to the host of the location or mirror (`*.lab.corp` to its subdomains), as
 * Docker's `insecure-registries` does: slipway decides plain HTTP and TLS verification per host.
 * @module
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type * as SmolToml from 'smol-toml';
import { InvalidArgumentError } from '../errors.js';
import { parseReference, redactUserinfo, type Reference } from '../name/reference.js';

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

export interface MirrorRule {
  /** `mirror.corp:5000/hub`: a registry host, optionally with a namespace. */
  location: string;
  insecure: boolean;
  pullFromMirror: PullFromMirror;
}

export interface RegistryRule {
  /** What a reference's `registry/repository` must start with (`docker.io`, `quay.io/team`, `*.corp`). */
  prefix: string;
  /** Where pulls of it go (empty: where the reference says). */
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrors: MirrorRule[];
  /** The file it came from, for messages. */
  file: string;
}

export interface RegistriesConf {
  rules: RegistryRule[];
  /** The files read, in order. */
  files: string[];
}

/** Where pulls of a reference are tried, in order. */
export interface PullCandidate {
  reference: Reference;
  /** True for a mirror, false for the registry the reference (or a `location` remap) names. */
  mirror: boolean;
}

export interface RegistriesConfOptions {
  /** A registries.conf to read alone; `false` reads none. @defaultValue the standard files (see the module comment) */
  path?: string | false;
  env?: NodeJS.ProcessEnv;
}

/** The standard files, in reading order. */
export function registriesConfFiles(env: NodeJS.ProcessEnv = process.env): { main: string; mainRequired: boolean; dropIns: string[] } {
  const userDir = join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'containers');
  const userFile = join(userDir, 'registries.conf');
  const userMain = exists(userFile);
  const main = env.CONTAINERS_REGISTRIES_CONF || (userMain ? userFile : '/etc/containers/registries.conf');
  const systemDropIns = userMain && !env.CONTAINERS_REGISTRIES_CONF ? [] : dropIns('/etc/containers/registries.conf.d');
  return { main, mainRequired: Boolean(env.CONTAINERS_REGISTRIES_CONF), dropIns: [...systemDropIns, ...dropIns(join(userDir, 'registries.conf.d'))] };
}

function exists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function dropIns(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.name.endsWith('.conf') && !entry.isDirectory())
      .map((entry) => entry.name)
      .sort()
      .map((name) => join(dir, name));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new InvalidArgumentError(`reading ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads the files (synchronously: a few small files, once per client) and merges their `[[registry]]`
 * entries. A missing file is skipped; one that is not valid TOML, or an entry that makes no sense, is
 * an InvalidArgumentError naming the file: pulling past a mirror the machine's owner set up would be
 * a silent surprise (and, for a blocked registry, a breach of policy).
 */
export function loadRegistriesConf(options: RegistriesConfOptions = {}): RegistriesConf {
  if (options.path === false) return { rules: [], files: [] };
  const found = options.path !== undefined ? { main: options.path, mainRequired: true, dropIns: [] } : registriesConfFiles(options.env);
  const byPrefix = new Map<string, RegistryRule>();
  const read: string[] = [];
  for (const file of [found.main, ...found.dropIns]) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(file === found.main && found.mainRequired)) continue;
      throw new InvalidArgumentError(`reading ${file}: ${(err as Error).message}`, { cause: err });
    }
    read.push(file);
    // Within a file the first entry for a prefix stands; a later file's replaces it.
    const ours = new Map<string, RegistryRule>();
    for (const rule of parseRules(text, file, file !== found.main)) if (!ours.has(rule.prefix)) ours.set(rule.prefix, rule);
    for (const [prefix, rule] of ours) byPrefix.set(prefix, rule);
  }
  return { rules: [...byPrefix.values()], files: read };
}

/**
 * smol-toml, loaded only for a file that has `[[registry]]` tables: most machines have none, or only
 * the short-name aliases drop-in, and every CLI run would otherwise pay its import. Its CommonJS
 * build, so that loading stays synchronous.
 */
let toml: typeof SmolToml | undefined;
function parseToml(text: string): unknown {
  toml ??= createRequire(import.meta.url)('smol-toml') as typeof SmolToml;
  return toml.parse(text);
}

function parseRules(text: string, file: string, dropIn: boolean): RegistryRule[] {
  // Only `registry` tables and version 1 `registries` tables matter here (short-name aliases do not).
  if (!/^\s*(\[\[?\s*registr(y|ies)\b|registry\s*=)/m.test(text)) return [];
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidArgumentError(`${file} is not valid TOML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const v1 = versionOneRules(doc.registries, file);
  const entries = doc.registry;
  if (v1.length > 0 && entries !== undefined) throw new InvalidArgumentError(`${file} mixes version 1 ([registries.*]) and version 2 ([[registry]]) tables`);
  if (v1.length > 0 && dropIn) throw new InvalidArgumentError(`${file}: drop-in files take version 2 tables ([[registry]]) only`);
  if (v1.length > 0) return v1;
  if (entries === undefined) return [];
  if (!Array.isArray(entries)) throw new InvalidArgumentError(`${file}: "registry" must be an array of tables ([[registry]])`);
  return entries.map((entry: unknown, i) => {
    const where = `${file}: [[registry]] #${i + 1}`;
    if (typeof entry !== 'object' || entry === null) throw new InvalidArgumentError(`${where} is not a table`);
    const e = entry as Record<string, unknown>;
    const location = optionalString(e.location, `${where} location`);
    const prefix = optionalString(e.prefix, `${where} prefix`) || location;
    if (prefix === '') throw new InvalidArgumentError(`${where} has neither prefix nor location`);
    if (prefix.startsWith('*.') && location !== '') throw new InvalidArgumentError(`${where}: a wildcard prefix (${prefix}) cannot have a location`);
    const digestOnly = optionalBoolean(e['mirror-by-digest-only'], `${where} mirror-by-digest-only`);
    const hasPullFromMirror = Array.isArray(e.mirror) && e.mirror.some((m: unknown) => typeof m === 'object' && m !== null && 'pull-from-mirror' in m);
    if (digestOnly && hasPullFromMirror) throw new InvalidArgumentError(`${where}: mirror-by-digest-only cannot be combined with pull-from-mirror`);
    const mirrorsRaw = e.mirror ?? [];
    if (!Array.isArray(mirrorsRaw)) throw new InvalidArgumentError(`${where}: "mirror" must be an array of tables ([[registry.mirror]])`);
    const mirrors = mirrorsRaw.map((m: unknown, j): MirrorRule => {
      const mWhere = `${where} mirror #${j + 1}`;
      if (typeof m !== 'object' || m === null) throw new InvalidArgumentError(`${mWhere} is not a table`);
      const mm = m as Record<string, unknown>;
      const mLocation = optionalString(mm.location, `${mWhere} location`);
      if (mLocation === '') throw new InvalidArgumentError(`${mWhere} has no location`);
      const pull = optionalString(mm['pull-from-mirror'], `${mWhere} pull-from-mirror`) || (digestOnly ? 'digest-only' : 'all');
      if (pull !== 'all' && pull !== 'digest-only' && pull !== 'tag-only') {
        throw new InvalidArgumentError(`${mWhere}: pull-from-mirror is "${pull}", want all, digest-only or tag-only`);
      }
      return { location: trimSlashes(mLocation), insecure: optionalBoolean(mm.insecure, `${mWhere} insecure`), pullFromMirror: pull };
    });
    return {
      prefix: trimSlashes(prefix),
      location: trimSlashes(location),
      insecure: optionalBoolean(e.insecure, `${where} insecure`),
      blocked: optionalBoolean(e.blocked, `${where} blocked`),
      mirrors,
      file,
    };
  });
}

/** `[registries.insecure] registries = [...]` and `[registries.block]`, as version 2 entries. */
function versionOneRules(tables: unknown, file: string): RegistryRule[] {
  if (typeof tables !== 'object' || tables === null) return [];
  const list = (kind: 'insecure' | 'block' | 'search'): string[] => {
    const table = (tables as Record<string, unknown>)[kind];
    if (table === undefined) return [];
    const registries = (table as Record<string, unknown>).registries;
    if (!Array.isArray(registries) || !registries.every((r) => typeof r === 'string')) throw new InvalidArgumentError(`${file}: [registries.${kind}] registries must be a list of strings`);
    return registries.map((r) => trimSlashes(r.trim())).filter((r) => r !== '');
  };
  const rules = new Map<string, RegistryRule>();
  const rule = (location: string): RegistryRule => {
    let found = rules.get(location);
    if (!found) rules.set(location, (found = { prefix: location, location, insecure: false, blocked: false, mirrors: [], file }));
    return found;
  };
  for (const location of list('insecure')) rule(location).insecure = true;
  for (const location of list('block')) rule(location).blocked = true;
  // Search registries matter to short names only; a v1 file that lists only them still counts as v1.
  if (rules.size === 0 && list('search').length > 0) return [];
  return [...rules.values()];
}

function optionalString(value: unknown, what: string): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new InvalidArgumentError(`${what} must be a string`);
  return value.trim();
}

function optionalBoolean(value: unknown, what: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${what} must be true or false`);
  return value;
}

function trimSlashes(text: string): string {
  return text.replace(/\/+$/, '');
}

/** The entry for a reference: the longest prefix that matches it (see the module comment). */
export function findRule(conf: RegistriesConf, reference: Reference): RegistryRule | undefined {
  const name = reference.name;
  let best: RegistryRule | undefined;
  let bestLength = -1;
  for (const rule of conf.rules) {
    let length: number;
    if (rule.prefix.startsWith('*.')) {
      // A wildcard names hosts only: `*.corp` matches `a.corp` and `a.b.corp`, not `corp`.
      if (!reference.registry.endsWith(rule.prefix.slice(1))) continue;
      length = rule.prefix.length;
    } else {
      if (!(name === rule.prefix || name.startsWith(`${rule.prefix}/`))) continue;
      length = rule.prefix.length;
    }
    if (length > bestLength) {
      best = rule;
      bestLength = length;
    }
  }
  return best;
}

/**
 * Where a pull of `reference` is tried, in order: the mirrors its kind allows (a digest, or a tag),
 * then the location. Throws InvalidArgumentError for a blocked registry.
 */
export function pullCandidates(conf: RegistriesConf, reference: Reference): PullCandidate[] {
  const rule = checkNotBlocked(conf, reference, 'pulling');
  if (!rule) return [{ reference, mirror: false }];
  // What follows the prefix (`/library/app`), kept on every candidate; a wildcard keeps the repository.
  const wildcard = rule.prefix.startsWith('*.');
  const rest = wildcard ? `/${reference.repository}` : reference.name.slice(rule.prefix.length);
  const suffix = `${reference.tag !== undefined ? `:${reference.tag}` : ''}${reference.digest !== undefined ? `@${reference.digest}` : ''}`;
  const at = (location: string, what: string): Reference => {
    try {
      return parseReference(`${location}${rest}${suffix}`);
    } catch (err) {
      // A location may carry a login (`user:password@mirror`): quoted without it, as the parser's message already is.
      throw new InvalidArgumentError(`${rule.file}: ${what} "${redactUserinfo(location)}" makes an invalid reference for ${reference.toString()}: ${(err as Error).message}`, { cause: err });
    }
  };
  const byDigest = reference.digest !== undefined;
  const candidates: PullCandidate[] = rule.mirrors
    .filter((m) => m.pullFromMirror === 'all' || (m.pullFromMirror === 'digest-only') === byDigest)
    .map((m) => ({ reference: at(m.location, 'mirror location'), mirror: true }));
  candidates.push({ reference: wildcard || rule.location === '' ? reference : at(rule.location, 'location'), mirror: false });
  return candidates;
}

/** The entry for a reference; throws InvalidArgumentError when it is blocked. */
export function checkNotBlocked(conf: RegistriesConf, reference: Reference, doing: string): RegistryRule | undefined {
  const rule = findRule(conf, reference);
  if (rule?.blocked) throw new InvalidArgumentError(`${doing} ${reference.toString()} is blocked by ${rule.file} (registry prefix "${rule.prefix}")`);
  return rule;
}

/** Registries the files mark insecure (locations and mirrors), for the transport's insecure list. */
export function insecureHosts(conf: RegistriesConf): string[] {
  const hosts = new Set<string>();
  const hostOf = (location: string): string => location.split('/')[0]!;
  for (const rule of conf.rules) {
    // A wildcard stays one (the transport matches `*.lab.corp` against subdomains).
    if (rule.insecure) hosts.add(hostOf(rule.location || rule.prefix));
    for (const m of rule.mirrors) if (m.insecure) hosts.add(hostOf(m.location));
  }
  return [...hosts];
}
