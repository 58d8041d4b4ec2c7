// Two writers of one referrers fallback tag (distribution 2.8 has no conditional PUT): another
// writer that read the tag before slipway's PUT and puts its own merge after it erases slipway's
// entry. slipway reads the tag back after writing it and merges again, keeping the other writer's.
// The interleaving is forced with the fault proxy in front of the real destination: slipway's
// read-back is held until the other writer's PUT has landed.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { copyImage } from '@slipway/engine';
import { digestOf, MediaType, remote, type Descriptor } from '@slipway/oci';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { busyboxOciLayout } from '../support/fixtures.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { regctl, regctlPath } from './regctl-artifacts.js';

const skip = regctlPath ? false : 'SKIPPED: needs regctl (scripts/install-go-tools.sh)';
if (skip) console.error(`\n*** ${skip} ***\n`);

describe('copy --referrers when another writer replaces the fallback tag meanwhile', { skip }, () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let digest: string;
  let signature: string;
  const client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });
  const tool = regctl(() => [src.host, dst.host], () => work);

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await startFaultProxy({ target: dst });
    work = await mkdtemp(join(tmpdir(), 'slipway-referrers-race-'));
    const layout = await busyboxOciLayout('amd64');
    digest = (await copyImage({ source: `oci:${layout.dir}:${layout.tag}`, destination: `${src.host}/app:1` })).digest;
    signature = await tool.attach(`${src.host}/app@${digest}`, 'application/example.sig', 'signature made at the source');
  });
  after(async () => {
    await client.close();
    await proxy?.stop();
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('merges again when its entry was erased, keeping the other writer\'s', async () => {
    const tag = `sha256-${digest.slice('sha256:'.length)}`;
    const tagPath = `/v2/app/manifests/${tag}`;
    // The other writer's referrer: an artifact manifest about the image, stored at the destination.
    const subject = (await client.head(`${src.host}/app@${digest}`))!;
    const empty = new TextEncoder().encode('{}');
    const emptyDescriptor = { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(empty), size: 2 };
    const other = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType: 'application/example.sbom',
      config: emptyDescriptor,
      layers: [emptyDescriptor],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    }));
    const otherDescriptor: Descriptor = { mediaType: MediaType.OciManifest, digest: digestOf(other), size: other.byteLength, artifactType: 'application/example.sbom' };

    // slipway reads the tag (absent), puts its index, then reads it back: hold that read-back.
    proxy.inject({ match: { method: 'GET', path: tagPath }, fault: { delayMs: 3000 }, times: 1, skip: 1 });
    const copying = copyImage({ source: `${src.host}/app:1`, destination: `${proxy.host}/app:1`, referrers: true });
    const deadline = Date.now() + 30_000;
    while (!proxy.requestsMatching({ method: 'PUT', path: tagPath }).some((r) => r.status === 201)) {
      assert.ok(Date.now() < deadline, 'slipway never wrote the fallback tag');
      await sleep(20);
    }
    // The other writer read the tag before that PUT (nothing there) and now puts its own merge.
    const blobSink = client.sink(`${dst.host}/app@${otherDescriptor.digest}`);
    if (!(await blobSink.hasBlob(emptyDescriptor))) await blobSink.putBlob(emptyDescriptor, async () => Readable.from([empty]));
    await client.putManifest(`${dst.host}/app@${otherDescriptor.digest}`, { descriptor: { mediaType: MediaType.OciManifest, digest: otherDescriptor.digest, size: other.byteLength }, bytes: other });
    const theirs = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [otherDescriptor] }));
    await client.putManifest(`${dst.host}/app:${tag}`, { descriptor: { mediaType: MediaType.OciIndex, digest: digestOf(theirs), size: theirs.byteLength }, bytes: theirs });

    const result = await copying;
    assert.deepEqual(result.referrers.map((r) => r.digest), [signature]);
    assert.equal(proxy.requestsMatching({ method: 'PUT', path: tagPath }).length, 2, 'written, found erased, written again');
    // regctl, reading the fallback tag on its own, sees both writers' referrers.
    const listed = (await tool.referrersOf(`${dst.host}/app@${digest}`)).map((d) => d.digest);
    assert.deepEqual(listed, [signature, otherDescriptor.digest].sort());
  });
});
