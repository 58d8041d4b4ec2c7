// pushArchive of a real `docker save` archive (uncompressed layers) with a cold layer cache, against
// the real registry behind the fault proxy: each layer goes up while it is compressed, in one PATCH
// without Content-Range, and is not uploaded a second time; a warm cache uploads nothing; a PATCH
// reset midway or refused with 405 falls back to the ordinary upload with the same result; an abort
// mid-push leaves no tag and no half-written cache entry.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pushArchive } from '@slipway/engine';
import { SlipwayError, type copy } from '@slipway/oci';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../support/fault-proxy.js';
import { dockerSaveArchive, loadBusyboxIntoDocker } from '../support/fixtures.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { DOCKER_CLI, dockerAvailable, hasTool, run, runChecked } from '../support/tools.js';

const missing = [...(hasTool('skopeo') ? [] : ['skopeo (apt-get install skopeo)']), ...((await dockerAvailable()) ? [] : ['a running Docker Engine'])];

interface Layer {
  digest: string;
  size: number;
}

const sha256Text = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;

describe('pushArchive streams layers while compressing them', { skip: missing.length > 0 ? `needs ${missing.join(' and ')}` : false }, () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let archive: string;
  const images: string[] = [];
  /** What the first, streamed push produced: every other push of the archive must give the same. */
  let pushed: { digest: string; layers: Layer[]; config: Layer } | undefined;

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ target: registry });
    work = await mkdtemp(join(tmpdir(), 'slipway-push-stream-'));
    // Two layers: the busybox rootfs (docker import) and 3 MiB of random bytes (BuildKit COPY).
    const base = `slipway-e2e-push-stream-${process.pid}/base:1`;
    const layered = `slipway-e2e-push-stream-${process.pid}/layered:1`;
    images.push(layered, base);
    await loadBusyboxIntoDocker(base);
    const ctx = join(work, 'ctx');
    await mkdir(ctx);
    await writeFile(join(ctx, 'blob.bin'), randomBytes(3 * 1024 * 1024));
    await writeFile(join(ctx, 'Dockerfile'), `FROM ${base}\nCOPY blob.bin /blob.bin\n`);
    await runChecked(DOCKER_CLI, ['build', '-q', '-t', layered, ctx], { env: { DOCKER_BUILDKIT: '1' }, timeoutMs: 120_000 });
    archive = await dockerSaveArchive([layered], join(work, 'image.tar'));
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (images.length > 0) await run(DOCKER_CLI, ['rmi', '-f', ...images]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  const freshCache = (): Promise<string> => mkdtemp(join(work, 'cache-'));
  const uploads = (repo: string, method: string): ProxiedRequest[] => proxy.requestsMatching({ method, path: `/v2/${repo}/blobs/uploads/` });
  const commitOf = (r: ProxiedRequest): string | null => new URL(r.path, 'http://x').searchParams.get('digest');

  /** The manifest at the tag, read by skopeo from the registry itself; its digest must be the push's. */
  async function inspect(repo: string, tag: string, digest: string): Promise<{ layers: Layer[]; config: Layer }> {
    const raw = (await runChecked('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/${repo}:${tag}`])).stdout;
    assert.equal(sha256Text(raw), digest, 'skopeo sees the digest the push reported');
    return JSON.parse(raw) as { layers: Layer[]; config: Layer };
  }

  /** A full pull by skopeo, which verifies every blob against its digest. */
  async function pullable(repo: string, tag: string): Promise<void> {
    const dir = await mkdtemp(join(work, 'pulled-'));
    await runChecked('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${registry.host}/${repo}:${tag}`, `oci:${dir}:x`], { timeoutMs: 60_000 });
  }

  /** Every `.gz` in the cache has its `.json`, and no temp file is left. */
  async function cacheIsWhole(cacheDir: string): Promise<string[]> {
    const names = await readdir(join(cacheDir, 'slipway-cache', 'layers')).catch(() => [] as string[]);
    assert.deepEqual(names.filter((n) => n.includes('.tmp-')), [], 'no temp file left');
    for (const gz of names.filter((n) => n.endsWith('.gz'))) assert.ok(names.includes(gz.replace(/\.gz$/, '.json')), `${gz} has its record`);
    return names;
  }

  const push = (repo: string, tag: string, cacheDir: string | false, extra: { signal?: AbortSignal; overwrite?: boolean; streamLayers?: boolean; onProgress?: (e: copy.CopyEvent) => void } = {}) =>
    pushArchive({ archive, destination: `${proxy.host}/${repo}:${tag}`, cacheDir: cacheDir === false ? false : join(cacheDir, 'slipway-cache'), ...extra });

  it('a cold push uploads each layer once, in a PATCH without Content-Range; a warm one uploads nothing', async () => {
    const cache = await freshCache();
    const events: copy.CopyEvent[] = [];
    const result = await push('stream/app', '1', cache, { onProgress: (e) => events.push(e) });
    const manifest = await inspect('stream/app', '1', result.digest);
    assert.equal(manifest.layers.length, 2);
    pushed = { digest: result.digest, ...manifest };

    const patches = uploads('stream/app', 'PATCH');
    assert.equal(patches.length, 2, 'one streamed PATCH per layer');
    for (const patch of patches) {
      assert.equal(patch.status, 202);
      assert.equal(patch.headers['content-range'], undefined);
      // Chunked while the layer is still being compressed. A layer that fits the stream's buffer and
      // was compressed whole before the PATCH left (a slow POST on a loaded machine) goes with a
      // Content-Length instead: undici sends one for a stream that has already ended
      // (util.bodyLength). Either way one PATCH without Content-Range carries the whole layer.
      if (patch.headers['transfer-encoding'] === undefined) assert.equal(patch.headers['content-length'], String(patch.requestBytes), 'unchunked: the whole layer announced');
      else assert.equal(patch.headers['transfer-encoding'], 'chunked');
    }
    assert.deepEqual(patches.map((p) => p.requestBytes).sort(), manifest.layers.map((l) => l.size).sort(), 'each PATCH carried a whole layer');
    const puts = uploads('stream/app', 'PUT');
    for (const layer of manifest.layers) {
      const commits = puts.filter((p) => commitOf(p) === layer.digest);
      assert.equal(commits.length, 1, `${layer.digest} committed once`);
      assert.equal(commits[0]!.requestBytes, 0, 'committed by an empty PUT');
      assert.equal(commits[0]!.status, 201);
    }
    // No second upload: the only other bytes sent are the config's.
    const sent = [...patches, ...puts].reduce((sum, r) => sum + r.requestBytes, 0);
    assert.equal(sent, manifest.layers.reduce((sum, l) => sum + l.size, 0) + manifest.config.size);
    assert.deepEqual(result.stats, { blobsCopied: 3, blobsSkipped: 0, blobsMounted: 0, bytesCopied: sent, manifestsPut: 1 });
    assert.equal(events.filter((e) => e.type === 'blob-done').length, 3);
    assert.equal(events.filter((e) => e.type === 'blob-skip').length, 0);
    assert.equal((await cacheIsWhole(cache)).filter((n) => n.endsWith('.gz')).length, 2);
    await pullable('stream/app', '1');

    // Warm cache, new tag: nothing is compressed or uploaded, only the manifest is written.
    proxy.clearRequests();
    const warm = await push('stream/app', '2', cache);
    assert.equal(warm.digest, result.digest);
    assert.deepEqual(warm.stats, { blobsCopied: 0, blobsSkipped: 3, blobsMounted: 0, bytesCopied: 0, manifestsPut: 1 });
    assert.equal(uploads('stream/app', 'POST').length, 0, 'no upload session');

    // A tag that already exists (a no-op here) and streamLayers: false stream nothing, even from a cold cache.
    proxy.clearRequests();
    const again = await push('stream/app', '1', await freshCache(), { overwrite: true });
    assert.equal(again.noop, true);
    const unstreamed = await push('stream/app', '3', await freshCache(), { streamLayers: false });
    assert.equal(unstreamed.digest, result.digest);
    assert.equal(uploads('stream/app', 'PATCH').length, 0);
    assert.equal(uploads('stream/app', 'POST').length, 0, 'the blobs were there; the copy skipped them');

    // A new tag in a repository that already has tags, from a cold cache (a fresh CI machine): the
    // layers are compressed first, so the copy's HEAD finds them and nothing is uploaded again.
    proxy.clearRequests();
    const repush = await push('stream/app', '4', await freshCache());
    assert.equal(repush.digest, result.digest);
    assert.deepEqual(repush.stats, { blobsCopied: 0, blobsSkipped: 3, blobsMounted: 0, bytesCopied: 0, manifestsPut: 1 });
    assert.equal(uploads('stream/app', 'POST').length, 0, 'no upload session: every layer was already there');
    assert.equal(proxy.requestsMatching({ method: 'GET', path: /\/v2\/stream\/app\/tags\/list\?n=1$/ }).length, 1, 'one small tag query decided it');
  });

  it('a corrupt layer in the cache: dropped, the layer compressed again, and the same push succeeds', async () => {
    assert.ok(pushed, 'needs the first test\'s push');
    const cache = await freshCache();
    await push('corrupt/first', '1', cache);
    const layersDir = join(cache, 'slipway-cache', 'layers');
    const gz = (await readdir(layersDir)).filter((n) => n.endsWith('.gz'));
    assert.equal(gz.length, 2);
    // Flip one byte in the middle of each cached layer: same size, wrong digest.
    for (const name of gz) {
      const path = join(layersDir, name);
      const bytes = await readFile(path);
      const middle = bytes.length >> 1;
      bytes[middle] = bytes[middle]! ^ 0xff;
      await writeFile(path, bytes);
    }
    // Another repository: the layers must be uploaded, from the cache. Each fails verification
    // once, is dropped from the cache, and goes up recompressed from the archive, verified.
    const result = await push('corrupt/second', '1', cache);
    assert.equal(result.digest, pushed.digest);
    await pullable('corrupt/second', '1');
    assert.deepEqual((await readdir(layersDir)).filter((n) => n.endsWith('.gz')), [], 'the corrupt entries are gone');
  });

  it('a PATCH reset midway: the push falls back to the ordinary upload, same image', async () => {
    assert.ok(pushed, 'the first test pushed');
    const fault = proxy.inject({ match: { method: 'PATCH', path: '/v2/reset/app/blobs/uploads/' }, fault: { reset: { afterRequestBytes: 256 * 1024 } } });
    const cache = await freshCache();
    const result = await push('reset/app', '1', cache);
    assert.equal(fault.hits, 1);
    assert.equal(result.digest, pushed.digest);
    await inspect('reset/app', '1', pushed.digest);
    const broken = uploads('reset/app', 'PATCH').find((p) => p.fault !== undefined);
    assert.ok(broken, 'the reset PATCH is in the log');
    assert.ok(uploads('reset/app', 'DELETE').length >= 1, 'the broken session was deleted');
    // The layer whose stream broke went up with its bytes in a PUT (the monolithic upload).
    const ordinary = uploads('reset/app', 'PUT').filter((p) => p.requestBytes > 0 && pushed!.layers.some((l) => l.digest === commitOf(p)));
    assert.equal(ordinary.length, 1);
    assert.equal(ordinary[0]!.status, 201);
    assert.equal(result.stats.blobsCopied, 3);
    await cacheIsWhole(cache);
    await pullable('reset/app', '1');
  });

  it('a registry that refuses a streamed PATCH (405): ordinary uploads, same image, also without a cache', async () => {
    assert.ok(pushed, 'the first test pushed');
    const fault = proxy.inject({ match: { method: 'PATCH', path: '/v2/refused/app/' }, fault: { status: 405 }, times: Infinity });
    try {
      const result = await push('refused/app', '1', false);
      assert.ok(fault.hits >= 1);
      assert.equal(result.digest, pushed.digest);
      await inspect('refused/app', '1', pushed.digest);
      for (const layer of pushed.layers) {
        const put = uploads('refused/app', 'PUT').filter((p) => commitOf(p) === layer.digest);
        assert.deepEqual(put.map((p) => [p.status, p.requestBytes]), [[201, layer.size]], `${layer.digest} uploaded once, the ordinary way`);
      }
      // Per session, not by count: on a loaded machine a streamed session can be given up before its
      // PATCH went out (a DELETE but no 405 for it), so DELETEs may outnumber the refusals. Each
      // session that met the fault must be deleted; one given up through abort() is deleted in the
      // background, so wait for it a little.
      const sessionOf = (r: ProxiedRequest): string => /\/blobs\/uploads\/([^/?]+)/.exec(r.path)?.[1] ?? r.path;
      const refused = uploads('refused/app', 'PATCH').map(sessionOf);
      assert.equal(refused.length, fault.hits, 'every PATCH met the fault');
      const undeleted = (): string[] => {
        const deleted = new Set(uploads('refused/app', 'DELETE').map(sessionOf));
        return refused.filter((id) => !deleted.has(id));
      };
      for (const deadline = Date.now() + 5000; undeleted().length > 0 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(undeleted(), [], 'each refused session was deleted');
      await pullable('refused/app', '1');
    } finally {
      fault.remove();
    }
  });

  it('a registry that denies listing tags (401, 403): no streaming, the push still succeeds', async () => {
    assert.ok(pushed, 'the first test pushed');
    for (const status of [401, 403]) {
      const repo = `denied${status}/app`;
      const fault = proxy.inject({ match: { method: 'GET', path: `/v2/${repo}/tags/list` }, fault: { status }, times: Infinity });
      try {
        const result = await push(repo, '1', await freshCache());
        assert.ok(fault.hits >= 1, `${status}: the tag query was asked and refused`);
        assert.equal(result.digest, pushed.digest, `${status}: same image`);
        assert.equal(uploads(repo, 'PATCH').length, 0, `${status}: nothing streamed`);
        assert.equal(result.stats.blobsCopied, 3);
        await inspect(repo, '1', pushed.digest);
      } finally {
        fault.remove();
      }
    }
  });

  it('aborted mid-push: AbortedError, no tag, no half-written cache entry', async () => {
    // The PATCH is held at the proxy, so the abort lands while layers stream.
    const fault = proxy.inject({ match: { method: 'PATCH', path: '/v2/abort/app/' }, fault: { delayMs: 2000 }, times: Infinity });
    try {
      const cache = await freshCache();
      const controller = new AbortController();
      const pushing = push('abort/app', '1', cache, { signal: controller.signal });
      const until = Date.now() + 30_000;
      while (uploads('abort/app', 'PATCH').length === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.ok(uploads('abort/app', 'PATCH').length > 0, 'a streamed PATCH started');
      controller.abort(new Error('user pressed ^C'));
      await assert.rejects(pushing, (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_ABORTED');
      await cacheIsWhole(cache);
      const head = await fetch(`${registry.url}/v2/abort/app/manifests/1`, { method: 'HEAD' });
      assert.equal(head.status, 404, 'no tag was created');
      assert.equal(proxy.requestsMatching({ method: 'PUT', path: '/v2/abort/app/manifests/' }).length, 0);
    } finally {
      fault.remove();
    }
  });
});
