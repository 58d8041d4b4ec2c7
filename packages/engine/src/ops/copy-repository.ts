/**
 * `copyRepository`: every tag of a registry repository (or those a pattern matches) to another
 * repository, as `crane copy --all-tags` and `skopeo sync` do, for a mirror kept up to date by
 * running it again.
 *
 * Order of work, chosen so that a re-run that finds little new costs little, and a first run
 * costs about one request per thing to move:
 *  1. list the source's tags (following pagination) and keep those the pattern matches;
 *  2. without a platform filter (or referrers to follow), HEAD each tag at both ends, `jobs` at a
 *     time: a destination tag that already holds the source's digest is unchanged, and costs nothing
 *     more. HEAD, not GET: Docker Hub does not count HEADs against its pull limit;
 *  3. group the other tags by the digest the HEAD saw, and copy `jobs` groups at a time: one GET of
 *     the root manifest per digest, then its tags one after the other, the first walking the image
 *     and the others (aliases) costing their manifest PUT. The copies share a
 *     {@link copy.SharedCopyState}: a layer two images share is moved once, whichever copy gets to it
 *     first. A tag is copied by the digest the HEAD saw: one that moves meanwhile gets what was listed.
 *
 * A tag's own trouble (the destination tag holds another image and `overwrite` is off, the platform
 * is missing, a schema 1 or otherwise refused manifest, the tag deleted since the listing) is recorded
 * against that tag and the others go on; anything that would fail every tag (authentication, an
 * unreachable registry, cancellation) ends the run, with a {@link RepositoryCopyError} that says which
 * tag it hit and what was done before. Destination tags the source lacks are left alone: nothing is
 * ever deleted.
 * @module
 */
import { AbortedError, copy, InvalidArgumentError, mapBounded, name, NotFoundError, RegistryError, SlipwayError, type Descriptor, type ManifestBytes, type remote } from '@slipway/oci';
import { createClient, type AccessOptions } from './access.js';
import { checkOptions } from './check-options.js';
import { copyToRegistry, type CopyImageOptions } from './copy-image.js';
import { listRepositoryTags } from './inspect.js';
import { noStats, sumStats } from './stats.js';

export interface CopyRepositoryOptions extends AccessOptions {
  /** `registry/repository` (`docker://` tolerated), no tag or digest. */
  source: string;
  /** `registry/repository`, no tag or digest: each tag keeps its name. */
  destination: string;
  /**
   * Only the tags this JavaScript regular expression matches whole (`v1\.\d+` matches `v1.2`, not
   * `v1.2-rc`); a leading `(?i)`, as RE2 and skopeo sync write it, makes it case-insensitive.
   * @defaultValue every tag
   */
  tagPattern?: string;
  /** As for copyImage, applied to every tag: a tag without one of them fails alone. */
  platforms?: string | readonly string[];
  /** Replace a different image at a destination tag; otherwise the tag is kept and reported. @defaultValue false */
  overwrite?: boolean;
  /** As for copyImage: also copy foreign (non-distributable) layers, from the source. @defaultValue false */
  includeNondistributable?: boolean;
  /**
   * Images copied at once, parallel transfers within each, parallel tags of one image once it is
   * stored (a manifest PUT each), and parallel HEADs while comparing tags. @defaultValue 4
   */
  jobs?: number | undefined;
  /** Also copy each copied image's referrers (see copyImage). */
  referrers?: boolean;
  onProgress?: (event: CopyRepositoryEvent) => void;
}

/** What became of one tag. */
export interface CopiedTag {
  tag: string;
  /**
   * `copied`: the destination tag holds `digest` now. `unchanged`: it held it already. `kept`: it
   * holds `held`, another image, and `overwrite` was off. `failed`: see `error`.
   */
  outcome: 'copied' | 'unchanged' | 'kept' | 'failed';
  /** What the destination tag holds now (copied, unchanged), or what the source's was (kept, and failed when known). */
  digest?: string;
  /** `registry/repository:tag@digest` at the destination (copied, unchanged). */
  reference?: string;
  held?: string;
  error?: { code: string; message: string };
  stats: copy.CopyStats;
}

export type CopyRepositoryEvent =
  /** Once the listing and comparison are done: how many tags need a copy. */
  | { type: 'tags'; listed: number; matched: number; unchanged: number; failed: number; toCopy: number }
  | { type: 'tag-start'; tag: string }
  /** `done` of `total` tags to copy are finished. */
  | { type: 'tag-done'; result: CopiedTag; done: number; total: number }
  /** A blob or manifest event of one tag's copy (several tags are copied at once). */
  | { type: 'copy'; tag: string; event: copy.CopyEvent };

export interface CopyRepositoryResult {
  /** `registry/repository`, normalised. */
  source: string;
  destination: string;
  /** Every tag the pattern matched, in the source's order (none: the repository has no tags, or none matched). */
  tags: CopiedTag[];
  /** How many tags the source lists, before the pattern. */
  listed: number;
  stats: copy.CopyStats;
}

/**
 * What ended a repository copy (authentication, the network, cancellation: the code is the cause's),
 * with the tag it was copying and what the tags finished before had become.
 */
export class RepositoryCopyError extends SlipwayError {
  /** A registry's 404 (NAME_UNKNOWN: the destination repository does not exist), as RegistryError says it. */
  readonly notFound: boolean;

  constructor(
    /** The tag being copied or compared when it happened, if one was. */
    readonly tag: string | undefined,
    /** The tags finished before the run ended; the others are left out. */
    readonly partial: CopyRepositoryResult,
    cause: SlipwayError,
  ) {
    const done = partial.tags.length;
    super(cause.code, `${tag === undefined ? '' : `tag ${tag}: `}${cause.message} (copying ${partial.source} to ${partial.destination}; ${done} ${done === 1 ? 'tag' : 'tags'} done before)`, { cause });
    this.notFound = (cause as { notFound?: unknown }).notFound === true;
  }
}

/**
 * Codes that say the image itself cannot be copied: its other tags fail the same way without being
 * tried. A registry's refusal (400, 413, 415) may be the tag's (ECR's TAG_INVALID for an immutable
 * tag): the other tags are tried.
 */
const imageCodes = new Set(['SLIPWAY_PLATFORM_MISMATCH', 'SLIPWAY_NOT_FOUND', 'SLIPWAY_UNSUPPORTED_MEDIA_TYPE', 'SLIPWAY_INVALID_MANIFEST', 'SLIPWAY_DIGEST_MISMATCH', 'SLIPWAY_SIZE_MISMATCH']);

/** Codes that concern one tag, not the run: recorded, and the other tags go on. The image's, and the tag's own conflict. */
const perTagCodes = new Set([...imageCodes, 'SLIPWAY_DESTINATION_EXISTS']);

/**
 * A registry refusing this one manifest (MANIFEST_INVALID for a media type it does not take, 413 for
 * its size): the next tag may well go in. 401/403 (every tag would fail), 404 (NAME_UNKNOWN: ECR's
 * destination repository does not exist), 429 and 5xx (retried already) end the run.
 */
function isPerTag(err: unknown): err is SlipwayError {
  if (RegistryError.is(err)) return err.status === 400 || err.status === 413 || err.status === 415;
  return SlipwayError.is(err) && perTagCodes.has(err.code);
}

const repositoryFields = {
  source: 'string',
  destination: 'string',
  tagPattern: 'string?',
  platforms: 'platforms?',
  overwrite: 'boolean?',
  includeNondistributable: 'boolean?',
  jobs: 'count?',
  referrers: 'boolean?',
  onProgress: 'function?',
} as const;

/** Copies the tags of one repository to another; see the module comment. */
export async function copyRepository(options: CopyRepositoryOptions): Promise<CopyRepositoryResult> {
  checkOptions('copyRepository', options, repositoryFields);
  const jobs = options.jobs ?? copy.defaultJobs;
  if (!Number.isSafeInteger(jobs) || jobs < 1 || jobs > 256) throw new InvalidArgumentError(`jobs must be an integer from 1 to 256, got ${jobs}`);
  const source = parseRepositoryOption('source', options.source);
  const destination = parseRepositoryOption('destination', options.destination);
  const pattern = options.tagPattern === undefined ? undefined : compileTagPattern(options.tagPattern);
  const client = createClient(options);
  try {
    return await new RepositoryCopy(options, { client, source, destination, pattern, jobs }).run();
  } finally {
    await client.close();
  }
}

function parseRepositoryOption(what: 'source' | 'destination', text: string): name.Repository {
  const trimmed = text.trim().replace(/^docker:\/\//, '');
  const local = /^(oci|oci-archive|docker-archive|docker-daemon|dir|containers-storage):/.exec(trimmed)?.[1];
  if (local !== undefined) {
    throw new InvalidArgumentError(`${what} "${trimmed}" is a local place (${local}:); a repository copy goes from registry to registry (copy one image at a time to a local place)`, {
      code: 'SLIPWAY_INVALID_REFERENCE',
    });
  }
  try {
    return name.parseRepository(trimmed);
  } catch (err) {
    if (name.isReference(trimmed)) {
      // `repo:1.0` or `repo@sha256:…` parses as a reference: say what is wrong with it for this op.
      throw new InvalidArgumentError(`${what} "${name.redactUserinfo(trimmed)}": a repository copy takes registry/repository, without tag or digest (each tag keeps its name)`, {
        code: 'SLIPWAY_INVALID_REFERENCE',
      });
    }
    throw err;
  }
}

/**
 * `pattern` anchored at both ends, so that it matches whole tags. A JavaScript regular expression
 * (without the `u` flag, so that `\-` means `-` as in RE2); a leading `(?i)`, which JavaScript lacks
 * and RE2 (skopeo sync, regsync) writes, becomes the `i` flag.
 */
export function compileTagPattern(pattern: string): RegExp {
  // An unset shell variable (`--tag-regex "$TAGS"`) would match no tag and copy nothing, quietly.
  if (pattern.trim() === '') throw new InvalidArgumentError('tag pattern is empty: give an expression, or copy every tag without one');
  const caseless = pattern.startsWith('(?i)');
  const body = caseless ? pattern.slice(4) : pattern;
  // `[[:digit:]]` is valid JavaScript that means something else (one of `[:digt` then `]`): refused
  // rather than quietly matching nothing.
  const posix = /\[\[:[a-z]+:\]\]/.exec(body)?.[0];
  if (posix !== undefined) throw new InvalidArgumentError(`tag pattern ${JSON.stringify(pattern)}: POSIX classes such as ${posix} are not JavaScript regular expressions; write [0-9], [a-z] and the like`);
  try {
    return new RegExp(`^(?:${body})$`, caseless ? 'i' : '');
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/^Invalid regular expression: /, '') : String(err);
    throw new InvalidArgumentError(`tag pattern ${JSON.stringify(pattern)} is not a JavaScript regular expression: ${why}`, { cause: err });
  }
}

/** A tag to copy, with the source digest its HEAD found (none: read by tag, as with a platform filter). */
interface Pending {
  tag: string;
  digest?: string;
  /** What the destination's HEAD found at the tag (null: nothing); absent when not asked. */
  held?: Descriptor | null;
}

interface RunParts {
  client: remote.RegistryClient;
  source: name.Repository;
  destination: name.Repository;
  pattern: RegExp | undefined;
  jobs: number;
}

/** An error that ends the run, with the tag it happened on (never leaves this module: run() unwraps it). */
class Fatal extends Error {
  constructor(
    readonly tag: string | undefined,
    readonly error: unknown,
  ) {
    super(`tag ${tag ?? '?'}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

class RepositoryCopy {
  readonly #results = new Map<string, CopiedTag>();
  readonly #shared = copy.sharedCopyState();
  #listed = 0;
  #matched: string[] = [];
  #done = 0;
  #toCopy = 0;

  constructor(
    private readonly options: CopyRepositoryOptions,
    private readonly parts: RunParts,
  ) {}

  async run(): Promise<CopyRepositoryResult> {
    try {
      const listed = await listRepositoryTags(this.parts.client, this.parts.source, this.options.signal);
      this.#listed = listed.length;
      this.#matched = this.parts.pattern ? listed.filter((tag) => this.parts.pattern!.test(tag)) : listed;
      // No tag, or none matching yet (a mirror of `v2\..*` scheduled before the first v2): an empty
      // result, not an error; a repository that does not exist is one (NotFoundError above).
      if (this.#matched.length === 0) return this.#result();
      const pending = await this.#compare(this.#matched);
      this.#toCopy = pending.length;
      const counts = countOutcomes([...this.#results.values()]);
      this.options.onProgress?.({ type: 'tags', listed: this.#listed, matched: this.#matched.length, unchanged: counts.unchanged, failed: counts.failed, toCopy: pending.length });
      // The first error that ends the run aborts the signal the other groups' copies listen to, and is
      // thrown once they have all settled: nothing is left sending requests through a closed client.
      await mapBounded(groupByDigest(pending), this.parts.jobs, (group, _, signal) => this.#copyGroup(group, signal), this.options.signal);
      return this.#result();
    } catch (err) {
      const fatal = err instanceof Fatal ? err : new Fatal(undefined, err);
      const cause = this.options.signal?.aborted && !AbortedError.is(fatal.error) ? new AbortedError('aborted', { cause: this.options.signal.reason }) : fatal.error;
      if (!SlipwayError.is(cause)) throw cause;
      throw new RepositoryCopyError(fatal.tag, this.#result(), cause);
    }
  }

  /** The tags finished so far, in the source's order. */
  #result(): CopyRepositoryResult {
    const tags = this.#matched.flatMap((tag) => this.#results.get(tag) ?? []);
    return {
      source: this.parts.source.toString(),
      destination: this.parts.destination.toString(),
      tags,
      listed: this.#listed,
      stats: tags.reduce((sum, t) => sumStats(sum, t.stats), { ...noStats }),
    };
  }

  /**
   * HEADs each tag at both ends, `jobs` at a time; records the unchanged ones (and those that cannot
   * be read) and returns the rest, in the listing's order. Skipped with a platform filter (the
   * destination holds a child or a new index, known only from the source's index) and with referrers
   * (an unchanged image may have new ones): every tag then goes through the copy, whose own no-op
   * check costs two requests.
   */
  async #compare(tags: readonly string[]): Promise<Pending[]> {
    const platforms = this.options.platforms;
    const filtered = platforms !== undefined && (typeof platforms === 'string' ? platforms.trim() !== '' : platforms.length > 0);
    if (filtered || this.options.referrers) return tags.map((tag) => ({ tag }));
    const { client, source, destination } = this.parts;
    const found = new Map<string, Pending>();
    await mapBounded(tags, this.parts.jobs, async (tag, _, signal) => {
      let wanted: Descriptor | undefined;
      let held: Descriptor | undefined;
      try {
        [wanted, held] = await Promise.all([client.head(`${source.name}:${tag}`, { signal }), client.head(`${destination.name}:${tag}`, { signal })]);
      } catch (err) {
        // A HEAD already refuses a schema 1 manifest by its media type.
        if (signal.aborted || !isPerTag(err)) throw new Fatal(tag, err);
        this.#results.set(tag, failed(tag, err));
        return;
      }
      if (wanted === undefined) {
        this.#results.set(tag, failed(tag, new NotFoundError(`tag ${tag} was listed at ${source.toString()} and is gone (deleted since the listing)`)));
      } else if (held?.digest === wanted.digest) {
        this.#shared.present.add(wanted.digest);
        this.#results.set(tag, { tag, outcome: 'unchanged', digest: wanted.digest, reference: `${destination.name}:${tag}@${wanted.digest}`, stats: { ...noStats } });
      } else {
        found.set(tag, { tag, digest: wanted.digest, held: held ?? null });
      }
    }, this.options.signal);
    return tags.flatMap((tag) => found.get(tag) ?? []);
  }

  /**
   * The tags of one source digest: its root read once, the first tag's copy walking the image, then
   * the others' side by side (up to `jobs`), each costing its manifest PUT. What fails the first for
   * its image (not for its tag) fails the others too, without asking again.
   */
  async #copyGroup(group: readonly Pending[], signal: AbortSignal): Promise<void> {
    const lead = group[0]!;
    let root: ManifestBytes | undefined;
    if (lead.digest !== undefined) {
      try {
        root = await this.parts.client.getManifest(`${this.parts.source.name}@${lead.digest}`, { signal });
      } catch (err) {
        if (signal.aborted || !isPerTag(err)) throw new Fatal(lead.tag, err);
        for (const item of group) this.#finish(failed(item.tag, err, item.digest));
        return;
      }
    }
    // Until one tag's copy has stored the image (a tag kept at the first look stored nothing), the
    // tags go one at a time: side by side they would all walk the image.
    let index = 0;
    let first: CopiedTag;
    do {
      first = await this.#copyTag(group[index]!, root, signal);
      this.#finish(first);
      index += 1;
    } while (first.outcome === 'kept' && index < group.length);
    const rest = group.slice(index);
    if (first.outcome === 'failed' && first.error && imageCodes.has(first.error.code)) {
      const { code, message } = first.error;
      for (const item of rest) {
        this.#finish({ tag: item.tag, outcome: 'failed', ...(item.digest === undefined ? {} : { digest: item.digest }), error: { code, message: `the same image as tag ${first.tag}: ${message}` }, stats: { ...noStats } });
      }
      return;
    }
    // The image is stored now: each other tag is a manifest PUT and its tag checks, side by side.
    // An alias's error that ends the run reaches the groups' mapBounded once the other aliases have
    // settled, and only then aborts the other groups: it is the run's first error, not their aborts.
    await mapBounded(rest, this.parts.jobs, async (item, _, inner) => this.#finish(await this.#copyTag(item, root, inner)), signal);
  }

  #finish(result: CopiedTag): void {
    this.#results.set(result.tag, result);
    this.#done += 1;
    this.options.onProgress?.({ type: 'tag-done', result, done: this.#done, total: this.#toCopy });
  }

  async #copyTag(item: Pending, root: ManifestBytes | undefined, signal: AbortSignal): Promise<CopiedTag> {
    const { tag } = item;
    const { source, destination, client } = this.parts;
    const listener = this.options.onProgress;
    const options: CopyImageOptions = {
      source: `${source.name}:${tag}${item.digest === undefined ? '' : `@${item.digest}`}`,
      destination: `${destination.name}:${tag}`,
      ...(this.options.platforms === undefined ? {} : { platforms: this.options.platforms }),
      ...(this.options.overwrite === undefined ? {} : { overwrite: this.options.overwrite }),
      ...(this.options.includeNondistributable === undefined ? {} : { includeNondistributable: this.options.includeNondistributable }),
      jobs: this.parts.jobs,
      ...(this.options.referrers === undefined ? {} : { referrers: this.options.referrers }),
      ...(listener ? { onProgress: (event: copy.CopyEvent) => listener({ type: 'copy', tag, event }) } : {}),
      signal,
    };
    listener?.({ type: 'tag-start', tag });
    try {
      const result = await copyToRegistry(options, name.parseReference(options.destination), client, {
        shared: this.#shared,
        ...(root ? { root } : {}),
        ...(item.held === undefined ? {} : { knownCurrent: item.held }),
      });
      // A tag already holding the image is unchanged even when referrers were written beside it.
      return { tag, outcome: result.noop ? 'unchanged' : 'copied', digest: result.digest, reference: result.reference, stats: result.stats };
    } catch (err) {
      if (signal.aborted || !isPerTag(err)) throw new Fatal(tag, err);
      if (err instanceof copy.DestinationExistsError) return { tag, outcome: 'kept', digest: err.wanted, held: err.existing, stats: { ...noStats } };
      return failed(tag, err, item.digest);
    }
  }
}

/** How many tags had each outcome. */
export function countOutcomes(tags: readonly CopiedTag[]): Record<CopiedTag['outcome'], number> {
  const counts = { copied: 0, unchanged: 0, kept: 0, failed: 0 };
  for (const tag of tags) counts[tag.outcome] += 1;
  return counts;
}

/** Pending tags grouped by source digest, in the order each digest first appears; a tag read by tag alone is a group of its own. */
function groupByDigest(pending: readonly Pending[]): Pending[][] {
  const groups = new Map<string, Pending[]>();
  for (const item of pending) {
    const key = item.digest ?? `tag:${item.tag}`;
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return [...groups.values()];
}

function failed(tag: string, err: SlipwayError, digest?: string): CopiedTag {
  return { tag, outcome: 'failed', ...(digest === undefined ? {} : { digest }), error: { code: err.code, message: err.message }, stats: { ...noStats } };
}
