// `jobs` above the registry client's per-host bound (6) is honoured: a copy of 12 blobs with
// jobs 12 has 12 uploads in flight at once at the registry, measured at a proxy in front of it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { copyImage } from '@slipway/engine';
import { copy, layout, MediaType } from '@slipway/oci';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { maxInFlight } from './audit-support.js';

describe('copy jobs', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let source: string;

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ target: registry });
    work = await mkdtemp(join(tmpdir(), 'slipway-jobs-e2e-'));
    const memory = new copy.MemoryRegistry({ host: 'memory.test' });
    const layers = Array.from({ length: 12 }, () => memory.addBlob('app', gzipSync(randomBytes(4096)), MediaType.OciLayerGzip));
    const config = memory.addBlob('app', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} })), MediaType.OciConfig);
    memory.addManifest('app', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers })), MediaType.OciManifest, 'v1');
    source = join(work, 'layout');
    await copy.copy(memory.source('app', 'v1'), layout.sink(source, { tag: 'v1' }));
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const jobs of [3, 12]) {
    it(`jobs ${jobs}: as many uploads in flight at once, no more`, async () => {
      proxy.clearRequests();
      // Slow uploads, so that every one the copy starts is still open when the next begins: long
      // enough for a starved client to send all twelve HEAD/POST/PUT rounds (400 ms was not, 9 of 12).
      const slow = proxy.inject({ match: { method: 'PUT', path: '/blobs/uploads/' }, fault: { delayMs: jobs > 6 ? 2000 : 800 }, times: Infinity });
      try {
        await copyImage({ source: `oci:${source}:v1`, destination: `${proxy.host}/jobs${jobs}:1`, jobs });
      } finally {
        slow.remove();
      }
      const uploads = proxy.requestsMatching({ method: 'PUT', path: '/blobs/uploads/' });
      assert.equal(uploads.length, 13, 'twelve layers and the config');
      assert.equal(maxInFlight(uploads), jobs);
    });
  }
});
