// `slipway copy --all-tags` / `--tag-regex` and the library's copyRepository between two real
// registries: tags made by buildah and skopeo (an index, single images, aliases of one digest, a
// Docker schema 1 manifest really stored by distribution), read back with skopeo; the destination
// behind a counting proxy, so that "each blob once" and "a re-run costs HEADs" are seen on the wire.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { copyRepository, type CopyRepositoryResult } from '@slipway/engine';
import { SlipwayError } from '@slipway/oci';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { hasBusyboxDeb, pushBusyboxImage } from '../support/fixtures.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { hasTool, run, runChecked, toolPath } from '../support/tools.js';
import { pushBuildahIndex, skopeoRaw, type PushedIndex } from './copy-fixtures.js';
import { sha256Text } from './oci-archive-fixtures.js';

const cranePath = toolPath('crane');
const main = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));
const missing = [...['buildah', 'skopeo'].filter((tool) => !hasTool(tool)), ...(['amd64', 'arm64'] as const).filter((a) => !hasBusyboxDeb(a)).map((a) => `busybox ${a} deb`)];

describe('copying a whole repository between real registries', { skip: missing.length > 0 ? `SKIPPED: needs ${missing.join(', ')} (scripts/ci-setup.sh)` : false }, () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let proxy: FaultProxy;
  /** In front of the source: what a mirror run asks of it. */
  let srcProxy: FaultProxy;
  let work: string;
  let index: PushedIndex;
  /** Source tag → the digest skopeo reads there. */
  const made = new Map<string, string>();
  const modern = ['1.0', '1.0.1', 'latest', 'arm', 'multi'];

  const slipway = (args: string[]) => run(process.execPath, [main, ...args], { env: { HOME: work }, timeoutMs: 120_000 });
  const digestAt = async (reference: string) => sha256Text(await skopeoRaw(reference));
  const tagsAt = async (repository: string) => {
    const out = await runChecked('skopeo', ['list-tags', '--tls-verify=false', `docker://${repository}`]);
    return ((JSON.parse(out.stdout) as { Tags: string[] | null }).Tags ?? []).sort();
  };

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await startFaultProxy({ target: dst });
    srcProxy = await startFaultProxy({ target: src });
    work = await mkdtemp(join(tmpdir(), 'slipway-repository-e2e-'));
    // A schema 1 manifest at one tag: distribution 2.8 stores one only with compatibility.schema1.enabled.
    await src.halt();
    await appendFile(join(src.dataDir, 'config.yml'), 'compatibility:\n  schema1:\n    enabled: true\n');
    await src.restart();
    const amd = await pushBusyboxImage(src.host, 'app', 'amd64', { tag: '1.0', format: 'docker' });
    await pushBusyboxImage(src.host, 'app', 'arm64', { tag: 'arm' });
    index = await pushBuildahIndex(`${src.host}/app:multi`);
    const skopeoCopy = (from: string, to: string, ...flags: string[]) =>
      runChecked('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', ...flags, `docker://${from}`, `docker://${to}`]);
    // Aliases: three tags, one digest.
    await skopeoCopy(amd.ref, `${src.host}/app:1.0.1`);
    await skopeoCopy(amd.ref, `${src.host}/app:latest`);
    await skopeoCopy(amd.ref, `${src.host}/app:old`, '--format', 'v2s1');
    for (const tag of [...modern, 'old']) made.set(tag, await digestAt(`${src.host}/app:${tag}`));
    assert.equal(made.get('latest'), amd.digest);
    assert.equal(made.get('multi'), index.digest);
  });
  after(async () => {
    await Promise.all([proxy?.stop(), srcProxy?.stop()]);
    await Promise.all([src?.stop(), dst?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('copies every tag byte for byte, each blob once, each root read once, and reports the schema 1 tag without stopping (exit 1)', async () => {
    proxy.clearRequests();
    srcProxy.clearRequests();
    const out = await slipway(['copy', '--all-tags', `${srcProxy.host}/app`, `${proxy.host}/mirror`, '--json', '-q']);
    assert.equal(out.code, 1, out.stderr);
    const result = JSON.parse(out.stdout) as CopyRepositoryResult;
    assert.equal(result.listed, 6, out.stdout);
    const byTag = new Map(result.tags.map((t) => [t.tag, t]));
    assert.deepEqual([...byTag.keys()].sort(), [...modern, 'old'].sort());
    for (const tag of modern) {
      assert.equal(byTag.get(tag)?.outcome, 'copied', tag);
      assert.equal(byTag.get(tag)?.digest, made.get(tag), tag);
      assert.equal(byTag.get(tag)?.reference, `${proxy.host}/mirror:${tag}@${made.get(tag)}`);
      // What skopeo reads at the destination hashes to the source's digest: byte for byte.
      assert.equal(await digestAt(`${dst.host}/mirror:${tag}`), made.get(tag), tag);
    }
    const old = byTag.get('old')!;
    assert.equal(old.outcome, 'failed');
    assert.equal(old.error?.code, 'SLIPWAY_UNSUPPORTED_MEDIA_TYPE');
    assert.match(old.error?.message ?? "", /schema 1/);
    assert.match(out.stderr, /tag old failed: .*schema 1/);
    assert.deepEqual(await tagsAt(`${dst.host}/mirror`), [...modern].sort(), 'no tag for the refused manifest');
    // Each blob went up once, though three tags name the amd64 image: one upload session per blob.
    const uploads = proxy.requestsMatching({ method: 'POST', path: '/blobs/uploads/' }).length;
    const distinct = new Set(result.tags.flatMap((t) => (t.outcome === 'copied' ? [t.digest] : []))).size;
    assert.ok(uploads > 0);
    assert.equal(result.stats.blobsCopied, uploads, 'uploads = blobs counted as copied');
    // The aliases of an image already written cost their manifest PUT alone: no blob HEAD for them.
    const manifestPuts = proxy.requestsMatching({ method: 'PUT', path: '/manifests/' }).length;
    assert.equal(manifestPuts, result.stats.manifestsPut);
    assert.ok(distinct === 3, `three distinct images among the copied tags, got ${distinct}`);
    // At the source: one GET per root digest (the aliases' bytes are not read again), the index's
    // children once each, never a manifest GET by tag (the HEADs found the digests).
    const manifestGets = srcProxy.requestsMatching({ method: 'GET', path: '/manifests/' }).map((r) => r.path.replace(/^.*\/manifests\//, ''));
    const roots = new Set([...modern].map((tag) => made.get(tag)!));
    const children = index.children.map((c) => c.digest);
    assert.deepEqual([...manifestGets].sort(), [...roots, ...children].sort(), manifestGets.join('\n'));
    // Each blob read once: a config read to learn a platform is uploaded from memory, and the aliases read none.
    const blobGets = srcProxy.requestsMatching({ method: 'GET', path: '/blobs/' }).map((r) => r.path);
    assert.equal(new Set(blobGets).size, blobGets.length, blobGets.join('\n'));
    assert.equal(blobGets.length, uploads);
    const blobHeads = proxy.requestsMatching({ method: 'HEAD', path: '/blobs/' }).length;
    assert.equal(result.stats.blobsSkipped, 0, 'no image shares a blob with another: nothing was found present');
    assert.equal(blobHeads, uploads, 'one blob HEAD per blob uploaded, none for the aliases');
  });

  it('a re-run costs a manifest HEAD per tag at the destination and writes nothing (exit 0 with the schema 1 tag filtered out)', async () => {
    proxy.clearRequests();
    const out = await slipway(['copy', '--tag-regex', '(?!old$).*', `${srcProxy.host}/app`, `${proxy.host}/mirror`, '--json', '-q']);
    assert.equal(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout) as CopyRepositoryResult;
    assert.deepEqual(
      result.tags.map((t) => [t.tag, t.outcome]).sort(),
      modern.map((tag) => [tag, 'unchanged']).sort(),
    );
    const seen = proxy.requests.map((r) => `${r.method} ${r.path.replace(/\/v2\/mirror\/manifests\/.*/, '/v2/mirror/manifests/TAG')}`);
    assert.deepEqual(seen.filter((r) => !r.startsWith('GET /v2/ ') && r !== 'GET /v2/'), modern.map(() => 'HEAD /v2/mirror/manifests/TAG'), seen.join('\n'));
  });

  it('keeps a destination tag holding another image (exit 5) unless --overwrite, touching nothing else', async () => {
    const armDigest = made.get('arm')!;
    await runChecked('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src.host}/app:arm`, `docker://${dst.host}/mirror:1.0`]);
    const kept = await slipway(['copy', '--all-tags', '--tag-regex', '1\\..*', `${src.host}/app`, `${dst.host}/mirror`]);
    assert.equal(kept.code, 5, kept.stderr);
    assert.match(kept.stderr, new RegExp(`tag 1\\.0 kept: the destination holds ${armDigest}, not the source's ${made.get('1.0')} \\(--overwrite replaces it\\)`));
    // stdout: what the destination holds from the source, one pinned reference per line.
    assert.deepEqual(kept.stdout.trim().split('\n'), [`${dst.host}/mirror:1.0.1@${made.get('1.0.1')}`]);
    assert.equal(await digestAt(`${dst.host}/mirror:1.0`), armDigest);
    const replaced = await slipway(['copy', '--tag-regex', '1\\..*', '--overwrite', `${src.host}/app`, `${dst.host}/mirror`, '-q']);
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.equal(await digestAt(`${dst.host}/mirror:1.0`), made.get('1.0'));
  });

  it('--platform applies to every tag: the index gives its child, a tag without the platform fails alone', async () => {
    const out = await slipway(['copy', '--all-tags', '--platform', 'linux/arm64', '--tag-regex', 'arm|multi|latest', `${src.host}/app`, `${dst.host}/arm-only`, '--json', '-q']);
    assert.equal(out.code, 1, out.stderr);
    const result = JSON.parse(out.stdout) as CopyRepositoryResult;
    const byTag = new Map(result.tags.map((t) => [t.tag, t]));
    const armChild = index.children.find((c) => c.platform === 'linux/arm64')!.digest;
    assert.equal(byTag.get('multi')?.outcome, 'copied');
    assert.equal(byTag.get('multi')?.digest, armChild);
    assert.equal(await digestAt(`${dst.host}/arm-only:multi`), armChild);
    assert.equal(byTag.get('arm')?.digest, made.get('arm'));
    assert.equal(byTag.get('latest')?.outcome, 'failed');
    assert.equal(byTag.get('latest')?.error?.code, 'SLIPWAY_PLATFORM_MISMATCH');
    assert.deepEqual(await tagsAt(`${dst.host}/arm-only`), ['arm', 'multi']);
  });

  it('refuses what is not a repository copy with a usage error; a missing repository is exit 3, no match yet exit 0', async () => {
    const cases: [string[], number, RegExp][] = [
      [['copy', '--all-tags', `${src.host}/app:1.0`, `${dst.host}/x`], 2, /a repository copy takes registry\/repository, without tag or digest/],
      [['copy', '--all-tags', `${src.host}/app`, `${dst.host}/x@${made.get('1.0')}`], 2, /without tag or digest/],
      [['copy', '--all-tags', `${src.host}/app`, `oci:${join(work, 'layout')}`], 2, /is a local place \(oci:\); a repository copy goes from registry to registry/],
      [['copy', '--tag-regex', '(unclosed', `${src.host}/app`, `${dst.host}/x`], 2, /tag pattern "\(unclosed" is not a JavaScript regular expression/],
      [['copy', '--tag-regex', '[[:digit:]]+', `${src.host}/app`, `${dst.host}/x`], 2, /POSIX classes such as \[\[:digit:\]\] are not JavaScript regular expressions; write \[0-9\]/],
      [['copy', '--all-tags', '--jobs', '0', `${src.host}/app`, `${dst.host}/x`], 2, /jobs/],
      [['copy', '--all-tags', '--digest-tags', `${src.host}/app`, `${dst.host}/x`], 2, /drop --digest-tags/],
      [['copy', '--tag-regex', 'nothing-like-this', `${src.host}/app`, `${dst.host}/x`], 0, /has no tag matching "nothing-like-this" \(6 tags listed\): nothing to copy/],
      [['copy', '--all-tags', `${src.host}/never-pushed`, `${dst.host}/x`], 3, /never-pushed not found/],
    ];
    for (const [args, code, message] of cases) {
      const out = await slipway([...args, '-q']);
      assert.equal(out.code, code, `${args.join(' ')}: ${out.stderr}`);
      assert.match(out.stderr, message);
    }
    assert.deepEqual(await tagsAt(`${dst.host}/x`).catch(() => []), [], 'nothing was written');
  });

  it('images sharing layers, made by crane, move each shared layer once', { skip: cranePath ? false : 'SKIPPED: needs crane (scripts/install-go-tools.sh)' }, async () => {
    const layers = join(work, 'layers');
    await mkdir(layers, { recursive: true });
    const layerTar = async (label: string, bytes: number) => {
      const dir = join(layers, label);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, label), randomBytes(bytes));
      const tar = join(layers, `${label}.tar`);
      await runChecked('tar', ['-C', dir, '-cf', tar, label]);
      return tar;
    };
    const crane = (...args: string[]) => runChecked(cranePath!, [...args, '--insecure'], { env: { HOME: work } });
    await crane('append', '-f', await layerTar('base', 512 * 1024), '-t', `${src.host}/layered:base`);
    for (const n of [1, 2, 3]) await crane('append', '-b', `${src.host}/layered:base`, '-f', await layerTar(`top${n}`, 4096), '-t', `${src.host}/layered:app${n}`);
    proxy.clearRequests();
    const result = await copyRepository({ source: `${src.host}/layered`, destination: `${proxy.host}/layered`, jobs: 4 });
    assert.deepEqual(result.tags.map((t) => t.outcome), ['copied', 'copied', 'copied', 'copied']);
    const uploads = proxy.requestsMatching({ method: 'PUT', path: '/blobs/uploads/' }).map((r) => new URL(r.path, 'http://x').searchParams.get('digest'));
    assert.equal(new Set(uploads).size, uploads.length, `a blob went up twice: ${uploads.join(' ')}`);
    // The base layer and 4 configs... counted from what the registry holds: every distinct blob of the four images once.
    assert.equal(uploads.length, result.stats.blobsCopied);
    for (const tag of ['base', 'app1', 'app2', 'app3']) assert.equal(await digestAt(`${dst.host}/layered:${tag}`), await digestAt(`${src.host}/layered:${tag}`));
  });

  it('(?i) and RE2-style escapes in --tag-regex: the whole tag, any case', async () => {
    const out = await slipway(['copy', '--tag-regex', '(?i)LATEST|1\\-?\\.0', `${src.host}/app`, `${dst.host}/caseless`, '--json', '-q']);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual((JSON.parse(out.stdout) as CopyRepositoryResult).tags.map((t) => t.tag).sort(), ['1.0', 'latest']);
  });

  it('an error that ends the run names its tag, and what was done before is printed (and in --json under partial)', async () => {
    // Every manifest PUT after the first is refused as unauthorised: an error for the run, not a tag.
    const refuseAfterOne = () => proxy.inject({ match: { method: 'PUT', path: '/manifests/' }, fault: { status: 403, code: 'DENIED' }, times: Infinity, skip: 1 });
    let refusal = refuseAfterOne();
    try {
      const text = await slipway(['copy', '--all-tags', '--tag-regex', '1\\..*|latest', '-j', '1', `${src.host}/app`, `${proxy.host}/ended`]);
      assert.equal(text.code, 4, text.stderr);
      // The three tags are aliases of one image: whichever the registry lists first goes first.
      const failedOn = /slipway: tag (1\.0|1\.0\.1|latest): .*DENIED.*\(copying .*\/app to .*\/ended; 1 tag done before\)/.exec(text.stderr)?.[1];
      assert.ok(failedOn !== undefined, text.stderr);
      const printed = text.stdout.trim().split('\n');
      assert.equal(printed.length, 1, text.stdout);
      assert.match(printed[0]!, new RegExp(`^${proxy.host}/ended:(1\\.0|1\\.0\\.1|latest)@${made.get('1.0')}$`), 'the tag done before is printed');
      assert.ok(!printed[0]!.includes(`ended:${failedOn}@`));
      refusal.remove();
      refusal = refuseAfterOne();
      const json = await slipway(['copy', '--all-tags', '--tag-regex', '1\\..*|latest', '-j', '1', `${src.host}/app`, `${proxy.host}/ended-json`, '--json', '-q']);
      assert.equal(json.code, 4, json.stderr);
      const error = (JSON.parse(json.stdout) as { error: { code: string; partial: CopyRepositoryResult } }).error;
      assert.equal(error.code, 'SLIPWAY_AUTH');
      assert.deepEqual(error.partial.tags.map((t) => [t.digest, t.outcome]), [[made.get('1.0'), 'copied']]);
    } finally {
      refusal.remove();
    }
  });

  it('an alias refused while other images are still copying ends the run with its own error, not the aborts it causes', async () => {
    // The three aliases' first PUT goes through; the next (an alias's) is refused. The index's root
    // is slow to read, so its group is mid-copy when that happens.
    const refusal = proxy.inject({ match: { method: 'PUT', path: /\/manifests\/(1\.0|1\.0\.1|latest)$/ }, fault: { status: 403, code: 'DENIED' }, times: Infinity, skip: 1 });
    const slow = srcProxy.inject({ match: { method: 'GET', path: `/manifests/${made.get('multi')}` }, fault: { delayMs: 1500 }, times: Infinity });
    try {
      const out = await slipway(['copy', '--tag-regex', '1\\..*|latest|multi', '-j', '3', `${srcProxy.host}/app`, `${proxy.host}/alias-refused`, '--json', '-q']);
      assert.equal(out.code, 4, out.stderr);
      const error = (JSON.parse(out.stdout) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'SLIPWAY_AUTH');
      assert.match(error.message, /^tag (1\.0|1\.0\.1|latest): .*DENIED/);
    } finally {
      refusal.remove();
      slow.remove();
    }
  });

  it('copyRepository stops at cancellation: every tag written is whole, and the ones reported done are among them', async () => {
    const controller = new AbortController();
    const done: string[] = [];
    await assert.rejects(
      copyRepository({
        source: `${src.host}/app`,
        destination: `${dst.host}/cancelled`,
        tagPattern: '(?!old$).*',
        signal: controller.signal,
        onProgress: (event) => {
          if (event.type !== 'tag-done') return;
          done.push(event.result.tag);
          controller.abort(new Error('enough'));
        },
      }),
      (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_ABORTED',
    );
    // A copy that finished in the same moment may report too; the abort stops the rest.
    assert.ok(done.length >= 1 && done.length < 5, done.join());
    // Copies running beside the first may have written their tag before the abort reached them.
    const written = await tagsAt(`${dst.host}/cancelled`);
    assert.ok(written.includes(done[0]!), written.join());
    for (const tag of written) assert.equal(await digestAt(`${dst.host}/cancelled:${tag}`), made.get(tag), `${tag} points at the whole image`);
  });
});

describe('copyRepository into a token-auth registry', { skip: missing.length > 0 ? `SKIPPED: needs ${missing.join(', ')} (scripts/ci-setup.sh)` : false }, () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry({ auth: 'token' })]);
    await pushBusyboxImage(src.host, 'app', 'amd64', { tag: 'a' });
    await pushBusyboxImage(src.host, 'app', 'arm64', { tag: 'b' });
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  it('compares and copies with the credentials given, and a wrong password fails the run once (SLIPWAY_AUTH), not tag by tag', async () => {
    const registries = [{ address: dst.host, username: dst.username, password: dst.password }];
    const first = await copyRepository({ source: `${src.host}/app`, destination: `${dst.host}/app`, registries });
    assert.deepEqual(first.tags.map((t) => [t.tag, t.outcome]).sort(), [['a', 'copied'], ['b', 'copied']]);
    const again = await copyRepository({ source: `${src.host}/app`, destination: `${dst.host}/app`, registries });
    assert.deepEqual(again.tags.map((t) => t.outcome), ['unchanged', 'unchanged']);
    await assert.rejects(
      copyRepository({ source: `${src.host}/app`, destination: `${dst.host}/other`, registries: [{ ...registries[0]!, password: 'wrong' }] }),
      (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_AUTH' && !err.message.includes(dst.password),
    );
  });
});
