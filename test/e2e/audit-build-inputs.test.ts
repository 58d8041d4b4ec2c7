// Audit of build inputs the other e2e suites pass but never prove effective, each against a real
// builder with an assertion on the resulting image (read back from the registry) or the log:
// no-cache, network, pull, a docker-image:// named context, a secret in a failing buildah build,
// and buildah's registry cache on a clean storage root.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { build, type builders } from '@slipway/build';
import { run, skipUnless } from '../support/tools.js';
import { BUILDAH_ENV, collectLog, DOCKER_CLI, readImage, repo, selectBuilder, useBuildBed, writeContext } from './build-harness.js';

/** Interface names in a /proc/net/dev dump. */
function interfaces(dump: string | undefined): string[] {
  return (dump ?? '')
    .split('\n')
    .slice(2)
    .map((line) => line.split(':')[0]!.trim())
    .filter((name) => name !== '')
    .sort();
}

describe('audit: build inputs that change the image', () => {
  const bed = useBuildBed();

  const selection = (t: TestContext, kind: builders.BuilderKind): Promise<builders.BuilderSelection | undefined> => selectBuilder(t, kind, bed.buildkitd, 'builder');

  for (const kind of ['buildctl', 'buildah'] as const) {
    it(`${kind}: noCache — a repeat build is cached, the same build with noCache reports no cached step`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const context = await writeContext({
        Dockerfile: `FROM ${bed.base}\nRUN echo ${randomBytes(4).toString('hex')} > /a\nCOPY f /f\nRUN cat /a /f > /b\n`,
        f: 'f\n',
      });
      const tag = `${bed.registry.host}/${repo(`nocache-${kind}`)}:1`;
      await build({ context, builder, network: 'host', tags: [tag], push: true });
      const warm = collectLog();
      const second = await build({ context, builder, network: 'host', tags: [tag], push: true, onLog: warm.onLog });
      assert.ok(second.steps && second.steps.cached >= 2, `repeat build not cached: ${JSON.stringify(second.steps)}`);
      const cold = collectLog();
      const third = await build({ context, builder, network: 'host', tags: [tag], push: true, noCache: true, onLog: cold.onLog });
      t.diagnostic(`${kind}: repeat ${JSON.stringify(second.steps)}, noCache ${JSON.stringify(third.steps)}`);
      assert.ok(third.steps && third.steps.total >= 3, `steps seen: ${JSON.stringify(third.steps)}`);
      assert.equal(third.steps.cached, 0, `cached steps with noCache:\n${cold.text()}`);
      // BuildKit still prints CACHED for a FROM whose image is present: it runs nothing. No other step may be.
      const fromIds = new Set([...cold.text().matchAll(/^#(\d+) \[[^\]]*\] FROM /gm)].map((m) => m[1]));
      const cachedIds = [...cold.text().matchAll(/^#(\d+) CACHED$/gm)].map((m) => m[1]);
      assert.deepEqual(cachedIds.filter((id) => !fromIds.has(id)), [], 'a step other than FROM was CACHED with noCache');
      assert.ok(!/^--> Using cache/m.test(cold.text()), 'buildah used its cache with noCache');
      assert.ok(!cold.text().includes('importing cache manifest'), 'noCache must not import the tag as a cache source either');
      // Still the same content: /a was recomputed from the same RUN text.
      const image = await readImage(bed.client, third.ref!);
      assert.equal(image.files.get('f')?.toString(), 'f\n');
    });
  }

  for (const kind of ['buildctl', 'docker'] as const) {
    it(`${kind}: network none leaves RUN only a loopback device, host shows the host's`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const host = Object.keys(networkInterfaces()).sort();
      const images: Record<string, string[]> = {};
      for (const network of ['none', 'host']) {
        const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN cat /proc/net/dev > /net && echo ${randomBytes(4).toString('hex')}\n` });
        const result = await build({ context, builder, network, tags: [`${bed.registry.host}/${repo(`net-${network}-${kind}`)}:1`], push: true });
        images[network] = interfaces((await readImage(bed.client, result.ref!)).files.get('net')?.toString());
      }
      t.diagnostic(`${kind}: none → ${images.none!.join(',')}; host → ${images.host!.join(',')}; this machine → ${host.join(',')}`);
      assert.deepEqual(images.none, ['lo']);
      const nonLoopback = host.filter((name) => name !== 'lo');
      assert.ok(nonLoopback.length > 0, 'this machine has a non-loopback interface');
      for (const name of nonLoopback) assert.ok(images.host!.includes(name), `host network lacks ${name}`);
    });
  }

  it('docker: pull — without it the Engine keeps its local copy of a moved base tag, with it the registry\'s', async (t) => {
    const builder = await selection(t, 'docker');
    if (!builder) return;
    const baseTag = `${bed.registry.host}/${repo('pullbase')}:1`;
    try {
      // v1 stays in the Engine under the tag (a build without push keeps its result locally); the
      // registry gets v2 under the same tag (pushed from a temporary name).
      const v1 = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo one > /version\n` });
      await build({ context: v1, builder, network: 'host', tags: [baseTag] });
      const v2 = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo two > /version\n` });
      await build({ context: v2, builder, network: 'host', tags: [baseTag], push: true });
      const app = await writeContext({ Dockerfile: `FROM ${baseTag}\nRUN cat /version > /seen\n` });
      const seen: Record<string, string | undefined> = {};
      for (const pull of [false, true]) {
        const result = await build({ context: app, builder, network: 'host', pull, tags: [`${bed.registry.host}/${repo(`pull-${pull}`)}:1`], push: true });
        seen[String(pull)] = (await readImage(bed.client, result.ref!)).files.get('seen')?.toString();
      }
      assert.deepEqual(seen, { false: 'one\n', true: 'two\n' });
    } finally {
      await run(DOCKER_CLI, ['image', 'rm', baseTag]);
    }
  });

  it('buildctl: a docker-image:// named context replaces a FROM', async (t) => {
    const builder = await selection(t, 'buildctl');
    if (!builder) return;
    // Push a distinctive image to stand in for "alpine", which is nowhere to be pulled from.
    const marker = randomBytes(4).toString('hex');
    const stand = await build({
      context: await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo ${marker} > /stand-in\n` }),
      builder,
      network: 'host',
      tags: [`${bed.registry.host}/${repo('standin')}:1`],
      push: true,
    });
    const result = await build({
      context: await writeContext({ Dockerfile: 'FROM alpine:3.19\nRUN cat /stand-in > /copied\n' }),
      builder,
      network: 'host',
      namedContexts: { 'alpine:3.19': `docker-image://${stand.ref}` },
      tags: [`${bed.registry.host}/${repo('named-image')}:1`],
      push: true,
    });
    assert.equal((await readImage(bed.client, result.ref!)).files.get('copied')?.toString(), `${marker}\n`);
  });

  it('buildah: a failing build that printed a secret carries a redacted log tail', async (t) => {
    const builder = await selection(t, 'buildah');
    if (!builder) return;
    const secret = `CANARY-buildah-${randomBytes(6).toString('hex')}`;
    const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN --mount=type=secret,id=s cat /run/secrets/s && exit 9\n` });
    const log = collectLog();
    await assert.rejects(build({ context, builder, network: 'host', secrets: [{ id: 's', value: secret }], onLog: log.onLog }), (err: Error & { code?: string; logTail?: string[] }) => {
      assert.equal(err.code, 'SLIPWAY_BUILD');
      const everything = [err.message, err.stack ?? '', ...(err.logTail ?? []), JSON.stringify(err)].join('\n');
      assert.ok(!everything.includes(secret), 'the secret is in the error');
      assert.ok((err.logTail ?? []).some((line) => line.includes('***')), `the printed secret is not shown as ***:\n${(err.logTail ?? []).join('\n')}`);
      return true;
    });
    assert.ok(!log.text().includes(secret));
  });

  it('buildah: cacheTo/cacheFrom a registry repository, shown by a build on a clean storage root', async (t) => {
    if (!skipUnless(t, 'buildah', 'buildah registry cache')) return;
    const roots = await writeContext({});
    const storage = async (name: string): Promise<Record<string, string>> => {
      const dir = join(roots, name);
      await mkdir(dir, { recursive: true });
      const conf = join(dir, 'storage.conf');
      await writeFile(conf, `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/graph"\nrunroot = "${dir}/run"\n`);
      return { ...BUILDAH_ENV, CONTAINERS_STORAGE_CONF: conf };
    };
    const marker = randomBytes(4).toString('hex');
    const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo ${marker} > /m && sleep 1\nCOPY a /a\n`, a: 'a\n' });
    const cacheRepo = `${bed.registry.host}/${repo('buildah-cache')}`;
    await build({ context, builder: { kind: 'buildah', env: await storage('first') }, network: 'host', cacheTo: [{ type: 'registry', ref: cacheRepo }] });
    const tags = await bed.client.listTags(cacheRepo).catch(() => [] as string[]);
    assert.ok(tags.length > 0, 'buildah pushed cache images to the repository');
    const log = collectLog();
    const second = await build({ context, builder: { kind: 'buildah', env: await storage('second') }, network: 'host', cacheFrom: [{ type: 'registry', ref: cacheRepo }], onLog: log.onLog });
    t.diagnostic(`buildah second build on an empty storage root: ${JSON.stringify(second.steps)}`);
    assert.ok(second.steps && second.steps.cached >= 1, `no step came from the registry cache:\n${log.text()}`);
    assert.match(log.text(), new RegExp(`STEP 2/3: RUN echo ${marker}[^\\n]*\\n(?:[^\\n]*\\n)*?--> Using cache`), 'the RUN step itself was cached');
  });
});
