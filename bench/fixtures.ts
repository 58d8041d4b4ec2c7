/**
 * Bench fixtures, built locally (nothing is pulled) and cached across runs:
 * - two OCI layouts of random, incompressible layers, gzip-wrapped as registries hold them: a 4-layer
 *   ~205 MB image (the size ENVIRONMENT.md's skopeo figures were taken with) and a 1 GB single layer;
 * - a `docker save` archive (~200 MB, 4 uncompressed layers): written in docker-save format, then,
 *   when the Docker Engine answers, round-tripped through `docker load` + `docker save` so the bench
 *   pushes what the real `docker save` writes.
 *
 * Layer payloads are crypto-random, so no compressor can shrink them. The fixture gzip streams use
 * level 0 (stored blocks): deflate of random bytes ends up as stored blocks at any level anyway, the
 * copy moves the blob bytes verbatim without ever inflating them, and level 6 on 1.2 GB of random
 * bytes would cost about a minute of this shared 2-core machine for no difference in what is measured.
 * @module
 */
import { createHash, randomFillSync, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { log, runOk, runTimed } from './support.js';

/** Bump when the fixture shapes change: old caches are then rebuilt. */
const FIXTURE_VERSION = 'v1';
const MTIME = new Date('2024-01-01T00:00:00Z');

export interface LayoutFixture {
  /** OCI layout directory (tag `latest`). */
  dir: string;
  layers: number;
  /** Sum of the compressed layer sizes. */
  bytes: number;
  digest: string;
}

export interface ArchiveFixture {
  path: string;
  layers: number;
  /** Archive file size. */
  bytes: number;
  /** `docker save (Docker x)` or `written by the bench`. */
  origin: string;
}

export interface Fixtures {
  dir: string;
  image4: LayoutFixture;
  image1g: LayoutFixture;
  archive: ArchiveFixture;
}

export function fixtureRoot(): string {
  return process.env.SLIPWAY_BENCH_DIR ?? join(tmpdir(), 'slipway-bench-fixtures');
}

/** Builds whatever is missing under the fixture root; cached fixtures are reused. */
export async function buildFixtures(options: { docker: boolean }): Promise<Fixtures> {
  const dir = join(fixtureRoot(), FIXTURE_VERSION);
  await mkdir(dir, { recursive: true });
  const image4 = await cached(join(dir, 'image4'), () => writeLayout(join(dir, 'image4'), [51_250_000, 51_250_000, 51_250_000, 51_250_000]));
  const image1g = await cached(join(dir, 'image1g'), () => writeLayout(join(dir, 'image1g'), [1_000_000_000]));
  const archiveDir = join(dir, options.docker ? 'archive-docker' : 'archive-written');
  const archive = await cached(archiveDir, () => writeArchive(archiveDir, [50_000_000, 50_000_000, 50_000_000, 50_000_000], options.docker));
  return { dir, image4, image1g, archive };
}

/** Runs `build` unless `dir/fixture.json` says a previous run finished it. */
async function cached<T>(dir: string, build: () => Promise<T>): Promise<T> {
  const marker = join(dir, 'fixture.json');
  const known = await readFile(marker, 'utf8').then((text) => JSON.parse(text) as T, () => undefined);
  if (known !== undefined) return known;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const started = Date.now();
  const value = await build();
  await writeFile(marker, JSON.stringify(value, null, 2));
  log(`fixture ${dir} built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return value;
}

/** `size` crypto-random bytes in fresh 1 MiB buffers (fresh: a consumer may keep a chunk). */
function randomStream(size: number): Readable {
  let left = size;
  return new Readable({
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, 1 << 20);
      left -= n;
      this.push(randomFillSync(Buffer.allocUnsafe(n)));
    },
  });
}

function tap(hash: Hash, count?: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      hash.update(chunk);
      count?.(chunk.length);
      callback(null, chunk);
    },
  });
}

/** A tar holding one file of `size` random bytes. */
function randomTar(name: string, size: number): tar.Pack {
  const pack = tar.pack();
  const entry = pack.entry({ name, size, mode: 0o644, mtime: MTIME, uid: 0, gid: 0 });
  pipeline(randomStream(size), entry).then(
    () => pack.finalize(),
    (err: unknown) => pack.destroy(err as Error),
  );
  return pack;
}

interface WrittenLayer {
  diffID: string;
  digest: string;
  size: number;
}

/** Writes gzip(tar(random)) into `blobs/sha256`, hashing both sides on the way. */
async function writeLayer(blobs: string, name: string, payload: number): Promise<WrittenLayer> {
  const raw = createHash('sha256');
  const compressed = createHash('sha256');
  let size = 0;
  const temp = join(blobs, `.tmp-${name}`);
  await pipeline(randomTar(name, payload), tap(raw), createGzip({ level: 0 }), tap(compressed, (n) => (size += n)), createWriteStream(temp));
  const hex = compressed.digest('hex');
  await rename(temp, join(blobs, hex));
  return { diffID: `sha256:${raw.digest('hex')}`, digest: `sha256:${hex}`, size };
}

async function writeBlob(blobs: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(blobs, hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

function imageConfig(diffIDs: readonly string[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      created: MTIME.toISOString(),
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: diffIDs },
      history: diffIDs.map((_, i) => ({ created: MTIME.toISOString(), created_by: `slipway bench layer ${i}` })),
    }),
  );
}

async function writeLayout(dir: string, payloads: readonly number[]): Promise<LayoutFixture> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  log(`writing OCI layout ${dir} (${payloads.length} random layer${payloads.length === 1 ? '' : 's'}, ${(payloads.reduce((a, b) => a + b, 0) / 1e6).toFixed(0)} MB)`);
  // zlib runs on the thread pool: layers compress in parallel.
  const layers = await Promise.all(payloads.map((n, i) => writeLayer(blobs, `layer${i}.bin`, n)));
  const config = await writeBlob(blobs, imageConfig(layers.map((l) => l.diffID)));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    }),
  );
  const m = await writeBlob(blobs, manifest);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
    }),
  );
  return { dir, layers: layers.length, bytes: layers.reduce((a, l) => a + l.size, 0), digest: m.digest };
}

const ARCHIVE_TAG = 'slipway-bench/save:latest';

/** A docker-save archive (pre-Docker-25 shape: `<id>/layer.tar`, `<config>.json`, `manifest.json`). */
async function writeArchive(dir: string, payloads: readonly number[], docker: boolean): Promise<ArchiveFixture> {
  const written = join(dir, docker ? 'written.tar' : 'image.tar');
  log(`writing docker-save archive ${written} (${payloads.length} layers, ${(payloads.reduce((a, b) => a + b, 0) / 1e6).toFixed(0)} MB)`);
  const layerFiles: { file: string; diffID: string; size: number }[] = [];
  await Promise.all(
    payloads.map(async (n, i) => {
      const file = join(dir, `layer${i}.tar`);
      const hash = createHash('sha256');
      await pipeline(randomTar(`file${i}.bin`, n), tap(hash), createWriteStream(file));
      layerFiles[i] = { file, diffID: `sha256:${hash.digest('hex')}`, size: (await stat(file)).size };
    }),
  );
  const config = imageConfig(layerFiles.map((l) => l.diffID));
  const configHex = createHash('sha256').update(config).digest('hex');
  const layerDirs = layerFiles.map((l) => l.diffID.slice('sha256:'.length));
  const manifest = JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [ARCHIVE_TAG], Layers: layerDirs.map((d) => `${d}/layer.tar`) }]);

  const pack = tar.pack();
  const fill = async (): Promise<void> => {
    const add = (name: string, body: Buffer | string): Promise<void> =>
      new Promise((resolve, reject) => pack.entry({ name, mtime: MTIME }, typeof body === 'string' ? Buffer.from(body) : body, (err) => (err ? reject(err) : resolve())));
    for (const [i, l] of layerFiles.entries()) {
      const d = layerDirs[i]!;
      await new Promise<void>((resolve, reject) => pack.entry({ name: `${d}/`, type: 'directory', mtime: MTIME }, (err) => (err ? reject(err) : resolve())));
      await add(`${d}/VERSION`, '1.0');
      await pipeline(createReadStream(l.file), pack.entry({ name: `${d}/layer.tar`, size: l.size, mtime: MTIME }));
    }
    await add(`${configHex}.json`, config);
    await add('manifest.json', manifest);
    pack.finalize();
  };
  await Promise.all([fill(), pipeline(pack, createWriteStream(written))]);
  await Promise.all(layerFiles.map((l) => rm(l.file)));

  if (!docker) return { path: written, layers: payloads.length, bytes: (await stat(written)).size, origin: 'written by the bench in docker-save format (Docker Engine not reachable)' };

  // The real thing: load what we wrote and let `docker save` write the archive the bench pushes.
  const path = join(dir, 'image.tar');
  const cli = '/usr/bin/docker';
  const version = (await runTimed(cli, ['version', '--format', '{{.Server.Version}}'])).stdout.trim();
  await runOk(cli, ['load', '-i', written]);
  try {
    await runOk(cli, ['save', '-o', path, ARCHIVE_TAG]);
  } finally {
    await runTimed(cli, ['rmi', '-f', ARCHIVE_TAG]);
    await rm(written, { force: true });
  }
  return { path, layers: payloads.length, bytes: (await stat(path)).size, origin: `docker save (Docker Engine ${version})` };
}
