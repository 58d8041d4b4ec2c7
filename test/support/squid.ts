/**
 * A real forward proxy for tests: Debian's squid, on a free loopback port, with its own config.
 *
 * - `hosts`: names only the proxy can resolve (squid's `hosts_file`). A reference to such a name
 *   works only if the request really went through the proxy: the client itself cannot resolve it.
 * - `users`: Basic proxy authentication (squid's `basic_ncsa_auth` against an htpasswd file);
 *   without users, anyone may use the proxy.
 * - CONNECT is allowed to any port (squid's default config allows 443 only; registries in tests
 *   listen on random ports), plain HTTP requests in absolute form too.
 *
 * squid, started as root, drops to its `proxy` user, so its directory is world-writable.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createConnection } from 'node:net';
import { freePort, trackForExit, untrackForExit } from './registry.js';
import { runChecked } from './tools.js';

export const SQUID_BIN = '/usr/sbin/squid';

export interface StartSquidOptions {
  /** Host name → IP, resolvable by the proxy only. */
  hosts?: Record<string, string>;
  /** Proxy users (Basic); none means no authentication. */
  users?: { username: string; password: string }[];
}

export interface Squid {
  /** `http://127.0.0.1:PORT` (no credentials). */
  url: string;
  port: number;
  /** `http://user:password@127.0.0.1:PORT` for the first user. */
  urlWithCredentials(user?: { username: string; password: string }): string;
  /** access.log lines so far (squid writes a line when a request or tunnel ends). */
  accessLog(): Promise<string[]>;
  /** Stops squid and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startSquid(options: StartSquidOptions = {}): Promise<Squid> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-squid-'));
  await chmod(dir, 0o777);
  const port = await freePort();
  const hostsPath = join(dir, 'hosts');
  const passwdPath = join(dir, 'passwd');
  const logPath = join(dir, 'access.log');
  await writeFile(hostsPath, Object.entries(options.hosts ?? {}).map(([name, ip]) => `${ip} ${name}\n`).join(''));
  const users = options.users ?? [];
  if (users.length > 0) {
    // MD5 (apr1) crypt: what basic_ncsa_auth reads, made by openssl rather than a hand-rolled hash.
    const lines: string[] = [];
    for (const { username, password } of users) {
      const { stdout } = await runChecked('openssl', ['passwd', '-apr1', '-stdin'], { input: password });
      lines.push(`${username}:${stdout.trim()}\n`);
    }
    await writeFile(passwdPath, lines.join(''));
  }
  const access =
    users.length > 0
      ? [`auth_param basic program /usr/lib/squid/basic_ncsa_auth ${passwdPath}`, 'auth_param basic realm slipway-test-proxy', 'acl users proxy_auth REQUIRED', 'http_access allow users', 'http_access deny all']
      : ['http_access allow all'];
  const config = [
    `http_port 127.0.0.1:${port}`,
    `pid_filename ${join(dir, 'squid.pid')}`,
    `access_log stdio:${logPath}`,
    `cache_log ${join(dir, 'cache.log')}`,
    'cache_store_log none',
    'cache deny all',
    `hosts_file ${hostsPath}`,
    `coredump_dir ${dir}`,
    'visible_hostname slipway-test-proxy',
    'pinger_enable off',
    'shutdown_lifetime 0 seconds',
    // Blobs are big: no body size limits.
    'request_body_max_size 0',
    'reply_body_max_size none',
    ...access,
  ].join('\n');
  const configPath = join(dir, 'squid.conf');
  await writeFile(configPath, `${config}\n`);
  await chmod(configPath, 0o644);

  // squid writes its own messages (FATAL ones too) to cache.log; no pipes, so it never holds the test
  // process open, and the registry harness's exit hook kills it if a test forgets stop().
  const child: ChildProcess = spawn(SQUID_BIN, ['-N', '-f', configPath], { stdio: 'ignore' });
  child.unref();
  let exited = false;
  trackForExit(dir, () => (exited ? undefined : child));
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));

  const deadline = Date.now() + 20_000;
  while (!(await listening(port))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      const cacheLog = await readFile(join(dir, 'cache.log'), 'utf8').catch(() => '');
      await rm(dir, { recursive: true, force: true });
      untrackForExit(dir);
      throw new Error(`squid did not start on 127.0.0.1:${port}:\n${cacheLog.slice(-3000)}`);
    }
    await sleep(50);
  }

  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    urlWithCredentials(user = users[0]) {
      if (!user) throw new Error('this squid has no users');
      return `http://${encodeURIComponent(user.username)}:${encodeURIComponent(user.password)}@127.0.0.1:${port}`;
    },
    async accessLog() {
      // squid writes a tunnel's line when the tunnel closes: give it a moment after the client closed.
      await sleep(300);
      return (await readFile(logPath, 'utf8').catch(() => '')).split('\n').filter((line) => line.trim() !== '');
    },
    stop() {
      stopped ??= (async () => {
        if (!exited) {
          child.kill('SIGTERM');
          await Promise.race([exit, sleep(5000)]);
          if (!exited) child.kill('SIGKILL');
          await exit;
        }
        untrackForExit(dir);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
