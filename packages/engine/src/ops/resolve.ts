/**
 * `resolveSource`: a source string to an open ImageSource.
 * @module
 */
import type { remote } from '@slipway/oci';
import { daemon, InvalidArgumentError, layout, tarball, type ImageSource } from '@slipway/oci';
import type { Readable } from 'node:stream';
import { createClient, type AccessOptions } from './access.js';
import { parseSourceSpec, type SourceSpec } from './source-spec.js';

export interface ResolveSourceOptions extends AccessOptions {
  /** Reuse this client for a registry source (the op then owns closing it). */
  client?: remote.RegistryClient;
  /** Which image of a multi-image archive or layout; naming another one in the text too (`docker-archive:x.tar:app:1`) is an error. */
  image?: string;
  /** Passed to tarball.open for docker save archives: the layer cache, a tee for compressed layers. */
  archive?: Pick<tarball.TarballOptions, 'cacheDir' | 'onCompressedStream'>;
  /**
   * Read an archive source (a path, `docker-archive:`, `oci-archive:`) from this stream, once, rather
   * than opening its path, which then only names it (`/dev/stdin`).
   */
  sourceStream?: Readable;
}

export interface ResolvedSource {
  spec: SourceSpec;
  source: ImageSource;
  /** Closes the source, and the client when this call created it. Idempotent. */
  close(): Promise<void>;
}

/**
 * Why the digest read differs from the one the source text pinned, when it does: a Docker Engine
 * keeps an image's layers uncompressed and exports no registry manifest, so `docker-daemon:NAME@D`
 * finds the image D was pulled as but reads it recompressed, with a digest of its own (skopeo does
 * the same without a word). Empty for every other source, which either serves D or fails.
 */
export function pinnedDigestWarnings(spec: SourceSpec, rootDigest: string): string[] {
  if (spec.kind !== 'docker-daemon') return [];
  const pinned = /@([a-z0-9]+:[a-f0-9]{32,})$/.exec(spec.image)?.[1];
  if (pinned === undefined || pinned === rootDigest) return [];
  return [
    `docker-daemon:${spec.image} reads as ${rootDigest}, not ${pinned}: the Docker Engine keeps the image's layers uncompressed and exports no registry manifest, so its digest cannot be reproduced; copy from the registry that holds ${pinned} to keep it`,
  ];
}

/**
 * Opens what `text` names: a registry reference, a docker save tar (gzip allowed), an OCI layout
 * directory or tar, or the skopeo spellings `docker://REF`, `docker-daemon:IMAGE`, `oci:PATH[:REF]`,
 * `oci-archive:PATH[:REF]`, `docker-archive:PATH[:IMAGE|:@N]`. An existing path wins over a reference.
 */
export async function resolveSource(text: string, options: ResolveSourceOptions = {}): Promise<ResolvedSource> {
  const spec = await parseSourceSpec(text);
  const signal = options.signal;
  let owned: remote.RegistryClient | undefined;
  let source: ImageSource;
  if (options.image !== undefined && (spec.kind === 'registry' || spec.kind === 'docker-daemon')) {
    // It picks one image of a multi-image archive or layout; here it would be ignored without a word.
    throw new InvalidArgumentError(`the image option (${JSON.stringify(options.image)}) picks an image of an archive or OCI layout, and "${text}" is a ${spec.kind === 'registry' ? 'registry reference' : 'Docker daemon image'}: name the image in the reference instead`);
  }
  const stream = options.sourceStream;
  if (stream !== undefined && spec.kind !== 'archive' && spec.kind !== 'docker-archive' && spec.kind !== 'oci-archive') {
    throw new InvalidArgumentError(`sourceStream is for an archive source (a path, docker-archive: or oci-archive:), not "${text}"`);
  }
  const streamed = stream === undefined ? {} : { stream };
  switch (spec.kind) {
    case 'registry': {
      const client = options.client ?? (owned = createClient(options));
      source = client.source(spec.reference);
      break;
    }
    case 'oci-layout':
    case 'oci-archive': {
      const image = oneImage(options.image, spec.reference, text);
      source = await layout.open(spec.path, { ...(image === undefined ? {} : { image: selector(image) }), ...(signal ? { signal } : {}), ...streamed });
      break;
    }
    case 'docker-archive': {
      const image = oneImage(options.image, spec.image, text);
      source = await tarball.open(spec.path, { ...options.archive, ...(image === undefined ? {} : { image: selector(image) }), ...(signal ? { signal } : {}), ...streamed });
      break;
    }
    case 'archive': {
      source = await tarball.openAny(spec.path, { ...options.archive, ...(options.image === undefined ? {} : { image: selector(options.image) }), ...(signal ? { signal } : {}), ...streamed });
      break;
    }
    case 'docker-daemon':
      source = await daemon.open(spec.image, signal ? { signal } : {});
      break;
  }
  let closed = false;
  return {
    spec,
    source,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await source.close?.();
      } finally {
        await owned?.close();
      }
    },
  };
}

/** The image chosen by the option or in the source text; both, and different, is a usage error (which one was meant?). */
function oneImage(option: string | undefined, inText: string | undefined, text: string): string | undefined {
  if (option !== undefined && inText !== undefined && option !== inText) {
    throw new InvalidArgumentError(`"${text}" names the image ${JSON.stringify(inText)} and the image option names ${JSON.stringify(option)}; choose one`);
  }
  return option ?? inText;
}

/**
 * `@2` picks the third image of an archive (skopeo's `docker-archive:x.tar:@2`); `@sha256:…` is the
 * digest (as a reference writes it after a name); anything else is a name or digest.
 */
function selector(image: string): string | number {
  if (/^@\d+$/.test(image)) return Number(image.slice(1));
  return /^@(?:sha256|sha512):/.test(image) ? image.slice(1) : image;
}
