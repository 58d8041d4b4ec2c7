import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { SlipwayError } from '../errors.js';
import { connect, inspectImageId } from './engine-api.js';

describe('connect: Docker host strings', () => {
  const canary = 'CanaryDockerHostPw-3k9v';

  // DOCKER_HOST may carry userinfo (`ssh://user:password@host`, a proxy's login in a tcp:// URL):
  // a host we refuse is quoted back, without it, and the URL parser's error (which quotes the
  // input) is not kept as the cause.
  for (const [what, host, shown] of [
    ['an ssh:// host', `ssh://deploy:${canary}@build.example.com`, /unsupported Docker host "ssh:\/\/deploy:<redacted>@build\.example\.com"/],
    ['a tcp:// host that is no URL', `tcp://deploy:${canary}@[::1`, /invalid Docker host "tcp:\/\/deploy:<redacted>@\[::1"/],
    ['an npipe:// host', `npipe://deploy:${canary}@x/pipe/docker_engine`, /unsupported Docker host "npipe:\/\/deploy:<redacted>@x\/pipe\/docker_engine"/],
  ] as const) {
    it(`refuses ${what} without quoting its password`, async () => {
      await assert.rejects(connect(host), (err: unknown) => {
        assert.ok(SlipwayError.is(err), String(err));
        assert.equal(err.code, 'SLIPWAY_INVALID_ARG');
        assert.match(err.message, shown);
        for (let e: unknown = err; e instanceof Error; e = e.cause) {
          assert.ok(!e.message.includes(canary), `the password is in: ${e.message}`);
          assert.ok(!JSON.stringify(e).includes(canary), 'the password is in an error property');
        }
        return true;
      });
    });
  }

  it('names a tcp:// daemon without its userinfo', async () => {
    const connection = await connect(`tcp://deploy:${canary}@127.0.0.1:2375`);
    try {
      assert.equal(connection.shown, 'tcp://127.0.0.1:2375');
    } finally {
      await connection.destroy();
    }
  });
});

describe('send: the answer must be a Docker Engine\'s', () => {
  it('a DOCKER_HOST naming a web server or a registry (no Api-Version header) is said to be no Engine, not "image not found"', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('404 page not found');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const host = `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const connection = await connect(host);
    try {
      await assert.rejects(inspectImageId(connection, 'app:1'), (err: unknown) => {
        assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_NETWORK', String(err));
        assert.equal(err.message, `${host} does not answer as a Docker Engine does (HTTP 404 to GET /images/app%3A1/json, with no Api-Version header): check DOCKER_HOST`);
        return true;
      });
    } finally {
      await connection.destroy();
      server.close();
    }
  });
});
