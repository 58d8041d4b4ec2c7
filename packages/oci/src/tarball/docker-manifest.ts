/**
 * The `manifest.json` of a `docker save` archive (`[{Config, RepoTags, Layers, LayerSources}]`,
 * moby image/tarexport), which skopeo's `docker-archive:` and crane's tarballs also write, and the
 * image config's `rootfs.diff_ids` that say what each layer tar must hash to.
 * @module
 */
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { invalidArchive } from '../internal/tar-index.js';
import { refuseMalformedSelector } from '../layout/source.js';
import { parseReference } from '../name/index.js';
import { isDigest, type Digest } from '../v1/digest.js';
import type { Descriptor } from '../v1/manifest.js';

/** `manifest.json` lists images, not data: a few KiB each. Anything bigger than this is refused unparsed. */
export const maxManifestJsonBytes = 8 * 1024 * 1024;
/** Image configs are small JSON documents (history can make them tens of KiB). */
export const maxConfigBytes = 8 * 1024 * 1024;

export interface DockerSaveItem {
  /** Position in `manifest.json`. */
  position: number;
  config: string;
  repoTags: string[];
  layers: string[];
  /** Descriptors of foreign (non-distributable) layers, keyed by diff ID. */
  layerSources: Record<string, Descriptor>;
}

export function parseDockerManifest(bytes: Uint8Array, archive: string): DockerSaveItem[] {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw invalidArchive(archive, '"manifest.json" is not valid JSON', err);
  }
  if (!Array.isArray(body)) throw invalidArchive(archive, '"manifest.json" is not a JSON array');
  if (body.length === 0) throw invalidArchive(archive, '"manifest.json" lists no images');
  return body.map((raw: unknown, position) => {
    const where = `"manifest.json"[${position}]`;
    if (typeof raw !== 'object' || raw === null) throw invalidArchive(archive, `${where} is not an object`);
    const item = raw as Record<string, unknown>;
    if (typeof item.Config !== 'string' || item.Config === '') throw invalidArchive(archive, `${where} has no "Config" path`);
    if (!Array.isArray(item.Layers) || !item.Layers.every((l) => typeof l === 'string' && l !== '')) {
      throw invalidArchive(archive, `${where} has no "Layers" list of paths`);
    }
    const tags = item.RepoTags ?? [];
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw invalidArchive(archive, `${where} has a malformed "RepoTags"`);
    const sources: Record<string, Descriptor> = {};
    if (item.LayerSources !== undefined && item.LayerSources !== null) {
      if (typeof item.LayerSources !== 'object' || Array.isArray(item.LayerSources)) throw invalidArchive(archive, `${where} has a malformed "LayerSources"`);
      for (const [diffID, d] of Object.entries(item.LayerSources as Record<string, unknown>)) {
        const desc = d as Partial<Descriptor> | null;
        if (!desc || typeof desc.mediaType !== 'string' || typeof desc.digest !== 'string' || !isDigest(desc.digest) || typeof desc.size !== 'number') {
          throw invalidArchive(archive, `${where} has a malformed "LayerSources" entry for ${JSON.stringify(diffID)}`);
        }
        sources[diffID] = desc as Descriptor;
      }
    }
    return { position, config: item.Config, repoTags: tags, layers: item.Layers as string[], layerSources: sources };
  });
}

function normalised(text: string): string | undefined {
  try {
    return parseReference(text).toString();
  } catch {
    return undefined;
  }
}

export function describeItem(item: DockerSaveItem): string {
  return item.repoTags.length > 0 ? item.repoTags.map((t) => JSON.stringify(t)).join(' = ') : `@${item.position} (untagged, config ${JSON.stringify(item.config)})`;
}

/** True when `selector` names one of the item's tags (exactly, or as the same normalised reference: `busybox:1` = `docker.io/library/busybox:1`). */
export function itemHasTag(item: DockerSaveItem, selector: string): boolean {
  const wanted = normalised(selector);
  return item.repoTags.some((tag) => tag === selector || (wanted !== undefined && normalised(tag) === wanted));
}

/**
 * The image `selector` names: a tag, a position, or (given `configDigest`) an image ID. Without a
 * selector the archive must hold exactly one image; otherwise the error lists what it holds.
 */
export function selectItem(
  items: DockerSaveItem[],
  selector: string | number | undefined,
  archive: string,
  configDigest?: (item: DockerSaveItem) => Digest | undefined,
): DockerSaveItem {
  const listing = () => items.map(describeItem).join(', ');
  if (selector === undefined) {
    if (items.length === 1) return items[0] as DockerSaveItem;
    throw new InvalidArgumentError(`archive ${JSON.stringify(archive)} holds ${items.length} images; choose one with the image option (a tag or a position), or in the source name (docker-archive:PATH:TAG, docker-archive:PATH:@N): ${listing()}`);
  }
  // `@1` given as a string (the library's image option) is the position it spells.
  if (typeof selector === 'string' && /^@(0|[1-9][0-9]*)$/.test(selector)) selector = Number(selector.slice(1));
  if (typeof selector === 'number') {
    const item = Number.isSafeInteger(selector) ? items[selector] : undefined;
    if (!item) throw new InvalidArgumentError(`image @${selector} is out of range: archive ${JSON.stringify(archive)} holds ${items.length} images: ${listing()}`);
    return item;
  }
  const found = items.filter((item) => itemHasTag(item, selector) || (isDigest(selector) && configDigest?.(item) === selector));
  // Only once nothing matched: `sha256:v1` is a valid ref name a layout may hold.
  if (found.length === 0 && typeof selector === 'string') refuseMalformedSelector(selector);
  if (found.length === 0) throw new NotFoundError(`no image ${JSON.stringify(selector)} in archive ${JSON.stringify(archive)}; it holds: ${listing()}`);
  if (found.length > 1) throw new InvalidArgumentError(`${JSON.stringify(selector)} names ${found.length} images in archive ${JSON.stringify(archive)}: ${found.map(describeItem).join(', ')}`);
  return found[0] as DockerSaveItem;
}

export interface ImageConfigFacts {
  diffIDs: Digest[];
}

/** Reads what we need from an image config: the diff IDs, one per layer. */
export function parseConfigFacts(bytes: Uint8Array, archive: string, path: string): ImageConfigFacts {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw invalidArchive(archive, `image config ${JSON.stringify(path)} is not valid JSON`, err);
  }
  const rootfs = (body as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs;
  const ids = rootfs?.diff_ids ?? [];
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && isDigest(id))) {
    throw invalidArchive(archive, `image config ${JSON.stringify(path)} has malformed "rootfs.diff_ids"`);
  }
  return { diffIDs: ids };
}
