import assert from 'node:assert/strict';
import { stat, readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { writeDockerConfig } from './credentials.js';
import { classifyFailure, failure, StepCounter, summarizeFailure } from './errors.js';

describe('StepCounter', () => {
  it('counts BuildKit steps and CACHED marks, including named stages, not FROM', () => {
    const counter = new StepCounter();
    for (const line of [
      '#1 [internal] load build definition from Dockerfile',
      '#5 [1/3] FROM 127.0.0.1:5000/base@sha256:abc',
      '#5 CACHED',
      '#6 [build 2/3] RUN make',
      '#6 CACHED',
      '#7 [3/3] COPY . /src',
      '#7 DONE 0.1s',
    ]) counter.observe(line);
    // FROM shows CACHED whenever the base is present, even with --no-cache: it is not a build step.
    assert.deepEqual(counter.result(), { total: 2, cached: 1 });
  });

  it('counts buildah steps (platform-prefixed too) and "Using cache", not FROM', () => {
    const counter = new StepCounter();
    for (const line of [
      '[linux/arm64] STEP 1/3: FROM base',
      '[linux/arm64] STEP 2/3: RUN true',
      '--> Using cache 0123',
      '[linux/arm64] STEP 3/3: COPY . /',
      '--> 4567',
    ]) counter.observe(line);
    assert.deepEqual(counter.result(), { total: 2, cached: 1 });
  });
});

describe('failure', () => {
  const tail = [
    '#6 [2/2] RUN exit 3',
    '#6 0.05 boom',
    '#6 ERROR: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3',
    'error: failed to solve: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3',
  ];
  it('summarises with BuildKit\'s final error line and carries the tail', () => {
    assert.equal(summarizeFailure(tail), tail[3]);
    const err = failure('buildctl', 1, tail);
    assert.equal(err.code, 'SLIPWAY_BUILD');
    assert.ok(err.message.includes('exit code: 3'));
    assert.ok(err.message.includes('#6 0.05 boom'));
    assert.deepEqual(err.logTail, tail);
  });

  it('classifies refused pushes', () => {
    assert.equal(classifyFailure(['#8 pushing layers', 'error: failed to solve: failed to push 127.0.0.1:5000/a:1: 401 Unauthorized']), 'SLIPWAY_AUTH');
    assert.equal(classifyFailure(['#8 pushing layers', 'error: failed to push 127.0.0.1:5000/a:1: unexpected status: 503 Service Unavailable']), 'SLIPWAY_REGISTRY');
    assert.equal(classifyFailure(tail), 'SLIPWAY_BUILD');
  });
});

describe('writeDockerConfig', () => {
  it('writes only the needed registries, 0700/0600, and removes everything', async () => {
    const keychain = {
      resolve: async (registry: string) =>
        registry === 'reg.example' ? { username: 'u', password: 'pw-canary-1' } : registry === 'docker.io' ? { identityToken: 'tok-canary-2' } : undefined,
    };
    const config = await writeDockerConfig({ registries: ['reg.example', 'docker.io', 'other.example'], keychain });
    try {
      assert.equal((await stat(config.dir)).mode & 0o777, 0o700);
      assert.equal((await stat(config.file)).mode & 0o777, 0o600);
      const body = JSON.parse(await readFile(config.file, 'utf8')) as { auths: Record<string, Record<string, string>> };
      assert.deepEqual(Object.keys(body.auths).sort(), ['https://index.docker.io/v1/', 'reg.example']);
      assert.equal(Buffer.from(body.auths['reg.example']!.auth!, 'base64').toString(), 'u:pw-canary-1');
      assert.equal(body.auths['https://index.docker.io/v1/']!.identitytoken, 'tok-canary-2');
      assert.ok(config.secrets.includes('pw-canary-1') && config.secrets.includes('tok-canary-2'));
      assert.deepEqual(config.registries.sort(), ['docker.io', 'reg.example']);
    } finally {
      await config.remove();
    }
    await assert.rejects(stat(config.dir), { code: 'ENOENT' });
  });
});
