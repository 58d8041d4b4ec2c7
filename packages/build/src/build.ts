/**
 * `build()`: one entry point that resolves the inputs, picks a builder, hashes the context, gives
 * the builder scoped credentials, runs it, publishes the result at every tag, and reports the
 * digest the registry holds (confirmed with a HEAD per tag, never a local image ID).
 *
 * Defaults worth knowing:
 * - Inline cache is on when pushing with a BuildKit builder (cache metadata in the image config),
 *   and the image's own tags that already exist are cache sources (MaterializeInc's default;
 *   pulumi-docker needed `BUILDKIT_INLINE_CACHE=1` by hand, #715). Pass `cacheTo: []` /
 *   `cacheFrom: []` to turn either off.
 * - Nothing is pushed unless `push` is true (buildx's default); without push a builder only builds
 *   (docker and buildah keep a single-platform result locally under the tags).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { InvalidArgumentError, SlipwayError, formatPlatform, name, parsePlatforms, throwIfAborted, type Digest, type auth } from '@slipway/oci';
import { isLoopbackRegistry, registryOf } from './builders/args.js';
import { writeDockerConfig, type TemporaryDockerConfig } from './builders/credentials.js';
import { addressSecrets } from './builders/common.js';
import { BuildError } from './builders/errors.js';
import { Redactor, type OnLog } from './builders/process.js';
import { createBuilder, selectBuilder } from './builders/select.js';
import type { Builder, BuilderKind, BuilderSelection, BuildSpec, CacheFrom, CacheTo, SecretSpec, SshSpec } from './builders/types.js';
import { hashContext } from './context/index.js';
import { imageReferences } from './dockerfile-refs.js';
import { parseBuilderOption } from './options.js';
import { openRegistry, type RegistryAccess } from './registry.js';

/** Credentials for one registry, as the IaC resources take them (`registries: [{address, username, password}]`). */
export interface RegistryCredentials {
  /** Registry as in references: `ghcr.io`, `127.0.0.1:5000`, `docker.io`. */
  address: string;
  username: string;
  password: string;
}

export interface BuildOptions {
  /** Build context directory. @defaultValue `.` */
  context?: string;
  /** Dockerfile path (relative to the current directory, like `docker build -f`), or its text. @defaultValue `<context>/Dockerfile` */
  dockerfile?: string | { inline: string };
  /** `--build-context NAME=VALUE`: a directory, or a `docker-image://` reference. */
  namedContexts?: Record<string, string>;
  /** Image references to push (`registry/repo:tag`). The first one is `ref` in the result. */
  tags?: string[];
  /** Push the result to every tag. @defaultValue false */
  push?: boolean;
  /** `os/arch[/variant]`, e.g. `['linux/amd64', 'linux/arm64']`; several give an index. @defaultValue the builder's platform */
  platforms?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  labels?: Record<string, string>;
  /** Build secrets. Their values never appear in argv, logs, errors or the image. */
  secrets?: SecretSpec[];
  ssh?: SshSpec[];
  /** @defaultValue the tags that already exist in their registries */
  cacheFrom?: CacheFrom[];
  /** @defaultValue `[{ type: 'inline' }]` when pushing and the builder can */
  cacheTo?: CacheTo[];
  /** `default`, `host`, `none` (RUN steps' network). */
  network?: string;
  /** `host:ip` entries for RUN steps' /etc/hosts. */
  addHosts?: string[];
  noCache?: boolean;
  /** Always look for newer base images. */
  pull?: boolean;
  /** Which builder: a kind, `kind=address`, or a selection. @defaultValue chosen automatically (see selectBuilder) */
  builder?: string | BuilderSelection | Builder;
  /** Explicit credentials; they win over the keychain. */
  registries?: RegistryCredentials[];
  /** Where other credentials come from (Docker config, credential helpers). @defaultValue @slipway/oci's default keychain */
  keychain?: auth.Keychain;
  /** Registries (`host[:port]`) reached over plain HTTP or unverified TLS, besides loopback ones (which always are). */
  insecure?: readonly string[];
  /** Directory for the context hash's stat cache; `false` turns it off. @defaultValue hashContext's (`$XDG_CACHE_HOME/slipway/context`) */
  cacheDir?: string | false;
  signal?: AbortSignal;
  /** Receives every line of builder output (secrets already removed), as it arrives. */
  onLog?: OnLog;
}

export interface BuildResult {
  /** The registry digest of what the tags point at (an index for several platforms). Absent when not pushed. */
  digest?: Digest;
  /** First tag `@` digest. */
  ref?: string;
  /** Every tag `@` digest, in the order the tags were given. */
  refs: string[];
  /** Each platform's image manifest digest (`linux/arm64` → `sha256:…`). */
  platformDigests: Record<string, Digest>;
  /** The context hash (files, Dockerfile content, named contexts), as hashContext computes it. */
  contextHash: string;
  /** Which builder ran. */
  builder: { kind: BuilderKind; address?: string; version?: string };
  /** The last lines of the builder's log, redacted. */
  logTail: string[];
  /** Dockerfile steps (FROM excluded) and how many came from cache, when the log shows it. */
  steps?: { total: number; cached: number };
  warnings: string[];
}

function contextError(message: string, cause?: unknown): SlipwayError {
  return new SlipwayError('SLIPWAY_CONTEXT', message, { cause });
}

async function checkDirectory(path: string, what: string): Promise<void> {
  const info = await stat(path).catch((cause: NodeJS.ErrnoException) => {
    throw contextError(`${what} "${path}" ${cause.code === 'ENOENT' ? 'does not exist' : `cannot be read (${cause.code ?? cause.message})`}`, cause);
  });
  if (!info.isDirectory()) throw contextError(`${what} "${path}" is not a directory`);
}

/** Reads a secret's value for redaction and resolves it to a file or an environment variable the child gets. */
async function resolveSecrets(
  secrets: readonly SecretSpec[],
): Promise<{ specs: SecretSpec[]; env: Record<string, string>; values: string[] }> {
  const specs: SecretSpec[] = [];
  const env: Record<string, string> = {};
  const values: string[] = [];
  const ids = new Set<string>();
  for (const secret of secrets) {
    if (!secret.id || !/^[A-Za-z0-9_.-]+$/.test(secret.id)) throw new InvalidArgumentError(`secret id ${JSON.stringify(secret.id)} must be letters, digits, ".", "_" or "-"`);
    if (ids.has(secret.id)) throw new InvalidArgumentError(`secret "${secret.id}" given twice`);
    ids.add(secret.id);
    const given = [secret.src, secret.env, secret.value].filter((v) => v !== undefined).length;
    if (given !== 1) throw new InvalidArgumentError(`secret "${secret.id}" needs exactly one of src, env or value`);
    // Every value reaches the child under a random variable name: never argv, never a file we write.
    const variable = `SLIPWAY_SECRET_${randomBytes(8).toString('hex').toUpperCase()}`;
    if (secret.src !== undefined) {
      const path = resolve(secret.src);
      const content = await readFile(path, 'utf8').catch((cause: NodeJS.ErrnoException) => {
        throw new InvalidArgumentError(`secret "${secret.id}": cannot read "${path}" (${cause.code ?? 'error'})`, { cause });
      });
      // Redacted like the others; a huge file (a bundle of certificates, say) is not scanned for.
      if (content.length <= 64 * 1024) values.push(content, content.trim());
      specs.push({ id: secret.id, src: path });
    } else if (secret.env !== undefined) {
      const value = process.env[secret.env];
      if (value === undefined) throw new InvalidArgumentError(`secret "${secret.id}": environment variable ${secret.env} is not set`);
      values.push(value);
      env[variable] = value;
      specs.push({ id: secret.id, env: variable });
    } else {
      values.push(secret.value!);
      env[variable] = secret.value!;
      specs.push({ id: secret.id, env: variable });
    }
  }
  return { specs, env, values };
}

async function resolveSsh(ssh: readonly SshSpec[]): Promise<SshSpec[]> {
  const result: SshSpec[] = [];
  for (const entry of ssh) {
    if (!entry.id) throw new InvalidArgumentError('ssh entry needs an id (usually "default")');
    if (!entry.paths || entry.paths.length === 0) {
      if (!process.env.SSH_AUTH_SOCK) throw new InvalidArgumentError(`ssh "${entry.id}": no key paths given and SSH_AUTH_SOCK is not set (start an agent or pass a key path)`);
      result.push({ id: entry.id });
      continue;
    }
    const paths = entry.paths.map((p) => resolve(p));
    for (const path of paths) {
      await access(path, constants.R_OK).catch((cause: NodeJS.ErrnoException) => {
        throw new InvalidArgumentError(`ssh "${entry.id}": cannot read "${path}" (${cause.code ?? 'error'})`, { cause });
      });
    }
    result.push({ id: entry.id, paths });
  }
  return result;
}

function normalizeTag(tag: string): string {
  const reference = name.parseReference(tag);
  if (reference.digest !== undefined) throw new InvalidArgumentError(`tag ${JSON.stringify(tag)} has a digest; a build pushes to tags, the digest is its result`, { code: 'SLIPWAY_INVALID_REFERENCE' });
  return reference.toString();
}

function builderFrom(option: BuildOptions['builder']): Builder | BuilderSelection | undefined {
  if (option === undefined) return undefined;
  if (typeof option === 'string') return parseBuilderOption(option);
  return option;
}

function isBuilder(value: Builder | BuilderSelection): value is Builder {
  return typeof (value as Builder).build === 'function';
}

/** Checks the builder can do what the spec asks, before anything runs. */
function checkCapabilities(builder: Builder, spec: BuildSpec): void {
  const caps = builder.capabilities;
  const refuse = (what: string, hint: string): never => {
    throw new InvalidArgumentError(`the ${builder.kind} builder cannot ${what}; ${hint}`);
  };
  const kit = 'use the buildctl or buildx builder';
  if (Object.keys(spec.namedContexts).length > 0 && !caps.namedContexts) refuse('use named build contexts (--build-context)', kit);
  if (spec.secrets.length > 0 && !caps.secrets) refuse('pass build secrets', kit);
  if (spec.ssh.length > 0 && !caps.ssh) refuse('forward SSH', kit);
  for (const cache of spec.cacheFrom) if (!caps.cacheImport.includes(cache.type)) refuse(`import a ${cache.type} cache (it can: ${caps.cacheImport.join(', ') || 'none'})`, kit);
  for (const cache of spec.cacheTo) if (!caps.cacheExport.includes(cache.type)) refuse(`export a ${cache.type} cache (it can: ${caps.cacheExport.join(', ') || 'none'})`, kit);
}

/**
 * Builds an image and, with `push`, publishes it at every tag.
 * @throws SlipwayError: SLIPWAY_CONTEXT (context or Dockerfile missing), SLIPWAY_INVALID_ARG /
 *   SLIPWAY_INVALID_REFERENCE / SLIPWAY_INVALID_PLATFORM (bad input), SLIPWAY_BUILDER_UNAVAILABLE,
 *   SLIPWAY_BUILD (the build failed; `logTail` holds the end of the log), SLIPWAY_AUTH /
 *   SLIPWAY_REGISTRY (the registry refused), SLIPWAY_ABORTED.
 */
export async function build(options: BuildOptions = {}): Promise<BuildResult> {
  const { signal } = options;
  throwIfAborted(signal);
  const warnings: string[] = [];
  const note = (line: string): void => options.onLog?.({ stream: 'stderr', line: `slipway: ${line}` });

  // Inputs that need no file system or network first: bad input fails fast.
  const tags = (options.tags ?? []).map(normalizeTag);
  if (new Set(tags).size !== tags.length) throw new InvalidArgumentError('a tag is listed twice');
  const push = options.push ?? false;
  if (push && tags.length === 0) throw new InvalidArgumentError('push needs at least one tag');
  const platforms = options.platforms ? parsePlatforms(options.platforms).map(formatPlatform) : [];
  const chosen = builderFrom(options.builder);
  const context = resolve(options.context ?? '.');
  await checkDirectory(context, 'build context');

  const workDir = await mkdtemp(join(tmpdir(), 'slipway-build-'));
  let credentials: TemporaryDockerConfig | undefined;
  let registry: RegistryAccess | undefined;
  try {
    let dockerfile: string;
    if (options.dockerfile !== undefined && typeof options.dockerfile === 'object') {
      // Its own directory, so BuildKit's `dockerfile` local holds nothing else.
      await mkdir(join(workDir, 'dockerfile'), { mode: 0o700 });
      dockerfile = join(workDir, 'dockerfile', 'Dockerfile');
      await writeFile(dockerfile, options.dockerfile.inline, { mode: 0o600 });
    } else {
      dockerfile = options.dockerfile === undefined ? join(context, 'Dockerfile') : resolve(options.dockerfile);
      const info = await stat(dockerfile).catch((cause: NodeJS.ErrnoException) => {
        throw contextError(`Dockerfile "${dockerfile}" ${cause.code === 'ENOENT' ? 'does not exist' : `cannot be read (${cause.code ?? cause.message})`}`, cause);
      });
      if (!info.isFile()) throw contextError(`Dockerfile "${dockerfile}" is not a file`);
    }
    const dockerfileText = await readFile(dockerfile, 'utf8');

    const namedContexts: Record<string, string> = {};
    for (const [key, value] of Object.entries(options.namedContexts ?? {})) {
      if (!/^[A-Za-z0-9][A-Za-z0-9_./:-]*$/.test(key)) throw new InvalidArgumentError(`named context ${JSON.stringify(key)} has an invalid name`);
      if (/^[a-z][a-z0-9+.-]*:\/\//.test(value)) {
        namedContexts[key] = value;
        continue;
      }
      const dir = isAbsolute(value) ? value : resolve(value);
      await checkDirectory(dir, `named context "${key}"`);
      namedContexts[key] = dir;
    }
    const secrets = await resolveSecrets(options.secrets ?? []);
    const ssh = await resolveSsh(options.ssh ?? []);

    // The builder: named, or the first available in the automatic order.
    const selected = chosen === undefined ? await selectBuilder(signal ? { signal } : {}) : undefined;
    const builder = selected?.builder ?? (isBuilder(chosen!) ? chosen : createBuilder(chosen!));
    const availability = selected?.availability ?? (await builder.available(signal));
    throwIfAborted(signal);
    if (!availability.ok) {
      throw new BuildError(
        'SLIPWAY_BUILDER_UNAVAILABLE',
        `the ${builder.kind} builder${builder.address ? ` at ${name.redactUserinfo(builder.address)}` : ''} is not available: ${availability.reason ?? 'unknown reason'}`,
        { builder: builder.kind },
      );
    }
    note(`builder ${builder.kind}${builder.address ? ` at ${name.redactUserinfo(builder.address)}` : ''} (${availability.version ?? 'version unknown'})`);

    const dialect = builder.ignoreDialect ? await builder.ignoreDialect(signal) : 'buildkit';
    const hash = await hashContext({
      context,
      dockerfile: options.dockerfile !== undefined && typeof options.dockerfile === 'object' ? { inline: options.dockerfile.inline } : dockerfile,
      // Every named context counts: directories by content, docker-image:// and URLs by their text.
      namedContexts,
      ignoreDialect: dialect,
      ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}),
      ...(signal ? { signal } : {}),
    });
    warnings.push(...hash.warnings);

    const insecureList = options.insecure ?? [];
    registry = await openRegistry({ registries: options.registries ?? [], keychain: options.keychain, insecure: insecureList });

    // Caches: explicit lists win; otherwise inline export and the existing tags as sources.
    let cacheTo = options.cacheTo ?? [];
    if (options.cacheTo === undefined && push && builder.capabilities.cacheExport.includes('inline')) cacheTo = [{ type: 'inline' }];
    let cacheFrom = options.cacheFrom ?? [];
    if (options.cacheFrom === undefined && !options.noCache && builder.capabilities.cacheImport.includes('registry') && builder.capabilities.cacheExport.includes('inline')) {
      // Only tags that exist: a missing cache source makes BuildKit print an ERROR line that is not one.
      const present: CacheFrom[] = [];
      for (const tag of tags) if (await registry.exists(tag, signal).catch(() => false)) present.push({ type: 'registry', ref: tag });
      cacheFrom = present;
      if (present.length > 0) note(`cache from ${present.map((c) => (c.type === 'registry' ? c.ref : c.src)).join(', ')}`);
    }
    // Fresh objects: the caller's options are never modified.
    cacheFrom = cacheFrom.map((c) => (c.type === 'local' ? { type: 'local', src: resolve(c.src) } : { type: 'registry', ref: name.parseReference(c.ref).toString() }));
    cacheTo = cacheTo.map((c) =>
      c.type === 'local' ? { ...c, dest: resolve(c.dest) } : c.type === 'registry' ? { ...c, ref: name.parseReference(c.ref).toString() } : { ...c },
    );

    // Registries this build talks to: credentials for exactly these, plain HTTP for the insecure ones.
    const involved = new Set<string>([
      ...tags.map(registryOf),
      ...cacheFrom.flatMap((c) => (c.type === 'registry' ? [registryOf(c.ref)] : [])),
      ...cacheTo.flatMap((c) => (c.type === 'registry' ? [registryOf(c.ref)] : [])),
      ...imageReferences(dockerfileText, options.buildArgs).map(registryOf),
      ...Object.values(namedContexts)
        .filter((v) => v.startsWith('docker-image://'))
        .flatMap((v) => {
          try {
            return [registryOf(name.parseReference(v.slice('docker-image://'.length)).toString())];
          } catch {
            return [];
          }
        }),
    ]);
    const insecureRegistries = [...involved].filter((r) => isLoopbackRegistry(r) || insecureList.includes(r));

    const spec: BuildSpec = {
      context,
      dockerfile,
      namedContexts,
      platforms,
      buildArgs: { ...options.buildArgs },
      ...(options.target ? { target: options.target } : {}),
      labels: { ...options.labels },
      secrets: secrets.specs,
      ssh,
      ...(options.network && options.network !== 'default' ? { network: options.network } : {}),
      addHosts: [...(options.addHosts ?? [])],
      noCache: options.noCache ?? false,
      pull: options.pull ?? false,
      cacheFrom,
      cacheTo,
      tags,
      push,
      insecureRegistries,
    };
    checkCapabilities(builder, spec);

    credentials = await writeDockerConfig({ registries: involved, keychain: registry.keychain, signal, parent: workDir });
    // A builder address may carry a login (DOCKER_HOST=tcp://user:password@host), which tools echo.
    const redactor = new Redactor([...secrets.values, ...credentials.secrets, ...(options.registries ?? []).map((r) => r.password), ...addressSecrets(builder.address)]);

    const output = await builder.build(spec, {
      signal,
      onLog: options.onLog,
      redactor,
      dockerConfigDir: credentials.dir,
      secretEnv: secrets.env,
      workDir,
      pusher: registry.pusher(),
    });
    // Credentials are not needed past this point: remove them before talking to anyone else.
    await credentials.remove();
    credentials = undefined;

    const result: BuildResult = {
      refs: [],
      platformDigests: {},
      contextHash: hash.digest,
      builder: {
        kind: builder.kind,
        // Shown, logged and kept in IaC state: a DOCKER_HOST's userinfo must not come along.
        ...(builder.address ? { address: name.redactUserinfo(builder.address) } : {}),
        ...(availability.version ? { version: availability.version } : {}),
      },
      logTail: output.logTail,
      ...(output.steps ? { steps: output.steps } : {}),
      warnings,
    };
    if (!push || tags.length === 0) return result;
    if (!output.digest) throw new BuildError('SLIPWAY_BUILD', `the ${builder.kind} builder finished without reporting a pushed digest`, { builder: builder.kind, logTail: output.logTail });

    // Tags the builder did not push itself get the same manifest, copied registry-side.
    const pushed = output.pushedTags.length > 0 ? output.pushedTags[0]! : undefined;
    if (!pushed) throw new BuildError('SLIPWAY_BUILD', `the ${builder.kind} builder reported a digest but no tag`, { builder: builder.kind });
    for (const tag of tags) {
      if (output.pushedTags.includes(tag)) continue;
      note(`tagging ${tag}`);
      await registry.copyTo(`${name.parseReference(pushed).name}@${output.digest}`, tag, signal);
    }
    // The registry's word, per tag: the digest we report is what a pull of each tag gets now.
    for (const tag of tags) {
      const found = await registry.head(tag, signal);
      if (found === undefined) throw new BuildError('SLIPWAY_REGISTRY', `${tag} is missing from the registry right after the build pushed it`, { builder: builder.kind, logTail: output.logTail });
      if (found !== output.digest) {
        throw new BuildError('SLIPWAY_REGISTRY', `${tag} holds ${found}, not the pushed ${output.digest} (pushed over concurrently?)`, { builder: builder.kind, logTail: output.logTail });
      }
    }
    result.digest = output.digest;
    result.refs = tags.map((tag) => `${tag}@${output.digest}`);
    result.ref = result.refs[0];
    result.platformDigests = await registry.platformDigests(`${tags[0]}@${output.digest}`, signal);
    return result;
  } catch (err) {
    if (signal?.aborted && !(SlipwayError.is(err) && err.code === 'SLIPWAY_ABORTED')) {
      throw new BuildError('SLIPWAY_ABORTED', 'build aborted', { cause: signal.reason });
    }
    throw err;
  } finally {
    await credentials?.remove().catch(() => undefined);
    await registry?.close().catch(() => undefined);
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}
