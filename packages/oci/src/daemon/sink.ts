/**
 * ImageSink loading one image into a Docker Engine (`docker-daemon:NAME[:TAG]`), as `docker load`
 * does: the image is staged like a docker archive (tarball/sink.ts) and, once complete, streamed to
 * `POST /images/load`, so the daemon never sees a partial image and the name moves only when the
 * load succeeded.
 *
 * The Engine keeps no manifests (with its classic store): an image is known by its ID, the digest
 * of its config, so `current()` reports that and the copy engine compares configs (`identity`); with
 * the containerd image store (Docker 25+, opt-in) the ID is the manifest's digest, which the engine
 * takes as the same image too. The name is inspected again after the load: it must now hold what
 * was sent.
 * @module
 */
import { PassThrough } from 'node:stream';
import { DestinationExistsError } from '../copy/copy.js';
import { InvalidArgumentError, SlipwayError, throwIfAborted } from '../errors.js';
import { readCapped } from '../internal/read.js';
import { familiarString, parseReference } from '../name/reference.js';
import { packArchive, StagedArchive, StagingSink } from '../tarball/sink.js';
import { sha256, type Digest } from '../v1/digest.js';
import type { Descriptor } from '../v1/manifest.js';
import { MediaType } from '../v1/media-types.js';
import type { Platform } from '../v1/platform.js';
import type { CallOptions } from '../v1/source.js';
import { connect, daemonMessage, dockerHost, enginePlatform, inspectImageId, send, tagImage, type EngineConnection } from './engine-api.js';

export interface DaemonSinkOptions {
  /** Replace what the name holds even if another writer loaded it during the copy. @defaultValue false */
  overwrite?: boolean;
  /** Docker Engine address, as for the daemon source. @defaultValue `DOCKER_HOST`, else `unix:///var/run/docker.sock` */
  host?: string;
  /** Where the image is staged before the load. @defaultValue the OS temp dir */
  tempDir?: string;
}

/** The most of a load's progress stream kept (it is a few lines of JSON). */
const maxLoadAnswerBytes = 1024 * 1024;

export class DaemonSink extends StagingSink {
  readonly name: string;
  readonly singleImage = true;
  readonly identity = 'config' as const;
  readonly #image: string;
  readonly #host: string;
  protected readonly staged: StagedArchive;
  readonly #overwrite: boolean;

  constructor(image: string, options: DaemonSinkOptions = {}) {
    super();
    this.#overwrite = options.overwrite ?? false;
    const reference = parseReference(image);
    if (reference.digest !== undefined) throw new InvalidArgumentError(`docker-daemon destination "${image}" has a digest; want name[:tag] (the daemon tags the loaded image with it)`);
    // The name as docker shows it (`app:1`, `registry.corp/team/app:latest`).
    this.#image = familiarString(reference);
    this.name = `docker-daemon:${this.#image}`;
    this.#host = dockerHost(options.host);
    const { tempDir } = options;
    this.staged = new StagedArchive('docker-archive', this.#image, () => Promise.resolve(tempDir));
  }

  /** The image ID (config digest) the name points at in the daemon, if any. */
  async current(options: CallOptions = {}): Promise<Descriptor | undefined> {
    throwIfAborted(options.signal);
    const id = await this.#inspect(options.signal);
    return id === undefined ? undefined : { mediaType: MediaType.DockerConfig, digest: id, size: 0 };
  }

  /** The daemon's own platform: what it takes from an index when none is selected, as `docker pull` does. */
  async platform(options: CallOptions = {}): Promise<Platform> {
    throwIfAborted(options.signal);
    return this.#ask((connection) => enginePlatform(connection, options.signal));
  }

  #inspect(signal: AbortSignal | undefined): Promise<Digest | undefined> {
    return this.#ask((connection) => inspectImageId(connection, this.#image, signal));
  }

  /** One question to the daemon on a connection of its own, closed after the answer. */
  async #ask<T>(question: (connection: EngineConnection) => Promise<T>): Promise<T> {
    const connection = await connect(this.#host);
    try {
      return await question(connection);
    } finally {
      await connection.destroy();
    }
  }

  /** Streams the staged image to `POST /images/load`, then checks the name holds its config. */
  async commit(root: Descriptor, options: CallOptions = {}): Promise<void> {
    const { signal } = options;
    throwIfAborted(signal);
    const { entries, config } = await this.staged.entries(root);
    if (config === undefined) throw new InvalidArgumentError(`${this.name} holds one image, not an index`);
    // The classic store's image ID is the sha256 of the config (whatever digest names it); the
    // containerd store's, the manifest's digest.
    const id = config.digest.startsWith('sha256:') ? config.digest : sha256(await this.staged.blob(config));
    const ours = (held: Digest | undefined) => held === id || held === root.digest;
    if (!this.#overwrite) {
      // Loaded by someone else since the copy began: refused, not replaced (no CAS here either).
      const held = await this.#inspect(signal);
      if (held !== undefined && !ours(held)) throw new DestinationExistsError(this.name, held, id, 'image ID');
    }

    const connection = await connect(this.#host);
    const { shown } = connection;
    const body = new PassThrough({ highWaterMark: 4 * 1024 * 1024 });
    // Cancelling stops the upload while the archive is still being sent (the daemon then loads
    // nothing); once all of it is sent the load is the daemon's, and waiting for its answer is the
    // only way to report truly whether the name moved.
    const cancel = new AbortController();
    const onAbort = (): void => cancel.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const packing = packArchive(entries, body, cancel.signal).finally(() => signal?.removeEventListener('abort', onAbort));
    // Awaited below, or in the catch; until then a cancelled pack must not be an unhandled rejection.
    packing.catch(() => undefined);
    let displaced: Digest | undefined;
    try {
      const answer = await send(connection, { method: 'POST', path: '/images/load?quiet=1', headers: { 'content-type': 'application/x-tar' }, body, signal: cancel.signal });
      if (answer.statusCode !== 200) {
        throw new SlipwayError('SLIPWAY_NETWORK', `Docker daemon at ${shown} answered ${answer.statusCode} to loading ${this.name}: ${await daemonMessage(answer.body)}`);
      }
      // A 200 says the upload was taken; a refused archive shows as an error line in the stream.
      const text = (await readCapped(answer.body, maxLoadAnswerBytes, true)).toString('utf8');
      await packing;
      const refusal = loadError(text);
      if (refusal !== undefined) throw new SlipwayError('SLIPWAY_INVALID_ARCHIVE', `Docker daemon at ${shown} refused to load ${this.name}: ${refusal}`);
      displaced = displacedImage(text);
    } catch (err) {
      body.destroy();
      await packing.catch(() => undefined);
      throw err;
    } finally {
      await connection.destroy();
      await this.staged.close();
    }
    if (displaced !== undefined && !ours(displaced) && !this.#overwrite) {
      // Another image took the name between the check above and the load (two copies into one name
      // at once: the Engine has no compare-and-swap, and `docker load` replaces in silence). The
      // name goes back to the image it held; ours stays in the daemon, untagged. Asked without the
      // signal, as the load already happened.
      await this.#ask((connection) => tagImage(connection, displaced, this.#image, undefined));
      throw new DestinationExistsError(this.name, displaced, id, 'image ID');
    }
    // Asked without the signal: the load happened, and what the name holds now is the answer to give.
    const now = await this.#inspect(undefined);
    if (!ours(now)) {
      if (now !== undefined && !this.#overwrite) throw new DestinationExistsError(this.name, now, id, 'image ID');
      throw new SlipwayError('SLIPWAY_NETWORK', `Docker daemon at ${shown} loaded ${this.name}, but the name holds ${now ?? 'nothing'}, not ${id}`);
    }
  }
}

/**
 * The image a load took the name from: the Engine says "The image NAME already exists, renaming the
 * old one with ID sha256:… to empty string" (image/tarexport/load.go) and moves the name.
 */
function displacedImage(text: string): Digest | undefined {
  for (const line of text.split('\n')) {
    let parsed: { stream?: unknown };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      continue;
    }
    const id = typeof parsed.stream === 'string' ? /renaming the old one with ID (sha256:[a-f0-9]{64})/.exec(parsed.stream)?.[1] : undefined;
    if (id !== undefined) return id as Digest;
  }
  return undefined;
}

/** The first error a `docker load` progress stream reports (JSON lines: `{"error": …, "errorDetail": …}`). */
function loadError(text: string): string | undefined {
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let parsed: { error?: unknown; errorDetail?: { message?: unknown } };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      continue;
    }
    const message = parsed.errorDetail?.message ?? parsed.error;
    if (typeof message === 'string') return message.slice(0, 500);
    if (message !== undefined) return JSON.stringify(message).slice(0, 500);
  }
  return undefined;
}

/** An ImageSink loading into the Docker Engine under `image` (`app:1`). Call `close()` after the copy whatever its outcome (it removes the staged image). */
export function sink(image: string, options: DaemonSinkOptions = {}): DaemonSink {
  return new DaemonSink(image, options);
}
