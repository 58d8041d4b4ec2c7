// Acceptance audit: a canary password never appears in any log, error message or --json output.
// The CLI runs with NODE_DEBUG=slipway (every debuglog line on) against the real registry in
// htpasswd (Basic) and token (Bearer) mode, with the right canary password from each credential
// source (environment, Docker config auths, a real docker-credential-* helper) and with a wrong one
// (which contains the canary). The library's thrown errors are walked down their cause chains.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { copyImage, getDigest, listTags } from '@slipway/engine';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { CANARY_PASSWORD, CANARY_USERNAME, startRegistry, type TestRegistry } from '../support/registry.js';
import { jsonError, putRawBlob, putRawManifest, slipway, type CliOutcome } from './audit-support.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const wrongPassword = `wrong-${CANARY_PASSWORD}`;
/** Every form the secret could leak in. */
const forbidden = [
  CANARY_PASSWORD,
  Buffer.from(CANARY_PASSWORD).toString('base64'),
  Buffer.from(`${CANARY_USERNAME}:${CANARY_PASSWORD}`).toString('base64'),
  Buffer.from(`${CANARY_USERNAME}:${wrongPassword}`).toString('base64'),
];
/** A JWT (the Bearer tokens the issuer hands out) must not be printed either. */
const jwt = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/;

function assertClean(where: string, text: string): void {
  for (const secret of forbidden) assert.ok(!text.includes(secret), `${where} contains a form of the canary password:\n${text.slice(0, 2000)}`);
  assert.ok(!jwt.test(text), `${where} contains a bearer token: ${jwt.exec(text)?.[0]}`);
}

/** Every message, stack, property and cause of an error, as inspect and JSON show them. */
function assertErrorClean(err: unknown): void {
  assert.ok(err instanceof Error, `expected an Error, got ${String(err)}`);
  let depth = 0;
  for (let e: unknown = err; e !== undefined && e !== null && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    const text = [
      e instanceof Error ? e.message : inspect(e),
      (e as Error).stack ?? '',
      inspect(e, { depth: null, showHidden: true }),
      JSON.stringify(e) ?? '',
    ].join('\n');
    assertClean(`error (cause depth ${depth})`, text);
  }
}

describe('the canary password never shows (audit)', () => {
  let open: TestRegistry;
  let basic: TestRegistry;
  let token: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let source: string;
  const runs: { args: string[]; outcome: CliOutcome }[] = [];

  before(async () => {
    [open, basic, token] = await Promise.all([
      startRegistry(),
      startRegistry({ auth: 'htpasswd', username: CANARY_USERNAME, password: CANARY_PASSWORD }),
      startRegistry({ auth: 'token', username: CANARY_USERNAME, password: CANARY_PASSWORD }),
    ]);
    proxy = await startFaultProxy({ target: basic });
    work = await mkdtemp(join(tmpdir(), 'slipway-audit-canary-'));
    const config = await putRawBlob(open, 'src/app', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })), 'application/vnd.oci.image.config.v1+json');
    const layer = await putRawBlob(open, 'src/app', Buffer.alloc(300_000, 7), 'application/vnd.oci.image.layer.v1.tar');
    const put = await putRawManifest(open, 'src/app', '1', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] })), OCI_MANIFEST);
    assert.equal(put.status, 201, put.body);
    source = `${open.host}/src/app:1`;
  });
  after(async () => {
    await proxy?.stop();
    await Promise.all([open?.stop(), basic?.stop(), token?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Runs the CLI with every debuglog of the slipway section on; checks both streams and remembers the run. */
  async function debugRun(args: string[], env: Record<string, string | undefined> = {}): Promise<CliOutcome> {
    const outcome = await slipway(args, { NODE_DEBUG: 'slipway', ...env });
    assertClean(`stdout of slipway ${args.join(' ')}`, outcome.stdout);
    assertClean(`stderr of slipway ${args.join(' ')}`, outcome.stderr);
    runs.push({ args, outcome });
    return outcome;
  }

  const envCreds = (registry: TestRegistry, password = CANARY_PASSWORD) => ({
    SLIPWAY_REGISTRY_ADDRESS: registry.host,
    SLIPWAY_REGISTRY_USERNAME: CANARY_USERNAME,
    SLIPWAY_REGISTRY_PASSWORD: password,
  });

  for (const mode of ['htpasswd', 'token'] as const) {
    it(`${mode}: copy, digest, manifest and tags with the right password, under NODE_DEBUG=slipway`, async () => {
      const registry = mode === 'htpasswd' ? basic : token;
      const copied = await debugRun(['copy', source, `${registry.host}/dst/app:1`, '--json'], envCreds(registry));
      assert.equal(copied.code, 0, copied.stderr);
      const result = JSON.parse(copied.stdout) as { digest: string; stats: { blobsCopied: number } };
      assert.equal(result.stats.blobsCopied, 2);
      assert.match(copied.stderr, /^SLIPWAY \d+: /m, 'debug logging was on');
      assert.match(copied.stderr, /SLIPWAY \d+: credentials for 127\.0\.0\.1:\d+ \(dst\/app\): basic \(user "slipway-canary-user"\)/, 'the keychain logged what it found, without the secret');
      if (mode === 'token') assert.match(copied.stderr, /SLIPWAY \d+: token for 127\.0\.0\.1:\d+ scope repository:dst\/app:pull,push/);
      const reads = [['digest', `${registry.host}/dst/app:1`], ['manifest', `${registry.host}/dst/app:1`, '--json'], ['tags', `${registry.host}/dst/app`, '--json']];
      for (const outcome of await Promise.all(reads.map((args) => debugRun(args, envCreds(registry))))) assert.equal(outcome.code, 0, outcome.stderr);
    });

    it(`${mode}: a wrong password containing the canary fails with exit 4, in text and --json`, async () => {
      const registry = mode === 'htpasswd' ? basic : token;
      const all = [
        ['copy', source, `${registry.host}/dst/app:2`],
        ['copy', source, `${registry.host}/dst/app:2`, '--json'],
        ['digest', `${registry.host}/dst/app:1`, '--json'],
        ['tags', `${registry.host}/dst/app`, '--json'],
      ];
      const outcomes = await Promise.all(all.map((args) => debugRun(args, envCreds(registry, wrongPassword))));
      all.forEach((args, i) => {
        const outcome = outcomes[i]!;
        assert.equal(outcome.code, 4, `slipway ${args.join(' ')}: ${outcome.stderr}`);
        if (args.includes('--json')) assert.equal(jsonError(outcome).code, 'SLIPWAY_AUTH');
        assert.match(outcome.stderr, /^slipway: .*(UNAUTHORIZED|401|token)/m);
      });
    });
  }

  it('credentials from a Docker config (auths) and from a real credential helper stay hidden too', async () => {
    const auths = join(work, 'docker-auths');
    await mkdir(auths, { recursive: true });
    await writeFile(join(auths, 'config.json'), JSON.stringify({ auths: { [basic.host]: { auth: Buffer.from(`${CANARY_USERNAME}:${CANARY_PASSWORD}`).toString('base64') } } }), { mode: 0o600 });
    const fromConfig = await debugRun(['copy', source, `${basic.host}/cfg/app:1`, '--json'], { DOCKER_CONFIG: auths });
    assert.equal(fromConfig.code, 0, fromConfig.stderr);

    const helperDir = join(work, 'helper');
    await mkdir(helperDir, { recursive: true });
    const helper = join(helperDir, 'docker-credential-slipwayaudit');
    await writeFile(helper, [
      '#!/bin/sh',
      '[ "$1" = get ] || exit 2',
      'read -r server',
      `printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$server" "${CANARY_USERNAME}" "$SLIPWAY_AUDIT_SECRET"`,
      '',
    ].join('\n'));
    await chmod(helper, 0o755);
    await writeFile(join(helperDir, 'config.json'), JSON.stringify({ credHelpers: { [token.host]: 'slipwayaudit', [basic.host]: 'slipwayaudit' } }));
    const helperEnv = { DOCKER_CONFIG: helperDir, PATH: `${helperDir}:${process.env.PATH ?? ''}` };
    const viaHelper = await debugRun(['copy', source, `${token.host}/helper/app:1`, '--json'], { ...helperEnv, SLIPWAY_AUDIT_SECRET: CANARY_PASSWORD });
    assert.equal(viaHelper.code, 0, viaHelper.stderr);
    const wrongHelper = await debugRun(['copy', source, `${basic.host}/helper/app:1`, '--json'], { ...helperEnv, SLIPWAY_AUDIT_SECRET: wrongPassword });
    assert.equal(wrongHelper.code, 4, wrongHelper.stderr);
  });

  it('faults between client and registry (5xx, resets) do not make the canary leak either', async () => {
    const viaProxy = { SLIPWAY_REGISTRY_ADDRESS: proxy.host, SLIPWAY_REGISTRY_USERNAME: CANARY_USERNAME, SLIPWAY_REGISTRY_PASSWORD: CANARY_PASSWORD };
    const fault = proxy.inject({ match: { path: '/blobs/uploads/' }, fault: { status: 500 }, times: Infinity });
    try {
      const failed = await debugRun(['copy', source, `${proxy.host}/faulty/app:1`, '--json'], viaProxy);
      assert.equal(failed.code, 1, failed.stderr);
      assert.ok(fault.hits >= 1);
    } finally {
      fault.remove();
    }
    const reset = proxy.inject({ match: { path: '/manifests/' }, fault: { reset: 'before-forward' }, times: Infinity });
    try {
      const failed = await debugRun(['digest', `${proxy.host}/faulty/app:1`, '--json'], viaProxy);
      assert.equal(failed.code, 1, failed.stderr);
      assert.equal(jsonError(failed).code, 'SLIPWAY_NETWORK');
    } finally {
      reset.remove();
    }
  });

  it('errors thrown by the library carry no secret anywhere down their cause chain', async () => {
    const errors: unknown[] = [];
    const wrongAt = (registry: TestRegistry) => [{ address: registry.host, username: CANARY_USERNAME, password: wrongPassword }];
    const rightAt = (host: string) => [{ address: host, username: CANARY_USERNAME, password: CANARY_PASSWORD }];
    for (const registry of [basic, token]) {
      errors.push(await copyImage({ source, destination: `${registry.host}/lib/app:1`, registries: wrongAt(registry) }).catch((e: unknown) => e));
      errors.push(await getDigest({ reference: `${registry.host}/dst/app:1`, registries: wrongAt(registry) }).catch((e: unknown) => e));
      errors.push(await listTags({ repository: `${registry.host}/dst/app`, registries: wrongAt(registry) }).catch((e: unknown) => e));
      // Right password, missing tag: an error that went through an authenticated exchange.
      errors.push(await getDigest({ reference: `${registry.host}/dst/app:missing`, registries: rightAt(registry.host) }).catch((e: unknown) => e));
    }
    const fault = proxy.inject({ match: { method: 'PUT', path: '/manifests/' }, fault: { status: 400 }, times: Infinity });
    try {
      errors.push(await copyImage({ source, destination: `${proxy.host}/lib/app:2`, registries: rightAt(proxy.host) }).catch((e: unknown) => e));
    } finally {
      fault.remove();
    }
    const codes = errors.map((e) => (e as { code?: string }).code);
    assert.deepEqual(codes, ['SLIPWAY_AUTH', 'SLIPWAY_AUTH', 'SLIPWAY_AUTH', 'SLIPWAY_NOT_FOUND', 'SLIPWAY_AUTH', 'SLIPWAY_AUTH', 'SLIPWAY_AUTH', 'SLIPWAY_NOT_FOUND', 'SLIPWAY_REGISTRY']);
    for (const err of errors) assertErrorClean(err);
    assert.ok(runs.length >= 14, `the CLI runs above were all checked (${runs.length})`);
  });
});
