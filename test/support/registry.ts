// Starts the real CNCF registry (distribution 2.8, `/usr/bin/docker-registry serve config.yml`) on a
// free loopback port with its own temp dir for storage, config, credentials and logs.
//
//   const r = await startRegistry({ auth: 'htpasswd' });
//   t.after(() => r.stop());
//   // r.host = '127.0.0.1:PORT', r.username / r.password
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTokenIssuer } from './token-issuer.js';
import type { Grant, TokenIssuer } from './token-issuer.js';
import { REGISTRY_BIN, REGISTRY_V3_TOOL, hasTool, runChecked, toolPath } from './tools.js';

/**
 * A fixed, recognisable password for security tests: start a registry with
 * `{ password: CANARY_PASSWORD }`, provoke failures, then assert this string appears in no error
 * message, log line or JSON output.
 */
export const CANARY_PASSWORD = 'slipway-CANARY-pw-7f3a9c1e';
/** Same idea for tokens/usernames, if a test needs a second canary. */
export const CANARY_USERNAME = 'slipway-canary-user';

export function canaryCredentials(): { username: string; password: string } {
  return { username: CANARY_USERNAME, password: CANARY_PASSWORD };
}

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface StartRegistryOptions {
  /**
   * Which build of the CNCF registry: `debian` (docker-registry 2.8 from Debian, the default) or `v3`
   * (distribution v3.0.0 from the Go module proxy: pages tag lists, Go with SHA-NI). Tests of `v3`
   * check {@link registryV3Path} first and skip loudly without it.
   */
  implementation?: 'debian' | 'v3';
  /** Default 'none' (open registry). */
  auth?: RegistryAuth;
  /** `storage.delete.enabled` (manifest/blob DELETE). Default true. */
  deleteEnabled?: boolean;
  /** Serve HTTPS with a certificate signed by a throwaway CA (`caPath`). Default false. */
  tls?: boolean;
  /** Extra DNS names in the server certificate (tls only), e.g. a name only a test proxy resolves. */
  tlsNames?: readonly string[];
  /**
   * Mutual TLS (tls only): the registry requires a client certificate signed by a second throwaway
   * CA (`http.tls.clientcas`); the test gets one in `clientCertPath` / `clientKeyPath`.
   */
  clientCertificates?: boolean;
  /**
   * Token mode with tls: the token issuer serves HTTPS with the registry's certificate, on its own
   * port (docker_auth's layout): a realm on another host:port that only the registry's CA verifies.
   */
  tokenTls?: boolean;
  /**
   * Run as a pull-through cache of this upstream registry URL (distribution's `proxy.remoteurl`):
   * read-only, it fetches what it is asked for from the upstream, the way a Docker Hub mirror does.
   */
  proxyRemoteUrl?: string;
  /**
   * Accept manifests whose layers name URLs (foreign, non-distributable layers), as Docker Hub does
   * for Windows base images: `validation.manifests.urls.allow`. Without it distribution refuses them.
   */
  allowManifestUrls?: boolean;
  /** Credentials for htpasswd/token mode; random by default. */
  username?: string;
  password?: string;
  /** Token mode: grants of the main user (default: whatever it asks for). */
  grants?: Grant[];
  /** Token mode: what anonymous callers get (default nothing). */
  anonymous?: Grant[];
  /** Token mode: token lifetime in seconds (default 300). */
  tokenTtlSeconds?: number;
  /** Registry log level. Default 'info'. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` — use as the registry part of references. */
  host: string;
  port: number;
  /** `http://127.0.0.1:PORT` or `https://…` when tls. */
  url: string;
  auth: RegistryAuth;
  /** Credentials valid in htpasswd/token mode (also set, but unused, in open mode). */
  username: string;
  password: string;
  /** Temp dir holding config.yml, storage/, registry.log, htpasswd, certs. Removed by stop(). */
  dataDir: string;
  /** Blob/manifest storage root (inside dataDir). */
  storageDir: string;
  /** Registry stdout/stderr (kept across restarts, appended). */
  logPath: string;
  /** PEM of the CA that signed the server certificate (tls only). */
  caPath?: string;
  /** A client certificate and key the registry accepts (clientCertificates only). */
  clientCertPath?: string;
  clientKeyPath?: string;
  /** The token server (token mode only); stopped together with the registry. */
  tokenIssuer?: TokenIssuer;
  /** `Basic …` header value for username:password. */
  basicAuth(): string;
  /** Registry log so far (for assertions or failure messages). */
  log(): Promise<string>;
  /** Whether the registry process is running. */
  readonly running: boolean;
  /** SIGTERM the registry and wait for it, keep storage; then restart() brings it back on the same port. */
  halt(): Promise<void>;
  /** (Re)start on the same port with the same storage (after halt()/kill(), or stops it first if running). */
  restart(): Promise<void>;
  /** SIGKILL the registry (simulates a crash mid-operation). Storage stays; restart() works afterwards. */
  kill(): Promise<void>;
  /** Stop the registry (and token issuer) and delete everything. Idempotent. */
  stop(): Promise<void>;
}

/** Picks a port the kernel considers free on 127.0.0.1 (bind :0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function randomId(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

/**
 * A throwaway CA (`<name>-ca.crt`, or `ca.crt` for the server's) and one certificate it signed
 * (`<name>.<suffix>` + `<name>.key`) with the given extensions, all P-256, valid two days.
 */
async function makeSignedPair(dir: string, o: { caFile: string; caName: string; name: string; certSuffix: string; subject: string; extensions: string }): Promise<{ caPath: string; certPath: string; keyPath: string }> {
  const caPath = join(dir, o.caFile);
  const caKey = caPath.replace(/\.crt$/, '.key');
  const keyPath = join(dir, `${o.name}.key`);
  const certPath = join(dir, `${o.name}.${o.certSuffix}`);
  const csr = join(dir, `${o.name}.csr`);
  const ext = join(dir, `${o.name}.ext`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await runChecked('openssl', ['req', '-x509', ...ec, '-keyout', caKey, '-out', caPath, '-days', '2',
    '-subj', `/CN=${o.caName}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await runChecked('openssl', ['req', '-new', ...ec, '-keyout', keyPath, '-out', csr, '-subj', `/CN=${o.subject}`]);
  await writeFile(ext, o.extensions);
  await runChecked('openssl', ['x509', '-req', '-in', csr, '-CA', caPath, '-CAkey', caKey, '-CAcreateserial',
    '-out', certPath, '-days', '2', '-extfile', ext]);
  return { caPath, certPath, keyPath };
}

function makeTls(dir: string, names: readonly string[] = []): Promise<{ caPath: string; certPath: string; keyPath: string }> {
  const altNames = ['IP:127.0.0.1', 'DNS:localhost', ...names.map((name) => `DNS:${name}`)].join(',');
  return makeSignedPair(dir, { caFile: 'ca.crt', caName: 'slipway test CA', name: 'server', certSuffix: 'crt', subject: '127.0.0.1',
    extensions: `subjectAltName=${altNames}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n` });
}

function missingTls(): never {
  throw new Error('tokenTls needs tls: true');
}

/** A second CA, for client certificates, and one client certificate it signed. */
async function makeClientTls(dir: string): Promise<{ clientCaPath: string; clientCertPath: string; clientKeyPath: string }> {
  const pair = await makeSignedPair(dir, { caFile: 'client-ca.crt', caName: 'slipway test client CA', name: 'client', certSuffix: 'cert', subject: 'slipway test client',
    extensions: 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' });
  return { clientCaPath: pair.caPath, clientCertPath: pair.certPath, clientKeyPath: pair.keyPath };
}

/** Any HTTP answer from GET /v2/ (200 open, 401 with auth) means the registry is up. */
function probe(url: string, caPem: string | undefined, client?: { cert: string; key: string }): Promise<number | undefined> {
  return new Promise((resolve) => {
    const u = new URL('/v2/', url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method: 'GET', timeout: 1000, ca: caPem, agent: false, ...client }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => { req.destroy(); resolve(undefined); });
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

function yamlString(s: string): string {
  return JSON.stringify(s); // JSON strings are valid YAML double-quoted scalars
}

/**
 * Safety net for tests that forget stop() or die mid-way: registry processes are unref'd (they do
 * not keep the test process alive) and are SIGKILLed, their temp dirs removed, when it exits
 * (normally or by SIGINT/SIGTERM). The token issuer's dir is removed the same way.
 * SLIPWAY_KEEP_REGISTRY=1 keeps the dirs (config, storage, registry.log) for a post-mortem.
 */
const live = new Map<string, () => ChildProcess | undefined>();
let exitHookInstalled = false;
export function trackForExit(dataDir: string, current: () => ChildProcess | undefined): void {
  live.set(dataDir, current);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const cleanup = (): void => {
    for (const [dir, proc] of live) {
      proc()?.kill('SIGKILL');
      if (process.env.SLIPWAY_KEEP_REGISTRY !== '1') rmSync(dir, { recursive: true, force: true });
    }
    live.clear();
  };
  process.once('exit', cleanup);
  // 'exit' does not run when a signal ends the process (test-runner timeout, Ctrl-C).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanup();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
  }
}

/** Ends the safety net for a process its owner stopped (see trackForExit). */
export function untrackForExit(dataDir: string): void {
  live.delete(dataDir);
}

/** The distribution v3 binary, or undefined when install-go-tools.sh could not build it. */
export function registryV3Path(): string | undefined {
  return toolPath(REGISTRY_V3_TOOL);
}

/**
 * Whether process `pid` holds a listening TCP socket on 127.0.0.1:`port`, from /proc: the registry
 * says "listening on" only at log level info, and a quieter registry must still be told apart from
 * another test's server that took the port between freePort() and the bind.
 */
async function holdsListeningPort(pid: number, port: number): Promise<boolean> {
  const table = await readFile('/proc/net/tcp', 'utf8').catch(() => '');
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // fields: sl, local_address, rem_address, st (0A = LISTEN), …, inode at index 9
    if (fields[1] === local && fields[3] === '0A' && fields[9]) inodes.add(fields[9]);
  }
  if (inodes.size === 0) return false;
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match && inodes.has(match[1]!)) return true;
  }
  return false;
}

export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const binary = options.implementation === 'v3' ? registryV3Path() : REGISTRY_BIN;
  if (binary === undefined) throw new Error(`${REGISTRY_V3_TOOL} not found: scripts/install-go-tools.sh distribution builds it`);
  if (!hasTool(binary)) {
    throw new Error(`${REGISTRY_BIN} not found: apt-get install docker-registry (scripts/ci-setup.sh does it)`);
  }
  const auth = options.auth ?? 'none';
  const dataDir = await mkdtemp(join(tmpdir(), 'slipway-registry-'));
  const storageDir = join(dataDir, 'storage');
  const logPath = join(dataDir, 'registry.log');
  const configPath = join(dataDir, 'config.yml');
  await mkdir(storageDir);
  const username = options.username ?? `user-${randomId(4)}`;
  const password = options.password ?? `pw-${randomId(12)}`;
  let tokenIssuer: TokenIssuer | undefined;
  let caPath: string | undefined;
  let clientTls: { clientCertPath: string; clientKeyPath: string } | undefined;
  let clientPem: { cert: string; key: string } | undefined;
  let caPem: string | undefined;

  try {
    let serverPem: { cert: string; key: string } | undefined;
    let tlsYaml = '';
    if (options.tls === true) {
      const tls = await makeTls(dataDir, options.tlsNames);
      serverPem = { cert: await readFile(tls.certPath, 'utf8'), key: await readFile(tls.keyPath, 'utf8') };
      caPath = tls.caPath;
      caPem = await readFile(caPath, 'utf8');
      tlsYaml = `  tls:\n    certificate: ${yamlString(tls.certPath)}\n    key: ${yamlString(tls.keyPath)}\n`;
      if (options.clientCertificates === true) {
        const client = await makeClientTls(dataDir);
        clientTls = client;
        clientPem = { cert: await readFile(client.clientCertPath, 'utf8'), key: await readFile(client.clientKeyPath, 'utf8') };
        tlsYaml += `    clientcas:\n      - ${yamlString(client.clientCaPath)}\n`;
      }
    }
    let authYaml = '';
    if (auth === 'htpasswd') {
      if (!hasTool('htpasswd')) throw new Error('htpasswd not found: apt-get install apache2-utils');
      // -B: bcrypt, the only hash distribution's htpasswd backend accepts. -i reads the password from
      // stdin so it never shows up in a process listing.
      const r = await runChecked('htpasswd', ['-niB', username], { input: `${password}\n` });
      const htpasswdPath = join(dataDir, 'htpasswd');
      await writeFile(htpasswdPath, r.stdout.trim() + '\n', { mode: 0o600 });
      authYaml = `auth:\n  htpasswd:\n    realm: slipway-test\n    path: ${yamlString(htpasswdPath)}\n`;
    } else if (auth === 'token') {
      tokenIssuer = await startTokenIssuer({
        users: { [username]: { password, grants: options.grants } },
        anonymous: options.anonymous,
        ttlSeconds: options.tokenTtlSeconds,
        ...(options.tokenTls === true ? { tls: serverPem ?? missingTls() } : {}),
      });
      authYaml = `auth:\n  token:\n    realm: ${yamlString(tokenIssuer.realm)}\n    service: ${yamlString(tokenIssuer.service)}\n` +
        `    issuer: ${yamlString(tokenIssuer.issuer)}\n    rootcertbundle: ${yamlString(tokenIssuer.certPath)}\n`;
    }

    const scheme = options.tls === true ? 'https' : 'http';

    const randomSecret = randomId(16);
    const writeConfig = async (port: number): Promise<void> => {
      const yaml = [
        'version: 0.1',
        'log:',
        `  level: ${options.logLevel ?? 'info'}`,
        '  formatter: text',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${yamlString(storageDir)}`,
        '  delete:',
        `    enabled: ${options.deleteEnabled ?? true}`,
        // Upload purging runs on a timer and would delete in-progress uploads of slow tests.
        '  maintenance:',
        '    uploadpurging:',
        '      enabled: false',
        'http:',
        `  addr: 127.0.0.1:${port}`,
        // A fixed secret so upload state tokens stay valid across restart() (the _state parameter is HMAC'd with it).
        `  secret: ${yamlString(randomSecret)}`,
        '  headers:',
        '    X-Content-Type-Options: [nosniff]',
        tlsYaml.trimEnd(),
        authYaml.trimEnd(),
        options.proxyRemoteUrl === undefined ? '' : `proxy:\n  remoteurl: ${yamlString(options.proxyRemoteUrl)}`,
        options.allowManifestUrls === true ? "validation:\n  manifests:\n    urls:\n      allow:\n        - '^https?://'" : '',
        '',
      ].filter((l, i, a) => l !== '' || i === a.length - 1).join('\n');
      await writeFile(configPath, yaml);
    };
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    let port = 0;

    const launch = async (): Promise<'ok' | 'port-in-use'> => {
      const fd = openSync(logPath, 'a');
      const logStart = fstatSync(fd).size; // the log is appended across restarts: read only this run's part
      const env: Record<string, string> = {};
      // REGISTRY_* variables override config.yml keys; never inherit them from the caller.
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_') && v !== undefined) env[k] = v;
      const proc = spawn(binary, ['serve', configPath], { cwd: dataDir, env, stdio: ['ignore', fd, fd], detached: false });
      closeSync(fd);
      child = proc;
      let done = false;
      exited = new Promise((resolve) => proc.once('exit', () => { done = true; resolve(); }));
      proc.once('error', () => { done = true; });
      proc.unref();
      const url = `${scheme}://127.0.0.1:${port}`;
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        if (done) {
          const log = (await readFile(logPath).catch(() => Buffer.alloc(0))).subarray(logStart).toString('utf8');
          if (/address already in use/.test(log)) return 'port-in-use';
          throw new Error(`registry exited during startup; log ${logPath}:\n${log.slice(-3000)}`);
        }
        // Only trust the probe once OUR process says it holds the port: between freePort() and the
        // bind, another test's server could take the port and answer the probe in our stead.
        const log = (await readFile(logPath).catch(() => Buffer.alloc(0))).subarray(logStart).toString('utf8');
        const ours = log.includes(`listening on 127.0.0.1:${port}`) || (proc.pid !== undefined && await holdsListeningPort(proc.pid, port));
        if (ours && !done && await probe(url, caPem, clientPem) !== undefined) return 'ok';
        await sleep(50);
      }
      proc.kill('SIGKILL');
      throw new Error(`registry did not answer GET /v2/ within 20 s on ${url}; log ${logPath}`);
    };

    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      await writeConfig(port);
      const r = await launch();
      if (r === 'ok') break;
      if (attempt >= 5) throw new Error('registry: could not find a free port after 6 attempts');
    }

    const terminate = async (sig: NodeJS.Signals): Promise<void> => {
      const proc = child;
      if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) { child = undefined; return; }
      proc.kill(sig);
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
      child = undefined;
    };

    let stopped = false;
    trackForExit(dataDir, () => child);
    const url = `${scheme}://127.0.0.1:${port}`;
    const reg: TestRegistry = {
      host: `127.0.0.1:${port}`,
      port,
      url,
      auth,
      username,
      password,
      dataDir,
      storageDir,
      logPath,
      caPath,
      ...(clientTls ?? {}),
      tokenIssuer,
      basicAuth: () => `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
      log: () => readFile(logPath, 'utf8'),
      get running() { return child !== undefined && child.exitCode === null && child.signalCode === null; },
      halt: () => terminate('SIGTERM'),
      async restart() {
        if (stopped) throw new Error('registry was stopped (stop() deletes it); use halt() to keep storage');
        await terminate('SIGTERM');
        // Same port on purpose: clients keep their references. A TIME_WAIT socket does not block a
        // new listener (Go sets SO_REUSEADDR), so one attempt is enough unless someone took the port.
        const r = await launch();
        if (r !== 'ok') throw new Error(`registry: port ${port} was taken while the registry was down`);
      },
      kill: () => terminate('SIGKILL'),
      async stop() {
        if (stopped) return;
        stopped = true;
        live.delete(dataDir);
        await terminate('SIGTERM');
        await tokenIssuer?.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
    return reg;
  } catch (err) {
    await tokenIssuer?.stop();
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}
