// A long-lived AbortSignal (a Pulumi or Terraform provider's, shared by every operation it runs)
// must not grow with each operation: no abort listener and no linked signal may stay on it once an
// operation is over. Node 20's AbortSignal.any keeps one entry per call on its sources for good,
// which is why slipway links signals itself (internal/signals.ts).
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { copyImage } from '@slipway/engine';
import { copy, remote } from '@slipway/oci';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { makeImage } from './registry-images.js';

/** How many composite signals Node keeps on `signal` (undefined where Node has no such set). */
function dependants(signal: AbortSignal): number | undefined {
  const key = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  const set = key === undefined ? undefined : (signal as unknown as Record<symbol, { size: number } | undefined>)[key];
  return set?.size;
}

describe('a long-lived signal across many operations', () => {
  let registry: TestRegistry;
  const image = makeImage([20_000, 30_000]);

  before(async () => {
    registry = await startRegistry();
    const client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });
    const sink = client.sink(`${registry.host}/signals/src:1`);
    for (const b of image.blobs) await sink.putBlob(b.descriptor, async () => Readable.from([b.bytes]));
    await sink.putManifest(image.manifest, { tag: '1' });
    await client.close();
  });
  after(async () => {
    await registry?.stop();
  });

  it('keeps nothing on it: client calls, streamed blobs, copies, engine copies', async () => {
    const provider = new AbortController();
    const long = provider.signal;
    const listenersBefore = getEventListeners(long, 'abort').length;
    const client = remote.createRegistryClient({ keychain: { resolve: async () => undefined }, signal: long });
    try {
      for (let i = 0; i < 30; i++) {
        const perCall = new AbortController().signal;
        assert.ok(await client.head(`${registry.host}/signals/src:1`, { signal: long }));
        assert.ok(await client.head(`${registry.host}/signals/src:1`, { signal: perCall }));
        const layer = image.layers[0]!;
        assert.equal((await buffer(await client.blob(`${registry.host}/signals/src`, layer.descriptor, { signal: perCall }))).length, layer.bytes.length);
        await copy.copy(client.source(`${registry.host}/signals/src:1`), client.sink(`${registry.host}/signals/dst${i % 3}:1`), { signal: long });
        await copyImage({ source: `${registry.host}/signals/src:1`, destination: `${registry.host}/signals/engine:${i}`, signal: long });
      }
    } finally {
      await client.close();
    }
    assert.equal(getEventListeners(long, 'abort').length, listenersBefore, 'abort listeners left on the signal');
    assert.ok((dependants(long) ?? 0) === 0, `${dependants(long)} linked signals kept on the long-lived signal`);
    assert.equal(long.aborted, false);
  });
});
