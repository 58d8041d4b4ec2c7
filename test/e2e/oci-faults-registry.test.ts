// The registry client through the fault proxy in front of the real registry: 5xx, 429 with
// Retry-After, resets and truncation mid-blob, corrupted bytes, slow answers, a registry killed and
// restarted mid-push, and a registry answering garbage. Bad bytes are never accepted; the tag never
// points at incomplete content; the canary password never reaches a message.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { copy, DigestMismatchError, MediaType, name, NetworkError, remote, SlipwayError } from '@slipway/oci';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { CANARY_PASSWORD, CANARY_USERNAME, registryV3Path, startRegistry, type TestRegistry } from '../support/registry.js';
import { makeImage } from './registry-images.js';

type Image = ReturnType<typeof makeImage>;

async function push(client: remote.RegistryClient, reference: string, image: Image, open?: (b: Image['blobs'][number]) => () => Promise<Readable>): Promise<void> {
  const ref = name.parseReference(reference);
  const sink = client.sink(ref);
  for (const b of image.blobs) {
    if (await sink.hasBlob(b.descriptor)) continue;
    await sink.putBlob(b.descriptor, open ? open(b) : async () => Readable.from([b.bytes]));
  }
  await sink.putManifest(image.manifest, { tag: ref.tag! });
}

/** A source that trickles bytes, so an upload is still running when we break the registry. */
function trickle(bytes: Buffer, chunk: number, everyMs: number): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= bytes.length) return void this.push(null);
      const piece = bytes.subarray(offset, offset + chunk);
      offset += piece.length;
      setTimeout(() => this.push(piece), everyMs);
    },
  });
}

const anonymous = { resolve: async () => undefined };
const fastRetry = { baseDelayMs: 20, maxDelayMs: 200 };

describe('faults between the client and the real registry', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let client: remote.RegistryClient;
  let direct: remote.RegistryClient;

  before(async () => {
    registry = await startRegistry({ auth: 'none' });
    proxy = await startFaultProxy({ target: registry });
    client = remote.createRegistryClient({ keychain: anonymous, retry: fastRetry });
    direct = remote.createRegistryClient({ keychain: anonymous });
  });
  afterEach(() => {
    proxy.clearFaults();
    proxy.clearRequests();
  });
  after(async () => {
    await client?.close();
    await direct?.close();
    await proxy?.stop();
    await registry?.stop();
  });

  it('retries 5xx on upload start, blob HEAD and manifest PUT, then succeeds', async () => {
    const image = makeImage([20_000]);
    proxy.inject({ match: { method: 'POST', path: '/blobs/uploads/' }, fault: { status: 503 }, times: 2 });
    proxy.inject({ match: { method: 'HEAD', path: '/blobs/' }, fault: { status: 500 }, times: 1 });
    proxy.inject({ match: { method: 'PUT', path: '/manifests/' }, fault: { status: 502 }, times: 2 });
    await push(client, `${proxy.host}/faults/five:1`, image);
    assert.equal(proxy.requestsMatching({ method: 'PUT', path: '/manifests/' }).length, 3);
    assert.deepEqual(await direct.head(`${registry.host}/faults/five:1`), image.manifest.descriptor);
  });

  it('waits for Retry-After on 429 and then succeeds', async () => {
    const image = makeImage([10]);
    await push(direct, `${registry.host}/faults/limited:1`, image);
    proxy.inject({ match: { method: 'HEAD', path: '/manifests/1' }, fault: { status: 429, retryAfter: 1 }, times: 1 });
    const started = Date.now();
    assert.deepEqual(await client.head(`${proxy.host}/faults/limited:1`), image.manifest.descriptor);
    assert.ok(Date.now() - started >= 950, `waited ${Date.now() - started}ms`);
    assert.equal(proxy.requestsMatching({ method: 'HEAD', path: '/manifests/1' }).length, 2);
  });

  it('surfaces a rate limit that does not lift as TOOMANYREQUESTS-class temporary error', async () => {
    const limited = remote.createRegistryClient({ keychain: anonymous, retry: { attempts: 2, baseDelayMs: 1, maxRetryAfterMs: 10 } });
    try {
      proxy.inject({ match: { path: '/manifests/' }, fault: { status: 429, retryAfter: 30 }, times: Infinity });
      await assert.rejects(limited.getManifest(`${proxy.host}/faults/limited:1`), (err: unknown) => {
        assert.ok(SlipwayError.is(err));
        assert.equal((err as { status?: number }).status, 429);
        assert.equal((err as { temporary?: boolean }).temporary, true);
        assert.equal((err as { retryAfterMs?: number }).retryAfterMs, 30_000);
        return true;
      });
    } finally {
      await limited.close();
    }
  });

  it('resumes a blob download with Range after a reset mid-blob', async () => {
    const image = makeImage([1_000_000]);
    await push(direct, `${registry.host}/faults/resume:1`, image);
    const layer = image.layers[0]!;
    proxy.inject({ match: { method: 'GET', path: `/blobs/${layer.descriptor.digest}` }, fault: { reset: { afterBytes: 300_000 } }, times: 1 });
    const bytes = await buffer(await client.source(`${proxy.host}/faults/resume:1`).blob(layer.descriptor));
    assert.deepEqual(bytes, layer.bytes);
    const gets = proxy.requestsMatching({ method: 'GET', path: `/blobs/${layer.descriptor.digest}` });
    assert.equal(gets.length, 2);
    assert.match(String(gets[1]!.headers.range), /^bytes=\d+-$/);
    assert.ok(Number(/\d+/.exec(String(gets[1]!.headers.range))![0]) > 0, 'resumed from a non-zero offset');
  });

  /** Runs `run` with a client that uploads in chunks of `chunkSize` only (no monolithic PUT). */
  async function withChunkedClient(chunkSize: number, run: (chunked: remote.RegistryClient) => Promise<void>): Promise<void> {
    const chunked = remote.createRegistryClient({ keychain: anonymous, retry: fastRetry, chunkSize, maxMonolithicBytes: 0 });
    try {
      await run(chunked);
    } finally {
      await chunked.close();
    }
  }

  /** An image of one layer of `size` random bytes at `faults/<repo>:1`, pushed directly; `path` matches its blob GETs. */
  async function pushOneLayer(repo: string, size: number) {
    const image = makeImage([size]);
    await push(direct, `${registry.host}/faults/${repo}:1`, image);
    const layer = image.layers[0]!;
    return { image, layer, path: `/blobs/${layer.descriptor.digest}` };
  }

  it('resumes after a truncated body, and fails clearly when every answer is truncated', async () => {
    const { layer, path } = await pushOneLayer('truncated', 200_000);
    proxy.inject({ match: { method: 'GET', path }, fault: { truncate: { afterBytes: 150_000 } }, times: 1 });
    assert.deepEqual(await buffer(await client.source(`${proxy.host}/faults/truncated:1`).blob(layer.descriptor)), layer.bytes);

    proxy.inject({ match: { method: 'GET', path }, fault: { truncate: { afterBytes: 1000 } }, times: Infinity });
    const stream = await client.source(`${proxy.host}/faults/truncated:1`).blob(layer.descriptor);
    await assert.rejects(buffer(stream), (err: unknown) => {
      assert.ok(err instanceof NetworkError, String(err));
      assert.match(err.message, new RegExp(`downloading blob ${layer.descriptor.digest}.*after \\d+ bytes and 5 resumes`));
      return true;
    });
  });

  it('rejects corrupted blob bytes with a DigestMismatchError, and a sink never commits them', async () => {
    const { layer, path } = await pushOneLayer('corrupt', 100_000);
    proxy.inject({ match: { method: 'GET', path }, fault: { corrupt: { atByte: 5000 } }, times: 1 });
    await assert.rejects(buffer(await client.source(`${proxy.host}/faults/corrupt:1`).blob(layer.descriptor)), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError, String(err));
      assert.equal(err.want, layer.descriptor.digest);
      assert.match(err.message, /^verifying blob sha256:[0-9a-f]{64} from 127\.0\.0\.1:\d+\/faults\/corrupt after reading 100000 bytes: got sha256:[0-9a-f]{64}, want sha256:/);
      return true;
    });

    // Copy the corrupted stream into another repository: the upload must fail and leave nothing behind.
    proxy.inject({ match: { method: 'GET', path }, fault: { corrupt: { atByte: 99_999 } }, times: Infinity });
    const sink = direct.sink(`${registry.host}/faults/corrupt-copy:1`);
    const source = client.source(`${proxy.host}/faults/corrupt:1`);
    await assert.rejects(sink.putBlob(layer.descriptor, () => source.blob(layer.descriptor)), (err: unknown) => {
      assert.ok(SlipwayError.is(err), String(err));
      assert.ok(err.code === 'SLIPWAY_DIGEST_MISMATCH' || /DIGEST_INVALID/.test(err.message), err.message);
      return true;
    });
    assert.equal(await sink.hasBlob(layer.descriptor), false, 'corrupted bytes were not committed');
  });

  it('a copy reads a blob corrupted on the way once more; corrupted every time, it fails and commits nothing', async () => {
    const { image, layer, path } = await pushOneLayer('recopy', 100_000);
    proxy.inject({ match: { method: 'GET', path }, fault: { corrupt: { atByte: 70_000 } }, times: 1 });
    const once = await copy.copy(client.source(`${proxy.host}/faults/recopy:1`), direct.sink(`${registry.host}/faults/recopy-once:1`));
    assert.equal(once.digest, image.manifest.descriptor.digest);
    assert.equal(proxy.requestsMatching({ method: 'GET', path }).length, 2, 'read twice');
    assert.deepEqual(await buffer(await direct.blob(`${registry.host}/faults/recopy-once`, layer.descriptor)), layer.bytes);

    proxy.inject({ match: { method: 'GET', path }, fault: { corrupt: { atByte: 70_000 } }, times: Infinity });
    await assert.rejects(copy.copy(client.source(`${proxy.host}/faults/recopy:1`), direct.sink(`${registry.host}/faults/recopy-never:1`)), (err: unknown) => err instanceof DigestMismatchError);
    assert.equal(await direct.sink(`${registry.host}/faults/recopy-never:1`).hasBlob(layer.descriptor), false);
    assert.equal(await direct.head(`${registry.host}/faults/recopy-never:1`), undefined, 'no tag');
  });

  it('times out a slow answer and retries it', async () => {
    const slow = remote.createRegistryClient({ keychain: anonymous, timeoutMs: 300, retry: fastRetry });
    try {
      const image = makeImage([10]);
      await push(direct, `${registry.host}/faults/slow:1`, image);
      proxy.inject({ match: { method: 'GET', path: '/manifests/1' }, fault: { delayMs: 1500 }, times: 1 });
      const started = Date.now();
      const manifest = await slow.getManifest(`${proxy.host}/faults/slow:1`);
      assert.equal(manifest.descriptor.digest, image.manifest.descriptor.digest);
      assert.ok(Date.now() - started < 1400, 'did not wait for the slow answer');
      assert.equal(proxy.requestsMatching({ method: 'GET', path: '/manifests/1' }).length, 2);
    } finally {
      await slow.close();
    }
  });

  it('falls back to a chunked upload when the connection dies mid-PUT', async () => {
    const image = makeImage([600_000]);
    const layer = image.layers[0]!;
    const hex = layer.descriptor.digest.slice('sha256:'.length);
    proxy.inject({ match: { method: 'PUT', path: new RegExp(`/blobs/uploads/.*digest=sha256%3A${hex}`) }, fault: { reset: { afterRequestBytes: 200_000 } }, times: 1 });
    await push(client, `${proxy.host}/faults/midput:1`, image);
    assert.ok(proxy.requestsMatching({ method: 'PATCH', path: '/blobs/uploads/' }).length >= 1, 'the upload continued with PATCH');
    assert.deepEqual(await buffer(await direct.blob(`${registry.host}/faults/midput`, layer.descriptor)), layer.bytes);
    assert.deepEqual(await direct.head(`${registry.host}/faults/midput:1`), image.manifest.descriptor);
  });

  it('resumes a chunked upload after a reset mid-PATCH', async () => {
    await withChunkedClient(100_000, async (chunked) => {
      const image = makeImage([450_000]);
      const layer = image.layers[0]!;
      proxy.inject({ match: { method: 'PATCH' }, fault: { reset: 'before-response' }, times: 1, skip: 1 });
      proxy.inject({ match: { method: 'PATCH' }, fault: { status: 500 }, times: 1, skip: 3 });
      await push(chunked, `${proxy.host}/faults/patch:1`, image);
      // One status query per failure, answered by the registry with the offset it really holds.
      assert.ok(proxy.requestsMatching({ method: 'GET', path: '/blobs/uploads/' }).length >= 2);
      assert.deepEqual(await buffer(await direct.blob(`${registry.host}/faults/patch`, layer.descriptor)), layer.bytes);
    });
  });

  it('a chunked upload that progresses between failures keeps recovering: more failures in all than one recovery allows', async () => {
    await withChunkedClient(50_000, async (chunked) => {
      const image = makeImage([500_000]);
      const layer = image.layers[0]!;
      // Rule k lets k PATCHes by and fails the next one it sees: PATCHes 2, 4, … 16 fail, each after a
      // chunk was stored (a token revoked every minute during one big layer looks like this).
      for (let k = 1; k <= 8; k++) proxy.inject({ match: { method: 'PATCH', path: '/faults/progress/' }, fault: { status: 500 }, times: 1, skip: k });
      await push(chunked, `${proxy.host}/faults/progress:1`, image);
      assert.equal(proxy.requestsMatching({ method: 'PATCH', path: '/faults/progress/' }).filter((r) => r.status === 500).length, 8);
      assert.deepEqual(await buffer(await direct.blob(`${registry.host}/faults/progress`, layer.descriptor)), layer.bytes);
    });
  });

  it('a registry that forgets every new session after its first chunk is given up on, not fed sessions for ever', async () => {
    await withChunkedClient(50_000, async (chunked) => {
      const image = makeImage([200_000]);
      // Rule k lets 2k-1 PATCHes by and forgets the session at the next: every second PATCH.
      for (let k = 1; k <= 40; k++) proxy.inject({ match: { method: 'PATCH', path: '/faults/forgetful/' }, fault: { status: 404, code: 'BLOB_UPLOAD_UNKNOWN' }, times: 1, skip: 2 * k - 1 });
      try {
        await assert.rejects(push(chunked, `${proxy.host}/faults/forgetful:1`, image));
        const patches = proxy.requestsMatching({ method: 'PATCH', path: '/faults/forgetful/' }).length;
        assert.ok(patches <= 20, `${patches} PATCHes: the allowance was reset by a new session's first chunk`);
      } finally {
        proxy.clearFaults();
      }
    });
  });

  it('reopens a source that failed mid-blob during a chunked upload, and resumes at the registry\'s offset', async () => {
    // In a copy the source is another registry's blob stream; a reset there is temporary. The failed
    // stream cannot be read further: the upload must open the source again, not report it short.
    await withChunkedClient(64 * 1024, async (chunked) => {
      const image = makeImage([256 * 1024]);
      const layer = image.layers[0]!;
      let opens = 0;
      const open = (b: Image['blobs'][number]) => async (): Promise<Readable> => {
        if (b !== layer) return Readable.from([b.bytes]);
        opens += 1;
        if (opens > 1) return Readable.from([b.bytes]);
        let sent = false;
        return new Readable({
          read() {
            if (!sent) {
              sent = true;
              this.push(b.bytes.subarray(0, 128 * 1024));
            } else {
              this.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
            }
          },
        });
      };
      await push(chunked, `${proxy.host}/faults/source-reset:1`, image, open);
      assert.equal(opens, 2, 'the source was opened again after it failed');
      assert.deepEqual(await buffer(await direct.blob(`${registry.host}/faults/source-reset`, layer.descriptor)), layer.bytes);
    });
  });

  it('survives a 401 on a chunk (a token that expired while the chunk was on its way)', async () => {
    await withChunkedClient(100_000, async (chunked) => {
      const image = makeImage([350_000]);
      const layer = image.layers[0]!;
      proxy.inject({ match: { method: 'PATCH', path: '/faults/expired/blobs/uploads/' }, fault: { status: 401, code: 'UNAUTHORIZED' }, times: 1, skip: 1 });
      await push(chunked, `${proxy.host}/faults/expired:1`, image);
      assert.equal(proxy.requestsMatching({ method: 'PATCH', path: '/faults/expired/blobs/uploads/' }).filter((r) => r.status === 401).length, 1);
      assert.deepEqual(await buffer(await direct.blob(`${registry.host}/faults/expired`, layer.descriptor)), layer.bytes);
    });
  });

  it('honours OCI-Chunk-Min-Length: chunks grow to the minimum the registry asks for', async () => {
    // Distribution spec v1.1: a registry may answer the upload POST with OCI-Chunk-Min-Length, and
    // every chunk but the last must then be at least that long. Neither distribution build sends it,
    // so the proxy adds it to the real registry's answer; the registry stores whatever arrives.
    await withChunkedClient(64 * 1024, async (chunked) => {
      const image = makeImage([700_000]);
      const layer = image.layers[0]!;
      proxy.inject({ match: { method: 'POST', path: '/faults/minchunk/blobs/uploads/' }, fault: { addResponseHeaders: { 'OCI-Chunk-Min-Length': '300000' } }, times: Infinity });
      await push(chunked, `${proxy.host}/faults/minchunk:1`, image);
      const patches = proxy.requestsMatching({ method: 'PATCH', path: '/faults/minchunk/blobs/uploads/' });
      const layerPatches = patches.filter((p) => p.requestBytes > 2000).map((p) => p.requestBytes);
      assert.deepEqual(layerPatches, [300_000, 300_000, 100_000], `PATCH sizes ${JSON.stringify(patches.map((p) => p.requestBytes))}`);
      assert.deepEqual(await buffer(await direct.blob(`${registry.host}/faults/minchunk`, layer.descriptor)), layer.bytes);
      assert.deepEqual(await direct.head(`${registry.host}/faults/minchunk:1`), image.manifest.descriptor);
    });
  });

  it('survives the registry being killed and restarted mid-push, and the tag appears only when complete', async () => {
    const image = makeImage([3 * 1024 * 1024]);
    const layer = image.layers[0]!;
    // Enough patience to outlast a registry restart (about half a second here).
    const patient = remote.createRegistryClient({ keychain: anonymous, retry: { attempts: 8, baseDelayMs: 100, maxDelayMs: 1000 } });
    after(() => patient.close());
    const pushing = push(patient, `${proxy.host}/faults/restart:1`, image, (b) =>
      b === layer ? async () => trickle(b.bytes, 64 * 1024, 15) : async () => Readable.from([b.bytes]),
    );
    await sleep(250);
    await registry.kill();
    assert.equal(await direct.head(`${registry.host}/faults/restart:1`).catch(() => 'down'), 'down');
    await sleep(400);
    await registry.restart();
    await pushing;
    assert.deepEqual(await direct.head(`${registry.host}/faults/restart:1`), image.manifest.descriptor);
    assert.deepEqual(await buffer(await direct.blob(`${registry.host}/faults/restart`, layer.descriptor)), layer.bytes);
  });

  it('never tags an image whose upload failed', async () => {
    const fragile = remote.createRegistryClient({ keychain: anonymous, retry: { attempts: 2, baseDelayMs: 1 } });
    try {
      const image = makeImage([300_000]);
      proxy.inject({ match: { path: '/blobs/uploads/' }, fault: { status: 503 }, times: Infinity, skip: 1 });
      await assert.rejects(push(fragile, `${proxy.host}/faults/never:1`, image));
      proxy.clearFaults();
      assert.equal(await direct.head(`${registry.host}/faults/never:1`), undefined);
      assert.equal(proxy.requestsMatching({ method: 'PUT', path: '/manifests/' }).length, 0);
      assert.ok(proxy.requestsMatching({ method: 'DELETE', path: '/blobs/uploads/' }).length >= 1, 'the abandoned upload session was cancelled');
    } finally {
      await fragile.close();
    }
  });

  it('gives up on a registry that accepts chunks (202) without its Range ever moving', async () => {
    const image = makeImage([300_000]);
    const layer = image.layers[0]!;
    // The monolithic PUT fails (temporary, retried, then the chunked path), and every PATCH is "accepted"
    // with Range 0-0: before, the same chunk was sent for ever (120 000 PATCHes in 30 s).
    proxy.inject({ match: { method: 'PUT', path: '/faults/stalled/blobs/uploads/' }, fault: { status: 503 }, times: Infinity });
    proxy.inject({ match: { method: 'PATCH', path: '/faults/stalled/blobs/uploads/' }, fault: { status: 202, headers: { range: '0-0' } }, times: Infinity });
    const sink = client.sink(`${proxy.host}/faults/stalled:1`);
    await assert.rejects(sink.putBlob(layer.descriptor, async () => Readable.from([layer.bytes])), (err: unknown) => {
      assert.ok(SlipwayError.is(err));
      assert.equal(err.code, 'SLIPWAY_REGISTRY');
      assert.match(err.message, /took 3 chunks in a row without storing them \(its Range stays at 0 bytes\)/);
      return true;
    });
    assert.equal(proxy.requestsMatching({ method: 'PATCH', path: '/faults/stalled/blobs/uploads/' }).length, 3);
    assert.equal(await direct.head(`${registry.host}/faults/stalled:1`), undefined);
  });

  it('deletes the upload session when the client-wide signal aborts an upload (Ctrl-C in the CLI)', async () => {
    const controller = new AbortController();
    const cancelled = remote.createRegistryClient({ keychain: anonymous, signal: controller.signal });
    const image = makeImage([64 * 1024]);
    const layer = image.layers[0]!;
    // A source that has not produced its first byte yet (a slow export, a slow source registry). With bytes
    // already in, distribution 2.8 cannot delete the session at all: the DELETE's state token then names an
    // older offset, and its wrong-offset path closes the upload before it cancels it (blobUploadDispatcher),
    // so the 404 it answers leaves the bytes for the purger (v3: see 'a session cut mid-body' below).
    const stalled = () => new Readable({ read() {} });
    const pushing = push(cancelled, `${proxy.host}/faults/interrupted:1`, image, (b) => (b === layer ? async () => stalled() : async () => Readable.from([b.bytes])));
    // The stalled layer's session is open once two upload POSTs (config and layer) were answered 202;
    // the config's PUT alone said nothing about it, and on a loaded machine the abort came too early.
    const sessionsOpen = () => proxy.requestsMatching({ method: 'POST', path: '/faults/interrupted/blobs/uploads/' }).filter((r) => r.status === 202).length;
    for (let i = 0; i < 500 && sessionsOpen() < 2; i++) await sleep(20);
    await sleep(100);
    controller.abort(new Error('interrupted'));
    await assert.rejects(pushing, { code: 'SLIPWAY_ABORTED' });
    // close() waits for the clean-up still under way; it does not wait for the abandoned PUT.
    await cancelled.close();
    const deletes = proxy.requestsMatching({ method: 'DELETE', path: '/faults/interrupted/blobs/uploads/' });
    assert.equal(deletes.length, 1, 'the interrupted session was deleted');
    assert.equal(deletes[0]!.status, 204);
    const uploads = join(registry.storageDir, 'docker/registry/v2/repositories/faults/interrupted/_uploads');
    const left = (await readdir(uploads, { recursive: true }).catch(() => [])).filter((path) => path.endsWith('/data'));
    assert.deepEqual(left, [], 'no upload data left in the registry');
    assert.equal(await direct.head(`${registry.host}/faults/interrupted:1`), undefined);
  });

  it('deletes the live session (the last PATCH Location) when aborted between chunks', async () => {
    const controller = new AbortController();
    const cancelled = remote.createRegistryClient({ keychain: anonymous, signal: controller.signal, chunkSize: 64 * 1024, maxMonolithicBytes: 0 });
    const image = makeImage([1024 * 1024]);
    const layer = image.layers[0]!;
    // Chunks of 64 KiB from a source that gives two chunks and then waits for ever: two PATCHes, each
    // answered with a new _state, and the abort lands between PATCHes (one cut off mid-way would leave a
    // stale state token, which distribution refuses to DELETE by).
    const twoChunksThenStall = (bytes: Buffer) => {
      let sent = false;
      return new Readable({
        read() {
          if (!sent) this.push(bytes.subarray(0, 128 * 1024));
          sent = true;
        },
      });
    };
    const pushing = push(cancelled, `${proxy.host}/faults/between:1`, image, (b) =>
      b === layer ? async () => twoChunksThenStall(b.bytes) : async () => Readable.from([b.bytes]),
    );
    // The layer's chunks (the config, uploaded first, is one small PATCH of its own).
    const chunks = () => proxy.requestsMatching({ method: 'PATCH', path: '/faults/between/blobs/uploads/' }).filter((r) => r.requestBytes === 64 * 1024);
    for (let i = 0; i < 400 && !(chunks().length === 2 && chunks().every((r) => r.status === 202)); i++) await sleep(5);
    assert.equal(chunks().filter((r) => r.status === 202).length, 2, 'two chunks of the layer answered');
    // The proxy sees the answer before the client has read it: give the client time to take the new
    // Location and block on the stalled source (an abort while an answer is on its way is the same race
    // in real life, and ends in distribution's 404).
    await sleep(150);
    controller.abort(new Error('interrupted'));
    await assert.rejects(pushing, { code: 'SLIPWAY_ABORTED' });
    await cancelled.close();
    const deletes = proxy.requestsMatching({ method: 'DELETE', path: '/faults/between/blobs/uploads/' });
    assert.equal(deletes.length, 1);
    // The first POST's Location names offset 0; only the live one is accepted, and the bytes go with it.
    assert.equal(deletes[0]!.status, 204, `DELETE answered ${deletes[0]!.status}`);
    const uploads = join(registry.storageDir, 'docker/registry/v2/repositories/faults/between/_uploads');
    const left = (await readdir(uploads, { recursive: true }).catch(() => [])).filter((path) => path.endsWith('/data'));
    assert.deepEqual(left, [], 'no upload data left in the registry');
  });

  it('refuses a manifest answer that is not a manifest', async () => {
    proxy.inject({ match: { method: 'GET', path: '/manifests/' }, fault: { status: 200, headers: { 'content-type': MediaType.OciManifest } }, times: 1 });
    await assert.rejects(client.getManifest(`${proxy.host}/faults/garbage:1`), (err: unknown) => {
      assert.ok(SlipwayError.is(err));
      assert.equal(err.code, 'SLIPWAY_INVALID_MANIFEST');
      assert.match(err.message, /^fetching manifest 127\.0\.0\.1:\d+\/faults\/garbage:1: invalid manifest: schemaVersion undefined, want 2$/);
      return true;
    });
  });

  it('rejects a manifest whose bytes do not match its digest', async () => {
    const image = makeImage([10]);
    await push(direct, `${registry.host}/faults/badmanifest:1`, image);
    proxy.inject({ match: { method: 'GET', path: '/manifests/' }, fault: { corrupt: { atByte: 40 } }, times: 2 });
    await assert.rejects(client.getManifest(`${proxy.host}/faults/badmanifest:1`), DigestMismatchError);
    await assert.rejects(client.getManifest(`${proxy.host}/faults/badmanifest@${image.manifest.descriptor.digest}`), DigestMismatchError);
  });
});

describe('a session cut mid-body on distribution v3', { skip: registryV3Path() ? false : 'SKIPPED: distribution v3 is not built (scripts/install-go-tools.sh distribution)' }, () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  before(async () => {
    registry = await startRegistry({ auth: 'none', implementation: 'v3' });
    proxy = await startFaultProxy({ target: registry });
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  it('is deleted through the fresh Location a GET of the stale one answers with', async () => {
    const controller = new AbortController();
    const cancelled = remote.createRegistryClient({ keychain: anonymous, signal: controller.signal });
    const image = makeImage([1024 * 1024]);
    const layer = image.layers[0]!;
    // 256 KiB of the layer go into the monolithic PUT, then the source stalls and Ctrl-C comes: the
    // session's _state still names offset 0, and v3 answers that DELETE 416.
    const someThenStall = (bytes: Buffer) => {
      let sent = false;
      return new Readable({
        read() {
          if (!sent) this.push(bytes.subarray(0, 256 * 1024));
          sent = true;
        },
      });
    };
    const pushing = push(cancelled, `${proxy.host}/faults/cut:1`, image, (b) => (b === layer ? async () => someThenStall(b.bytes) : async () => Readable.from([b.bytes])));
    const uploads = join(registry.storageDir, 'docker/registry/v2/repositories/faults/cut/_uploads');
    const data = async () => (await readdir(uploads, { recursive: true }).catch(() => [] as string[])).filter((path) => path.endsWith('/data'));
    // Wait until the proxy has passed the layer's 256 KiB on to the registry (v3 buffers a PUT's body
    // before its upload file shows it, so the file cannot tell), then a moment for the registry to read them.
    const layerPut = () => proxy.requestsMatching({ method: 'PUT', path: '/faults/cut/blobs/uploads/' }).find((r) => r.requestBytes >= 256 * 1024);
    for (let i = 0; i < 500 && !layerPut(); i++) await sleep(20);
    assert.ok(layerPut(), `the layer's bytes never went out: ${proxy.requests.map((r) => `${r.method} ${r.path.replace(/\?.*/, '')} ${r.requestBytes}`).join('; ')}`);
    await sleep(100);
    controller.abort(new Error('interrupted'));
    await assert.rejects(pushing, { code: 'SLIPWAY_ABORTED' });
    await cancelled.close();
    const deletes = proxy.requestsMatching({ method: 'DELETE', path: '/faults/cut/blobs/uploads/' }).map((r) => r.status);
    assert.deepEqual(await data(), [], `upload data left in the registry; DELETEs answered ${deletes.join(', ')}`);
    // The stale Location is refused; a fresh one from a GET is taken (another round when the cut
    // body's last bytes were still landing and made that one stale too).
    assert.equal(deletes[0], 416, `DELETEs answered ${deletes.join(', ')}`);
    assert.equal(deletes.at(-1), 204, `DELETEs answered ${deletes.join(', ')}`);
  });
});

describe('secrets under faults', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  before(async () => {
    registry = await startRegistry({ auth: 'htpasswd', username: CANARY_USERNAME, password: CANARY_PASSWORD });
    proxy = await startFaultProxy({ target: registry });
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  it('keeps the canary password out of every error message', async () => {
    const messages: string[] = [];
    const collect = (err: unknown) => {
      let e: unknown = err;
      for (let depth = 0; e && depth < 5; depth++, e = (e as { cause?: unknown }).cause) {
        messages.push(e instanceof Error ? e.message : JSON.stringify(e), (e as Error).stack ?? '', JSON.stringify(e));
      }
    };
    const right = remote.createRegistryClient({ credentials: { [proxy.host]: { username: CANARY_USERNAME, password: CANARY_PASSWORD } }, retry: { attempts: 2, baseDelayMs: 1 } });
    const wrong = remote.createRegistryClient({ credentials: { [proxy.host]: { username: CANARY_USERNAME, password: `x${CANARY_PASSWORD}` } }, retry: { attempts: 2, baseDelayMs: 1 } });
    try {
      await wrong.head(`${proxy.host}/secret/app:1`).catch(collect);
      await wrong.sink(`${proxy.host}/secret/app:1`).putBlob(makeImage([1]).layers[0]!.descriptor, async () => Readable.from([Buffer.from('x')])).catch(collect);
      proxy.inject({ fault: { status: 503 }, times: Infinity, match: { path: '/manifests/' } });
      await right.getManifest(`${proxy.host}/secret/app:1`).catch(collect);
      proxy.clearFaults();
      proxy.inject({ fault: { reset: 'before-forward' }, times: Infinity, match: { path: '/tags/' } });
      await right.listTags(`${proxy.host}/secret/app`).catch(collect);
      proxy.clearFaults();
      assert.ok(messages.length >= 12, `errors were provoked (${messages.length})`);
      for (const message of messages) {
        assert.ok(!message.includes(CANARY_PASSWORD), `canary in: ${message}`);
        assert.ok(!message.includes(Buffer.from(`${CANARY_USERNAME}:${CANARY_PASSWORD}`).toString('base64')), `basic header in: ${message}`);
      }
    } finally {
      await right.close();
      await wrong.close();
    }
  });
});
