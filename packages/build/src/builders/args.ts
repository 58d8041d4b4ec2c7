/**
 * Command-line fragments shared by the builders: BuildKit's CSV attribute syntax, secrets, SSH,
 * caches, and the environment handed to a child.
 * @module
 */
import { isIP } from 'node:net';
import type { BuildSpec, CacheFrom, CacheTo, SecretSpec, SshSpec } from './types.js';

/** One CSV record as BuildKit parses `--output`/`--cache-to` values: fields holding `,` or `"` are quoted. */
export function csv(fields: readonly string[]): string {
  return fields.map((field) => (/[",\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field)).join(',');
}

/** `id=ID,src=PATH` or `id=ID,env=VAR`; the value itself never appears in argv. */
export function secretArg(secret: SecretSpec): string {
  if (secret.src !== undefined) return csv([`id=${secret.id}`, `src=${secret.src}`]);
  if (secret.env !== undefined) return csv([`id=${secret.id}`, `env=${secret.env}`]);
  throw new Error(`secret "${secret.id}" was not resolved to a file or an environment variable`);
}

/** `default`, `default=/path/key`, `id=/sock` — docker/buildx/buildctl/buildah share this form. */
export function sshArg(ssh: SshSpec): string {
  return ssh.paths && ssh.paths.length > 0 ? `${ssh.id}=${ssh.paths.join(',')}` : ssh.id;
}

export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.split(':')[0]!;
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** The registry part of a fully qualified reference. */
export function registryOf(reference: string): string {
  const slash = reference.indexOf('/');
  return slash === -1 ? 'docker.io' : reference.slice(0, slash);
}

/** `--import-cache`/`--cache-from` value in BuildKit syntax. */
export function cacheFromArg(cache: CacheFrom, insecure: (registry: string) => boolean): string {
  if (cache.type === 'local') return csv(['type=local', `src=${cache.src}`]);
  const fields = ['type=registry', `ref=${cache.ref}`];
  if (insecure(registryOf(cache.ref))) fields.push('registry.insecure=true');
  return csv(fields);
}

/** `--export-cache`/`--cache-to` value in BuildKit syntax. */
export function cacheToArg(cache: CacheTo, insecure: (registry: string) => boolean): string {
  if (cache.type === 'inline') return 'type=inline';
  const fields = cache.type === 'local' ? ['type=local', `dest=${cache.dest}`] : ['type=registry', `ref=${cache.ref}`];
  if (cache.mode) fields.push(`mode=${cache.mode}`);
  if (cache.type === 'registry' && insecure(registryOf(cache.ref))) fields.push('registry.insecure=true');
  return csv(fields);
}

/** `host:ip` (Docker's form) → `host=ip` (BuildKit's `add-hosts` option). */
export function hostEntryForBuildKit(entry: string): string {
  const at = entry.indexOf('=') !== -1 ? entry.indexOf('=') : entry.indexOf(':');
  return at === -1 ? entry : `${entry.slice(0, at)}=${entry.slice(at + 1)}`;
}

/** `host=ip` or `host:ip` → `host:ip` (docker's and buildah's `--add-host`). */
export function hostEntryForDocker(entry: string): string {
  const eq = entry.indexOf('=');
  return eq === -1 ? entry : `${entry.slice(0, eq)}:${entry.slice(eq + 1)}`;
}

/**
 * The child's environment: ours, minus variables that would point the tool at the user's
 * credentials, plus what the builder sets (DOCKER_CONFIG etc.) and secret values under random names.
 */
export function childEnv(extra: Record<string, string | undefined>, secretEnv: Record<string, string>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  delete env.DOCKER_CONFIG;
  delete env.REGISTRY_AUTH_FILE;
  delete env.DOCKER_AUTH_CONFIG;
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return { ...env, ...secretEnv };
}

/** A tag-safe slug of a platform: `linux/arm/v7` → `linux-arm-v7`. */
export function platformSlug(platform: string): string {
  return platform.replace(/[^a-zA-Z0-9_.-]+/g, '-');
}

/**
 * Flags `docker build`, `docker buildx build` and `buildah build` share (inputs other than caches,
 * outputs, platform and named contexts). `pullFlag` is how the tool spells "always pull the base"
 * (buildah: `--pull=always`).
 */
export function commonBuildFlags(spec: BuildSpec, pullFlag = '--pull'): string[] {
  const args: string[] = [];
  for (const [key, value] of Object.entries(spec.buildArgs)) args.push('--build-arg', `${key}=${value}`);
  if (spec.target) args.push('--target', spec.target);
  for (const [key, value] of Object.entries(spec.labels)) args.push('--label', `${key}=${value}`);
  for (const secret of spec.secrets) args.push('--secret', secretArg(secret));
  for (const ssh of spec.ssh) args.push('--ssh', sshArg(ssh));
  if (spec.network) args.push('--network', spec.network);
  for (const host of spec.addHosts) args.push('--add-host', hostEntryForDocker(host));
  if (spec.noCache) args.push('--no-cache');
  if (spec.pull) args.push(pullFlag);
  return args;
}
