// SSL_CERT_FILE / SSL_CERT_DIR: the CAs they name are trusted on top of Node's roots, against a real
// HTTPS server whose certificate a throwaway CA (made by the openssl CLI) signed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError, SlipwayError } from '../errors.js';
import { certificateEnvironment, isCertificateFileName, notTrustedByDefault, readEnvironmentCertificates } from './certs.js';
import { Transport, type TransportOptions } from './transport.js';

const run = promisify(execFile);

const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A throwaway self-signed CA certificate at `path` (its key beside it, `.key` for `.pem`). */
async function makeCaCertificate(path: string, name: string): Promise<void> {
  await run('openssl', ['req', '-x509', ...ec, '-keyout', path.replace(/\.pem$/, '.key'), '-out', path, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

/** A throwaway CA (`ca.pem`) and a server certificate for 127.0.0.1 it signed (`server.crt`, `server.key`). */
async function makeCa(dir: string): Promise<{ caPath: string; cert: string; key: string }> {
  const caPath = join(dir, 'ca.pem');
  await makeCaCertificate(caPath, 'slipway ssl-env test CA');
  await run('openssl', ['req', '-new', ...ec, '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', caPath, '-CAkey', join(dir, 'ca.key'), '-CAcreateserial',
    '-out', join(dir, 'server.crt'), '-days', '2', '-extfile', join(dir, 'server.ext')]);
  return { caPath, cert: await readFile(join(dir, 'server.crt'), 'utf8'), key: await readFile(join(dir, 'server.key'), 'utf8') };
}

/** The transport made with `env` as the SSL_CERT_* variables of process.env (restored after it is made). */
function transportWith(env: { SSL_CERT_FILE?: string; SSL_CERT_DIR?: string }, options: TransportOptions = {}): Transport {
  const saved = { SSL_CERT_FILE: process.env.SSL_CERT_FILE, SSL_CERT_DIR: process.env.SSL_CERT_DIR };
  for (const name of ['SSL_CERT_FILE', 'SSL_CERT_DIR'] as const) {
    if (env[name] === undefined) delete process.env[name];
    else process.env[name] = env[name];
  }
  try {
    return new Transport({ certDirectories: [], proxy: false, retry: { attempts: 1 }, ...options });
  } finally {
    for (const name of ['SSL_CERT_FILE', 'SSL_CERT_DIR'] as const) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  }
}

describe('SSL_CERT_FILE and SSL_CERT_DIR', () => {
  let dir: string;
  let ca: { caPath: string; cert: string; key: string };
  let caPem: string;
  let server: Server;
  let registry: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-ssl-env-'));
    ca = await makeCa(dir);
    caPem = await readFile(ca.caPath, 'utf8');
    server = createServer({ cert: ca.cert, key: ca.key }, (req, res) => {
      res.setHeader('docker-distribution-api-version', 'registry/2.0');
      res.end(req.url === '/v2/' ? '{}' : 'no');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    registry = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const ping = async (transport: Transport): Promise<number> => {
    try {
      return (await transport.request({ method: 'GET', registry, path: '/v2/' })).status;
    } finally {
      await transport.close();
    }
  };

  it('reads the variables as Go does: empty counts as unset, SSL_CERT_DIR splits at colons', () => {
    assert.deepEqual(certificateEnvironment({}), { directories: [] });
    assert.deepEqual(certificateEnvironment({ SSL_CERT_FILE: '', SSL_CERT_DIR: '' }), { directories: [] });
    assert.deepEqual(certificateEnvironment({ SSL_CERT_FILE: '/a.pem', SSL_CERT_DIR: '/x::/y:' }), { file: '/a.pem', directories: ['/x', '/y'] });
    for (const name of ['ca.pem', 'ca.crt', 'CA.CER', '9d66eef0.0', '9d66eef0.12']) assert.ok(isCertificateFileName(name), name);
    for (const name of ['ca.key', 'notes.txt', '9d66eef0.r0', 'ca.pem.bak', '9d66eef.0']) assert.ok(!isCertificateFileName(name), name);
  });

  it('without them, the private CA is not trusted, and the error says SSL_CERT_FILE would do it', async () => {
    await assert.rejects(ping(transportWith({})), (err: unknown) => {
      assert.ok(SlipwayError.is(err));
      assert.equal(err.code, 'SLIPWAY_NETWORK');
      assert.match(err.message, /not trusted .*or point SSL_CERT_FILE at its CA/);
      return true;
    });
  });

  it('SSL_CERT_FILE adds its CA to the roots, as read when the transport was made', async () => {
    assert.equal(await ping(transportWith({ SSL_CERT_FILE: ca.caPath })), 200);
    const certs = await readEnvironmentCertificates(certificateEnvironment({ SSL_CERT_FILE: ca.caPath }));
    assert.deepEqual(certs, [caPem.trim()]);
  });

  it('SSL_CERT_DIR reads certificate files and hash names, passes over the rest, and trusts each CA once', async () => {
    const certDir = join(dir, 'certs');
    const empty = join(dir, 'empty');
    await mkdir(join(certDir, 'folder.pem'), { recursive: true });
    await mkdir(empty);
    await copyFile(ca.caPath, join(certDir, 'private.crt'));
    await symlink(join(certDir, 'private.crt'), join(certDir, 'a1b2c3d4.0'));
    await symlink(join(dir, 'nowhere.pem'), join(certDir, 'dangling.pem'));
    await writeFile(join(certDir, 'garbage.pem'), 'not a certificate\n-----BEGIN CERTIFICATE-----\nbm90IERFUg==\n-----END CERTIFICATE-----\n');
    await writeFile(join(certDir, 'public.cer'), `${rootCertificates[0]}\n`);
    await writeFile(join(certDir, 'ignored.txt'), rootCertificates[1]!);
    const env = { SSL_CERT_DIR: `${join(dir, 'absent')}:${empty}:${certDir}` };
    const certs = await readEnvironmentCertificates(certificateEnvironment(env));
    assert.deepEqual(certs, [caPem.trim(), rootCertificates[0]!.trim()]);
    // A bundled root needs no adding (a system bundle in SSL_CERT_FILE costs no TLS context of its own).
    assert.deepEqual(notTrustedByDefault(certs), [caPem.trim()]);
    assert.equal(await ping(transportWith(env)), 200);
  });

  it('the CAs also reach a registry with its own certs.d directory', async () => {
    const root = join(dir, 'certs.d');
    await mkdir(join(root, registry), { recursive: true });
    await writeFile(join(root, registry, 'other.crt'), rootCertificates[2]!);
    await assert.rejects(ping(transportWith({}, { certDirectories: [root] })), /not trusted .*add its CA to/);
    assert.equal(await ping(transportWith({ SSL_CERT_FILE: ca.caPath }, { certDirectories: [root] })), 200);
  });

  it('reads them only once the default trust refuses a certificate: a trusted or plain-HTTP registry never does', async () => {
    const missing = join(dir, 'never-read.pem');
    assert.equal(await ping(transportWith({ SSL_CERT_FILE: missing }, { caCertificates: [caPem] })), 200, 'trusted through caCertificates');
    const plain = createHttpServer((req, res) => {
      res.setHeader('docker-distribution-api-version', 'registry/2.0');
      res.end('{}');
    });
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    try {
      // Loopback tries HTTPS first: that attempt fails before any certificate is looked at.
      const transport = transportWith({ SSL_CERT_FILE: missing });
      try {
        assert.equal((await transport.request({ method: 'GET', registry: `127.0.0.1:${(plain.address() as AddressInfo).port}`, path: '/v2/' })).status, 200);
      } finally {
        await transport.close();
      }
    } finally {
      plain.close();
    }
  });

  it('an SSL_CERT_FILE that does not exist or holds no certificate fails the first request it is needed for, naming the variable', async () => {
    const missing = join(dir, 'missing.pem');
    const transport = transportWith({ SSL_CERT_FILE: missing });
    await assert.rejects(ping(transport), (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError);
      assert.equal(err.code, 'SLIPWAY_INVALID_ARG');
      assert.ok(err.message.includes(`SSL_CERT_FILE names ${missing}, which does not exist`), err.message);
      return true;
    });
    await writeFile(join(dir, 'empty.pem'), 'nothing here\n');
    await assert.rejects(readEnvironmentCertificates({ file: join(dir, 'empty.pem'), directories: [] }), /SSL_CERT_FILE names .*empty\.pem, which holds no PEM certificate/);
    await assert.rejects(readEnvironmentCertificates({ file: dir, directories: [] }), /SSL_CERT_FILE names .*, which is a directory/);
  });

  it('an SSL_CERT_FILE that does not hold the CA says so', async () => {
    const other = join(dir, 'other.pem');
    await writeFile(other, rootCertificates[3]!);
    await assert.rejects(ping(transportWith({ SSL_CERT_FILE: other })), (err: unknown) => {
      assert.ok(SlipwayError.is(err));
      assert.ok(err.message.includes(`SSL_CERT_FILE (${other}) did not hold its CA`), err.message);
      return true;
    });
  });

  it('NODE_EXTRA_CA_CERTS stays trusted beside the CAs SSL_CERT_FILE adds (Node 20 drops it from an added-to context)', async () => {
    const other = join(dir, 'other-ca.pem');
    await makeCaCertificate(other, 'slipway ssl-env unrelated CA');
    const transportModule = new URL('./transport.js', import.meta.url).href;
    const script = `const { Transport } = await import(${JSON.stringify(transportModule)});
      const t = new Transport({ certDirectories: [], proxy: false, retry: { attempts: 1 } });
      try { console.log((await t.request({ method: 'GET', registry: ${JSON.stringify(registry)}, path: '/v2/' })).status); } finally { await t.close(); }`;
    const env = { PATH: process.env.PATH, HOME: dir, NODE_EXTRA_CA_CERTS: ca.caPath, SSL_CERT_FILE: other };
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { env });
    assert.equal(stdout.trim(), '200');
  });
});
