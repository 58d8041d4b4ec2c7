/**
 * The BuildKit builders: `buildctl` (a BuildKit daemon at an address: the way to a shared build
 * farm) and `buildx` (the docker-buildx CLI: an existing builder, or an ephemeral `remote` builder
 * pointing at an address). Both build every platform in one run, push with
 * `--output type=image,name=…,push=true`, and report the registry's digest in the
 * `--metadata-file` under `containerimage.digest` (what docker-build reads too).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { isDigest, name, type Digest } from '@slipway/oci';
import { cacheFromArg, cacheToArg, childEnv, commonBuildFlags, csv, hostEntryForBuildKit, registryOf, secretArg, sshArg } from './args.js';
import { probe, runStep, StepCounter } from './common.js';
import { BuildError } from './errors.js';
import { which } from './process.js';
import type { Availability, Builder, BuilderCapabilities, BuilderOutput, BuilderRunOptions, BuildSpec } from './types.js';

const buildkitCapabilities: BuilderCapabilities = {
  multiPlatform: true,
  push: true,
  cacheImport: ['registry', 'local'],
  cacheExport: ['inline', 'registry', 'local'],
  secrets: true,
  ssh: true,
  namedContexts: true,
  buildOnly: true,
};

/** Addresses BuildKit clients accept. */
export function checkBuildKitAddress(address: string): string | undefined {
  return /^(unix|tcp|docker-container|kube-pod|podman-container|ssh|npipe):\/\/./.test(address)
    ? undefined
    : `"${name.redactUserinfo(address)}" is not a BuildKit address; want unix:///path/to/buildkitd.sock, tcp://host:port, docker-container://name, …`;
}

/**
 * Connects to a `unix://` or `tcp://` address once (no TLS, no gRPC), so an address where nothing
 * listens fails in milliseconds instead of after a client's connect retries (buildx's bootstrap of
 * a remote builder retries for 20 s and more). Other schemes are left to the client.
 */
export async function reachable(address: string, signal?: AbortSignal, timeout = 5000): Promise<string | undefined> {
  const url = /^(unix|tcp):\/\/(.+)$/.exec(address);
  if (!url) return undefined;
  let socket: Socket;
  if (url[1] === 'unix') {
    socket = connect({ path: url[2]! });
  } else {
    let parsed: URL;
    try {
      parsed = new URL(`tcp://${url[2]}`);
    } catch {
      return `"${name.redactUserinfo(address)}" is not a valid tcp:// address`;
    }
    if (parsed.port === '') return `"${name.redactUserinfo(address)}" has no port`;
    socket = connect({ host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port) });
  }
  return new Promise((resolve) => {
    const done = (reason?: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => done(`no answer within ${timeout / 1000} s`), timeout);
    const onAbort = (): void => done('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('close', () => signal?.removeEventListener('abort', onAbort));
    socket.once('connect', () => done());
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

async function readMetadata(file: string, builder: 'buildctl' | 'buildx', tail: string[]): Promise<Digest> {
  let metadata: Record<string, unknown>;
  try {
    metadata = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new BuildError('SLIPWAY_BUILD', `${builder} finished but wrote no readable metadata file`, { builder, logTail: tail, cause });
  }
  const digest = metadata['containerimage.digest'];
  if (typeof digest !== 'string' || !isDigest(digest)) {
    throw new BuildError('SLIPWAY_BUILD', `${builder} pushed but its metadata has no containerimage.digest`, { builder, logTail: tail });
  }
  return digest;
}

/** The registry output: every tag in one `name=` (one export, one push per tag, same digest). */
function imageOutput(spec: BuildSpec): string {
  const fields = ['type=image', `name=${spec.tags.join(',')}`, 'push=true'];
  if (spec.tags.some((tag) => spec.insecureRegistries.includes(registryOf(tag)))) fields.push('registry.insecure=true');
  return csv(fields);
}

const insecureCheck = (spec: BuildSpec) => (registry: string) => spec.insecureRegistries.includes(registry);

export interface BuildctlBuilderOptions {
  /** BuildKit daemon address; default `BUILDKIT_HOST`, else `unix:///run/buildkit/buildkitd.sock`. */
  address?: string;
  binary?: string;
  env?: Record<string, string>;
}

export class BuildctlBuilder implements Builder {
  readonly kind = 'buildctl' as const;
  readonly address: string;
  readonly capabilities = buildkitCapabilities;

  constructor(private readonly options: BuildctlBuilderOptions = {}) {
    this.address = options.address ?? process.env.BUILDKIT_HOST ?? 'unix:///run/buildkit/buildkitd.sock';
  }

  private async binary(): Promise<string | undefined> {
    return (await which(this.options.binary ?? 'buildctl'))[0];
  }

  async available(signal?: AbortSignal): Promise<Availability> {
    const bad = checkBuildKitAddress(this.address);
    if (bad) return { ok: false, reason: bad };
    const binary = await this.binary();
    if (!binary) return { ok: false, reason: this.options.binary ? `"${this.options.binary}" is not an executable` : 'no "buildctl" executable on PATH' };
    const unreachable = await reachable(this.address, signal);
    if (unreachable) return { ok: false, reason: `cannot connect to the BuildKit daemon at ${name.redactUserinfo(this.address)}: ${unreachable}` };
    const info = await probe(binary, ['--addr', this.address, '--timeout', '5', 'debug', 'info'], {
      env: childEnv({ ...this.options.env, BUILDKIT_HOST: undefined }, {}),
      signal,
      timeout: 15_000,
    });
    if (!info.ok) return { ok: false, reason: `the BuildKit daemon at ${name.redactUserinfo(this.address)} does not answer: ${info.reason}` };
    return { ok: true, version: info.output.split('\n').find((line) => line.includes('BuildKit'))?.trim().replace(/\s+/g, ' ') ?? 'buildkit' };
  }

  async build(spec: BuildSpec, options: BuilderRunOptions): Promise<BuilderOutput> {
    const buildctl = await this.binary();
    if (!buildctl) throw new BuildError('SLIPWAY_BUILDER_UNAVAILABLE', 'buildctl builder unavailable: no "buildctl" executable on PATH', { builder: 'buildctl' });
    const env = childEnv({ ...this.options.env, DOCKER_CONFIG: options.dockerConfigDir, BUILDKIT_HOST: undefined }, options.secretEnv);
    const metadataFile = join(options.workDir, 'buildctl-metadata.json');
    const args = [
      '--addr', this.address, 'build', '--progress', 'plain', '--frontend', 'dockerfile.v0',
      '--local', `context=${spec.context}`,
      '--local', `dockerfile=${dirname(spec.dockerfile)}`,
      '--opt', `filename=${basename(spec.dockerfile)}`,
      '--metadata-file', metadataFile,
    ];
    if (spec.platforms.length > 0) args.push('--opt', `platform=${spec.platforms.join(',')}`);
    for (const [key, value] of Object.entries(spec.buildArgs)) args.push('--opt', `build-arg:${key}=${value}`);
    if (spec.target) args.push('--opt', `target=${spec.target}`);
    for (const [key, value] of Object.entries(spec.labels)) args.push('--opt', `label:${key}=${value}`);
    for (const secret of spec.secrets) args.push('--secret', secretArg(secret));
    for (const ssh of spec.ssh) args.push('--ssh', sshArg(ssh));
    if (spec.network) {
      // The Dockerfile frontend's name for `docker build --network`; host needs the entitlement too.
      args.push('--opt', `force-network-mode=${spec.network}`);
      if (spec.network === 'host') args.push('--allow', 'network.host');
    }
    if (spec.addHosts.length > 0) args.push('--opt', `add-hosts=${csv(spec.addHosts.map(hostEntryForBuildKit))}`);
    if (spec.noCache) args.push('--no-cache');
    if (spec.pull) args.push('--opt', 'image-resolve-mode=pull');
    Object.entries(spec.namedContexts).forEach(([name, value], i) => {
      if (value.startsWith('/')) {
        const local = `slipway-context-${i}`;
        args.push('--local', `${local}=${value}`, '--opt', `context:${name}=local:${local}`);
      } else {
        args.push('--opt', `context:${name}=${value}`);
      }
    });
    const insecure = insecureCheck(spec);
    for (const cache of spec.cacheFrom) args.push('--import-cache', cacheFromArg(cache, insecure));
    for (const cache of spec.cacheTo) args.push('--export-cache', cacheToArg(cache, insecure));
    const pushing = spec.push && spec.tags.length > 0;
    if (pushing) args.push('--output', imageOutput(spec));
    const steps = new StepCounter();
    const result = await runStep('buildctl', buildctl, args, env, options, steps);
    if (!pushing) return { pushedTags: [], logTail: result.tail, steps: steps.result() };
    const digest = await readMetadata(metadataFile, 'buildctl', result.tail);
    return { digest, pushedTags: [...spec.tags], logTail: result.tail, steps: steps.result() };
  }
}

export interface BuildxBuilderOptions {
  /** A BuildKit address: an ephemeral `remote` builder is created for it in a private buildx config. */
  address?: string;
  /** An existing builder (`docker buildx ls`) when no address is given; default the current builder. */
  name?: string;
  /** The buildx executable (`buildx`, or `docker-buildx` from the CLI plugins dir). */
  binary?: string;
  env?: Record<string, string>;
}

export class BuildxBuilder implements Builder {
  readonly kind = 'buildx' as const;
  readonly address?: string;
  readonly capabilities = buildkitCapabilities;

  constructor(private readonly options: BuildxBuilderOptions = {}) {
    this.address = options.address;
  }

  private async binary(): Promise<string | undefined> {
    if (this.options.binary) return (await which(this.options.binary))[0];
    const onPath = (await which('buildx'))[0] ?? (await which('docker-buildx'))[0];
    if (onPath) return onPath;
    for (const dir of ['/usr/libexec/docker/cli-plugins', '/usr/lib/docker/cli-plugins', '/usr/local/lib/docker/cli-plugins', join(homedir(), '.docker/cli-plugins')]) {
      const found = (await which(join(dir, 'docker-buildx')))[0];
      if (found) return found;
    }
    return undefined;
  }

  /** The user's buildx state, which must survive DOCKER_CONFIG pointing at our temporary credentials. */
  private userBuildxConfig(): string {
    return process.env.BUILDX_CONFIG ?? join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'buildx');
  }

  /** Environment and `--builder` for a run; with an address, creates the ephemeral remote builder first. */
  private async prepare(
    buildx: string,
    stateDir: string,
    extra: Record<string, string | undefined>,
    secretEnv: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<{ env: NodeJS.ProcessEnv; builderArgs: string[]; error?: string }> {
    const base = {
      ...this.options.env,
      // Provenance would turn every push into an index with an attestation child and fill the metadata file.
      BUILDX_NO_DEFAULT_ATTESTATIONS: '1',
      BUILDX_METADATA_PROVENANCE: 'disabled',
      BUILDX_METADATA_WARNINGS: undefined,
      ...extra,
    };
    if (!this.address) {
      const env = childEnv({ ...base, BUILDX_CONFIG: this.userBuildxConfig() }, secretEnv);
      return { env, builderArgs: this.options.name ? ['--builder', this.options.name] : [] };
    }
    const bad = checkBuildKitAddress(this.address);
    if (bad) return { env: {}, builderArgs: [], error: bad };
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const env = childEnv({ ...base, BUILDX_CONFIG: stateDir, BUILDX_BUILDER: undefined }, secretEnv);
    const builderName = `slipway-${randomBytes(5).toString('hex')}`;
    const created = await probe(buildx, ['create', '--name', builderName, '--driver', 'remote', this.address], { env, signal, timeout: 30_000 });
    if (!created.ok) return { env, builderArgs: [], error: `cannot create a buildx remote builder for ${name.redactUserinfo(this.address)}: ${created.reason}` };
    return { env, builderArgs: ['--builder', builderName] };
  }

  async available(signal?: AbortSignal): Promise<Availability> {
    const buildx = await this.binary();
    if (!buildx) return { ok: false, reason: this.options.binary ? `"${this.options.binary}" is not an executable` : 'no "buildx" or "docker-buildx" executable found' };
    if (this.address) {
      const bad = checkBuildKitAddress(this.address);
      if (bad) return { ok: false, reason: bad };
      const unreachable = await reachable(this.address, signal);
      if (unreachable) return { ok: false, reason: `cannot connect to the BuildKit daemon at ${name.redactUserinfo(this.address)}: ${unreachable}` };
    }
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const state = await mkdtemp(join(tmpdir(), 'slipway-buildx-'));
    try {
      const { env, builderArgs, error } = await this.prepare(buildx, join(state, 'buildx'), {}, {}, signal);
      if (error) return { ok: false, reason: error };
      const inspect = await probe(buildx, ['inspect', '--bootstrap', ...builderArgs], { env, signal, timeout: 20_000 });
      if (!inspect.ok) return { ok: false, reason: `the buildx builder${this.address ? ` for ${name.redactUserinfo(this.address)}` : ''} is not usable: ${inspect.reason}` };
      const version = /BuildKit version:\s*(\S+)/.exec(inspect.output)?.[1];
      return { ok: true, version: `buildx${version ? `, BuildKit ${version}` : ''}` };
    } finally {
      await rm(state, { recursive: true, force: true });
    }
  }

  async build(spec: BuildSpec, options: BuilderRunOptions): Promise<BuilderOutput> {
    const buildx = await this.binary();
    if (!buildx) throw new BuildError('SLIPWAY_BUILDER_UNAVAILABLE', 'buildx builder unavailable: no "buildx" or "docker-buildx" executable found', { builder: 'buildx' });
    const { env, builderArgs, error } = await this.prepare(
      buildx,
      join(options.workDir, 'buildx'),
      { DOCKER_CONFIG: options.dockerConfigDir },
      options.secretEnv,
      options.signal,
    );
    if (error) throw new BuildError('SLIPWAY_BUILDER_UNAVAILABLE', error, { builder: 'buildx' });
    const metadataFile = join(options.workDir, 'buildx-metadata.json');
    const args = ['build', ...builderArgs, '--progress', 'plain', '--provenance=false', '--file', spec.dockerfile, '--metadata-file', metadataFile];
    if (spec.platforms.length > 0) args.push('--platform', spec.platforms.join(','));
    args.push(...commonBuildFlags(spec));
    if (spec.network === 'host') args.push('--allow', 'network.host');
    for (const [name, value] of Object.entries(spec.namedContexts)) args.push('--build-context', `${name}=${value}`);
    const insecure = insecureCheck(spec);
    for (const cache of spec.cacheFrom) args.push('--cache-from', cacheFromArg(cache, insecure));
    for (const cache of spec.cacheTo) args.push('--cache-to', cacheToArg(cache, insecure));
    const pushing = spec.push && spec.tags.length > 0;
    if (pushing) args.push('--output', imageOutput(spec));
    args.push(spec.context);
    const steps = new StepCounter();
    const result = await runStep('buildx', buildx, args, env, options, steps);
    if (!pushing) return { pushedTags: [], logTail: result.tail, steps: steps.result() };
    const digest = await readMetadata(metadataFile, 'buildx', result.tail);
    return { digest, pushedTags: [...spec.tags], logTail: result.tail, steps: steps.result() };
  }
}
