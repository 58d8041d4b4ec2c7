import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { InvalidArgumentError, NotFoundError, SlipwayError } from '@slipway/oci';
import { ExitCode, type CommandIo } from './command.js';
import { defineCommand, integerFlag, registriesFromEnv, type CommandContext } from './define.js';
import { describeError } from './errors.js';

function capture(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]) =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        into.push(chunk.toString());
        callback();
      },
    });
  const io: CommandIo = { stdout: sink(out), stderr: sink(err), env, signal: new AbortController().signal };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

const echo = (behaviour: (context: CommandContext) => Promise<unknown>) =>
  defineCommand({
    summary: 'test',
    synopsis: 'slipway echo ARG [--count N]',
    details: 'echoes',
    options: { count: { type: 'string' } },
    positionals: { min: 1, max: 1 },
    async run(context) {
      const value = await behaviour(context);
      return { json: { value }, text: String(value) };
    },
  });

describe('defineCommand', () => {
  it('prints text, or one JSON object with --json', async () => {
    const command = echo(async (c) => `${c.args[0]}:${integerFlag(c.values, 'count') ?? 'none'}`);
    const plain = capture();
    assert.equal(await command.run(['hi', '--count', '3'], plain.io), ExitCode.Ok);
    assert.equal(plain.stdout(), 'hi:3\n');
    const json = capture();
    assert.equal(await command.run(['--json', 'hi'], json.io), ExitCode.Ok);
    assert.deepEqual(JSON.parse(json.stdout()), { value: 'hi:none' });
  });

  it('exits 2 on usage errors, with a JSON error under --json', async () => {
    const command = echo(async (c) => integerFlag(c.values, 'count'));
    for (const argv of [['--bogus', 'x'], [], ['a', 'b'], ['a', '--count', 'many'], ['a', '--count', '1', '--count', '2']]) {
      const run = capture();
      assert.equal(await command.run([...argv, '--json'], run.io), ExitCode.Usage, argv.join(' '));
      const parsed = JSON.parse(run.stdout()) as { error: { code: string; exitCode: number; message: string } };
      assert.equal(parsed.error.exitCode, 2);
      assert.match(run.stderr(), /^slipway: /);
    }
  });

  it('names an empty argument and an --insecure value that can never match a registry as usage errors', async () => {
    let ran = false;
    const command = echo(async () => (ran = true));
    for (const [argv, message] of [
      [[''], /^slipway: argument 1 is empty \(an unset variable\?\)\n/],
      [['x', '--insecure', ''], /^slipway: --insecure wants HOST, HOST:PORT or \*\.DOMAIN, got ""\n$/],
      [['x', '--insecure', 'reg:5000/path'], /got "reg:5000\/path"/],
      [['x', '--insecure', '*.corp:5000'], /got "\*\.corp:5000"/],
      [['x', '--insecure', ' reg:5000'], /got " reg:5000"/],
    ] as const) {
      const run = capture();
      assert.equal(await command.run([...argv], run.io), ExitCode.Usage, argv.join(' '));
      assert.match(run.stderr(), message);
    }
    assert.equal(ran, false);
    const accepted = capture();
    assert.equal(await command.run(['x', '--insecure', 'reg:5000', '--insecure', 'https://r.io/', '--insecure', '*.lab.corp', '--insecure', '[::1]:5000', '--insecure', 'reg:5000//'], accepted.io), ExitCode.Ok, accepted.stderr());
  });

  it('maps error codes to exit codes and never prints the password it knows', async () => {
    const password = 'hunter2-secret';
    const cases: [Error, number][] = [
      [new InvalidArgumentError('bad', { code: 'SLIPWAY_INVALID_REFERENCE' }), ExitCode.Usage],
      [new NotFoundError(`nothing for ${password}`), ExitCode.NotFound],
      [new SlipwayError('SLIPWAY_AUTH', `denied ${password}`), ExitCode.Auth],
      [new SlipwayError('SLIPWAY_DESTINATION_EXISTS', 'exists'), ExitCode.Conflict],
      [new SlipwayError('SLIPWAY_PLATFORM_MISMATCH', 'arm'), ExitCode.NotFound],
      [Object.assign(new SlipwayError('SLIPWAY_REGISTRY', '404'), { notFound: true }), ExitCode.NotFound],
      [new SlipwayError('SLIPWAY_REGISTRY', '500'), ExitCode.Failure],
      [new SlipwayError('SLIPWAY_CONTEXT', 'build context "x" does not exist', { cause: Object.assign(new Error('gone'), { code: 'ENOENT' }) }), ExitCode.NotFound],
      [new SlipwayError('SLIPWAY_CONTEXT', '.dockerignore: bad pattern'), ExitCode.Failure],
      [new Error(`boom ${password}`), ExitCode.Failure],
    ];
    for (const [error, code] of cases) {
      const run = capture({ SLIPWAY_REGISTRY_PASSWORD: password });
      assert.equal(await echo(async () => Promise.reject(error)).run(['x', '--json'], run.io), code, error.message);
      assert.ok(!run.stdout().includes(password) && !run.stderr().includes(password), error.message);
    }
  });

  it('a single-value flag given twice is a usage error naming it; repeatable flags may repeat', async () => {
    const command = echo(async (c) => integerFlag(c.values, 'count'));
    const twice = capture();
    assert.equal(await command.run(['a', '--count=1', '--count', '2'], twice.io), ExitCode.Usage);
    assert.match(twice.stderr(), /--count given more than once/);
    const insecure = capture();
    assert.equal(await command.run(['a', '--insecure', 'h1', '--insecure', 'h2'], insecure.io), ExitCode.Ok, insecure.stderr());
  });

  it('prints usage on --help', async () => {
    const run = capture();
    assert.equal(await echo(async () => 1).run(['--help'], run.io), ExitCode.Ok);
    assert.match(run.stdout(), /^usage: slipway echo ARG/);
    assert.match(run.stdout(), /exit codes: 0 ok/);
  });
});

describe('registriesFromEnv', () => {
  it('scopes environment credentials to one registry', () => {
    const env = { SLIPWAY_REGISTRY_USERNAME: 'u', SLIPWAY_REGISTRY_PASSWORD: 'p' };
    const origin = 'SLIPWAY_REGISTRY_USERNAME/PASSWORD';
    assert.deepEqual(registriesFromEnv(env, 'ghcr.io'), [{ address: 'ghcr.io', username: 'u', password: 'p', origin }]);
    assert.deepEqual(registriesFromEnv({ ...env, SLIPWAY_REGISTRY_ADDRESS: 'quay.io' }, 'ghcr.io'), [{ address: 'quay.io', username: 'u', password: 'p', origin }]);
    assert.deepEqual(registriesFromEnv({ ...env, SLIPWAY_REGISTRY_PASSWORD: '' }, 'ghcr.io'), [{ address: 'ghcr.io', username: 'u', password: '', origin: `${origin} (the password is empty)` }]);
    assert.deepEqual(registriesFromEnv(env, undefined), []);
    assert.deepEqual(registriesFromEnv({ SLIPWAY_REGISTRY_PASSWORD: '' }, 'ghcr.io'), [], 'an empty variable is no credential');
  });

  it('refuses half a pair instead of going anonymous without a word', () => {
    assert.throws(() => registriesFromEnv({ SLIPWAY_REGISTRY_USERNAME: 'u' }, 'ghcr.io'), /SLIPWAY_REGISTRY_USERNAME is set but SLIPWAY_REGISTRY_PASSWORD is not/);
    assert.throws(() => registriesFromEnv({ SLIPWAY_REGISTRY_PASSWORD: 'p' }, 'ghcr.io'), /SLIPWAY_REGISTRY_PASSWORD is set but SLIPWAY_REGISTRY_USERNAME is not/);
  });

  it('refuses an address holding credentials, without showing them: they never matched a registry, and a hint printed them', () => {
    const env = { SLIPWAY_REGISTRY_USERNAME: 'u', SLIPWAY_REGISTRY_PASSWORD: 'p' };
    for (const address of ['http://u:CANARYaddr@127.0.0.1:5000', 'u:CANARYaddr@ghcr.io', 'https://CANARYaddr@ghcr.io']) {
      assert.throws(
        () => registriesFromEnv({ ...env, SLIPWAY_REGISTRY_ADDRESS: address }, 'ghcr.io'),
        (err: Error) => {
          assert.match(err.message, /^SLIPWAY_REGISTRY_ADDRESS ".*<redacted>@.*" holds credentials; they do not belong in an address/);
          assert.doesNotMatch(err.message, /CANARYaddr/);
          return true;
        },
        address,
      );
    }
  });
});

describe('describeError', () => {
  it('reports an interrupt as 130 whatever the error', () => {
    const controller = new AbortController();
    controller.abort();
    assert.equal(describeError(new Error('socket closed'), controller.signal).exitCode, ExitCode.Interrupted);
  });
});
