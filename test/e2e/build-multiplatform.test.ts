// linux/amd64 + linux/arm64 in one build, with a RUN step that really executes on arm64 (qemu
// binfmt): every builder must leave an index at the tag whose children are the per-platform
// digests it reports, and each child's layer must hold what its own architecture's `uname -m` says.
// docker (Engine 20.10) cannot push several platforms at once: build() builds each platform into
// the Engine and assembles the index itself; the others do it in one run.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it, type TestContext } from 'node:test';
import { build, type builders } from '@slipway/build';
import { parseManifest } from '@slipway/oci';
import { collectLog, readImage, repo, selectBuilder, useBuildBed, writeContext } from './build-harness.js';

const qemu = '/proc/sys/fs/binfmt_misc/qemu-aarch64';

describe('multi-platform builds (amd64 + arm64 with RUN through qemu)', () => {
  const bed = useBuildBed();

  async function selection(t: TestContext, kind: builders.BuilderKind): Promise<builders.BuilderSelection | undefined> {
    if (!existsSync(qemu)) {
      const msg = `SKIPPED: qemu-aarch64 binfmt handler not registered (${qemu}); apt-get install qemu-user-static binfmt-support`;
      console.error(`\n*** ${msg} ***\n`);
      t.skip(msg);
      return undefined;
    }
    return selectBuilder(t, kind, bed.buildkitd, 'multi-platform');
  }

  for (const kind of ['buildctl', 'buildx', 'buildah', 'docker'] as const) {
    it(`${kind}: one index, per-platform digests, arm64 RUN executed as aarch64`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN uname -m > /arch\n` });
      const tags = [`${bed.registry.host}/${repo(`multi-${kind}`)}:1`, `${bed.registry.host}/${repo(`multi-${kind}-copy`)}:1`];
      const log = collectLog();
      const result = await build({ context, tags, push: true, platforms: ['linux/amd64', 'linux/arm64'], builder, network: 'host', onLog: log.onLog });

      const root = await bed.client.getManifest(tags[0]!);
      assert.equal(root.descriptor.digest, result.digest);
      for (const tag of tags) assert.equal((await bed.client.head(tag))?.digest, result.digest);
      const parsed = parseManifest(root.bytes, root.descriptor.mediaType);
      assert.equal(parsed.kind, 'index', 'two platforms make an index');
      assert.deepEqual(Object.keys(result.platformDigests).sort(), ['linux/amd64', 'linux/arm64']);
      const children = parsed.kind === 'index' ? parsed.manifest.manifests.filter((d) => d.platform?.architecture !== 'unknown') : [];
      assert.deepEqual(
        children.map((d) => d.digest).sort(),
        Object.values(result.platformDigests).sort(),
        'the index children are the reported per-platform digests',
      );
      const expected: Record<string, string> = { 'linux/amd64': 'x86_64\n', 'linux/arm64': 'aarch64\n' };
      for (const [platform, digest] of Object.entries(result.platformDigests)) {
        const image = await readImage(bed.client, `${tags[0]!.replace(/:[^:/]+$/, '')}@${digest}`);
        assert.equal(image.config.architecture, platform.split('/')[1]);
        assert.equal(image.files.get('arch')?.toString(), expected[platform], `${platform} RUN ran on its own architecture`);
      }
    });
  }
});
