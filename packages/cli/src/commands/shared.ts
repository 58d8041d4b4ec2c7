/**
 * Pieces the registry commands share: progress around a copy, and the copy/push result printout.
 * @module
 */
import { parseDestination, type CopyImageResult } from '@slipway/engine';
import { InvalidArgumentError, name, parsePlatform, type copy } from '@slipway/oci';
import { integerFlag, listFlag, type CommandContext, type CommandOutput } from '../define.js';
import { createProgress, formatBytes, plural } from '../progress.js';

/**
 * The `--platform` values of copy and push. A value with no platform in it (`--platform "$UNSET"`,
 * `--platform ,`) is refused like any malformed platform rather than read as "all platforms".
 */
export function platformFlag(context: CommandContext): string[] {
  const values = listFlag(context.values, 'platform');
  for (const value of values) if (value.split(',').every((item) => item.trim() === '')) parsePlatform(value);
  return values;
}

/** The registry a reference names, or undefined when it does not parse (the engine reports that). */
export function destinationRegistry(text: string): string | undefined {
  try {
    return name.parseReference(text.replace(/^docker:\/\//, '')).registry;
  } catch {
    return undefined;
  }
}

/** The registry a copy or push DESTINATION names; none for a local one (oci:, docker-archive:, …), so credentials given for the destination go nowhere. */
function copyDestinationRegistry(text: string): string | undefined {
  try {
    const spec = parseDestination(text);
    return spec.kind === 'registry' ? spec.reference.registry : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether DESTINATION is an archive written to standard output (`docker-archive:/dev/stdout`, piped
 * or redirected); the command's own output then moves to stderr: the archive is the payload.
 */
export async function archiveOnStdout(context: CommandContext, destination: string): Promise<boolean> {
  let spec: ReturnType<typeof parseDestination>;
  try {
    spec = parseDestination(destination);
  } catch {
    return false; // the engine reports it
  }
  if ((spec.kind !== 'oci-archive' && spec.kind !== 'docker-archive') || !(await context.io.isStdout?.(spec.path))) return false;
  // As gzip does: a tar on a terminal is garbage on the screen and no archive anywhere.
  if (context.io.stdout.isTTY === true) throw new InvalidArgumentError(`destination "${destination}" is standard output, which is a terminal: redirect it to a file or pipe it (| docker load)`);
  context.stdoutCarriesPayload();
  return true;
}

/**
 * The options copy and push take from the same flags: --platform, --overwrite, --jobs, credentials
 * and --insecure for DESTINATION's registry, and cancellation.
 */
export function transferOptions(context: CommandContext, destination: string, onProgress: (event: copy.CopyEvent) => void) {
  return {
    platforms: platformFlag(context),
    overwrite: context.values.overwrite === true,
    jobs: integerFlag(context.values, 'jobs'),
    onProgress,
    registries: context.registries(copyDestinationRegistry(destination)),
    insecure: context.insecure,
    signal: context.io.signal,
  };
}

/** Runs a copy with progress on stderr and a one-line summary after it. */
export async function withProgress(
  context: CommandContext,
  run: (onProgress: (event: copy.CopyEvent) => void) => Promise<CopyImageResult>,
): Promise<CopyImageResult> {
  const progress = createProgress(context.io, { quiet: context.quiet });
  let result: CopyImageResult;
  try {
    result = await run((event) => progress.onProgress(event));
  } finally {
    progress.finish();
  }
  if (!context.quiet) context.io.stderr.write(summary(result) + '\n');
  return result;
}

function summary(result: CopyImageResult): string {
  if (result.noop) {
    // The image was there; referrers or digest tags may still have been written (stats count them).
    const written = result.stats.manifestsPut;
    if (written === 0) return `${result.destination} already holds ${result.digest}: nothing to copy`;
    return `${result.destination} already holds ${result.digest}; wrote ${plural(written, 'manifest')} of its referrers or digest tags`;
  }
  const s = result.stats;
  return (
    `copied ${plural(s.blobsCopied, 'blob')} (${formatBytes(s.bytesCopied)}), ` +
    `${s.blobsSkipped} already there, ${s.blobsMounted} mounted, ${plural(s.manifestsPut, 'manifest')} written`
  );
}

export function copyOutput(result: CopyImageResult): CommandOutput {
  return {
    json: {
      source: result.source,
      destination: result.destination,
      reference: result.reference,
      digest: result.digest,
      mediaType: result.mediaType,
      size: result.size,
      sourceDigest: result.sourceDigest,
      platforms: result.platforms,
      noop: result.noop,
      stats: result.stats,
      referrers: result.referrers,
      digestTags: result.digestTags,
    },
    text: result.reference,
  };
}
