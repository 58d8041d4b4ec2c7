// The keychain against temp config dirs and real credential-helper programs (small shell scripts
// speaking the docker-credential-helpers protocol).
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AbortedError, SlipwayError } from '../errors.js';
import { createKeychain, staticKeychain } from './keychain.js';
import { normalizeRegistryKey } from './docker-config.js';
import { lookPath, runCredentialHelper } from './helper.js';
import { describeCredentials } from './credentials.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function home(files: Record<string, unknown> = {}, helpers: Record<string, string> = {}): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-keychain-'));
  dirs.push(dir);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), typeof content === 'string' ? content : JSON.stringify(content));
  }
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  for (const [name, script] of Object.entries(helpers)) {
    const path = join(bin, `docker-credential-${name}`);
    await writeFile(path, `#!/bin/sh\n${script}\n`);
    await chmod(path, 0o755);
  }
  // Only our temp dir and the system dirs: no helper from the machine can answer.
  return { dir, env: { HOME: dir, PATH: `${bin}:/usr/bin:/bin` } };
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

/** A helper that answers for one server URL and logs what it was asked. */
const helper = (server: string, user: string, secret: string, log: string) =>
  `[ "$1" = get ] || exit 2\nread -r s\necho "$s" >> ${log}\n[ "$s" = "${server}" ] || { echo "credentials not found in native keychain"; exit 1; }\nprintf '{"ServerURL":"%s","Username":"${user}","Secret":"${secret}"}' "$s"`;

describe('createKeychain with Docker config', () => {
  it('decodes base64 auth, matching keys with or without scheme and path', async () => {
    const { env } = await home({
      '.docker/config.json': {
        auths: {
          'https://registry.example.com/v1/': { auth: b64('alice:pa:ss') },
          'localhost:5000': { username: 'bob', password: 'pw' },
          'ghcr.io': { identitytoken: 'refresh-1' },
          'quay.io': { registrytoken: 'reg-tok' },
        },
      },
    });
    const keychain = createKeychain({ env });
    assert.deepEqual(await keychain.resolve('registry.example.com'), { username: 'alice', password: 'pa:ss' });
    assert.deepEqual(await keychain.resolve('localhost:5000'), { username: 'bob', password: 'pw' });
    assert.deepEqual(await keychain.resolve('ghcr.io'), { identityToken: 'refresh-1' });
    assert.deepEqual(await keychain.resolve('quay.io'), { registryToken: 'reg-tok' });
    assert.equal(await keychain.resolve('other.example.com'), undefined);
  });

  it("uses Docker Hub's legacy key for docker.io", async () => {
    const { env } = await home({ '.docker/config.json': { auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:hubpw') } } } });
    assert.deepEqual(await createKeychain({ env }).resolve('docker.io'), { username: 'hubuser', password: 'hubpw' });
  });

  it('honours DOCKER_CONFIG over ~/.docker', async () => {
    const { dir, env } = await home({
      '.docker/config.json': { auths: { 'r.io': { auth: b64('home:x') } } },
      'custom/config.json': { auths: { 'r.io': { auth: b64('custom:y') } } },
    });
    assert.deepEqual(await createKeychain({ env: { ...env, DOCKER_CONFIG: join(dir, 'custom') } }).resolve('r.io'), { username: 'custom', password: 'y' });
  });

  it('asks the credHelpers entry first, with the host on stdin', async () => {
    const { dir, env } = await home();
    const log = join(dir, 'asked.log');
    await writeFile(join(dir, 'bin', 'docker-credential-per'), `#!/bin/sh\n${helper('r.io', 'helperuser', 'helpersecret', log)}\n`);
    await chmod(join(dir, 'bin', 'docker-credential-per'), 0o755);
    await mkdir(join(dir, '.docker'));
    await writeFile(join(dir, '.docker/config.json'), JSON.stringify({ credHelpers: { 'r.io': 'per' }, auths: { 'r.io': { auth: b64('inline:z') } } }));
    assert.deepEqual(await createKeychain({ env }).resolve('r.io'), { username: 'helperuser', password: 'helpersecret' });
    assert.equal((await readFile(log, 'utf8')).trim(), 'r.io');
  });

  it('asks the credsStore for Docker Hub with the legacy URL, and maps <token> to an identity token', async () => {
    const { dir, env } = await home();
    const log = join(dir, 'asked.log');
    await writeFile(join(dir, 'bin', 'docker-credential-store'), `#!/bin/sh\n${helper('https://index.docker.io/v1/', '<token>', 'idtok', log)}\n`);
    await chmod(join(dir, 'bin', 'docker-credential-store'), 0o755);
    await mkdir(join(dir, '.docker'));
    await writeFile(join(dir, '.docker/config.json'), JSON.stringify({ credsStore: 'store', auths: { 'fallback.io': { auth: b64('f:g') } } }));
    const keychain = createKeychain({ env });
    assert.deepEqual(await keychain.resolve('docker.io'), { identityToken: 'idtok' });
    // The store has nothing for fallback.io: the inline entry is used.
    assert.deepEqual(await keychain.resolve('fallback.io'), { username: 'f', password: 'g' });
  });

  it('falls back to inline auths when a global credsStore program is missing, but fails for a missing per-registry helper', async () => {
    const { env } = await home({ '.docker/config.json': { credsStore: 'desktop', credHelpers: { 'strict.io': 'nothere' }, auths: { 'r.io': { auth: b64('u:p') } } } });
    const keychain = createKeychain({ env });
    assert.deepEqual(await keychain.resolve('r.io'), { username: 'u', password: 'p' });
    await assert.rejects(keychain.resolve('strict.io'), (err: unknown) => {
      assert.ok(SlipwayError.is(err));
      assert.equal(err.code, 'SLIPWAY_AUTH');
      assert.match(err.message, /docker-credential-nothere is configured but not on PATH/);
      return true;
    });
  });

  it('never runs a helper found through a relative PATH entry ("." or an empty one): a repository could hold one', async () => {
    const { dir, env } = await home({ '.docker/config.json': { credsStore: 'desktop', credHelpers: { 'strict.io': 'desktop' }, auths: { 'r.io': { auth: b64('u:p') } } } });
    const ran = join(dir, 'ran');
    const checkout = join(dir, 'checkout');
    await mkdir(checkout);
    await writeFile(join(checkout, 'docker-credential-desktop'), `#!/bin/sh\necho ran > ${ran}\necho '{"Username":"evil","Secret":"x"}'\n`);
    await chmod(join(checkout, 'docker-credential-desktop'), 0o755);
    const cwd = process.cwd();
    process.chdir(checkout);
    try {
      for (const path of [`${env.PATH}:`, `.:${env.PATH}`, `${env.PATH}:checkout`]) {
        const keychain = createKeychain({ env: { ...env, PATH: path } });
        // The store counts as not installed: the inline login is used.
        assert.deepEqual(await keychain.resolve('r.io'), { username: 'u', password: 'p' }, path);
        await assert.rejects(keychain.resolve('strict.io'), /docker-credential-desktop is configured but not on PATH \(relative PATH entries, such as "\." or an empty one, are not searched\)/);
      }
    } finally {
      process.chdir(cwd);
    }
    assert.equal(await readFile(ran, 'utf8').catch(() => 'never ran'), 'never ran');
  });

  it('looks a helper up where spawn did when the environment has no PATH (/usr/bin:/bin, as execvp and libuv)', async () => {
    // A library caller's minimal env ({ DOCKER_CONFIG }) has no PATH: "not on PATH" then skipped a credsStore.
    assert.match((await lookPath('sh', {})) ?? 'not found', /^\/(usr\/)?bin\/sh$/);
    assert.equal(await lookPath('sh', { PATH: '.:' }), undefined, 'relative entries only: nothing');
  });

  it('says why it found nothing: a credsStore that is not installed, logins only for other paths', async () => {
    const { dir, env } = await home({
      '.docker/config.json': { credsStore: 'nothere' },
      '.config/containers/auth.json': { auths: { 'team.io/alpha': { auth: b64('u:p') }, 'team.io/beta/app': { auth: b64('u:q') }, 'other.io/x': { auth: b64('u:r') } } },
    });
    const keychain = createKeychain({ env });
    assert.equal(await keychain.resolve('team.io', { repository: 'gamma/app' }), undefined);
    const notes = await keychain.explainMissing!('team.io');
    assert.deepEqual(notes, [
      `credsStore "nothere" in ${join(dir, '.docker/config.json')} is not installed (no docker-credential-nothere on PATH), so its logins were not read`,
      `${join(dir, '.config/containers/auth.json')} has logins only for paths of it (team.io/alpha, team.io/beta/app), none with credentials for this repository`,
    ]);
    // A registry with no path logins hears only about the store.
    assert.equal(await keychain.resolve('plain.io'), undefined);
    assert.equal((await keychain.explainMissing!('plain.io')).length, 1);
  });

  it('reports a failing helper without echoing anything it said (the secret may be in it)', async () => {
    const { env } = await home(
      { '.docker/config.json': { credHelpers: { 'r.io': 'broken' } } },
      { broken: 'echo \'{"ServerURL":"r.io","Username":"u","Secret":"hunter2-secret"}\'; echo "password hunter2-secret refused" >&2; exit 3' },
    );
    await assert.rejects(createKeychain({ env }).resolve('r.io'), (err: unknown) => {
      assert.ok(SlipwayError.is(err));
      assert.match(err.message, /docker-credential-broken failed for r\.io \(exit 3\); its output is not shown/);
      assert.ok(!JSON.stringify({ message: err.message, cause: String(err.cause) }).includes('hunter2'), err.message);
      return true;
    });
  });

  it('kills a helper that outlives its timeout, with the children it waits on', async () => {
    // A shell script waiting on `sleep` (no exec): killing the shell alone left sleep holding the pipes.
    const { dir, env } = await home({});
    const pidFile = join(dir, 'sleep-pid');
    await writeFile(join(dir, 'bin', 'docker-credential-stuck'), `#!/bin/sh
sleep 30 &
echo $! > ${pidFile}
wait
`);
    await chmod(join(dir, 'bin', 'docker-credential-stuck'), 0o755);
    const started = Date.now();
    await assert.rejects(runCredentialHelper('stuck', 'r.io', { env, timeoutMs: 500 }), (err: unknown) => SlipwayError.is(err) && /killed: timed out after 500 ms/.test(err.message));
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Gone, or dead and waiting to be reaped (a container's init may not reap orphans promptly).
    const state = (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(' ')[2];
    assert.ok(state === undefined || state === 'Z' || state === 'X', `the helper's child is still running (state ${state})`);
  });

  it('takes the answer of a helper that exits while a background process it started keeps its stdout open', async () => {
    // A helper that starts an agent: `setsid` puts it out of the helper's process group, holding the pipe.
    const { dir, env } = await home({});
    const pidFile = join(dir, 'agent-pid');
    await writeFile(join(dir, 'bin', 'docker-credential-agent'), `#!/bin/sh
read server
echo '{"ServerURL":"r.io","Username":"u","Secret":"agent-secret"}'
setsid sleep 30 &
echo $! > ${pidFile}
exit 0
`);
    await chmod(join(dir, 'bin', 'docker-credential-agent'), 0o755);
    const started = Date.now();
    try {
      const result = await runCredentialHelper('agent', 'r.io', { env, timeoutMs: 20_000 });
      assert.deepEqual(result, { username: 'u', password: 'agent-secret' });
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms: waited for the background process`);
    } finally {
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
      if (pid > 0) process.kill(pid, 'SIGKILL');
    }
  });

  it('waits for the answer of a helper that hands the request to a child and exits first', async () => {
    const { dir, env } = await home({});
    await writeFile(join(dir, 'bin', 'docker-credential-wrapper'), `#!/bin/sh
read server
( sleep 1; echo '{"ServerURL":"r.io","Username":"u","Secret":"late-secret"}' ) &
exit 0
`);
    await chmod(join(dir, 'bin', 'docker-credential-wrapper'), 0o755);
    assert.deepEqual(await runCredentialHelper('wrapper', 'r.io', { env, timeoutMs: 20_000 }), { username: 'u', password: 'late-secret' });
  });

  it('refuses a non-string secret field in a Docker config naming the field, never its value', async () => {
    const { env } = await home({ '.docker/config.json': { auths: { 'r.io': { auth: 12345678 } } } });
    await assert.rejects(createKeychain({ env }).resolve('r.io'), (err: unknown) => {
      assert.ok(SlipwayError.is(err));
      assert.equal(err.code, 'SLIPWAY_AUTH');
      assert.match(err.message, /"auth" field is not a string/);
      assert.ok(!err.message.includes('12345678'));
      return true;
    });
  });

  it('kills a helper when the caller aborts', async () => {
    const { dir, env } = await home({ '.docker/config.json': { credHelpers: { 'r.io': 'slow' } } });
    const pidFile = join(dir, 'pid');
    await writeFile(join(dir, 'bin', 'docker-credential-slow'), `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 30\n`);
    await chmod(join(dir, 'bin', 'docker-credential-slow'), 0o755);
    const controller = new AbortController();
    const pending = createKeychain({ env }).resolve('r.io', { signal: controller.signal });
    for (let i = 0; i < 100; i++) {
      if (await readFile(pidFile, 'utf8').catch(() => '')) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    controller.abort();
    await assert.rejects(pending, AbortedError);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the helper process is gone');
  });

  it('reads an empty or blank config.json or auth.json as an empty config, as docker does', async () => {
    for (const blank of ['', ' \n\t\n']) {
      const { dir, env } = await home({ '.docker/config.json': blank, 'auth.json': blank, '.config/containers/auth.json': { auths: { 'r.io': { auth: b64('u:p') } } } });
      const keychain = createKeychain({ env: { ...env, REGISTRY_AUTH_FILE: join(dir, 'auth.json') } });
      assert.equal(await keychain.resolve('other.io'), undefined);
      assert.deepEqual(await keychain.resolve('r.io'), { username: 'u', password: 'p' }, 'the next file is still read');
    }
  });

  it('takes a helper answer with an empty Username as a password, only <token> as an identity token', async () => {
    const { env } = await home({ '.docker/config.json': { credHelpers: { 'r.io': 'empty' } } }, { empty: `cat >/dev/null\necho '{"ServerURL":"r.io","Username":"","Secret":"pw-1"}'` });
    assert.deepEqual(await createKeychain({ env }).resolve('r.io'), { username: '', password: 'pw-1' });
  });

  it('refuses a malformed config without quoting it', async () => {
    const { env } = await home({ '.docker/config.json': '{"auths": {"r.io": {"auth": "c2VjcmV0"}' });
    await assert.rejects(createKeychain({ env }).resolve('r.io'), (err: unknown) => {
      assert.ok(SlipwayError.is(err));
      assert.match(err.message, /config\.json: not valid JSON$/);
      assert.ok(!err.message.includes('c2VjcmV0'));
      return true;
    });
  });
});

describe('createKeychain order', () => {
  it('explicit credentials, then Docker config, then containers auth.json, then anonymous', async () => {
    const { dir, env } = await home({
      '.docker/config.json': { auths: { 'both.io': { auth: b64('docker:1') }, 'docker.only': { auth: b64('docker:2') } } },
      'auth.json': { auths: { 'both.io': { auth: b64('podman:1') }, 'podman.only': { auth: b64('podman:2') }, 'podman.only/ns/repo': { auth: b64('scoped:3') } } },
    });
    const keychain = createKeychain({
      env: { ...env, REGISTRY_AUTH_FILE: join(dir, 'auth.json') },
      credentials: { 'https://explicit.io': { username: 'explicit', password: '0' }, 'both.io': { username: 'explicit', password: 'x' } },
    });
    assert.deepEqual(await keychain.resolve('explicit.io'), { username: 'explicit', password: '0' });
    assert.deepEqual(await keychain.resolve('both.io'), { username: 'explicit', password: 'x' });
    assert.deepEqual(await keychain.resolve('docker.only'), { username: 'docker', password: '2' });
    assert.deepEqual(await keychain.resolve('podman.only'), { username: 'podman', password: '2' });
    assert.equal(await keychain.resolve('nobody.io'), undefined);
  });

  it('a REGISTRY_AUTH_FILE set for the run beats ~/.docker/config.json, not a DOCKER_CONFIG set too; a refusal names the file', async () => {
    const { dir, env } = await home({
      '.docker/config.json': { auths: { 'both.io': { auth: b64('stale:old') } } },
      'named-docker/config.json': { auths: { 'both.io': { auth: b64('named:docker') } } },
      'auth.json': { auths: { 'both.io': { auth: b64('fresh:new') }, 'both.io/team': { auth: b64('team:scoped') } } },
    });
    const explicitFile = createKeychain({ env: { ...env, REGISTRY_AUTH_FILE: join(dir, 'auth.json') } });
    const fresh = await explicitFile.resolve('both.io');
    assert.deepEqual(fresh, { username: 'fresh', password: 'new' });
    assert.equal(describeCredentials(fresh), `basic (user "fresh") from ${join(dir, 'auth.json')}`);
    assert.equal(describeCredentials(await explicitFile.resolve('both.io', { repository: 'team/app' })), `basic (user "team") from ${join(dir, 'auth.json')}, key both.io/team`);
    const bothNamed = createKeychain({ env: { ...env, REGISTRY_AUTH_FILE: join(dir, 'auth.json'), DOCKER_CONFIG: join(dir, 'named-docker') } });
    assert.deepEqual(await bothNamed.resolve('both.io'), { username: 'named', password: 'docker' }, 'both named: Docker first, as before');
    const neitherNamed = createKeychain({ env });
    const stale = await neitherNamed.resolve('both.io');
    assert.equal(describeCredentials(stale), `basic (user "stale") from ${join(dir, '.docker/config.json')}`);
    assert.equal(describeCredentials({ username: 'given', password: 'x' }), 'basic (user "given")', 'explicit credentials: no file to name');
  });

  it('reads $XDG_RUNTIME_DIR/containers/auth.json and ~/.config/containers/auth.json', async () => {
    const { dir, env } = await home({
      'run/containers/auth.json': { auths: { 'xdg.io': { auth: b64('xdg:1') } } },
      '.config/containers/auth.json': { auths: { 'cfg.io': { auth: b64('cfg:2') } } },
    });
    const keychain = createKeychain({ env: { ...env, XDG_RUNTIME_DIR: join(dir, 'run') } });
    assert.deepEqual(await keychain.resolve('xdg.io'), { username: 'xdg', password: '1' });
    assert.deepEqual(await keychain.resolve('cfg.io'), { username: 'cfg', password: '2' });
  });

  it('uses the most specific namespace or repository key of an auth file for a repository (containers-auth.json)', async () => {
    const { dir, env } = await home({
      '.docker/config.json': { auths: { 'r.io': { auth: b64('docker-host:1') } } },
      'auth.json': {
        auths: {
          'r.io/team': { auth: b64('team:2') },
          'r.io/team/app': { auth: b64('app:3') },
          'r.io/teams': { auth: b64('wrong-prefix:4') },
          'docker.io/library': { auth: b64('hub-library:5') },
          'other.io/v1/': { auth: b64('legacy-host:6') },
        },
      },
    });
    const keychain = createKeychain({ env: { ...env, REGISTRY_AUTH_FILE: join(dir, 'auth.json') } });
    // The repository key beats the namespace key, which beats Docker config's whole-registry entry.
    assert.deepEqual(await keychain.resolve('r.io', { repository: 'team/app' }), { username: 'app', password: '3' });
    assert.deepEqual(await keychain.resolve('r.io', { repository: 'team/app/sub' }), { username: 'app', password: '3' });
    assert.deepEqual(await keychain.resolve('r.io', { repository: 'team/other' }), { username: 'team', password: '2' });
    // Whole path segments only: `r.io/teams` is not a parent of `team/…`, and `r.io/team` not of `teamx`.
    assert.deepEqual(await keychain.resolve('r.io', { repository: 'teamx/app' }), { username: 'docker-host', password: '1' });
    assert.deepEqual(await keychain.resolve('r.io', { repository: 'teams/app' }), { username: 'wrong-prefix', password: '4' });
    // No repository (the catalog) and unscoped repositories get the whole-registry entry.
    assert.deepEqual(await keychain.resolve('r.io'), { username: 'docker-host', password: '1' });
    assert.deepEqual(await keychain.resolve('r.io', { repository: 'solo' }), { username: 'docker-host', password: '1' });
    // Hub spellings: the repository of `alpine` is `library/alpine`.
    assert.deepEqual(await keychain.resolve('index.docker.io', { repository: 'library/alpine' }), { username: 'hub-library', password: '5' });
    // `host/v1/` without a scheme is Docker's legacy spelling of a whole registry, not a namespace `v1`.
    assert.deepEqual(await keychain.resolve('other.io', { repository: 'x/y' }), { username: 'legacy-host', password: '6' });
  });

  it('takes the first auth file with a scoped key for the repository, as podman reads one file', async () => {
    const { dir, env } = await home({
      'explicit.json': { auths: { 'r.io/team': { auth: b64('explicit:1') } } },
      '.config/containers/auth.json': { auths: { 'r.io/team/app': { auth: b64('stale-default:2') } } },
    });
    const keychain = createKeychain({ env: { ...env, REGISTRY_AUTH_FILE: join(dir, 'explicit.json') } });
    // REGISTRY_AUTH_FILE is read first: its namespace login wins over a more specific key in a later file.
    assert.deepEqual(await keychain.resolve('r.io', { repository: 'team/app' }), { username: 'explicit', password: '1' });
  });

  it('runs a credential helper once per registry, not once per repository', async () => {
    const { dir, env } = await home();
    const log = join(dir, 'asked.log');
    await writeFile(join(dir, 'bin', 'docker-credential-per'), `#!/bin/sh\n${helper('r.io', 'helperuser', 'helpersecret', log)}\n`);
    await chmod(join(dir, 'bin', 'docker-credential-per'), 0o755);
    await mkdir(join(dir, '.docker'));
    await writeFile(join(dir, '.docker/config.json'), JSON.stringify({ credHelpers: { 'r.io': 'per' } }));
    const keychain = createKeychain({ env });
    const answers = await Promise.all(['a', 'b/c', 'd'].map((repository) => keychain.resolve('r.io', { repository })));
    for (const answer of answers) assert.deepEqual(answer, { username: 'helperuser', password: 'helpersecret' });
    assert.equal((await readFile(log, 'utf8')).trim().split('\n').length, 1);
  });

  it('resolves each registry once and caches it', async () => {
    let calls = 0;
    const keychain = createKeychain({
      keychain: {
        resolve: async () => {
          calls++;
          return { username: 'u', password: 'p' };
        },
      },
    });
    await Promise.all([keychain.resolve('a.io'), keychain.resolve('a.io'), keychain.resolve('https://a.io/')]);
    assert.equal(calls, 1);
  });

  it('validates explicit credentials and normalises Hub keys', () => {
    assert.throws(() => staticKeychain({ 'r.io': { username: 'u' } as never }), /must be \{username, password\}/);
    assert.equal(normalizeRegistryKey('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(normalizeRegistryKey('registry-1.docker.io'), 'docker.io');
    assert.equal(normalizeRegistryKey('http://LOCALHOST:5000/v2/'), 'localhost:5000');
  });
});

describe('createKeychain with a caller\'s keychain', () => {
  it('refuses an answer that is no credentials, and gives a throwing keychain a stable code', async () => {
    const answering = (answer: unknown) => createKeychain({ keychain: { resolve: async () => answer as never } });
    await assert.rejects(answering({ user: 'u', pass: 'CANARY-pass' }).resolve('r.io'), (err: unknown) => {
      assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_AUTH', String(err));
      assert.equal(err.message, 'the keychain answered for "r.io" with something that is no credentials: they must be {username, password}, {identityToken} or {registryToken}');
      return true;
    });
    assert.equal(await answering(null).resolve('r.io'), undefined, 'null is "none", as undefined is');
    const found = await answering({ username: 'u', password: 'p' }).resolve('r.io');
    assert.equal(describeCredentials(found), 'basic (user "u") from the keychain');
    const throwing = createKeychain({
      keychain: {
        resolve: async () => {
          throw new Error('vault unreachable');
        },
      },
    });
    await assert.rejects(throwing.resolve('r.io'), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_AUTH' && err.message === 'the keychain failed for r.io: vault unreachable');
  });

  it('names explicit credentials as such when a registry refuses them', async () => {
    assert.equal(describeCredentials(await staticKeychain({ 'r.io': { username: 'u', password: 'p' } }).resolve('r.io')), 'basic (user "u") from the credentials given');
  });
});
