/**
 * `slipway cache [info|prune]`: what slipway keeps on disk between runs, and removing it.
 * @module
 */
import { context as buildContext } from '@slipway/build';
import { tarball } from '@slipway/oci';
import { defineCommand, UsageError } from '../define.js';
import { formatBytes, plural } from '../progress.js';

const dayMs = 24 * 3600 * 1000;

/** `10G`, `500M`, `2048K` or plain bytes. */
function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`--max-size wants a size such as 10G, 500M or 1048576, got ${JSON.stringify(text)}`);
  const scale = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[match[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Math.floor(Number(match[1]) * scale);
}

export const cache = defineCommand({
  summary: 'show or prune what slipway caches on disk (compressed layers, context stat caches)',
  synopsis: 'slipway cache [info|prune] [--unused-for DAYS] [--max-size SIZE]',
  details: `Two caches live under $XDG_CACHE_HOME/slipway (default ~/.cache/slipway):
  layers/, digests/  gzipped layers of docker save archives, so a re-push does not recompress
                     (push --no-layer-cache skips it)
  context/           stat caches of build contexts, so a re-hash reads only what changed

Both prune themselves once a day: entries unused for 30 days go, and layers beyond 10 GiB, least
recently used first. "info" (the default) prints where they are and what they hold; "prune" prunes
now:
  --unused-for DAYS  remove entries unused for longer than this (default 30; 0 empties the caches)
  --max-size SIZE    then keep at most this much of compressed layers (10G, 500M; default no limit)

Temp files of a write killed half-way (SIGKILL, an OOM kill) show as "incomplete"; any prune
removes those untouched for an hour.

With --json: {layerCache: {directory, layers, layerBytes, digests, incompleteFiles, incompleteBytes},
contextCache: {directory, files, bytes}} and, for prune, removed: {layers, contextFiles}.`,
  options: {
    'unused-for': { type: 'string' },
    'max-size': { type: 'string' },
  },
  positionals: { min: 0, max: 1 },
  async run(context) {
    const [action = 'info'] = context.args;
    if (action !== 'info' && action !== 'prune') throw new UsageError(`unknown action "${action}": want info or prune`);
    const unusedForText = context.values['unused-for'];
    const maxSizeText = context.values['max-size'];
    if (action === 'info' && (unusedForText !== undefined || maxSizeText !== undefined)) throw new UsageError('--unused-for and --max-size go with "prune"');
    const layerDir = tarball.defaultCacheDir(context.io.env);
    const contextDir = buildContext.defaultCacheDir(context.io.env);
    let removed: { layers: number; contextFiles: number } | undefined;
    if (action === 'prune') {
      let unusedForDays = 30;
      if (typeof unusedForText === 'string') {
        if (!/^\d+(\.\d+)?$/.test(unusedForText)) throw new UsageError(`--unused-for wants a number of days, got ${JSON.stringify(unusedForText)}`);
        unusedForDays = Number(unusedForText);
      }
      const maxBytes = typeof maxSizeText === 'string' ? parseSize(maxSizeText) : undefined;
      // Entries used this very millisecond survive "0 days": mtimes are compared with "now".
      const unusedForMs = unusedForDays === 0 ? -1 : unusedForDays * dayMs;
      removed = {
        layers: await tarball.pruneCache({ cacheDir: layerDir, unusedForMs, ...(maxBytes === undefined ? {} : { maxBytes }) }),
        contextFiles: await buildContext.pruneCache(contextDir, { maxAgeMs: unusedForMs }),
      };
    }
    const layers = await tarball.cacheUsage(layerDir);
    const contexts = await buildContext.cacheUsage(contextDir);
    const json = {
      layerCache: { directory: layerDir, ...layers },
      contextCache: { directory: contextDir, ...contexts },
      ...(removed ? { removed } : {}),
    };
    const lines = [
      ...(removed ? [`removed ${plural(removed.layers, 'cached layer')} and ${plural(removed.contextFiles, 'context stat cache')}`] : []),
      `layers:  ${layerDir}: ${plural(layers.layers, 'compressed layer')}, ${formatBytes(layers.layerBytes)}${
        layers.incompleteFiles > 0 ? ` (and ${plural(layers.incompleteFiles, 'incomplete temp file')}, ${formatBytes(layers.incompleteBytes)})` : ''
      }`,
      `context: ${contextDir}: ${plural(contexts.files, 'stat cache')}, ${formatBytes(contexts.bytes)}`,
    ];
    return { json, text: lines.join('\n') };
  },
});
