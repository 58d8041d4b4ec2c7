import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, lstat, mkdtemp, open as openFile, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { copy } from '../copy/copy.js';
import { MemoryRegistry } from '../copy/memory.js';
import { SlipwayError } from '../errors.js';
import { errorOf } from '../testing/rejection.js';
import { imageSourceConformance } from '../testing/conformance.js';
import { sha256, type Digest } from '../v1/digest.js';
import type { Descriptor } from '../v1/manifest.js';
import { MediaType } from '../v1/media-types.js';
import { parsePlatforms } from '../v1/platform.js';
import { dockerArchiveSink, ociArchiveSink } from './sink.js';
import { list, open } from './source.js';

const encode = (value: unknown) => Buffer.from(JSON.stringify(value));
const fileHash = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

/** A two-platform index in `src/app:v1` of a memory registry; each image has a real gzip layer and diff ID. */
function registryWithIndex(): { registry: MemoryRegistry; index: Descriptor; amd64: Descriptor; blobs: Digest[] } {
  const registry = new MemoryRegistry({ host: 'src.test' });
  const blobs: Digest[] = [];
  const image = (architecture: string) => {
    const tar = Buffer.alloc(1024, architecture);
    const layer = registry.addBlob('app', gzipSync(tar), MediaType.OciLayerGzip);
    const config = registry.addBlob('app', encode({ architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(tar)] }, config: {} }), MediaType.OciConfig);
    blobs.push(layer.digest, config.digest);
    return { ...registry.addManifest('app', encode({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] }), MediaType.OciManifest), platform: { architecture, os: 'linux' } };
  };
  const amd64 = image('amd64');
  const arm64 = image('arm64');
  const index = registry.addManifest('app', encode({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [amd64, arm64] }), MediaType.OciIndex, 'v1');
  blobs.push(amd64.digest, arm64.digest);
  return { registry, index, amd64, blobs };
}

/**
 * Reads a FIFO from a child process: the test's own blocking open of it would take a thread-pool
 * thread the code under test needs (with UV_THREADPOOL_SIZE=1, a deadlock).
 */
function drain(fifo: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cat = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    cat.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    cat.on('error', reject);
    cat.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`cat ${fifo} exited ${code}`))));
  });
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-archive-sink-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

imageSourceConformance('OCI archive written by tarball.ociArchiveSink', async () => {
  const { registry, index, blobs } = registryWithIndex();
  const path = join(dir, 'conformance-oci.tar');
  await copy(registry.source('app', 'v1'), ociArchiveSink(path, { name: 'v1' }));
  return { source: await open(path, { image: 'v1' }), expected: { rootDigest: index.digest, contains: blobs } };
});

imageSourceConformance('docker archive written by tarball.dockerArchiveSink (read through its OCI half)', async () => {
  const { registry, amd64 } = registryWithIndex();
  const path = join(dir, 'conformance-docker.tar');
  await copy(registry.source('app', 'v1'), dockerArchiveSink(path, { name: 'app:1' }), { platforms: parsePlatforms(['linux/amd64']) });
  return { source: await open(path, { image: 'app:1' }), expected: { rootDigest: amd64.digest } };
});

describe('archive sinks', () => {
  it('the same image makes the same bytes; again is a no-op that leaves the file alone', async () => {
    const { registry } = registryWithIndex();
    const a = join(dir, 'repro-a.tar');
    const b = join(dir, 'nested', 'deeper', 'repro-b.tar');
    await copy(registry.source('app', 'v1'), ociArchiveSink(a, { name: 'v1' }));
    await copy(registry.source('app', 'v1'), ociArchiveSink(b, { name: 'v1' }));
    assert.equal(await fileHash(a), await fileHash(b), 'reproducible, and the parent directories were made');
    const again = await copy(registry.source('app', 'v1'), ociArchiveSink(a, { name: 'v1' }));
    assert.equal(again.noop, true);
  });

  it('a docker archive lists the image in manifest.json under its familiar name, with the blobs as its layer files', async () => {
    const { registry, amd64 } = registryWithIndex();
    const path = join(dir, 'named.tar');
    await copy(registry.source('app', 'v1'), dockerArchiveSink(path, { name: 'registry.test:5000/team/app' }), { platforms: parsePlatforms(['linux/amd64']) });
    assert.deepEqual(await list(path), [{ position: 0, tags: ['registry.test:5000/team/app:latest'] }]);
    const opened = await open(path);
    try {
      assert.equal(opened.format, 'oci-layout');
      assert.equal((await opened.root()).descriptor.digest, amd64.digest);
    } finally {
      await opened.close();
    }
  });

  it('an existing file that is not a readable archive is refused, untouched, unless overwrite; the staging directory goes either way', async () => {
    const { registry, index } = registryWithIndex();
    const work = await mkdtemp(join(dir, 'existing-'));
    const path = join(work, 'out.tar');
    await writeFile(path, 'precious, not a tar');
    await assert.rejects(copy(registry.source('app', 'v1'), ociArchiveSink(path)), (err: unknown) => {
      assert.ok(SlipwayError.is(err) && err.code === 'SLIPWAY_DESTINATION_EXISTS');
      assert.match(err.message, /exists \(.*\); pass overwrite .* to replace the whole file/);
      return true;
    });
    assert.equal(await readFile(path, 'utf8'), 'precious, not a tar');
    const sink = ociArchiveSink(path, { overwrite: true });
    try {
      assert.equal((await copy(registry.source('app', 'v1'), sink, { overwrite: true })).digest, index.digest);
    } finally {
      await sink.close();
    }
    assert.deepEqual(await readdir(work), ['out.tar']);
  });

  it('a docker archive is not satisfied by an OCI archive of the same image (docker load reads manifest.json), nor any archive by one missing a blob', async () => {
    const { registry, amd64 } = registryWithIndex();
    const work = await mkdtemp(join(dir, 'satisfied-'));
    const path = join(work, 'image.tar');
    const one = { platforms: parsePlatforms(['linux/amd64']) };
    await copy(registry.source('app', 'v1'), ociArchiveSink(path), one);
    await assert.rejects(copy(registry.source('app', 'v1'), dockerArchiveSink(path), one), /exists \(an OCI archive without the manifest\.json docker load reads\)/);
    const rewritten = await copy(registry.source('app', 'v1'), dockerArchiveSink(path, { overwrite: true }), { ...one, overwrite: true });
    assert.equal(rewritten.noop, false);
    assert.equal(rewritten.digest, amd64.digest);
    assert.deepEqual(await list(path), [{ position: 0, tags: [] }], 'listed by manifest.json now');

    // The same archive without its layer: not a copy of the image.
    const broken = join(work, 'broken.tar');
    const layer = (JSON.parse(Buffer.from(registry.lookup('app', amd64.digest)!.bytes).toString('utf8')) as { layers: Descriptor[] }).layers[0]!;
    const tar = spawnSync('tar', ['--delete', '-f', path, `blobs/sha256/${layer.digest.slice(7)}`]);
    assert.equal(tar.status, 0, String(tar.stderr));
    await rename(path, broken);
    // (Its OCI half incomplete, the archive reads as a bare docker save, whose digest is unknown.)
    await assert.rejects(copy(registry.source('app', 'v1'), dockerArchiveSink(broken), one), /exists \(a docker save archive without an OCI layout in it\)/);
    const ociBroken = join(work, 'oci-broken.tar');
    await copy(registry.source('app', 'v1'), ociArchiveSink(ociBroken), one);
    assert.equal(spawnSync('tar', ['--delete', '-f', ociBroken, `blobs/sha256/${layer.digest.slice(7)}`]).status, 0);
    await assert.rejects(copy(registry.source('app', 'v1'), ociArchiveSink(ociBroken), one), /exists \(blob sha256:[a-f0-9]+ is not in/);
  });

  it('replacing a file keeps its mode, and a symlink stays a symlink to the rewritten file', async () => {
    const { registry } = registryWithIndex();
    const work = await mkdtemp(join(dir, 'replace-'));
    const real = join(work, 'real.tar');
    await writeFile(real, 'old content', { mode: 0o600 });
    await chmod(real, 0o600);
    const link = join(work, 'link.tar');
    await symlink(real, link);
    await copy(registry.source('app', 'v1'), ociArchiveSink(link, { overwrite: true }), { overwrite: true });
    assert.equal((await lstat(link)).isSymbolicLink(), true);
    assert.equal((await stat(real)).mode & 0o777, 0o600);
    assert.equal((await list(link)).length, 1);
    assert.deepEqual((await readdir(work)).sort(), ['link.tar', 'real.tar']);
  });

  it('a dangling symlink is written through, as cp and > do: the link stays and names the new archive; a link into a missing directory is refused', async () => {
    const { registry } = registryWithIndex();
    const work = await mkdtemp(join(dir, 'dangling-'));
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(work, 'bigger-disk'));
    const link = join(work, 'out.tar');
    await symlink('bigger-disk/app.tar', link);
    await copy(registry.source('app', 'v1'), dockerArchiveSink(link), { platforms: parsePlatforms(['linux/amd64']) });
    assert.equal((await lstat(link)).isSymbolicLink(), true, 'the link the user made stays');
    assert.ok((await stat(join(work, 'bigger-disk', 'app.tar'))).size > 0);
    assert.deepEqual((await readdir(work)).sort(), ['bigger-disk', 'out.tar'], 'no staging left');
    const nowhere = join(work, 'nowhere.tar');
    await symlink('missing-dir/app.tar', nowhere);
    await assert.rejects(copy(registry.source('app', 'v1'), ociArchiveSink(nowhere)), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_IO' && /is a symbolic link to ".*missing-dir\/app\.tar", whose directory does not exist/.test(err.message));
    assert.equal((await lstat(nowhere)).isSymbolicLink(), true);
  });

  it('a new archive is written with the umask applied', async () => {
    const { registry } = registryWithIndex();
    const previous = process.umask(0o077);
    try {
      const path = join(await mkdtemp(join(dir, 'umask-')), 'private.tar');
      await copy(registry.source('app', 'v1'), ociArchiveSink(path));
      assert.equal((await stat(path)).mode & 0o777, 0o600);
    } finally {
      process.umask(previous);
    }
  });

  it('an empty file counts as no file: it is written, through a temp file, keeping its mode', async () => {
    const { registry, index } = registryWithIndex();
    const work = await mkdtemp(join(dir, 'empty-'));
    const path = join(work, 'out.tar');
    await writeFile(path, '', { mode: 0o600 });
    await chmod(path, 0o600);
    const written = await copy(registry.source('app', 'v1'), ociArchiveSink(path, { name: 'v1' }));
    assert.equal(written.noop, false);
    const opened = await open(path, { image: 'v1' });
    try {
      assert.equal((await opened.root()).descriptor.digest, index.digest);
    } finally {
      await opened.close();
    }
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(work), ['out.tar']);
  });

  it('a named pipe gets the archive streamed into it (docker-archive:/dev/stdout | docker load): the bytes a file gets, no staging left beside it', async () => {
    const { registry, amd64 } = registryWithIndex();
    const work = await mkdtemp(join(dir, 'fifo-'));
    const fifo = join(work, 'pipe');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    const reading = drain(fifo);
    const written = await copy(registry.source('app', 'v1'), dockerArchiveSink(fifo, { name: 'app:1' }), { platforms: parsePlatforms(['linux/amd64']) });
    assert.equal(written.digest, amd64.digest);
    const streamed = await reading;
    const file = join(dir, 'fifo-twin.tar');
    await copy(registry.source('app', 'v1'), dockerArchiveSink(file, { name: 'app:1' }), { platforms: parsePlatforms(['linux/amd64']) });
    assert.ok(streamed.length > 0);
    assert.equal(createHash('sha256').update(streamed).digest('hex'), await fileHash(file), 'the same archive as written to a file');
    assert.deepEqual(await readdir(work), ['pipe'], 'staged in the temp directory, not beside the pipe, and removed');
    assert.equal((await lstat(fifo)).isFIFO(), true, 'the pipe is still a pipe');
  });

  it('a pipe is never read back: a second copy writes the archive again rather than being a no-op', async () => {
    const { registry } = registryWithIndex();
    const work = await mkdtemp(join(dir, 'fifo-again-'));
    const fifo = join(work, 'pipe');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    for (let i = 0; i < 2; i++) {
      const reading = drain(fifo);
      assert.equal((await copy(registry.source('app', 'v1'), ociArchiveSink(fifo))).noop, false);
      assert.ok((await reading).length > 0);
    }
  });

  it('a FIFO nobody opens, or whose reader stops reading, does not hold a cancelled copy; its staging goes', async () => {
    const registry = new MemoryRegistry({ host: 'src.test' });
    // Bigger than what a pipe and the socket buffers take without a reader reading.
    const tar = randomBytes(2 * 1024 * 1024);
    const layer = registry.addBlob('big', tar, MediaType.OciLayer);
    const config = registry.addBlob('big', encode({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(tar)] }, config: {} }), MediaType.OciConfig);
    registry.addManifest('big', encode({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] }), MediaType.OciManifest, 'v1');
    const work = await mkdtemp(join(dir, 'fifo-stalled-'));
    const fifo = join(work, 'pipe');
    const staging = join(work, 'staging');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');

    const cancelled = async () => {
      const controller = new AbortController();
      // The abort may come while blobs are still being staged, before commit: close() removes them.
      const sink = ociArchiveSink(fifo, { tempDir: staging });
      // Once the root is stored the sink commits, opening the FIFO and writing: then the abort.
      const onProgress = (event: { type: string }) => {
        if (event.type === 'manifest-done') setTimeout(() => controller.abort(), 300);
      };
      const pending = copy(registry.source('big', 'v1'), sink, { signal: controller.signal, onProgress });
      try {
        return await errorOf(pending);
      } finally {
        await sink.close();
      }
    };
    assert.equal((await cancelled()).code, 'SLIPWAY_ABORTED', 'waiting for a reader');
    const reader = await openFile(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      assert.equal((await cancelled()).code, 'SLIPWAY_ABORTED', 'a reader that reads nothing');
    } finally {
      await reader.close();
    }
    assert.deepEqual(await readdir(staging), [], 'no staging directory left');
  });

  it('a stream that has already ended is refused up front (pipeline() into it would never settle)', () => {
    const ended = new PassThrough();
    ended.end();
    assert.throws(() => dockerArchiveSink('/dev/stdout', { stream: ended }), /the stream to write the archive into has already ended/);
    const destroyed = new PassThrough();
    destroyed.destroy();
    assert.throws(() => ociArchiveSink('/dev/stdout', { stream: destroyed }), /already ended/);
  });

  it('a directory is refused as an archive path', async () => {
    const { registry } = registryWithIndex();
    const work = await mkdtemp(join(dir, 'is-dir-'));
    await assert.rejects(copy(registry.source('app', 'v1'), ociArchiveSink(work)), /exists and is not a regular file, a pipe or a character device/);
    assert.deepEqual(await readdir(work), []);
  });

  it('names are checked before anything is written', () => {
    assert.throws(() => ociArchiveSink(join(dir, 'x.tar'), { name: 'not a ref name!' }), /invalid oci-archive name/);
    assert.throws(() => dockerArchiveSink(join(dir, 'x.tar'), { name: `app@sha256:${'a'.repeat(64)}` }), /has a digest/);
    assert.throws(() => dockerArchiveSink(join(dir, 'x.tar'), { name: 'team/UPPER' }), (err: unknown) => SlipwayError.is(err) && err.code === 'SLIPWAY_INVALID_REFERENCE');
  });
});
