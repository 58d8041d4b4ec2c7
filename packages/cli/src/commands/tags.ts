/**
 * `slipway tags REPOSITORY`: the tags of a repository.
 * @module
 */
import { listTags } from '@slipway/engine';
import { defineCommand } from '../define.js';
import { destinationRegistry } from './shared.js';

export const tags = defineCommand({
  summary: 'list the tags of a repository',
  synopsis: 'slipway tags REPOSITORY',
  details: `REPOSITORY is registry/repository (no tag or digest). Follows the registry's pagination.

Prints one tag per line; with --json {repository, tags}.`,
  positionals: { min: 1, max: 1 },
  async run(context) {
    const [repository] = context.args as [string];
    const result = await listTags({
      repository,
      registries: context.registries(destinationRegistry(repository)),
      insecure: context.insecure,
      signal: context.io.signal,
    });
    return { json: result, text: result.tags.join('\n') };
  },
});
