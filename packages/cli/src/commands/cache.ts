/**
 * `slipway cache [info|prune]`: what slipway keeps on disk between runs, and removing it.
 * @module
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { context as buildContext } from '@slipway/build';
import { tarball } from '@slipway/oci';
import { defineCommand, UsageError } from '../define.js';
import { formatBytes } from '../progress.js';

const dayMs = 24 * 3600 * 1000;

/** The layer cache's root, as the library finds it from this environment. */
function layerCacheDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CACHE_HOME;
  return xdg && xdg.startsWith('/') ? join(xdg, 'slipway') : tarball.defaultCacheDir();
}

/** Files and bytes of the context hash's stat caches. */
async function contextUsage(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith('.bin')) continue;
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (!info) continue;
    files++;
    bytes += info.size;
  }
  return { files, bytes };
}

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

With --json: {layerCache: {directory, layers, layerBytes, digests}, contextCache: {directory, files,
bytes}} and, for prune, removed: {layers, contextFiles}.`,
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
    const layerDir = layerCacheDir(context.io.env);
    const contextDir = buildContext.defaultCacheDir(context.io.env);
    let removed: { layers: number; contextFiles: number } | undefined;
    if (action === 'prune') {
      let unusedForDays = 30;
      if (typeof unusedForText === 'string') {
        if (!/^\d+(\.\d+)?$/.test(unusedForText)) throw new UsageError(`--unused-for wants a number of days, got ${JSON.stringify(unusedForText)}`);
        unusedForDays = Number(unusedForText);
      }
      const maxBytes = typeof maxSizeText === 'string' ? parseSize(maxSizeText) : undefined;
      const unusedForMs = unusedForDays * dayMs;
      removed = {
        // Entries used this very millisecond survive "0 days": mtimes are compared with "now".
        layers: await tarball.pruneCache({ cacheDir: layerDir, unusedForMs: unusedForMs === 0 ? -1 : unusedForMs, ...(maxBytes === undefined ? {} : { maxBytes }) }),
        contextFiles: await buildContext.pruneCache(contextDir, { maxAgeMs: unusedForMs === 0 ? -1 : unusedForMs }),
      };
    }
    const layers = await tarball.cacheUsage(layerDir);
    const contexts = await contextUsage(contextDir);
    const json = {
      layerCache: { directory: layerDir, ...layers },
      contextCache: { directory: contextDir, ...contexts },
      ...(removed ? { removed } : {}),
    };
    const lines = [
      ...(removed ? [`removed ${removed.layers} cached layer${removed.layers === 1 ? '' : 's'} and ${removed.contextFiles} context stat cache${removed.contextFiles === 1 ? '' : 's'}`] : []),
      `layers:  ${layerDir}: ${layers.layers} compressed layer${layers.layers === 1 ? '' : 's'}, ${formatBytes(layers.layerBytes)}`,
      `context: ${contextDir}: ${contexts.files} stat cache${contexts.files === 1 ? '' : 's'}, ${formatBytes(contexts.bytes)}`,
    ];
    return { json, text: lines.join('\n') };
  },
});
