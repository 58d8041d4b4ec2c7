// The built CLI (`node packages/cli/dist/main.js`) as a child process against real registries: every
// registry command in text and --json form, exit codes that mean something, progress as plain lines
// off a terminal, --insecure for a self-signed registry, SIGINT, and a canary password (in the Docker
// config, or wrong in the environment) that never shows up in any output.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { pack } from 'tar-stream';
import { Readable } from 'node:stream';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeSync, createReadStream, openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { remote } from '@slipway/oci';
import { silentServer } from '@slipway/oci/testing';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { CANARY_PASSWORD, CANARY_USERNAME, startRegistry, type TestRegistry } from '../support/registry.js';
import { hasTool, run, runChecked } from '../support/tools.js';
import { pushBuildahIndex, skopeoRaw, type PushedIndex } from './copy-fixtures.js';
import { sha256Text } from './oci-archive-fixtures.js';

const main = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));
const missing = ['buildah', 'skopeo'].filter((tool) => !hasTool(tool));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

describe('slipway CLI against real registries', { skip: missing.length > 0 ? `needs ${missing.join(' and ')} (apt-get install buildah skopeo)` : false }, () => {
  let open: TestRegistry;
  let locked: TestRegistry;
  let work: string;
  let env: Record<string, string | undefined>;
  let index: PushedIndex;

  before(async () => {
    [open, locked] = await Promise.all([startRegistry(), startRegistry({ auth: 'htpasswd', username: CANARY_USERNAME, password: CANARY_PASSWORD })]);
    work = await mkdtemp(join(tmpdir(), 'slipway-cli-e2e-'));
    const dockerConfig = join(work, 'docker');
    await runChecked('mkdir', ['-p', dockerConfig]);
    const auth = Buffer.from(`${CANARY_USERNAME}:${CANARY_PASSWORD}`).toString('base64');
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [locked.host]: { auth } } }), { mode: 0o600 });
    // Only this test's Docker config: no auth.json, no environment credentials from the caller.
    env = {
      DOCKER_CONFIG: dockerConfig,
      REGISTRY_AUTH_FILE: join(work, 'no-auth.json'),
      XDG_RUNTIME_DIR: work,
      HOME: work,
      SLIPWAY_REGISTRY_USERNAME: undefined,
      SLIPWAY_REGISTRY_PASSWORD: undefined,
      SLIPWAY_REGISTRY_ADDRESS: undefined,
    };
    index = await pushBuildahIndex(`${open.host}/fixture/app:1`);
  });
  after(async () => {
    await Promise.all([open?.stop(), locked?.stop()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Runs the CLI; every run, passing or failing, is checked for the canary. */
  async function slipway(args: string[], extraEnv: Record<string, string | undefined> = {}): Promise<Outcome> {
    const result = await run(process.execPath, [main, ...args], { env: { ...env, ...extraEnv }, timeoutMs: 120_000 });
    for (const [stream, text] of [['stdout', result.stdout], ['stderr', result.stderr]] as const) {
      assert.ok(!text.includes(CANARY_PASSWORD), `canary password in ${stream} of slipway ${args.join(' ')}`);
      assert.ok(!text.includes(Buffer.from(`${CANARY_USERNAME}:${CANARY_PASSWORD}`).toString('base64')), `encoded credentials in ${stream}`);
    }
    return { code: result.code, stdout: result.stdout, stderr: result.stderr };
  }

  const definedEnv = (): NodeJS.ProcessEnv => {
    const merged: NodeJS.ProcessEnv = { ...process.env };
    for (const [key, value] of Object.entries(env)) {
      if (value === undefined) delete merged[key];
      else merged[key] = value;
    }
    return merged;
  };
  const json = (outcome: Outcome) => JSON.parse(outcome.stdout) as Record<string, unknown>;
  const child = (platform: string) => index.children.find((c) => c.platform === platform)!;

  it('copy: prints the pinned reference, plain progress lines off a terminal, and a full --json result', async () => {
    const text = await slipway(['copy', index.reference, `${locked.host}/app:1`]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout, `${locked.host}/app:1@${index.digest}\n`);
    assert.match(text.stderr, /^to check: 4 manifests, 6 blobs/m);
    assert.match(text.stderr, /^blob sha256:[0-9a-f]{12} copied \(\d+ B\)$/m);
    assert.match(text.stderr, /^manifest sha256:[0-9a-f]{12} written as 1$/m);
    assert.ok(!text.stderr.includes('\x1b['), 'ANSI codes off a terminal');
    assert.equal(sha256Text(await runChecked('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', `${CANARY_USERNAME}:${CANARY_PASSWORD}`, `docker://${locked.host}/app:1`]).then((r) => r.stdout)), index.digest);

    const again = await slipway(['copy', index.reference, `${locked.host}/app:1`, '--json']);
    assert.equal(again.code, 0, again.stderr);
    const result = json(again);
    assert.deepEqual(Object.keys(result).sort(), ['destination', 'digest', 'digestTags', 'mediaType', 'noop', 'platforms', 'reference', 'referrers', 'size', 'source', 'sourceDigest', 'stats', 'warnings']);
    assert.equal(result.noop, true);
    assert.equal(result.digest, index.digest);
    assert.equal(result.destination, `${locked.host}/app:1`);
    assert.deepEqual(result.platforms, index.children.map((c) => ({ platform: c.platform, digest: c.digest })));
    assert.deepEqual(result.stats, { blobsCopied: 0, blobsSkipped: 0, blobsMounted: 0, bytesCopied: 0, manifestsPut: 0 });
    assert.match(again.stderr, /already holds sha256:[0-9a-f]{64}: nothing to copy/);
  });

  it('copy --platform: one child as-is; several: a new index', async () => {
    const one = await slipway(['copy', index.reference, `${locked.host}/app:armv7`, '--platform', 'linux/arm/v7', '-q']);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stderr, '', 'quiet');
    assert.equal(one.stdout.trim(), `${locked.host}/app:armv7@${child('linux/arm/v7').digest}`);
    const two = json(await slipway(['copy', index.reference, `${locked.host}/app:two`, '--platform', 'linux/amd64,linux/arm64', '--json', '--jobs', '2']));
    assert.notEqual(two.digest, index.digest);
    assert.deepEqual((two.platforms as { platform: string }[]).map((p) => p.platform), ['linux/amd64', 'linux/arm64']);
  });

  it('digest, manifest and platforms print what the registry holds', async () => {
    const ref = `${locked.host}/app:1`;
    assert.equal((await slipway(['digest', ref])).stdout, `${index.digest}\n`);
    assert.equal((await slipway(['digest', ref, '--platform', 'linux/arm64'])).stdout.trim(), child('linux/arm64').digest);
    const digest = json(await slipway(['digest', ref, '--json']));
    assert.deepEqual(digest, { reference: ref, digest: index.digest, mediaType: index.mediaType, size: Buffer.byteLength(index.raw) });
    const platformDigest = json(await slipway(['digest', ref, '--platform', 'linux/arm/v7', '--json']));
    assert.equal(platformDigest.platform, 'linux/arm/v7');
    assert.equal(platformDigest.rootDigest, index.digest);

    const manifest = await slipway(['manifest', ref]);
    assert.equal(manifest.stdout, index.raw, 'exact bytes, nothing added');
    assert.equal(sha256Text((await slipway(['manifest', ref, '--platform', 'linux/arm64'])).stdout), child('linux/arm64').digest);
    const manifestJson = json(await slipway(['manifest', ref, '--json']));
    assert.deepEqual(manifestJson.manifest, JSON.parse(index.raw));
    assert.equal(manifestJson.digest, index.digest);

    const platforms = await slipway(['platforms', ref]);
    assert.deepEqual(platforms.stdout.trim().split('\n').map((line) => line.split(/\s+/)), index.children.map((c) => [c.platform, c.digest]));
    const platformsJson = json(await slipway(['platforms', ref, '--json']));
    const listed = index.children.map((c) => ({ platform: c.platform, digest: c.digest }));
    assert.deepEqual(platformsJson, { reference: ref, digest: index.digest, mediaType: index.mediaType, platforms: listed, entries: listed.length });
  });

  it('tags lists a repository', async () => {
    const tags = await slipway(['tags', `${locked.host}/app`]);
    assert.equal(tags.code, 0, tags.stderr);
    assert.deepEqual(tags.stdout.trim().split('\n').sort(), ['1', 'armv7', 'two']);
    const listed = json(await slipway(['tags', `${locked.host}/app`, '--json']));
    assert.equal(listed.repository, `${locked.host}/app`);
    assert.deepEqual((listed.tags as string[]).sort(), ['1', 'armv7', 'two']);
  });

  it('push takes a docker-archive and an OCI layout', async () => {
    const tarPath = join(work, 'amd64.tar');
    await runChecked('skopeo', ['copy', '--src-tls-verify=false', `docker://${open.host}/fixture/app@${child('linux/amd64').digest}`, `docker-archive:${tarPath}:fixture/app:1`]);
    const pushed = await slipway(['push', tarPath, `${locked.host}/pushed:tar`, '--json']);
    assert.equal(pushed.code, 0, pushed.stderr);
    const result = json(pushed);
    assert.deepEqual(result.platforms, [{ platform: 'linux/amd64', digest: result.digest }]);
    assert.equal((await slipway(['digest', `${locked.host}/pushed:tar`])).stdout.trim(), result.digest);

    // --no-stream --no-layer-cache: the same image, layers compressed before any upload (no PATCH),
    // nothing cached. By default, into a repository with no tags, layers stream (a PATCH each) and are cached.
    const cacheHome = join(work, 'layer-cache-home');
    await mkdir(cacheHome);
    const plain = await slipway(['push', tarPath, `${locked.host}/pushed-plain:tar`, '--json', '--no-stream', '--no-layer-cache'], { XDG_CACHE_HOME: cacheHome, NODE_DEBUG: 'slipway' });
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(json(plain).digest, result.digest);
    assert.doesNotMatch(plain.stderr, /\bPATCH /);
    assert.deepEqual(await readdir(cacheHome), [], '--no-layer-cache wrote nothing');
    const streamed = await slipway(['push', tarPath, `${locked.host}/pushed-streamed:tar`, '--json'], { XDG_CACHE_HOME: cacheHome, NODE_DEBUG: 'slipway' });
    assert.equal(streamed.code, 0, streamed.stderr);
    assert.equal(json(streamed).digest, result.digest);
    assert.match(streamed.stderr, /\bPATCH /);
    assert.ok((await readdir(join(cacheHome, 'slipway', 'layers'))).some((f) => f.endsWith('.gz')), 'the compressed layer was cached');

    const layoutDir = join(work, 'layout');
    await runChecked('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${index.reference}`, `oci:${layoutDir}:v1`]);
    const layoutDigest = sha256Text((await runChecked('skopeo', ['inspect', '--raw', `oci:${layoutDir}:v1`])).stdout);
    const fromLayout = await slipway(['push', layoutDir, `${locked.host}/pushed:layout`, '--image', 'v1']);
    assert.equal(fromLayout.code, 0, fromLayout.stderr);
    assert.equal(fromLayout.stdout.trim(), `${locked.host}/pushed:layout@${layoutDigest}`);
    assert.equal((await slipway(['push', join(work, 'nope.tar'), `${locked.host}/pushed:x`])).code, 3);
    // The image named twice, differently: which one was meant? Named twice the same way is fine.
    const twice = await slipway(['push', `oci:${layoutDir}:v1`, `${locked.host}/pushed:twice`, '--image', 'v2']);
    assert.equal(twice.code, 2, twice.stderr);
    assert.match(twice.stderr, /names the image "v1" and --image names "v2"; choose one/);
    assert.equal((await slipway(['push', `oci:${layoutDir}:v1`, `${locked.host}/pushed:twice`, '--image', 'v1'])).code, 0);
  });

  it('copies to REPO@DIGEST untagged, REPO:TAG@DIGEST tagged, and refuses a digest the copy would not produce before moving anything', async () => {
    const untagged = await slipway(['copy', index.reference, `${open.host}/bydigest/app@${index.digest}`, '--json', '-q']);
    assert.equal(untagged.code, 0, untagged.stderr);
    const result = JSON.parse(untagged.stdout) as { digest: string; reference: string };
    assert.equal(result.digest, index.digest);
    assert.equal(result.reference, `${open.host}/bydigest/app@${index.digest}`);
    assert.equal(sha256Text(await skopeoRaw(`${open.host}/bydigest/app@${index.digest}`)), index.digest, 'the index is there, byte for byte');
    const tags = await slipway(['tags', `${open.host}/bydigest/app`]);
    assert.equal(tags.stdout.trim(), '', `no tag was written: ${tags.stdout}${tags.stderr}`);
    const again = await slipway(['copy', index.reference, `${open.host}/bydigest/app@${index.digest}`, '--json', '-q']);
    assert.equal((JSON.parse(again.stdout) as { noop: boolean }).noop, true, 'already there: a no-op');
    const againText = await slipway(['copy', index.reference, `${open.host}/bydigest/app@${index.digest}`]);
    assert.match(againText.stderr, new RegExp(`bydigest/app@${index.digest} is already there: nothing to copy\n`));

    // One platform: the child's digest is the result, so that is the digest to name.
    const arm = index.children.find((c) => c.platform === 'linux/arm64')!;
    const child = await slipway(['copy', index.reference, `${open.host}/bydigest/arm:v1@${arm.digest}`, '--platform', 'linux/arm64', '-q']);
    assert.equal(child.code, 0, child.stderr);
    assert.equal(child.stdout.trim(), `${open.host}/bydigest/arm:v1@${arm.digest}`);
    assert.equal((await slipway(['digest', `${open.host}/bydigest/arm:v1`])).stdout.trim(), arm.digest, 'the tag was written too');

    // The index named where one platform makes the child: refused before any blob or manifest is written.
    const wrong = await slipway(['copy', index.reference, `${open.host}/bydigest/wrong@${index.digest}`, '--platform', 'linux/arm64']);
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, new RegExp(`names ${index.digest}, and what the platform selection makes of .* is ${arm.digest}: a destination's digest must be the copy's result`));
    assert.equal((await slipway(['digest', `${open.host}/bydigest/wrong@${arm.digest}`])).code, 3, 'nothing was written');

    // push compresses a docker save tar's layers and would stream them while it does: not with a
    // digest to check first. The wrong one leaves the repository without a single blob.
    const saved = join(work, 'bydigest-save.tar');
    await runChecked('skopeo', ['copy', '--src-tls-verify=false', `docker://${open.host}/fixture/app@${arm.digest}`, `docker-archive:${saved}:app:bydigest`]);
    const pushedWrong = await slipway(['push', saved, `${open.host}/bydigest/pushed@${index.digest}`]);
    assert.equal(pushedWrong.code, 2, pushedWrong.stderr);
    assert.match(pushedWrong.stderr, /a destination's digest must be the copy's result/);
    const repositories = join(open.storageDir, 'docker', 'registry', 'v2', 'repositories', 'bydigest');
    assert.ok(!(await readdir(repositories)).includes('pushed'), 'no blob, no upload session: the repository does not exist');
    const pushedRight = await slipway(['push', saved, `${open.host}/bydigest/pushed`, '--json', '-q']);
    const digest = (JSON.parse(pushedRight.stdout) as { digest: string }).digest;
    const pushedByDigest = await slipway(['push', saved, `${open.host}/bydigest/pushed-again@${digest}`, '-q']);
    assert.equal(pushedByDigest.code, 0, pushedByDigest.stderr);
    assert.equal(pushedByDigest.stdout.trim(), `${open.host}/bydigest/pushed-again@${digest}`);
  });

  it('cache info and prune: what a push and a context hash left on disk, and emptying it on request', async () => {
    const xdg = { XDG_CACHE_HOME: join(work, 'xdg-cache') };
    const amd = index.children.find((c) => c.platform === 'linux/amd64')!;
    const saved = join(work, 'for-cache.tar');
    // skopeo writes docker-archive layers uncompressed: push compresses them, into the cache.
    await runChecked('skopeo', ['copy', '--src-tls-verify=false', `docker://${open.host}/fixture/app@${amd.digest}`, `docker-archive:${saved}:app:cache`]);
    assert.equal((await slipway(['push', saved, `${open.host}/cache/app:1`, '-q'], xdg)).code, 0);
    const contextDir = join(work, 'cache-context');
    await mkdir(contextDir, { recursive: true });
    await writeFile(join(contextDir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
    assert.equal((await slipway(['hash-context', contextDir, '-q'], xdg)).code, 0);

    type Info = { layerCache: { directory: string; layers: number; layerBytes: number }; contextCache: { files: number }; removed?: { layers: number; contextFiles: number } };
    const info = await slipway(['cache', '--json'], xdg);
    assert.equal(info.code, 0, info.stderr);
    const before = JSON.parse(info.stdout) as Info;
    assert.equal(before.layerCache.directory, join(xdg.XDG_CACHE_HOME, 'slipway'));
    assert.ok(before.layerCache.layers >= 1 && before.layerCache.layerBytes > 0, info.stdout);
    assert.equal(before.contextCache.files, 1);
    const text = await slipway(['cache', 'info'], xdg);
    assert.match(text.stdout, new RegExp(`^layers: {2}.*xdg-cache/slipway: ${before.layerCache.layers} compressed layers?, .*B\ncontext: .*xdg-cache/slipway/context: 1 stat cache, `));

    // Nothing is old enough for the default 30 days.
    const kept = JSON.parse((await slipway(['cache', 'prune', '--json'], xdg)).stdout) as Info;
    assert.deepEqual(kept.removed, { layers: 0, contextFiles: 0 });
    const sized = JSON.parse((await slipway(['cache', 'prune', '--max-size', '0', '--json'], xdg)).stdout) as Info;
    assert.deepEqual(sized.removed, { layers: before.layerCache.layers, contextFiles: 0 });
    assert.equal(sized.layerCache.layers, 0);
    const emptied = JSON.parse((await slipway(['cache', 'prune', '--unused-for', '0', '--json'], xdg)).stdout) as Info;
    assert.equal(emptied.removed?.contextFiles, 1);
    assert.equal(emptied.contextCache.files, 0);
    // And the next push compresses again, and works.
    assert.equal((await slipway(['push', saved, `${open.host}/cache/app:2`, '-q'], xdg)).code, 0);

    for (const args of [['cache', 'clean'], ['cache', 'prune', '--unused-for', 'week'], ['cache', 'prune', '--max-size', 'lots'], ['cache', 'info', '--max-size', '1G']]) {
      const refused = await slipway(args, xdg);
      assert.equal(refused.code, 2, `${args.join(' ')}: ${refused.stderr}`);
    }
  });

  it('platforms of an artifact or an empty index: nothing on stdout, and a word on stderr saying which; a wasm artifact\'s platform', async () => {
    const client = remote.createRegistryClient({ insecure: [open.host] });
    try {
      const sink = client.sink(`${open.host}/messages/artifact:sig`);
      const put = async (bytes: Buffer, mediaType: string) => {
        const descriptor = { mediaType, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` as const, size: bytes.length };
        await sink.putBlob(descriptor, async () => Readable.from([bytes]));
        return descriptor;
      };
      const config = await put(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
      const layer = await put(Buffer.from('a signature'), 'application/vnd.example.signature');
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.example.signature', config, layers: [layer] }));
      const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
      await sink.putManifest({ descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digest as `sha256:${string}`, size: manifest.length }, bytes: manifest }, { tag: 'sig' });
      const empty = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
      await sink.putManifest({ descriptor: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${createHash('sha256').update(empty).digest('hex')}`, size: empty.length }, bytes: empty }, { tag: 'empty' });
      // A CNCF wasm artifact: its config names the platform as an image config does.
      const wasmConfig = await put(Buffer.from(JSON.stringify({ architecture: 'wasm', os: 'wasip1', layerDigests: [] })), 'application/vnd.wasm.config.v0+json');
      const module = await put(Buffer.from('\0asm\x01\0\0\0'), 'application/wasm');
      const wasm = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: wasmConfig, layers: [module] }));
      await sink.putManifest({ descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${createHash('sha256').update(wasm).digest('hex')}`, size: wasm.length }, bytes: wasm }, { tag: 'wasm' });
      // An image config with empty os and architecture, as `crane append` writes one.
      const blank = await put(Buffer.from(JSON.stringify({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [] } })), 'application/vnd.oci.image.config.v1+json');
      const appended = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: blank, layers: [] }));
      await sink.putManifest({ descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${createHash('sha256').update(appended).digest('hex')}`, size: appended.length }, bytes: appended }, { tag: 'blank' });
    } finally {
      await client.close();
    }
    const listed = await slipway(['platforms', `${open.host}/messages/artifact:sig`]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stdout, '');
    assert.match(listed.stderr, /messages\/artifact:sig \(sha256:[0-9a-f]{64}\) names no platform: an artifact \(application\/vnd\.example\.signature\), not an image of a platform\n/);
    const json = await slipway(['platforms', `${open.host}/messages/artifact:sig`, '--json']);
    const result = JSON.parse(json.stdout) as { platforms: unknown[]; artifactType?: string };
    assert.deepEqual([result.platforms, result.artifactType], [[], 'application/vnd.example.signature']);
    assert.equal(json.stderr, '');
    const empty = await slipway(['platforms', `${open.host}/messages/artifact:empty`]);
    assert.deepEqual([empty.code, empty.stdout], [0, ''], empty.stderr);
    assert.match(empty.stderr, /names no platform: an empty index\n/);
    const blank = await slipway(['platforms', `${open.host}/messages/artifact:blank`]);
    assert.deepEqual([blank.code, blank.stdout], [0, ''], blank.stderr);
    assert.match(blank.stderr, /names no platform: an image whose config names no os and architecture\n/);
    const wasm = await slipway(['platforms', `${open.host}/messages/artifact:wasm`]);
    assert.equal(wasm.code, 0, wasm.stderr);
    assert.match(wasm.stdout, /^wasip1\/wasm +sha256:[0-9a-f]{64}\n?$/);
  });

  it('speaks in flags: the library option names in its messages become what to type at the command line', async () => {
    const libraryWords = /slipway: --|the image option|caCertificates|in insecure\b|as in '--/;
    // A layout holding two images, read without naming one.
    const twoImages = join(work, 'two-images');
    assert.equal((await slipway(['copy', index.reference, `oci:${twoImages}:a`, '--platform', 'linux/arm64', '-q'])).code, 0);
    assert.equal((await slipway(['copy', index.reference, `oci:${twoImages}:b`, '--platform', 'linux/amd64', '-q'])).code, 0);
    const unnamed = await slipway(['digest', `oci:${twoImages}`]);
    assert.equal(unnamed.code, 2, unnamed.stderr);
    assert.match(unnamed.stderr, /OCI layout ".*two-images" holds 2 images; choose one in the source name \(oci:PATH:NAME, oci:PATH:sha256:…, oci:PATH:@N; oci-archive: alike\), or for push with --image \(a name, a digest or a position @N\)/);
    // Each spelling the message offers picks an entry, and so does regctl's DIR@DIGEST.
    const a = (await slipway(['digest', `oci:${twoImages}:a`])).stdout.trim();
    assert.match(a, /^sha256:[0-9a-f]{64}$/);
    for (const spelling of [`oci:${twoImages}:${a}`, `oci:${twoImages}:@${a}`, `oci:${twoImages}@${a}`, `oci:${twoImages}:@0`]) {
      const picked = await slipway(['digest', spelling]);
      assert.deepEqual([picked.code, picked.stdout.trim()], [0, a], `${spelling}: ${picked.stderr}`);
    }
    // A destination holding another image.
    const held = await slipway(['copy', `oci:${twoImages}:a`, `${open.host}/messages/held:1`, '-q']);
    assert.equal(held.code, 0, held.stderr);
    const conflict = await slipway(['copy', `oci:${twoImages}:b`, `${open.host}/messages/held:1`]);
    assert.equal(conflict.code, 5, conflict.stderr);
    assert.match(conflict.stderr, /; pass --overwrite to replace it\n/);
    // An index into a one-image archive.
    const oneImage = await slipway(['copy', index.reference, `docker-archive:${join(work, 'one.tar')}`]);
    assert.equal(oneImage.code, 2, oneImage.stderr);
    assert.match(oneImage.stderr, /is an index \(.*\): select one with --platform\n/);
    // A flag no command has, in our words.
    const unknown = await slipway(['digest', index.reference, '--image', 'v1']);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /^slipway: unknown option "--image" \(an argument that starts with "-" goes after "--"\); see "slipway digest --help"\n$/);
    // A registry whose TLS certificate nobody here trusts.
    const tls = await startRegistry({ tls: true });
    try {
      const untrusted = await slipway(['digest', `${tls.host}/messages/x:1`]);
      assert.equal(untrusted.code, 1, untrusted.stderr);
      assert.match(untrusted.stderr, /TLS certificate of 127\.0\.0\.1:\d+ not trusted \(.*\); put its CA in .*ca\.crt, or pass --insecure 127\.0\.0\.1:\d+ \(no verification\)/);
      for (const run of [unnamed, conflict, oneImage, unknown, untrusted]) assert.doesNotMatch(run.stderr, libraryWords);
    } finally {
      await tls.stop();
    }
  });

  it('push and copy read an archive from a pipe (docker save | slipway push /dev/stdin), plain or gzipped, as from the file', async () => {
    const tarPath = join(work, 'pipe-amd64.tar');
    const ociPath = join(work, 'pipe-index.oci.tar');
    await runChecked('skopeo', ['copy', '--src-tls-verify=false', `docker://${open.host}/fixture/app@${child('linux/amd64').digest}`, `docker-archive:${tarPath}:fixture/app:1`]);
    await runChecked('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${index.reference}`, `oci-archive:${ociPath}:v1`]);
    const fromFile = await slipway(['push', tarPath, `${open.host}/piped:file`, '--json', '-q']);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    const expected = json(fromFile).digest as string;
    const scratch = join(work, 'pipe-tmp');
    await mkdir(scratch);
    const piped = async (producer: string, command: string) => {
      const result = await run('bash', ['-o', 'pipefail', '-c', `${producer} | "${process.execPath}" "${main}" ${command} --json -q`], { env: { ...env, TMPDIR: scratch }, timeoutMs: 120_000 });
      assert.equal(result.code, 0, result.stderr);
      return (JSON.parse(result.stdout) as { digest: string }).digest;
    };
    assert.equal(await piped(`cat "${tarPath}"`, `push /dev/stdin ${open.host}/piped:plain`), expected);
    assert.equal(await piped(`gzip -c "${tarPath}"`, `copy docker-archive:/dev/stdin ${open.host}/piped:gzipped`), expected);
    // An OCI archive through a pipe keeps the index digest (skopeo made it, all platforms).
    assert.equal(await piped(`cat "${ociPath}"`, `copy oci-archive:/dev/stdin:v1 ${open.host}/piped:index`), index.digest);
    // Spawned by a Node parent, stdin is a socket, which opening /dev/stdin cannot reach (ENXIO):
    // the CLI reads it through process.stdin.
    const viaSocket = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const cli = spawn(process.execPath, [main, 'push', '/dev/stdin', `${open.host}/piped:socket`, '--json', '-q'], { env: { ...definedEnv(), TMPDIR: scratch }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      cli.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      cli.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      cli.stdin.on('error', () => undefined);
      cli.on('error', reject);
      cli.on('close', (code) => resolve({ code, stdout, stderr }));
      createReadStream(tarPath).pipe(cli.stdin);
    });
    assert.equal(viaSocket.code, 0, viaSocket.stderr);
    assert.equal((JSON.parse(viaSocket.stdout) as { digest: string }).digest, expected);
    assert.deepEqual(await readdir(scratch), [], 'the spools went with the command');
    // Something that is no archive, through a pipe: a clear error, exit 1 (not a hang, not a registry lookup).
    const junk = await run('bash', ['-c', `echo not-a-tar | "${process.execPath}" "${main}" push /dev/stdin ${open.host}/piped:junk`], { env, timeoutMs: 60_000 });
    assert.equal(junk.code, 1, junk.stderr);
    assert.match(junk.stderr, /invalid archive "\/dev\/stdin"/);
  });

  it('a full disk: a spool or compressed layer that does not fit says so and leaves nothing; a full layer cache is skipped', async (t) => {
    const small = join(work, 'small-disk');
    await mkdir(small);
    const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=1777', 'tmpfs', small]);
    if (mounted.code !== 0) {
      t.skip(`NOT TESTED: mounting a 512 KiB tmpfs as a full disk needs root with CAP_SYS_ADMIN (${mounted.stderr.trim()})`);
      return;
    }
    try {
      // Random bytes: the compressed layer is as big as the 2 MiB layer, four times the disk.
      const saved = join(work, 'full-disk.tar');
      await writeFile(saved, await dockerSaveOf(2 * 1024 * 1024, 'app:full'));
      const failure = (result: Outcome): { code?: string; message?: string } => {
        assert.equal(result.code, 1, result.stderr);
        return (json(result) as { error?: { code?: string; message?: string } }).error ?? {};
      };
      // A stream is read once, so it is kept on disk while it is used; a full TMPDIR used to read as
      // "reading archive … from its stream failed", or even as an archive with no manifest.json.
      for (const command of [`push /dev/stdin ${open.host}/full-disk:piped`, `copy docker-archive:/dev/stdin oci:${join(work, 'full-disk-layout')}`]) {
        const error = failure(await run('bash', ['-c', `cat "${saved}" | "${process.execPath}" "${main}" ${command} --json`], { env: { ...env, TMPDIR: small }, timeoutMs: 60_000 }));
        assert.equal(error.code, 'SLIPWAY_IO');
        assert.match(error.message ?? '', /^archive "\/dev\/stdin": keeping its scratch copy under ".*small-disk" failed: the file system is full \(ENOSPC\); .*: set TMPDIR to a file system with room for the whole archive$/);
        assert.deepEqual(await readdir(small), [], 'the scratch copy went with the command');
      }
      // The layer cache is an optimisation: a full one is skipped, and the push gives the image an
      // uncached push gives.
      const uncached = await slipway(['push', saved, `${open.host}/full-disk:uncached`, '--no-layer-cache', '--json', '-q']);
      assert.equal(uncached.code, 0, uncached.stderr);
      const cacheFull = await slipway(['push', saved, `${open.host}/full-disk:cache-full`, '--json', '-q'], { XDG_CACHE_HOME: small });
      assert.equal(cacheFull.code, 0, cacheFull.stderr);
      assert.equal(json(cacheFull).digest, json(uncached).digest);
      const left = (await readdir(join(small, 'slipway', 'layers'))).filter((name) => name.endsWith('.gz') || name.includes('.tmp-'));
      assert.deepEqual(left, [], 'no layer or temp file left in the full cache');
      // With nowhere to write the compressed layer: the full disk named, not an "unexpected error".
      const nowhere = failure(await slipway(['push', saved, `${open.host}/full-disk:nowhere`, '--json'], { XDG_CACHE_HOME: small, TMPDIR: small }));
      assert.equal(nowhere.code, 'SLIPWAY_IO');
      assert.match(nowhere.message ?? '', /^layer "layer\/layer.tar" of .*full-disk.tar: writing its compressed copy under ".*small-disk" failed: the file system is full \(ENOSPC\); set TMPDIR to a file system/);
      assert.equal((await slipway(['tags', `${open.host}/full-disk`])).stdout.split('\n').includes('nowhere'), false, 'no tag for the failed push');
      // A destination on the full disk.
      const layout = failure(await slipway(['copy', saved, `oci:${join(small, 'layout')}`, '--json']));
      assert.equal(layout.code, 'SLIPWAY_IO');
      assert.match(layout.message ?? '', /failed: ENOSPC, the file system is full \(copying .*full-disk.tar to oci:/);
      // A TMPDIR the file system refuses, or one that does not exist: named, not "unexpected error: mkdtemp".
      await runChecked('mount', ['-o', 'remount,ro', small]);
      const readOnly = failure(await run('bash', ['-c', `cat "${saved}" | "${process.execPath}" "${main}" push /dev/stdin ${open.host}/full-disk:ro --json`], { env: { ...env, TMPDIR: small }, timeoutMs: 60_000 }));
      assert.equal(readOnly.code, 'SLIPWAY_IO');
      assert.match(readOnly.message ?? '', /^TMPDIR ".*small-disk" cannot hold a scratch directory: EROFS$/);
      const gone = await run('bash', ['-c', `cat "${saved}" | "${process.execPath}" "${main}" push /dev/stdin ${open.host}/full-disk:gone --json`], { env: { ...env, TMPDIR: join(work, 'no-such-tmp') }, timeoutMs: 60_000 });
      assert.equal(gone.code, 2, gone.stderr);
      assert.match(gone.stderr, /TMPDIR ".*no-such-tmp" cannot hold a scratch directory: ENOENT \(no such directory\)/);
    } finally {
      await runChecked('umount', [small]);
    }
  });

  it('SIGINT ends a push from a pipe whose writer holds it open and sends nothing at once (exit 130)', async () => {
    const fifo = join(work, 'silent-fifo');
    await runChecked('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', 'exec sleep 60 > "$1"', 'sh', fifo], { stdio: 'ignore' });
    try {
      const cli = spawn(process.execPath, [main, 'push', fifo, `${open.host}/piped:silent`], { env: definedEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      cli.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => cli.on('close', resolve));
      // Signal only once the CLI holds the FIFO open (it installs its SIGINT handler before loading
      // the command): a fixed 1 s let a CLI still starting up under load die of the default SIGINT
      // action (exit code null instead of 130).
      const opened = async (): Promise<boolean> => {
        for (const fd of await readdir(`/proc/${cli.pid}/fd`).catch(() => [] as string[])) {
          if ((await readlink(`/proc/${cli.pid}/fd/${fd}`).catch(() => '')) === fifo) return true;
        }
        return false;
      };
      for (const deadline = Date.now() + 60_000; !(await opened()); ) {
        assert.ok(Date.now() < deadline && cli.exitCode === null, `the CLI never opened ${fifo}: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      // Then long enough for its first read(2) to be blocked in the thread pool.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const signalled = Date.now();
      cli.kill('SIGINT');
      const timer = setTimeout(() => cli.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      assert.equal(code, 130, stderr);
      // A read(2) blocked in the thread pool held the process until the writer went (60 s here).
      assert.ok(Date.now() - signalled < 10_000, `took ${Date.now() - signalled} ms`);
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('exit codes: 2 usage, 3 not found, 4 auth, 5 conflict; --json errors are one object', async () => {
    const usage = await slipway(['digest', `${locked.host}/Not A/Reference!`, '--json']);
    assert.equal(usage.code, 2, usage.stderr);
    const error = json(usage).error as Record<string, unknown>;
    assert.equal(error.exitCode, 2);
    assert.equal(error.code, 'SLIPWAY_INVALID_REFERENCE');
    assert.equal((await slipway(['copy', '--frobnicate', 'a', 'b'])).code, 2);
    assert.equal((await slipway(['copy', 'only-one'])).code, 2);
    assert.equal((await slipway(['copy', index.reference, `${locked.host}/x:1`, '--platform', 'linux'])).code, 2);
    assert.equal((await slipway(['nonsense'])).code, 2);
    // skopeo's transports slipway does not write would otherwise parse as Docker Hub repositories.
    for (const destination of ['dir:outdir', 'containers-storage:x:1', 'sif:out.sif']) {
      const refused = await slipway(['copy', index.reference, destination]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /slipway does not write/);
    }
    assert.equal((await slipway(['copy', 'missing-archive.tar', `${open.host}/x:1`])).code, 3, 'a missing archive, not a Docker Hub repository');
    // "-" for standard input is a Unix habit: a usage error naming /dev/stdin, not a missing file "-".
    const dash = await slipway(['push', '-', `${open.host}/x:1`]);
    assert.equal(dash.code, 2, dash.stderr);
    assert.match(dash.stderr, /name it \/dev\/stdin/);

    const notFound = await slipway(['digest', `${locked.host}/app:missing`, '--json']);
    assert.equal(notFound.code, 3, notFound.stderr);
    assert.equal((json(notFound).error as Record<string, unknown>).code, 'SLIPWAY_NOT_FOUND');
    assert.equal((await slipway(['manifest', `${locked.host}/nothing/here:1`])).code, 3);
    const noRepository = await slipway(['tags', `${locked.host}/nothing/here`, '--json']);
    assert.equal(noRepository.code, 3, noRepository.stderr);
    assert.equal((json(noRepository).error as Record<string, unknown>).code, 'SLIPWAY_NOT_FOUND', 'the same code as every other missing thing');
    assert.equal((await slipway(['copy', index.reference, `${locked.host}/x:1`, '--platform', 'linux/s390x'])).code, 3);

    // A wrong password that contains the canary: refused (4), and scrubbed from every output.
    const wrong = await slipway(['digest', `${locked.host}/app:1`, '--json'], {
      DOCKER_CONFIG: join(work, 'empty'),
      SLIPWAY_REGISTRY_USERNAME: CANARY_USERNAME,
      SLIPWAY_REGISTRY_PASSWORD: `wrong-${CANARY_PASSWORD}`,
    });
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.equal((json(wrong).error as Record<string, unknown>).code, 'SLIPWAY_AUTH');
    assert.equal((await slipway(['tags', `${locked.host}/app`], { DOCKER_CONFIG: join(work, 'empty') })).code, 4, 'anonymous is refused too');
    // Environment credentials go to a copy's destination only: reading from the locked registry, the
    // refusal says where they went and how to point them at the source.
    assert.equal((await slipway(['copy', index.reference, `${locked.host}/env-hint:1`, '--platform', 'linux/arm64', '-q'])).code, 0);
    const envForDestination = { DOCKER_CONFIG: join(work, 'empty'), SLIPWAY_REGISTRY_USERNAME: CANARY_USERNAME, SLIPWAY_REGISTRY_PASSWORD: CANARY_PASSWORD };
    const fromLocked = await slipway(['copy', `${locked.host}/env-hint:1`, `${open.host}/from-locked:1`], envForDestination);
    assert.equal(fromLocked.code, 4, fromLocked.stderr);
    assert.match(fromLocked.stderr, new RegExp(`no credentials for ${locked.host} were found .*; SLIPWAY_REGISTRY_USERNAME/PASSWORD went to ${open.host} only; set SLIPWAY_REGISTRY_ADDRESS=${locked.host} to use them for ${locked.host}\\n$`));
    const pointed = await slipway(['copy', `${locked.host}/env-hint:1`, `${open.host}/from-locked:1`, '-q'], { ...envForDestination, SLIPWAY_REGISTRY_ADDRESS: locked.host });
    assert.equal(pointed.code, 0, pointed.stderr);
    // Pointed at the destination already: repointing would lose it, so a login is offered too.
    const pointedElsewhere = await slipway(['copy', `${locked.host}/env-hint:1`, `${open.host}/from-locked:2`], { ...envForDestination, SLIPWAY_REGISTRY_ADDRESS: open.host });
    assert.equal(pointedElsewhere.code, 4, pointedElsewhere.stderr);
    assert.match(pointedElsewhere.stderr, new RegExp(`went to ${open.host} only \\(SLIPWAY_REGISTRY_ADDRESS\\); docker login ${locked.host}, or point SLIPWAY_REGISTRY_ADDRESS at it\n$`));
    // Credentials typed into a reference, URL-style: not a reference (2), and the password is not
    // repeated in the message (slipway() checks every output for the canary).
    for (const args of [['digest', `${CANARY_USERNAME}:${CANARY_PASSWORD}@${locked.host}/app:1`], ['copy', index.reference, `https://${CANARY_USERNAME}:${CANARY_PASSWORD}@${locked.host}/app:1`, '--json']]) {
      const typed = await slipway(args);
      assert.equal(typed.code, 2, typed.stderr);
      assert.match(typed.stderr + typed.stdout, /<redacted>@/);
    }

    const conflict = await slipway(['copy', index.reference, `${locked.host}/app:1`, '--platform', 'linux/arm64', '--json']);
    assert.equal(conflict.code, 5, conflict.stderr);
    const conflictError = json(conflict).error as Record<string, string>;
    assert.ok(conflictError.message!.includes(index.digest) && conflictError.message!.includes(child('linux/arm64').digest), conflictError.message);
    const overwrite = await slipway(['copy', index.reference, `${locked.host}/app:1`, '--platform', 'linux/arm64', '--overwrite']);
    assert.equal(overwrite.code, 0, overwrite.stderr);
    assert.equal((await slipway(['digest', `${locked.host}/app:1`])).stdout.trim(), child('linux/arm64').digest);
  });

  it('a web server that is no registry (404 at /v2/) is exit 1 "not an OCI registry", not exit 3 "not found"', async () => {
    // `python3 -m http.server` on the port, a site on the wrong one: every path answers 404.
    const web = createHttpServer((_req, res) => res.writeHead(404, { 'content-type': 'text/html' }).end('<html>File not found</html>'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(web.address() as AddressInfo).port}`;
    try {
      for (const args of [['digest', `${host}/x/y:1`], ['tags', `${host}/x/y`], ['copy', index.reference, `${host}/x/y:1`]]) {
        const outcome = await slipway([...args, '--json']);
        assert.equal(outcome.code, 1, `${args.join(' ')}: ${outcome.stderr}`);
        const error = json(outcome).error as Record<string, unknown>;
        assert.equal(error.code, 'SLIPWAY_NETWORK');
        assert.match(String(error.message), new RegExp(`${host} is not an OCI registry`));
      }
    } finally {
      web.closeAllConnections();
      await new Promise((resolve) => web.close(resolve));
    }
  });

  it('platforms, digest and copy --platform on an index whose entries state no platform, or are indexes', async () => {
    // Entries without `platform` get theirs from the image config (not linux/amd64 by default), and
    // an entry that is an index is looked into, so a platform always ends at an image manifest.
    const arm64 = index.children.find((c) => c.platform === 'linux/arm64')!;
    const amd64 = index.children.find((c) => c.platform === 'linux/amd64')!;
    const sizeOf = async (digest: string) => Buffer.byteLength(await skopeoRaw(`${open.host}/fixture/app@${digest}`));
    const entry = async (c: { digest: string; mediaType: string }) => ({ mediaType: c.mediaType, digest: c.digest, size: await sizeOf(c.digest) });
    const client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });
    const put = async (tag: string, body: unknown) => {
      const bytes = new TextEncoder().encode(JSON.stringify(body));
      const descriptor = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256Text(bytes) as `sha256:${string}`, size: bytes.byteLength };
      await client.putManifest(`${open.host}/fixture/app:${tag}`, { descriptor, bytes });
      return descriptor;
    };
    try {
      await put('bare', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [await entry(arm64)] });
      const inner = await put('inner', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [await entry(arm64)] });
      await put('nested', { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [await entry(amd64), inner] });
    } finally {
      await client.close();
    }
    const bare = await slipway(['platforms', `${open.host}/fixture/app:bare`]);
    assert.equal(bare.code, 0, bare.stderr);
    assert.match(bare.stdout, new RegExp(`^linux/arm64\\s+${arm64.digest}$`, 'm'));
    assert.equal((await slipway(['digest', `${open.host}/fixture/app:bare`, '--platform', 'linux/amd64'])).code, 3, 'no amd64 image there');
    assert.equal((await slipway(['digest', `${open.host}/fixture/app:bare`, '--platform', 'linux/arm64'])).stdout.trim(), arm64.digest);
    const nested = await slipway(['digest', `${open.host}/fixture/app:nested`, '--platform', 'linux/arm64']);
    assert.equal(nested.stdout.trim(), arm64.digest, nested.stderr);
    const copied = await slipway(['copy', `${open.host}/fixture/app:nested`, `${open.host}/nested/arm:1`, '--platform', 'linux/arm64', '-q']);
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(sha256Text(await skopeoRaw(`${open.host}/nested/arm:1`)), arm64.digest, 'the arm64 image manifest, byte for byte');
  });

  it('writes all of a big output into a slow pipe before exiting (manifest | sha256sum)', async () => {
    // A pipe takes 64 KiB at once; the rest is queued. Exiting without waiting lost it, with exit 0.
    const client = remote.createRegistryClient({ keychain: { resolve: async () => undefined } });
    const config = new TextEncoder().encode('{}');
    const configDescriptor = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Text(config) as `sha256:${string}`, size: config.byteLength };
    const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDescriptor, layers: [], annotations: { big: 'x'.repeat(1_000_000) } }));
    const digest = sha256Text(bytes);
    try {
      await client.sink(`${open.host}/big/manifest:1`).putBlob(configDescriptor, async () => Readable.from([config]));
      await client.putManifest(`${open.host}/big/manifest:1`, { descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digest as `sha256:${string}`, size: bytes.byteLength }, bytes });
    } finally {
      await client.close();
    }
    const piped = await run('sh', ['-c', `"${process.execPath}" "${main}" manifest ${open.host}/big/manifest:1 | (sleep 1; sha256sum)`], { env, timeoutMs: 60_000 });
    assert.equal(piped.stdout.split(' ')[0], digest.slice('sha256:'.length), piped.stderr);
  });

  it('--insecure lets a self-signed TLS registry through', async () => {
    const tls = await startRegistry({ tls: true });
    try {
      const refused = await slipway(['copy', index.reference, `${tls.host}/app:1`]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /certificate|TLS|self[- ]signed/i);
      const allowed = await slipway(['copy', index.reference, `${tls.host}/app:1`, '--insecure', tls.host]);
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.equal(allowed.stdout.trim(), `${tls.host}/app:1@${index.digest}`);
    } finally {
      await tls.stop();
    }
  });

  // 128 + the signal's number, as a shell reports it: a supervisor's SIGTERM is not a user's Ctrl-C.
  for (const [signal, exitCode] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    it(`exits ${exitCode} on ${signal}, says so in its --json error, and leaves the tag unwritten`, async () => {
      let proxy: FaultProxy | undefined;
      const repo = `slow-${signal.toLowerCase()}/app`;
      try {
        proxy = await startFaultProxy({ target: open });
        proxy.inject({ match: { method: 'PUT', path: `/v2/${repo}/blobs/uploads/` }, fault: { delayMs: 5000 }, times: Infinity });
        const child = spawn(process.execPath, [main, 'copy', index.reference, `${proxy.host}/${repo}:1`, '--json'], { env: definedEnv(), stdio: 'pipe' });
        let stderr = '';
        let stdout = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        while (proxy.requestsMatching({ method: 'PUT', path: `/v2/${repo}/blobs/uploads/` }).length === 0) await new Promise((r) => setTimeout(r, 50));
        const started = Date.now();
        // SIGHUP: the terminal closed or the ssh session dropped; it used to kill the process mid-copy.
        child.kill(signal);
        const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
        assert.equal(code, exitCode, stderr);
        const error = (JSON.parse(stdout) as { error: { code: string; exitCode: number } }).error;
        assert.deepEqual([error.code, error.exitCode], ['SLIPWAY_ABORTED', exitCode]);
        assert.ok(Date.now() - started < 4000, 'stopped promptly, without waiting for the slow upload');
        assert.equal(proxy.requestsMatching({ method: 'PUT', path: `/v2/${repo}/manifests/` }).length, 0);
      } finally {
        await proxy?.stop();
      }
    });
  }

  it('a second Ctrl-C during a push exits at once and leaves no temp file in the layer cache', async () => {
    const cacheHome = join(work, 'xdg-double-sigint');
    const layers = join(cacheHome, 'slipway', 'layers');
    // A docker save archive with one uncompressed 24 MB layer of random bytes: more than the socket
    // buffers hold, so its compression into the cache waits on the stalled upload below.
    const saved = join(work, 'double-sigint.tar');
    await writeFile(saved, await dockerSaveOf(24 * 1024 * 1024, 'app:sigint'));
    const proxy = await startFaultProxy({ target: open });
    try {
      // The streamed upload stalls, and with it the compression into the cache's temp file.
      proxy.inject({ match: { method: 'PATCH' }, fault: { delayMs: 20_000 }, times: Infinity });
      proxy.inject({ match: { method: 'PUT', path: '/blobs/uploads/' }, fault: { delayMs: 20_000 }, times: Infinity });
      const child = spawn(process.execPath, [main, 'push', saved, `${proxy.host}/double-sigint/app:1`], { env: { ...definedEnv(), XDG_CACHE_HOME: cacheHome }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      const temps = async () => (await readdir(layers).catch(() => [] as string[])).filter((n) => n.includes('.tmp-'));
      const deadline = Date.now() + 30_000;
      while ((await temps()).length === 0) {
        assert.ok(Date.now() < deadline, `no layer was being compressed into the cache: ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      // The first asks the push to stop and clean up; the second is the impatient user's: exit now,
      // before that clean-up runs. Two signals sent to a stopped process arrive together (two of a
      // kind would merge into one, so a SIGTERM follows the SIGINT): the exit hook alone can clean up.
      child.kill('SIGSTOP');
      child.kill('SIGINT');
      child.kill('SIGTERM');
      child.kill('SIGCONT');
      assert.ok([130, 143].includes((await closed)!), stderr);
      assert.deepEqual(await temps(), [], 'the exit hook removed the half-written layer');
    } finally {
      await proxy.stop();
    }
  });

  it('finishes a copy whose stderr reader went away (2>&1 | head -1), exit 0', async () => {
    const child = spawn(process.execPath, [main, 'copy', index.reference, `${open.host}/stderr-gone/app:1`], { env: definedEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    // The reader takes nothing and leaves: every progress line after that meets EPIPE.
    child.stderr.destroy();
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stdout);
    assert.equal(stdout, `${open.host}/stderr-gone/app:1@${index.digest}\n`);
    const client = remote.createRegistryClient({});
    try {
      assert.equal((await client.head(`${open.host}/stderr-gone/app:1`))?.digest, index.digest);
    } finally {
      await client.close();
    }
  });

  it('fails (exit 1) when the result cannot be written to stdout, as > /dev/full', async () => {
    const full = openSync('/dev/full', 'w');
    try {
      const child = spawn(process.execPath, [main, 'digest', index.reference], { env: definedEnv(), stdio: ['ignore', full, 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 1, stderr);
      assert.match(stderr, /writing the result to standard output: ENOSPC/);
    } finally {
      closeSync(full);
    }
  });

  it('--json=true is a usage error that still prints its JSON error object', async () => {
    const result = await slipway(['digest', index.reference, '--json=true']);
    assert.equal(result.code, 2, result.stderr);
    const error = (json(result) as { error?: { code?: string; exitCode?: number } }).error;
    assert.equal(error?.code, 'SLIPWAY_USAGE');
    assert.equal(error?.exitCode, 2);
  });

  it('exits 130 on SIGINT at once when the registry accepted the connection and says nothing', async () => {
    // A host that takes the TCP connection and never answers: the TLS handshake of the first
    // (HTTPS) ping hangs. undici keeps such a request until its 10 s connect timeout, whatever the
    // signal says; Ctrl-C must not wait for it.
    const silent = await silentServer();
    const { host, sockets } = silent;
    try {
      for (const args of [['tags', `${host}/x`], ['copy', index.reference, `${host}/x:1`]]) {
        const child = spawn(process.execPath, [main, ...args], { env: definedEnv(), stdio: 'pipe' });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        while (sockets.length === 0) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 200));
        const started = Date.now();
        child.kill('SIGINT');
        const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
        assert.equal(code, 130, stderr);
        assert.ok(Date.now() - started < 3000, `${args[0]}: exited ${Date.now() - started} ms after SIGINT`);
        for (const socket of sockets) socket.destroy();
        sockets.length = 0;
      }
    } finally {
      await silent.close();
    }
  });
});

/** A docker save archive, in memory, whose one uncompressed layer holds `bytes` random bytes. */
async function dockerSaveOf(bytes: number, repoTag: string): Promise<Buffer> {
  const layer = await tarOf([{ name: 'random.bin', body: randomBytes(bytes) }]);
  const diffID = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffID] }, config: {} }));
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [repoTag], Layers: ['layer/layer.tar'] }]));
  return tarOf([{ name: configName, body: config }, { name: 'layer/layer.tar', body: layer }, { name: 'manifest.json', body: manifest }]);
}

/** A tar of the given files, in memory. */
async function tarOf(files: { name: string; body: Buffer }[]): Promise<Buffer> {
  const archive = pack();
  for (const file of files) archive.entry({ name: file.name, size: file.body.length }, file.body);
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
