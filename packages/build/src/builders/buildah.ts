/**
 * The `buildah` builder: daemonless builds. Several platforms go into one run with
 * `--platform a,b --manifest NAME`, then `buildah manifest push --all --digestfile` publishes the
 * list and reports the digest the registry stored; one platform is `buildah push --digestfile`.
 * Credentials go through `--authfile` (containers auth.json, the same `auths` map as Docker's).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest } from '@slipway/oci';
import { childEnv, commonBuildFlags } from './args.js';
import { probe, runStep, StepCounter } from './common.js';
import { BuildError } from './errors.js';
import { run, which } from './process.js';
import type { Availability, Builder, BuilderCapabilities, BuilderOutput, BuilderRunOptions, BuildSpec } from './types.js';

export interface BuildahBuilderOptions {
  binary?: string;
  /** Extra environment (e.g. `STORAGE_DRIVER=vfs`, `BUILDAH_ISOLATION=chroot`). */
  env?: Record<string, string>;
}

export class BuildahBuilder implements Builder {
  readonly kind = 'buildah' as const;
  readonly address = undefined;
  readonly capabilities: BuilderCapabilities = {
    multiPlatform: true,
    push: true,
    // buildah's --cache-from/--cache-to store one image per layer in a repository: its own format.
    cacheImport: ['registry'],
    cacheExport: ['registry'],
    secrets: true,
    ssh: true,
    namedContexts: true,
    buildOnly: true,
  };

  constructor(private readonly options: BuildahBuilderOptions = {}) {}

  private async binary(): Promise<string | undefined> {
    return (await which(this.options.binary ?? 'buildah'))[0];
  }

  async available(signal?: AbortSignal): Promise<Availability> {
    const binary = await this.binary();
    if (!binary) return { ok: false, reason: this.options.binary ? `"${this.options.binary}" is not an executable` : 'no "buildah" executable on PATH' };
    const version = await probe(binary, ['version'], { env: childEnv({ ...this.options.env }, {}), signal, timeout: 15_000 });
    if (!version.ok) return { ok: false, reason: version.reason };
    return { ok: true, version: `buildah ${/Version:\s*(\S+)/.exec(version.output)?.[1] ?? 'unknown'}` };
  }

  /**
   * buildah reads `.containerignore`/`.dockerignore` its own way (imagebuilder's parser, the legacy
   * matcher, its copier's walk; no ignore file for named contexts): verified against buildah 1.28 by
   * test/e2e/audit-build-buildah-oracle.test.ts.
   */
  async ignoreDialect(): Promise<'buildah'> {
    return 'buildah';
  }

  async build(spec: BuildSpec, options: BuilderRunOptions): Promise<BuilderOutput> {
    const buildah = await this.binary();
    if (!buildah) throw new BuildError('SLIPWAY_BUILDER_UNAVAILABLE', 'buildah builder unavailable: no "buildah" executable on PATH', { builder: 'buildah' });
    const authFile = join(options.dockerConfigDir, 'config.json');
    const env = childEnv({ ...this.options.env, REGISTRY_AUTH_FILE: authFile }, options.secretEnv);
    const steps = new StepCounter();
    const localName = `localhost/slipway-build-${randomBytes(6).toString('hex')}`;
    const manifestList = spec.platforms.length > 1;
    const keepLocally = !spec.push && !manifestList;
    // buildah has one TLS switch per command: build() lists only the insecure registries this build
    // talks to, so any entry means plain HTTP (or unverified TLS) is needed somewhere.
    const tlsVerify = spec.insecureRegistries.length > 0 ? ['--tls-verify=false'] : [];
    const iidFile = join(options.workDir, 'buildah-iid');
    // --force-rm: a failed build's working containers stay in the store otherwise (buildah removes
    // them only after a success), a few per failure, piling up on a CI runner for good.
    const args = ['build', '--layers', '--force-rm', '--authfile', authFile, ...tlsVerify, '--file', spec.dockerfile];
    // One platform: an unnamed image found by ID (no name to clean up, and its intermediate layers
    // stay as the cache for the next build; `buildah rmi` would prune them). Several: a manifest list
    // under a unique name, removed afterwards (the images in it stay, for the same reason).
    if (manifestList) args.push('--manifest', localName);
    else args.push('--iidfile', iidFile);
    if (keepLocally) for (const tag of spec.tags) args.push('--tag', tag);
    if (spec.platforms.length > 0) args.push('--platform', spec.platforms.join(','));
    args.push(...commonBuildFlags(spec, '--pull=always'));
    for (const [name, value] of Object.entries(spec.namedContexts)) args.push('--build-context', `${name}=${value}`);
    for (const cache of spec.cacheFrom) if (cache.type === 'registry') args.push('--cache-from', repositoryOnly(cache.ref));
    for (const cache of spec.cacheTo) if (cache.type === 'registry') args.push('--cache-to', repositoryOnly(cache.ref));
    args.push(spec.context);

    const cleanup = async (): Promise<void> => {
      if (manifestList) await run({ command: buildah, args: ['manifest', 'rm', localName], env, timeout: 60_000 }).catch(() => undefined);
    };
    try {
      let result = await runStep('buildah', buildah, args, env, options, steps);
      if (!spec.push || spec.tags.length === 0) return { pushedTags: [], logTail: result.tail, steps: steps.result() };
      const digestFile = join(options.workDir, 'buildah-digest');
      const first = spec.tags[0]!;
      const push = manifestList
        ? ['manifest', 'push', '--all', '--authfile', authFile, ...tlsVerify, '--digestfile', digestFile, localName, `docker://${first}`]
        : ['push', '--authfile', authFile, ...tlsVerify, '--digestfile', digestFile, (await readFile(iidFile, 'utf8')).trim(), `docker://${first}`];
      options.onLog?.({ stream: 'stderr', line: `slipway: buildah ${manifestList ? 'manifest push --all' : 'push'} to ${first}` });
      result = await runStep('buildah', buildah, push, env, options, steps, 'push');
      const digest = (await readFile(digestFile, 'utf8')).trim();
      if (!isDigest(digest)) throw new BuildError('SLIPWAY_BUILD', `buildah wrote no digest after pushing ${first} (got ${JSON.stringify(digest.slice(0, 80))})`, { builder: 'buildah', logTail: result.tail });
      return { digest, pushedTags: [first], logTail: result.tail, steps: steps.result() };
    } finally {
      await cleanup();
    }
  }
}

/** buildah's cache options take a repository; a tag, if given, is dropped. */
function repositoryOnly(ref: string): string {
  const at = ref.indexOf('@');
  const noDigest = at === -1 ? ref : ref.slice(0, at);
  const colon = noDigest.lastIndexOf(':');
  return colon > noDigest.lastIndexOf('/') ? noDigest.slice(0, colon) : noDigest;
}
