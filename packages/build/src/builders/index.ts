/**
 * Builders behind one interface: docker (BuildKit in the Docker Engine), buildah, buildctl (a
 * BuildKit daemon at an address) and buildx; automatic selection; process and credential plumbing.
 * @module
 */
export { BuildahBuilder } from './buildah.js';
export type { BuildahBuilderOptions } from './buildah.js';
export { BuildctlBuilder, BuildxBuilder, checkBuildKitAddress } from './buildkit.js';
export type { BuildctlBuilderOptions, BuildxBuilderOptions } from './buildkit.js';
export { DockerBuilder } from './docker.js';
export type { DockerBuilderOptions } from './docker.js';
export { BuildError, classifyFailure, summarizeFailure } from './errors.js';
export { createBuilder, selectBuilder } from './select.js';
export { groupAlive, LineSplitter, LogTail, Redactor, run } from './process.js';
export type { LogLine, OnLog, RunOptions, RunResult } from './process.js';
export { writeDockerConfig } from './credentials.js';
export type { TemporaryDockerConfig } from './credentials.js';
export { builderKinds } from './types.js';
export type {
  Availability,
  Builder,
  BuilderCapabilities,
  BuilderKind,
  BuilderOutput,
  BuilderRunOptions,
  BuilderSelection,
  BuildSpec,
  CacheFrom,
  CacheTo,
  CacheType,
  Pusher,
  SecretSpec,
  SshSpec,
} from './types.js';
