/**
 * `copyImage` and `pushArchive`: any source string to a registry destination.
 * @module
 */
import { stat } from 'node:fs/promises';
import { copy, InvalidArgumentError, name, NotFoundError, parsePlatforms } from '@slipway/oci';
import { createClient, type AccessOptions } from './access.js';
import { resolveSource } from './resolve.js';

export interface CopyImageOptions extends AccessOptions {
  /** Anything resolveSource accepts: reference, archive, layout, daemon image, skopeo-style prefix. */
  source: string;
  /** `registry/repository[:tag]` (tag defaults to `latest`; `docker://` tolerated). */
  destination: string;
  /** `linux/arm64`, or several (a list or comma-separated). Empty: all platforms. See copy.CopyOptions. */
  platforms?: string | readonly string[];
  /** Replace a different image at the destination tag. @defaultValue false */
  overwrite?: boolean;
  /** Parallel transfers. @defaultValue 4 */
  jobs?: number | undefined;
  /** Which image of a multi-image archive or layout. */
  image?: string;
  onProgress?: (event: copy.CopyEvent) => void;
}

export interface CopyImageResult extends copy.CopyResult {
  /** The source as resolved (never contains credentials). */
  source: string;
  /** The destination, normalised: `registry/repository:tag`. */
  destination: string;
  /** The destination pinned to what it now holds: `registry/repository:tag@digest`. */
  reference: string;
}

/** Copies a source to a registry; see copy.copy for platform, no-op and overwrite semantics. */
export async function copyImage(options: CopyImageOptions): Promise<CopyImageResult> {
  const destination = parseDestination(options.destination);
  const platforms = parsePlatforms(options.platforms ?? []);
  const client = createClient(options);
  try {
    const resolved = await resolveSource(options.source, { ...options, client });
    try {
      const sink = client.sink(destination);
      const result = await copy.copy(resolved.source, sink, {
        platforms,
        overwrite: options.overwrite ?? false,
        ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return { ...result, source: resolved.source.name, destination: destination.toString(), reference: `${destination.toString()}@${result.digest}` };
    } finally {
      await resolved.close();
    }
  } finally {
    await client.close();
  }
}

export interface PushArchiveOptions extends Omit<CopyImageOptions, 'source'> {
  /** A docker save tar (gzip allowed), an OCI layout directory or tar, or a prefixed `oci:`/`oci-archive:`/`docker-archive:` path. */
  archive: string;
}

/** Pushes a local archive or layout; like copyImage, but refuses anything that is not a local file. */
export async function pushArchive(options: PushArchiveOptions): Promise<CopyImageResult> {
  const { archive, ...rest } = options;
  if (/^(docker|docker-daemon):/.test(archive.trim())) {
    throw new InvalidArgumentError(`push takes a local archive or OCI layout, not "${archive}"; use copy for registry and daemon sources`);
  }
  if (!/^(oci|oci-archive|docker-archive):/.test(archive.trim())) {
    if (!(await stat(archive).catch(() => undefined))) throw new NotFoundError(`archive "${archive}": no such file or directory`);
  }
  return copyImage({ ...rest, source: archive });
}

function parseDestination(text: string): name.Reference {
  const reference = name.parseReference(text.trim().replace(/^docker:\/\//, ''));
  if (reference.digest !== undefined) {
    throw new InvalidArgumentError(`destination "${text}" names a digest; want registry/repository[:tag] (the digest is the copy's result)`, {
      code: 'SLIPWAY_INVALID_REFERENCE',
    });
  }
  return reference;
}
