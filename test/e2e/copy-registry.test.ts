// The copy engine against the real CNCF registry: a buildah-made three-platform index copied whole,
// by one platform and by a subset; a single image checked against its config; a no-op counted on
// the wire through the fault proxy; overwrite refusal; a cross-repository mount; archives pushed.
// Everything runs twice: into Debian's docker-registry 2.8, and into distribution v3 (the current
// release, built from the Go module proxy), the second run copying across the two implementations.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { copyImage, getDigest, listPlatforms, pushArchive } from '@slipway/engine';
import { remote, SlipwayError, type copy as copyTypes } from '@slipway/oci';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { registryV3Path, startRegistry, type TestRegistry } from '../support/registry.js';
import { DOCKER_CLI, hasTool, run, runChecked, skipUnlessDocker, toolPath } from '../support/tools.js';
import { inspectIndex, pushBuildahIndex, skopeoRaw, type PushedIndex } from './copy-fixtures.js';
import { sha256Text } from './oci-archive-fixtures.js';

const missing = ['buildah', 'skopeo'].filter((tool) => !hasTool(tool));

const v3Missing = registryV3Path() === undefined;
if (v3Missing) console.error('\n*** SKIPPED: distribution-registry (distribution v3) is not built; scripts/install-go-tools.sh distribution builds it ***\n');

// One source registry and one buildah index for both destinations (buildah takes seconds).
let shared: Promise<{ source: TestRegistry; index: PushedIndex }> | undefined;
const sharedSource = (): Promise<{ source: TestRegistry; index: PushedIndex }> =>
  (shared ??= startRegistry({ allowManifestUrls: true }).then(async (source) => ({ source, index: await pushBuildahIndex(`${source.host}/fixture/app:1`) })));
after(async () => {
  if (shared) await (await shared).source.stop();
});

for (const implementation of ['debian', 'v3'] as const) {
  const label = implementation === 'v3' ? 'distribution v3' : 'docker-registry 2.8';
  const skip = missing.length > 0 ? `needs ${missing.join(' and ')} (apt-get install buildah skopeo)` : implementation === 'v3' && v3Missing ? 'distribution v3 not built' : false;
  describe(`copy against the real registry (destination: ${label})`, { skip }, () => {
    let source: TestRegistry;
    let destination: TestRegistry;
    let proxy: FaultProxy;
    let index: PushedIndex;
    let work: string;

    before(async () => {
      // URLs allowed: a Windows image's foreign layers (see the includeNondistributable test).
      [{ source, index }, destination] = await Promise.all([sharedSource(), startRegistry({ implementation, allowManifestUrls: true })]);
      proxy = await startFaultProxy({ target: destination });
      work = await mkdtemp(join(tmpdir(), 'slipway-copy-e2e-'));
    });
    after(async () => {
      await proxy?.stop();
      await destination?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    const child = (platform: string) => {
      const found = index.children.find((c) => c.platform === platform);
      assert.ok(found, `fixture has no ${platform}`);
      return found;
    };

    it('leaves a foreign layer at its URLs by default, and carries it from the source with includeNondistributable, as crane does', async () => {
      // A Windows-style image: its base layer is foreign (URLs in the manifest), and this source holds it too.
      const client = remote.createRegistryClient({});
      const repo = `${source.host}/foreign/${implementation}`;
      let manifestDigest: string;
      let foreign: { mediaType: string; digest: `sha256:${string}`; size: number; urls: string[] };
      try {
        const sink = client.sink(`${repo}:1`);
        const put = async (bytes: Buffer, mediaType: string) => {
          const descriptor = { mediaType, digest: sha256Text(bytes) as `sha256:${string}`, size: bytes.length };
          await sink.putBlob(descriptor, async () => Readable.from([bytes]));
          return descriptor;
        };
        const base = await put(gzipSync(Buffer.from(`windows base ${implementation}`)), 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip');
        foreign = { ...base, urls: ['https://mcr.example.invalid/windows/base'] };
        const own = await put(gzipSync(Buffer.from(`app ${implementation}`)), 'application/vnd.docker.image.rootfs.diff.tar.gzip');
        const config = await put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'windows', rootfs: { type: 'layers', diff_ids: [] } })), 'application/vnd.docker.container.image.v1+json');
        const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config, layers: [foreign, own] }));
        manifestDigest = sha256Text(bytes);
        await sink.putManifest({ descriptor: { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: manifestDigest as `sha256:${string}`, size: bytes.length }, bytes }, { tag: '1' });
      } finally {
        await client.close();
      }
      const holds = async (repository: string) => {
        const reader = remote.createRegistryClient({});
        try {
          return await reader.sink(`${destination.host}/${repository}:1`).hasBlob(foreign);
        } finally {
          await reader.close();
        }
      };
      const plain = await copyImage({ source: `${repo}:1`, destination: `${destination.host}/foreign/plain:1` });
      assert.equal(plain.digest, manifestDigest);
      assert.equal(await holds('foreign/plain'), false, 'by default the foreign layer stays at its URL');
      const airgap = await copyImage({ source: `${repo}:1`, destination: `${destination.host}/foreign/airgap:1`, includeNondistributable: true });
      assert.equal(airgap.digest, manifestDigest, 'the manifest is unchanged: only the blob moves');
      assert.equal(await holds('foreign/airgap'), true);
      const crane = toolPath('crane');
      if (crane) {
        await runChecked(crane, ['copy', '--insecure', '--allow-nondistributable-artifacts', `${repo}:1`, `${destination.host}/foreign/crane:1`], { env: { HOME: work } });
        assert.equal(await holds('foreign/crane'), true, 'crane carries it the same way');
      }
    });

    it('copies the whole index byte for byte: same digest, every child present', async () => {
      const result = await copyImage({ source: index.reference, destination: `${proxy.host}/all/app:1` });
      assert.equal(result.digest, index.digest);
      assert.equal(result.noop, false);
      assert.equal(result.reference, `${proxy.host}/all/app:1@${index.digest}`);
      const raw = await skopeoRaw(`${destination.host}/all/app:1`);
      assert.equal(raw, index.raw);
      assert.equal(sha256Text(raw), index.digest);
      for (const c of index.children) assert.equal(sha256Text(await skopeoRaw(`${destination.host}/all/app@${c.digest}`)), c.digest);
      assert.deepEqual(result.platforms.map((p) => p.platform), ['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
      assert.equal(result.stats.manifestsPut, 4);
      // The tag is the last write: no manifest PUT by tag before the children's PUTs are done.
      const puts = proxy.requestsMatching({ method: 'PUT', path: '/all/app/manifests/' });
      assert.equal(puts.at(-1)?.path, '/v2/all/app/manifests/1');
      assert.equal(puts.filter((r) => r.path.endsWith('/manifests/1')).length, 1);
    });

    it('copies linux/arm/v7 from the index as its child manifest, unchanged', async () => {
      const arm = child('linux/arm/v7');
      const result = await copyImage({ source: index.reference, destination: `${destination.host}/one/app:armv7`, platforms: 'linux/arm/v7' });
      assert.equal(result.digest, arm.digest);
      assert.equal(result.sourceDigest, index.digest);
      assert.equal(sha256Text(await skopeoRaw(`${destination.host}/one/app:armv7`)), arm.digest);
      const config = JSON.parse((await runChecked('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${destination.host}/one/app:armv7`])).stdout) as Record<string, unknown>;
      assert.deepEqual([config.os, config.architecture, config.variant], ['linux', 'arm', 'v7']);
    });

    it('copies a subset as a new index of the same media type, children untouched', async () => {
      const result = await copyImage({ source: index.reference, destination: `${destination.host}/subset/app:1`, platforms: ['linux/arm64', 'linux/amd64'] });
      assert.notEqual(result.digest, index.digest);
      const copied = await inspectIndex(`${destination.host}/subset/app:1`);
      assert.equal(copied.digest, result.digest);
      assert.equal(copied.mediaType, index.mediaType);
      assert.deepEqual(copied.children, [child('linux/amd64'), child('linux/arm64')]);
    });

    it('refuses a platform that is not there, naming the available ones', async () => {
      await assert.rejects(
        copyImage({ source: index.reference, destination: `${destination.host}/none/app:1`, platforms: 'linux/s390x' }),
        (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_PLATFORM_MISMATCH' && err.message.includes('linux/amd64, linux/arm64, linux/arm/v7'),
      );
    });

    it('checks a single image against its config instead of copying the wrong architecture', async () => {
      const arm64 = `${source.host}/fixture/app@${child('linux/arm64').digest}`;
      await assert.rejects(
        copyImage({ source: arm64, destination: `${proxy.host}/single/app:1`, platforms: 'linux/amd64' }),
        (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_PLATFORM_MISMATCH' && /single linux\/arm64 image, not linux\/amd64/.test(err.message),
      );
      assert.equal(proxy.requestsMatching({ path: '/single/' }).length, 0, 'the destination was touched');
      const ok = await copyImage({ source: arm64, destination: `${destination.host}/single/app:1`, platforms: 'linux/arm64' });
      assert.equal(ok.digest, child('linux/arm64').digest);
    });

    it('is a no-op costing at most 2 requests to the destination when it already holds the digest', async () => {
      const target = `${proxy.host}/noop/app:1`;
      await copyImage({ source: index.reference, destination: target });
      proxy.clearRequests();
      const again = await copyImage({ source: index.reference, destination: target });
      assert.equal(again.noop, true);
      assert.equal(again.digest, index.digest);
      const requests = proxy.requests.map((r) => `${r.method} ${r.path}`);
      assert.ok(requests.length <= 2, `destination saw ${requests.length} requests: ${requests.join(', ')}`);
      assert.deepEqual(requests.filter((r) => r.includes('/manifests/')), ['HEAD /v2/noop/app/manifests/1']);
    });

    it('refuses to replace a different image unless overwrite is set', async () => {
      const target = `${destination.host}/taken/app:1`;
      const other = await copyImage({ source: index.reference, destination: target, platforms: 'linux/amd64' });
      await assert.rejects(copyImage({ source: index.reference, destination: target }), (err: unknown) => {
        assert.ok(SlipwayError.is(err));
        assert.equal(err.code, 'SLIPWAY_DESTINATION_EXISTS');
        assert.ok(err.message.includes(other.digest) && err.message.includes(index.digest), err.message);
        return true;
      });
      assert.equal((await getDigest({ reference: target })).digest, other.digest);
      const replaced = await copyImage({ source: index.reference, destination: target, overwrite: true });
      assert.equal(replaced.digest, index.digest);
      assert.equal(sha256Text(await skopeoRaw(target)), index.digest);
    });

    it('mounts blobs across repositories of one registry instead of moving them', async () => {
      await copyImage({ source: index.reference, destination: `${proxy.host}/origin/app:1` });
      proxy.clearRequests();
      const events: copyTypes.CopyEvent[] = [];
      const result = await copyImage({ source: `${proxy.host}/origin/app:1`, destination: `${proxy.host}/mounted/app:1`, onProgress: (e) => events.push(e) });
      assert.equal(result.digest, index.digest);
      assert.equal(result.stats.blobsCopied, 0);
      assert.equal(result.stats.blobsMounted, 6, JSON.stringify(result.stats));
      const mounts = proxy.requestsMatching({ method: 'POST', path: /\/v2\/mounted\/app\/blobs\/uploads\/\?.*mount=sha256.*from=origin%2Fapp|from=origin%2Fapp.*mount=/ });
      assert.equal(mounts.length, 6);
      assert.ok(mounts.every((r) => r.status === 201));
      assert.equal(proxy.requestsMatching({ method: 'GET', path: '/blobs/sha256' }).length, 0, 'a blob was downloaded');
      assert.equal(events.filter((e) => e.type === 'blob-mount').length, 6);
    });

    it('pushes an OCI layout written by skopeo with its digest', async () => {
      const dir = join(work, 'layout');
      await runChecked('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${index.reference}`, `oci:${dir}:v1`]);
      const layoutDigest = sha256Text((await runChecked('skopeo', ['inspect', '--raw', `oci:${dir}:v1`])).stdout);
      const result = await pushArchive({ archive: dir, destination: `${destination.host}/layout/app:v1` });
      assert.equal(result.digest, layoutDigest);
      assert.equal(result.platforms.length, 3);
      assert.equal(sha256Text(await skopeoRaw(`${destination.host}/layout/app:v1`)), layoutDigest);
      const tarPath = join(work, 'layout.tar');
      await runChecked('tar', ['-C', dir, '-cf', tarPath, '.']);
      const fromTar = await pushArchive({ archive: tarPath, destination: `${destination.host}/layout/app:tar` });
      assert.equal(fromTar.digest, layoutDigest);
    });

    it('pushes a docker-archive (plain and gzipped) keeping the config', async () => {
      const amd64 = child('linux/amd64');
      const tarPath = join(work, 'docker.tar');
      await runChecked('skopeo', ['copy', '--src-tls-verify=false', `docker://${source.host}/fixture/app@${amd64.digest}`, `docker-archive:${tarPath}:fixture/app:1`]);
      const sourceConfig = (JSON.parse(await skopeoRaw(`${source.host}/fixture/app@${amd64.digest}`)) as { config: { digest: string } }).config.digest;
      const plain = await pushArchive({ archive: tarPath, destination: `${destination.host}/archive/app:plain` });
      const pushed = JSON.parse(await skopeoRaw(`${destination.host}/archive/app:plain`)) as { config: { digest: string }; layers: unknown[] };
      assert.equal(pushed.config.digest, sourceConfig);
      assert.equal(pushed.layers.length, 1);
      assert.deepEqual(plain.platforms, [{ platform: 'linux/amd64', digest: plain.digest }]);
      const gzPath = join(work, 'docker.tar.gz');
      await writeFile(gzPath, gzipSync(await readFile(tarPath)));
      const gz = await pushArchive({ archive: gzPath, destination: `${destination.host}/archive/app:gz` });
      assert.equal(gz.digest, plain.digest, 'the same archive gzipped pushes the same image');
      await assert.rejects(
        pushArchive({ archive: tarPath, destination: `${destination.host}/archive/app:arm`, platforms: 'linux/arm64' }),
        (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_PLATFORM_MISMATCH',
      );
    });

    it('stops at the first failure and leaves the tag unwritten', async () => {
      const fault = proxy.inject({ match: { method: 'PUT', path: /\/v2\/broken\/app\/blobs\/uploads\// }, fault: { status: 400 }, times: Infinity });
      try {
        await assert.rejects(copyImage({ source: index.reference, destination: `${proxy.host}/broken/app:1` }));
        assert.ok(fault.hits >= 1);
        assert.equal(proxy.requestsMatching({ method: 'PUT', path: '/v2/broken/app/manifests/' }).length, 0);
      } finally {
        fault.remove();
      }
    });
  });
}

describe('copy from the Docker daemon', () => {
  it('copies docker-daemon:IMAGE to a registry keeping the image config', async (t) => {
    if (!(await skipUnlessDocker(t, 'docker-daemon: source'))) return;
    const registry = await startRegistry();
    const dir = await mkdtemp(join(tmpdir(), 'slipway-copy-daemon-'));
    const image = `slipway-e2e-copy-daemon-${process.pid}:1`;
    try {
      await writeFile(join(dir, 'hello'), 'hello from the daemon\n');
      await runChecked('tar', ['-C', dir, '-cf', join(dir, 'rootfs.tar'), 'hello']);
      await runChecked(DOCKER_CLI, ['import', '--change', 'ENV SLIPWAY=daemon', join(dir, 'rootfs.tar'), image]);
      const id = (await runChecked(DOCKER_CLI, ['inspect', '-f', '{{.Id}}', image])).stdout.trim();
      const result = await copyImage({ source: `docker-daemon:${image}`, destination: `${registry.host}/daemon/app:1` });
      const pushed = JSON.parse(await skopeoRaw(`${registry.host}/daemon/app:1`)) as { config: { digest: string } };
      assert.equal(pushed.config.digest, id, 'the config Docker holds is the config pushed');
      assert.equal(sha256Text(await skopeoRaw(`${registry.host}/daemon/app:1`)), result.digest);
      assert.deepEqual(result.platforms.map((p) => p.platform), ['linux/amd64']);
      assert.deepEqual(result.warnings, []);
    } finally {
      await run(DOCKER_CLI, ['rmi', '-f', image]);
      await registry.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('warns when docker-daemon:NAME@DIGEST cannot give back DIGEST (the Engine keeps no registry manifest)', async (t) => {
    if (!(await skipUnlessDocker(t, 'docker-daemon: source'))) return;
    if (!hasTool('skopeo')) return t.skip('SKIPPED: skopeo is not installed (apt-get install skopeo): it pushes the image another tool compressed');
    const registry = await startRegistry();
    const dir = await mkdtemp(join(tmpdir(), 'slipway-copy-daemon-pinned-'));
    const image = `slipway-e2e-daemon-pinned-${process.pid}:1`;
    const pulled = `${registry.host}/skopeo/app`;
    try {
      await writeFile(join(dir, 'hello'), 'pinned by digest\n');
      await runChecked('tar', ['-C', dir, '-cf', join(dir, 'rootfs.tar'), 'hello']);
      await runChecked(DOCKER_CLI, ['import', join(dir, 'rootfs.tar'), image]);
      // skopeo compresses the layer its own way; `docker pull` then records that manifest's digest.
      await runChecked('skopeo', ['copy', '-q', '--dest-tls-verify=false', `docker-daemon:${image}`, `docker://${pulled}:1`]);
      const pinned = sha256Text(await skopeoRaw(`${pulled}:1`));
      await runChecked(DOCKER_CLI, ['pull', '-q', `${pulled}:1`]);
      const source = `docker-daemon:${pulled}@${pinned}`;
      const read = await getDigest({ reference: source });
      assert.notEqual(read.digest, pinned, 'the Engine cannot reproduce another tool\'s compression');
      assert.equal(read.warnings?.length, 1);
      assert.ok(read.warnings[0]!.includes(`reads as ${read.digest}, not ${pinned}`), read.warnings[0]);
      const copied = await copyImage({ source, destination: `${registry.host}/daemon/pinned:1` });
      assert.equal(copied.digest, read.digest);
      assert.equal(copied.warnings.length, 1);
      assert.equal((await listPlatforms({ reference: source })).warnings?.length, 1);
      // Without a digest in the name there is nothing to say.
      assert.equal((await getDigest({ reference: `docker-daemon:${image}` })).warnings, undefined);
    } finally {
      await run(DOCKER_CLI, ['rmi', '-f', image, `${pulled}:1`]);
      await registry.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

