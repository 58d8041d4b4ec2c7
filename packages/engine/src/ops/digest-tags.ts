/**
 * Copying the tags named after a copied manifest's digest, `sha256-<hex>.sig`, `.att`, `.sbom`: the
 * scheme cosign stores signatures, attestations and SBOMs under (its default before the OCI 1.1
 * referrers mode). Those manifests have no `subject`, so the referrers API never lists them; a copy
 * that leaves them behind arrives unsigned. Like `regctl image copy --digest-tags`.
 *
 * The source's tags are listed once. A tag `<alg>-<hex>.<suffix>` of a copied digest goes to the same
 * tag at the destination, byte for byte, replacing what that tag held there: it is keyed by the image
 * digest, and the source's is the one that signs what was just copied. The bare `<alg>-<hex>` tag is
 * the referrers fallback index, which the referrers copy merges instead of replacing. What a digest tag
 * holds may have digest tags of its own (a signature of an attestation): followed to the referrers'
 * depth.
 * @module
 */
import { copy, throwIfAborted } from '@slipway/oci';
import { referrersDepth, type FollowUpCopyOptions } from './referrers.js';
import { noStats, sumStats } from './stats.js';

export interface CopiedDigestTag {
  /** The tag, the same at both ends: `sha256-<hex>.sig`. */
  tag: string;
  /** What it holds. */
  digest: string;
  /** The copied manifest it is named after. */
  subject: string;
}

export type CopyDigestTagsOptions = FollowUpCopyOptions;

export interface CopyDigestTagsResult {
  tags: CopiedDigestTag[];
  stats: copy.CopyStats;
}

/** The `<alg>-<hex>.` prefix of the digest tags of `digest`. */
export function digestTagPrefix(digest: string): string {
  return `${digest.replace(':', '-')}.`;
}

/** Copies the digest tags of `subjects`, and theirs, up to {@link referrersDepth} levels. */
export async function copyDigestTags(options: CopyDigestTagsOptions): Promise<CopyDigestTagsResult> {
  const { client, source, destination, signal } = options;
  const call = signal ? { signal } : {};
  let stats: copy.CopyStats = { ...noStats };
  const copied: CopiedDigestTag[] = [];
  const available = (await client.listTags(source.name, call)).filter((tag) => /^[a-z0-9]+-[a-f0-9]+\../.test(tag));
  if (available.length === 0) return { tags: copied, stats };
  const seen = new Set<string>(options.subjects);
  const done = new Set<string>();
  let level = [...options.subjects];
  for (let depth = 0; depth < referrersDepth && level.length > 0; depth++) {
    const next: string[] = [];
    for (const subject of level) {
      const prefix = digestTagPrefix(subject);
      for (const tag of available) {
        if (!tag.startsWith(prefix) || done.has(tag)) continue;
        done.add(tag);
        // AbortedError (SLIPWAY_ABORTED), like every other abort, not the bare reason signal.throwIfAborted() throws.
        throwIfAborted(signal);
        const result = await copy.copy(client.source(`${source.name}:${tag}`), client.sink(`${destination.name}:${tag}`), {
          overwrite: true,
          ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
          ...call,
        });
        stats = sumStats(stats, result.stats);
        copied.push({ tag, digest: result.digest, subject });
        if (!seen.has(result.digest)) {
          seen.add(result.digest);
          next.push(result.digest);
        }
      }
    }
    level = next;
  }
  return { tags: copied, stats };
}
