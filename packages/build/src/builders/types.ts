/**
 * The contract every builder (docker, buildah, buildctl, buildx) implements, and the fully resolved
 * build description they receive. `build()` in ../build.ts turns user options into a BuildSpec,
 * picks a builder, runs it, and confirms the digest on the registry.
 * @module
 */
import type { Digest } from '@slipway/oci';
import type { OnLog, Redactor } from './process.js';

export type BuilderKind = 'docker' | 'buildah' | 'buildctl' | 'buildx';

export const builderKinds: readonly BuilderKind[] = ['docker', 'buildah', 'buildctl', 'buildx'];

/** Which builder to use and where it runs. */
export interface BuilderSelection {
  kind: BuilderKind;
  /**
   * Where the builder runs. docker: the Engine (`unix:///var/run/docker.sock`, `tcp://host:2375`; default
   * `DOCKER_HOST`). buildctl: the BuildKit daemon (`unix://…`, `tcp://…`; default `BUILDKIT_HOST`). buildx:
   * a BuildKit daemon reached through an ephemeral `remote` builder, or, without an address, the
   * current buildx builder (or the one named by `name`). buildah: no address.
   */
  address?: string;
  /** buildx only: an existing builder's name (`docker buildx ls`). */
  name?: string;
  /** Path of the tool's executable, when not the one found on PATH. */
  binary?: string;
  /** Extra environment for the tool (e.g. `STORAGE_DRIVER=vfs` for buildah). */
  env?: Record<string, string>;
}

export type CacheFrom =
  /** A cache exported with `type=registry` or an image pushed with inline cache. */
  | { type: 'registry'; ref: string }
  /** A directory written by a `type=local` cache export. */
  | { type: 'local'; src: string };

export type CacheTo =
  /** Cache metadata inside the pushed image's config (only `mode=min`). */
  | { type: 'inline' }
  | { type: 'registry'; ref: string; mode?: 'min' | 'max' }
  | { type: 'local'; dest: string; mode?: 'min' | 'max' };

export type CacheType = 'inline' | 'registry' | 'local';

/** A build secret, available to `RUN --mount=type=secret,id=ID`. Exactly one of src, env, value. */
export interface SecretSpec {
  id: string;
  /** Read from this file. */
  src?: string;
  /** Read from this environment variable (of our process). */
  env?: string;
  /** The value itself (passed to the builder through an environment variable, never argv or disk). */
  value?: string;
}

/** SSH forwarding, available to `RUN --mount=type=ssh[,id=ID]`. */
export interface SshSpec {
  /** `default` unless the Dockerfile names another id. */
  id: string;
  /** Agent socket or private key files; none means the agent at `SSH_AUTH_SOCK`. */
  paths?: string[];
}

export interface BuilderCapabilities {
  /** Builds several platforms in one run and pushes an index itself. */
  multiPlatform: boolean;
  /** Pushes to a registry itself (otherwise build() pushes with @slipway/oci). */
  push: boolean;
  cacheImport: readonly CacheType[];
  cacheExport: readonly CacheType[];
  secrets: boolean;
  ssh: boolean;
  namedContexts: boolean;
  /** Builds without pushing or loading (a "cache only" or validation build). */
  buildOnly: boolean;
}

/** A resolved build, in the terms every builder shares. Paths are absolute. */
export interface BuildSpec {
  context: string;
  /** The Dockerfile to use (an inline one is written to a temporary file first). */
  dockerfile: string;
  /** `--build-context name=value`: an absolute directory, or `docker-image://…` passed through. */
  namedContexts: Record<string, string>;
  /** `os/arch[/variant]`; empty means the builder's default platform. */
  platforms: string[];
  buildArgs: Record<string, string>;
  target?: string;
  labels: Record<string, string>;
  secrets: SecretSpec[];
  ssh: SshSpec[];
  network?: string;
  addHosts: string[];
  noCache: boolean;
  pull: boolean;
  cacheFrom: CacheFrom[];
  cacheTo: CacheTo[];
  /** Fully qualified tags (`registry/repo:tag`). */
  tags: string[];
  push: boolean;
  /** Registry hosts spoken to over plain HTTP (or HTTPS without verification). */
  insecureRegistries: string[];
}

export interface BuilderRunOptions {
  signal?: AbortSignal;
  onLog?: OnLog;
  /** Removes secret values and registry passwords from every line before it is logged or kept. */
  redactor: Redactor;
  /** A temporary Docker config directory (0700, config.json 0600) holding only the credentials this build needs. */
  dockerConfigDir: string;
  /** Extra environment for the child: secret values under random names. */
  secretEnv: Record<string, string>;
  /** Scratch directory removed after the build (metadata files, inline Dockerfiles). */
  workDir: string;
  /** Pushes local results for builders that cannot push (docker): set by build(). */
  pusher?: Pusher;
}

/** Pushes images a builder left in a local store, and assembles a multi-platform index. */
export interface Pusher {
  /**
   * Pushes images from the Docker Engine (by local name) to `tag`. With `index`, each image goes
   * by digest and an index of them (platforms read from each image's config) goes to the tag last.
   * Returns the digest the registry stored at the tag.
   */
  pushFromDaemon(
    images: { localName: string; platform?: string }[],
    tag: string,
    options: { signal?: AbortSignal; index: boolean; dockerHost?: string },
  ): Promise<Digest>;
}

/** What a builder reports; build() confirms `digest` with a HEAD on the registry before returning it. */
export interface BuilderOutput {
  /** The registry digest of what was pushed at the tags (index for several platforms). Absent when nothing was pushed. */
  digest?: Digest;
  /** The tags the builder pushed itself (build() copies to the rest). */
  pushedTags: string[];
  /** Last lines of the log (redacted). */
  logTail: string[];
  /** Build steps seen and how many were served from cache, when the log shows it. */
  steps?: { total: number; cached: number };
}

export interface Availability {
  ok: boolean;
  /** Tool and server version, when known. */
  version?: string;
  /** Why the builder cannot be used (never contains credentials). */
  reason?: string;
}

export interface Builder {
  readonly kind: BuilderKind;
  /** The address in use (docker host, BuildKit address), for messages and outputs. */
  readonly address?: string;
  readonly capabilities: BuilderCapabilities;
  /** Whether the tool is installed and its daemon (if any) answers. Never throws. */
  available(signal?: AbortSignal): Promise<Availability>;
  /**
   * Which `.dockerignore` dialect the client that sends the context uses, when it is not BuildKit's
   * (the Docker 20.10 CLI reads patterns the legacy way, buildah its own), so the context hash
   * covers the same files.
   */
  ignoreDialect?(signal?: AbortSignal): Promise<'buildkit' | 'legacy' | 'buildah'>;
  build(spec: BuildSpec, options: BuilderRunOptions): Promise<BuilderOutput>;
}
