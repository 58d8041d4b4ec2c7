// `slipway build` and `slipway hash-context` as a user runs them, for the flags build-cli.test.ts and
// context-cache.test.ts leave out: --secret id=…,src=…, --target, --label read back from the image,
// --cache-to/--cache-from type=local across a fresh daemon, two tags, per-platform digests equal to
// the index children, the context hash equal to `hash-context`'s, plain lines without a terminal and
// live progress on one (script(1)); hash-context -f with its own ignore file, --no-cache writing
// nothing, the stat cache under XDG_CACHE_HOME, --list --json, --dialect buildah.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { parseManifest } from '@slipway/oci';
import { run, skipUnless } from '../support/tools.js';
import { BUILDCTL, readImage, repo, skipUnlessBuildKit, tempDir, useBuildBed, writeContext } from './build-harness.js';

const slipway = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));

interface BuildJson {
  digest: string;
  ref: string;
  refs: string[];
  platformDigests: Record<string, string>;
  contextHash: string;
  builder: { kind: string };
  steps: { total: number; cached: number } | null;
}

describe('audit: slipway build and hash-context', () => {
  const bed = useBuildBed();
  let env: Record<string, string>;

  before(async () => {
    env = { PATH: `${BUILDCTL ? `${dirname(BUILDCTL)}:` : ''}${process.env.PATH ?? ''}`, XDG_CACHE_HOME: await tempDir('cli-xdg') };
  });

  it('build: buildx flag names end to end, --json checked against the registry and hash-context', async (t) => {
    if (!skipUnlessBuildKit(t) || !bed.buildkitd) return;
    const secret = `CANARY-cli-${randomBytes(6).toString('hex')}`;
    const secrets = await writeContext({ 'tok.txt': secret });
    const context = await writeContext({
      'docker/app.Dockerfile':
        `FROM ${bed.base} AS main\nARG WHO\nRUN --mount=type=secret,id=tok echo "$WHO $(sha256sum < /run/secrets/tok | cut -c1-64)" > /who && sleep 1\n` +
        'FROM main AS extra\nRUN echo extra > /extra\n',
      'docker/app.Dockerfile.dockerignore': 'junk\n',
      junk: 'j',
    });
    const file = join(context, 'docker/app.Dockerfile');
    const tags = [`${bed.registry.host}/${repo('cli-a')}:1`, `${bed.registry.host}/${repo('cli-b')}:2`];
    const cache = join(await tempDir('cli-cache'), 'c');
    const args = [
      slipway, 'build', context, '-t', tags[0]!, '-t', tags[1]!, '-f', file, '--push',
      '--platform', 'linux/amd64,linux/arm64', '--build-arg', 'WHO=cli', '--label', 'org.example.cli=yes',
      '--target', 'main', '--secret', `id=tok,src=${secrets}/tok.txt`, '--cache-to', `type=local,dest=${cache},mode=max`,
      '--network', 'host', '--builder', `buildctl=${bed.buildkitd.address}`, '--json',
    ];
    const first = await run(process.execPath, args, { env });
    assert.equal(first.code, 0, first.stderr);
    const out = JSON.parse(first.stdout) as BuildJson;
    for (const tag of tags) assert.equal((await bed.client.head(tag))?.digest, out.digest, `${tag} holds the printed digest`);
    assert.deepEqual(out.refs, tags.map((tag) => `${tag}@${out.digest}`));
    assert.equal(out.ref, out.refs[0]);
    const root = await bed.client.getManifest(tags[0]!);
    const index = parseManifest(root.bytes, root.descriptor.mediaType);
    const children = index.kind === 'index' ? index.manifest.manifests.filter((d) => d.platform?.architecture !== 'unknown') : [];
    assert.deepEqual(Object.fromEntries(children.map((d) => [`${d.platform!.os}/${d.platform!.architecture}`, d.digest])), out.platformDigests);
    const expected = createHash('sha256').update(secret).digest('hex');
    for (const digest of Object.values(out.platformDigests)) {
      const image = await readImage(bed.client, `${tags[0]!.replace(/:[^:/]+$/, '')}@${digest}`);
      assert.equal(image.files.get('who')?.toString(), `cli ${expected}\n`, '--build-arg and --secret reached RUN');
      assert.equal(image.files.has('extra'), false, '--target');
      assert.equal((image.config.config as { Labels?: Record<string, string> }).Labels?.['org.example.cli'], 'yes', '--label');
    }
    assert.ok(!first.stdout.includes(secret) && !first.stderr.includes(secret), 'the secret was printed');
    // No terminal: plain lines, no cursor movement or colour.
    assert.ok(!first.stderr.includes('\x1b['), 'escape sequences on a non-terminal');
    assert.match(first.stderr, /^#\d+ \[linux\/arm64 main 2\/2\] RUN /m, 'builder progress as plain lines');
    // The context hash is what hash-context says for the same context and Dockerfile.
    const hashed = await run(process.execPath, [slipway, 'hash-context', context, '-f', file, '--json'], { env });
    assert.equal(hashed.code, 0, hashed.stderr);
    const hash = JSON.parse(hashed.stdout) as { digest: string; ignoreFile: string };
    assert.equal(out.contextHash, hash.digest);
    assert.equal(hash.ignoreFile, `${file}.dockerignore`);

    // --cache-from the local directory on a daemon without any state: the RUN step is cached.
    await bed.buildkitd.restartFresh();
    const second = await run(process.execPath, [
      slipway, 'build', context, '-f', file, '--platform', 'linux/amd64,linux/arm64', '--build-arg', 'WHO=cli', '--target', 'main',
      '--secret', `id=tok,src=${secrets}/tok.txt`, '--cache-from', `type=local,src=${cache}`, '--network', 'host',
      '--builder', `buildctl=${bed.buildkitd.address}`, '--json',
    ], { env });
    assert.equal(second.code, 0, second.stderr);
    const steps = (JSON.parse(second.stdout) as BuildJson).steps;
    assert.ok(steps && steps.cached === steps.total && steps.total >= 2, `steps after --cache-from on a fresh daemon: ${JSON.stringify(steps)}`);

    // On a terminal (script(1) gives it one) the build's progress streams to it as it happens.
    if (!skipUnless(t, 'script', 'progress on a terminal')) return;
    const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    const command = [process.execPath, slipway, 'build', context, '-f', file, '--target', 'main', '--build-arg', 'WHO=tty',
      '--secret', `id=tok,src=${secrets}/tok.txt`, '--network', 'host', '--builder', `buildctl=${bed.buildkitd.address}`].map(quote).join(' ');
    const tty = await run('script', ['-qfec', command, '/dev/null'], { env, timeoutMs: 120_000 });
    assert.equal(tty.code, 0, tty.stdout);
    assert.match(tty.stdout, /#\d+ \[main 2\/2\] RUN /, 'progress on the terminal');
    assert.match(tty.stdout, /slipway: built with buildctl/);
    assert.ok(!tty.stdout.includes(secret));
  });

  it('hash-context: -f with its ignore file, --no-cache writes nothing, the stat cache under XDG_CACHE_HOME, --list --json, --dialect buildah', async () => {
    const xdg = await tempDir('cli-xdg');
    const cli = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      run(process.execPath, [slipway, 'hash-context', ...args], { env: { XDG_CACHE_HOME: xdg } });
    const context = await writeContext({
      Dockerfile: 'FROM scratch\n',
      'alt/Alt.Dockerfile': 'FROM scratch\nCOPY . /\n',
      'alt/Alt.Dockerfile.dockerignore': 'b.txt\n',
      '.dockerignore': 'a.txt\n',
      '.containerignore': 'c.txt\n',
      'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c',
    });
    const paths = async (args: string[]): Promise<string[]> => {
      const r = await cli([...args, '--list', '--json', context]);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { entries: { path: string }[] }).entries.map((e) => e.path).filter((p) => p.endsWith('.txt'));
    };
    assert.deepEqual(await paths(['--no-cache']), ['b.txt', 'c.txt'], '.dockerignore');
    assert.deepEqual(await readdir(xdg), [], '--no-cache wrote under XDG_CACHE_HOME');
    assert.deepEqual(await paths(['--no-cache', '-f', join(context, 'alt/Alt.Dockerfile')]), ['a.txt', 'c.txt'], '<Dockerfile>.dockerignore beats .dockerignore');
    assert.deepEqual(await paths(['--no-cache', '--dialect', 'buildah']), ['a.txt', 'b.txt'], 'buildah reads .containerignore first');
    const listed = await cli(['--list', context]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^sha256:[0-9a-f]{64}\n/, '--list prints the digest first');
    assert.match(listed.stdout, /^file +- +1 {2}b\.txt$/m, 'then type, exec bit, size and path');
    assert.ok((await readdir(join(xdg, 'slipway', 'context'))).some((f) => f.endsWith('.bin')), 'the stat cache is under XDG_CACHE_HOME/slipway/context');
    await writeFile(join(context, 'c.txt'), 'changed');
    const explained = await cli(['--explain', context]);
    assert.match(explained.stdout, /since the last run: 0 added, 0 removed, 1 changed/);
    assert.match(explained.stdout, /^ {2}~ c\.txt$/m);
    assert.equal((await cli(['--dialect', 'bogus', context])).code, 2);
  });
});
