/**
 * Image references: parse and normalise as Docker does, and map a registry name to its API host.
 * @example
 * ```ts
 * const ref = name.parseReference('alpine'); // docker.io/library/alpine:latest
 * name.registryHost(ref.registry);           // registry-1.docker.io
 * ```
 * @module
 */
export {
  defaultTag,
  dockerHubApiHost,
  dockerHubRegistry,
  familiarString,
  isReference,
  maxNameLength,
  parseReference,
  parseRepository,
  redactUserinfo,
  registryHost,
} from './reference.js';
export type { ParseReferenceOptions, Reference, Repository } from './reference.js';
