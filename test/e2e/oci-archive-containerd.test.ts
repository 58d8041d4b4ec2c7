// Archives written by containerd's exporter (`ctr images export`): an OCI layout plus Docker's
// manifest.json. That is the shape Docker 25+ saves, and with the containerd image store Docker's
// `save` is this very exporter. The containerd is the one dockerd runs; images get into it by
// `ctr images import` of a real `docker save` and by `ctr images pull` of a buildah-made index from
// the test registry. slipway pushes each export; skopeo, containerd and Docker check the result.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { copy, remote, tarball, type ImageManifest } from '@slipway/oci';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { dockerAvailable, hasTool, run, runChecked, DOCKER_CLI } from '../support/tools.js';
import { pushBuildahIndex, skopeoRaw, type PushedIndex } from './copy-fixtures.js';
import { docker, makeDockerImages, sha256Text, type DockerImages } from './oci-archive-fixtures.js';

/** dockerd's own containerd (dockerd starts one when no system containerd runs), else the system one. */
const CONTAINERD_SOCKETS = ['/var/run/docker/containerd/containerd.sock', '/run/containerd/containerd.sock'];
const main = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));

async function findContainerd(): Promise<string | undefined> {
  if (!hasTool('ctr')) return undefined;
  for (const socket of CONTAINERD_SOCKETS) {
    if ((await run('ctr', ['--address', socket, 'version'], { timeoutMs: 10_000 })).code === 0) return socket;
  }
  return undefined;
}
const CONTAINERD_SOCKET = await findContainerd();

const missing = [
  ...(hasTool(DOCKER_CLI) && (await dockerAvailable()) ? [] : ['Docker Engine']),
  ...(CONTAINERD_SOCKET ? [] : [`containerd (ctr answering on ${CONTAINERD_SOCKETS.join(' or ')})`]),
  ...['skopeo', 'buildah'].filter((tool) => !hasTool(tool)),
];
const skip = missing.length === 0 ? false : `SKIPPED: ${missing.join(', ')} not available (archives written by containerd's exporter); run scripts/ci-setup.sh`;
if (skip) console.error(`\n*** ${skip} ***\n`);

describe("archives written by containerd's exporter (Docker 25+'s save format)", { skip }, () => {
  // A namespace of our own: nothing dockerd or other tests hold is touched, and removing it at the
  // end lets containerd's garbage collector drop the content.
  const namespace = `slipway-test-${process.pid}`;
  const ctrArgs = (...args: string[]) => ['--address', CONTAINERD_SOCKET!, '--namespace', namespace, ...args];
  const ctr = async (...args: string[]) => (await runChecked('ctr', ctrArgs(...args), { timeoutMs: 120_000 })).stdout;
  let images: DockerImages;
  let registry: TestRegistry;
  let index: PushedIndex;
  const client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });

  /** The digest containerd records for an image: `ctr images ls` is containerd's own word. */
  async function containerdDigest(ref: string): Promise<string> {
    for (const line of (await ctr('images', 'ls')).split('\n').slice(1)) {
      const [name, , digest] = line.trim().split(/\s+/);
      if (name === ref) return digest!;
    }
    throw new Error(`containerd holds no image ${ref}`);
  }

  before(async () => {
    [images, registry] = await Promise.all([makeDockerImages('containerd'), startRegistry()]);
    index = await pushBuildahIndex(`${registry.host}/fixtures/multi:1`);
  });
  after(async () => {
    await client.close();
    const lines = async (...args: string[]) => (await run('ctr', ctrArgs(...args))).stdout.split('\n').filter(Boolean);
    const refs = await lines('images', 'ls', '-q');
    if (refs.length > 0) await run('ctr', ctrArgs('images', 'rm', '--sync', ...refs));
    // A namespace is removable only once empty; content the collector has not dropped yet goes by hand.
    const blobs = await lines('content', 'ls', '-q');
    if (blobs.length > 0) await run('ctr', ctrArgs('content', 'rm', ...blobs));
    await run('ctr', ['--address', CONTAINERD_SOCKET!, 'namespaces', 'rm', namespace]);
    await Promise.all([images?.remove(), registry?.stop()]);
  });

  it('pushes a docker-saved image re-exported by containerd: its own digest, uncompressed layers, and Docker runs it', async () => {
    const saved = join(images.dir, 'saved.tar');
    const exported = join(images.dir, 'containerd-export.tar');
    await docker(['save', '-o', saved, images.layered]);
    await ctr('images', 'import', '--no-unpack', saved);
    const ref = `docker.io/${images.layered}`;
    const digest = await containerdDigest(ref);
    await ctr('images', 'export', exported, ref);

    const diffIDs = JSON.parse(await docker(['inspect', '-f', '{{json .RootFS.Layers}}', images.layered])) as string[];
    const source = await tarball.open(exported, { cacheDir: false });
    try {
      assert.equal(source.format, 'oci-layout', 'served from the OCI layout, not re-synthesised from manifest.json');
      const root = await source.root();
      assert.equal(root.descriptor.digest, digest);
      const manifest = JSON.parse(Buffer.from(root.bytes).toString()) as ImageManifest;
      // containerd keeps docker save's layers as they were: uncompressed tars, addressed by diff ID.
      assert.deepEqual(manifest.layers.map((l) => l.digest), diffIDs);
      assert.ok(manifest.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar'), JSON.stringify(manifest.layers));
      assert.equal(source.stats.compressed, 0, 'nothing recompressed');
    } finally {
      await source.close();
    }

    const target = `${registry.host}/containerd/layered:1`;
    const pushed = await run(process.execPath, [main, 'push', exported, target, '--json'], { timeoutMs: 120_000 });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal((JSON.parse(pushed.stdout) as { digest: string }).digest, digest);
    assert.equal(sha256Text(await skopeoRaw(target)), digest, 'skopeo reads the same manifest bytes back');

    // The registry copy goes back into Docker with the very diff IDs it left with, and runs.
    await docker(['pull', '-q', target]);
    try {
      assert.deepEqual(JSON.parse(await docker(['inspect', '-f', '{{json .RootFS.Layers}}', target])), diffIDs);
      assert.equal(await docker(['run', '--rm', '--network', 'none', target, 'busybox', 'cat', '/hello.txt']), 'hello from containerd');
    } finally {
      await run(DOCKER_CLI, ['rmi', target]);
    }
  });

  it('pushes a multi-platform index re-exported by containerd, whole and one platform', async () => {
    const exported = join(images.dir, 'containerd-index.tar');
    await ctr('images', 'pull', '--plain-http', '--all-platforms', index.reference);
    await ctr('images', 'export', '--all-platforms', exported, index.reference);
    assert.equal(await containerdDigest(index.reference), index.digest, 'containerd kept buildah\'s index as pushed');

    const whole = `${registry.host}/containerd/multi:1`;
    const source = await tarball.open(exported, { cacheDir: false });
    try {
      assert.equal((await source.root()).descriptor.digest, index.digest);
      const result = await copy.copy(source, client.sink(whole));
      assert.equal(result.digest, index.digest);
    } finally {
      await source.close();
    }
    assert.equal(await skopeoRaw(whole), index.raw, 'the index arrives byte for byte');

    const armV7 = index.children.find((c) => c.platform === 'linux/arm/v7')!;
    const single = `${registry.host}/containerd/armv7:1`;
    const pushed = await run(process.execPath, [main, 'push', exported, single, '--platform', 'linux/arm/v7', '--json'], { timeoutMs: 120_000 });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal((JSON.parse(pushed.stdout) as { digest: string }).digest, armV7.digest);
    assert.equal(sha256Text(await skopeoRaw(single)), armV7.digest);
  });
});
