// `slipway copy --digest-tags` between two real registries: tags named after a copied digest
// (`sha256-<hex>.sig`, `.att`: where cosign keeps signatures and attestations, manifests without a
// `subject`) made by regctl at the source, then read back at the destination by regctl and skopeo.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { copyImage } from '@slipway/engine';
import { SlipwayError } from '@slipway/oci';
import { startFaultProxy } from '../support/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { hasTool, run, runChecked } from '../support/tools.js';
import { pushBuildahIndex, skopeoRaw, type PushedIndex } from './copy-fixtures.js';
import { sha256Text } from './oci-archive-fixtures.js';
import { regctl, regctlPath } from './regctl-artifacts.js';

const main = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));
const missing = [...['buildah', 'skopeo'].filter((tool) => !hasTool(tool)), ...(regctlPath ? [] : ['regctl (scripts/install-go-tools.sh)'])];

interface CopiedJson {
  digest: string;
  noop: boolean;
  digestTags: { tag: string; digest: string; subject: string; outcome: 'copied' | 'kept'; held?: string }[];
}

describe('slipway copy --digest-tags against real registries', { skip: missing.length > 0 ? `needs ${missing.join(', ')}` : false }, () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let work: string;
  let index: PushedIndex;
  const digestTag = (digest: string, suffix: string) => `${digest.replace(':', '-')}.${suffix}`;
  /** Tag → digest of what regctl put there at the source. */
  const made = new Map<string, string>();

  const tool = regctl(
    () => [src.host, dst.host],
    () => work,
  );
  /** A small artifact without a subject at `host/app:tag`, as cosign writes a `.sig`; returns its digest. */
  const put = async (host: string, tag: string, content: string): Promise<string> => {
    await tool.run(['artifact', 'put', '--artifact-type', 'application/vnd.dev.cosign.simplesigning.v1+json', `${host}/app:${tag}`], content);
    return sha256Text(await skopeoRaw(`${host}/app:${tag}`));
  };
  const tags = (host: string, repository: string) => tool.tags(`${host}/${repository}`);
  const slipway = (args: string[]) => run(process.execPath, [main, ...args], { env: { HOME: work }, timeoutMs: 120_000 });
  const copyJson = async (args: string[]): Promise<CopiedJson> => {
    const outcome = await slipway(['copy', ...args, '--json', '-q']);
    assert.equal(outcome.code, 0, outcome.stderr);
    return JSON.parse(outcome.stdout) as CopiedJson;
  };

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    work = await mkdtemp(join(tmpdir(), 'slipway-digest-tags-e2e-'));
    index = await pushBuildahIndex(`${src.host}/app:1`);
    const arm = index.children.find((c) => c.platform === 'linux/arm64')!;
    for (const [tag, content] of [
      [digestTag(index.digest, 'sig'), 'signature of the index'],
      [digestTag(index.digest, 'att'), 'attestation of the index'],
      [digestTag(arm.digest, 'sig'), 'signature of the arm64 image'],
      // Neither is copied: a digest that is not copied, and the bare referrers fallback tag schema.
      [digestTag(`sha256:${'0'.repeat(64)}`, 'sig'), 'signature of something else'],
      [index.digest.replace(':', '-'), 'not a digest tag: the referrers fallback tag name'],
    ] as const) {
      made.set(tag, await put(src.host, tag, content));
    }
    // A signature of the attestation: found one level further.
    const att = made.get(digestTag(index.digest, 'att'))!;
    made.set(digestTag(att, 'sig'), await put(src.host, digestTag(att, 'sig'), 'signature of the attestation'));
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('copies the digest tags of every copied manifest, and theirs, byte for byte, and nothing else', async () => {
    const arm = index.children.find((c) => c.platform === 'linux/arm64')!;
    const att = made.get(digestTag(index.digest, 'att'))!;
    const result = await copyJson([index.reference, `${dst.host}/app:1`, '--digest-tags']);
    assert.equal(result.digest, index.digest);
    const want = [digestTag(index.digest, 'sig'), digestTag(index.digest, 'att'), digestTag(arm.digest, 'sig'), digestTag(att, 'sig')];
    assert.deepEqual(result.digestTags.map((t) => t.tag).sort(), [...want].sort());
    for (const t of result.digestTags) {
      assert.equal(t.digest, made.get(t.tag), `${t.tag}: the digest the source holds`);
      assert.equal(sha256Text(await skopeoRaw(`${dst.host}/app:${t.tag}`)), made.get(t.tag), `${t.tag} byte for byte`);
    }
    assert.equal(result.digestTags.find((t) => t.tag === digestTag(att, 'sig'))?.subject, att);
    assert.deepEqual(await tags(dst.host, 'app'), ['1', ...want].sort());
  });

  it('without --digest-tags copies the image only', async () => {
    const result = await copyJson([index.reference, `${dst.host}/plain:1`]);
    assert.deepEqual(result.digestTags, []);
    assert.deepEqual(await tags(dst.host, 'plain'), ['1']);
  });

  it('keeps a destination digest tag the source\'s does not extend (a signature made there alone) unless --overwrite; plain output says so', async () => {
    const sig = digestTag(index.digest, 'sig');
    const other = await put(dst.host, sig, 'a signature made at the destination');
    assert.notEqual(other, made.get(sig));
    const again = await slipway(['copy', index.reference, `${dst.host}/app:1`, '--digest-tags']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already holds sha256:[0-9a-f]{64}: nothing to copy/);
    assert.equal(sha256Text(await skopeoRaw(`${dst.host}/app:${sig}`)), other, 'left as it was');
    const lines = again.stdout.trim().split('\n');
    assert.equal(lines[0], `${dst.host}/app:1@${index.digest}`);
    assert.ok(lines.includes(`digest-tag ${sig} kept ${other} (source: ${made.get(sig)}; --overwrite replaces it)`), again.stdout);
    assert.ok(lines.includes(`digest-tag ${digestTag(index.digest, 'att')} ${made.get(digestTag(index.digest, 'att'))} -> ${index.digest}`), again.stdout);
    assert.equal(lines.length, 5);
    const forced = await slipway(['copy', index.reference, `${dst.host}/app:1`, '--digest-tags', '--overwrite', '--json']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stderr, /already holds sha256:[0-9a-f]{64}; wrote 1 manifest of its referrers or digest tags/);
    const result = JSON.parse(forced.stdout) as CopiedJson;
    assert.equal(result.noop, true);
    assert.deepEqual(result.digestTags.find((t) => t.tag === sig), { tag: sig, digest: made.get(sig), subject: index.digest, outcome: 'copied' });
    assert.equal(sha256Text(await skopeoRaw(`${dst.host}/app:${sig}`)), made.get(sig));
  });

  it('replaces a destination digest tag the source\'s extends (a signature added at the source since), without --overwrite', async () => {
    const arm = index.children.find((c) => c.platform === 'linux/arm64')!;
    const sig = digestTag(arm.digest, 'sig');
    // Two signature payloads as files: a manifest of [one] at both ends, then [one, two] at the source,
    // the way cosign adds a layer to the same .sig manifest for each new signature.
    const [one, two] = [join(work, 'sig-one.json'), join(work, 'sig-two.json')];
    await writeFile(one, '{"signature":"one"}');
    await writeFile(two, '{"signature":"two"}');
    const putFiles = async (host: string, files: string[]) => {
      await tool.run(['artifact', 'put', '--artifact-type', 'application/vnd.dev.cosign.simplesigning.v1+json', ...files.flatMap((f) => ['--file', f, '--file-media-type', 'application/vnd.dev.cosign.simplesigning.v1+json']), `${host}/app:${sig}`]);
      return sha256Text(await skopeoRaw(`${host}/app:${sig}`));
    };
    const first = await putFiles(src.host, [one]);
    assert.equal(await putFiles(dst.host, [one]), first);
    const extended = await putFiles(src.host, [one, two]);
    const result = await copyJson([index.reference, `${dst.host}/app:1`, '--digest-tags']);
    assert.deepEqual(result.digestTags.find((t) => t.tag === sig), { tag: sig, digest: extended, subject: arm.digest, outcome: 'copied' });
    assert.equal(sha256Text(await skopeoRaw(`${dst.host}/app:${sig}`)), extended);
    made.set(sig, extended);
  });

  it('--platform: only the digest tags of what was copied', async () => {
    const arm = index.children.find((c) => c.platform === 'linux/arm64')!;
    const result = await copyJson([index.reference, `${dst.host}/arm:1`, '--platform', 'linux/arm64', '--digest-tags']);
    assert.equal(result.digest, arm.digest);
    assert.deepEqual(result.digestTags, [{ tag: digestTag(arm.digest, 'sig'), digest: made.get(digestTag(arm.digest, 'sig')), subject: arm.digest, outcome: 'copied' }]);
    assert.deepEqual(await tags(dst.host, 'arm'), ['1', digestTag(arm.digest, 'sig')].sort());
  });

  it('reads each digest tag\'s manifest from the source once: by tag, then the copy takes those bytes', async () => {
    const proxy = await startFaultProxy({ target: src });
    try {
      const result = await copyImage({ source: `${proxy.host}/app:1`, destination: `${dst.host}/counted:1`, digestTags: true });
      assert.equal(result.digestTags.length, 4);
      for (const t of result.digestTags) {
        const reads = proxy.requestsMatching({ method: 'GET', path: `/manifests/` }).filter((r) => r.path.endsWith(`/manifests/${t.tag}`) || r.path.endsWith(`/manifests/${t.digest}`));
        assert.deepEqual(reads.map((r) => r.path), [`/v2/app/manifests/${t.tag}`], `${t.tag}: one GET, by tag`);
      }
    } finally {
      await proxy.stop();
    }
  });

  it('an abort between two digest tags is an AbortedError (SLIPWAY_ABORTED), and copies no further tag', async () => {
    const controller = new AbortController();
    let abortedAt: string | undefined;
    await assert.rejects(
      copyImage({
        source: index.reference,
        destination: `${dst.host}/aborted:1`,
        digestTags: true,
        signal: controller.signal,
        // The first digest tag's copy has finished when its tag is written: abort right then.
        onProgress: (event) => {
          if (event.type === 'manifest-done' && event.tag?.startsWith('sha256-') && abortedAt === undefined) {
            abortedAt = event.tag;
            controller.abort(new Error('stop'));
          }
        },
      }),
      (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_ABORTED',
    );
    assert.ok(abortedAt);
    assert.deepEqual(await tags(dst.host, 'aborted'), ['1', abortedAt].sort());
  });

  it('an OCI layout source with --digest-tags is a usage error that copies nothing', async () => {
    const layout = join(work, 'layout');
    await runChecked('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${index.reference}`, `oci:${layout}:1`, '--override-arch', 'arm64']);
    const outcome = await slipway(['copy', `oci:${layout}:1`, `${dst.host}/fromlayout:1`, '--digest-tags']);
    assert.equal(outcome.code, 2, outcome.stderr);
    assert.match(outcome.stderr, /digest tags are only copied from a registry source/);
    assert.deepEqual(await tags(dst.host, 'fromlayout').catch(() => []), []);
  });
});
