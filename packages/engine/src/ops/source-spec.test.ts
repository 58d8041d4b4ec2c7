import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SlipwayError } from '@slipway/oci';
import { parseSourceSpec } from './source-spec.js';

describe('parseSourceSpec', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-spec-'));
    await mkdir(join(dir, 'layout'));
    await writeFile(join(dir, 'layout', 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await mkdir(join(dir, 'plain'));
    await mkdir(join(dir, 'unmarked'));
    await writeFile(join(dir, 'unmarked', 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    await writeFile(join(dir, 'image.tar'), 'not really a tar');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads skopeo transport prefixes', async () => {
    assert.deepEqual(await parseSourceSpec('docker://localhost:5000/app:1'), { kind: 'registry', reference: 'localhost:5000/app:1' });
    assert.deepEqual(await parseSourceSpec('docker-daemon:app:dev'), { kind: 'docker-daemon', image: 'app:dev' });
    assert.deepEqual(await parseSourceSpec('oci:/tmp/layout:v1'), { kind: 'oci-layout', path: '/tmp/layout', reference: 'v1' });
    assert.deepEqual(await parseSourceSpec('oci:/tmp/layout'), { kind: 'oci-layout', path: '/tmp/layout' });
    assert.deepEqual(await parseSourceSpec('oci-archive:out.tar'), { kind: 'oci-archive', path: 'out.tar' });
    assert.deepEqual(await parseSourceSpec('docker-archive:save.tar:app:1'), { kind: 'docker-archive', path: 'save.tar', image: 'app:1' });
    assert.deepEqual(await parseSourceSpec('docker-archive:save.tar:@1'), { kind: 'docker-archive', path: 'save.tar', image: '@1' });
    // regctl's DIR@DIGEST: the digest, not a path "DIR@sha256" with a tag.
    const digest = `sha256:${'b'.repeat(64)}`;
    assert.deepEqual(await parseSourceSpec(`oci:/tmp/layout@${digest}`), { kind: 'oci-layout', path: '/tmp/layout', reference: digest });
    assert.deepEqual(await parseSourceSpec(`oci-archive:out.tar@${digest}`), { kind: 'oci-archive', path: 'out.tar', reference: digest });
    // A reference's own @digest is left alone, with no colon before it too.
    assert.deepEqual(await parseSourceSpec(`docker://busybox@${digest}`), { kind: 'registry', reference: `busybox@${digest}` });
    assert.deepEqual(await parseSourceSpec(`docker://ghcr.io/org/app@${digest}`), { kind: 'registry', reference: `ghcr.io/org/app@${digest}` });
    assert.deepEqual(await parseSourceSpec(`docker-daemon:busybox@${digest}`), { kind: 'docker-daemon', image: `busybox@${digest}` });
  });

  it('keeps skopeo\'s reading of a path that really ends in @sha256', async () => {
    await mkdir(join(dir, 'odd@sha256'), { recursive: true });
    assert.deepEqual(await parseSourceSpec(`oci:${join(dir, 'odd')}@sha256:abc`), { kind: 'oci-layout', path: join(dir, 'odd@sha256'), reference: 'abc' });
  });

  it('prefers an existing path, then a reference', async () => {
    assert.deepEqual(await parseSourceSpec(join(dir, 'layout')), { kind: 'oci-layout', path: join(dir, 'layout') });
    assert.deepEqual(await parseSourceSpec(join(dir, 'image.tar')), { kind: 'archive', path: join(dir, 'image.tar') });
    assert.deepEqual(await parseSourceSpec('127.0.0.1:5000/app@sha256:' + 'a'.repeat(64)), {
      kind: 'registry',
      reference: '127.0.0.1:5000/app@sha256:' + 'a'.repeat(64),
    });
  });

  it('says clearly what is wrong', async () => {
    const code = async (text: string) => {
      try {
        await parseSourceSpec(text);
      } catch (err) {
        assert.ok(SlipwayError.is(err));
        return [err.code, err.message];
      }
      assert.fail(`"${text}" parsed`);
    };
    const [plainCode, plainMessage] = await code(join(dir, 'plain'));
    assert.equal(plainCode, 'SLIPWAY_INVALID_ARCHIVE');
    assert.ok(!plainMessage!.includes('imageLayoutVersion'), 'no layout advice for a directory without an index.json');
    // A layout made by hand without the marker: how to add it.
    const [, unmarked] = await code(join(dir, 'unmarked'));
    assert.ok(unmarked!.endsWith(`add the marker the spec requires: echo '{"imageLayoutVersion":"1.0.0"}' > ${join(dir, 'unmarked', 'oci-layout')}`), unmarked);
    const [missingCode, missingMessage] = await code('./missing.tar');
    assert.equal(missingCode, 'SLIPWAY_NOT_FOUND');
    // `./missing.tar` cannot be a repository: no docker:// advice; `missing.tar` can.
    assert.equal(missingMessage, 'source "./missing.tar": no such file or directory');
    assert.match((await code('missing.tar'))[1]!, /for a repository of that name, write docker:\/\/missing\.tar\)$/);
    const [badCode, badMessage] = await code('Not A Reference!');
    assert.equal(badCode, 'SLIPWAY_INVALID_REFERENCE');
    assert.match(badMessage!, /neither an existing file or directory nor an image reference/);
    assert.equal((await code('oci:'))[0], 'SLIPWAY_INVALID_ARG');
    assert.equal((await code(''))[0], 'SLIPWAY_INVALID_ARG');
    // A bare archive name that is not there is a missing file, not docker.io/library/image.tar.
    for (const missing of ['image.tar', 'out/image.tar.gz', 'image.TGZ']) assert.equal((await code(missing))[0], 'SLIPWAY_NOT_FOUND', missing);
    assert.deepEqual(await parseSourceSpec('docker://image.tar'), { kind: 'registry', reference: 'image.tar' });
    // A pipe is an archive to read once (not a reference), and so is a device.
    const fifo = join(dir, 'fifo');
    spawnSync('mkfifo', [fifo]);
    assert.deepEqual(await parseSourceSpec(fifo), { kind: 'archive', path: fifo });
    assert.deepEqual(await parseSourceSpec('/dev/null'), { kind: 'archive', path: '/dev/null' });
  });
});
