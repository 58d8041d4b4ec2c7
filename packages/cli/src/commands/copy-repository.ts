/**
 * `slipway copy --all-tags SOURCE DESTINATION` (or `--tag-regex RE`): every tag of a repository, or
 * those the expression matches, to another repository.
 * @module
 */
import { copyRepository, type CopiedTag, type CopyRepositoryEvent, type CopyRepositoryResult } from '@slipway/engine';
import { InvalidArgumentError } from '@slipway/oci';
import { ExitCode } from '../command.js';
import type { CommandContext, CommandOutput } from '../define.js';
import { createProgress, formatBytes, plural, type ProgressView } from '../progress.js';
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
  let progress: ProgressView | undefined;
  const onProgress = (event: CopyRepositoryEvent): void => {
    switch (event.type) {
      case 'tags':
        if (!context.quiet) {
          const matched = event.matched === event.listed ? plural(event.listed, 'tag') : `${event.matched} of ${plural(event.listed, 'tag')}`;
          io.stderr.write(`${matched}: ${event.unchanged} already there, ${event.toCopy} to copy\n`);
        }
        return;
      case 'tag-start':
        if (!context.quiet) io.stderr.write(`tag ${event.tag} (${event.index + 1}/${event.total})\n`);
        progress = createProgress(io, { quiet: context.quiet });
        return;
      case 'tag-done':
        progress?.finish();
        progress = undefined;
        return;
      default:
        progress?.onProgress(event);
    }
  };
  let result: CopyRepositoryResult;
  try {
    result = await copyRepository({
      source,
      destination,
      ...transferOptions(context, destination, onProgress),
      onProgress,
      ...(typeof tagRegex === 'string' ? { tagPattern: tagRegex } : {}),
      referrers: context.values.referrers === true,
    });
  } finally {
    progress?.finish();
  }
  // After the run, all together, --quiet too: these explain the exit code (some are found while
  // comparing, before any copy starts).
  for (const tag of result.tags) if (tag.outcome === 'kept' || tag.outcome === 'failed') io.stderr.write(`slipway: ${problemLine(tag)}\n`);
  if (!context.quiet) io.stderr.write(summary(result) + '\n');
  const count = (outcome: CopiedTag['outcome']) => result.tags.filter((t) => t.outcome === outcome).length;
  const exitCode = count('failed') > 0 ? ExitCode.Failure : count('kept') > 0 ? ExitCode.Conflict : ExitCode.Ok;
  return {
    json: result,
    // What the destination holds from this run, one pinned reference per line (as a single copy prints).
    text: result.tags.flatMap((t) => (t.reference === undefined ? [] : [t.reference])).join('\n'),
    exitCode,
  };
}

function problemLine(tag: CopiedTag): string {
  if (tag.outcome === 'kept') return `tag ${tag.tag} kept: the destination holds ${tag.held ?? '?'}, not the source's ${tag.digest ?? '?'} (--overwrite replaces it)`;
  return `tag ${tag.tag} failed: ${tag.error?.message ?? 'unknown error'} (${tag.error?.code ?? '?'})`;
}

function summary(result: CopyRepositoryResult): string {
  const count = (outcome: CopiedTag['outcome']) => result.tags.filter((t) => t.outcome === outcome).length;
  const s = result.stats;
  return (
    `${plural(result.tags.length, 'tag')}: ${count('copied')} copied, ${count('unchanged')} unchanged, ${count('kept')} kept, ${count('failed')} failed; ` +
    `${plural(s.blobsCopied, 'blob')} copied (${formatBytes(s.bytesCopied)}), ${s.blobsSkipped} already there, ${s.blobsMounted} mounted, ${plural(s.manifestsPut, 'manifest')} written`
  );
}
