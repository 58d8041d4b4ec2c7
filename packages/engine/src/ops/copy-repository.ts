/**
 * `copyRepository`: every tag of a registry repository (or those a pattern matches) to another
 * repository, as `crane copy --all-tags` and `skopeo sync` do, for a mirror kept up to date by
 * running it again.
 *
 * Order of work, chosen so a re-run that finds little new costs little:
 *  1. list the source's tags (following pagination) and keep those the pattern matches;
 *  2. without a platform filter (or referrers to follow), HEAD each tag at both ends, `jobs` at a
 *     time: a destination tag that already holds the source's digest is unchanged, and costs nothing
 *     more. HEAD, not GET: Docker Hub does not count HEADs against its pull limit;
 *  3. copy the other tags one after the other, each with `jobs` parallel transfers, by the digest the
 *     HEAD saw (a tag that moves meanwhile is copied as it was listed, and says so). One after the
 *     other because tags share layers: the second tag finds its base layers present (one HEAD each)
 *     instead of a parallel copy uploading them a second time.
 *
 * A tag's own trouble (the destination tag holds another image and `overwrite` is off, the platform
 * is missing, a schema 1 or otherwise refused manifest, the tag deleted since the listing) is recorded
 * against that tag and the next one goes on; anything that would fail every tag (authentication, an
 * unreachable registry, cancellation) ends the run. Destination tags the source lacks are left alone:
 * nothing is ever deleted.
 * @module
 */
import { AbortedError, copy, InvalidArgumentError, linkSignals, name, NotFoundError, RegistryError, SlipwayError, throwIfAborted, type Descriptor, type remote } from '@slipway/oci';
import { createClient, type AccessOptions } from './access.js';
import { checkOptions } from './check-options.js';
import { copyToRegistry, type CopyImageOptions } from './copy-image.js';
import { noStats, sumStats } from './stats.js';

export interface CopyRepositoryOptions extends AccessOptions {
  /** `registry/repository` (`docker://` tolerated), no tag or digest. */
  source: string;
  /** `registry/repository`, no tag or digest: each tag keeps its name. */
  destination: string;
  /**
   * Only the tags this regular expression matches whole (`v1\.\d+` matches `v1.2`, not `v1.2-rc`).
   * @defaultValue every tag
   */
  tagPattern?: string;
  /** As for copyImage, applied to every tag: a tag without one of them fails alone. */
  platforms?: string | readonly string[];
  /** Replace a different image at a destination tag; otherwise the tag is kept and reported. @defaultValue false */
  overwrite?: boolean;
  /** Parallel transfers within a tag's copy, and parallel HEADs while comparing tags. @defaultValue 4 */
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
  /** The tags to copy, once the listing and comparison are done: `unchanged` of the listed ones need nothing. */
  | { type: 'tags'; listed: number; matched: number; unchanged: number; toCopy: number }
  | { type: 'tag-start'; tag: string; index: number; total: number }
  | { type: 'tag-done'; result: CopiedTag; index: number; total: number }
  /** A blob or manifest event of the tag being copied. */
  | copy.CopyEvent;

export interface CopyRepositoryResult {
  /** `registry/repository`, normalised. */
  source: string;
  destination: string;
  /** Every tag the pattern matched, in the source's order. */
  tags: CopiedTag[];
  /** How many tags the source lists, before the pattern. */
  listed: number;
  stats: copy.CopyStats;
}

/** Codes that concern one tag's image, not the run: recorded, and the next tag goes on. */
const perTagCodes = new Set([
  'SLIPWAY_DESTINATION_EXISTS',
  'SLIPWAY_PLATFORM_MISMATCH',
  'SLIPWAY_NOT_FOUND',
  'SLIPWAY_UNSUPPORTED_MEDIA_TYPE',
  'SLIPWAY_INVALID_MANIFEST',
  'SLIPWAY_DIGEST_MISMATCH',
  'SLIPWAY_SIZE_MISMATCH',
]);

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
  jobs: 'count?',
  referrers: 'boolean?',
  onProgress: 'function?',
} as const;

/** Copies the tags of one repository to another; see the module comment. */
export async function copyRepository(options: CopyRepositoryOptions): Promise<CopyRepositoryResult> {
  checkOptions('copyRepository', options, repositoryFields);
  const source = parseRepositoryOption('source', options.source);
  const destination = parseRepositoryOption('destination', options.destination);
  const pattern = options.tagPattern === undefined ? undefined : compileTagPattern(options.tagPattern);
  const client = createClient(options);
  try {
    return await new RepositoryCopy(options, client, source, destination, pattern).run();
  } catch (err) {
    if (options.signal?.aborted && !AbortedError.is(err)) throw new AbortedError(`copying ${source} to ${destination}: aborted`, { cause: options.signal.reason });
    throw err;
  } finally {
    await client.close();
  }
}

function parseRepositoryOption(what: 'source' | 'destination', text: string): name.Repository {
  const trimmed = text.trim().replace(/^docker:\/\//, '');
  const local = /^(oci|oci-archive|docker-archive|docker-daemon|dir|containers-storage):/.exec(trimmed)?.[1];
  if (local !== undefined) {
    throw new InvalidArgumentError(`${what} "${trimmed}" is a ${local}: location; a repository copy goes from registry to registry (copy one image at a time to a local place)`, {
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

/** `pattern` anchored at both ends, so that it matches whole tags. */
export function compileTagPattern(pattern: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`, 'u');
  } catch (err) {
    throw new InvalidArgumentError(`tag pattern ${JSON.stringify(pattern)} is not a regular expression: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** A tag to copy, with the source digest its HEAD found (none: copied by tag, as with a platform filter). */
interface Pending {
  tag: string;
  digest?: string;
}

class RepositoryCopy {
  readonly #call: { signal?: AbortSignal };
  /** Manifests the destination holds whole, seen by this run: a tag naming one again is written without a walk. */
  readonly #present = new Set<string>();

  constructor(
    private readonly options: CopyRepositoryOptions,
    private readonly client: remote.RegistryClient,
    private readonly source: name.Repository,
    private readonly destination: name.Repository,
    private readonly pattern: RegExp | undefined,
  ) {
    this.#call = options.signal ? { signal: options.signal } : {};
  }

  async run(): Promise<CopyRepositoryResult> {
    const listed = await this.listSourceTags();
    const matched = this.pattern ? listed.filter((tag) => this.pattern!.test(tag)) : listed;
    if (matched.length === 0) {
      const why = listed.length === 0 ? 'has no tags' : `has no tag matching ${JSON.stringify(this.options.tagPattern)} (${listed.length} listed)`;
      throw new NotFoundError(`repository ${this.source.toString()} ${why}`);
    }
    const results = new Map<string, CopiedTag>();
    const pending = await this.compare(matched, results);
    this.options.onProgress?.({ type: 'tags', listed: listed.length, matched: matched.length, unchanged: results.size, toCopy: pending.length });
    for (const [index, item] of pending.entries()) {
      throwIfAborted(this.options.signal);
      this.options.onProgress?.({ type: 'tag-start', tag: item.tag, index, total: pending.length });
      const result = await this.copyTag(item);
      results.set(item.tag, result);
      this.options.onProgress?.({ type: 'tag-done', result, index, total: pending.length });
    }
    const tags = matched.map((tag) => results.get(tag)!);
    return {
      source: this.source.toString(),
      destination: this.destination.toString(),
      tags,
      listed: listed.length,
      stats: tags.reduce((sum, t) => sumStats(sum, t.stats), { ...noStats }),
    };
  }

  async listSourceTags(): Promise<string[]> {
    try {
      return await this.client.listTags(this.source, this.#call);
    } catch (err) {
      if (RegistryError.is(err) && err.notFound) throw new NotFoundError(`repository ${this.source.toString()} not found: ${err.message}`, { cause: err });
      throw err;
    }
  }

  /**
   * HEADs each tag at both ends, `jobs` at a time; records the unchanged ones in `results` and
   * returns the rest, in the listing's order. Skipped with a platform filter (the destination holds a
   * child or a new index, known only from the source's index) and with referrers (an unchanged image
   * may have new ones): every tag then goes through the copy, whose own no-op check costs two requests.
   */
  async compare(tags: readonly string[], results: Map<string, CopiedTag>): Promise<Pending[]> {
    const platforms = this.options.platforms;
    const filtered = platforms !== undefined && (typeof platforms === 'string' ? platforms.trim() !== '' : platforms.length > 0);
    if (filtered || this.options.referrers) return tags.map((tag) => ({ tag }));
    const found = new Map<string, Pending>();
    // The first failure stops the other workers' requests at once. The composite signal also takes
    // the listeners of all those requests (2 × jobs): the caller's signal gets one.
    const stop = new AbortController();
    const linked = linkSignals(this.options.signal, stop.signal);
    const call = linked.signal ? { signal: linked.signal } : {};
    let failure: { error: unknown } | undefined;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < tags.length && !failure) {
        const tag = tags[next++]!;
        let wanted: Descriptor | undefined;
        let held: Descriptor | undefined;
        try {
          [wanted, held] = await Promise.all([this.client.head(`${this.source.name}:${tag}`, call), this.client.head(`${this.destination.name}:${tag}`, call)]);
        } catch (err) {
          // A HEAD already refuses a schema 1 manifest by its media type.
          if (stop.signal.aborted || this.options.signal?.aborted || !isPerTag(err)) throw err;
          results.set(tag, failed(tag, err));
          continue;
        }
        if (wanted === undefined) {
          // Listed a moment ago, gone now (deleted meanwhile): the copy by tag says so in its words.
          found.set(tag, { tag });
        } else if (held?.digest === wanted.digest) {
          this.#present.add(wanted.digest);
          results.set(tag, unchanged(this.destination, tag, wanted.digest));
        } else {
          found.set(tag, { tag, digest: wanted.digest });
        }
      }
    };
    const workers = Math.min(this.options.jobs ?? copy.defaultJobs, tags.length);
    try {
      // Every worker settled before the first error is thrown: none is left sending HEADs through a
      // client the caller is about to close.
      await Promise.all(
        Array.from({ length: workers }, () =>
          worker().catch((err: unknown) => {
            failure ??= { error: err };
            stop.abort(err);
          }),
        ),
      );
    } finally {
      linked.dispose();
    }
    if (failure) throw failure.error;
    return tags.filter((tag) => found.has(tag)).map((tag) => found.get(tag)!);
  }

  async copyTag(item: Pending): Promise<CopiedTag> {
    const { tag } = item;
    const options: CopyImageOptions = {
      source: `${this.source.name}:${tag}${item.digest === undefined ? '' : `@${item.digest}`}`,
      destination: `${this.destination.name}:${tag}`,
      ...(this.options.platforms === undefined ? {} : { platforms: this.options.platforms }),
      ...(this.options.overwrite === undefined ? {} : { overwrite: this.options.overwrite }),
      ...(this.options.jobs === undefined ? {} : { jobs: this.options.jobs }),
      ...(this.options.referrers === undefined ? {} : { referrers: this.options.referrers }),
      ...(this.options.onProgress ? { onProgress: this.options.onProgress } : {}),
      ...(this.options.signal ? { signal: this.options.signal } : {}),
    };
    try {
      const result = await copyToRegistry(options, name.parseReference(options.destination), this.client, { present: this.#present });
      this.#present.add(result.digest);
      return {
        tag,
        // A tag already holding the image is unchanged even when referrers were written beside it.
        outcome: result.noop ? 'unchanged' : 'copied',
        digest: result.digest,
        reference: result.reference,
        stats: result.stats,
      };
    } catch (err) {
      if (this.options.signal?.aborted || !isPerTag(err)) throw err;
      if (err instanceof copy.DestinationExistsError) {
        return { tag, outcome: 'kept', digest: err.wanted, held: err.existing, stats: { ...noStats } };
      }
      return failed(tag, err, item.digest);
    }
  }
}

function failed(tag: string, err: SlipwayError, digest?: string): CopiedTag {
  return { tag, outcome: 'failed', ...(digest === undefined ? {} : { digest }), error: { code: err.code, message: err.message }, stats: { ...noStats } };
}

function unchanged(destination: name.Repository, tag: string, digest: string): CopiedTag {
  return { tag, outcome: 'unchanged', digest, reference: `${destination.name}:${tag}@${digest}`, stats: { ...noStats } };
}
