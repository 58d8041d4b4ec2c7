// Tarballs written by `crane pull --format tarball`: docker save's layout, but with the layers as
// the registry stored them (gzip), so slipway passes them through instead of compressing. The
// busybox layer is about 1 MB gzipped: far bigger than any stream buffer on the way.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { copyImage, pushArchive } from '@slipway/engine';
import { parseManifest, remote, type ImageManifest } from '@slipway/oci';
import { busyboxOciLayout } from '../support/fixtures.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { runChecked, toolPath } from '../support/tools.js';

const crane = toolPath('crane');
const skip = crane ? false : 'SKIPPED: needs crane (scripts/install-go-tools.sh)';
if (skip) console.error(`\n*** ${skip} ***\n`);

describe('tarballs written by crane', { skip }, () => {
  let registry: TestRegistry;
  let work: string;
  const client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'slipway-crane-tarball-'));
  });
  after(async () => {
    await client.close();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes a crane tarball with its gzip layers passed through byte for byte', async () => {
    const layout = await busyboxOciLayout('amd64');
    await copyImage({ source: `oci:${layout.dir}:${layout.tag}`, destination: `${registry.host}/src:1` });
    const original = await client.getManifest(`${registry.host}/src:1`);
    const layers = (parseManifest(original.bytes, original.descriptor.mediaType).manifest as ImageManifest).layers;
    assert.ok(layers.some((l) => l.size > 256 * 1024), `a layer big enough to matter: ${layers.map((l) => l.size).join(', ')}`);

    const tarball = join(work, 'crane.tar');
    await runChecked(crane!, ['pull', '--insecure', '--format', 'tarball', `${registry.host}/src:1`, tarball], { timeoutMs: 60_000 });
    const result = await pushArchive({ archive: tarball, destination: `${registry.host}/dst:1`, cacheDir: join(work, 'cache'), signal: AbortSignal.timeout(60_000) });

    const pushed = await client.getManifest(`${registry.host}/dst:1`);
    assert.equal(pushed.descriptor.digest, result.digest);
    const pushedLayers = (parseManifest(pushed.bytes, pushed.descriptor.mediaType).manifest as ImageManifest).layers;
    assert.deepEqual(pushedLayers.map((l) => [l.digest, l.size]), layers.map((l) => [l.digest, l.size]), 'the registry\'s own blobs, not recompressed');
    // crane reads the pushed image back and checks every layer against its digest.
    await runChecked(crane!, ['validate', '--insecure', '--remote', `${registry.host}/dst:1`], { timeoutMs: 60_000 });
  });
});
