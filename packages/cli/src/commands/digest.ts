/**
 * `slipway digest REF`: the digest a reference resolves to (one HEAD for a registry).
 * @module
 */
import { getDigest } from '@slipway/engine';
import { defineCommand } from '../define.js';
import { destinationRegistry, printWarnings } from './shared.js';

export const digest = defineCommand({
  summary: 'print the digest of an image or index (one HEAD), or of one platform of it',
  synopsis: 'slipway digest REF [--platform P]',
  details: `REF is anything copy accepts as a source (registry reference, archive, layout, daemon image).

  --platform P   the digest of that platform's image manifest instead of the index's

Prints the digest; with --json {reference, digest, mediaType, size, platform?, warnings?}.`,
  options: { platform: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(context) {
    const [reference] = context.args as [string];
    const platform = context.values.platform as string | undefined;
    const result = await getDigest({
      reference,
      ...(platform === undefined ? {} : { platform }),
      registries: context.registries(destinationRegistry(reference)),
      insecure: context.insecure,
      signal: context.io.signal,
    });
    printWarnings(context, result.warnings);
    return { json: result, text: result.digest };
  },
});
