/**
 * The behaviour every ImageSource must have, as a `node:test` suite: run it for each implementation
 * (registry, docker archive, OCI layout, daemon) so the copy engine can rely on the contract rather
 * than on one implementation (ggcr runs `validate.Image` over every source for the same reason).
 *
 * Checked: the root's bytes hash to its digest and parse; every manifest and blob reachable from the
 * root is readable and matches its digest and size; each `blob()` call is a fresh, independent
 * stream; unknown digests are SLIPWAY_NOT_FOUND; an aborted signal stops `root()` and `blob()` and an
 * abort during a read fails the stream; `close()` can be called twice.
 * @example
 * ```ts
 * testing.imageSourceConformance('layout dir', async () => ({ source: await layout.open(dir), expected: { rootDigest } }));
 * ```
 * @module
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { SlipwayError } from '../errors.js';
import { digestAlgorithm, digestOf, sha256, type Digest } from '../v1/digest.js';
import { isManifestMediaType, MediaType } from '../v1/media-types.js';
import { parseManifest, type Descriptor } from '../v1/manifest.js';
import type { ImageSource } from '../v1/source.js';

export interface ConformanceExpectation {
  /** The root digest as another tool reports it (skopeo, docker, the registry). */
  rootDigest?: Digest;
  rootMediaType?: string;
  /** Digests (manifests or blobs) that must be reachable from the root. */
  contains?: Digest[];
}

export interface ConformanceSubject {
  source: ImageSource;
  expected?: ConformanceExpectation;
  /** Runs after the source is closed (remove fixtures, stop servers). */
  cleanup?: () => Promise<void>;
}

const foreignMediaTypes = new Set<string>([
  MediaType.DockerForeignLayerGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

async function drain(stream: Readable, like: string): Promise<{ digest: Digest; size: number }> {
  const hash = createHash(digestAlgorithm(like));
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `${digestAlgorithm(like)}:${hash.digest('hex')}`, size };
}

function isAbort(err: unknown): boolean {
  return (SlipwayError.is(err) && err.code === 'SLIPWAY_ABORTED') || (err instanceof Error && err.name === 'AbortError');
}

/** Resolves with the error a promise (or the stream it yields) fails with; fails the test if it succeeds. */
async function failureOf(start: () => Promise<unknown>): Promise<unknown> {
  let value: unknown;
  try {
    value = await start();
  } catch (err) {
    return err;
  }
  if (value && typeof (value as Readable)[Symbol.asyncIterator] === 'function') {
    try {
      for await (const _ of value as Readable) {
        // reading until it fails
      }
    } catch (err) {
      return err;
    }
  }
  assert.fail('expected a failure, but the call succeeded');
}

interface Walked {
  manifests: Descriptor[];
  blobs: Descriptor[];
}

/** Every manifest and (distributable) blob reachable from the root, each verified. */
async function walk(source: ImageSource): Promise<Walked> {
  const root = await source.root();
  const manifests: Descriptor[] = [root.descriptor];
  const blobs = new Map<string, Descriptor>();
  const queue = [{ descriptor: root.descriptor, bytes: root.bytes }];
  const seen = new Set<string>([root.descriptor.digest]);
  while (queue.length > 0) {
    const { descriptor, bytes } = queue.shift()!;
    const parsed = parseManifest(bytes, descriptor.mediaType);
    if (parsed.kind === 'index') {
      for (const child of parsed.manifest.manifests) {
        if (seen.has(child.digest)) continue;
        seen.add(child.digest);
        const got = await source.manifest(child);
        assert.equal(digestOf(got.bytes, child.digest), child.digest, `child manifest ${child.digest} bytes hash to its digest`);
        assert.equal(got.bytes.length, child.size, `child manifest ${child.digest} size`);
        assert.equal(got.descriptor.digest, child.digest);
        manifests.push(child);
        queue.push({ descriptor: child, bytes: got.bytes });
      }
      continue;
    }
    for (const blob of [parsed.manifest.config, ...parsed.manifest.layers]) {
      if (foreignMediaTypes.has(blob.mediaType)) continue;
      blobs.set(blob.digest, blob);
    }
  }
  for (const blob of blobs.values()) {
    const got = await drain(await source.blob(blob), blob.digest);
    assert.equal(got.digest, blob.digest, `blob ${blob.digest} bytes hash to its digest`);
    assert.equal(got.size, blob.size, `blob ${blob.digest} size`);
  }
  return { manifests, blobs: [...blobs.values()] };
}

/** Registers the conformance suite for one ImageSource implementation. */
export function imageSourceConformance(name: string, makeSource: () => Promise<ConformanceSubject>): void {
  void describe(`ImageSource conformance: ${name}`, () => {
    let subject: ConformanceSubject;
    let walked: Walked | undefined;
    const source = () => subject.source;
    const someBlob = () => {
      assert.ok(walked && walked.blobs.length > 0, 'the image has at least one blob');
      return walked.blobs.reduce((a, b) => (b.size > a.size ? b : a));
    };

    before(async () => {
      subject = await makeSource();
    });
    after(async () => {
      await subject?.source.close?.();
      await subject?.cleanup?.();
    });

    void it('root bytes hash to the root digest and parse as a manifest', async () => {
      const root = await source().root();
      assert.equal(digestOf(root.bytes, root.descriptor.digest), root.descriptor.digest);
      assert.equal(root.bytes.length, root.descriptor.size);
      assert.ok(isManifestMediaType(root.descriptor.mediaType), `root media type ${root.descriptor.mediaType} is a manifest type`);
      parseManifest(root.bytes, root.descriptor.mediaType);
      if (subject.expected?.rootDigest) assert.equal(root.descriptor.digest, subject.expected.rootDigest);
      if (subject.expected?.rootMediaType) assert.equal(root.descriptor.mediaType, subject.expected.rootMediaType);
      const again = await source().root();
      assert.deepEqual(Buffer.from(again.bytes), Buffer.from(root.bytes), 'root() is stable');
    });

    void it('every manifest and blob reachable from the root is readable and verifies', async () => {
      walked = await walk(source());
      const all = new Set([...walked.manifests, ...walked.blobs].map((d) => d.digest));
      for (const digest of subject.expected?.contains ?? []) assert.ok(all.has(digest), `${digest} is reachable from the root`);
    });

    void it('each blob() call is a fresh, independent stream', async () => {
      const blob = someBlob();
      const [a, b] = await Promise.all([source().blob(blob), source().blob(blob)]);
      const [da, db] = await Promise.all([drain(a, blob.digest), drain(b, blob.digest)]);
      assert.equal(da.digest, blob.digest);
      assert.equal(db.digest, blob.digest);
      const third = await drain(await source().blob(blob), blob.digest);
      assert.equal(third.digest, blob.digest, 'a third read after the others finished');
      // A consumer that stops early does not spoil the next read.
      const early = await source().blob(blob);
      early.destroy();
      assert.equal((await drain(await source().blob(blob), blob.digest)).digest, blob.digest);
    });

    void it('unknown digests are SLIPWAY_NOT_FOUND', async () => {
      const absent: Descriptor = { mediaType: MediaType.OciLayerGzip, digest: sha256('slipway conformance: absent blob'), size: 31 };
      const err = await failureOf(() => source().blob(absent));
      assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_NOT_FOUND', `blob: got ${String(err)}`);
      const merr = await failureOf(() => source().manifest({ ...absent, mediaType: MediaType.OciManifest }));
      assert.ok(SlipwayError.is(merr) && merr.code === 'SLIPWAY_NOT_FOUND', `manifest: got ${String(merr)}`);
    });

    void it('honours an abort signal', async () => {
      const aborted = AbortSignal.abort();
      assert.ok(isAbort(await failureOf(() => source().root({ signal: aborted }))), 'root() with an aborted signal');
      const blob = someBlob();
      assert.ok(isAbort(await failureOf(() => source().blob(blob, { signal: aborted }))), 'blob() with an aborted signal');
      const controller = new AbortController();
      const stream = await source().blob(blob, { signal: controller.signal });
      controller.abort();
      assert.ok(isAbort(await failureOf(async () => stream)), 'a stream whose signal fires fails');
    });

    void it('close() is idempotent', async () => {
      await source().close?.();
      await source().close?.();
    });
  });
}
