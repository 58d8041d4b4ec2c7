// `slipway copy REF oci:DIR | oci-archive:FILE | docker-archive:FILE | docker-daemon:IMAGE`: a
// buildah index in a real registry written to each local place, then read back by the other tools
// (skopeo, regctl, `docker load`, the Docker Engine) and by slipway itself.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { copyImage } from '@slipway/engine';
import { gzipSync } from 'node:zlib';
import { copy, daemon, layout, MediaType, SlipwayError } from '@slipway/oci';
import { isLoadRequest, startEngineFront } from '../support/engine-front.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { DOCKER_CLI, dockerAvailable, hasTool, run, runChecked } from '../support/tools.js';
import { pushBuildahIndex, skopeoRaw, type PushedIndex } from './copy-fixtures.js';
import { sha256Text } from './oci-archive-fixtures.js';
import { regctl, regctlPath } from './regctl-artifacts.js';

const main = fileURLToPath(new URL('../../../packages/cli/dist/main.js', import.meta.url));
const missing = ['buildah', 'skopeo'].filter((tool) => !hasTool(tool));

const fileHash = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
const skopeoLocal = async (ref: string) => (await runChecked('skopeo', ['inspect', '--raw', ref], { timeoutMs: 60_000 })).stdout;
const isCode = (code: string) => (err: unknown) => SlipwayError.is(err) && err.code === code;

describe('copy into local places: OCI layout, OCI archive, docker archive, Docker Engine', { skip: missing.length > 0 ? `needs ${missing.join(', ')}` : false }, () => {
  let registry: TestRegistry;
  let work: string;
  let index: PushedIndex;
  const child = (platform: string) => index.children.find((c) => c.platform === platform)!;
  const slipway = (args: string[]) => run(process.execPath, [main, ...args], { env: { HOME: work }, timeoutMs: 120_000 });
  /** The CLI with its stdout as bytes (a pipe) or into a file descriptor. */
  const slipwayBinary = (args: string[], stdout: 'pipe' | number) =>
    new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((resolve, reject) => {
      const cli = spawn(process.execPath, [main, ...args], { env: { ...process.env, HOME: work }, stdio: ['ignore', stdout, 'pipe'], timeout: 120_000, killSignal: 'SIGKILL' });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      cli.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
      cli.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
      cli.on('error', reject);
      cli.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }));
    });

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'slipway-local-dst-e2e-'));
    index = await pushBuildahIndex(`${registry.host}/app:1`);
  });
  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('oci:DIR:NAME holds the whole index byte for byte, as skopeo and regctl read it; again is a no-op; another name is added beside it', async () => {
    const dir = join(work, 'layout');
    const first = await copyImage({ source: index.reference, destination: `oci:${dir}:v1` });
    assert.equal(first.digest, index.digest);
    assert.equal(first.reference, `oci:${dir}:v1@${index.digest}`);
    assert.equal(sha256Text(await skopeoLocal(`oci:${dir}:v1`)), index.digest);
    for (const c of index.children) assert.equal((await stat(join(dir, 'blobs', 'sha256', c.digest.slice(7)))).isFile(), true, `${c.platform} child stored`);
    if (regctlPath) assert.equal((await runChecked(regctlPath, ['image', 'digest', `ocidir://${dir}:v1`])).stdout.trim(), index.digest);
    assert.equal((await copyImage({ source: index.reference, destination: `oci:${dir}:v1` })).noop, true);

    const arm = await copyImage({ source: index.reference, destination: `oci:${dir}:arm`, platforms: 'linux/arm64' });
    assert.equal(arm.digest, child('linux/arm64').digest);
    const listed = (JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] }).manifests;
    assert.deepEqual(listed.map((d) => `${d.annotations?.['org.opencontainers.image.ref.name']} ${d.digest}`).sort(), [`arm ${arm.digest}`, `v1 ${index.digest}`].sort());
    // Another image under a taken name: refused without overwrite.
    await assert.rejects(copyImage({ source: index.reference, destination: `oci:${dir}:v1`, platforms: 'linux/amd64' }), isCode('SLIPWAY_DESTINATION_EXISTS'));

    // No name: listed once, unnamed, as skopeo's oci:DIR does.
    const bare = join(work, 'bare-layout');
    for (let i = 0; i < 2; i++) await copyImage({ source: index.reference, destination: `oci:${bare}` });
    const bareIndex = JSON.parse(await readFile(join(bare, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: unknown }[] };
    assert.deepEqual(bareIndex.manifests.map((d) => [d.digest, d.annotations]), [[index.digest, undefined]]);
    assert.equal(sha256Text(await skopeoLocal(`oci:${bare}`)), index.digest);
  });

  it('a Docker image manifest into oci: is kept byte for byte, with a warning that Debian\'s skopeo does not find it there (checked)', async () => {
    // A Docker v2 schema 2 image, converted from the buildah child by skopeo itself.
    const docker = `${registry.host}/docker-format:1`;
    await runChecked('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', '--format', 'v2s2', `docker://${registry.host}/app@${child('linux/amd64').digest}`, `docker://${docker}`]);
    const digest = sha256Text(await skopeoRaw(docker));
    const dir = join(work, 'docker-in-oci');
    const out = await slipway(['copy', docker, `oci:${dir}:d`, '--json']);
    assert.equal(out.code, 0, out.stderr);
    const json = JSON.parse(out.stdout) as { digest: string; mediaType: string; warnings: string[] };
    assert.deepEqual([json.digest, json.mediaType], [digest, MediaType.DockerManifest]);
    assert.equal(json.warnings.length, 1);
    assert.match(out.stderr, /slipway: warning: oci:.*:d names a Docker image manifest .* skopeo 1\.9 and buildah 1\.28 do not find such an entry/);
    if (regctlPath) assert.equal((await runChecked(regctlPath, ['image', 'digest', `ocidir://${dir}:d`])).stdout.trim(), digest, 'regctl reads it');
    // What the warning says of skopeo: should a newer skopeo find it, the warning is out of date.
    const skopeo = await run('skopeo', ['inspect', '--raw', `oci:${dir}:d`], { timeoutMs: 60_000 });
    assert.notEqual(skopeo.code, 0, 'skopeo found the Docker manifest: drop or narrow the warning');
    assert.match(skopeo.stderr, /no descriptor found for reference \\"d\\"/);
    // An OCI manifest gets no warning.
    const oci = await copyImage({ source: index.reference, destination: `oci:${dir}:arm`, platforms: 'linux/arm64' });
    assert.deepEqual(oci.warnings, []);
  });

  it('oci-archive:FILE:NAME: one tar skopeo reads with the same digest; reproducible; again a no-op; another image refused unless --overwrite, the file untouched', async () => {
    const file = join(work, 'app.oci.tar');
    const written = await copyImage({ source: index.reference, destination: `oci-archive:${file}:v1` });
    assert.equal(written.digest, index.digest);
    assert.equal(sha256Text(await skopeoLocal(`oci-archive:${file}:v1`)), index.digest);
    const before = await fileHash(file);
    const twin = join(work, 'twin.oci.tar');
    await copyImage({ source: index.reference, destination: `oci-archive:${twin}:v1` });
    assert.equal(await fileHash(twin), before, 'the same image makes the same bytes');

    assert.equal((await copyImage({ source: index.reference, destination: `oci-archive:${file}:v1` })).noop, true);
    assert.equal(await fileHash(file), before, 'a no-op does not rewrite the file');

    const refused = await slipway(['copy', index.reference, `oci-archive:${file}:v1`, '--platform', 'linux/arm64']);
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, new RegExp(`already holds ${index.digest}`));
    const unnamed = await slipway(['copy', index.reference, `oci-archive:${file}:other`]);
    assert.equal(unnamed.code, 5, unnamed.stderr);
    assert.match(unnamed.stderr, /no image "other" in .*--overwrite/);
    assert.equal(await fileHash(file), before);

    const replaced = await slipway(['copy', index.reference, `oci-archive:${file}:v1`, '--platform', 'linux/arm64', '--overwrite', '--json', '-q']);
    assert.equal(replaced.code, 0, replaced.stderr);
    const json = JSON.parse(replaced.stdout) as { digest: string; destination: string; reference: string };
    assert.equal(json.digest, child('linux/arm64').digest);
    assert.equal(json.destination, `oci-archive:${file}:v1`);
    assert.equal(json.reference, `oci-archive:${file}:v1@${json.digest}`);
    assert.equal(sha256Text(await skopeoLocal(`oci-archive:${file}:v1`)), json.digest);
    assert.deepEqual((await readdir(work)).filter((n) => n.startsWith('slipway-') || n.includes('.tmp-')), [], 'no staging directory or temp file left');
  });

  it('docker-archive:FILE:NAME needs one platform; what it writes docker load tags and skopeo reads, and slipway pushes back under the same digest', async (t) => {
    const file = join(work, 'app.docker.tar');
    const index1 = await slipway(['copy', index.reference, `docker-archive:${file}:app:1`]);
    assert.equal(index1.code, 2, index1.stderr);
    assert.match(index1.stderr, /holds one image, and .* is an index \(linux\/amd64, linux\/arm64, linux\/arm\/v7\): select one with --platform/);
    await assert.rejects(stat(file), 'nothing written for a refused copy');

    const arm = child('linux/arm64');
    const written = await copyImage({ source: index.reference, destination: `docker-archive:${file}:app:1`, platforms: 'linux/arm64' });
    assert.equal(written.digest, arm.digest);
    const config = (JSON.parse(await skopeoRaw(`${registry.host}/app@${arm.digest}`)) as { config: { digest: string } }).config.digest;
    const viaSkopeo = JSON.parse((await runChecked('skopeo', ['inspect', `docker-archive:${file}`], { timeoutMs: 60_000 })).stdout) as { Architecture: string; RepoTags?: string[] };
    assert.equal(viaSkopeo.Architecture, 'arm64');
    assert.equal(sha256Text(await skopeoLocal(`oci-archive:${file}`)), arm.digest, 'its OCI half keeps the manifest digest');
    const manifestJson = JSON.parse((await runChecked('tar', ['-xOf', file, 'manifest.json'])).stdout) as { Config: string; RepoTags: string[] }[];
    assert.deepEqual(manifestJson.map((m) => [m.Config, m.RepoTags]), [[`blobs/sha256/${config.slice(7)}`, ['app:1']]]);

    // Read back by slipway: pushed to a registry, the same manifest.
    const pushed = await slipway(['push', file, `${registry.host}/roundtrip:1`, '--json', '-q']);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal((JSON.parse(pushed.stdout) as { digest: string }).digest, arm.digest);

    if (!(hasTool(DOCKER_CLI) && (await dockerAvailable()))) {
      t.diagnostic('SKIPPED the docker load check: Docker Engine not reachable (scripts/start-dockerd.sh)');
      return;
    }
    const tag = `slipway-e2e-archive-${process.pid}:1`;
    const named = join(work, 'named.docker.tar');
    await copyImage({ source: index.reference, destination: `docker-archive:${named}:${tag}`, platforms: 'linux/arm64' });
    try {
      const loaded = await runChecked(DOCKER_CLI, ['load', '-i', named], { timeoutMs: 120_000 });
      assert.match(loaded.stdout, new RegExp(`Loaded image: ${tag}`));
      assert.equal((await runChecked(DOCKER_CLI, ['image', 'inspect', '--format', '{{.Id}} {{.Architecture}}', tag])).stdout.trim(), `${config} arm64`);
    } finally {
      await run(DOCKER_CLI, ['rmi', tag]);
    }
  });

  it('an artifact is refused by a docker archive, before anything is written', { skip: regctlPath ? false : 'needs regctl (scripts/install-go-tools.sh)' }, async () => {
    const artifact = `${registry.host}/artifact:1`;
    await regctl(() => [registry.host], () => work).run(['artifact', 'put', '--artifact-type', 'application/example.thing', artifact], 'not an image');
    const file = join(work, 'artifact.docker.tar');
    await assert.rejects(copyImage({ source: artifact, destination: `docker-archive:${file}` }), (err: unknown) => SlipwayError.is(err) && /is an artifact \(config application\/vnd\.oci\.empty\.v1\+json|is an artifact \(config application\/example\.thing/.test(err.message));
    await assert.rejects(stat(file));
  });

  it('a copy that fails or is aborted part-way leaves no file and no staging directory', async () => {
    const dir = await mkdtemp(join(work, 'fail-'));
    const file = join(dir, 'out.tar');
    const proxy = await startFaultProxy({ target: registry });
    try {
      // Every blob read corrupted: the copy fails after reading some of them twice.
      proxy.inject({ match: { method: 'GET', path: '/blobs/' }, fault: { corrupt: { atByte: 0 } }, times: 1000 });
      await assert.rejects(copyImage({ source: `${proxy.host}/app:1`, destination: `oci-archive:${file}` }), isCode('SLIPWAY_DIGEST_MISMATCH'));
      assert.deepEqual(await readdir(dir), []);
      proxy.clearFaults();

      const controller = new AbortController();
      await assert.rejects(
        copyImage({
          source: `${proxy.host}/app:1`,
          destination: `oci-archive:${file}`,
          jobs: 1,
          signal: controller.signal,
          onProgress: (event) => {
            if (event.type === 'blob-done') controller.abort(new Error('stop'));
          },
        }),
        isCode('SLIPWAY_ABORTED'),
      );
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await proxy.stop();
    }
  });

  it('docker-daemon:IMAGE loads one platform under the name (the Engine\'s own unless --platform); again a no-op; another image refused unless --overwrite', async (t) => {
    if (!(hasTool(DOCKER_CLI) && (await dockerAvailable()))) {
      t.skip('SKIPPED: Docker Engine not reachable (scripts/start-dockerd.sh)');
      return;
    }
    const tag = `slipway-e2e-daemon-${process.pid}:1`;
    const configOf = async (digest: string) => (JSON.parse(await skopeoRaw(`${registry.host}/app@${digest}`)) as { config: { digest: string } }).config.digest;
    try {
      // No --platform: the image for the platform the Engine reports (GET /version), as docker pull takes.
      const engine = (await runChecked(DOCKER_CLI, ['version', '--format', '{{.Server.Os}}/{{.Server.Arch}}'])).stdout.trim();
      const own = child(engine);
      const unselected = await slipway(['copy', index.reference, `docker-daemon:${tag}`, '--json']);
      assert.equal(unselected.code, 0, unselected.stderr);
      const json = JSON.parse(unselected.stdout) as { digest: string; sinkPlatform?: string };
      assert.deepEqual([json.digest, json.sinkPlatform], [own.digest, engine]);
      assert.match(unselected.stderr, new RegExp(`is an index: took its ${engine} image, the platform docker-daemon:${tag} runs \\(--platform picks another\\)`));
      await runChecked(DOCKER_CLI, ['rmi', tag]);
      const amd = child('linux/amd64');
      const loaded = await copyImage({ source: index.reference, destination: `docker-daemon:${tag}`, platforms: 'linux/amd64' });
      assert.equal(loaded.digest, amd.digest);
      assert.equal(loaded.noop, false);
      assert.equal(loaded.sinkPlatform, undefined, 'a platform given is no choice of the destination');
      assert.equal((await runChecked(DOCKER_CLI, ['image', 'inspect', '--format', '{{.Id}} {{.Architecture}}', tag])).stdout.trim(), `${await configOf(amd.digest)} amd64`);
      assert.equal((await copyImage({ source: index.reference, destination: `docker-daemon:${tag}`, platforms: 'linux/amd64' })).noop, true);

      const other = await slipway(['copy', index.reference, `docker-daemon:${tag}`, '--platform', 'linux/arm/v7']);
      assert.equal(other.code, 5, other.stderr);
      assert.match(other.stderr, /already holds image ID sha256:/);
      const replaced = await slipway(['copy', index.reference, `docker-daemon:${tag}`, '--platform', 'linux/arm/v7', '--overwrite', '-q']);
      assert.equal(replaced.code, 0, replaced.stderr);
      assert.equal(replaced.stdout.trim(), `docker-daemon:${tag}@${child('linux/arm/v7').digest}`);
      assert.equal((await runChecked(DOCKER_CLI, ['image', 'inspect', '--format', '{{.Id}} {{.Architecture}} {{.Variant}}', tag])).stdout.trim(), `${await configOf(child('linux/arm/v7').digest)} arm v7`);
    } finally {
      await run(DOCKER_CLI, ['rmi', '-f', tag]);
    }
  });

  it('docker-daemon: another image taking the name between the check and the load gets it back (exit 5); with --overwrite ours keeps it', async (t) => {
    // A TCP front for the Engine: when a load arrives, another process tags a different image with
    // the name first (what a second copy into the same name does), then the load goes on.
    let loads = 0;
    const tag = `slipway-e2e-daemon-race-${process.pid}:1`;
    const racer = `slipway-e2e-daemon-racer-${process.pid}:1`;
    const front =
      hasTool(DOCKER_CLI) && (await dockerAvailable())
        ? await startEngineFront({
            onClientData: (chunk) => {
              if (!isLoadRequest(chunk)) return 'pass';
              loads += 1;
              return runChecked(DOCKER_CLI, ['tag', racer, tag]).then(() => undefined);
            },
          })
        : undefined;
    if (!front) {
      t.skip('SKIPPED: a Docker Engine on a unix socket is needed (scripts/start-dockerd.sh)');
      return;
    }
    const viaFront = (args: string[]) => run(process.execPath, [main, ...args], { env: { HOME: work, DOCKER_HOST: front.host }, timeoutMs: 120_000 });
    const idOf = async (name: string) => (await runChecked(DOCKER_CLI, ['image', 'inspect', '--format', '{{.Id}}', name])).stdout.trim();
    try {
      await copyImage({ source: index.reference, destination: `docker-daemon:${racer}`, platforms: 'linux/arm/v7' });
      const racerId = await idOf(racer);
      const refused = await viaFront(['copy', index.reference, `docker-daemon:${tag}`, '--platform', 'linux/amd64', '--json']);
      assert.equal(loads, 1, 'the load went through the front');
      assert.equal(refused.code, 5, refused.stderr);
      assert.equal((JSON.parse(refused.stdout) as { error: { code: string } }).error.code, 'SLIPWAY_DESTINATION_EXISTS');
      assert.match(refused.stderr, new RegExp(`docker-daemon:${tag} already holds image ID ${racerId}, not the source's image ID sha256:`));
      assert.equal(await idOf(tag), racerId, 'the name went back to the image it held');
      await runChecked(DOCKER_CLI, ['rmi', tag]);
      const replaced = await viaFront(['copy', index.reference, `docker-daemon:${tag}`, '--platform', 'linux/amd64', '--overwrite', '-q']);
      assert.equal(replaced.code, 0, replaced.stderr);
      assert.notEqual(await idOf(tag), racerId, 'with --overwrite the loaded image keeps the name');
    } finally {
      front.close();
      await run(DOCKER_CLI, ['rmi', '-f', tag, racer]);
    }
  });

  it('docker-daemon: an image the Engine refuses (diff IDs that do not match its layers) is a clear error, and the name is not created; an unreachable Engine fails before anything moves', async (t) => {
    if (!(hasTool(DOCKER_CLI) && (await dockerAvailable()))) {
      t.skip('SKIPPED: Docker Engine not reachable (scripts/start-dockerd.sh)');
      return;
    }
    const memory = new copy.MemoryRegistry({ host: 'memory.test' });
    const json = (value: unknown) => Buffer.from(JSON.stringify(value));
    const layer = memory.addBlob('bad', gzipSync(Buffer.alloc(1024)), MediaType.OciLayerGzip);
    const config = memory.addBlob('bad', json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] }, config: {} }), MediaType.OciConfig);
    memory.addManifest('bad', json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] }), MediaType.OciManifest, 'v1');
    const tag = `slipway-e2e-refused-${process.pid}:1`;
    const sink = daemon.sink(tag);
    try {
      await assert.rejects(copy.copy(memory.source('bad', 'v1'), sink), (err: unknown) => {
        assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_ARCHIVE', String(err));
        assert.match(err.message, new RegExp(`Docker daemon at unix:///var/run/docker.sock refused to load docker-daemon:${tag}: .+`));
        return true;
      });
    } finally {
      await sink.close();
    }
    assert.notEqual((await run(DOCKER_CLI, ['image', 'inspect', tag])).code, 0, 'no image under the name');

    const nowhere = daemon.sink(tag, { host: `unix://${join(work, 'no-docker.sock')}` });
    const blobReads = () => memory.requests.filter((r) => r.kind === 'blob' && r.method === 'GET').length;
    const readBefore = blobReads();
    await assert.rejects(copy.copy(memory.source('bad', 'v1'), nowhere), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_NETWORK' && /cannot reach the Docker daemon/.test(err.message));
    assert.equal(blobReads() - readBefore, 1, 'only the config was read (to check the platform): no layer moved');
  });

  it('docker-daemon: an image whose config is named by sha512 loads, and again is a no-op (the image ID is the sha256 of the config)', async (t) => {
    if (!(hasTool(DOCKER_CLI) && (await dockerAvailable()))) {
      t.skip('SKIPPED: Docker Engine not reachable (scripts/start-dockerd.sh)');
      return;
    }
    const memory = new copy.MemoryRegistry({ host: 'memory.test' });
    const sha = (algorithm: 'sha256' | 'sha512', bytes: Buffer) => `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as const;
    const emptyTar = Buffer.alloc(1024);
    const layer = gzipSync(emptyTar);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha('sha256', emptyTar)] }, config: {} }));
    memory.storeBlob('s512', sha('sha512', layer), layer);
    memory.storeBlob('s512', sha('sha512', config), config);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: sha('sha512', config), size: config.length },
      layers: [{ mediaType: MediaType.OciLayerGzip, digest: sha('sha512', layer), size: layer.length }],
    }));
    memory.storeManifest('s512', { descriptor: { mediaType: MediaType.OciManifest, digest: sha('sha256', manifest), size: manifest.length }, bytes: manifest }, 'v1');
    const tag = `slipway-e2e-sha512-${process.pid}:1`;
    try {
      for (const noop of [false, true]) {
        const sink = daemon.sink(tag);
        try {
          assert.equal((await copy.copy(memory.source('s512', 'v1'), sink)).noop, noop);
        } finally {
          await sink.close();
        }
      }
      assert.equal((await runChecked(DOCKER_CLI, ['image', 'inspect', '--format', '{{.Id}}', tag])).stdout.trim(), sha('sha256', config));
    } finally {
      await run(DOCKER_CLI, ['rmi', '-f', tag]);
    }
  });

  it('docker-archive:/dev/stdout streams the archive a file gets into a pipe or a redirected file, the result going to stderr; a terminal is refused', async (t) => {
    const arm = child('linux/arm64');
    const file = join(work, 'stdout-twin.docker.tar');
    await copyImage({ source: index.reference, destination: `docker-archive:${file}:app:piped`, platforms: 'linux/arm64' });
    const expected = await fileHash(file);
    const args = ['copy', index.reference, 'docker-archive:/dev/stdout:app:piped', '--platform', 'linux/arm64'];

    for (const json of [false, true]) {
      const piped = await slipwayBinary([...args, ...(json ? ['--json'] : [])], 'pipe');
      assert.equal(piped.code, 0, piped.stderr);
      assert.equal(createHash('sha256').update(piped.stdout).digest('hex'), expected, 'stdout holds the archive and nothing else');
      if (json) assert.equal((JSON.parse(piped.stderr.slice(piped.stderr.indexOf('{'))) as { digest: string }).digest, arm.digest);
      else assert.match(piped.stderr, new RegExp(`docker-archive:/dev/stdout:app:piped@${arm.digest}`));
    }

    // A refused copy (an index, no platform): the --json error goes to stderr too, stdout stays empty.
    const refused = await slipwayBinary(['copy', index.reference, 'docker-archive:/dev/stdout', '--json'], 'pipe');
    assert.equal(refused.code, 2, refused.stderr);
    assert.equal(refused.stdout.length, 0);
    assert.equal((JSON.parse(refused.stderr.slice(refused.stderr.indexOf('{'))) as { error: { code: string } }).error.code, 'SLIPWAY_INVALID_ARG');
    // So do a usage error found while parsing flags and a bad --platform, before any destination is opened.
    for (const [extra, code] of [[['--bogus'], 'SLIPWAY_USAGE'], [['--platform', 'linux/'], 'SLIPWAY_INVALID_PLATFORM']] as const) {
      const early = await slipwayBinary(['copy', index.reference, 'oci-archive:/dev/stdout:app', '--json', ...extra], 'pipe');
      assert.equal(early.code, 2, early.stderr);
      assert.equal(early.stdout.length, 0, `${extra.join(' ')}: nothing on stdout`);
      assert.equal((JSON.parse(early.stderr.slice(early.stderr.indexOf('{'))) as { error: { code: string } }).error.code, code);
    }

    // `> out.tar`: the shell left an empty file behind /dev/stdout.
    const redirected = join(work, 'redirected.tar');
    const handle = await open(redirected, 'w');
    try {
      const result = await slipwayBinary(args, handle.fd);
      assert.equal(result.code, 0, result.stderr);
    } finally {
      await handle.close();
    }
    assert.equal(await fileHash(redirected), expected);

    if (hasTool('script')) {
      // util-linux script(1) gives the command a pseudo-terminal as stdout.
      const onTerminal = await run('script', ['-qec', `${process.execPath} ${main} ${args.join(' ')}`, '/dev/null'], { env: { HOME: work }, timeoutMs: 60_000 });
      assert.equal(onTerminal.code, 2, onTerminal.stdout);
      assert.match(onTerminal.stdout, /docker-archive:\/dev\/stdout:app:piped" is a terminal: redirect it to a file or pipe it/);
    } else t.diagnostic('SKIPPED the terminal check: script(1) from util-linux is not installed');

    if (!(hasTool(DOCKER_CLI) && (await dockerAvailable()))) {
      t.diagnostic('SKIPPED the | docker load check: Docker Engine not reachable (scripts/start-dockerd.sh)');
      return;
    }
    const tag = `slipway-e2e-piped-${process.pid}:1`;
    try {
      const loaded = await run('bash', ['-o', 'pipefail', '-c', `"${process.execPath}" "${main}" copy ${index.reference} docker-archive:/dev/stdout:${tag} --platform linux/arm64 -q | ${DOCKER_CLI} load`], { env: { HOME: work }, timeoutMs: 120_000 });
      assert.equal(loaded.code, 0, loaded.stderr);
      assert.match(loaded.stdout, new RegExp(`Loaded image: ${tag}`));
      const config = (JSON.parse(await skopeoRaw(`${registry.host}/app@${arm.digest}`)) as { config: { digest: string } }).config.digest;
      assert.equal((await runChecked(DOCKER_CLI, ['image', 'inspect', '--format', '{{.Id}}', tag])).stdout.trim(), config);
    } finally {
      await run(DOCKER_CLI, ['rmi', tag]);
    }
  });

  it('docker-archive:/dev/stdout with the command\'s own output in the way: 2>&1 stays clean, >> onto an archive is compared not appended, /dev/stdin is refused', async () => {
    const file = join(work, 'stdio-twin.docker.tar');
    await copyImage({ source: index.reference, destination: `docker-archive:${file}:app:stdio`, platforms: 'linux/arm64' });
    const expected = await fileHash(file);
    const cli = `"${process.execPath}" "${main}" copy ${index.reference} docker-archive:/dev/stdout:app:stdio --platform linux/arm64`;
    const sh = (script: string) => run('bash', ['-o', 'pipefail', '-c', script], { env: { HOME: work }, timeoutMs: 60_000 });

    // stderr into the same pipe (2>&1 | docker load): no progress, no result line in the archive.
    const merged = join(work, 'merged.tar');
    const mergedRun = await sh(`${cli} 2>&1 | cat > "${merged}"`);
    assert.equal(mergedRun.code, 0, mergedRun.stderr);
    assert.equal(await fileHash(merged), expected);

    // >> onto a file holding this image: a no-op that leaves it byte for byte (no result line appended);
    // onto one holding another image: exit 5, untouched.
    const same = await sh(`${cli} >> "${file}"`);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stderr, /already holds/);
    assert.equal(await fileHash(file), expected);
    const other = join(work, 'other.docker.tar');
    await copyImage({ source: index.reference, destination: `docker-archive:${other}:app:other`, platforms: 'linux/amd64' });
    const otherHash = await fileHash(other);
    const appended = await sh(`${cli} >> "${other}"`);
    assert.equal(appended.code, 5, appended.stderr);
    assert.equal(await fileHash(other), otherHash);

    // stdin on /dev/null (cron, CI): /dev/null as the destination is no trap.
    const devNull = await sh(`"${process.execPath}" "${main}" copy ${index.reference} docker-archive:/dev/null --platform linux/arm64 -q < /dev/null`);
    assert.equal(devNull.code, 0, devNull.stderr);

    // The write end of its own input, which nobody reads: refused, not a hang.
    const intoStdin = await sh(`echo hi | "${process.execPath}" "${main}" copy ${index.reference} oci-archive:/dev/stdin`);
    assert.equal(intoStdin.code, 2, intoStdin.stderr);
    assert.match(intoStdin.stderr, /is standard input/);

    // A closed stdout or stderr (>&-), which Node reopens onto /dev/null: refused, where the archive
    // would otherwise vanish with exit 0. Redirected to /dev/null, or naming /dev/null, it is the user's choice.
    const closedStdout = await sh(`${cli} >&-`);
    assert.equal(closedStdout.code, 2, closedStdout.stderr);
    assert.match(closedStdout.stderr, /docker-archive:\/dev\/stdout:app:stdio" is a standard stream that is \/dev\/null opened read-write, as Node leaves one that was closed when slipway started \(>&-\)/);
    const closedStderr = await sh(`"${process.execPath}" "${main}" copy ${index.reference} docker-archive:/dev/stderr --platform linux/arm64 --json 2>&-`);
    assert.equal(closedStderr.code, 2, closedStderr.stdout);
    assert.equal((JSON.parse(closedStderr.stdout) as { error: { code: string } }).error.code, 'SLIPWAY_INVALID_ARG');
    const redirected = await sh(`${cli} > /dev/null`);
    assert.equal(redirected.code, 0, redirected.stderr);
    const namedWhileClosed = await sh(`"${process.execPath}" "${main}" copy ${index.reference} docker-archive:/dev/null --platform linux/arm64 -q >&-`);
    assert.equal(namedWhileClosed.code, 0, namedWhileClosed.stderr);
    // stderr sent to /dev/null on purpose, stdout closed: /dev/stderr is the same file as fd 1, but the
    // stream it names was not closed.
    const stderrToNull = await sh(`"${process.execPath}" "${main}" copy ${index.reference} docker-archive:/dev/stderr --platform linux/arm64 -q >&- 2>/dev/null`);
    assert.equal(stderrToNull.code, 0, stderrToNull.stderr);
  });

  it('SIGTERM ends a copy into a stdout nobody reads at once (exit 143, 128 + SIGTERM), its staging gone', async () => {
    // An image bigger than a pipe holds, in a layout: the archive stalls on the unread stdout.
    const memory = new copy.MemoryRegistry({ host: 'memory.test' });
    const layer = randomBytes(4 * 1024 * 1024);
    const layerDescriptor = memory.addBlob('big', layer, MediaType.OciLayer);
    const config = memory.addBlob('big', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(layer).digest('hex')}`] } })), MediaType.OciConfig);
    memory.addManifest('big', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layerDescriptor] })), MediaType.OciManifest, 'v1');
    const layoutDir = join(work, 'big-layout');
    await copy.copy(memory.source('big', 'v1'), layout.sink(layoutDir, { tag: 'v1' }));
    const scratch = join(work, 'sigterm-tmp');
    await mkdir(scratch);
    const child = spawn(process.execPath, [main, 'copy', `oci:${layoutDir}:v1`, 'docker-archive:/dev/stdout', '-q'], { env: { ...process.env, HOME: work, TMPDIR: scratch }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pause(); // never read: the archive fills the pipe and stalls
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Until the archive is being written (the staging dir holds the layer), then the signal.
    for (let i = 0; i < 100 && (await readdir(scratch)).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 500));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 143, `exit ${code}; stderr: ${stderr}`);
    assert.deepEqual(await readdir(scratch), [], 'the staging directory went with it');
  });

  it('referrers and digest tags are registry-to-registry only: a local destination is a usage error', async () => {
    for (const flag of ['--referrers', '--digest-tags']) {
      const refused = await slipway(['copy', index.reference, `oci:${join(work, 'never')}`, flag]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /only copied into a registry/);
    }
    await assert.rejects(stat(join(work, 'never')));
  });
});
