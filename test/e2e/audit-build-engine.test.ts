// @slipway/engine's buildImage (the op every front door calls) against buildkitd and the real
// registry, through its string forms: `buildctl=ADDRESS`, `linux/amd64,linux/arm64` in one entry,
// secrets as an { id: value } record, `type=…` cache specs, registry addresses written as URLs.
// Checks the result against the registry (HEAD, index children, configs), the context hash against
// hashContext for the same inputs, and that bad input fails before anything runs.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashContext } from '@slipway/build';
import { buildImage } from '@slipway/engine';
import { parseManifest, remote } from '@slipway/oci';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { hasTool } from '../support/tools.js';
import { BUILDCTL, collectLog, pushBusyboxBase, readImage, repo, skipUnlessBuildKit, startBuildkitd, tempDir, writeContext, type Buildkitd } from './build-harness.js';

describe('audit: engine buildImage', () => {
  let open: TestRegistry;
  let locked: TestRegistry;
  let base: string;
  let buildkitd: Buildkitd | undefined;
  let savedPath: string | undefined;

  before(async () => {
    open = await startRegistry();
    locked = await startRegistry({ auth: 'htpasswd' });
    base = await pushBusyboxBase(open);
    if (BUILDCTL && hasTool('buildkitd')) buildkitd = await startBuildkitd();
    // `buildctl=ADDRESS` names no binary: the one on PATH is used, as for a user.
    savedPath = process.env.PATH;
    if (BUILDCTL) process.env.PATH = `${dirname(BUILDCTL)}:${savedPath ?? ''}`;
  });
  after(async () => {
    process.env.PATH = savedPath;
    await buildkitd?.stop();
    await locked?.stop();
    await open?.stop();
  });

  it('string inputs end to end: two platforms, secrets record, inline Dockerfile, named context, target, labels, build args', async (t) => {
    if (!skipUnlessBuildKit(t) || !buildkitd) return;
    const secret = `CANARY-engine-${randomBytes(6).toString('hex')}`;
    const context = await writeContext({ 'app.txt': 'app\n', '.dockerignore': 'ignored.txt\n', 'ignored.txt': 'no' });
    const lib = await writeContext({ 'lib.txt': 'lib\n' });
    const dockerfile =
      `FROM ${base} AS build\nARG FLAVOUR\nCOPY app.txt /app.txt\nCOPY --from=lib lib.txt /lib.txt\n` +
      'RUN --mount=type=secret,id=tok echo "$FLAVOUR $(uname -m) $(sha256sum < /run/secrets/tok | cut -c1-64)" > /built\n' +
      `FROM build AS never\nRUN echo never > /never\n`;
    const tags = [`${locked.host}/${repo('engine')}:1`, `${locked.host}/${repo('engine-b')}:2`];
    const log = collectLog();
    const result = await buildImage({
      context,
      dockerfile: { inline: dockerfile },
      namedContexts: { lib },
      tags,
      push: true,
      platforms: ['linux/amd64,linux/arm64'],
      buildArgs: { FLAVOUR: 'tasty' },
      target: 'build',
      labels: { 'org.example.via': 'engine' },
      secrets: { tok: secret },
      cacheTo: ['type=inline'],
      builder: `buildctl=${buildkitd.address}`,
      network: 'host',
      registries: [{ address: `http://${locked.host}/v2/`, username: locked.username, password: locked.password }],
      onLog: log.onLog,
    });
    assert.equal(result.builder.kind, 'buildctl');
    assert.equal(result.builder.address, buildkitd.address);
    const client = remote.createRegistryClient({ credentials: { [locked.host]: { username: locked.username, password: locked.password } } });
    try {
      for (const tag of tags) assert.equal((await client.head(tag))?.digest, result.digest, `${tag} holds the reported digest`);
      assert.deepEqual(result.refs, tags.map((tag) => `${tag}@${result.digest}`));
      const root = await client.getManifest(result.ref!);
      const index = parseManifest(root.bytes, root.descriptor.mediaType);
      assert.equal(index.kind, 'index');
      const children = index.kind === 'index' ? index.manifest.manifests.filter((d) => d.platform?.architecture !== 'unknown') : [];
      assert.deepEqual(
        Object.fromEntries(children.map((d) => [`${d.platform!.os}/${d.platform!.architecture}`, d.digest])),
        result.platformDigests,
        'per-platform digests are the index children',
      );
      const expected = createHash('sha256').update(secret).digest('hex');
      for (const [platform, digest] of Object.entries(result.platformDigests)) {
        const image = await readImage(client, `${tags[0]!.replace(/:[^:/]+$/, '')}@${digest}`);
        const arch = platform === 'linux/arm64' ? 'aarch64' : 'x86_64';
        assert.equal(image.files.get('built')?.toString(), `tasty ${arch} ${expected}\n`, `${platform}: build arg and secret reached RUN`);
        assert.equal(image.files.get('lib.txt')?.toString(), 'lib\n', 'named context');
        assert.equal(image.files.has('never'), false, 'target');
        assert.equal((image.config.config as { Labels?: Record<string, string> }).Labels?.['org.example.via'], 'engine');
        assert.ok(image.configText.includes('moby.buildkit.cache.v0'), 'inline cache requested with a string spec');
        assert.ok(!image.configText.includes(secret), 'secret in the config or history');
      }
    } finally {
      await client.close();
    }
    const everything = [log.text(), JSON.stringify(result)].join('\n');
    assert.ok(!everything.includes(secret) && !everything.includes(locked.password), 'a secret or the password leaked');
    // The same inputs hashed directly give the same context hash.
    const direct = await hashContext({ context, dockerfile: { inline: dockerfile }, namedContexts: { lib }, cacheDir: false });
    assert.equal(result.contextHash, direct.digest);
  });

  it('string cache specs: type=local export, then import on a fresh daemon', async (t) => {
    if (!skipUnlessBuildKit(t) || !buildkitd) return;
    const cache = join(await tempDir('engine-cache'), 'c');
    const context = await writeContext({ Dockerfile: `FROM ${base}\nRUN echo ${randomBytes(4).toString('hex')} > /x && sleep 1\n` });
    await buildImage({ context, builder: `buildctl=${buildkitd.address}`, network: 'host', cacheTo: [`type=local,dest=${cache},mode=max`] });
    await buildkitd.restartFresh();
    const second = await buildImage({ context, builder: `buildctl=${buildkitd.address}`, network: 'host', cacheFrom: [`type=local,src=${cache}`] });
    assert.deepEqual(second.steps, { total: 1, cached: 1 });
  });

  it('bad input fails before any builder runs', async () => {
    const context = await writeContext({ Dockerfile: 'FROM scratch\n' });
    const unreachable = 'buildctl=tcp://127.0.0.1:1';
    const reject = (options: Parameters<typeof buildImage>[0], code: string, message: RegExp): Promise<void> =>
      assert.rejects(buildImage(options), (err: Error & { code?: string }) => err.code === code && message.test(err.message));
    await reject({ context, builder: unreachable, registries: [{ address: 'r.example', username: '', password: 'p' }] }, 'SLIPWAY_INVALID_ARG', /username is empty/);
    await reject({ context, builder: unreachable, secrets: { a: 42 as unknown as string } }, 'SLIPWAY_INVALID_ARG', /secret "a" must be a string/);
    await reject({ context, builder: unreachable, cacheTo: ['type=s3,bucket=x'] }, 'SLIPWAY_INVALID_ARG', /unsupported --cache-to type "s3"/);
    await reject({ context, builder: 'kaniko' }, 'SLIPWAY_INVALID_ARG', /unknown builder "kaniko"/);
    await reject({ context, builder: unreachable, platforms: ['linux/amd64,'] }, 'SLIPWAY_BUILDER_UNAVAILABLE', /tcp:\/\/127\.0\.0\.1:1/);
    await reject({ context, builder: unreachable, platforms: ['linux/amd64,plan9//x'] }, 'SLIPWAY_INVALID_PLATFORM', /plan9/);
    await reject({ context, builder: unreachable, tags: ['127.0.0.1:1/x@sha256:' + '0'.repeat(64)], push: true }, 'SLIPWAY_INVALID_REFERENCE', /has a digest/);
  });
});
