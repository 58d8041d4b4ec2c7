/**
 * `slipway copy --all-tags SOURCE DESTINATION` (or `--tag-regex RE`): every tag of a repository, or
 * those the expression matches, to another repository.
 * @module
 */
import { copyRepository, countOutcomes, RepositoryCopyError, type CopiedTag, type CopyRepositoryEvent, type CopyRepositoryResult } from '@slipway/engine';
import { InvalidArgumentError } from '@slipway/oci';
import { ExitCode } from '../command.js';
import type { CommandContext, CommandOutput } from '../define.js';
import { formatBytes, plural } from '../progress.js';
import { transferOptions } from './shared.js';

export async function runRepositoryCopy(context: CommandContext): Promise<CommandOutput> {
  const [source, destination] = context.args as [string, string];
  if (context.values['digest-tags'] === true) {
    // The digest tags are tags: the repository copy takes them with the rest (a --tag-regex that
    // leaves them out can name them: 'v1\..*|sha256-.*').
    throw new InvalidArgumentError('--all-tags copies the digest tags (sha256-<hex>.sig, .att, .sbom) like any other tag; drop --digest-tags');
  }
  const tagRegex = context.values['tag-regex'];
  const { io } = context;
  // A line per tag as it finishes, not blob bars: several tags are copied at once.
  const onProgress = (event: CopyRepositoryEvent): void => {
    if (context.quiet) return;
    if (event.type === 'tags') {
      const matched = event.matched === event.listed ? plural(event.listed, 'tag') : `${event.matched} of ${plural(event.listed, 'tag')}`;
      const failed = event.failed === 0 ? '' : `, ${event.failed} unreadable`;
      io.stderr.write(`${matched}: ${event.unchanged} unchanged${failed}, ${event.toCopy} to copy\n`);
    } else if (event.type === 'tag-done') {
      io.stderr.write(`[${event.done}/${event.total}] ${tagLine(event.result)}\n`);
    }
  };
  let result: CopyRepositoryResult;
  try {
    result = await copyRepository({
      source,
      destination,
      ...transferOptions(context, destination, () => undefined),
      onProgress,
      ...(typeof tagRegex === 'string' ? { tagPattern: tagRegex } : {}),
      referrers: context.values.referrers === true,
      includeNondistributable: context.values['include-nondistributable'] === true,
    });
  } catch (err) {
    // What was done before the run ended is still what the destination holds: printed, so that a
    // script (or the user after Ctrl-C) knows; with --json the error object carries it (`partial`).
    if (err instanceof RepositoryCopyError && !context.json) {
      const done = references(err.partial);
      if (done !== '') io.stdout.write(done + '\n');
    }
    throw err;
  }
  if (result.tags.length === 0) {
    // A scheduled mirror of tags not pushed yet: nothing to do is no failure.
    const why = result.listed === 0 ? 'has no tags' : `has no tag matching ${JSON.stringify(tagRegex)} (${plural(result.listed, 'tag')} listed)`;
    io.stderr.write(`slipway: ${result.source} ${why}: nothing to copy\n`);
  }
  // After the run, all together, --quiet too: these explain the exit code.
  for (const line of problemLines(result.tags)) io.stderr.write(`slipway: ${line}\n`);
  const count = countOutcomes(result.tags);
  if (!context.quiet) io.stderr.write(summary(result, count) + '\n');
  return {
    json: result,
    // What the destination holds from this run, one pinned reference per line (as a single copy prints).
    text: references(result),
    exitCode: count.failed > 0 ? ExitCode.Failure : count.kept > 0 ? ExitCode.Conflict : ExitCode.Ok,
  };
}

function references(result: CopyRepositoryResult): string {
  return result.tags.flatMap((t) => (t.reference === undefined ? [] : [t.reference])).join('\n');
}

function tagLine(tag: CopiedTag): string {
  switch (tag.outcome) {
    case 'copied': {
      const s = tag.stats;
      const parts = [
        ...(s.blobsCopied > 0 ? [`${plural(s.blobsCopied, 'blob')} copied (${formatBytes(s.bytesCopied)})`] : []),
        ...(s.blobsMounted > 0 ? [`${s.blobsMounted} mounted`] : []),
        ...(s.blobsSkipped > 0 ? [`${s.blobsSkipped} already there`] : []),
      ];
      return `${tag.tag} copied ${tag.digest ?? ''}: ${parts.length === 0 ? 'manifest only' : parts.join(', ')}`;
    }
    case 'unchanged':
      return `${tag.tag} unchanged ${tag.digest ?? ''}`;
    case 'kept':
      return `${tag.tag} kept`;
    case 'failed':
      return `${tag.tag} failed (${tag.error?.code ?? '?'})`;
  }
}

/**
 * One line per problem; tags that failed for the same image (aliases of one digest) share a line,
 * as do tags kept with the same images at both ends.
 */
function problemLines(tags: readonly CopiedTag[]): string[] {
  const groups = new Map<string, { names: string[]; line: (names: string) => string }>();
  for (const tag of tags) {
    if (tag.outcome === 'kept') {
      const key = `kept ${tag.held ?? ''} ${tag.digest ?? ''}`;
      const line = (names: string) => `${names} kept: the destination holds ${tag.held ?? '?'}, not the source's ${tag.digest ?? '?'} (--overwrite replaces it)`;
      add(groups, key, tag.tag, line);
    } else if (tag.outcome === 'failed') {
      const message = (tag.error?.message ?? 'unknown error').replace(/^the same image as tag \S+: /, '');
      // Aliases carry the first tag's message: grouped by image and code, not by wording.
      const key = tag.digest === undefined ? `failed ${tag.tag}` : `failed ${tag.digest} ${tag.error?.code ?? ''}`;
      add(groups, key, tag.tag, (names) => `${names} failed: ${message} (${tag.error?.code ?? '?'})`);
    }
  }
  return [...groups.values()].map(({ names, line }) => line(names.length === 1 ? `tag ${names[0]}` : `tags ${names.join(', ')}`));
}

function add(groups: Map<string, { names: string[]; line: (names: string) => string }>, key: string, name: string, line: (names: string) => string): void {
  const group = groups.get(key);
  if (group) group.names.push(name);
  else groups.set(key, { names: [name], line });
}

function summary(result: CopyRepositoryResult, count: Record<CopiedTag['outcome'], number>): string {
  const s = result.stats;
  return (
    `${plural(result.tags.length, 'tag')}: ${count.copied} copied, ${count.unchanged} unchanged, ${count.kept} kept, ${count.failed} failed; ` +
    `${plural(s.blobsCopied, 'blob')} copied (${formatBytes(s.bytesCopied)}), ${s.blobsSkipped} already there, ${s.blobsMounted} mounted, ${plural(s.manifestsPut, 'manifest')} written`
  );
}
