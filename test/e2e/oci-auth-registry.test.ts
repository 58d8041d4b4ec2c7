// Registry auth against the real CNCF registry: htpasswd (Basic) and token (Bearer, with the test
// issuer), credentials from explicit options, Docker config files and a real credential helper
// program, and the canary password never reaching an error message.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { auth, copy, name, remote, SlipwayError } from '@slipway/oci';
import * as testing from '@slipway/oci/testing';
import { CANARY_PASSWORD, CANARY_USERNAME, registryV3Path, startRegistry, type TestRegistry } from '../support/registry.js';
import { makeImage } from './registry-images.js';

async function push(client: remote.RegistryClient, reference: string, image: ReturnType<typeof makeImage>, mountFrom?: string): Promise<void> {
  const ref = name.parseReference(reference);
  const sink = client.sink(ref);
  const from = mountFrom ? client.source(mountFrom).location : undefined;
  for (const b of image.blobs) await sink.putBlob(b.descriptor, async () => Readable.from([b.bytes]), from ? { mountFrom: from } : {});
  await sink.putManifest(image.manifest, { tag: ref.tag! });
}

const anonymous: auth.Keychain = { resolve: async () => undefined };

function assertNoCanary(err: unknown): void {
  const text = `${String(err)} ${JSON.stringify(err)} ${(err as Error)?.stack ?? ''} ${String((err as { cause?: unknown })?.cause)}`;
  assert.ok(!text.includes(CANARY_PASSWORD), `the canary password leaked: ${text}`);
  assert.ok(!text.includes(Buffer.from(`${CANARY_USERNAME}:${CANARY_PASSWORD}`).toString('base64')), 'the Basic header leaked');
}

describe('htpasswd registry (Basic auth)', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startRegistry({ auth: 'htpasswd', username: CANARY_USERNAME, password: CANARY_PASSWORD });
  });
  after(() => registry?.stop());

  it('pushes and pulls with explicit credentials', async () => {
    const client = remote.createRegistryClient({ credentials: { [registry.host]: { username: CANARY_USERNAME, password: CANARY_PASSWORD } } });
    try {
      const image = makeImage([4096]);
      await push(client, `${registry.host}/basic/app:1`, image);
      const root = await client.source(`${registry.host}/basic/app:1`).root();
      assert.equal(root.descriptor.digest, image.manifest.descriptor.digest);
      const layer = image.blobs[1]!;
      assert.deepEqual(await buffer(await client.blob(`${registry.host}/basic/app`, layer.descriptor)), layer.bytes);
    } finally {
      await client.close();
    }
  });

  it('fails with SLIPWAY_AUTH, a clear message and no secret when the password is wrong or missing', async () => {
    for (const credentials of [{ [registry.host]: { username: CANARY_USERNAME, password: `${CANARY_PASSWORD}-wrong` } }, undefined]) {
      const client = remote.createRegistryClient({ keychain: anonymous, ...(credentials ? { credentials } : {}) });
      try {
        await assert.rejects(client.getManifest(`${registry.host}/basic/app:1`), (err: unknown) => {
          assert.ok(SlipwayError.is(err));
          assert.equal(err.code, 'SLIPWAY_AUTH');
          assert.match(err.message, /^GET http:\/\/127\.0\.0\.1:\d+\/v2\/basic\/app\/manifests\/1: UNAUTHORIZED/);
          // Says which: none were found, or the ones found were refused (whose, never their value).
          assert.match(err.message, credentials ? /; 127\.0\.0\.1:\d+ refused the credentials used \(basic \(user "slipway-canary-user"\) from the credentials given\)$/ : /; no credentials for 127\.0\.0\.1:\d+ were found \(docker login/);
          assertNoCanary(err);
          return true;
        });
      } finally {
        await client.close();
      }
    }
  });

  it('reads credentials from a Docker config.json (base64 auth) in DOCKER_CONFIG', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-docker-config-'));
    try {
      const encoded = Buffer.from(`${CANARY_USERNAME}:${CANARY_PASSWORD}`).toString('base64');
      await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [`http://${registry.host}`]: { auth: encoded } } }));
      const keychain = auth.createKeychain({ env: { HOME: dir, DOCKER_CONFIG: dir } });
      const client = remote.createRegistryClient({ keychain });
      try {
        const image = makeImage([10]);
        await push(client, `${registry.host}/basic/from-config:1`, image);
        assert.equal((await client.head(`${registry.host}/basic/from-config:1`))?.digest, image.manifest.descriptor.digest);
      } finally {
        await client.close();
      }
      // A stale login in ~/.docker/config.json, and the right one in a REGISTRY_AUTH_FILE set for the
      // run: the named file wins; the stale one alone is refused, and the refusal names its file.
      const home = join(dir, 'home');
      await mkdir(join(home, '.docker'), { recursive: true });
      const stale = Buffer.from(`${CANARY_USERNAME}:stale-password`).toString('base64');
      await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: stale } } }));
      await writeFile(join(dir, 'auth.json'), JSON.stringify({ auths: { [registry.host]: { auth: encoded } } }));
      for (const [env, works] of [
        [{ HOME: home, REGISTRY_AUTH_FILE: join(dir, 'auth.json') }, true],
        [{ HOME: home }, false],
      ] as const) {
        const named = remote.createRegistryClient({ keychain: auth.createKeychain({ env }) });
        try {
          if (works) assert.ok(await named.head(`${registry.host}/basic/from-config:1`));
          else {
            await assert.rejects(named.head(`${registry.host}/basic/from-config:1`), (err: unknown) => {
              assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_AUTH', String(err));
              assert.ok(err.message.endsWith(`refused the credentials used (basic (user "${CANARY_USERNAME}") from ${join(home, '.docker', 'config.json')})`), err.message);
              assertNoCanary(err);
              return true;
            });
          }
        } finally {
          await named.close();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs a real docker-credential-<name> helper named in credHelpers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-helper-'));
    try {
      const helper = join(dir, 'docker-credential-slipwaytest');
      // A real helper program speaking the protocol: server URL on stdin, JSON on stdout.
      await writeFile(
        helper,
        [
          '#!/bin/sh',
          '[ "$1" = get ] || exit 2',
          'read -r server',
          `[ "$server" = "${registry.host}" ] || { echo "credentials not found in native keychain"; exit 1; }`,
          `printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$server" "${CANARY_USERNAME}" "${CANARY_PASSWORD}"`,
          '',
        ].join('\n'),
      );
      await chmod(helper, 0o755);
      await writeFile(join(dir, 'config.json'), JSON.stringify({ credHelpers: { [registry.host]: 'slipwaytest' } }));
      const env = { HOME: dir, DOCKER_CONFIG: dir, PATH: `${dir}:${process.env.PATH ?? ''}` };
      const client = remote.createRegistryClient({ keychain: auth.createKeychain({ env }) });
      try {
        const image = makeImage([10]);
        await push(client, `${registry.host}/basic/from-helper:1`, image);
        assert.equal((await client.head(`${registry.host}/basic/from-helper:1`))?.digest, image.manifest.descriptor.digest);
      } finally {
        await client.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// distribution v3 too: its token checks differ from 2.8's (key lookup, go-jose), and it is what
// registries run now.
for (const implementation of ['debian', 'v3'] as const) {
  describe(`token registry (Bearer auth with the test issuer), ${implementation === 'v3' ? 'distribution v3' : 'Debian docker-registry 2.8'}`, { skip: implementation === 'v3' && registryV3Path() === undefined ? 'distribution v3 not built (scripts/install-go-tools.sh distribution)' : false }, () => {
    let registry: TestRegistry;
    before(async () => {
      registry = await startRegistry({ implementation, auth: 'token', username: CANARY_USERNAME, password: CANARY_PASSWORD });
    });
    after(() => registry?.stop());
    /** Pushes `image` to `reference` as the registry's owner (the canary login), which may do anything. */
    const pushAsOwner = async (reference: string, image: ReturnType<typeof makeImage>): Promise<ReturnType<typeof makeImage>> => {
      const owner = remote.createRegistryClient({ credentials: { [registry.host]: { username: CANARY_USERNAME, password: CANARY_PASSWORD } } });
      try {
        await push(owner, reference, image);
        return image;
      } finally {
        await owner.close();
      }
    };

    it('asks for the push scope first, reuses one token per scope set, and pulls with a pull token', async () => {
      const issuer = registry.tokenIssuer!;
      const client = remote.createRegistryClient({ credentials: { [registry.host]: { username: CANARY_USERNAME, password: CANARY_PASSWORD } } });
      try {
        const before = issuer.requests.length;
        const image = makeImage([1000, 2000, 3000, 4000]);
        await push(client, `${registry.host}/team/app:1`, image);
        const pushRequests = issuer.requests.slice(before);
        assert.equal(pushRequests.length, 1, `one token for the whole push (6 blobs HEAD+upload, manifest): ${JSON.stringify(pushRequests.map((r) => r.scopes))}`);
        assert.deepEqual(pushRequests[0]!.scopes, ['repository:team/app:pull,push']);
        assert.equal(pushRequests[0]!.account, CANARY_USERNAME);
        assert.equal(pushRequests[0]!.service, issuer.service);

        const pullStart = issuer.requests.length;
        const source = client.source(`${registry.host}/team/app:1`);
        await source.root();
        for (const b of image.blobs) assert.deepEqual(await buffer(await source.blob(b.descriptor)), b.bytes);
        const pullRequests = issuer.requests.slice(pullStart);
        assert.equal(pullRequests.length, 1);
        assert.deepEqual(pullRequests[0]!.scopes, ['repository:team/app:pull']);
      } finally {
        await client.close();
      }
    });

    it('a login the realm accepts but that may only pull: says the push was not granted, not that the credentials were refused', async () => {
      const issuer = registry.tokenIssuer!;
      issuer.addUser('reader-robot', `${CANARY_PASSWORD}-reader`, [{ repo: /^team\//, actions: ['pull'] }]);
      const image = await pushAsOwner(`${registry.host}/team/readable:1`, makeImage([1500]));
      const reader = remote.createRegistryClient({ credentials: { [registry.host]: { username: 'reader-robot', password: `${CANARY_PASSWORD}-reader` } } });
      try {
        assert.equal((await reader.head(`${registry.host}/team/readable:1`))?.digest, image.manifest.descriptor.digest, 'the login works for pulls');
        await assert.rejects(copy.copy(reader.source(`${registry.host}/team/readable:1`), reader.sink(`${registry.host}/team/written:1`)), (err: unknown) => {
          assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_AUTH', String(err));
          assert.match(err.message, /the credentials used for 127\.0\.0\.1:\d+ \(basic \(user "reader-robot"\) from the credentials given\) were accepted, but do not grant repository:team\/written:(pull,push|push,pull) \(insufficient_scope\)/);
          // The scope is the registry's challenge's: distribution v3 lists the actions in either order.
          assert.doesNotMatch(err.message, /refused the credentials/);
          assertNoCanary(err);
          return true;
        });
      } finally {
        await reader.close();
      }
    });

    it('mounts across repositories with the destination push scope first and the source pull scope second', async () => {
      const issuer = registry.tokenIssuer!;
      const client = remote.createRegistryClient({ credentials: { [registry.host]: { username: CANARY_USERNAME, password: CANARY_PASSWORD } } });
      try {
        const image = makeImage([5000]);
        await push(client, `${registry.host}/team/base:1`, image);
        const start = issuer.requests.length;
        await push(client, `${registry.host}/team/derived:1`, image, `${registry.host}/team/base:1`);
        const scopes = issuer.requests.slice(start).map((r) => r.scopes);
        // One token for both mounts (same scope set), then one plain push token for the manifest PUT.
        assert.deepEqual(scopes, [['repository:team/derived:pull,push', 'repository:team/base:pull'], ['repository:team/derived:pull,push']]);
        assert.match(await registry.log(), /mount=sha256/);
        assert.equal((await client.head(`${registry.host}/team/derived:1`))?.digest, image.manifest.descriptor.digest);
      } finally {
        await client.close();
      }
    });

    it('uses a containers auth.json login per namespace: reads with one, writes with the other, mount refused then uploaded', async () => {
      const issuer = registry.tokenIssuer!;
      // Two accounts that may each touch only their own namespace (as on GHCR or Quay with robot accounts).
      issuer.addUser('alpha-robot', `${CANARY_PASSWORD}-alpha`, [{ repo: /^alpha\//, actions: ['pull', 'push'] }]);
      issuer.addUser('beta-robot', `${CANARY_PASSWORD}-beta`, [{ repo: /^beta\//, actions: ['pull', 'push'] }]);
      const image = await pushAsOwner(`${registry.host}/alpha/app:1`, makeImage([3000, 7000]));
      const dir = await mkdtemp(join(tmpdir(), 'slipway-scoped-auth-'));
      const b64 = (text: string) => Buffer.from(text).toString('base64');
      await writeFile(
        join(dir, 'auth.json'),
        JSON.stringify({
          auths: {
            [`${registry.host}/alpha`]: { auth: b64(`alpha-robot:${CANARY_PASSWORD}-alpha`) },
            [`${registry.host}/beta`]: { auth: b64(`beta-robot:${CANARY_PASSWORD}-beta`) },
          },
        }),
      );
      const client = remote.createRegistryClient({ keychain: auth.createKeychain({ env: { HOME: dir, REGISTRY_AUTH_FILE: join(dir, 'auth.json') } }) });
      try {
        const start = issuer.requests.length;
        const result = await copy.copy(client.source(`${registry.host}/alpha/app:1`), client.sink(`${registry.host}/beta/app:1`));
        assert.equal(result.digest, image.manifest.descriptor.digest);
        assert.equal((await client.head(`${registry.host}/beta/app:1`))?.digest, image.manifest.descriptor.digest);
        const records = issuer.requests.slice(start);
        const accountFor = (scope: string) => new Set(records.filter((r) => r.scopes[0] === scope).map((r) => r.account));
        // The source is read as alpha-robot, the destination written as beta-robot: each namespace's own login.
        assert.deepEqual(accountFor('repository:alpha/app:pull'), new Set(['alpha-robot']));
        assert.deepEqual(accountFor('repository:beta/app:pull,push'), new Set(['beta-robot']));
        // The mount token (beta-robot asking for alpha's pull too) grants no pull on alpha, so blobs were uploaded.
        const mountTokens = records.filter((r) => r.scopes.includes('repository:alpha/app:pull') && r.scopes[0] === 'repository:beta/app:pull,push');
        for (const record of mountTokens) assert.ok(!record.granted.some((g) => g.name === 'alpha/app'), JSON.stringify(record.granted));
        // Without the scoped entries there is nothing for this host: the same copy is refused.
        const bare = remote.createRegistryClient({ keychain: auth.createKeychain({ env: { HOME: dir } }) });
        try {
          await assert.rejects(bare.getManifest(`${registry.host}/alpha/app:1`), { code: 'SLIPWAY_AUTH' });
        } finally {
          await bare.close();
        }
      } finally {
        await client.close();
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('exchanges an identity (refresh) token with an OAuth2 POST', async () => {
      const issuer = registry.tokenIssuer!;
      const response = await fetch(issuer.realm, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'password', username: CANARY_USERNAME, password: CANARY_PASSWORD, service: issuer.service, client_id: 'test' }),
      });
      const refresh = ((await response.json()) as { refresh_token: string }).refresh_token;
      assert.ok(refresh);
      const client = remote.createRegistryClient({ credentials: { [registry.host]: { identityToken: refresh } } });
      try {
        const start = issuer.requests.length;
        await push(client, `${registry.host}/team/oauth:1`, makeImage([10]));
        const records = issuer.requests.slice(start);
        assert.equal(records[0]!.method, 'POST');
        assert.equal(records[0]!.grantType, 'refresh_token');
        assert.equal(records[0]!.status, 200);
      } finally {
        await client.close();
      }
    });

    it('a refused login at the token realm names the credentials and the file they came from, never their value', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'slipway-token-refused-'));
      try {
        const stale = 'stale-identity-token-0123456789';
        await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('<token>:').toString('base64'), identitytoken: stale } } }));
        await writeFile(join(dir, 'wrong.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${CANARY_USERNAME}:${CANARY_PASSWORD}-wrong`).toString('base64') } } }));
        for (const [env, which] of [
          [{ HOME: dir, DOCKER_CONFIG: dir }, `identity token from ${join(dir, 'config.json')}`],
          [{ HOME: join(dir, 'none'), REGISTRY_AUTH_FILE: join(dir, 'wrong.json') }, `basic (user "${CANARY_USERNAME}") from ${join(dir, 'wrong.json')}`],
        ] as const) {
          const client = remote.createRegistryClient({ keychain: auth.createKeychain({ env }) });
          try {
            await assert.rejects(client.head(`${registry.host}/team/refused:1`), (err: unknown) => {
              assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_AUTH', String(err));
              assert.match(err.message, /^fetching a token for 127\.0\.0\.1:\d+ \(scope repository:team\/refused:pull\): /);
              assert.ok(err.message.endsWith(`; the realm refused the credentials used (${which})`), err.message);
              assert.ok(!err.message.includes(stale));
              assertNoCanary(err);
              return true;
            });
          } finally {
            await client.close();
          }
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('re-requests once on insufficient scope and then fails with SLIPWAY_AUTH, never quoting the password', async () => {
      const issuer = registry.tokenIssuer!;
      issuer.addUser('reader', CANARY_PASSWORD, [{ repo: '*', actions: ['pull'] }]);
      const client = remote.createRegistryClient({ credentials: { [registry.host]: { username: 'reader', password: CANARY_PASSWORD } } });
      try {
        const start = issuer.requests.length;
        await assert.rejects(push(client, `${registry.host}/team/readonly:1`, makeImage([10])), (err: unknown) => {
          assert.ok(SlipwayError.is(err));
          assert.equal(err.code, 'SLIPWAY_AUTH');
          assert.match(err.message, /UNAUTHORIZED|DENIED/);
          assertNoCanary(err);
          return true;
        });
        const records = issuer.requests.slice(start);
        assert.ok(records.length >= 1 && records.length <= 3, `bounded token requests: ${records.length}`);
      } finally {
        await client.close();
      }
    });

    it('pulls anonymously where the issuer grants anonymous pull, and is refused push', async () => {
      const issuer = registry.tokenIssuer!;
      const image = await pushAsOwner(`${registry.host}/public/app:1`, makeImage([10]));
      issuer.setAnonymous([{ repo: 'public/app', actions: ['pull'] }]);
      const client = remote.createRegistryClient({ keychain: anonymous });
      try {
        assert.equal((await client.head(`${registry.host}/public/app:1`))?.digest, image.manifest.descriptor.digest);
        await assert.rejects(push(client, `${registry.host}/public/app:2`, makeImage([10])), { code: 'SLIPWAY_AUTH' });
      } finally {
        await client.close();
        issuer.setAnonymous([]);
      }
    });

    it('retries a failing token server', async () => {
      const issuer = registry.tokenIssuer!;
      const client = remote.createRegistryClient({
        credentials: { [registry.host]: { username: CANARY_USERNAME, password: CANARY_PASSWORD } },
        retry: { baseDelayMs: 5 },
      });
      try {
        issuer.failNext(503, 2);
        const start = issuer.requests.length;
        assert.ok(await client.head(`${registry.host}/team/app:1`));
        assert.deepEqual(issuer.requests.slice(start).map((r) => r.status), [503, 503, 200]);
      } finally {
        await client.close();
      }
    });

    it('shares a token exchange between callers, and one caller giving up does not fail the others', async () => {
      // Two operations on one client (a provider's) need the same scope at once: one exchange. The
      // first caller's abort, while that exchange is in flight, must end its own wait only.
      const issuer = registry.tokenIssuer!;
      const client = remote.createRegistryClient({ credentials: { [registry.host]: { username: CANARY_USERNAME, password: CANARY_PASSWORD } } });
      try {
        assert.equal(await client.hasTags(`${registry.host}/warm/up`), false, 'ping and credentials done');
        const start = issuer.requests.length;
        issuer.delayNext(1000);
        const leaving = new AbortController();
        const a = client.hasTags(`${registry.host}/shared/exchange`, { signal: leaving.signal });
        const b = client.hasTags(`${registry.host}/shared/exchange`);
        const deadline = Date.now() + 10_000;
        while (issuer.requests.length === start) {
          assert.ok(Date.now() < deadline, 'no token request');
          await sleep(10);
        }
        leaving.abort(new Error('caller A gave up'));
        assert.equal((await testing.errorOf(a)).code, 'SLIPWAY_ABORTED');
        assert.equal(await b, false, 'caller B got its answer with the shared token');
        assert.deepEqual(issuer.requests.slice(start).map((r) => r.status), [200], 'one exchange, completed');
      } finally {
        await client.close();
      }
    });
  });
}
