/**
 * Images held by a Docker Engine, read through the Engine API's export (`docker save` bytes).
 * @example
 * ```ts
 * const source = await daemon.open('busybox:1'); // DOCKER_HOST or /var/run/docker.sock
 * ```
 * @module
 */
export { open, createDaemonSource, defaultDockerHost } from './source.js';
export type { DaemonOptions, DaemonSourceOptions } from './source.js';
export { sink, DaemonSink } from './sink.js';
export type { DaemonSinkOptions } from './sink.js';
