// A big layer must stream with flat memory: indexing, compressing and serving it from a docker save
// archive, and serving it from an OCI layout, never hold more than buffers. The archive is assembled
// with GNU tar from a sparse file. 256 MiB by default to keep the suite quick on a shared 2-core
// machine; SLIPWAY_BIG_LAYER_MB=1024 runs the 1 GiB case (about 20 s, same bound).
import assert from 'node:assert/strict';
import { link, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { layout, tarball } from '@slipway/oci';
import { hasTool, runChecked } from '../support/tools.js';
import { sha256File, sha256Text } from './oci-archive-fixtures.js';

const megabytes = Number(process.env.SLIPWAY_BIG_LAYER_MB ?? 256);
/** Generous: Node's own baseline moves by tens of MB with GC timing; a buffered layer would add the whole GiB. */
const allowedGrowth = 160 * 1024 * 1024;
const skip = hasTool('tar') && hasTool('truncate') ? false : 'SKIPPED: GNU tar/truncate missing (large-layer memory test)';

/** Samples RSS while `work` runs; returns the peak growth over the starting RSS. */
async function peakGrowth(work: () => Promise<void>): Promise<number> {
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  return peak - start;
}

async function drainCount(stream: Readable): Promise<number> {
  let n = 0;
  for await (const chunk of stream) n += (chunk as Buffer).length;
  return n;
}

describe(`a ${megabytes} MiB layer streams with flat memory`, { skip }, () => {
  let dir: string;
  let archive: string;
  let layerDiffID: string;
  let layerSize: number;

  let oci: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-big-layer-'));
    const content = join(dir, 'content');
    await mkdir(content);
    await runChecked('truncate', ['-s', `${megabytes}M`, join(content, 'big.bin')]);
    const save = join(dir, 'save');
    await mkdir(join(save, 'layer0'), { recursive: true });
    const layerPath = join(save, 'layer0', 'layer.tar');
    await runChecked('tar', ['-C', content, '-cf', layerPath, 'big.bin']);
    layerDiffID = await sha256File(layerPath);
    layerSize = (await stat(layerPath)).size;
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDiffID] } });
    const configName = `${sha256Text(config).slice(7)}.json`;
    await writeFile(join(save, configName), config);
    await writeFile(join(save, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: ['big:1'], Layers: ['layer0/layer.tar'] }]));
    archive = join(dir, 'big.tar');
    await runChecked('tar', ['-C', save, '-cf', archive, '.']);
    // The same layer as a blob of an OCI layout directory (a hard link: no second copy on disk).
    oci = join(dir, 'oci');
    await mkdir(join(oci, 'blobs', 'sha256'), { recursive: true });
    await link(layerPath, join(oci, 'blobs', 'sha256', layerDiffID.slice(7)));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('docker save archive: index, compress and serve the layer', async (t) => {
    let served = 0;
    let digest = '';
    const growth = await peakGrowth(async () => {
      const source = await tarball.open(archive, { cacheDir: false, tempDir: dir });
      const manifest = JSON.parse(Buffer.from((await source.root()).bytes).toString()) as { layers: { digest: `sha256:${string}`; size: number; mediaType: string }[] };
      const layer = manifest.layers[0]!;
      digest = layer.digest;
      served = await drainCount(await source.blob(layer));
      assert.equal(served, layer.size);
      await source.close();
    });
    assert.match(digest, /^sha256:/);
    t.diagnostic(`peak RSS growth ${Math.round(growth / 1048576)} MiB for a ${megabytes} MiB layer`);
    assert.ok(growth < allowedGrowth, `RSS grew by ${Math.round(growth / 1048576)} MiB while handling a ${megabytes} MiB layer`);
  });

  it('OCI layout directory: serve a layer blob', async (t) => {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDiffID] } }));
    await writeFile(join(oci, 'blobs', 'sha256', sha256Text(config).slice(7)), config);
    const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDiffID as `sha256:${string}`, size: layerSize };
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Text(config), size: config.length }, layers: [layer] }));
    await writeFile(join(oci, 'blobs', 'sha256', sha256Text(manifest).slice(7)), manifest);
    await writeFile(join(oci, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(oci, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256Text(manifest), size: manifest.length }] }));
    const growth = await peakGrowth(async () => {
      const source = await layout.open(oci);
      assert.equal(await drainCount(await source.blob(layer)), layerSize, 'every byte, verified against the digest');
      await source.close();
    });
    t.diagnostic(`peak RSS growth ${Math.round(growth / 1048576)} MiB for a ${megabytes} MiB blob`);
    assert.ok(growth < allowedGrowth, `RSS grew by ${Math.round(growth / 1048576)} MiB while serving a ${megabytes} MiB blob`);
  });
});
