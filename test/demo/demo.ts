// `npm run demo`: slipway end to end on one machine, nothing pulled from anywhere.
//  1. start the real CNCF registry on a free loopback port (test/support/registry.ts);
//  2. make a three-platform image (linux/amd64, linux/arm64, linux/arm/v7) with @slipway/oci alone:
//     layers are tar.gz built in memory, staged in an in-memory registry, then copied into an OCI
//     layout directory by the copy engine;
//  3. with the CLI: push the layout, list its platforms, copy all platforms within the registry
//     (digest kept, blobs mounted, no bytes moved) and to a second registry (every byte moved and
//     verified), copy one platform (the child manifest, its own digest), copy again (a no-op),
//     export that platform to a docker archive (what `docker load` reads) and push it back;
//  4. print the digests, stop the registries.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { copy, layout, MediaType, parsePlatform, type Descriptor } from '@slipway/oci';
import { startRegistry } from '../support/registry.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = join(root, 'packages/cli/dist/main.js');
const run = promisify(execFile);

/** A gzipped tar holding the given files, with fixed mtimes so the digest is the same every run. */
async function layer(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [path, text] of Object.entries(files)) pack.entry({ name: path, mtime: new Date(0), mode: 0o644 }, text);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return gzipSync(Buffer.concat(chunks), { level: 9 });
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

async function makeImage(staging: copy.MemoryRegistry): Promise<void> {
  const base = await layer({ 'etc/slipway-demo': 'built by slipway, no base image pulled\n' });
  const baseDescriptor = staging.addBlob('demo', base, MediaType.OciLayerGzip);
  const children: Descriptor[] = [];
  for (const text of ['linux/amd64', 'linux/arm64', 'linux/arm/v7']) {
    const platform = parsePlatform(text);
    const own = await layer({ 'etc/platform': `${text}\n` });
    const ownDescriptor = staging.addBlob('demo', own, MediaType.OciLayerGzip);
    const diffIds = [base, own].map((b) => `sha256:${createHash('sha256').update(gunzipSync(b)).digest('hex')}`);
    const config = staging.addBlob(
      'demo',
      json({ ...platform, created: '1970-01-01T00:00:00Z', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } }),
      MediaType.OciConfig,
    );
    const manifest = json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [baseDescriptor, ownDescriptor] });
    children.push({ ...staging.addManifest('demo', manifest, MediaType.OciManifest), platform });
  }
  staging.addManifest('demo', json({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: children }), MediaType.OciIndex, 'v1');
}

async function slipway(...args: string[]): Promise<string> {
  console.log(`\n$ slipway ${args.join(' ')}`);
  const { stdout, stderr } = await run(process.execPath, [cli, ...args], { cwd: root });
  if (stderr.trim()) console.log(stderr.trimEnd().replace(/^/gm, '  '));
  console.log(stdout.trimEnd());
  return stdout.trim();
}

const registry = await startRegistry();
const mirror = await startRegistry();
const work = await mkdtemp(join(tmpdir(), 'slipway-demo-'));
try {
  console.log(`registry: distribution on ${registry.host} (storage ${registry.storageDir})`);
  const staging = new copy.MemoryRegistry();
  await makeImage(staging);
  const layoutDir = join(work, 'layout');
  const staged = await copy.copy(staging.source('demo', 'v1'), layout.sink(layoutDir, { tag: 'v1' }));
  console.log(`made a ${staged.platforms.length}-platform OCI layout at ${layoutDir}: ${staged.digest}`);

  const pushed = await slipway('push', layoutDir, `${registry.host}/demo/app:v1`);
  await slipway('platforms', `${registry.host}/demo/app:v1`);
  const all = await slipway('copy', `${registry.host}/demo/app:v1`, `${registry.host}/mirror/app:v1`);
  const remote = await slipway('copy', `${registry.host}/demo/app:v1`, `${mirror.host}/demo/app:v1`);
  const arm = await slipway('copy', `${registry.host}/demo/app:v1`, `${mirror.host}/demo/app:v1-armv7`, '--platform', 'linux/arm/v7');
  await slipway('copy', `${registry.host}/demo/app:v1`, `${mirror.host}/demo/app:v1`);
  const armDigest = await slipway('digest', `${registry.host}/demo/app:v1`, '--platform', 'linux/arm/v7');
  const archive = join(work, 'app-armv7.tar');
  const exported = await slipway('copy', `${mirror.host}/demo/app:v1-armv7`, `docker-archive:${archive}:demo/app:v1-armv7`);
  const reimported = await slipway('push', archive, `${registry.host}/demo/app:v1-armv7`);

  const digestOf = (reference: string) => reference.slice(reference.lastIndexOf('@') + 1);
  console.log('\ndigests');
  console.log(`  layout index               ${staged.digest}`);
  console.log(`  pushed index               ${digestOf(pushed)}`);
  console.log(`  copied index (all), same   ${digestOf(all)}`);
  console.log(`  copied index (all), mirror ${digestOf(remote)}`);
  console.log(`  copied linux/arm/v7        ${digestOf(arm)}`);
  console.log(`  source's linux/arm/v7      ${armDigest}`);
  console.log(`  docker archive of it       ${digestOf(exported)}`);
  console.log(`  pushed back from the tar   ${digestOf(reimported)}`);
  const ok =
    digestOf(pushed) === staged.digest &&
    digestOf(all) === staged.digest &&
    digestOf(remote) === staged.digest &&
    [digestOf(arm), digestOf(exported), digestOf(reimported)].every((digest) => digest === armDigest);
  console.log(ok ? '\nall digests agree: bytes were copied, never re-serialised' : '\nDIGESTS DISAGREE');
  if (!ok) process.exitCode = 1;
} finally {
  await registry.stop();
  await mirror.stop();
  await rm(work, { recursive: true, force: true });
  console.log('registries stopped');
}
