/**
 * Docker credential helpers: `docker-credential-<name> get` with the server URL on stdin and
 * `{"ServerURL","Username","Secret"}` on stdout. The helper is killed when the caller aborts.
 * @see https://github.com/docker/docker-credential-helpers#development
 * @module
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { AbortedError, SlipwayError } from '../errors.js';
import type { Credentials } from './credentials.js';

export interface HelperOptions {
  signal?: AbortSignal;
  /** @defaultValue 30000 */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

const maxOutput = 64 * 1024;

/** Runs the helper; undefined when it has no credentials for the server. */
export async function runCredentialHelper(helper: string, serverUrl: string, options: HelperOptions = {}): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) throw new SlipwayError('SLIPWAY_AUTH', `invalid credential helper name ${JSON.stringify(helper)}`);
  const program = `docker-credential-${helper}`;
  const { signal } = options;
  if (signal?.aborted) throw new AbortedError(`running ${program}: aborted`, { cause: signal.reason });
  const timeoutMs = options.timeoutMs ?? 30_000;
  const env = options.env ?? process.env;
  const path = await lookPath(program, env);
  if (path === undefined) {
    throw new SlipwayError(
      'SLIPWAY_AUTH',
      `credential helper ${program} is configured but not on PATH (relative PATH entries, such as "." or an empty one, are not searched)`,
      { cause: Object.assign(new Error(`${program}: not found`), { code: 'ENOENT' }) },
    );
  }
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    // Its own process group, killed whole: a helper that is a shell script waiting on a child would
    // otherwise outlive its timeout, the child holding the pipes open (and 'close' with them).
    const child = spawn(path, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], env, detached: true });
    let killedBy: string | undefined;
    const killGroup = (why: string): void => {
      killedBy ??= why;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL'); // the group is gone already, or was never made
      }
    };
    const timer = setTimeout(() => killGroup(`timed out after ${timeoutMs} ms`), timeoutMs);
    const onAbort = (): void => killGroup('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (out.length < maxOutput) out += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (err.length < maxOutput) err += chunk;
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      settle();
      if (signal?.aborted) reject(new AbortedError(`running ${program}: aborted`, { cause: signal.reason }));
      else if (error.code === 'ENOENT') reject(new SlipwayError('SLIPWAY_AUTH', `credential helper ${program} is configured but not on PATH`, { cause: error }));
      else reject(new SlipwayError('SLIPWAY_AUTH', `running credential helper ${program}: ${error.message}`, { cause: error }));
    });
    let done = false;
    const finish = (exitCode: number | null): void => {
      if (done) return;
      done = true;
      settle();
      if (signal?.aborted) reject(new AbortedError(`running ${program}: aborted`, { cause: signal.reason }));
      else if (killedBy) reject(new SlipwayError('SLIPWAY_AUTH', `credential helper ${program} was killed: ${killedBy}`));
      else resolve({ code: exitCode, stdout: out, stderr: err });
    };
    child.on('close', finish);
    // A helper that starts a background process (an agent) which keeps its stdout open never 'close's.
    // Once the helper itself has exited, its answer is complete when it parses as JSON (or, after a
    // failure, whatever it said): take it then. Anything else may still be coming from a child it
    // handed the request to, so the pipes stay open until they close or the timeout kills the group.
    child.on('exit', (exitCode) => {
      const complete = (): boolean => exitCode !== 0 || isJson(out);
      const check = (): void => {
        if (done || !complete()) return;
        child.stdout.destroy();
        child.stderr.destroy();
        finish(exitCode);
      };
      const grace = setTimeout(() => {
        check();
        child.stdout.on('data', check);
      }, 200);
      grace.unref();
      child.once('close', () => clearTimeout(grace));
    });
    child.stdin.on('error', () => {
      // A helper that exits without reading stdin is reported through its exit code.
    });
    child.stdin.end(serverUrl);
  });
  if (code !== 0) {
    const said = `${stdout} ${stderr}`.trim();
    // The helpers' protocol: "credentials not found in native keychain" on stdout with exit status 1.
    if (/credentials not found/i.test(said)) return undefined;
    // Its output is not quoted: a helper that fails after printing the credentials, or quotes the
    // password in its complaint, would put the secret in our message.
    throw new SlipwayError('SLIPWAY_AUTH', `credential helper ${program} failed for ${serverUrl} (exit ${code}); its output is not shown as it may hold the secret: run \`echo ${serverUrl} | ${program} get\` to see it`);
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch {
    throw new SlipwayError('SLIPWAY_AUTH', `credential helper ${program} printed something other than JSON for ${serverUrl}`);
  }
  const username = typeof parsed.Username === 'string' ? parsed.Username : '';
  const secret = typeof parsed.Secret === 'string' ? parsed.Secret : '';
  if (secret === '') return undefined;
  // A `<token>` user means the secret is an identity (refresh) token, by Docker's convention; any
  // other user, an empty one included, has a password (docker/cli and ggcr read helpers so).
  if (username === '<token>') return { identityToken: secret };
  return { username, password: secret };
}

/**
 * The first executable file `name` in PATH's absolute directories. A relative entry (`.`, an empty
 * one, `bin`) names wherever the command happens to run, such as a repository being built: a
 * `docker-credential-desktop` checked into it must not run (Go refuses such finds too, exec.ErrDot,
 * and crane with it). The build package's `which` skips them too, for its builders. Exported for
 * tests; the package index does not.
 */
export async function lookPath(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  // No PATH at all (a library caller's minimal env): the default execvp and libuv's spawn use.
  for (const dir of (env.PATH ?? defaultPath).split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    const file = join(dir, name);
    const executable = await access(file, constants.X_OK).then(
      async () => (await stat(file).catch(() => undefined))?.isFile() === true,
      () => false,
    );
    if (executable) return file;
  }
  return undefined;
}

/** What execvp (_PATH_DEFPATH) and libuv search when the environment has no PATH. */
const defaultPath = '/usr/bin:/bin';

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
