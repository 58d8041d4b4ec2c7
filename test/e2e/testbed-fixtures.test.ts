// The image fixtures other suites build on: busybox rootfs per arch, Docker import/save, skopeo archives.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import {
  BUSYBOX_ARCHES, busyboxRootfs, dockerSaveArchive, fixtureCacheDir, hasBusyboxDeb, loadBusyboxIntoDocker, pushBusyboxIndex,
  skopeoArchives,
} from '../support/fixtures.js';
import { startRegistry } from '../support/registry.js';
import { DOCKER_CLI, run, skipUnless, skipUnlessDocker } from '../support/tools.js';

/** ELF e_machine values: x86-64, AArch64, ARM. */
const ELF_MACHINE = { amd64: 62, arm64: 183, arm: 40 } as const;

test('busybox rootfs per arch holds a static busybox for that machine and a deterministic tar', async (t) => {
  for (const arch of BUSYBOX_ARCHES) {
    if (!hasBusyboxDeb(arch)) return t.skip(`SKIPPED: busybox-static .deb for ${arch} missing; run scripts/ci-setup.sh`);
    const fs = await busyboxRootfs(arch);
    const elf = await readFile(join(fs.dir, 'bin', 'busybox'));
    assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
    assert.equal(elf.readUInt16LE(18), ELF_MACHINE[arch], `${arch} busybox machine type`);
    assert.ok((await stat(fs.tarPath)).size > elf.length);
    assert.equal(await busyboxRootfs(arch), fs, 'cached per process');
  }
  const r = await run('tar', ['-tvf', (await busyboxRootfs('amd64')).tarPath]);
  assert.match(r.stdout, /\.\/bin\/sh -> busybox/);
  assert.match(r.stdout, /1970-01-01/);
});

test('amd64 busybox runs (sanity of the rootfs, through chroot-free exec)', async (t) => {
  if (process.arch !== 'x64') return t.skip('SKIPPED: host is not amd64');
  const fs = await busyboxRootfs('amd64');
  const r = await run(join(fs.dir, 'bin', 'busybox'), ['echo', 'hello from busybox']);
  assert.equal(r.stdout, 'hello from busybox\n');
});

test('docker import + docker save (plain and gzip) give a loadable archive', async (t) => {
  if (!await skipUnlessDocker(t, 'docker save fixture')) return;
  const tag = `slipway-testbed/busybox:${process.pid}`;
  t.after(() => run(DOCKER_CLI, ['rmi', '-f', tag]));
  const id = await loadBusyboxIntoDocker(tag);
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  const runOut = await run(DOCKER_CLI, ['run', '--rm', '--network', 'none', tag, 'sh', '-c', 'echo ok-$((1+1))']);
  assert.equal(runOut.stdout.trim(), 'ok-2', runOut.stderr);

  const dir = await fixtureCacheDir();
  const plain = await dockerSaveArchive([tag], join(dir, 'save.tar'));
  const gz = await dockerSaveArchive([tag], join(dir, 'save.tar.gz'), { gzip: true });
  const plainBytes = await readFile(plain);
  const unzipped = gunzipSync(await readFile(gz));
  assert.equal(createHash('sha256').update(unzipped).digest('hex'), createHash('sha256').update(plainBytes).digest('hex'));
  const list = await run('tar', ['-tf', plain]);
  assert.match(list.stdout, /^manifest\.json$/m);
  const manifest = JSON.parse((await run('tar', ['-xOf', plain, 'manifest.json'])).stdout) as { RepoTags: string[] }[];
  assert.deepEqual(manifest[0]!.RepoTags, [tag]);
});

test('skopeo writes docker-archive, oci-archive and oci layouts from a registry index', async (t) => {
  if (!skipUnless(t, 'skopeo', 'archive fixtures') || !skipUnless(t, 'buildah', 'index fixture')) return;
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const pushed = await pushBusyboxIndex(reg.host, 'fixtures/multi');
  const one = await skopeoArchives(pushed.ref, { arch: 'arm64', refName: 'fixtures/multi:arm64' });
  const dm = JSON.parse((await run('tar', ['-xOf', one.dockerArchive, 'manifest.json'])).stdout) as { RepoTags: string[]; Config: string }[];
  // skopeo normalises the name the way Docker does (docker.io/ prefix).
  assert.deepEqual(dm[0]!.RepoTags, ['docker.io/fixtures/multi:arm64']);
  const cfgName = dm[0]!.Config;
  const cfg = JSON.parse((await run('tar', ['-xOf', one.dockerArchive, cfgName])).stdout) as { architecture: string };
  assert.equal(cfg.architecture, 'arm64');
  const ociIndex = JSON.parse(await readFile(join(one.ociDir, 'index.json'), 'utf8')) as { manifests: { mediaType: string }[] };
  assert.equal(ociIndex.manifests[0]!.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.match((await run('tar', ['-tf', one.ociArchive])).stdout, /^index\.json$/m);

  const all = await skopeoArchives(pushed.ref, { all: true });
  const allIndex = JSON.parse(await readFile(join(all.ociDir, 'index.json'), 'utf8')) as { manifests: { mediaType: string; digest: string }[] };
  assert.equal(allIndex.manifests[0]!.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.equal(allIndex.manifests[0]!.digest, pushed.digest);
});
