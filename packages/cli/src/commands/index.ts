/**
 * The command table. Each command lives in its own file and registers here with one line.
 * @module
 */
import type { Command } from '../command.js';

export const commands: Record<string, () => Promise<Command>> = {
  copy: async () => (await import('./copy.js')).copy,
  push: async () => (await import('./push.js')).push,
  digest: async () => (await import('./digest.js')).digest,
  manifest: async () => (await import('./manifest.js')).manifest,
  platforms: async () => (await import('./platforms.js')).platforms,
  tags: async () => (await import('./tags.js')).tags,
  build: async () => (await import('./build.js')).build,
  'hash-context': async () => (await import('./hash-context.js')).hashContextCommand,
  cache: async () => (await import('./cache.js')).cache,
};
