/**
 * `slipway manifest REF`: the manifest's exact bytes.
 * @module
 */
import { getManifest } from '@slipway/engine';
import { defineCommand } from '../define.js';
import { destinationRegistry, printWarnings } from './shared.js';

export const manifest = defineCommand({
  summary: "print a manifest or index exactly as stored (its bytes hash to its digest)",
  synopsis: 'slipway manifest REF [--platform P]',
  details: `REF is anything copy accepts as a source.

  --platform P   that platform's image manifest instead of the index

Prints the bytes unchanged (no newline added), so "slipway manifest REF | sha256sum" gives the digest;
with --json {reference, digest, mediaType, size, warnings?, manifest} where manifest is the parsed JSON.`,
  options: { platform: { type: 'string' } },
  positionals: { min: 1, max: 1 },
  async run(context) {
    const [reference] = context.args as [string];
    const platform = context.values.platform as string | undefined;
    const result = await getManifest({
      reference,
      ...(platform === undefined ? {} : { platform }),
      registries: context.registries(destinationRegistry(reference)),
      insecure: context.insecure,
      signal: context.io.signal,
    });
    printWarnings(context, result.warnings);
    const { bytes, ...rest } = result;
    return { json: { ...rest, manifest: JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown }, text: bytes };
  },
});
