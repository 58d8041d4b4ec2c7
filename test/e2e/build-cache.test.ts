// Caches that survive losing the builder: each case builds once exporting a cache, wipes the
// BuildKit daemon's state (a fresh --root), builds again importing it, and reads from the log that
// the expensive steps were CACHED. Covers the default (inline cache in the pushed image, the tags
// as cache source), type=registry and type=local. For docker, the inline cache metadata must be in
// the config we pushed ourselves (that is what makes --cache-from work with Engine 20.10).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { build } from '@slipway/build';
import { skipUnlessDocker } from '../support/tools.js';
import {
  BUILDCTL,
  BUILDX,
  collectLog,
  DOCKER_CLI,
  readImage,
  repo,
  skipUnlessBuildKit,
  tempDir,
  useBuildBed,
  writeContext,
} from './build-harness.js';

/** The RUN line of the Dockerfile shows up as `#N [2/3] RUN …` and then `#N CACHED` when imported. */
function runStepCached(log: string, marker: string): boolean {
  const id = new RegExp(`^#(\\d+) \\[[^\\]]*\\] RUN .*${marker}`, 'm').exec(log)?.[1];
  return id !== undefined && new RegExp(`^#${id} CACHED$`, 'm').test(log);
}

describe('build caches', () => {
  const bed = useBuildBed();

  async function context(): Promise<{ dir: string; marker: string }> {
    const marker = `cache-marker-${randomBytes(4).toString('hex')}`;
    const dir = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo ${marker} > /marker && sleep 1\nCOPY a.txt /a.txt\n`, 'a.txt': 'a\n' });
    return { dir, marker };
  }

  it('buildctl: default inline cache from the image\'s own tag, on a fresh daemon', async (t) => {
    if (!skipUnlessBuildKit(t) || !bed.buildkitd) return;
    const builder = { kind: 'buildctl' as const, address: bed.buildkitd.address, binary: BUILDCTL! };
    const { dir, marker } = await context();
    const tag = `${bed.registry.host}/${repo('inline')}:1`;
    const first = await build({ context: dir, tags: [tag], push: true, builder, network: 'host' });
    const image = await readImage(bed.client, first.ref!);
    assert.ok(image.configText.includes('moby.buildkit.cache.v0'), 'inline cache metadata pushed by default');

    await bed.buildkitd.restartFresh();
    const log = collectLog();
    const second = await build({ context: dir, tags: [tag], push: true, builder, network: 'host', onLog: log.onLog });
    assert.ok(runStepCached(log.text(), marker), `RUN step not CACHED on a fresh daemon:\n${log.text()}`);
    assert.ok(second.steps && second.steps.cached >= 2, `steps: ${JSON.stringify(second.steps)}`);
    assert.equal(second.digest, first.digest, 'same inputs, same cache, same image');
  });

  it('buildctl: type=registry cache (mode=max) without pushing the image', async (t) => {
    if (!skipUnlessBuildKit(t) || !bed.buildkitd) return;
    const builder = { kind: 'buildctl' as const, address: bed.buildkitd.address, binary: BUILDCTL! };
    const { dir, marker } = await context();
    const cacheRef = `${bed.registry.host}/${repo('regcache')}:cache`;
    await build({ context: dir, builder, network: 'host', cacheTo: [{ type: 'registry', ref: cacheRef, mode: 'max' }] });
    assert.ok(await bed.client.head(cacheRef), 'cache manifest pushed');

    await bed.buildkitd.restartFresh();
    const log = collectLog();
    await build({ context: dir, builder, network: 'host', cacheFrom: [{ type: 'registry', ref: cacheRef }], onLog: log.onLog });
    assert.ok(runStepCached(log.text(), marker), `RUN step not CACHED from the registry cache:\n${log.text()}`);
  });

  it('buildctl: type=local cache directory', async (t) => {
    if (!skipUnlessBuildKit(t) || !bed.buildkitd) return;
    const builder = { kind: 'buildctl' as const, address: bed.buildkitd.address, binary: BUILDCTL! };
    const { dir, marker } = await context();
    const cacheDir = join(await tempDir('cache'), 'c');
    await build({ context: dir, builder, network: 'host', cacheTo: [{ type: 'local', dest: cacheDir, mode: 'max' }] });
    await bed.buildkitd.restartFresh();
    const log = collectLog();
    await build({ context: dir, builder, network: 'host', cacheFrom: [{ type: 'local', src: cacheDir }], onLog: log.onLog });
    assert.ok(runStepCached(log.text(), marker), `RUN step not CACHED from the local cache:\n${log.text()}`);
  });

  it('buildx: type=registry cache through a remote builder', async (t) => {
    if (!skipUnlessBuildKit(t, 'buildx') || !bed.buildkitd) return;
    const builder = { kind: 'buildx' as const, address: bed.buildkitd.address, binary: BUILDX! };
    const { dir, marker } = await context();
    const cacheRef = `${bed.registry.host}/${repo('bxcache')}:cache`;
    await build({ context: dir, builder, network: 'host', cacheTo: [{ type: 'registry', ref: cacheRef }] });
    await bed.buildkitd.restartFresh();
    const log = collectLog();
    await build({ context: dir, builder, network: 'host', cacheFrom: [{ type: 'registry', ref: cacheRef }], onLog: log.onLog });
    assert.ok(runStepCached(log.text(), marker), `RUN step not CACHED through buildx:\n${log.text()}`);
  });

  it('docker: the image we push carries the inline cache, and the next build names it as cache source', async (t) => {
    if (!(await skipUnlessDocker(t, 'docker inline cache'))) return;
    const builder = { kind: 'docker' as const, binary: DOCKER_CLI };
    const { dir } = await context();
    const tag = `${bed.registry.host}/${repo('docker-inline')}:1`;
    const first = await build({ context: dir, tags: [tag], push: true, builder, network: 'host' });
    const image = await readImage(bed.client, first.ref!);
    assert.ok(image.configText.includes('moby.buildkit.cache.v0'), 'inline cache metadata survived our push from the Engine');
    const log = collectLog();
    await build({ context: dir, tags: [tag], push: true, builder, network: 'host', onLog: log.onLog });
    assert.match(log.text(), new RegExp(`importing cache manifest from ${tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });
});
