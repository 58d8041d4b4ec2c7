/**
 * ImageSource over an image in a Docker Engine: the Engine API's export (`GET /images/get`, the
 * bytes of `docker save`) is spooled to a private temp file while it is indexed (one pass), then
 * read like any docker-save archive. `close()` removes the spool.
 *
 * The image is inspected first and exported **by image ID**, so the archive holds exactly the image
 * that was inspected even if its tag moves meanwhile, and a name without a tag never exports every
 * tag of a repository (what `docker save repo` does).
 * @module
 */
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError, SlipwayError, throwIfAborted } from '../errors.js';
import { connect, daemonMessage, defaultDockerHost, dockerHost, inspectImageId, send } from './engine-api.js';
import { indexTar } from '../internal/tar-index.js';
import { makeScratch, removeScratch } from '../internal/tar-scratch.js';
import { fromIndexedArchive, type TarballOptions, type TarballSource } from '../tarball/source.js';
import type { ImageSource } from '../v1/source.js';

export { defaultDockerHost };

export interface DaemonOptions extends Omit<TarballOptions, 'image'> {
  /**
   * Docker Engine address: `unix:///path/docker.sock` or `tcp://host:port` (TLS when
   * `DOCKER_TLS_VERIFY` is set, certificates from `DOCKER_CERT_PATH` or `~/.docker`).
   * @defaultValue `DOCKER_HOST`, else `unix:///var/run/docker.sock`
   */
  host?: string;
}

/**
 * Opens an image held by a Docker Engine (`busybox:1`, an image ID, `name@sha256:…`) as an ImageSource.
 * @throws SLIPWAY_NOT_FOUND when the daemon has no such image, SLIPWAY_NETWORK when it cannot be reached.
 */
export async function open(image: string, options: DaemonOptions = {}): Promise<TarballSource> {
  throwIfAborted(options.signal);
  if (image === '' || image.length > 1024 || /[\s\0?#]/.test(image)) throw new InvalidArgumentError(`invalid image name ${JSON.stringify(image)}`);
  const connection = await connect(dockerHost(options.host));
  const { client, shown } = connection;
  const name = label(image);
  let scratch: string | undefined;
  try {
    const id = await inspectImageId(connection, image, options.signal);
    if (id === undefined) throw new NotFoundError(`image ${JSON.stringify(image)} not found in the Docker daemon at ${shown}`);
    const exported = await send(connection, { method: 'GET', path: `/images/get?names=${encodeURIComponent(id)}`, ...(options.signal ? { signal: options.signal } : {}) });
    if (exported.statusCode === 404) {
      await exported.body.dump();
      throw new NotFoundError(`image ${JSON.stringify(image)} disappeared from the Docker daemon at ${shown} before it could be exported`);
    }
    if (exported.statusCode !== 200) {
      throw new SlipwayError('SLIPWAY_NETWORK', `Docker daemon at ${shown} answered ${exported.statusCode} to exporting ${JSON.stringify(image)}: ${await daemonMessage(exported.body)}`);
    }
    scratch = await makeScratch(options.tempDir);
    const file = join(scratch, 'export.tar');
    const index = await indexTar(exported.body, { archive: name, spoolTo: file, ...(options.signal ? { signal: options.signal } : {}) }).catch((err: unknown) => {
      // The export stream's own failure (the daemon killed, a proxy in front of it gone: undici's
      // "other side closed") said nothing of the daemon, and came out as an unexpected error.
      if (SlipwayError.is(err) || options.signal?.aborted) throw err;
      throw new SlipwayError('SLIPWAY_NETWORK', `the Docker daemon at ${shown} broke off exporting ${JSON.stringify(image)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    await client.close();
    const indexed = { archive: name, file, index, scratch, gzipped: false, streamed: true };
    scratch = undefined; // owned by the source from here on (its TarStore removes it on close)
    // The identity is left out on purpose: a spool is a fresh temp file every time (diff-ID keyed cache entries still apply).
    return await fromIndexedArchive(indexed, { ...options, image: 0 }, { label: name });
  } catch (err) {
    // destroy, not close: close waits for in-flight requests, and an export body nobody reads any
    // more never finishes.
    await connection.destroy();
    await removeScratch(scratch);
    throw err;
  }
}

export interface DaemonSourceOptions extends DaemonOptions {
  image: string;
}

/**
 * The same source as {@link open}, opened lazily: nothing is exported from the daemon until the
 * first `root()`, `manifest()` or `blob()` call (whose signal governs the export).
 */
export function createDaemonSource(options: DaemonSourceOptions): ImageSource {
  const { image, ...rest } = options;
  let opened: Promise<TarballSource> | undefined;
  let closed = false;
  const get = (signal?: AbortSignal): Promise<TarballSource> => {
    if (closed) return Promise.reject(new InvalidArgumentError(`${label(image)} is closed`));
    if (!opened) {
      const attempt = open(image, { ...rest, ...(signal ? { signal } : {}) });
      opened = attempt;
      attempt.catch(() => {
        if (opened === attempt) opened = undefined;
      });
    }
    return opened;
  };
  return {
    name: label(image),
    root: async (o) => (await get(o?.signal)).root(o),
    manifest: async (d, o) => (await get(o?.signal)).manifest(d, o),
    blob: async (d, o) => (await get(o?.signal)).blob(d, o),
    close: async () => {
      closed = true;
      const pending = opened;
      opened = undefined;
      if (pending) await (await pending.catch(() => undefined))?.close();
    },
  };
}

function label(image: string): string {
  return `docker-daemon:${image}`;
}
