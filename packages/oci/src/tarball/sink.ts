/**
 * ImageSinks that write one image as a single file: an OCI layout tar (`oci-archive:`) or a
 * `docker save` archive (`docker-archive:`), what skopeo, `crane pull` and `regctl image export`
 * write for moving an image where no registry reaches (an air-gapped site, a CI artifact).
 *
 * Blobs are staged in an OCI layout in a scratch directory beside the target (the same file system;
 * removed on close, and by a front end's exit hook if the process dies). The archive is packed when
 * the copy engine commits, after the root and everything under it are stored, into a temp file
 * renamed over the target: the path never holds a partial archive, and a failed or aborted copy
 * leaves whatever was there before.
 *
 * The docker archive is the hybrid Docker 25+ `docker save` writes: an OCI layout (so the manifest
 * keeps its digest, and `oci-archive:` readers take it too) plus a `manifest.json` naming the same
 * blob files. `docker load` reads it, 20.10 included, since it decompresses each layer file itself
 * and checks the result against the config's diff IDs. Layers stay as the source compressed them.
 *
 * Archives are reproducible: entries in a fixed order with zero owners and times, so the same image
 * makes the same bytes.
 * @module
 */
import { close as closeCallback, createReadStream, createWriteStream } from 'node:fs';
import { lstat, open as openFile, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isatty } from 'node:tty';
import { promisify } from 'node:util';
import { pack } from 'tar-stream';
import { AbortedError, InvalidArgumentError, isErrnoError, SlipwayError, throwIfAborted } from '../errors.js';
import { openDescriptor, openFifoForWriting } from '../internal/fifo.js';
import { isStreamFile } from '../internal/tar-archive.js';
import { makeDirectories, makeScratch, makeStaging, removeScratch, writeThroughTemp } from '../internal/tar-scratch.js';
import { isRefName, layoutMarker, LayoutSink } from '../layout/sink.js';
import { blobPath, imageNameAnnotation, refNameAnnotation } from '../layout/source.js';
import { familiarString, parseReference } from '../name/reference.js';
import { blobDescriptors, isForeignLayer, parseManifest, type Descriptor } from '../v1/manifest.js';
import { MediaType } from '../v1/media-types.js';
import type { CallOptions, ImageSink, ImageSource, ManifestBytes, PutBlobOptions } from '../v1/source.js';
import { list, open as openArchive } from './source.js';

export type ArchiveSinkFormat = 'oci-archive' | 'docker-archive';

export interface ArchiveSinkOptions {
  /**
   * `oci-archive`: the ref name stored in `index.json` (`latest`, `app:1`). `docker-archive`: the
   * image name `docker load` tags (`app:1`, `registry.corp:5000/team/app`; the tag defaults to
   * `latest`). Optional: without it the image is stored unnamed.
   */
  name?: string;
  /**
   * Replace an existing file that does not hold this image under `name`; the whole file is
   * replaced, other images in it too (as skopeo's `oci-archive:` does). @defaultValue false
   */
  overwrite?: boolean;
  /** Where the staging directory goes. @defaultValue the target's directory (same file system, so the final rename is atomic); with `stream`, the OS temp directory */
  tempDir?: string;
  /**
   * Write the archive into this stream (ended once the archive is in it) instead of opening `path`,
   * which then only names it (`/dev/stdout`): a Node process's stdout may be a socket, which no path
   * opens. A stream is never read back: the copy is never a no-op.
   */
  stream?: Writable;
}

/** What a docker archive's `manifest.json` says about its one image. */
interface DockerSaveEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/** An entry of the packed archive: small ones in memory, blobs from the staging directory. */
type PackEntry = { name: string; bytes: Uint8Array } | { name: string; file: string; size: number };

/**
 * The image-spec ref name and the containerd image name for `name`, and the `RepoTags` entry: a
 * docker archive's name is a reference (`app` means `docker.io/library/app:latest`), an OCI archive's
 * a free-form ref name.
 */
function naming(format: ArchiveSinkFormat, name: string | undefined): { annotations: Record<string, string>; repoTags: string[] } {
  if (name === undefined) return { annotations: {}, repoTags: [] };
  if (format === 'oci-archive') return { annotations: { [refNameAnnotation]: name }, repoTags: [] };
  const reference = parseReference(name);
  if (reference.digest !== undefined) throw new InvalidArgumentError(`docker-archive name "${name}" has a digest; want name[:tag] (docker load tags the image with it)`);
  return {
    annotations: { [imageNameAnnotation]: reference.toString(), [refNameAnnotation]: reference.tag ?? 'latest' },
    repoTags: [familiarString(reference)],
  };
}

/** Writes `entries` as a tar to `out`, in order, with fixed metadata (see the module comment). */
export async function packArchive(entries: readonly PackEntry[], out: Writable, signal?: AbortSignal): Promise<void> {
  const packer = pack();
  const writing = pipeline(packer, out, signal ? { signal } : {});
  // Awaited at the end or in the catch; a failure meanwhile must not be an unhandled rejection.
  writing.catch(() => undefined);
  try {
    for (const entry of entries) {
      throwIfAborted(signal);
      const header = { name: entry.name, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0), type: 'file' as const };
      if ('bytes' in entry) {
        await new Promise<void>((done, fail) => packer.entry({ ...header, size: entry.bytes.length }, Buffer.from(entry.bytes), (err) => (err ? fail(err) : done())));
      } else {
        const body = packer.entry({ ...header, size: entry.size });
        await pipeline(createReadStream(entry.file), body as unknown as NodeJS.WritableStream, signal ? { signal } : {});
      }
    }
    packer.finalize();
  } catch (err) {
    packer.destroy(err as Error);
    await writing.catch(() => undefined);
    throw signal?.aborted ? new AbortedError('operation aborted', { cause: signal.reason }) : err;
  }
  await writing;
}

/**
 * A single-image archive being assembled: blobs staged in a layout directory, listed for
 * {@link packArchive} by {@link StagedArchive.entries}. Shared by the file sinks here and the Docker
 * daemon's `docker load`.
 */
export class StagedArchive {
  readonly #format: ArchiveSinkFormat;
  readonly #naming: { annotations: Record<string, string>; repoTags: string[] };
  readonly #scratchBase: () => Promise<string | undefined>;
  #scratch: Promise<string> | undefined;
  #layout: Promise<LayoutSink> | undefined;

  /** `scratchBase`: where the staging directory goes (undefined: the OS temp directory), asked on first use. */
  constructor(format: ArchiveSinkFormat, name: string | undefined, scratchBase: () => Promise<string | undefined>) {
    if (format === 'oci-archive' && name !== undefined && !isRefName(name)) {
      throw new InvalidArgumentError(`invalid oci-archive name ${JSON.stringify(name)}: want an image-spec ref name such as "latest" or "app:1.2"`);
    }
    this.#format = format;
    this.#naming = naming(format, name);
    this.#scratchBase = scratchBase;
  }

  /** The staging layout, made on first use: a copy that turns out to be a no-op never touches the disk. */
  layout(): Promise<LayoutSink> {
    // The target's directory is created as `oci:DIR` creates its directory.
    this.#scratch ??= (async () => {
      const base = await this.#scratchBase();
      if (base === undefined) return makeScratch();
      await makeDirectories(base);
      return makeStaging(base, "the destination's directory");
    })();
    this.#layout ??= this.#scratch.then((dir) => new LayoutSink(join(dir, 'layout')));
    return this.#layout;
  }

  /**
   * The archive's entries for `root`, which must be stored with all it references, and the root's
   * config when it is an image manifest.
   */
  async entries(root: Descriptor): Promise<{ entries: PackEntry[]; config?: Descriptor }> {
    const dir = await this.#staging(root);
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [{ mediaType: root.mediaType, digest: root.digest, size: root.size, ...(Object.keys(this.#naming.annotations).length > 0 ? { annotations: this.#naming.annotations } : {}) }],
    };
    const entries: PackEntry[] = [
      { name: 'oci-layout', bytes: Buffer.from(layoutMarker) },
      { name: 'index.json', bytes: Buffer.from(JSON.stringify(index)) },
    ];
    const parsed = parseManifest(await readBlob(dir, root), root.mediaType);
    if (this.#format === 'docker-archive') {
      if (parsed.kind !== 'image') throw new InvalidArgumentError(`a docker archive holds one image, not an index (${root.digest})`);
      const item: DockerSaveEntry = {
        Config: blobPath(parsed.manifest.config),
        RepoTags: this.#naming.repoTags,
        Layers: parsed.manifest.layers.map((layer) => blobPath(layer)),
      };
      entries.push({ name: 'manifest.json', bytes: Buffer.from(JSON.stringify([item])) });
    }
    // Every staged blob, in name order: the staging layout holds this image and nothing else.
    for (const algorithm of (await readdir(join(dir, 'blobs'))).sort()) {
      for (const hex of (await readdir(join(dir, 'blobs', algorithm))).sort()) {
        if (hex.startsWith('.tmp-')) continue; // a blob being written (writeThroughTemp)
        const file = join(dir, 'blobs', algorithm, hex);
        entries.push({ name: `blobs/${algorithm}/${hex}`, file, size: (await stat(file)).size });
      }
    }
    return parsed.kind === 'image' ? { entries, config: parsed.manifest.config } : { entries };
  }

  /** The bytes of a staged blob (a config: small). */
  async blob(descriptor: Descriptor): Promise<Buffer> {
    return readBlob(await this.#staging(descriptor), descriptor);
  }

  /** The staging layout's directory, which must hold `what`. */
  async #staging(what: Descriptor): Promise<string> {
    if (this.#scratch === undefined) throw new InvalidArgumentError(`nothing staged for ${what.digest}`);
    return join(await this.#scratch, 'layout');
  }

  async close(): Promise<void> {
    const scratch = this.#scratch;
    this.#scratch = undefined;
    this.#layout = undefined;
    if (scratch) await removeScratch(await scratch.catch(() => undefined));
  }
}

/** Throws unless every manifest and blob under `root` is in `source` at its size (foreign layers aside). */
async function checkComplete(source: ImageSource, root: ManifestBytes, options: CallOptions): Promise<void> {
  const parsed = parseManifest(root.bytes, root.descriptor.mediaType);
  if (parsed.kind === 'index') {
    for (const child of parsed.manifest.manifests) await checkComplete(source, await source.manifest(child, options), options);
    return;
  }
  for (const blob of blobDescriptors(parsed.manifest)) {
    if (isForeignLayer(blob)) continue;
    (await source.blob(blob, options)).destroy();
  }
}

async function readBlob(dir: string, descriptor: Descriptor): Promise<Buffer> {
  const handle = await openFile(join(dir, blobPath(descriptor)), 'r');
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/**
 * The blob and manifest calls of a sink that stages the image before writing it whole at commit
 * (an archive file, a `docker load`): they go to the staging layout.
 */
export abstract class StagingSink implements ImageSink {
  abstract readonly name: string;
  protected abstract readonly staged: StagedArchive;
  abstract current(options?: CallOptions): Promise<Descriptor | undefined>;
  abstract commit(root: Descriptor, options?: CallOptions): Promise<void>;

  async hasBlob(descriptor: Descriptor, options?: CallOptions): Promise<boolean> {
    return (await this.staged.layout()).hasBlob(descriptor, options);
  }

  async putBlob(descriptor: Descriptor, open: () => Promise<Readable>, options?: PutBlobOptions): Promise<void> {
    return (await this.staged.layout()).putBlob(descriptor, open, options);
  }

  async hasManifest(descriptor: Descriptor, options?: CallOptions): Promise<boolean> {
    return (await this.staged.layout()).hasManifest(descriptor, options);
  }

  /** Staged by digest; a name is written when the image is (index.json, manifest.json, the daemon's tag). */
  async putManifest(manifest: ManifestBytes, options: CallOptions & { tag?: string } = {}): Promise<void> {
    return (await this.staged.layout()).putManifest(manifest, options.signal ? { signal: options.signal } : {});
  }

  async close(): Promise<void> {
    await this.staged.close();
  }
}

/**
 * The file writing `path` means: the file a symlink names, a dangling one included, as `cp` and a
 * shell's `>` write through it. Replacing a dangling link by a file dropped a link the user made
 * (one to a bigger disk); skopeo refuses. A link whose target's directory does not exist is refused.
 */
async function writeTarget(path: string, hops = 0): Promise<string> {
  const resolved = await realpath(path).catch(() => undefined);
  if (resolved !== undefined) return resolved;
  const link = await lstat(path).catch(() => undefined);
  if (!link?.isSymbolicLink()) return path;
  // Linux's own bound on a chain of links (SYMLOOP_MAX); a loop of dangling links is no target.
  if (hops >= 40) throw new SlipwayError('SLIPWAY_IO', `${JSON.stringify(path)}: too many levels of symbolic links`);
  const target = resolve(dirname(path), await readlink(path));
  const directory = await realpath(dirname(target)).catch(() => undefined);
  if (directory === undefined) {
    throw new SlipwayError('SLIPWAY_IO', `${JSON.stringify(path)} is a symbolic link to ${JSON.stringify(target)}, whose directory does not exist`);
  }
  return writeTarget(join(directory, basename(target)), hops + 1);
}

/** An ImageSink writing `path` as an `oci-archive` or `docker-archive` holding one image; see the module comment. */
export class ArchiveSink extends StagingSink {
  readonly name: string;
  readonly singleImage: boolean;
  readonly #path: string;
  readonly #archiveName: string | undefined;
  readonly #overwrite: boolean;
  readonly #stream: Writable | undefined;
  readonly #tempDir: string | undefined;
  protected readonly staged: StagedArchive;

  constructor(path: string, format: ArchiveSinkFormat, options: ArchiveSinkOptions = {}) {
    super();
    if (path === '') throw new InvalidArgumentError(`${format}: empty path`);
    if (options.stream) refuseEnded(options.stream, `${format}:${path}`);
    this.#path = resolve(path);
    this.#archiveName = options.name;
    this.#overwrite = options.overwrite ?? false;
    this.#stream = options.stream;
    this.#tempDir = options.tempDir;
    this.staged = new StagedArchive(format, options.name, () => this.#stagingBase());
    this.singleImage = format === 'docker-archive';
    this.name = `${format}:${path}${options.name === undefined ? '' : `:${options.name}`}`;
  }

  /**
   * What the file holds under the name (or, unnamed, as its only image): a descriptor when slipway
   * can read it as an OCI layout (its own archives, Docker 25+ saves, skopeo's and crane's), so that
   * the same image again is a no-op and another one is refused unless `overwrite`. A file it cannot
   * read that way is refused outright unless `overwrite`: what it holds cannot be compared.
   */
  async current(options: CallOptions = {}): Promise<Descriptor | undefined> {
    const held = await this.#held(options);
    if (held.state === 'absent' || held.state === 'stream') return undefined;
    if (held.state === 'image') return held.descriptor;
    if (this.#overwrite) return undefined;
    throw new SlipwayError('SLIPWAY_DESTINATION_EXISTS', `${this.name}: "${this.#path}" exists (${held.why}); pass overwrite (slipway: --overwrite) to replace the whole file`);
  }

  async #held(options: CallOptions): Promise<{ state: 'absent' } | { state: 'stream' } | { state: 'image'; descriptor: Descriptor } | { state: 'unreadable'; why: string }> {
    throwIfAborted(options.signal);
    if (this.#stream) return { state: 'stream' };
    const info = await stat(this.#path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    // An empty file holds nothing to lose: what `> out.tar` left, or `docker-archive:/dev/stdout`
    // redirected to a file (skopeo takes an empty file too).
    if (info === undefined || (info.isFile() && info.size === 0)) return { state: 'absent' };
    if (isStreamFile(info)) return { state: 'stream' };
    if (!info.isFile()) throw new InvalidArgumentError(`${this.name}: "${this.#path}" exists and is not a regular file, a pipe or a character device`);
    try {
      const call = options.signal ? { signal: options.signal } : {};
      // `docker load` reads manifest.json only: an OCI archive without one does not hold the image for it.
      if (this.singleImage && (await list(this.#path, call)).some((image) => image.digest !== undefined)) {
        return { state: 'unreadable', why: 'an OCI archive without the manifest.json docker load reads' };
      }
      const existing = await openArchive(this.#path, { ...(this.#archiveName === undefined ? {} : { image: this.#archiveName }), cacheDir: false, ...call });
      try {
        // A docker save without an OCI half would have to be compressed to learn its digest.
        if (existing.format !== 'oci-layout') return { state: 'unreadable', why: 'a docker save archive without an OCI layout in it' };
        const root = await existing.root(options);
        // Every blob present at its size: an archive missing one is no copy of the image.
        await checkComplete(existing, root, call);
        return { state: 'image', descriptor: root.descriptor };
      } finally {
        await existing.close();
      }
    } catch (err) {
      if (options.signal?.aborted || !SlipwayError.is(err)) throw err;
      return { state: 'unreadable', why: err.message };
    }
  }

  /**
   * The staging directory's parent: the tempDir option; else beside the file the path names (a
   * symlink followed), so that the final rename stays on one file system; the OS temp directory for
   * a pipe or device (`/dev` is no place for it).
   */
  async #stagingBase(): Promise<string | undefined> {
    if (this.#tempDir !== undefined) return this.#tempDir;
    if (this.#stream) return undefined;
    const info = await stat(this.#path).catch(() => undefined);
    if (info && isStreamFile(info)) return undefined;
    return dirname(await writeTarget(this.#path));
  }

  /**
   * Packs the staged image into a temp file beside the target and renames it into place; into a pipe
   * or character device (`/dev/stdout | docker load`), straight into it: a failure then cuts the stream
   * short, which its reader sees as a truncated tar.
   */
  async commit(root: Descriptor, options: CallOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const { entries } = await this.staged.entries(root);
    const info = this.#stream ? undefined : await stat(this.#path).catch(() => undefined);
    if (this.#stream || (info && isStreamFile(info))) {
      try {
        if (this.#stream) refuseEnded(this.#stream, this.name); // it may have ended since the constructor
        await packArchive(entries, this.#stream ?? (await openStreamTarget(this.#path, info?.isFIFO() === true, this.name, options.signal)), options.signal);
      } catch (err) {
        // A stream's own failure (destroyed under us, a consumer's error) as a SlipwayError; errno
        // errors (EPIPE, ENOSPC) are told apart by the engine, which names the destination.
        if (SlipwayError.is(err) || options.signal?.aborted || isErrnoError(err)) throw err;
        throw new SlipwayError('SLIPWAY_IO', `${this.name}: writing the archive failed: ${(err as Error).message}`, { cause: err });
      } finally {
        await this.staged.close();
      }
      return;
    }
    // Through a symlink to the file it names, the link staying a link (a dangling one too: see
    // writeTarget), keeping a replaced file's mode (a 0600 archive must not come back
    // world-readable); a new file gets 0644 less the umask, as any file written.
    const target = await writeTarget(this.#path);
    const replaced = await stat(target).catch(() => undefined);
    const mode = replaced === undefined ? undefined : replaced.mode & 0o777;
    try {
      await writeThroughTemp(target, (file) => packArchive(entries, file, options.signal), {
        ...(mode === undefined ? {} : { mode }),
        beforeRename: async () => {
          if (this.#overwrite) return;
          // Written by someone else since the copy began: refused, not replaced.
          const now = await this.#held(options);
          if (now.state === 'unreadable' || (now.state === 'image' && now.descriptor.digest !== root.digest)) {
            throw new SlipwayError('SLIPWAY_DESTINATION_EXISTS', `${this.name}: "${this.#path}" was written by someone else during the copy; pass overwrite (slipway: --overwrite) to replace it`);
          }
        },
      });
    } finally {
      // The staged copy is spent either way: not left for close() (a library caller may never call it).
      await this.staged.close();
    }
  }
}

/** pipeline() into a stream already finished neither resolves nor rejects: the copy would hang. */
function refuseEnded(stream: Writable, name: string): void {
  if (stream.writableEnded || stream.destroyed) throw new InvalidArgumentError(`${name}: the stream to write the archive into has already ended`);
}

/**
 * Opens a pipe or character device to write an archive into, as given (/dev/stdout on a pipe
 * resolves to no path): a FIFO as a pipe handle once a reader comes (see internal/fifo.ts; skopeo
 * waits in open(2), where Ctrl-C cannot reach it), a device as a file. A terminal is refused.
 */
async function openStreamTarget(path: string, fifo: boolean, name: string, signal: AbortSignal | undefined): Promise<Writable> {
  if (fifo) return openFifoForWriting(path, signal);
  const fd = await openDescriptor(path, 'w');
  if (isatty(fd)) {
    await promisify(closeCallback)(fd);
    throw new InvalidArgumentError(`${name}: "${path}" is a terminal: redirect it to a file or pipe it (| docker load)`);
  }
  return createWriteStream(path, { fd });
}

/**
 * An ImageSink writing the OCI layout tar `path` (`oci-archive:PATH[:NAME]`). Call `close()` after the
 * copy whatever its outcome: a failed one leaves its staging directory beside `path` until then.
 */
export function ociArchiveSink(path: string, options: ArchiveSinkOptions = {}): ArchiveSink {
  return new ArchiveSink(path, 'oci-archive', options);
}

/** An ImageSink writing the docker save archive `path` (`docker-archive:PATH[:NAME]`), one image; `close()` it as {@link ociArchiveSink}'s. */
export function dockerArchiveSink(path: string, options: ArchiveSinkOptions = {}): ArchiveSink {
  return new ArchiveSink(path, 'docker-archive', options);
}
