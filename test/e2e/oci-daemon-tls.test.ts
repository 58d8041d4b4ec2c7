// The Docker daemon source over TLS tcp, as `DOCKER_HOST=tcp://… DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=…`
// configures the docker CLI. The Engine here listens only on its unix socket, so a TLS terminator
// (node:tls, client certificate required, verified against a test CA made with openssl) forwards
// each connection to that socket: every byte still comes from the real Engine API.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as connectUnix, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:tls';
import { copyImage } from '@slipway/engine';
import { daemon, SlipwayError } from '@slipway/oci';
import { silentServer } from '@slipway/oci/testing';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { DOCKER_CLI, hasTool, run, runChecked, skipUnlessDocker } from '../support/tools.js';
import { sha256Text } from './oci-archive-fixtures.js';
import { skopeoRaw } from './copy-fixtures.js';

const DOCKER_SOCKET = '/var/run/docker.sock';

/** A CA, a server certificate for 127.0.0.1 and a client certificate, laid out as DOCKER_CERT_PATH expects. */
async function makeCertificates(dir: string): Promise<void> {
  const ssl = (args: string[]) => runChecked('openssl', args, { cwd: dir });
  await ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=slipway test CA']);
  await writeFile(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  await ssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server-cert.pem', '-days', '2', '-extfile', 'server.ext']);
  await writeFile(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'client.csr', '-subj', '/CN=slipway client']);
  await ssl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'cert.pem', '-days', '2', '-extfile', 'client.ext']);
}

/** Sets environment variables for one call, restoring them afterwards. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('docker-daemon: over TLS tcp (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)', () => {
  let certs: string;
  let noClientCert: string;
  let terminator: Server | undefined;
  let host: string;
  let registry: TestRegistry | undefined;
  let handshakes = 0;
  const image = `slipway-e2e-daemon-tls-${process.pid}:1`;
  let usable = false;

  before(async () => {
    certs = await mkdtemp(join(tmpdir(), 'slipway-docker-certs-'));
    noClientCert = await mkdtemp(join(tmpdir(), 'slipway-docker-ca-only-'));
    if (!hasTool('openssl')) return;
    await makeCertificates(certs);
    await writeFile(join(noClientCert, 'ca.pem'), await readFile(join(certs, 'ca.pem')));
    terminator = createServer(
      {
        key: await readFile(join(certs, 'server-key.pem')),
        cert: await readFile(join(certs, 'server-cert.pem')),
        ca: await readFile(join(certs, 'ca.pem')),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        handshakes++;
        const engine = connectUnix(DOCKER_SOCKET);
        socket.pipe(engine).pipe(socket);
        socket.on('error', () => engine.destroy());
        engine.on('error', () => socket.destroy());
      },
    );
    terminator.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => terminator!.listen(0, '127.0.0.1', resolve));
    host = `tcp://127.0.0.1:${(terminator.address() as AddressInfo).port}`;
    usable = true;
  });
  after(async () => {
    await new Promise<void>((resolve) => (terminator ? terminator.close(() => resolve()) : resolve()));
    await registry?.stop();
    if (hasTool(DOCKER_CLI)) await run(DOCKER_CLI, ['rmi', '-f', image]);
    await rm(certs, { recursive: true, force: true });
    await rm(noClientCert, { recursive: true, force: true });
  });

  it('copies an image from the Engine through verified TLS with a client certificate', async (t) => {
    if (!(await skipUnlessDocker(t, 'docker-daemon: over TLS'))) return;
    if (!usable) return t.skip('SKIPPED: openssl is not installed (apt-get install openssl): cannot make the test CA');
    const dir = await mkdtemp(join(tmpdir(), 'slipway-daemon-tls-'));
    try {
      await writeFile(join(dir, 'hello'), 'hello over TLS\n');
      await runChecked('tar', ['-C', dir, '-cf', join(dir, 'rootfs.tar'), 'hello']);
      await runChecked(DOCKER_CLI, ['import', '--change', 'ENV SLIPWAY=tls', join(dir, 'rootfs.tar'), image]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const id = (await runChecked(DOCKER_CLI, ['inspect', '-f', '{{.Id}}', image])).stdout.trim();
    registry = await startRegistry();
    const before = handshakes;
    const result = await withEnv({ DOCKER_HOST: host, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs }, () =>
      copyImage({ source: `docker-daemon:${image}`, destination: `${registry!.host}/daemon-tls/app:1` }),
    );
    assert.ok(handshakes > before, 'the Engine was reached through the TLS terminator');
    const raw = await skopeoRaw(`${registry.host}/daemon-tls/app:1`);
    assert.equal((JSON.parse(raw) as { config: { digest: string } }).config.digest, id);
    assert.equal(sha256Text(raw), result.digest);
  });

  it('without a client certificate the TLS daemon refuses us, and the error says where', async (t) => {
    if (!(await skipUnlessDocker(t, 'docker-daemon: over TLS'))) return;
    if (!usable) return t.skip('SKIPPED: openssl is not installed (apt-get install openssl): cannot make the test CA');
    await withEnv({ DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: noClientCert }, async () => {
      await assert.rejects(daemon.open(image, { host }), (e: unknown) => {
        assert.ok(SlipwayError.is(e), String(e));
        assert.equal(e.code, 'SLIPWAY_NETWORK');
        assert.match(e.message, new RegExp(`https://127\\.0\\.0\\.1:\\d+`));
        return true;
      });
    });
  });

  it('cancelled during a TLS handshake the daemon never answers, it lets the connection go at once', async () => {
    // A tcp:// host that accepts and then says nothing (a wrong port, a hung proxy). The abort used to
    // reject at once while the socket stayed in its handshake until undici's 10 s connect timeout,
    // keeping the CLI's process alive that long after Ctrl-C.
    const silent = await silentServer();
    const accepted = silent.sockets;
    try {
      const controller = new AbortController();
      await withEnv({ DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: noClientCert }, async () => {
        const opening = daemon.open('busybox:latest', { host: `tcp://${silent.host}`, signal: controller.signal });
        let settled = false;
        opening.then(
          () => (settled = true),
          () => (settled = true),
        );
        // Until the daemon's connection is in; an open that failed before it got there fails below.
        while (accepted.length === 0 && !settled) await new Promise((r) => setTimeout(r, 10));
        controller.abort();
        await assert.rejects(opening, (e: unknown) => SlipwayError.is(e) && e.code === 'SLIPWAY_ABORTED');
      });
      const closed = Promise.all(accepted.map((socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve()))))).then(() => true);
      const gone = await Promise.race([closed, new Promise((r) => setTimeout(() => r(false), 2000))]);
      assert.equal(gone, true, 'the connection being made to the daemon outlived the cancelled call');
    } finally {
      await silent.close();
    }
  });

  it('a daemon certificate from another CA is not trusted', async (t) => {
    if (!(await skipUnlessDocker(t, 'docker-daemon: over TLS'))) return;
    if (!usable) return t.skip('SKIPPED: openssl is not installed (apt-get install openssl): cannot make the test CA');
    const other = await mkdtemp(join(tmpdir(), 'slipway-docker-other-ca-'));
    try {
      await runChecked('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=another CA'], { cwd: other });
      for (const f of ['cert.pem', 'key.pem']) await writeFile(join(other, f), await readFile(join(certs, f)));
      await withEnv({ DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: other }, async () => {
        await assert.rejects(daemon.open(image, { host }), (e: unknown) => SlipwayError.is(e) && e.code === 'SLIPWAY_NETWORK');
      });
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
