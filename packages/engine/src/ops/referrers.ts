/**
 * Copying the artifacts that refer to a copied image (signatures, SBOMs, attestations attached with
 * a `subject`), like `regctl image copy --referrers`.
 *
 * Each referrer goes to the destination repository by digest, exactly as its bytes, after its blobs
 * (copy.copy to a digest-only sink). A destination that answers the PUT without `OCI-Subject` does
 * not index referrers itself (distribution 2.8): the `<alg>-<hex>` fallback tag is then kept up to
 * date by us, as the OCI distribution spec v1.1 asks of clients, and only after the referrer is in.
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';
import { AbortedError, copy, digestOf, MediaType, parseManifest, RegistryError, remote, SlipwayError, throwIfAborted, type Descriptor, type ImageSink, type ImageSource, type ManifestBytes, type name, type ParsedManifest } from '@slipway/oci';
import { noStats, sumStats } from './stats.js';

const debug = debuglog('slipway');

/** How deep referrers of referrers are followed (a signature of an SBOM of an image is depth 2). */
export const referrersDepth = 8;

/**
 * Breadth-first from `subjects` to what `visit` finds for each (its referrers, its digest tags), then
 * theirs, {@link referrersDepth} levels deep. `claim(digest)` is true the first time a digest comes up
 * (the subjects count as seen), so each is visited once; `visit` returns the digests it claimed.
 */
export async function followSubjects(
  subjects: readonly string[],
  signal: AbortSignal | undefined,
  visit: (subject: string, claim: (digest: string) => boolean) => Promise<string[]>,
): Promise<void> {
  const seen = new Set<string>(subjects);
  const claim = (digest: string): boolean => {
    if (seen.has(digest)) return false;
    seen.add(digest);
    return true;
  };
  let level = [...subjects];
  for (let depth = 0; depth < referrersDepth && level.length > 0; depth++) {
    const next: string[] = [];
    for (const subject of level) {
      // AbortedError (SLIPWAY_ABORTED), like every other abort, not the bare reason signal.throwIfAborted() throws.
      throwIfAborted(signal);
      next.push(...(await visit(subject, claim)));
    }
    level = next;
  }
}

export interface CopiedReferrer {
  digest: string;
  artifactType?: string;
  /** The digest of the manifest it refers to. */
  subject: string;
}

/** What the copies that follow an image's (its referrers, its digest tags) are given. */
export interface FollowUpCopyOptions {
  client: remote.RegistryClient;
  /** The source repository (any tag or digest on it is ignored). */
  source: name.Reference;
  destination: name.Reference;
  /** Digests copied to the destination whose referrers (digest tags) are wanted. */
  subjects: readonly string[];
  /** Digest tags: replace a destination tag even when the source's manifest does not extend it. */
  overwrite?: boolean | undefined;
  jobs?: number | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((event: copy.CopyEvent) => void) | undefined;
}

export type CopyReferrersOptions = FollowUpCopyOptions;

/** The copy.copy options every follow-up copy passes on: parallelism, progress, cancellation. */
export function followUpCopyOptions(options: FollowUpCopyOptions): copy.CopyOptions {
  return {
    ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

export interface CopyReferrersResult {
  referrers: CopiedReferrer[];
  stats: copy.CopyStats;
}

/** Copies the referrers of `subjects`, and theirs, up to {@link referrersDepth}; one copy per digest. */
export async function copyReferrers(options: CopyReferrersOptions): Promise<CopyReferrersResult> {
  const { client, source, destination, signal } = options;
  const call = signal ? { signal } : {};
  let stats: copy.CopyStats = { ...noStats };
  const referrers: CopiedReferrer[] = [];
  await followSubjects(options.subjects, signal, async (subject, claim) => {
    const found = await client.referrers(source, subject, call);
    const added: CopiedEntry[] = [];
    for (const listed of found) {
      if (!claim(listed.digest)) continue;
      const manifest = await client.getManifest(`${source.name}@${listed.digest}`, call);
      const parsed = parseManifest(manifest.bytes, manifest.descriptor.mediaType);
      // A fallback tag is written by clients and may be stale or wrong; only a real subject counts.
      if (parsed.manifest.subject?.digest !== subject) {
        debug('referrers: %s@%s does not name %s as its subject; skipped', source.name, listed.digest, subject);
        continue;
      }
      const target = `${destination.name}@${manifest.descriptor.digest}`;
      let answered: remote.PutManifestResult | undefined;
      const sink = withRootPut(client.sink(target), manifest.descriptor.digest, async (bytes) => {
        answered = await client.putManifest(target, bytes, call);
      });
      const result = await copy.copy(withKnownRoot(client.source(`${source.name}@${manifest.descriptor.digest}`), manifest), sink, followUpCopyOptions(options));
      stats = sumStats(stats, result.stats);
      const descriptor = referrerDescriptor(manifest, parsed);
      added.push({ digest: descriptor.digest, answer: answered, describe: async () => descriptor });
      referrers.push({ digest: descriptor.digest, ...(descriptor.artifactType ? { artifactType: descriptor.artifactType } : {}), subject });
    }
    if (await indexReferrers(client, destination, subject, added, call)) stats.manifestsPut += 1;
    return added.map((d) => d.digest);
  });
  return { referrers, stats };
}

/** A manifest copied to the destination that names a subject. */
interface CopiedEntry {
  digest: string;
  /** The registry's answer to its PUT, when this run wrote it (an earlier run may have). */
  answer: remote.PutManifestResult | undefined;
  /** Its descriptor as the referrers API shows it; asked only when it must be written. */
  describe: () => Promise<Descriptor>;
}

/**
 * Makes `entries`, copied with `subject` as their subject, discoverable from it where the destination
 * has no referrers API: adds them to the `<alg>-<hex>` fallback tag, as the spec asks of the pusher
 * (and as `crane copy` and `regctl image copy` do). A PUT answered with `OCI-Subject` says the registry
 * indexes them itself; one answered without says it does not. When this run wrote none of them (a no-op
 * re-run, or an earlier run stopped between the PUTs and the tag), the destination's own listing (its
 * API, else the tag) says which are known: a re-run only reads. Returns whether the tag was written.
 */
async function indexReferrers(client: remote.RegistryClient, destination: name.Reference, subject: string, entries: readonly CopiedEntry[], call: { signal?: AbortSignal }): Promise<boolean> {
  if (entries.length === 0 || entries.some((e) => e.answer?.subject !== undefined)) return false;
  let wanted = entries;
  if (entries.every((e) => e.answer === undefined)) {
    const listed = new Set<string>((await client.referrers(destination, subject, call)).map((d) => d.digest));
    wanted = entries.filter((e) => !listed.has(e.digest));
    if (wanted.length === 0) return false;
  }
  const descriptors = await Promise.all(wanted.map((e) => e.describe()));
  return updateFallbackTag(client, destination, subject, descriptors, call);
}

/**
 * Makes a copied root that has a `subject` (a signature, an SBOM) discoverable from it, as
 * {@link indexReferrers} does for the referrers `--referrers` copies. `written`: the root's PUT and the
 * registry's answer, when this run wrote it. Returns the manifests written (0 or 1).
 */
export async function indexCopiedReferrer(options: {
  client: remote.RegistryClient;
  destination: name.Reference;
  digest: string;
  subject: Descriptor;
  written: { manifest: ManifestBytes; answer: remote.PutManifestResult } | undefined;
  signal?: AbortSignal | undefined;
}): Promise<number> {
  const { client, destination, digest, written, signal } = options;
  const call = signal ? { signal } : {};
  const entry: CopiedEntry = {
    digest,
    answer: written?.answer,
    describe: async () => referrerDescriptor(written?.manifest ?? (await client.getManifest(`${destination.name}@${digest}`, call))),
  };
  return (await indexReferrers(client, destination, options.subject.digest, [entry], call)) ? 1 : 0;
}

/**
 * The descriptor the referrers API shows for a manifest (distribution spec v1.1, "Listing Referrers");
 * `parsed`: the manifest already parsed, when the caller has it.
 */
export function referrerDescriptor(manifest: ManifestBytes, parsed: ParsedManifest = parseManifest(manifest.bytes, manifest.descriptor.mediaType)): Descriptor {
  const artifactType = parsed.manifest.artifactType || (parsed.kind === 'image' ? parsed.manifest.config.mediaType : undefined);
  const annotations = parsed.manifest.annotations;
  return {
    mediaType: manifest.descriptor.mediaType,
    digest: manifest.descriptor.digest,
    size: manifest.bytes.byteLength,
    ...(artifactType ? { artifactType } : {}),
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}

/** Rounds of write-then-check on a fallback tag before giving up on a writer that keeps replacing it. */
const fallbackRounds = 4;
/**
 * How long after writing a fallback tag it is read back. A writer that read the tag before our PUT
 * and puts its own merge after it erases our entries; the read-back, late enough for such a PUT to
 * have landed, sees that and merges again. Paid only when the tag was written.
 */
export const fallbackSettleMs = 200;

/**
 * Adds descriptors to the index at the destination's `<alg>-<hex>` tag for `subject`, keeping what it
 * lists already (another tool's referrers too). Returns whether it wrote.
 *
 * Distribution offers no conditional PUT, so two writers merging into one tag can erase each other's
 * entries: each write is read back after {@link fallbackSettleMs} and merged again when our entries
 * are gone (keeping the other writer's), up to {@link fallbackRounds} writes. That closes the window
 * for a writer whose PUT lands within the settle time; one landing later can still erase ours, and
 * only its own read-back would notice.
 */
async function updateFallbackTag(
  client: remote.RegistryClient,
  destination: name.Reference,
  subject: string,
  descriptors: readonly Descriptor[],
  call: { signal?: AbortSignal },
): Promise<boolean> {
  const reference = `${destination.name}:${remote.referrersTag(subject)}`;
  let wrote = false;
  for (let round = 0; ; round++) {
    const { existing, extra } = await readFallbackIndex(client, reference, call);
    const have = new Set(existing.map((d) => d.digest));
    const missing = descriptors.filter((d) => !have.has(d.digest));
    if (missing.length === 0) return wrote;
    if (round === fallbackRounds) {
      // Not an error: a registry behind a cache may serve the old tag for a while after our PUT
      // was taken, and the copy itself is complete. A later copy merges again.
      debug('referrers: %s still lacks %d of our entries after %d writes (another writer, or a stale read); leaving it', reference, missing.length, fallbackRounds);
      return wrote;
    }
    if (wrote) debug('referrers: %s was replaced by another writer; merging %d entries again', reference, missing.length);
    // Other fields of the index the tag held (annotations) are kept; the type is always an OCI index.
    const index = { ...extra, schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...existing, ...missing] };
    const bytes = new TextEncoder().encode(JSON.stringify(index));
    await client.putManifest(reference, { descriptor: { mediaType: MediaType.OciIndex, digest: digestOf(bytes), size: bytes.byteLength }, bytes }, call);
    wrote = true;
    await sleep(fallbackSettleMs, undefined, call).catch((err: unknown) => {
      throw new AbortedError('operation aborted', { cause: err });
    });
  }
}

/** The descriptors a fallback tag lists (none when it does not exist) and the index's other fields. */
async function readFallbackIndex(client: remote.RegistryClient, reference: string, call: { signal?: AbortSignal }): Promise<{ existing: Descriptor[]; extra: Record<string, unknown> }> {
  let current: ManifestBytes;
  try {
    current = await client.getManifest(reference, call);
  } catch (err) {
    if (RegistryError.is(err) && err.notFound) return { existing: [], extra: {} };
    throw err;
  }
  const parsed = parseManifest(current.bytes, current.descriptor.mediaType);
  if (parsed.kind !== 'index') {
    throw new SlipwayError('SLIPWAY_REGISTRY', `${reference} holds ${current.descriptor.mediaType}, not the referrers index the tag schema wants; left alone`);
  }
  const { manifests: _manifests, ...extra } = JSON.parse(Buffer.from(current.bytes).toString('utf8')) as Record<string, unknown>;
  return { existing: parsed.manifest.manifests, extra };
}

/** A sink whose PUT of `root` goes through `put` (to read the registry's answer); everything else as `sink`. */
function withRootPut(sink: ImageSink, root: string, put: (manifest: ManifestBytes) => Promise<void>): ImageSink {
  return withManifestPut(sink, (manifest, opts) => (manifest.descriptor.digest === root && opts?.tag === undefined ? put(manifest) : sink.putManifest(manifest, opts)));
}

/**
 * `source` whose root is `root`, bytes already fetched (and verified) by digest: the copy that follows
 * need not GET them a second time.
 */
export function withKnownRoot(source: ImageSource, root: ManifestBytes): ImageSource {
  return {
    name: source.name,
    ...(source.location ? { location: source.location } : {}),
    root: () => Promise.resolve(root),
    manifest: source.manifest.bind(source),
    blob: source.blob.bind(source),
    ...(source.close ? { close: source.close.bind(source) } : {}),
  };
}

/** `sink` with every manifest PUT going through `put`; its name, location, tag and other calls unchanged. */
export function withManifestPut(sink: ImageSink, put: ImageSink['putManifest']): ImageSink {
  return {
    name: sink.name,
    ...(sink.location ? { location: sink.location } : {}),
    ...(sink.tag !== undefined ? { tag: sink.tag } : {}),
    current: sink.current.bind(sink),
    hasBlob: sink.hasBlob.bind(sink),
    putBlob: sink.putBlob.bind(sink),
    hasManifest: sink.hasManifest.bind(sink),
    putManifest: put,
    ...(sink.close ? { close: sink.close.bind(sink) } : {}),
  };
}
