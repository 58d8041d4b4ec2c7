// A three-platform image made by buildah (linux/amd64, linux/arm64, linux/arm/v7) from scratch, with
// its own throwaway storage, pushed to a test registry; and skopeo's view of what a registry holds.
// Nothing is pulled: each child is one small layer of text files.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILDAH_ENV, runChecked } from '../support/tools.js';
import { sha256Text } from './oci-archive-fixtures.js';

export interface PushedIndex {
  /** `host/repo:tag` as pushed. */
  reference: string;
  digest: string;
  mediaType: string;
  /** Exactly what the registry serves for the tag. */
  raw: string;
  children: { platform: string; digest: string; mediaType: string }[];
}

export const fixturePlatforms = ['linux/amd64', 'linux/arm64', 'linux/arm/v7'] as const;

/**
 * Builds the index with buildah (Docker manifest list of OCI image manifests, buildah 1.28's default)
 * and pushes it with `buildah manifest push --all`. Returns what skopeo then reads back.
 */
export async function pushBuildahIndex(reference: string): Promise<PushedIndex> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-buildah-index-'));
  const storage = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs'];
  const buildah = async (...args: string[]) => (await runChecked('buildah', [...storage, ...args], { env: { ...BUILDAH_ENV }, timeoutMs: 120_000 })).stdout.trim();
  const list = `slipway-fixture-${process.pid}-${Date.now()}`;
  try {
    await buildah('manifest', 'create', list);
    for (const platform of fixturePlatforms) {
      const [os, arch, variant] = platform.split('/') as [string, string, string | undefined];
      const platformFlags = ['--os', os, '--arch', arch, ...(variant ? ['--variant', variant] : [])];
      const container = await buildah('from', ...platformFlags, 'scratch');
      await writeFile(join(dir, 'platform'), `${platform}\n`);
      await writeFile(join(dir, 'hello'), 'hello from a buildah fixture\n');
      await buildah('copy', container, join(dir, 'hello'), '/hello');
      await buildah('copy', container, join(dir, 'platform'), '/platform');
      await buildah('config', ...platformFlags, '--label', `slipway.fixture=${platform}`, container);
      await buildah('commit', '-q', '--manifest', list, container);
      await buildah('rm', container);
    }
    await buildah('manifest', 'push', '--all', '--tls-verify=false', list, `docker://${reference}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return inspectIndex(reference);
}

/** `skopeo inspect --raw`: the bytes a registry serves for a reference (plain HTTP allowed). */
export async function skopeoRaw(reference: string): Promise<string> {
  return (await runChecked('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reference}`], { timeoutMs: 60_000 })).stdout;
}

export async function inspectIndex(reference: string): Promise<PushedIndex> {
  const raw = await skopeoRaw(reference);
  const body = JSON.parse(raw) as { mediaType: string; manifests: { digest: string; mediaType: string; platform?: { os: string; architecture: string; variant?: string } }[] };
  return {
    reference,
    digest: sha256Text(raw),
    mediaType: body.mediaType,
    raw,
    children: body.manifests.map((m) => ({
      platform: m.platform ? [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/') : 'unknown',
      digest: m.digest,
      mediaType: m.mediaType,
    })),
  };
}
