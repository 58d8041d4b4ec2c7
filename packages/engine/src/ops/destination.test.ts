import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlipwayError } from '@slipway/oci';
import { parseDestination } from './copy-image.js';

test('destinations: registries, and skopeo\'s spellings of local places (the path ends at the first colon)', () => {
  const registry = parseDestination('docker://registry.test:5000/team/app');
  assert.equal(registry.kind === 'registry' && registry.reference.toString(), 'registry.test:5000/team/app:latest');
  assert.deepEqual(parseDestination('oci:out/layout:v1'), { kind: 'oci-layout', path: 'out/layout', name: 'v1' });
  assert.deepEqual(parseDestination('oci:out/layout'), { kind: 'oci-layout', path: 'out/layout' });
  assert.deepEqual(parseDestination('oci-archive:/tmp/a.tar:app:1'), { kind: 'oci-archive', path: '/tmp/a.tar', name: 'app:1' });
  assert.deepEqual(parseDestination('docker-archive:a.tar:registry.test:5000/app:1'), { kind: 'docker-archive', path: 'a.tar', name: 'registry.test:5000/app:1' });
  assert.deepEqual(parseDestination('docker-archive:a.tar:'), { kind: 'docker-archive', path: 'a.tar' });
  assert.deepEqual(parseDestination('docker-daemon:app:1'), { kind: 'docker-daemon', image: 'app:1' });
});

test('destinations slipway cannot write are usage errors, never Docker Hub repositories', () => {
  const refused = (text: string, pattern: RegExp) =>
    assert.throws(() => parseDestination(text), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_REFERENCE' && pattern.test(err.message), text);
  refused('dir:out', /dir: location, which slipway does not write/);
  refused('containers-storage:app:1', /slipway does not write/);
  refused('oci:', /nothing after "oci:"/);
  refused('oci-archive::name', /no path before the name/);
  refused('docker-daemon:', /nothing after/);
  refused(`registry.test/app@sha256:${'a'.repeat(64)}`, /names a digest/);
});

test('the image option with a registry or daemon source is refused, not ignored', async () => {
  const { copyImage } = await import('./copy-image.js');
  for (const source of ['registry.invalid/app:1', 'docker-daemon:app:1']) {
    await assert.rejects(copyImage({ source, destination: 'registry.invalid/copy:1', image: 'app:2' }), (err: unknown) => {
      assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_ARG', String(err));
      assert.match(err.message, /the image option \("app:2"\) picks an image of an archive or OCI layout/);
      return true;
    });
  }
});
