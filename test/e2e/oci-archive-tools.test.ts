// OCI layouts and archives made by other tools (skopeo oci: / oci-archive: / docker-archive:,
// buildah's multi-image index, umoci), read by layout.open / tarball.open, with every digest
// cross-checked against what skopeo reports. And the other way: a layout our sink writes is read
// by skopeo and umoci, and the image comes back into Docker intact.
import assert from 'node:assert/strict';
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { copy, layout, parseManifest, tarball, type ImageManifest } from '@slipway/oci';
import * as testing from '@slipway/oci/testing';
import { dockerAvailable, hasTool, run, runChecked, DOCKER_CLI } from '../support/tools.js';
import { buildah, docker, makeDockerImages, sha256Text, skopeo, skopeoRawDigest, type DockerImages } from './oci-archive-fixtures.js';

const missing = [
  ...(hasTool(DOCKER_CLI) && (await dockerAvailable()) ? [] : ['Docker Engine']),
  ...['skopeo', 'umoci', 'buildah'].filter((tool) => !hasTool(tool)),
];
const skip = missing.length === 0 ? false : `SKIPPED: ${missing.join(', ')} not available (archives made by other tools); run scripts/ci-setup.sh`;
if (skip) console.error(`\n*** ${skip} ***\n`);

type Digest = `sha256:${string}`;

describe('layouts and archives made by skopeo, buildah and umoci', { skip }, () => {
  let images: DockerImages;
  let dir: string;
  const p = { ociDir: '', ociArchive: '', dockerArchive: '', umoci: '', buildahIndex: '', hybrid: '' };
  const digests: Record<string, Digest> = {};

  before(async () => {
    images = await makeDockerImages('tools');
    dir = images.dir;
    p.ociDir = join(dir, 'oci-dir');
    p.ociArchive = join(dir, 'oci-archive.tar');
    p.dockerArchive = join(dir, 'docker-archive.tar');
    p.umoci = join(dir, 'umoci');
    p.buildahIndex = join(dir, 'buildah-index.tar');
    await skopeo(['copy', '-q', `docker-daemon:${images.layered}`, `oci:${p.ociDir}:layered`]);
    await skopeo(['copy', '-q', `docker-daemon:${images.single}`, `oci:${p.ociDir}:single`]);
    await skopeo(['copy', '-q', `docker-daemon:${images.layered}`, `oci-archive:${p.ociArchive}:layered`]);
    await skopeo(['copy', '-q', `docker-daemon:${images.layered}`, `docker-archive:${p.dockerArchive}:${images.layered}`]);
    digests.ociDir = (await skopeoRawDigest(`oci:${p.ociDir}:layered`)) as Digest;
    digests.ociArchive = (await skopeoRawDigest(`oci-archive:${p.ociArchive}:layered`)) as Digest;

    // umoci: an empty image plus one inserted file (a layer umoci compressed itself).
    await runChecked('umoci', ['init', '--layout', p.umoci]);
    await runChecked('umoci', ['new', '--image', `${p.umoci}:base`]);
    await writeFile(join(dir, 'umoci-file.txt'), 'inserted by umoci\n');
    await runChecked('umoci', ['insert', '--image', `${p.umoci}:base`, join(dir, 'umoci-file.txt'), '/umoci-file.txt']);
    digests.umoci = (await skopeoRawDigest(`oci:${p.umoci}:base`)) as Digest;

    // buildah: a manifest list of two images, pushed as an OCI archive whose index.json entry is an index.
    const list = `slipway-e2e-tools-list-${process.pid}`;
    await buildah(['manifest', 'create', list]);
    try {
      await buildah(['manifest', 'add', list, `docker-daemon:${images.single}`]);
      await buildah(['manifest', 'add', list, `docker-daemon:${images.layered}`]);
      await buildah(['manifest', 'push', '--all', list, `oci-archive:${p.buildahIndex}:multi`]);
    } finally {
      await run('buildah', ['manifest', 'rm', list], { env: { STORAGE_DRIVER: 'vfs', BUILDAH_ISOLATION: 'chroot' } });
    }
    digests.buildahIndex = (await skopeoRawDigest(`oci-archive:${p.buildahIndex}:multi`)) as Digest;
  });
  after(async () => {
    await images?.remove();
  });

  testing.imageSourceConformance('OCI layout directory from skopeo (oci:)', async () => ({
    source: await layout.open(p.ociDir, { image: 'layered' }),
    expected: { rootDigest: digests.ociDir! },
  }));
  testing.imageSourceConformance('OCI layout tar from skopeo (oci-archive:)', async () => ({
    source: await layout.open(p.ociArchive),
    expected: { rootDigest: digests.ociArchive! },
  }));
  testing.imageSourceConformance('OCI layout tar from skopeo, through tarball.open', async () => ({
    source: await tarball.open(p.ociArchive, { cacheDir: false }),
    expected: { rootDigest: digests.ociArchive! },
  }));
  testing.imageSourceConformance('docker-archive: from skopeo', async () => ({
    source: await tarball.open(p.dockerArchive, { cacheDir: false }),
    expected: { contains: [images.ids[images.layered]! as Digest] },
  }));
  testing.imageSourceConformance('OCI layout from umoci', async () => ({
    source: await layout.open(p.umoci, { image: 'base' }),
    expected: { rootDigest: digests.umoci! },
  }));
  testing.imageSourceConformance('buildah manifest list in an oci-archive (index root)', async () => ({
    source: await layout.open(p.buildahIndex, { image: 'multi' }),
    expected: { rootDigest: digests.buildahIndex!, rootMediaType: 'application/vnd.oci.image.index.v1+json' },
  }));

  it('reads the same layer and config digests skopeo reports', async () => {
    const info = JSON.parse(await skopeo(['inspect', `oci:${p.ociDir}:layered`])) as { Digest: string; Layers: string[] };
    const source = await layout.open(p.ociDir, { image: 'layered' });
    const root = await source.root();
    assert.equal(root.descriptor.digest, info.Digest);
    const parsed = parseManifest(root.bytes, root.descriptor.mediaType);
    assert.equal(parsed.kind, 'image');
    assert.deepEqual((parsed.manifest).layers.map((l) => l.digest), info.Layers);
    // `inspect --config --raw` prints the config blob's bytes as stored.
    assert.equal((parsed.manifest).config.digest, sha256Text(await skopeo(['inspect', '--config', '--raw', `oci:${p.ociDir}:layered`])));
    await source.close();
  });

  it('needs a choice when a layout names two images, and lists them', async () => {
    await assert.rejects(layout.open(p.ociDir), (err: Error & { code?: string }) => err.code === 'SLIPWAY_INVALID_ARG' && /"layered"/.test(err.message) && /"single"/.test(err.message));
    const single = await layout.open(p.ociDir, { image: 'single' });
    assert.equal((await single.root()).descriptor.digest, await skopeoRawDigest(`oci:${p.ociDir}:single`));
    await single.close();
  });

  it('writes layouts skopeo and umoci read, and the image goes back into Docker intact', async () => {
    const out = join(dir, 'written');
    const source = await tarball.open(p.ociArchive, { cacheDir: false });
    const result = await copy.copy(source, layout.sink(out, { tag: 'rt' }));
    await source.close();
    assert.equal(result.digest, digests.ociArchive);
    assert.equal(await skopeoRawDigest(`oci:${out}:rt`), digests.ociArchive, 'skopeo finds our index.json entry and the same manifest bytes');
    // umoci checks every blob's digest while unpacking.
    const bundle = join(dir, 'bundle');
    await runChecked('umoci', ['unpack', '--image', `${out}:rt`, bundle]);
    assert.equal(await readFile(join(bundle, 'rootfs', 'hello.txt'), 'utf8'), 'hello from tools\n');
    // skopeo → docker-archive → docker load: the layers must decompress to the very diff IDs Docker had.
    const back = join(dir, 'back.tar');
    const retag = `${images.layered.split(':')[0]}:back`;
    await skopeo(['copy', '-q', `oci:${out}:rt`, `docker-archive:${back}:${retag}`]);
    await docker(['load', '-i', back]);
    try {
      assert.deepEqual(
        JSON.parse(await docker(['inspect', '-f', '{{json .RootFS.Layers}}', retag])),
        JSON.parse(await docker(['inspect', '-f', '{{json .RootFS.Layers}}', images.layered])),
      );
    } finally {
      await run(DOCKER_CLI, ['rmi', retag]);
    }
  });

  it('serves a Docker 25-style hybrid archive from its OCI layout, and from manifest.json when the layout lacks the image', async () => {
    // What Docker 25+ saves: an OCI layout plus manifest.json pointing at the config and the
    // uncompressed layer blobs (named by diff ID). The OCI half and the uncompressed blobs are
    // skopeo's; only manifest.json is written here, in Docker's shape.
    const hybrid = join(dir, 'hybrid');
    const raw = join(dir, 'hybrid-raw');
    await skopeo(['copy', '-q', `docker-daemon:${images.layered}`, `oci:${hybrid}:layered`]);
    await skopeo(['copy', '-q', '--dest-oci-accept-uncompressed-layers', `docker-daemon:${images.layered}`, `oci:${raw}:layered`]);
    for (const name of await readdir(join(raw, 'blobs', 'sha256'))) await cp(join(raw, 'blobs', 'sha256', name), join(hybrid, 'blobs', 'sha256', name));
    const ociManifest = JSON.parse(await skopeo(['inspect', '--raw', `oci:${hybrid}:layered`])) as ImageManifest;
    const diffIDs = JSON.parse(await docker(['inspect', '-f', '{{json .RootFS.Layers}}', images.layered])) as string[];
    const manifestJson = [{ Config: `blobs/sha256/${ociManifest.config.digest.slice(7)}`, RepoTags: [images.layered], Layers: diffIDs.map((d) => `blobs/sha256/${d.slice(7)}`) }];
    await writeFile(join(hybrid, 'manifest.json'), JSON.stringify(manifestJson));
    const archive = join(dir, 'hybrid.tar');
    await runChecked('tar', ['-C', hybrid, '-cf', archive, '.']);

    const served = await tarball.open(archive, { cacheDir: false });
    assert.equal(served.format, 'oci-layout');
    assert.equal((await served.root()).descriptor.digest, await skopeoRawDigest(`oci:${hybrid}:layered`));
    await served.close();

    // Docker 25.0.2 could leave the image out of index.json (moby#47210): manifest.json still works.
    await writeFile(join(hybrid, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
    const archive2 = join(dir, 'hybrid-empty-index.tar');
    await runChecked('tar', ['-C', hybrid, '-cf', archive2, '.']);
    const synthesised = await tarball.open(archive2, { cacheDir: false });
    assert.equal(synthesised.format, 'docker-save');
    const manifest = JSON.parse(Buffer.from((await synthesised.root()).bytes).toString()) as ImageManifest;
    assert.equal(manifest.config.digest, ociManifest.config.digest);
    assert.equal(synthesised.stats.compressed, 2);
    await synthesised.close();
  });
});
