// Acceptance audit: where the CLI's credentials come from, against the real registry in htpasswd and
// token mode — a global credsStore helper, containers auth.json (REGISTRY_AUTH_FILE and
// $XDG_RUNTIME_DIR/containers/auth.json), environment credentials before the Docker config, and
// anonymous pulls — and that credentials are resolved lazily: only for a registry that challenged,
// once per host per run (a real docker-credential-* program logs each time it is asked).
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CANARY_PASSWORD, CANARY_USERNAME, startRegistry, type TestRegistry } from '../support/registry.js';
import { jsonError, putRawBlob, putRawManifest, slipway } from './audit-support.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const basicAuth = (password = CANARY_PASSWORD) => Buffer.from(`${CANARY_USERNAME}:${password}`).toString('base64');

describe('credential sources of the CLI (audit)', () => {
  let open: TestRegistry;
  let basic: TestRegistry;
  let token: TestRegistry;
  let work: string;
  let source: string;
  let digest: string;

  before(async () => {
    [open, basic, token] = await Promise.all([
      startRegistry(),
      startRegistry({ auth: 'htpasswd', username: CANARY_USERNAME, password: CANARY_PASSWORD }),
      startRegistry({ auth: 'token', username: CANARY_USERNAME, password: CANARY_PASSWORD }),
    ]);
    work = await mkdtemp(join(tmpdir(), 'slipway-audit-auth-'));
    const config = await putRawBlob(open, 'src/app', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })), 'application/vnd.oci.image.config.v1+json');
    const layer = await putRawBlob(open, 'src/app', Buffer.from('auth audit layer'), 'application/vnd.oci.image.layer.v1.tar');
    const put = await putRawManifest(open, 'src/app', '1', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] })), OCI_MANIFEST);
    assert.equal(put.status, 201, put.body);
    source = `${open.host}/src/app:1`;
    digest = put.descriptor.digest;
  });
  after(async () => {
    await Promise.all([open?.stop(), basic?.stop(), token?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A Docker config dir whose credential helper `docker-credential-<name>` logs every server it is asked about. */
  async function helperConfig(label: string, config: Record<string, unknown>): Promise<{ env: Record<string, string>; asked: () => Promise<string[]> }> {
    const dir = join(work, label);
    await mkdir(dir, { recursive: true });
    const log = join(dir, 'asked.log');
    const helper = join(dir, 'docker-credential-audit');
    await writeFile(helper, [
      '#!/bin/sh',
      '[ "$1" = get ] || exit 2',
      'read -r server',
      `echo "$server" >> ${JSON.stringify(log)}`,
      `case "$server" in ${basic.host}|${token.host}) printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$server" "${CANARY_USERNAME}" "${CANARY_PASSWORD}" ;;`,
      '  *) echo "credentials not found in native keychain"; exit 1 ;;',
      'esac',
      '',
    ].join('\n'));
    await chmod(helper, 0o755);
    await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    return {
      env: { DOCKER_CONFIG: dir, PATH: `${dir}:${process.env.PATH ?? ''}` },
      asked: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l !== ''),
    };
  }

  it('a global credsStore helper is asked lazily: only for registries that challenge, once per host per run', async () => {
    const store = await helperConfig('store', { credsStore: 'audit' });
    const toBasic = await slipway(['copy', source, `${basic.host}/store/app:1`, '--json'], store.env);
    assert.equal(toBasic.code, 0, toBasic.stderr);
    assert.deepEqual(await store.asked(), [basic.host], 'the open source registry was never looked up; the destination once');

    // Both sides locked: one lookup per host, however many requests (pings, HEADs, uploads, token fetches).
    const both = await helperConfig('both', { credHelpers: { [basic.host]: 'audit', [token.host]: 'audit' } });
    const across = await slipway(['copy', `${basic.host}/store/app:1`, `${token.host}/store/app:1`, '--json'], both.env);
    assert.equal(across.code, 0, across.stderr);
    assert.deepEqual((await both.asked()).sort(), [basic.host, token.host].sort());
    assert.equal((JSON.parse(across.stdout) as { digest: string }).digest, digest);
  });

  it('reads the containers auth file: $REGISTRY_AUTH_FILE, then $XDG_RUNTIME_DIR/containers/auth.json', async () => {
    const authFile = join(work, 'auth.json');
    await writeFile(authFile, JSON.stringify({ auths: { [basic.host]: { auth: basicAuth() } } }), { mode: 0o600 });
    const viaFile = await slipway(['copy', source, `${basic.host}/authfile/app:1`], { REGISTRY_AUTH_FILE: authFile });
    assert.equal(viaFile.code, 0, viaFile.stderr);

    const runtime = join(work, 'runtime');
    await mkdir(join(runtime, 'containers'), { recursive: true });
    await writeFile(join(runtime, 'containers', 'auth.json'), JSON.stringify({ auths: { [token.host]: { auth: basicAuth() } } }), { mode: 0o600 });
    const viaRuntime = await slipway(['digest', `${basic.host}/authfile/app:1`], { XDG_RUNTIME_DIR: runtime, REGISTRY_AUTH_FILE: undefined });
    assert.equal(viaRuntime.code, 4, 'no entry for the htpasswd registry there');
    const tokenCopy = await slipway(['copy', source, `${token.host}/authfile/app:1`], { XDG_RUNTIME_DIR: runtime, REGISTRY_AUTH_FILE: undefined });
    assert.equal(tokenCopy.code, 0, tokenCopy.stderr);
  });

  it('a refusal with nothing found says why: the credsStore is not installed, or logins are for other paths', async () => {
    const storeConfig = join(work, 'missing-store');
    await mkdir(storeConfig, { recursive: true });
    await writeFile(join(storeConfig, 'config.json'), JSON.stringify({ credsStore: 'nothere-slipway-test' }));
    const pathAuthFile = join(work, 'path-scoped-auth.json');
    await writeFile(pathAuthFile, JSON.stringify({ auths: { [`${basic.host}/team`]: { auth: basicAuth() } } }), { mode: 0o600 });
    const refused = await slipway(['tags', `${basic.host}/authfile/app`, '--json'], { DOCKER_CONFIG: storeConfig, REGISTRY_AUTH_FILE: pathAuthFile });
    assert.equal(refused.code, 4, refused.stderr);
    const message = String(jsonError(refused).message);
    assert.ok(message.includes(`no credentials for ${basic.host} were found`), message);
    assert.ok(message.includes(`credsStore "nothere-slipway-test" in ${join(storeConfig, 'config.json')} is not installed`), message);
    assert.ok(message.includes(`${pathAuthFile} has logins only for paths of it (${basic.host}/team), none with credentials for this repository`), message);
  });

  it('environment credentials come before the Docker config, which comes before auth.json', async () => {
    const wrongConfig = join(work, 'wrong-config');
    await mkdir(wrongConfig, { recursive: true });
    await writeFile(join(wrongConfig, 'config.json'), JSON.stringify({ auths: { [basic.host]: { auth: basicAuth('not-the-password') } } }));
    const rightAuthFile = join(work, 'right-auth.json');
    await writeFile(rightAuthFile, JSON.stringify({ auths: { [basic.host]: { auth: basicAuth() } } }));

    const envWins = await slipway(['digest', `${basic.host}/authfile/app:1`], {
      DOCKER_CONFIG: wrongConfig,
      SLIPWAY_REGISTRY_USERNAME: CANARY_USERNAME,
      SLIPWAY_REGISTRY_PASSWORD: CANARY_PASSWORD,
    });
    assert.equal(envWins.code, 0, envWins.stderr);
    assert.equal(envWins.stdout.trim(), digest);
    // First found wins: the Docker config's (wrong) entry is used, auth.json is not consulted.
    const configFirst = await slipway(['digest', `${basic.host}/authfile/app:1`, '--json'], { DOCKER_CONFIG: wrongConfig, REGISTRY_AUTH_FILE: rightAuthFile });
    assert.equal(configFirst.code, 4, configFirst.stderr);
    assert.equal(jsonError(configFirst).code, 'SLIPWAY_AUTH');
    const authFileAlone = await slipway(['digest', `${basic.host}/authfile/app:1`], { REGISTRY_AUTH_FILE: rightAuthFile });
    assert.equal(authFileAlone.code, 0, authFileAlone.stderr);
  });

  it('environment credentials go to the destination registry, or, into a local destination, to the source (the only registry the copy talks to)', async () => {
    const withCreds = { SLIPWAY_REGISTRY_USERNAME: CANARY_USERNAME, SLIPWAY_REGISTRY_PASSWORD: CANARY_PASSWORD };
    assert.equal((await slipway(['copy', source, `${basic.host}/env-scope/app:1`], withCreds)).code, 0);
    const layoutDir = join(work, 'env-scope-layout');
    const intoLayout = await slipway(['copy', `${basic.host}/env-scope/app:1`, `oci:${layoutDir}:v1`, '--json'], withCreds);
    assert.equal(intoLayout.code, 0, intoLayout.stderr);
    assert.equal((JSON.parse(intoLayout.stdout) as { digest: string }).digest, digest);
    // Registry to registry, they stay the destination's: the locked source is asked anonymously.
    const across = await slipway(['copy', `${basic.host}/env-scope/app:1`, `${token.host}/env-scope/app:1`, '--json'], withCreds);
    assert.equal(across.code, 4, across.stderr);
    assert.ok(across.stderr.includes(`no credentials for ${basic.host} were found`), across.stderr);
  });

  it('pulls anonymously where the token issuer grants it, and is refused (exit 4) elsewhere', async () => {
    const withCreds = { SLIPWAY_REGISTRY_USERNAME: CANARY_USERNAME, SLIPWAY_REGISTRY_PASSWORD: CANARY_PASSWORD };
    assert.equal((await slipway(['copy', source, `${token.host}/public/app:1`], withCreds)).code, 0);
    token.tokenIssuer!.setAnonymous([{ repo: 'public/app', actions: ['pull'] }]);
    try {
      const anonymousPull = await slipway(['digest', `${token.host}/public/app:1`]);
      assert.equal(anonymousPull.code, 0, anonymousPull.stderr);
      assert.equal(anonymousPull.stdout.trim(), digest);
      const last = token.tokenIssuer!.requests.at(-1)!;
      assert.equal(last.grantType, 'anonymous');
      assert.equal(last.presentedCredentials, false);
      const anonymousPush = await slipway(['copy', source, `${token.host}/public/app:2`, '--json']);
      assert.equal(anonymousPush.code, 4, anonymousPush.stderr);
      assert.equal(jsonError(anonymousPush).code, 'SLIPWAY_AUTH');
    } finally {
      token.tokenIssuer!.setAnonymous([]);
    }
  });

  it('reads an empty or blank Docker config and auth.json as empty, as docker does: an anonymous pull works, the next file is read', async () => {
    const withCreds = { SLIPWAY_REGISTRY_USERNAME: CANARY_USERNAME, SLIPWAY_REGISTRY_PASSWORD: CANARY_PASSWORD };
    assert.equal((await slipway(['copy', source, `${token.host}/blank/app:1`], withCreds)).code, 0);
    const blankDir = join(work, 'blank-config');
    await mkdir(blankDir, { recursive: true });
    const blankAuthFile = join(work, 'blank-auth.json');
    token.tokenIssuer!.setAnonymous([{ repo: 'blank/app', actions: ['pull'] }]);
    try {
      for (const blank of ['', '\n  \n']) {
        await writeFile(join(blankDir, 'config.json'), blank);
        await writeFile(blankAuthFile, blank);
        const anonymousPull = await slipway(['digest', `${token.host}/blank/app:1`], { DOCKER_CONFIG: blankDir, REGISTRY_AUTH_FILE: blankAuthFile });
        assert.equal(anonymousPull.code, 0, anonymousPull.stderr);
        assert.equal(anonymousPull.stdout.trim(), digest);
      }
    } finally {
      token.tokenIssuer!.setAnonymous([]);
    }
    // A blank Docker config holds nothing: the containers auth file after it answers.
    const rightAuthFile = join(work, 'blank-then-auth.json');
    await writeFile(rightAuthFile, JSON.stringify({ auths: { [basic.host]: { auth: basicAuth() } } }));
    assert.equal((await slipway(['copy', source, `${basic.host}/blank/app:1`], withCreds)).code, 0);
    const next = await slipway(['digest', `${basic.host}/blank/app:1`], { DOCKER_CONFIG: blankDir, REGISTRY_AUTH_FILE: rightAuthFile });
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.stdout.trim(), digest);
  });
});
