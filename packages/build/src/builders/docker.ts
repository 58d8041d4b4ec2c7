/**
 * The `docker` builder: BuildKit inside the Docker Engine, driven by the docker CLI with
 * DOCKER_BUILDKIT=1. Engine 20.10 can neither push a multi-platform result nor export OCI, so this
 * is the "one platform per run" path: each platform is built into the Engine under a temporary
 * name, then build() pushes those images with @slipway/oci (daemon source + copy) and assembles the
 * index itself. The digest is therefore always the one the registry stored, never the local image
 * ID (pulumi-docker #739, #778, #846, #1015).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { name, throwIfAborted } from '@slipway/oci';
import { probe, runStep, StepCounter } from './common.js';
import { BuildError } from './errors.js';
import { childEnv, commonBuildFlags, platformSlug } from './args.js';
import { run, which } from './process.js';
import type { Availability, Builder, BuilderCapabilities, BuilderOutput, BuilderRunOptions, BuildSpec } from './types.js';

export interface DockerBuilderOptions {
  /** Engine address (`unix:///var/run/docker.sock`, `tcp://…`); default `DOCKER_HOST` or the local socket. */
  address?: string;
  /** The docker CLI to use; default the first `docker` on PATH that can build with BuildKit. */
  binary?: string;
  /** Extra environment for the CLI. */
  env?: Record<string, string>;
}

export class DockerBuilder implements Builder {
  readonly kind = 'docker' as const;
  readonly address?: string;
  readonly capabilities: BuilderCapabilities = {
    multiPlatform: false,
    push: false,
    cacheImport: ['registry'],
    cacheExport: ['inline'],
    secrets: true,
    ssh: true,
    namedContexts: false,
    buildOnly: true,
  };
  private binary: Promise<{ path?: string; reason?: string; major?: number; aborted?: boolean }> | undefined;

  constructor(private readonly options: DockerBuilderOptions = {}) {
    this.address = options.address ?? process.env.DOCKER_HOST;
  }

  private env(extra: Record<string, string | undefined> = {}, secretEnv: Record<string, string> = {}): NodeJS.ProcessEnv {
    return childEnv({ ...this.options.env, DOCKER_BUILDKIT: '1', DOCKER_HOST: this.address, ...extra }, secretEnv);
  }

  /**
   * Docker CLIs from 23.0 on build through the buildx plugin and refuse BuildKit without it, so a
   * newer client found first on PATH may be unusable while the distribution's client works: take
   * the first one that is older than 23 or has buildx.
   */
  private async resolveBinary(signal?: AbortSignal): Promise<{ path?: string; reason?: string; major?: number }> {
    for (;;) {
      const lookup = (this.binary ??= this.lookUpBinary(signal));
      const found = await lookup;
      if (!found.aborted) return found;
      // A lookup its caller cancelled says nothing about the machine: forgotten, or one aborted check
      // left a reused builder "unavailable" for good. A caller still waiting looks again, under its own signal.
      if (this.binary === lookup) this.binary = undefined;
      throwIfAborted(signal);
    }
  }

  private lookUpBinary(signal?: AbortSignal): Promise<{ path?: string; reason?: string; major?: number; aborted?: boolean }> {
    return (async () => {
      const candidates = this.options.binary ? await which(this.options.binary) : await which('docker');
      if (candidates.length === 0) return { reason: this.options.binary ? `"${this.options.binary}" is not an executable` : 'no "docker" executable on PATH' };
      const reasons: string[] = [];
      for (const candidate of candidates) {
        const version = await probe(candidate, ['--version'], { env: this.env(), signal, timeout: 10_000 });
        const major = /version (\d+)\./.exec(version.output)?.[1];
        if (!version.ok || major === undefined) {
          reasons.push(`${candidate}: ${version.reason ?? 'unrecognised version'}`);
          continue;
        }
        if (Number(major) < 23) return { path: candidate, major: Number(major) };
        const buildx = await probe(candidate, ['buildx', 'version'], { env: this.env(), signal, timeout: 10_000 });
        if (buildx.ok) return { path: candidate, major: Number(major) };
        reasons.push(`${candidate}: docker ${major} needs the buildx plugin for BuildKit builds and it is missing`);
      }
      return signal?.aborted ? { aborted: true } : { reason: reasons.join('; ') };
    })();
  }

  /** Clients before 23.0 send the context themselves with the legacy `.dockerignore` reading; later ones use buildx. */
  async ignoreDialect(signal?: AbortSignal): Promise<'buildkit' | 'legacy'> {
    const binary = await this.resolveBinary(signal);
    return binary.major !== undefined && binary.major < 23 ? 'legacy' : 'buildkit';
  }

  async available(signal?: AbortSignal): Promise<Availability> {
    const binary = await this.resolveBinary(signal);
    if (!binary.path) return { ok: false, reason: binary.reason };
    const version = await probe(binary.path, ['version', '--format', '{{.Client.Version}} {{.Server.Version}}'], {
      env: this.env(),
      signal,
      timeout: 15_000,
    });
    if (!version.ok) return { ok: false, reason: `the Docker Engine${this.address ? ` at ${name.redactUserinfo(this.address)}` : ''} does not answer: ${version.reason}` };
    const [client, server] = version.output.trim().split(' ');
    return { ok: true, version: `docker client ${client}, engine ${server}` };
  }

  async build(spec: BuildSpec, options: BuilderRunOptions): Promise<BuilderOutput> {
    const binary = await this.resolveBinary(options.signal);
    if (!binary.path) throw new BuildError('SLIPWAY_BUILDER_UNAVAILABLE', `docker builder unavailable: ${binary.reason}`, { builder: 'docker' });
    const docker = binary.path;
    const env = this.env({ DOCKER_CONFIG: options.dockerConfigDir }, options.secretEnv);
    const steps = new StepCounter();
    const localName = `slipway-build-${randomBytes(6).toString('hex')}`;
    const platforms: (string | undefined)[] = spec.platforms.length > 0 ? spec.platforms : [undefined];
    // Without a push, a single-platform result is kept in the Engine under the user's tags, as
    // `docker build -t` would; a multi-platform one cannot be (20.10 stores one platform per name).
    const keepLocally = !spec.push && platforms.length === 1;
    const built: { localName: string; platform?: string }[] = [];
    let tail: string[] = [];
    try {
      for (const platform of platforms) {
        const name = `${localName}:${platform ? platformSlug(platform) : 'default'}`;
        const args = ['build', '--progress', 'plain', '--file', spec.dockerfile, '--tag', name];
        if (keepLocally) for (const tag of spec.tags) args.push('--tag', tag);
        if (platform) args.push('--platform', platform);
        args.push(...commonBuildFlags(spec));
        for (const cache of spec.cacheFrom) {
          // Engine 20.10 imports registry caches by image reference only.
          if (cache.type === 'registry') args.push('--cache-from', cache.ref);
        }
        if (spec.cacheTo.some((cache) => cache.type === 'inline')) args.push('--build-arg', 'BUILDKIT_INLINE_CACHE=1');
        args.push(spec.context);
        options.onLog?.({ stream: 'stderr', line: `slipway: docker build${platform ? ` for ${platform}` : ''}` });
        const result = await runStep('docker', docker, args, env, options, steps);
        tail = result.tail;
        built.push(platform ? { localName: name, platform } : { localName: name });
      }
      if (!spec.push || spec.tags.length === 0) return { pushedTags: [], logTail: tail, steps: steps.result() };
      if (!options.pusher) throw new BuildError('SLIPWAY_BUILD', 'docker builder needs a pusher to publish its result', { builder: 'docker' });
      const tag = spec.tags[0]!;
      options.onLog?.({ stream: 'stderr', line: `slipway: pushing ${built.length} image${built.length === 1 ? '' : 's'} from the Docker Engine to ${tag}` });
      const digest = await options.pusher.pushFromDaemon(built, tag, {
        signal: options.signal,
        index: built.length > 1,
        dockerHost: this.address,
      });
      return { digest, pushedTags: [tag], logTail: tail, steps: steps.result() };
    } finally {
      // Temporary names only (the user's tags stay); --no-prune keeps the layers for the next build.
      const names = built.map((image) => image.localName);
      if (names.length > 0) {
        await run({ command: docker, args: ['image', 'rm', '--no-prune', ...names], env, timeout: 30_000 }).catch(() => undefined);
      }
    }
  }
}
