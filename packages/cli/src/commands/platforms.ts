/**
 * `slipway platforms REF`: the platforms an index (or single image) offers.
 * @module
 */
import { listPlatforms } from '@slipway/engine';
import { defineCommand } from '../define.js';
import { destinationRegistry, printWarnings } from './shared.js';

export const platforms = defineCommand({
  summary: 'list the platforms of an image or index with each image manifest digest',
  synopsis: 'slipway platforms REF',
  details: `REF is anything copy accepts as a source. An index lists its children (attestation manifests
left out); a single image reports the platform of its config.

Prints "PLATFORM DIGEST" per line; with --json {reference, digest, mediaType, platforms: [{platform, digest}],
entries? (an index's manifest count), artifactType? (a manifest that is not an image), warnings?}.`,
  positionals: { min: 1, max: 1 },
  async run(context) {
    const [reference] = context.args as [string];
    const result = await listPlatforms({
      reference,
      registries: context.registries(destinationRegistry(reference)),
      insecure: context.insecure,
      signal: context.io.signal,
    });
    printWarnings(context, result.warnings);
    // An artifact (a signature, an SBOM, a Helm chart) or an index of only such: nothing to list on
    // stdout, which scripts read, but a word on stderr rather than silence that looks like a failure.
    if (result.platforms.length === 0 && !context.quiet && !context.json) {
      const what =
        result.entries === 0
          ? 'an empty index'
          : result.entries !== undefined
            ? 'an index of artifacts'
            : result.artifactType !== undefined
              ? `an artifact (${result.artifactType}), not an image of a platform`
              : 'an image whose config names no os and architecture';
      context.io.stderr.write(`${reference} (${result.digest}) names no platform: ${what}\n`);
    }
    const width = Math.max(0, ...result.platforms.map((p) => p.platform.length));
    return { json: result, text: result.platforms.map((p) => `${p.platform.padEnd(width)} ${p.digest}`).join('\n') };
  },
});
