// Each builder against the real tools and the real registry: build with RUN, push to two tags in
// two repositories, and check that the digest reported is the one the registry serves at every
// tag, that build args and labels landed in the image, and that named contexts, inline Dockerfiles
// and targets work where the builder supports them (and fail clearly where it does not).
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { build, builders } from '@slipway/build';
import { skipUnless, skipUnlessDocker } from '../support/tools.js';
import { BUILDCTL, collectLog, readImage, repo, selectBuilder, skipUnlessBuildKit, useBuildBed, writeContext } from './build-harness.js';

describe('builders against the real registry', () => {
  const bed = useBuildBed();

  const selection = (t: TestContext, kind: builders.BuilderKind): Promise<builders.BuilderSelection | undefined> => selectBuilder(t, kind, bed.buildkitd, 'builder');

  for (const kind of ['docker', 'buildah', 'buildctl', 'buildx'] as const) {
    it(`${kind}: builds with RUN, pushes two tags, reports the registry's digest`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const context = await writeContext({
        Dockerfile: `FROM ${bed.base}\nARG GREETING\nRUN echo "$GREETING from $(uname -m)" > /greeting\nCOPY hello.txt /hello.txt\n`,
        'hello.txt': `hello ${kind}\n`,
      });
      const tags = [`${bed.registry.host}/${repo(`${kind}-a`)}:1`, `${bed.registry.host}/${repo(`${kind}-b`)}:v2`];
      const log = collectLog();
      const result = await build({
        context,
        tags,
        push: true,
        builder,
        buildArgs: { GREETING: 'hi' },
        labels: { 'org.example.builder': kind },
        network: 'host',
        onLog: log.onLog,
      });
      assert.match(result.digest ?? '', /^sha256:[0-9a-f]{64}$/);
      assert.deepEqual(result.refs, tags.map((tag) => `${tag}@${result.digest}`));
      assert.equal(result.ref, result.refs[0]);
      for (const tag of tags) assert.equal((await bed.client.head(tag))?.digest, result.digest, `${tag} serves the reported digest`);
      assert.deepEqual(result.platformDigests, { 'linux/amd64': result.digest });
      assert.equal(result.builder.kind, kind);
      assert.match(result.contextHash, /^sha256:[0-9a-f]{64}$/);
      assert.ok(log.lines.length > 3, 'builder output streamed');
      const image = await readImage(bed.client, result.ref!);
      assert.equal(image.files.get('greeting')?.toString(), 'hi from x86_64\n');
      assert.equal(image.files.get('hello.txt')?.toString(), `hello ${kind}\n`);
      const labels = (image.config.config as { Labels?: Record<string, string> }).Labels ?? {};
      assert.equal(labels['org.example.builder'], kind);
    });
  }

  for (const kind of ['buildctl', 'buildah'] as const) {
    it(`${kind}: inline Dockerfile, named context and target`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const context = await writeContext({ 'main.txt': 'from the main context\n' });
      const extra = await writeContext({ 'extra.txt': 'from the named context\n' });
      const tag = `${bed.registry.host}/${repo(`${kind}-named`)}:1`;
      const result = await build({
        context,
        dockerfile: {
          inline: `FROM ${bed.base} AS first\nCOPY main.txt /main.txt\nCOPY --from=extra extra.txt /extra.txt\n\nFROM first AS second\nRUN echo second > /second\n`,
        },
        namedContexts: { extra },
        target: 'first',
        tags: [tag],
        push: true,
        builder,
        network: 'host',
      });
      const image = await readImage(bed.client, result.ref!);
      assert.equal(image.files.get('main.txt')?.toString(), 'from the main context\n');
      assert.equal(image.files.get('extra.txt')?.toString(), 'from the named context\n');
      assert.equal(image.files.has('second'), false, 'target stopped at the first stage');
    });
  }

  for (const kind of ['buildctl', 'docker'] as const) {
    it(`${kind}: ssh forwarding from a key file, extra hosts`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder || !skipUnless(t, 'ssh-keygen', 'ssh forwarding')) return;
      const keys = await writeContext({});
      const key = `${keys}/id_ed25519`;
      const { runChecked } = await import('../support/tools.js');
      await runChecked('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
      const context = await writeContext({
        Dockerfile:
          `FROM ${bed.base}\n` +
          'RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo agent-ok > /ssh\n' +
          'RUN grep build-host.invalid /etc/hosts > /hosts\n',
      });
      const result = await build({
        context,
        tags: [`${bed.registry.host}/${repo(`ssh-${kind}`)}:1`],
        push: true,
        builder,
        network: 'host',
        ssh: [{ id: 'default', paths: [key] }],
        addHosts: ['build-host.invalid:10.11.12.13'],
      });
      const image = await readImage(bed.client, result.ref!);
      assert.equal(image.files.get('ssh')?.toString(), 'agent-ok\n');
      assert.match(image.files.get('hosts')?.toString() ?? '', /10\.11\.12\.13\s+build-host\.invalid/);
    });
  }

  it('docker: an availability check cancelled early does not leave a reused builder unavailable', async (t) => {
    if (!(await skipUnlessDocker(t, 'the docker builder'))) return;
    const docker = new builders.DockerBuilder({ binary: '/usr/bin/docker' });
    // Cancelled while `docker --version` runs: the lookup of the client was cached with its abort
    // as the reason, and every later check and build said "build aborted".
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 5);
    const first: unknown = await docker.available(controller.signal).catch((err: unknown) => err);
    const refused = first instanceof Error ? (first as { code?: string }).code === 'SLIPWAY_ABORTED' : (first as builders.Availability).ok === false;
    assert.ok(refused, `cancelled check: ${String(first)} ${JSON.stringify(first)}`);
    const second = await docker.available();
    assert.equal(second.ok, true, `the check after it: ${JSON.stringify(second)}`);
  });

  it('docker: named contexts are refused before anything runs, naming the builders that can', async (t) => {
    const builder = await selection(t, 'docker');
    if (!builder) return;
    const context = await writeContext({ Dockerfile: `FROM ${bed.base}\n` });
    await assert.rejects(
      build({ context, namedContexts: { extra: context }, builder }),
      (err: Error & { code?: string }) => err.code === 'SLIPWAY_INVALID_ARG' && /docker builder cannot use named build contexts/.test(err.message) && /buildctl/.test(err.message),
    );
  });

  it('automatic choice takes buildctl when BUILDKIT_HOST names a daemon, and says why each builder was passed over', async (t) => {
    if (!skipUnlessBuildKit(t) || !bed.buildkitd) return;
    const savedPath = process.env.PATH;
    process.env.PATH = `${BUILDCTL!.replace(/\/[^/]+$/, '')}:${savedPath}`;
    try {
      const chosen = await builders.selectBuilder({ env: { BUILDKIT_HOST: bed.buildkitd.address } });
      assert.equal(chosen.builder.kind, 'buildctl');
      assert.equal(chosen.builder.address, bed.buildkitd.address);
      assert.ok(chosen.availability.ok && /BuildKit/.test(chosen.availability.version ?? ''));
      // Nothing reachable and no daemonless tool on PATH: one error listing every candidate's reason.
      process.env.PATH = '/nonexistent';
      await assert.rejects(
        builders.selectBuilder({ env: { BUILDKIT_HOST: 'tcp://127.0.0.1:1', DOCKER_HOST: 'tcp://127.0.0.1:1' } }),
        (err: Error & { code?: string }) =>
          err.code === 'SLIPWAY_BUILDER_UNAVAILABLE' && /buildctl/.test(err.message) && /docker/.test(err.message) && /buildah/.test(err.message),
      );
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it('automatic choice takes the Docker Engine when no BuildKit address is configured', async (t) => {
    if (!(await skipUnlessDocker(t, 'automatic builder choice'))) return;
    if (process.env.BUILDKIT_HOST) {
      t.skip('BUILDKIT_HOST is set in this environment');
      return;
    }
    const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nCOPY . /ctx\n`, 'a.txt': 'a' });
    // PATH may list a newer docker client first that cannot build; the builder must pass over it.
    const result = await build({ context, network: 'host' });
    assert.equal(result.builder.kind, 'docker');
    assert.equal(result.digest, undefined, 'nothing pushed without push');
    assert.deepEqual(result.refs, []);
  });
});
