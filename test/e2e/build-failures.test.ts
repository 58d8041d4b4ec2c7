// Every way a build goes wrong ends in one clear SlipwayError with a stable code: a missing
// Dockerfile, a syntax error, a failing RUN (the error carries the log tail), an unreachable
// builder, a cancelled build (our process group gone within 2 s), and a registry that refuses the
// push (no tag left pointing at anything).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { build, type builders } from '@slipway/build';
import { remote } from '@slipway/oci';
import { startFaultProxy } from '../support/fault-proxy.js';
import { startRegistry } from '../support/registry.js';
import { BUILDAH_ENV, runChecked, skipUnless } from '../support/tools.js';
import {
  BUILDCTL,
  BUILDX,
  collectLog,
  DOCKER_CLI,
  processesMatching,
  repo,
  selectBuilder,
  skipUnlessBuildKit,
  useBuildBed,
  writeContext,
} from './build-harness.js';

type Failure = Error & { code?: string; logTail?: string[] };

describe('build failures', () => {
  const bed = useBuildBed();

  const selection = (t: TestContext, kind: builders.BuilderKind): Promise<builders.BuilderSelection | undefined> => selectBuilder(t, kind, bed.buildkitd, 'failures');

  it('a missing Dockerfile is SLIPWAY_CONTEXT, before any builder runs', async () => {
    const context = await writeContext({ 'a.txt': 'a' });
    await assert.rejects(build({ context, builder: 'buildctl=tcp://127.0.0.1:1' }), (err: Failure) => {
      assert.equal(err.code, 'SLIPWAY_CONTEXT');
      assert.match(err.message, /Dockerfile ".*\/Dockerfile" does not exist/);
      return true;
    });
    await assert.rejects(build({ context: `${context}/nope`, builder: 'docker' }), (err: Failure) => err.code === 'SLIPWAY_CONTEXT' && /does not exist/.test(err.message));
  });

  for (const kind of ['buildctl', 'docker', 'buildah'] as const) {
    it(`${kind}: a Dockerfile syntax error is SLIPWAY_BUILD naming the line`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nFROBNICATE the widgets\n` });
      await assert.rejects(build({ context, builder, network: 'host' }), (err: Failure) => {
        assert.equal(err.code, 'SLIPWAY_BUILD');
        assert.match(err.message, /FROBNICATE|unknown instruction/i);
        return true;
      });
    });

    it(`${kind}: a failing RUN is SLIPWAY_BUILD carrying the log tail`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const marker = `boom-${randomBytes(4).toString('hex')}`;
      const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo ${marker} && exit 7\n` });
      const tag = `${bed.registry.host}/${repo(`fail-${kind}`)}:1`;
      await assert.rejects(build({ context, builder, network: 'host', tags: [tag], push: true }), (err: Failure) => {
        assert.equal(err.code, 'SLIPWAY_BUILD');
        assert.ok((err.logTail ?? []).some((line) => line.includes(marker)), `tail lacks the RUN output:\n${(err.logTail ?? []).join('\n')}`);
        assert.ok(err.message.includes(marker), 'the message shows the tail');
        assert.match(err.message, /exit (code|status):? 7|exit code: 7|exit status 7/);
        return true;
      });
      const client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });
      try {
        assert.equal(await client.head(tag), undefined, 'nothing tagged');
      } finally {
        await client.close();
      }
    });
  }

  it('buildah: a failed build leaves no working container in the store', async (t) => {
    if (!skipUnless(t, 'buildah', 'buildah')) return;
    // A store of its own: other test files build in the shared one at the same time.
    const root = await mkdtemp(join(tmpdir(), 'slipway-buildah-store-'));
    try {
      const conf = join(root, 'storage.conf');
      await writeFile(conf, `[storage]\ndriver = "vfs"\ngraphroot = "${root}/graph"\nrunroot = "${root}/run"\n`);
      const env = { ...BUILDAH_ENV, CONTAINERS_STORAGE_CONF: conf };
      const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo step > /s\nRUN exit 3\n` });
      await assert.rejects(build({ context, builder: { kind: 'buildah', env }, network: 'host' }), { code: 'SLIPWAY_BUILD' });
      const containers = (await runChecked('buildah', ['containers', '--quiet'], { env })).stdout.trim();
      assert.equal(containers, '', `working containers left behind: ${containers}`);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  for (const kind of ['buildctl', 'buildx', 'docker'] as const) {
    it(`${kind}: an unreachable builder (tcp://127.0.0.1:1) is SLIPWAY_BUILDER_UNAVAILABLE, its address's password never shown`, async (t) => {
      if (kind === 'docker' ? !skipUnless(t, DOCKER_CLI, 'docker client') : !skipUnlessBuildKit(t, kind === 'buildx' ? 'buildx' : undefined)) return;
      const context = await writeContext({ Dockerfile: `FROM ${bed.base}\n` });
      const started = Date.now();
      const binary = kind === 'buildx' ? BUILDX! : kind === 'buildctl' ? BUILDCTL! : DOCKER_CLI;
      // A DOCKER_HOST-style address with userinfo: the messages name the address, never the password.
      // `%Pw` is no percent escape: the docker client then quotes the whole address it cannot parse.
      const canary = 'CanaryBuilder%Pw-7q2x';
      const log = collectLog();
      await assert.rejects(
        build({ context, builder: { kind, address: `tcp://deploy:${canary}@127.0.0.1:1`, binary }, onLog: log.onLog }),
        (err: Failure) => {
          assert.equal(err.code, 'SLIPWAY_BUILDER_UNAVAILABLE');
          assert.match(err.message, /tcp:\/\/deploy:<redacted>@127\.0\.0\.1:1/);
          for (let e: unknown = err; e instanceof Error; e = e.cause) {
            assert.ok(!e.message.includes(canary), `the password is in an error: ${e.message}`);
            assert.ok(!JSON.stringify(e).includes(canary), 'the password is in an error property');
          }
          return true;
        },
      );
      assert.ok(!log.text().includes(canary), `the password is in the build log:\n${log.text()}`);
      assert.ok(Date.now() - started < 25_000, `took ${Date.now() - started} ms`);
    });
  }

  it('a builder address that is not one is refused', async (t) => {
    if (!skipUnlessBuildKit(t)) return;
    const context = await writeContext({ Dockerfile: `FROM ${bed.base}\n` });
    await assert.rejects(build({ context, builder: { kind: 'buildctl', address: 'localhost:1234', binary: BUILDCTL! } }), (err: Failure) => {
      return err.code === 'SLIPWAY_BUILDER_UNAVAILABLE' && /not a BuildKit address/.test(err.message);
    });
  });

  for (const kind of ['buildctl', 'docker', 'buildah', 'buildx'] as const) {
    it(`${kind}: cancelling stops the build and leaves no process of ours within 2 s`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      // A distinctive sleep so the RUN process itself can be found in /proc.
      const seconds = `${60 + Math.floor(Math.random() * 30)}.${randomBytes(2).readUInt16BE()}`;
      const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo started-sleeping && sleep ${seconds}\n` });
      const controller = new AbortController();
      const log = collectLog();
      let abortedAt = 0;
      const running = build({
        context,
        builder,
        network: 'host',
        signal: controller.signal,
        onLog: (line) => {
          log.onLog(line);
          if (abortedAt === 0 && /started-sleeping/.test(line.line) && !/RUN echo/.test(line.line)) {
            abortedAt = Date.now();
            controller.abort(new Error('user pressed Ctrl-C'));
          }
        },
      });
      await assert.rejects(running, (err: Failure) => {
        assert.equal(err.code, 'SLIPWAY_ABORTED', `${err.code}: ${err.message}`);
        return true;
      });
      assert.ok(abortedAt > 0, `the RUN step never started:\n${log.text()}`);
      assert.ok(Date.now() - abortedAt < 2500, `build() returned ${Date.now() - abortedAt} ms after abort`);
      // Our children are gone now (their command lines name the context directory).
      assert.deepEqual(await processesMatching(context), [], 'a builder process outlived the abort');
      // The RUN itself runs in a daemon for docker/buildctl/buildx; it must stop soon too.
      const deadline = Date.now() + 10_000;
      while ((await processesMatching(`sleep ${seconds}`)).length > 0 && Date.now() < deadline) await sleep(100);
      assert.deepEqual(await processesMatching(`sleep ${seconds}`), [], 'the RUN step kept running');
    });
  }

  for (const kind of ['buildctl', 'docker', 'buildah', 'buildx'] as const) {
    it(`${kind}: a registry refusing the push (wrong password) is SLIPWAY_AUTH and tags nothing`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const locked = await startRegistry({ auth: 'htpasswd' });
      try {
        const wrong = `CANARY-wrong-${randomBytes(6).toString('hex')}`;
        const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo ok > /ok\n` });
        const tag = `${locked.host}/${repo(`refused-${kind}`)}:1`;
        const log = collectLog();
        await assert.rejects(
          build({ context, tags: [tag], push: true, builder, network: 'host', registries: [{ address: locked.host, username: locked.username, password: wrong }], onLog: log.onLog }),
          (err: Failure) => {
            assert.equal(err.code, 'SLIPWAY_AUTH', `${err.code}: ${err.message}`);
            assert.ok(!err.message.includes(wrong) && !(err.logTail ?? []).join('\n').includes(wrong), 'password in the error');
            return true;
          },
        );
        assert.ok(!log.text().includes(wrong), 'password in the log');
        const authed = remote.createRegistryClient({ credentials: { [locked.host]: { username: locked.username, password: locked.password } } });
        try {
          assert.equal(await authed.head(tag), undefined, 'the refused push left a tag');
        } finally {
          await authed.close();
        }
      } finally {
        await locked.stop();
      }
    });
  }

  for (const kind of ['buildctl', 'docker'] as const) {
    it(`${kind}: a registry failing the final manifest PUT (500) leaves the tag untouched`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const proxy = await startFaultProxy({ target: bed.registry });
      try {
        const name = repo(`halfpush-${kind}`);
        const tag = `${proxy.host}/${name}:1`;
        // Everything gets through except the manifest PUT by tag: blobs and per-platform manifests
        // land, the index never gets a name.
        proxy.inject({ match: { method: 'PUT', path: new RegExp(`/v2/${name}/manifests/1$`) }, fault: { status: 500 }, times: Infinity });
        const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN uname -m > /arch\n` });
        await assert.rejects(
          build({ context, tags: [tag], push: true, builder, network: 'host', platforms: ['linux/amd64', 'linux/arm64'] }),
          (err: Failure) => {
            assert.ok(['SLIPWAY_REGISTRY', 'SLIPWAY_BUILD'].includes(err.code ?? ''), `${err.code}: ${err.message}`);
            assert.match(err.message, /500|Internal Server Error/);
            return true;
          },
        );
        assert.ok(proxy.requestsMatching({ method: 'PUT', path: '/manifests/1' }).length > 0, 'the tag PUT was attempted');
        const client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });
        try {
          assert.equal(await client.head(`${bed.registry.host}/${name}:1`), undefined, 'a tag points at a half-pushed image');
        } finally {
          await client.close();
        }
      } finally {
        await proxy.stop();
      }
    });
  }

  it('buildctl: temporary credentials and scratch files are gone after success, failure and abort', async (t) => {
    const builder = await selection(t, 'buildctl');
    if (!builder) return;
    const scratch = await writeContext({});
    const ok = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo ok > /ok\n` });
    const failing = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN exit 3\n` });
    const slow = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo go && sleep 30\n` });
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = scratch;
    try {
      await build({ context: ok, builder, network: 'host', registries: [{ address: bed.registry.host, username: 'u', password: 'p-scratch-test' }] });
      await assert.rejects(build({ context: failing, builder, network: 'host' }), (err: Failure) => err.code === 'SLIPWAY_BUILD');
      const controller = new AbortController();
      await assert.rejects(
        build({ context: slow, builder, network: 'host', signal: controller.signal, onLog: (l) => /^#\d+ [\d.]+ go$/.test(l.line) && controller.abort() }),
        (err: Failure) => err.code === 'SLIPWAY_ABORTED',
      );
      const { readdir } = await import('node:fs/promises');
      assert.deepEqual(await readdir(scratch), [], 'something was left in TMPDIR');
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });
});
