// Pull mirrors from registries.conf against real registries: a distribution pull-through cache in
// front of an "upstream" registry stands in for a Docker Hub mirror. docker.io itself is unreachable
// from the test machines, so a docker.io reference that copies at all was served by the mirror.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { copy, RegistryError, remote, type Digest } from '@slipway/oci';
import * as testing from '@slipway/oci/testing';
import { pushBusyboxImage, type PushedImage } from '../support/fixtures.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { freePort, startRegistry, type TestRegistry } from '../support/registry.js';
import { hasTool, run } from '../support/tools.js';

const main = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));
const anonymous = { resolve: async () => undefined };

describe('registries.conf mirrors', { skip: hasTool('buildah') ? false : 'needs buildah (apt-get install buildah)' }, () => {
  let work: string;
  let upstream: TestRegistry;
  let cache: TestRegistry;
  let destination: TestRegistry;
  let image: PushedImage;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'slipway-mirrors-'));
    upstream = await startRegistry();
    [cache, destination] = await Promise.all([startRegistry({ proxyRemoteUrl: upstream.url }), startRegistry()]);
    image = await pushBusyboxImage(upstream.host, 'library/busybox', 'amd64', { tag: 'latest' });
  });
  after(async () => {
    await Promise.all([upstream?.stop(), cache?.stop(), destination?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  let files = 0;
  async function registriesConf(text: string): Promise<string> {
    const path = join(work, `registries-${++files}.conf`);
    await writeFile(path, text);
    return path;
  }

  it('copies docker.io/library/busybox through a pull-through cache configured as its mirror', async () => {
    const conf = await registriesConf(`[[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "${cache.host}"\n`);
    const client = remote.createRegistryClient({ keychain: anonymous, registriesConf: conf });
    try {
      const result = await copy.copy(client.source('busybox'), client.sink(`${destination.host}/hub/busybox:latest`));
      assert.equal(result.digest, image.digest);
      assert.equal((await client.head(`${destination.host}/hub/busybox:latest`))?.digest, image.digest);
      // Reads resolved as pulls (the digest command's) take the same way.
      assert.equal((await client.head('docker.io/library/busybox:latest', { mirrors: true }))?.digest, image.digest);
    } finally {
      await client.close();
    }
    assert.match(await cache.log(), /library\/busybox\/manifests\/latest/, 'the cache served the manifest');
  });

  it('passes over a mirror that is down or lacks the image, and pulls from the (remapped) location', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const empty = await startRegistry();
    try {
      const conf = await registriesConf(
        `[[registry]]\nprefix = "registry.example"\nlocation = "${upstream.host}"\n[[registry.mirror]]\nlocation = "${dead}"\n[[registry.mirror]]\nlocation = "${empty.host}"\n`,
      );
      const client = remote.createRegistryClient({ keychain: anonymous, registriesConf: conf, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
      try {
        const result = await copy.copy(client.source('registry.example/library/busybox:latest'), client.sink(`${destination.host}/remapped/busybox:1`));
        assert.equal(result.digest, image.digest);
        // When nothing answers, the location's error says what each mirror said.
        const err = await client.getManifest('registry.example/library/absent:1', { mirrors: true }).then(
          () => assert.fail('expected not found'),
          (e: unknown) => e,
        );
        assert.ok(RegistryError.is(err) && err.notFound, 'still the location\'s own "not found" error');
        assert.match(err.message, new RegExp(`mirrors tried first: ${dead}/library/absent:1: .*unreachable.*; ${empty.host}/library/absent:1: `));
      } finally {
        await client.close();
      }
    } finally {
      await empty.stop();
    }
  });

  it('pull-from-mirror = "digest-only" keeps tag pulls off the mirror', async () => {
    const conf = await registriesConf(`[[registry]]\nprefix = "registry.example"\nlocation = "${upstream.host}"\n[[registry.mirror]]\nlocation = "${cache.host}"\npull-from-mirror = "digest-only"\n`);
    const client = remote.createRegistryClient({ keychain: anonymous, registriesConf: conf });
    const before = (await cache.log()).length;
    try {
      assert.equal((await client.head('registry.example/library/busybox:latest', { mirrors: true }))?.digest, image.digest);
      assert.ok(!(await cache.log()).slice(before).includes('/v2/library/busybox/manifests/latest'), 'the tag was not asked of the mirror');
      assert.equal((await client.head(`registry.example/library/busybox@${image.digest}`, { mirrors: true }))?.digest, image.digest);
      assert.match((await cache.log()).slice(before), new RegExp(`/v2/library/busybox/manifests/${image.digest}`), 'the digest was');
    } finally {
      await client.close();
    }
  });

  it('a blocked registry is refused for pulls and pushes before anything is sent', async () => {
    const conf = await registriesConf(`[[registry]]\nlocation = "${upstream.host}"\nblocked = true\n`);
    const client = remote.createRegistryClient({ keychain: anonymous, registriesConf: conf });
    const before = (await upstream.log()).length;
    try {
      assert.throws(() => client.source(image.ref), /pulling .* blocked by .*registries-\d+\.conf/);
      assert.throws(() => client.sink(`${upstream.host}/pushed/busybox:1`), /pushing to .* blocked by .*registries-\d+\.conf/);
      await assert.rejects(client.head(image.ref, { mirrors: true }), /blocked/);
    } finally {
      await client.close();
    }
    assert.doesNotMatch((await upstream.log()).slice(before), /\/v2\//, 'no request reached the blocked registry');
  });

  it('what a destination holds is read from the destination, never from its mirrors', async () => {
    // A mirror configured for the destination registry holds the tag; the destination itself does not.
    const conf = await registriesConf(`[[registry]]\nlocation = "${destination.host}"\n[[registry.mirror]]\nlocation = "${upstream.host}"\n`);
    const client = remote.createRegistryClient({ keychain: anonymous, registriesConf: conf });
    try {
      const target = `${destination.host}/library/busybox:latest`;
      assert.equal(await client.head(target), undefined, 'a plain read asks the destination');
      await assert.rejects(client.getManifest(target), (err: unknown) => RegistryError.is(err) && err.notFound);
      assert.equal((await client.head(target, { mirrors: true }))?.digest, image.digest, 'a pull takes the mirror');
    } finally {
      await client.close();
    }
  });

  it('asks a failing mirror once, without retries, before the registry', async () => {
    // A mirror answering 503 (temporary: the registry itself would be retried with backoff).
    const faults = await startFaultProxy({ target: cache });
    faults.inject({ match: { path: '/manifests/' }, fault: { status: 503 }, times: Infinity });
    const conf = await registriesConf(`[[registry]]\nprefix = "registry.example"\nlocation = "${upstream.host}"\n[[registry.mirror]]\nlocation = "${faults.host}"\n`);
    const client = remote.createRegistryClient({ keychain: anonymous, registriesConf: conf });
    try {
      assert.equal((await client.head('registry.example/library/busybox:latest', { mirrors: true }))?.digest, image.digest);
      const copied = await copy.copy(client.source('registry.example/library/busybox:latest'), client.sink(`${destination.host}/failfast/busybox:1`));
      assert.equal(copied.digest, image.digest);
      assert.equal(faults.requestsMatching({ path: '/manifests/' }).length, 2, 'one manifest request per pull, no retries');
    } finally {
      await client.close();
      await faults.stop();
    }
  });

  it('uses a mirror that answers the ping anonymously and challenges per repository, with one ping for a whole copy', async () => {
    // Token auth on the mirror; its /v2/ ping answered 200, as registries allowing anonymous /v2/ do:
    // the 401 with the scope comes on the first repository request and must be answered, once.
    const mirror = await startRegistry({ auth: 'token' });
    const faults = await startFaultProxy({ target: mirror });
    try {
      const mirrored = await pushBusyboxImage(mirror.host, 'library/busybox', 'arm64', { tag: 'latest', creds: { username: mirror.username, password: mirror.password } });
      faults.inject({ match: { method: 'GET', path: /^\/v2\/$/ }, fault: { status: 200 }, times: Infinity });
      const conf = await registriesConf(`[[registry]]\nprefix = "registry.example"\nlocation = "${upstream.host}"\n[[registry.mirror]]\nlocation = "${faults.host}"\n`);
      const credentials = { [faults.host]: { username: mirror.username, password: mirror.password } };
      const client = remote.createRegistryClient({ credentials, keychain: anonymous, registriesConf: conf });
      try {
        // The mirror's image differs from the upstream's: which one arrives says who served it.
        const copied = await copy.copy(client.source('registry.example/library/busybox:latest'), client.sink(`${destination.host}/auth-mirror/busybox:1`));
        assert.equal(copied.digest, mirrored.digest, 'served by the mirror');
      } finally {
        await client.close();
      }
      assert.equal(faults.requestsMatching({ method: 'GET', path: /^\/v2\/$/ }).length, 1, 'one ping of the mirror for manifests and blobs alike');
    } finally {
      await faults.stop();
      await mirror.stop();
    }
  });

  it('concurrent pulls sharing one failure each get their own notes', async () => {
    // Both reads wait on one ping of the dead location and get the same error object from it.
    const dead = `127.0.0.1:${await freePort()}`;
    const conf = await registriesConf(`[[registry]]\nprefix = "registry.example"\nlocation = "${dead}"\n[[registry.mirror]]\nlocation = "${upstream.host}"\n`);
    const client = remote.createRegistryClient({ keychain: anonymous, registriesConf: conf, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
    try {
      const [a, b] = await Promise.allSettled([client.head('registry.example/a/b:1', { mirrors: true }), client.head('registry.example/c/d:2', { mirrors: true })]);
      assert.ok(a.status === 'rejected' && b.status === 'rejected');
      const [ma, mb] = [(a.reason as Error).message, (b.reason as Error).message];
      assert.match(ma, /mirrors tried first: [^)]*\/a\/b:1: not found\)$/);
      assert.match(mb, /mirrors tried first: [^)]*\/c\/d:2: not found\)$/);
      assert.ok(!ma.includes('c/d:2') && !mb.includes('a/b:1'), 'one pull\'s notes never land in another\'s error');
    } finally {
      await client.close();
    }
  });

  it('the CLI reads CONTAINERS_REGISTRIES_CONF', async () => {
    const conf = await registriesConf(`[[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "${cache.host}"\n`);
    const digest = await run(process.execPath, [main, 'digest', 'busybox'], { env: { CONTAINERS_REGISTRIES_CONF: conf }, timeoutMs: 60_000 });
    assert.equal(digest.code, 0, digest.stderr);
    assert.equal(digest.stdout.trim(), image.digest);
    const copied = await run(process.execPath, [main, 'copy', 'busybox', `${destination.host}/cli/busybox:1`, '--json'], { env: { CONTAINERS_REGISTRIES_CONF: conf }, timeoutMs: 60_000 });
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal((JSON.parse(copied.stdout) as { digest: string }).digest, image.digest);
  });
});

// A mirrored source is an ImageSource like any other: the same behaviour suite, with a mirror that is
// down and one that is empty ahead of the registry (an unknown digest is SLIPWAY_NOT_FOUND, the
// registry's answer, not the dead mirror's network error).
describe('registries.conf mirrored source conformance', { skip: hasTool('buildah') ? false : 'needs buildah (apt-get install buildah)' }, () => {
  const registries: TestRegistry[] = [];
  let work: string | undefined;
  after(async () => {
    await Promise.all(registries.map((r) => r.stop()));
    if (work) await rm(work, { recursive: true, force: true });
  });
  for (const mirror of ['down', 'empty'] as const) {
    testing.imageSourceConformance(`mirrored source, mirror ${mirror}`, async () => {
      const upstream = await startRegistry();
      registries.push(upstream);
      const image = await pushBusyboxImage(upstream.host, 'library/busybox', 'amd64', { tag: 'latest' });
      let mirrorHost = `127.0.0.1:${await freePort()}`;
      if (mirror === 'empty') {
        const empty = await startRegistry();
        registries.push(empty);
        mirrorHost = empty.host;
      }
      work ??= await mkdtemp(join(tmpdir(), 'slipway-mirrors-conformance-'));
      const conf = join(work, `registries-${mirror}.conf`);
      await writeFile(conf, `[[registry]]\nprefix = "registry.example"\nlocation = "${upstream.host}"\n[[registry.mirror]]\nlocation = "${mirrorHost}"\n`);
      const client = remote.createRegistryClient({ keychain: anonymous, registriesConf: conf, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
      return { source: client.source('registry.example/library/busybox:latest'), expected: { rootDigest: image.digest as Digest }, cleanup: () => client.close() };
    });
  }
});
