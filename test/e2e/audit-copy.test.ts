// Acceptance audit: the copy engine's promises counted on the wire. A buildah-made three-platform
// index (linux/amd64, linux/arm64, linux/arm/v7) whose children SHARE a base layer is copied to the
// real registry behind the fault proxy, and the proxy's request log is the witness:
//  - each distinct blob is uploaded exactly once per run (one upload session, one committing PUT);
//  - with a platform filter the child manifest arrives byte for byte as `skopeo inspect --raw` shows it;
//  - blobs and children the destination already has are skipped, not re-sent;
//  - no more than `jobs` transfers run at once, and more than one does;
//  - progress events add up; on a terminal the CLI draws bars (ANSI), off one it prints plain lines.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { copyImage } from '@slipway/engine';
import type { copy as copyTypes } from '@slipway/oci';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { BUILDAH_ENV, hasTool, run, runChecked } from '../support/tools.js';
import { cliMain, maxInFlight } from './audit-support.js';
import { sha256Text } from './oci-archive-fixtures.js';

const platforms = ['linux/amd64', 'linux/arm64', 'linux/arm/v7'] as const;
const missing = ['buildah', 'skopeo', 'script'].filter((tool) => !hasTool(tool));
const skip = missing.length === 0 ? false : `SKIPPED: ${missing.join(', ')} not installed (buildah index, skopeo cross-check, pty); run scripts/ci-setup.sh`;
if (skip) console.error(`\n*** ${skip} ***\n`);

interface Child {
  platform: string;
  digest: string;
  raw: string;
  blobs: { digest: string; size: number }[];
}

async function skopeoRaw(ref: string): Promise<string> {
  return (await runChecked('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout;
}

/**
 * Three images from scratch: the same `base` file committed first with `--timestamp 0` (so the base
 * layer is byte-identical across architectures), then a per-platform file on top. Pushed with
 * `buildah manifest push --all`.
 */
async function pushSharedLayerIndex(reference: string, dir: string): Promise<void> {
  const storage = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs'];
  const buildah = async (...args: string[]) => (await runChecked('buildah', [...storage, ...args], { env: { ...BUILDAH_ENV }, timeoutMs: 120_000 })).stdout.trim();
  await writeFile(join(dir, 'base'), 'a base layer every platform shares\n'.repeat(2000));
  const list = `slipway-audit-shared-${process.pid}`;
  await buildah('manifest', 'create', list);
  for (const platform of platforms) {
    const [os, arch, variant] = platform.split('/') as [string, string, string | undefined];
    const flags = ['--os', os, '--arch', arch, ...(variant ? ['--variant', variant] : [])];
    const base = await buildah('from', ...flags, 'scratch');
    await buildah('copy', base, join(dir, 'base'), '/base');
    await buildah('config', ...flags, base);
    const baseImage = `localhost/slipway-audit-base:${arch}${variant ?? ''}`;
    await buildah('commit', '-q', '--timestamp', '0', base, baseImage);
    await buildah('rm', base);
    const top = await buildah('from', ...flags, baseImage);
    await writeFile(join(dir, 'platform'), `${platform}\n`);
    await buildah('copy', top, join(dir, 'platform'), '/platform');
    await buildah('config', ...flags, '--label', `slipway.audit=${platform}`, top);
    await buildah('commit', '-q', '--timestamp', '0', '--manifest', list, top);
    await buildah('rm', top);
  }
  await buildah('manifest', 'push', '--all', '--tls-verify=false', list, `docker://${reference}`);
}

/** Blob upload requests through the proxy for this repository, grouped by the digest they commit. */
function uploads(proxy: FaultProxy, repository: string) {
  const all = proxy.requestsMatching({ path: `/v2/${repository}/blobs/uploads/` });
  const commits = new Map<string, number>();
  for (const r of all.filter((r) => r.method === 'PUT')) {
    const digest = new URL(r.path, 'http://x').searchParams.get('digest') ?? '?';
    commits.set(digest, (commits.get(digest) ?? 0) + 1);
  }
  return {
    starts: all.filter((r) => r.method === 'POST').length,
    patches: all.filter((r) => r.method === 'PATCH').length,
    commits,
  };
}

describe('copy engine promises, counted on the wire (audit)', { skip }, () => {
  let source: TestRegistry;
  let destination: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let indexRef: string;
  let indexRaw: string;
  let children: Child[];
  let distinct: Map<string, number>;

  before(async () => {
    [source, destination] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await startFaultProxy({ target: destination });
    work = await mkdtemp(join(tmpdir(), 'slipway-audit-copy-'));
    indexRef = `${source.host}/shared/app:1`;
    await pushSharedLayerIndex(indexRef, work);
    indexRaw = await skopeoRaw(indexRef);
    const index = JSON.parse(indexRaw) as { manifests: { digest: string; platform: { os: string; architecture: string; variant?: string } }[] };
    children = [];
    for (const m of index.manifests) {
      const raw = await skopeoRaw(`${source.host}/shared/app@${m.digest}`);
      const body = JSON.parse(raw) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
      const p = m.platform;
      children.push({ platform: [p.os, p.architecture, p.variant].filter(Boolean).join('/'), digest: m.digest, raw, blobs: [body.config, ...body.layers] });
    }
    distinct = new Map(children.flatMap((c) => c.blobs.map((b) => [b.digest, b.size] as const)));
  });
  after(async () => {
    await proxy?.stop();
    await Promise.all([source?.stop(), destination?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the fixture really shares a layer between children', () => {
    assert.deepEqual(children.map((c) => c.platform), [...platforms]);
    const references = children.reduce((n, c) => n + c.blobs.length, 0);
    assert.equal(references, 9, '3 children × (config + base + platform layer)');
    assert.equal(distinct.size, 7, 'the base layer is one blob for all three');
  });

  it('copies the index to an empty registry uploading each distinct blob exactly once, with progress that adds up', async () => {
    proxy.clearRequests();
    const events: copyTypes.CopyEvent[] = [];
    const result = await copyImage({ source: indexRef, destination: `${proxy.host}/once/app:1`, jobs: 4, onProgress: (e) => events.push(e) });
    assert.equal(result.digest, sha256Text(indexRaw));
    assert.equal(await skopeoRaw(`${destination.host}/once/app:1`), indexRaw, 'the index arrived byte for byte');

    const u = uploads(proxy, 'once/app');
    assert.deepEqual([...u.commits.keys()].sort(), [...distinct.keys()].sort(), 'every distinct blob committed');
    for (const [digest, count] of u.commits) assert.equal(count, 1, `${digest} was uploaded ${count} times`);
    assert.equal(u.starts, distinct.size, 'one upload session per distinct blob');
    assert.equal(u.patches, 0, 'monolithic uploads, nothing chunked');
    const heads = proxy.requestsMatching({ method: 'HEAD', path: '/v2/once/app/blobs/' }).map((r) => r.path);
    assert.equal(new Set(heads).size, heads.length, 'each blob checked once');
    assert.equal(result.stats.blobsCopied, distinct.size);
    assert.equal(result.stats.bytesCopied, [...distinct.values()].reduce((a, b) => a + b, 0));

    const plans = events.filter((e) => e.type === 'plan');
    assert.equal(plans.length, 1);
    assert.equal(plans[0]!.totals.blobsTotal, distinct.size);
    assert.equal(plans[0]!.totals.bytesTotal, result.stats.bytesCopied);
    const started = events.filter((e) => e.type === 'blob-start').map((e) => (e as { digest: string }).digest);
    const done = events.filter((e) => e.type === 'blob-done').map((e) => (e as { digest: string }).digest);
    assert.deepEqual([...started].sort(), [...distinct.keys()].sort());
    assert.deepEqual([...done].sort(), [...distinct.keys()].sort());
    assert.ok(events.some((e) => e.type === 'blob-progress'), 'byte progress was reported');
    const last = events.at(-1)!;
    assert.equal(last.type, 'manifest-done');
    assert.equal((last as { tag?: string }).tag, '1', 'the tagged root is the last write');
    assert.deepEqual(last.totals, { blobsDone: distinct.size, blobsTotal: distinct.size, bytesDone: result.stats.bytesCopied, bytesTotal: result.stats.bytesCopied });
  });

  it('with a platform filter copies the child manifest as-is: the digest and bytes skopeo shows for it', async () => {
    for (const child of children) {
      proxy.clearRequests();
      const tag = child.platform.replaceAll('/', '-');
      const result = await copyImage({ source: indexRef, destination: `${proxy.host}/one/app:${tag}`, platforms: child.platform });
      assert.equal(result.digest, sha256Text(child.raw), `${child.platform}: digest of skopeo inspect --raw of the source child`);
      assert.equal(result.digest, child.digest);
      assert.equal(result.sourceDigest, sha256Text(indexRaw));
      assert.equal(await skopeoRaw(`${destination.host}/one/app:${tag}`), child.raw, `${child.platform}: bytes unchanged`);
      const manifestPuts = proxy.requestsMatching({ method: 'PUT', path: '/v2/one/app/manifests/' });
      assert.deepEqual(manifestPuts.map((r) => r.path), [`/v2/one/app/manifests/${tag}`], 'only the child, under the tag; no index written');
    }
  });

  it('skips blobs and children the destination already has', async () => {
    await copyImage({ source: indexRef, destination: `${destination.host}/partial/app:amd64`, platforms: 'linux/amd64' });
    proxy.clearRequests();
    const result = await copyImage({ source: indexRef, destination: `${proxy.host}/partial/app:all` });
    const amd64 = children.find((c) => c.platform === 'linux/amd64')!;
    const needed = new Set(children.filter((c) => c !== amd64).flatMap((c) => c.blobs.map((b) => b.digest)).filter((d) => !amd64.blobs.some((b) => b.digest === d)));
    const u = uploads(proxy, 'partial/app');
    assert.deepEqual([...u.commits.keys()].sort(), [...needed].sort(), 'only what the destination lacked was uploaded');
    assert.equal(result.stats.blobsCopied, needed.size);
    assert.equal(result.stats.blobsSkipped, 1, 'the shared base layer was found and skipped');
    assert.equal(proxy.requestsMatching({ path: `/v2/partial/app/blobs/${amd64.blobs[0]!.digest}` }).length, 0, 'the present child was not walked');
    assert.deepEqual(
      proxy.requestsMatching({ method: 'PUT', path: '/v2/partial/app/manifests/' }).map((r) => r.path).sort(),
      [...children.filter((c) => c !== amd64).map((c) => `/v2/partial/app/manifests/${c.digest}`), '/v2/partial/app/manifests/all'].sort(),
    );
  });

  it('never runs more than jobs transfers at once, and does run them in parallel', async () => {
    proxy.clearRequests();
    const slow = proxy.inject({ match: { method: 'PUT', path: '/v2/bounded/app/blobs/uploads/' }, fault: { delayMs: 250 }, times: Infinity });
    try {
      await copyImage({ source: indexRef, destination: `${proxy.host}/bounded/app:1`, jobs: 2 });
    } finally {
      slow.remove();
    }
    const puts = proxy.requestsMatching({ method: 'PUT', path: '/v2/bounded/app/blobs/uploads/' });
    assert.equal(puts.length, distinct.size);
    assert.equal(maxInFlight(puts), 2, 'two uploads overlapped, never three');
  });

  it('the CLI draws progress bars on a terminal and plain lines off one', async () => {
    const env = { DOCKER_CONFIG: join(work, 'none'), REGISTRY_AUTH_FILE: join(work, 'none.json'), TERM: 'xterm', COLUMNS: '100' };
    const slow = proxy.inject({ match: { method: 'PUT', path: '/blobs/uploads/' }, fault: { delayMs: 300 }, times: Infinity });
    try {
      // `script` gives the CLI a pseudo-terminal: stderr.isTTY is true there.
      const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(cliMain)} copy ${indexRef} ${proxy.host}/tty/app:1`;
      const tty = await run('script', ['-qfec', command, '/dev/null'], { env, timeoutMs: 60_000 });
      assert.equal(tty.code, 0, tty.stdout + tty.stderr);
      assert.match(tty.stdout, new RegExp(`${String.fromCharCode(27)}\\[\\d+A`), 'cursor movement (ESC [ n A): bars redrawn in place');
      assert.match(tty.stdout, /\d+\/7 blobs \[=*\s*\] /, 'an overall bar');
      assert.ok(tty.stdout.includes(`${proxy.host}/tty/app:1@${sha256Text(indexRaw)}`), 'the pinned reference is printed');

      const plain = await run(process.execPath, [cliMain, 'copy', indexRef, `${proxy.host}/plain/app:1`], { env });
      assert.equal(plain.code, 0, plain.stderr);
      assert.ok(!plain.stderr.includes('\x1b['), 'no ANSI codes off a terminal');
      const lines = plain.stderr.trim().split('\n');
      assert.match(lines[0]!, /^to check: 4 manifests, 7 blobs \(/);
      assert.equal(lines.filter((l) => /^blob sha256:[0-9a-f]{12} copied \(/.test(l)).length, 7);
      assert.equal(plain.stdout, `${proxy.host}/plain/app:1@${sha256Text(indexRaw)}\n`);
    } finally {
      slow.remove();
    }
  });
});
