/**
 * What build() needs from the registry, on top of @slipway/oci: existence checks for cache
 * sources, the HEAD that confirms every tag, registry-side tagging, per-platform digests, and the
 * pusher that publishes images a builder left in the Docker Engine (with the index assembled here).
 * @module
 */
import {
  auth,
  copy,
  daemon,
  digestOf,
  formatPlatform,
  isImageManifestMediaType,
  MediaType,
  name,
  normalizePlatform,
  parseManifest,
  remote,
  SlipwayError,
  type Descriptor,
  type Digest,
  type ImageSource,
  type ManifestBytes,
  type Platform,
} from '@slipway/oci';
import type { Pusher } from './builders/types.js';

export interface RegistryAccess {
  /** Explicit credentials first, then the given keychain (or Docker config and auth.json). */
  readonly keychain: auth.Keychain;
  exists(reference: string, signal?: AbortSignal): Promise<boolean>;
  /** The digest at a reference, or undefined on a definite 404. */
  head(reference: string, signal?: AbortSignal): Promise<Digest | undefined>;
  /** Puts what `source` (a `repo@digest`) names at `tag`, mounting blobs across repositories. */
  copyTo(source: string, tag: string, signal?: AbortSignal): Promise<void>;
  /** `os/arch[/variant]` → image manifest digest for what `reference` names. */
  platformDigests(reference: string, signal?: AbortSignal): Promise<Record<string, Digest>>;
  pusher(): Pusher;
  close(): Promise<void>;
}

export async function openRegistry(options: {
  registries: readonly { address: string; username: string; password: string }[];
  keychain?: auth.Keychain | undefined;
  insecure: readonly string[];
}): Promise<RegistryAccess> {
  const credentials: Record<string, auth.Credentials> = {};
  for (const entry of options.registries) credentials[entry.address] = { username: entry.username, password: entry.password };
  const keychain = auth.createKeychain({ credentials, ...(options.keychain ? { keychain: options.keychain } : {}) });
  const client = remote.createRegistryClient({ keychain, insecure: options.insecure });
  const signalOf = (signal?: AbortSignal) => (signal ? { signal } : {});

  const head = async (reference: string, signal?: AbortSignal): Promise<Digest | undefined> => (await client.head(reference, signalOf(signal)))?.digest;

  /** The platform an image manifest's config declares. */
  const configPlatform = async (source: ImageSource, manifest: ManifestBytes, signal?: AbortSignal): Promise<Platform> => {
    const parsed = parseManifest(manifest.bytes, manifest.descriptor.mediaType);
    if (parsed.kind !== 'image') throw new SlipwayError('SLIPWAY_INVALID_MANIFEST', `${source.name}: expected an image manifest, found an index`);
    const platform = await copy.readConfigPlatform(source, parsed.manifest, signalOf(signal));
    if (!platform) throw new SlipwayError('SLIPWAY_INVALID_MANIFEST', `${source.name}: the image config names no os/architecture`);
    return normalizePlatform(platform);
  };

  const pushFromDaemon: Pusher['pushFromDaemon'] = async (images, tag, pushOptions) => {
    const { signal } = pushOptions;
    const target = name.parseReference(tag);
    const open = (localName: string): Promise<ImageSource> =>
      daemon.open(localName, { ...(pushOptions.dockerHost ? { host: pushOptions.dockerHost } : {}), ...signalOf(signal) });
    if (!pushOptions.index) {
      const source = await open(images[0]!.localName);
      try {
        const result = await copy.copy(source, client.sink(target), { overwrite: true, ...signalOf(signal) });
        return result.digest;
      } finally {
        await source.close?.();
      }
    }
    // Children by digest first, the index at the tag last: the tag never names a partial image.
    const children: Descriptor[] = [];
    for (const image of images) {
      const source = await open(image.localName);
      try {
        const root = await source.root(signalOf(signal));
        const platform = await configPlatform(source, root, signal);
        const result = await copy.copy(source, client.sink(`${target.name}@${root.descriptor.digest}`), { ...signalOf(signal) });
        children.push({ mediaType: result.mediaType, digest: result.digest, size: result.size, platform });
      } finally {
        await source.close?.();
      }
    }
    // A Docker manifest list when every child is a Docker manifest (what Docker itself would push), else an OCI index.
    const docker = children.every((child) => child.mediaType === MediaType.DockerManifest);
    const mediaType = docker ? MediaType.DockerManifestList : MediaType.OciIndex;
    const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType, manifests: children }, null, 2));
    const descriptor: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.byteLength };
    await client.sink(target).putManifest({ descriptor, bytes }, { tag: target.tag!, ...signalOf(signal) });
    return descriptor.digest;
  };

  return {
    keychain,
    async exists(reference, signal) {
      return (await head(reference, signal)) !== undefined;
    },
    head,
    async copyTo(source, tag, signal) {
      await copy.copy(client.source(source), client.sink(tag), { overwrite: true, ...signalOf(signal) });
    },
    async platformDigests(reference, signal) {
      const source = client.source(reference);
      const root = await source.root(signalOf(signal));
      const parsed = parseManifest(root.bytes, root.descriptor.mediaType);
      const result: Record<string, Digest> = {};
      if (parsed.kind === 'index') {
        for (const entry of copy.indexPlatforms(parsed.manifest.manifests.filter((d) => isImageManifestMediaType(d.mediaType)))) {
          result[entry.platform] = entry.digest;
        }
        return result;
      }
      // A single image: its config says which platform it is (the request may be less specific).
      result[formatPlatform(await configPlatform(source, root, signal))] = root.descriptor.digest;
      return result;
    },
    pusher: () => ({ pushFromDaemon }),
    close: () => client.close(),
  };
}
