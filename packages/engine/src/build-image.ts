/**
 * `buildImage`: the build op every front door calls (the CLI's `slipway build`, the Image resource's
 * create/update). It takes the Image resource's inputs, with string forms allowed where users write
 * strings (`--cache-from` syntax, `kind=address` builders, secrets by value), normalises them, and
 * runs @slipway/build's `build()`.
 * @module
 */
// Types only at load: @slipway/build (builders, context hashing, BuildKit's protocol) is imported when
// a build runs, so `slipway copy`, `digest` and the other registry commands do not load it (~25 ms
// of every CLI start).
import type * as BuildPackage from '@slipway/build';
import type { BuildOptions, BuildResult, builders } from '@slipway/build';
import { InvalidArgumentError, type auth, type Digest } from '@slipway/oci';
import { normalizeAddress, type AccessOptions } from './ops/access.js';

/** The fields build() takes as they are; the rest below accept string forms too. */
type PlainBuildOptions = Pick<BuildOptions, 'context' | 'dockerfile' | 'namedContexts' | 'tags' | 'push' | 'buildArgs' | 'target' | 'labels' | 'network' | 'addHosts' | 'noCache' | 'pull' | 'onLog'>;

export interface BuildImageOptions extends AccessOptions, PlainBuildOptions {
  /** `linux/amd64`, `linux/arm64`, … (a comma-separated entry is split). */
  platforms?: string[];
  /**
   * Build secrets: `{ id: value }` (values, as IaC resources hold them, marked secret there), or
   * `id=ID,src=PATH` / `id=ID,env=VAR` strings, or SecretSpec objects.
   */
  secrets?: Record<string, string> | (string | builders.SecretSpec)[];
  /** `default`, `default=/path/key`, or SshSpec objects. */
  ssh?: (string | builders.SshSpec)[];
  /** `type=registry,ref=…`, `type=local,src=…`, a bare reference, or objects. @defaultValue the existing tags */
  cacheFrom?: (string | builders.CacheFrom)[];
  /** `type=inline`, `type=registry,ref=…[,mode=max]`, `type=local,dest=…`, or objects. @defaultValue inline when pushing */
  cacheTo?: (string | builders.CacheTo)[];
  /** `docker`, `buildah`, `buildctl=unix:///…`, `buildx=tcp://…`, `buildx:NAME`, or a selection. @defaultValue automatic */
  builder?: string | builders.BuilderSelection;
  /** Replaces the Docker-config keychain after the explicit `registries`. */
  keychain?: auth.Keychain;
  /** Directory for the context hash's stat cache. */
  cacheDir?: string;
}

export interface BuildImageResult {
  /** Registry digest of the pushed image or index; absent when not pushed. */
  digest?: Digest;
  /** First tag @ digest. */
  ref?: string;
  /** Every tag @ digest. */
  refs: string[];
  platformDigests: Record<string, Digest>;
  contextHash: string;
  builder: BuildResult['builder'];
  steps?: { total: number; cached: number };
  logTail: string[];
  warnings: string[];
}

function secretsFrom(input: BuildImageOptions['secrets'], { parseSecretOption }: typeof BuildPackage): builders.SecretSpec[] {
  if (input === undefined) return [];
  if (Array.isArray(input)) return input.map((entry) => (typeof entry === 'string' ? parseSecretOption(entry) : { ...entry }));
  return Object.entries(input).map(([id, value]) => {
    if (typeof value !== 'string') throw new InvalidArgumentError(`secret "${id}" must be a string value`);
    return { id, value };
  });
}

/** Builds (and with `push`, publishes) an image; see @slipway/build `build()` for the behaviour and errors. */
export async function buildImage(options: BuildImageOptions): Promise<BuildImageResult> {
  const pkg = await import('@slipway/build');
  const { build, parseBuilderOption, parseCacheFrom, parseCacheTo, parseSshOption } = pkg;
  const platforms = options.platforms?.flatMap((p) => p.split(',')).map((p) => p.trim()).filter((p) => p !== '');
  const registries = (options.registries ?? []).map((entry) => {
    if (!entry.username) throw new InvalidArgumentError(`registry ${JSON.stringify(entry.address)}: username is empty`);
    return { address: normalizeAddress(entry.address), username: entry.username, password: entry.password };
  });
  const result = await build({
    ...(options.context !== undefined ? { context: options.context } : {}),
    ...(options.dockerfile !== undefined ? { dockerfile: options.dockerfile } : {}),
    ...(options.namedContexts ? { namedContexts: options.namedContexts } : {}),
    ...(options.tags ? { tags: options.tags } : {}),
    push: options.push ?? false,
    ...(platforms ? { platforms } : {}),
    ...(options.buildArgs ? { buildArgs: options.buildArgs } : {}),
    ...(options.target ? { target: options.target } : {}),
    ...(options.labels ? { labels: options.labels } : {}),
    secrets: secretsFrom(options.secrets, pkg),
    ssh: (options.ssh ?? []).map((entry) => (typeof entry === 'string' ? parseSshOption(entry) : entry)),
    ...(options.cacheFrom ? { cacheFrom: options.cacheFrom.map((entry) => (typeof entry === 'string' ? parseCacheFrom(entry) : entry)) } : {}),
    ...(options.cacheTo ? { cacheTo: options.cacheTo.map((entry) => (typeof entry === 'string' ? parseCacheTo(entry) : entry)) } : {}),
    ...(options.builder !== undefined ? { builder: typeof options.builder === 'string' ? parseBuilderOption(options.builder) : options.builder } : {}),
    ...(options.network ? { network: options.network } : {}),
    ...(options.addHosts ? { addHosts: options.addHosts } : {}),
    noCache: options.noCache ?? false,
    pull: options.pull ?? false,
    registries,
    ...(options.keychain ? { keychain: options.keychain } : {}),
    ...(options.insecure ? { insecure: options.insecure } : {}),
    ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onLog ? { onLog: options.onLog } : {}),
  });
  return {
    ...(result.digest ? { digest: result.digest } : {}),
    ...(result.ref ? { ref: result.ref } : {}),
    refs: result.refs,
    platformDigests: result.platformDigests,
    contextHash: result.contextHash,
    builder: result.builder,
    ...(result.steps ? { steps: result.steps } : {}),
    logTail: result.logTail,
    warnings: result.warnings,
  };
}
