/**
 * Pieces the registry commands share: progress around a copy, the copy/push result printout, where
 * environment credentials go, and archives that come through stdin or go to stdout/stderr.
 * @module
 */
import type { Readable, Writable } from 'node:stream';
import { parseDestination, parseSourceSpec, type CopyImageResult, type SourceSpec } from '@slipway/engine';
import { InvalidArgumentError, name, parsePlatform, type copy } from '@slipway/oci';
import { integerFlag, listFlag, UsageError, type CommandContext, type CommandOutput } from '../define.js';
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

/**
 * The registry SLIPWAY_REGISTRY_* credentials are for when no address is given: the one a copy or push
 * DESTINATION names, never its source's, so a registry-to-registry copy does not hand them to the
 * other side; for a local destination (oci:, docker-archive:, …), the source's (`sourceRegistry`),
 * the only registry the copy talks to, as the help text says.
 */
function credentialTarget(destination: string, sourceRegistry: string | undefined): string | undefined {
  try {
    const spec = parseDestination(destination);
    return spec.kind === 'registry' ? spec.reference.registry : sourceRegistry;
  } catch {
    return undefined;
  }
}

/** A result's warnings on stderr, one line each (not with --quiet). */
export function printWarnings(context: CommandContext, warnings: readonly string[] | undefined): void {
  if (!context.quiet) for (const warning of warnings ?? []) context.io.stderr.write(`slipway: warning: ${warning}\n`);
}

/** What SOURCE names, or undefined when it does not parse (the engine reports that). */
export async function sourceSpecOf(source: string): Promise<SourceSpec | undefined> {
  // The Unix habit for standard input; here it was a missing file named "-".
  if (source === '-') throw new UsageError('"-" is not standard input here: name it /dev/stdin (docker save app | slipway push /dev/stdin REF)');
  return parseSourceSpec(source).catch(() => undefined);
}

/** The registry a source reads from, when it is a registry reference (undefined for archives, layouts and the daemon). */
export function sourceRegistry(spec: SourceSpec | undefined): string | undefined {
  return spec?.kind === 'registry' ? name.parseReference(spec.reference).registry : undefined;
}

/**
 * The source as a stream when it is an archive coming through standard input (`docker save app |
 * slipway push /dev/stdin …`): read through process.stdin, since a Node parent's pipe is a socket
 * that opening /dev/stdin cannot reach (ENXIO).
 */
export async function archiveFromStdin(context: CommandContext, source: string, spec: SourceSpec | undefined): Promise<{ sourceStream?: Readable }> {
  if (spec?.kind !== 'archive' && spec?.kind !== 'docker-archive' && spec?.kind !== 'oci-archive') return {};
  const at = await context.io.stdioAt?.(spec.path);
  if (at?.stdin !== true) return {};
  // `< app.tar` is a file, read in place by its path (random access, its cache identity); only a
  // pipe, socket or device is read as a stream.
  if (!(at.info.isFIFO() || at.info.isSocket() || at.info.isCharacterDevice())) return {};
  const stdin = context.io.stdin;
  if (stdin === undefined) return {};
  if ((stdin as { isTTY?: boolean }).isTTY === true) throw new InvalidArgumentError(`source "${source}" is standard input, which is a terminal: pipe the archive in (docker save app | slipway push /dev/stdin …)`);
  return { sourceStream: stdin };
}

/**
 * When DESTINATION is an archive written where the command's own output goes (`docker-archive:/dev/stdout
 * | docker load`, `2>&1` too): that output moves out of the archive's way (the result to stderr,
 * progress off), and the archive is written through the process's stream, since a Node parent's
 * pipe is a socket that opening /dev/stdout cannot reach (ENXIO).
 */
export async function archiveOnStdio(context: CommandContext, destination: string): Promise<{ destinationStream?: Writable }> {
  let spec: ReturnType<typeof parseDestination>;
  try {
    spec = parseDestination(destination);
  } catch {
    return {}; // the engine reports it
  }
  if (spec.kind !== 'oci-archive' && spec.kind !== 'docker-archive') return {};
  const { io } = context;
  const at = await io.stdioAt?.(spec.path);
  if (at === undefined) return {};
  const { info, stdout: toStdout, stderr: toStderr } = at;
  // `… | slipway copy REF oci-archive:/dev/stdin`: the write end of its own input, which nobody reads
  // (a device such as /dev/null, stdin under cron or CI, is no such trap).
  if (at.stdin && !toStdout && !toStderr && (info.isFIFO() || info.isSocket())) {
    throw new InvalidArgumentError(`destination "${destination}" is standard input: name a file, or /dev/stdout`);
  }
  if (!toStdout && !toStderr) return {};
  // `… docker-archive:/dev/stdout >&-`: Node reopened the closed stream onto /dev/null, where the
  // archive would vanish with exit 0 (skopeo fails there with EBADF). Naming /dev/null itself is a choice.
  if (at.closedAtStart) {
    throw new InvalidArgumentError(
      `destination "${destination}" is a standard stream that is /dev/null opened read-write, as Node leaves one that was closed when slipway started (>&-): nothing would receive the archive`,
    );
  }
  // As gzip does: a tar on a terminal is garbage on the screen and no archive anywhere.
  if ((toStdout && io.stdout.isTTY === true) || (toStderr && io.stderr.isTTY === true)) {
    throw new InvalidArgumentError(`destination "${destination}" is a terminal: redirect it to a file or pipe it (| docker load)`);
  }
  if (toStdout) context.stdoutCarriesPayload();
  if (toStderr) context.stderrCarriesPayload();
  // `>> app.tar` onto an archive: compared and refused (or replaced with --overwrite) like any file
  // there, never appended to.
  if (info.isFile() && info.size > 0) return {};
  return { destinationStream: toStdout ? io.stdout : io.stderr };
}

/**
 * The options copy and push take from the same flags: --platform, --overwrite, --jobs, --insecure,
 * cancellation, and environment credentials for DESTINATION's registry (for a local destination,
 * `readsFrom`, the source's; see credentialTarget).
 */
export function transferOptions(context: CommandContext, destination: string, onProgress: (event: copy.CopyEvent) => void, readsFrom?: string) {
  return {
    platforms: platformFlag(context),
    overwrite: context.values.overwrite === true,
    jobs: integerFlag(context.values, 'jobs'),
    onProgress,
    registries: context.registries(credentialTarget(destination, readsFrom)),
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
  printWarnings(context, result.warnings);
  if (!context.quiet && result.sinkPlatform !== undefined) {
    context.io.stderr.write(`slipway: ${result.source} is an index: took its ${result.sinkPlatform} image, the platform ${result.destination} runs (--platform picks another)\n`);
  }
  return result;
}

function summary(result: CopyImageResult): string {
  if (result.noop) {
    // The image was there; referrers or digest tags may still have been written (stats count them).
    const written = result.stats.manifestsPut;
    // A destination named by its digest already says which.
    const holds = result.destination.endsWith(`@${result.digest}`) ? `${result.destination} is already there` : `${result.destination} already holds ${result.digest}`;
    if (written === 0) return `${holds}: nothing to copy`;
    return `${holds}; wrote ${plural(written, 'manifest')} of its referrers or digest tags`;
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
      ...(result.sinkPlatform === undefined ? {} : { sinkPlatform: result.sinkPlatform }),
      warnings: result.warnings,
    },
    text: result.reference,
  };
}
