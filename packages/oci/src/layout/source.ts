/**
 * ImageSource over an OCI image layout (image-spec image-layout.md): `oci-layout`, `index.json`,
 * `blobs/<alg>/<hex>`, as a directory or a tar (plain or gzipped). Blobs are already compressed and
 * content-addressed, so what we serve is byte for byte what the writing tool produced.
 * @module
 */
import type { Readable } from 'node:stream';
import { InvalidArgumentError, NotFoundError, SizeMismatchError, throwIfAborted, DigestMismatchError } from '../errors.js';
import { parseReference } from '../name/index.js';
import { openTarArchive, statInput, verifiedStream } from '../internal/tar-archive.js';
import { digestAlgorithm, digestHex, digestOf, isDigest } from '../v1/digest.js';
import { maxManifestBytes, parseManifest, type Descriptor, type ImageIndex } from '../v1/manifest.js';
import type { CallOptions, ImageSource, ManifestBytes } from '../v1/source.js';
import { DirectoryStore, invalidStore, TarStore, type LayoutStore } from './store.js';

/** image-spec annotation naming an index.json entry (a tag, or a full reference for some writers). */
export const refNameAnnotation = 'org.opencontainers.image.ref.name';
/** containerd's (and Docker 25+'s) full image name annotation on index.json entries. */
export const imageNameAnnotation = 'io.containerd.image.name';

export interface LayoutOptions extends CallOptions {
  /**
   * Which entry of `index.json` is the image: its `org.opencontainers.image.ref.name` (or containerd's
   * `io.containerd.image.name`, compared as normalised references), its digest, or its position.
   * Optional when `index.json` names one image.
   */
  image?: string | number;
  /** Where the gunzipped copy of a `.tar.gz` layout goes. @defaultValue the OS temp dir */
  tempDir?: string;
  /** Read a layout tar from this stream (once, into the temp dir) instead of opening the path, which then only names it. */
  stream?: Readable;
}

/** One entry of a layout's `index.json`. */
export interface LayoutImage {
  /** Position in `index.json`. */
  position: number;
  descriptor: Descriptor;
  refName?: string;
  imageName?: string;
}

export function blobPath(descriptor: Pick<Descriptor, 'digest'>): string {
  if (!isDigest(descriptor.digest)) throw new InvalidArgumentError(`invalid digest ${JSON.stringify(descriptor.digest)}`);
  return `blobs/${digestAlgorithm(descriptor.digest)}/${digestHex(descriptor.digest)}`;
}

/** Reads and checks `oci-layout` and `index.json`. */
export async function readLayoutIndex(store: LayoutStore): Promise<{ index: ImageIndex; images: LayoutImage[] }> {
  for (const name of ['oci-layout', 'index.json']) {
    // Entry points are plain files in every layout writer; a link here is a crafted archive.
    if (await store.isLink(name)) throw invalidStore(store, `"${name}" is a link, not a regular file`);
  }
  const marker = await store.size('oci-layout');
  if (marker === undefined) throw invalidStore(store, 'not an OCI image layout: no "oci-layout" file');
  let version: unknown;
  try {
    version = (JSON.parse((await store.read('oci-layout', 64 * 1024)).toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch (err) {
    throw invalidStore(store, '"oci-layout" is not valid JSON', err);
  }
  if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
    throw invalidStore(store, `unsupported imageLayoutVersion ${JSON.stringify(version)} in "oci-layout" (want 1.x.y)`);
  }
  if ((await store.size('index.json')) === undefined) throw invalidStore(store, 'not an OCI image layout: no "index.json"');
  const bytes = await store.read('index.json', maxManifestBytes);
  let parsed;
  try {
    parsed = parseManifest(bytes);
  } catch (err) {
    throw invalidStore(store, `"index.json": ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (parsed.kind !== 'index') throw invalidStore(store, '"index.json" is an image manifest, not an index');
  const images = parsed.manifest.manifests.map((descriptor, position) => {
    const image: LayoutImage = { position, descriptor };
    const refName = descriptor.annotations?.[refNameAnnotation];
    const imageName = descriptor.annotations?.[imageNameAnnotation];
    if (typeof refName === 'string') image.refName = refName;
    if (typeof imageName === 'string') image.imageName = imageName;
    return image;
  });
  return { index: parsed.manifest, images };
}

function normalised(text: string): string | undefined {
  try {
    return parseReference(text).toString();
  } catch {
    return undefined;
  }
}

/**
 * `"busybox:1" (sha256:0123456789ab)` or `@2 (sha256:0123456789ab)` for listings in errors: an
 * unnamed entry as the position a source name picks it by (`oci:DIR:@2`).
 */
export function describeImage(image: LayoutImage): string {
  const label = image.imageName ?? image.refName;
  const short = `${image.descriptor.digest.slice(0, 19)}`;
  return label ? `${JSON.stringify(label)} (${short})` : `@${image.position} (${short})`;
}

function distinct(images: LayoutImage[]): LayoutImage[] {
  const seen = new Set<string>();
  return images.filter((image) => !seen.has(image.descriptor.digest) && seen.add(image.descriptor.digest));
}

/** The entries `selector` names (by ref name, image name, digest or position). */
export function matchImages(images: LayoutImage[], selector: string | number): LayoutImage[] {
  if (typeof selector === 'number') return images.filter((image) => image.position === selector);
  if (isDigest(selector)) return images.filter((image) => image.descriptor.digest === selector);
  const wanted = normalised(selector);
  return images.filter((image) => {
    if (image.refName === selector || image.imageName === selector) return true;
    if (wanted === undefined) return false;
    if (image.imageName !== undefined && normalised(image.imageName) === wanted) return true;
    // A bare tag ("latest") as ref name is not a reference; only compare ref names that name a repository.
    return image.refName !== undefined && /[/:]/.test(image.refName) && normalised(image.refName) === wanted;
  });
}

/**
 * Refuses a selector that matched nothing and can name nothing: `@` and no position or digest after
 * it (`@-1`, `@abc`: no ref name starts with `@`), or `sha256:`/`sha512:` and no digest after it.
 * They were "not found" (exit 3), where the selector itself is what to fix. Called only after the
 * lookup: `sha256:v1` is a valid ref name (`:` is a separator), and a layout may hold it.
 */
export function refuseMalformedSelector(selector: string): void {
  const digest = selector.startsWith('@') ? selector.slice(1) : selector;
  if (/^sha(256|512):/i.test(digest) && !isDigest(digest)) {
    throw new InvalidArgumentError(`image selector ${JSON.stringify(selector)} is not a digest: want sha256: and 64 lowercase hex digits (or sha512: and 128)`);
  }
  if (selector.startsWith('@') && !isDigest(digest)) {
    throw new InvalidArgumentError(`image selector ${JSON.stringify(selector)} is neither a position @N (@0, @1, …) nor a digest @sha256:…`);
  }
}

/**
 * Picks the root: the one image `selector` names, or the only image when there is no selector. Entries
 * with the same digest count once (Docker lists an image once per tag).
 */
export function selectImage(images: LayoutImage[], selector: string | number | undefined, archive: string, kind: LayoutStore['kind'] = 'tar'): LayoutImage {
  const unique = distinct(images);
  // A name asked of an empty layout (one another process is still writing) is as absent as a name
  // missing from a full one: exit 3 for both.
  if (unique.length === 0 && selector !== undefined) throw new NotFoundError(`no image ${JSON.stringify(typeof selector === 'number' ? `@${selector}` : selector)} in ${JSON.stringify(archive)}: its "index.json" lists no images`);
  if (unique.length === 0) throw invalidStore({ archive, kind }, '"index.json" lists no images');
  const listing = () => unique.map(describeImage).join(', ');
  if (selector === undefined) {
    if (unique.length === 1) return unique[0] as LayoutImage;
    throw new InvalidArgumentError(
      `OCI layout ${JSON.stringify(archive)} holds ${unique.length} images; choose one with the image option (a name, a digest or a position @N), or in the source name (oci:PATH:NAME, oci:PATH:sha256:…, oci:PATH:@N; oci-archive: alike): ${listing()}`,
    );
  }
  // `@1` given as a string (the library's image option) is the position it spells.
  if (typeof selector === 'string' && /^@(0|[1-9][0-9]*)$/.test(selector)) selector = Number(selector.slice(1));
  if (typeof selector === 'number' && (!Number.isSafeInteger(selector) || selector < 0 || selector >= images.length)) {
    throw new InvalidArgumentError(`image @${selector} is out of range: archive ${JSON.stringify(archive)} holds ${images.length} ${images.length === 1 ? 'entry' : 'entries'}: ${listing()}`);
  }
  const found = distinct(matchImages(images, selector));
  // Only once nothing matched: `sha256:v1` is a valid ref name a layout may hold.
  if (found.length === 0 && typeof selector === 'string') refuseMalformedSelector(selector);
  if (found.length === 0) throw new NotFoundError(`no image ${JSON.stringify(selector)} in ${JSON.stringify(archive)}; it holds: ${listing()}`);
  if (found.length > 1) throw new InvalidArgumentError(`${JSON.stringify(selector)} names ${found.length} different images in ${JSON.stringify(archive)}: ${found.map(describeImage).join(', ')}`);
  return found[0] as LayoutImage;
}

/** Serves an image from a layout store, starting at a chosen root descriptor. */
export class LayoutSource implements ImageSource {
  readonly name: string;
  #closed = false;

  constructor(
    readonly store: LayoutStore,
    readonly rootDescriptor: Descriptor,
    name: string,
  ) {
    this.name = name;
  }

  async root(options: CallOptions = {}): Promise<ManifestBytes> {
    const { mediaType, digest, size } = this.rootDescriptor;
    return this.manifest({ mediaType, digest, size }, options);
  }

  async manifest(descriptor: Descriptor, options: CallOptions = {}): Promise<ManifestBytes> {
    throwIfAborted(options.signal);
    const path = blobPath(descriptor);
    const size = await this.store.size(path);
    if (size === undefined) throw new NotFoundError(`manifest ${descriptor.digest} is not in ${this.name}`);
    if (size !== descriptor.size) throw new SizeMismatchError(descriptor.size, size, `manifest ${descriptor.digest} in ${this.name}`);
    // The layout's fault, as any oversize file in it, but named as a manifest: the store's own
    // message named a blob path, and left the user to work out what it held.
    if (size > maxManifestBytes) throw invalidStore(this.store, `manifest ${descriptor.digest} is ${size} bytes, more than the ${maxManifestBytes}-byte limit registries must accept`);
    const bytes = await this.store.read(path, maxManifestBytes);
    const got = digestOf(bytes, descriptor.digest);
    if (got !== descriptor.digest) throw new DigestMismatchError(descriptor.digest, got, `manifest in ${this.name}`);
    // Parse to learn (and check) the media type: the descriptor's and the body's must agree.
    const parsed = parseManifest(bytes, descriptor.mediaType);
    throwIfAborted(options.signal);
    return { descriptor: { mediaType: parsed.manifest.mediaType, digest: descriptor.digest, size: bytes.length }, bytes };
  }

  async blob(descriptor: Descriptor, options: CallOptions = {}): Promise<Readable> {
    throwIfAborted(options.signal);
    const path = blobPath(descriptor);
    const size = await this.store.size(path);
    if (size === undefined) throw new NotFoundError(`blob ${descriptor.digest} is not in ${this.name}`);
    if (size !== descriptor.size) throw new SizeMismatchError(descriptor.size, size, `blob ${descriptor.digest} in ${this.name}`);
    const stream = await this.store.open(path);
    return verifiedStream(stream, descriptor, `blob ${descriptor.digest} in ${this.name}`, options.signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.store.close();
  }
}

/** Opens a layout directory, or a layout tar (plain or gzipped), as a store. */
export async function openStore(path: string, options: { signal?: AbortSignal; tempDir?: string; stream?: Readable } = {}): Promise<LayoutStore> {
  if (options.stream) return new TarStore(await openTarArchive(path, options));
  const info = await statInput(path, 'OCI layout');
  if (info.isDirectory()) return DirectoryStore.open(path);
  return new TarStore(await openTarArchive(path, options));
}

/**
 * Opens an OCI image layout directory or tar as an ImageSource. When `index.json` has one entry that
 * is itself an index (a multi-platform image), that index is the root.
 * @throws SLIPWAY_INVALID_ARCHIVE for a malformed layout, SLIPWAY_INVALID_ARG when several images and no `image`,
 *   SLIPWAY_NOT_FOUND when `image` names nothing.
 */
export async function open(path: string, options: LayoutOptions = {}): Promise<LayoutSource> {
  throwIfAborted(options.signal);
  const store = await openStore(path, options);
  try {
    const { images } = await readLayoutIndex(store);
    const chosen = selectImage(images, options.image, path, store.kind);
    const label = chosen.refName ?? chosen.imageName;
    return new LayoutSource(store, chosen.descriptor, `oci:${path}${label ? `:${label}` : `@${chosen.descriptor.digest}`}`);
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** Lists the entries of a layout's `index.json` (for a CLI listing or to choose `image`). */
export async function list(path: string, options: Omit<LayoutOptions, 'image'> = {}): Promise<LayoutImage[]> {
  const store = await openStore(path, options);
  try {
    return (await readLayoutIndex(store)).images;
  } finally {
    await store.close();
  }
}
