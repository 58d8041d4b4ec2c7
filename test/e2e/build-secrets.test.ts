// Build secrets by value, from an environment variable and from a file reach RUN --mount=type=secret
// (proved by a hash written into the image), yet the canary values appear nowhere else: not in the
// streamed log (even though RUN prints them), not in the result, not in the image config or
// history, not in any layer, and not in the error of a failing build. Registry credentials given to
// the build are held to the same rule.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { build, type builders } from '@slipway/build';
import { remote } from '@slipway/oci';
import { startRegistry } from '../support/registry.js';
import { collectLog, readImage, repo, selectBuilder, useBuildBed, writeContext } from './build-harness.js';

describe('build secrets never leak', () => {
  const bed = useBuildBed();

  const selection = (t: TestContext, kind: builders.BuilderKind): Promise<builders.BuilderSelection | undefined> => selectBuilder(t, kind, bed.buildkitd, 'secrets');

  const canaries = () => {
    const id = randomBytes(6).toString('hex');
    return { value: `CANARY-value-${id}`, env: `CANARY-env-${id}`, file: `CANARY-file-${id}` };
  };

  for (const kind of ['buildctl', 'docker', 'buildah', 'buildx'] as const) {
    it(`${kind}: secrets by value, env and file reach RUN and nothing else`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const canary = canaries();
      const context = await writeContext({
        Dockerfile:
          `FROM ${bed.base}\n` +
          // Printing the secrets on purpose: the log must still not contain them. Secrets are not part
          // of BuildKit's cache key, so a nonce keeps an earlier run's RUN result from being reused.
          'RUN --mount=type=secret,id=a --mount=type=secret,id=b --mount=type=secret,id=c ' +
          `echo nonce-${randomBytes(4).toString('hex')} && ` +
          'cat /run/secrets/a /run/secrets/b /run/secrets/c && echo && cat /run/secrets/a /run/secrets/b /run/secrets/c | sha256sum | cut -d" " -f1 > /secrets.sha\n',
      });
      // Outside the context (a secret file is never part of what BuildKit sends).
      const file = join(await writeContext({}), 'token.secret');
      await writeFile(file, canary.file);
      const envName = `SLIPWAY_TEST_SECRET_${randomBytes(4).toString('hex').toUpperCase()}`;
      process.env[envName] = canary.env;
      const log = collectLog();
      try {
        const result = await build({
          context,
          tags: [`${bed.registry.host}/${repo(`secrets-${kind}`)}:1`],
          push: true,
          builder,
          network: 'host',
          secrets: [
            { id: 'a', value: canary.value },
            { id: 'b', env: envName },
            { id: 'c', src: file },
          ],
          onLog: log.onLog,
        });
        const image = await readImage(bed.client, result.ref!);
        const expected = createHash('sha256').update(canary.value + canary.env + canary.file).digest('hex');
        assert.equal(image.files.get('secrets.sha')?.toString().trim(), expected, 'the three secrets reached RUN');
        assert.ok(log.text().includes('***'), 'the printed secrets were replaced in the log');
        const everything = [log.text(), JSON.stringify(result), image.configText, ...[...image.files.values()].map((b) => b.toString('latin1'))].join('\n');
        for (const secret of Object.values(canary)) assert.ok(!everything.includes(secret), `${secret} leaked`);
        assert.ok(!everything.includes('CANARY-'), 'no canary anywhere');
      } finally {
        delete process.env[envName];
      }
    });
  }

  it('buildctl: a failing build that printed the secret carries a redacted log tail', async (t) => {
    const builder = await selection(t, 'buildctl');
    if (!builder) return;
    const canary = canaries();
    const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN --mount=type=secret,id=a cat /run/secrets/a && exit 9\n` });
    const log = collectLog();
    await assert.rejects(
      build({ context, builder, network: 'host', secrets: [{ id: 'a', value: canary.value }], onLog: log.onLog }),
      (err: Error & { code?: string; logTail?: string[] }) => {
        assert.equal(err.code, 'SLIPWAY_BUILD');
        assert.ok(!err.message.includes(canary.value) && !(err.logTail ?? []).join('\n').includes(canary.value), 'secret in the error');
        assert.ok((err.logTail ?? []).some((line) => line.includes('***')), 'the printed secret shows as *** in the tail');
        assert.ok(!(err.stack ?? '').includes(canary.value));
        return true;
      },
    );
    assert.ok(!log.text().includes(canary.value));
  });

  it('buildctl: registry credentials given to the build never show up either', async (t) => {
    const builder = await selection(t, 'buildctl');
    if (!builder) return;
    const locked = await startRegistry({ auth: 'htpasswd', password: `CANARY-pw-${randomBytes(6).toString('hex')}` });
    try {
      const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo ok > /ok\n` });
      const tag = `${locked.host}/${repo('creds')}:1`;
      const log = collectLog();
      const result = await build({
        context,
        tags: [tag],
        push: true,
        builder,
        network: 'host',
        registries: [{ address: locked.host, username: locked.username, password: locked.password }],
        onLog: log.onLog,
      });
      const authed = remote.createRegistryClient({ credentials: { [locked.host]: { username: locked.username, password: locked.password } } });
      try {
        assert.equal((await authed.head(tag))?.digest, result.digest);
      } finally {
        await authed.close();
      }
      assert.ok(!log.text().includes(locked.password) && !JSON.stringify(result).includes(locked.password));
    } finally {
      await locked.stop();
    }
  });
});
