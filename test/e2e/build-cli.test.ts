// `slipway build` as a user runs it: buildx flag names, --json output checked against the registry,
// progress on stderr, exit codes for bad usage and a missing Dockerfile.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { remote } from '@slipway/oci';
import { run } from '../support/tools.js';
import { BUILDCTL, repo, skipUnlessBuildKit, useBuildBed, writeContext } from './build-harness.js';

const slipway = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));

describe('slipway build', () => {
  const bed = useBuildBed();

  it('builds two platforms, pushes, and prints digest, refs, per-platform digests and context hash as JSON', async (t) => {
    if (!skipUnlessBuildKit(t) || !bed.buildkitd) return;
    const context = await writeContext({
      'app.Dockerfile': `FROM ${bed.base}\nARG WHO\nLABEL who=$WHO\nRUN echo "$WHO" > /who\n`,
      'who.txt': 'x',
    });
    const tag = `${bed.registry.host}/${repo('cli')}:1`;
    const result = await run(
      process.execPath,
      [
        slipway, 'build', context,
        '-t', tag, '--file', `${context}/app.Dockerfile`, '--push',
        '--platform', 'linux/amd64,linux/arm64',
        '--build-arg', 'WHO=cli', '--label', 'org.example=1',
        '--network', 'host', '--add-host', 'example.invalid:127.0.0.1',
        '--builder', `buildctl=${bed.buildkitd.address}`, '--json',
      ],
      { env: { PATH: `${process.env.PATH}:${BUILDCTL!.replace(/\/[^/]+$/, '')}` } },
    );
    assert.equal(result.code, 0, result.stderr);
    const output = JSON.parse(result.stdout) as { digest: string; ref: string; refs: string[]; platformDigests: Record<string, string>; contextHash: string; builder: { kind: string } };
    const client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });
    try {
      assert.equal((await client.head(tag))?.digest, output.digest);
    } finally {
      await client.close();
    }
    assert.equal(output.ref, `${tag}@${output.digest}`);
    assert.deepEqual(output.refs, [output.ref]);
    assert.deepEqual(Object.keys(output.platformDigests).sort(), ['linux/amd64', 'linux/arm64']);
    assert.match(output.contextHash, /^sha256:/);
    assert.equal(output.builder.kind, 'buildctl');
    assert.match(result.stderr, /RUN echo "cli" > \/who/, 'builder progress on stderr');
  });

  it('exit 2 for an unknown builder, exit 3 (not found) with a JSON error for a missing Dockerfile', async () => {
    const context = await writeContext({ 'a.txt': 'a' });
    const usage = await run(process.execPath, [slipway, 'build', context, '--builder', 'kaniko']);
    assert.equal(usage.code, 2, usage.stderr);
    assert.match(usage.stderr, /unknown builder "kaniko"/);
    const missing = await run(process.execPath, [slipway, 'build', context, '--json', '--builder', 'buildctl=tcp://127.0.0.1:1']);
    assert.equal(missing.code, 3, missing.stderr);
    const error = (JSON.parse(missing.stdout) as { error: { code: string; message: string; exitCode: number } }).error;
    assert.equal(error.code, 'SLIPWAY_CONTEXT');
    assert.equal(error.exitCode, 3);
    assert.match(error.message, /Dockerfile/);
  });
});
