/**
 * Copying the tags named after a copied manifest's digest, `sha256-<hex>.sig`, `.att`, `.sbom`: the
 * scheme cosign stores signatures, attestations and SBOMs under (its default before the OCI 1.1
 * referrers mode). Those manifests have no `subject`, so the referrers API never lists them; a copy
 * that leaves them behind arrives unsigned. Like `regctl image copy --digest-tags`.
 *
 * The source's tags are listed once. A tag `<alg>-<hex>.<suffix>` of a copied digest goes to the same
 * tag at the destination, byte for byte. When that tag already holds something else, the source's
 * replaces it only if it extends it: cosign adds a signature as one more layer of the same `.sig`
 * manifest, so a source manifest holding every layer the destination's holds is the same signatures
 * and more (a signature added at the source since the last copy). One that does not, a signature made
 * at the destination alone, is kept and reported (`outcome: 'kept'`) unless `overwrite` is set, as an
 * image tag would be. The bare `<alg>-<hex>` tag is the referrers fallback index, which the referrers
 * copy merges instead. What a digest tag holds may have digest tags of its own (a signature of an
 * attestation): followed to the referrers' depth.
 * @module
 */
import { copy, parseManifest, remote, throwIfAborted, type ManifestBytes } from '@slipway/oci';
import { followSubjects, followUpCopyOptions, withKnownRoot, type FollowUpCopyOptions } from './referrers.js';
import { noStats, sumStats } from './stats.js';

export interface CopiedDigestTag {
  /** The tag, the same at both ends: `sha256-<hex>.sig`. */
  tag: string;
  /** What the source's tag holds. */
  digest: string;
  /** The copied manifest it is named after. */
  subject: string;
  /**
   * `copied`: the destination's tag holds `digest` now (or did already). `kept`: it holds `held`, which
   * the source's manifest does not extend, and `overwrite` was not set: left as it was.
   */
  outcome: 'copied' | 'kept';
  held?: string;
}

export type CopyDigestTagsOptions = FollowUpCopyOptions;

export interface CopyDigestTagsResult {
  tags: CopiedDigestTag[];
  stats: copy.CopyStats;
}

/** Copies the digest tags of `subjects`, and theirs, as deep as referrers are followed ({@link followSubjects}). */
export async function copyDigestTags(options: CopyDigestTagsOptions): Promise<CopyDigestTagsResult> {
  const { client, source, destination, signal } = options;
  const call = signal ? { signal } : {};
  let stats: copy.CopyStats = { ...noStats };
  const copied: CopiedDigestTag[] = [];
  const available = (await client.listTags(source.name, call)).filter((tag) => /^[a-z0-9]+-[a-f0-9]+\../.test(tag));
  if (available.length === 0) return { tags: copied, stats };
  const done = new Set<string>();
  await followSubjects(options.subjects, signal, async (subject, claim) => {
    const found: string[] = [];
    // `<alg>-<hex>.`: the referrers tag of the digest and a suffix.
    const prefix = `${remote.referrersTag(subject)}.`;
    for (const tag of available) {
      if (!tag.startsWith(prefix) || done.has(tag)) continue;
      done.add(tag);
      // Between two tags too: AbortedError (SLIPWAY_ABORTED), not the bare reason signal.throwIfAborted() throws.
      throwIfAborted(signal);
      // By digest from here on: the tag may move at the source while this runs.
      const wanted = await client.getManifest(`${source.name}:${tag}`, call);
      const digest = wanted.descriptor.digest;
      const target = `${destination.name}:${tag}`;
      const held = (await client.head(target, call))?.digest;
      if (held !== undefined && held !== digest) {
        // Only here are the destination's bytes needed: to see whether the source's extends them.
        if (options.overwrite !== true && !extendsManifest(wanted, await client.getManifest(target, call))) {
          copied.push({ tag, digest, subject, outcome: 'kept', held });
          continue;
        }
      }
      if (held !== digest) {
        const result = await copy.copy(withKnownRoot(client.source(`${source.name}@${digest}`), wanted), client.sink(target), { ...followUpCopyOptions(options), overwrite: true });
        stats = sumStats(stats, result.stats);
      }
      copied.push({ tag, digest, subject, outcome: 'copied' });
      if (claim(digest)) found.push(digest);
    }
    return found;
  });
  return { tags: copied, stats };
}

/** Whether `newer` holds every layer `older` holds (cosign's `.sig` after more signatures were added). */
export function extendsManifest(newer: ManifestBytes, older: ManifestBytes): boolean {
  const a = parseManifest(newer.bytes, newer.descriptor.mediaType);
  const b = parseManifest(older.bytes, older.descriptor.mediaType);
  if (a.kind !== 'image' || b.kind !== 'image') return false;
  const layers = new Set(a.manifest.layers.map((l) => l.digest));
  return b.manifest.layers.every((l) => layers.has(l.digest));
}
