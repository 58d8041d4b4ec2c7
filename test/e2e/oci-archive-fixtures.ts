// Images for the archive tests, made by real tools only: a busybox rootfs (Debian's busybox-static)
// tarred by GNU tar and `docker import`ed, a second image built on it by BuildKit inside dockerd
// (two layers), and whatever `docker save`, skopeo, buildah and umoci make of them.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, copyFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOCKER_CLI, run, runChecked, BUILDAH_ENV } from '../support/tools.js';

export const BUSYBOX = '/bin/busybox';

export interface DockerImages {
  dir: string;
  /** One layer: the busybox rootfs, imported. */
  single: string;
  /** Two layers: the single image plus a COPY, built with BuildKit. */
  layered: string;
  /** The single image's rootfs imported again with another config: same layer, other image (docker save then writes a symlink). */
  sibling: string;
  /** `docker inspect` IDs (config digests). */
  ids: Record<string, string>;
  remove(): Promise<void>;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

export function sha256Text(bytes: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export async function docker(args: string[], env: Record<string, string> = {}): Promise<string> {
  return (await runChecked(DOCKER_CLI, args, { env, timeoutMs: 120_000 })).stdout.trim();
}

/** Imports and builds the test images under a unique repository, in a fresh temp dir. */
export async function makeDockerImages(label: string): Promise<DockerImages> {
  const dir = await mkdtemp(join(tmpdir(), `slipway-${label}-`));
  const repo = `slipway-e2e-${label}-${process.pid}`;
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  await symlink('busybox', join(rootfs, 'bin', 'sh'));
  await runChecked('tar', ['-C', rootfs, '-cf', join(dir, 'rootfs.tar'), '.']);
  const single = `${repo}/busybox:1`;
  const sibling = `${repo}/busybox:sibling`;
  const layered = `${repo}/layered:1`;
  await docker(['import', '--change', 'ENV SLIPWAY_FIXTURE=single', join(dir, 'rootfs.tar'), single]);
  await docker(['import', '--change', 'ENV SLIPWAY_FIXTURE=sibling', join(dir, 'rootfs.tar'), sibling]);
  const ctx = join(dir, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'hello.txt'), `hello from ${label}\n`);
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${single}\nCOPY hello.txt /hello.txt\nENV SLIPWAY_FIXTURE=layered\n`);
  await docker(['build', '-q', '-t', layered, ctx], { DOCKER_BUILDKIT: '1' });
  const ids: Record<string, string> = {};
  for (const image of [single, sibling, layered]) ids[image] = await docker(['inspect', '-f', '{{.Id}}', image]);
  return {
    dir,
    single,
    layered,
    sibling,
    ids,
    async remove() {
      await run(DOCKER_CLI, ['rmi', '-f', layered, sibling, single]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `skopeo inspect --raw` bytes' digest: what skopeo considers the image's manifest digest. */
export async function skopeoRawDigest(ref: string): Promise<string> {
  const raw = await runChecked('skopeo', ['inspect', '--raw', ref]);
  return sha256Text(raw.stdout);
}

export async function skopeo(args: string[]): Promise<string> {
  return (await runChecked('skopeo', args, { timeoutMs: 120_000 })).stdout;
}

export async function buildah(args: string[]): Promise<string> {
  return (await runChecked('buildah', args, { env: { ...BUILDAH_ENV }, timeoutMs: 120_000 })).stdout;
}
