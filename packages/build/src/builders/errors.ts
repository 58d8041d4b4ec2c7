/**
 * Build failures: one error type carrying the (redacted) tail of the builder's log, so a failure
 * says what broke without a second run (lesson 8 of the research notes; docker-build only dumps the
 * log on failure, pulumi-docker lost it to a scanner limit, #573).
 * @module
 */
import { SlipwayError, type ErrorCode } from '@slipway/oci';
import type { BuilderKind } from './types.js';

export class BuildError extends SlipwayError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly details: {
      builder?: BuilderKind;
      exitCode?: number | null;
      /** Last lines of the builder's output, secrets already removed. */
      logTail?: string[];
      cause?: unknown;
    } = {},
  ) {
    super(code, message, { cause: details.cause });
  }

  get logTail(): string[] {
    return this.details.logTail ?? [];
  }
}

const errorLine = /(^|\s)(error|ERROR|failed to|denied|unauthorized|Unauthorized|Error:)/;

/** The most telling line of a failed build's log: BuildKit's final `error:`/`ERROR:` line, else the last error-ish line. */
export function summarizeFailure(tail: readonly string[]): string | undefined {
  for (let i = tail.length - 1; i >= 0; i--) {
    const line = tail[i]!.trim();
    if (/^(error|ERROR)(:| \[| failed)/.test(line) || /^Error: /.test(line)) return line;
  }
  for (let i = tail.length - 1; i >= 0; i--) {
    const line = tail[i]!.trim();
    if (errorLine.test(line)) return line;
  }
  return undefined;
}

/**
 * Which stable code a failed builder run deserves: a push the registry refused for credentials is
 * an auth error, other push and pull refusals are registry errors, anything else is a build error.
 */
export function classifyFailure(tail: readonly string[]): ErrorCode {
  const text = tail.join('\n');
  const pushing = /push|exporting to image|writing manifest|copying blob|Writing manifest/i.test(text);
  if (/\b(401 Unauthorized|unauthorized|authentication required|denied: requested access|access to the requested resource is not authorized|insufficient_scope)\b/i.test(text)) {
    return 'SLIPWAY_AUTH';
  }
  if (pushing && /failed to push|error pushing|failed to do request|pushing .*: .*(refused|reset|5\d\d )|unexpected status( code)?:? 5\d\d/i.test(text)) {
    return 'SLIPWAY_REGISTRY';
  }
  return 'SLIPWAY_BUILD';
}

/** Builds the error for a builder run that exited non-zero. */
export function failure(builder: BuilderKind, exitCode: number | null, tail: string[], what = 'build'): BuildError {
  const summary = summarizeFailure(tail);
  const code = classifyFailure(tail);
  const shown = tail.slice(-25);
  const message =
    `${what} with ${builder} failed (exit ${exitCode ?? 'by signal'})${summary ? `: ${summary}` : ''}` +
    (shown.length > 0 ? `\n--- last ${shown.length} lines of the ${builder} log ---\n${shown.join('\n')}` : '');
  return new BuildError(code, message, { builder, exitCode, logTail: tail });
}

/** Counts Dockerfile steps (FROM excluded) and cache hits in BuildKit's plain progress (`#5 [2/3] RUN …` then `#5 CACHED`) and buildah's output. */
export class StepCounter {
  private readonly steps = new Set<string>();
  private readonly cached = new Set<string>();

  observe(line: string): void {
    // BuildKit plain progress: `#N [stage i/n] INSTRUCTION` names a step; `#N CACHED` marks it cached.
    // FROM is not counted (as for buildah): it runs nothing, and BuildKit marks it CACHED whenever
    // the base image is already present, even with --no-cache.
    let match = /^#(\d+) \[(?:[^\]]*\s)?\d+\/\d+\] (\S+)/.exec(line);
    if (match) {
      if (match[2] !== 'FROM') this.steps.add(match[1]!);
      return;
    }
    match = /^#(\d+) CACHED\s*$/.exec(line);
    if (match) {
      this.cached.add(match[1]!);
      return;
    }
    // buildah: `[linux/arm64] STEP 2/3: RUN …` (prefix with several platforms) then `--> Using cache …`.
    match = /^(?:\[[^\]]+\] )?STEP (\d+)\/\d+: /.exec(line);
    if (match) {
      this.buildahStep = `b${this.steps.size}:${match[1]}`;
      if (!line.includes(': FROM ')) this.steps.add(this.buildahStep);
      return;
    }
    if (/^--> Using cache /.test(line) && this.buildahStep) this.cached.add(this.buildahStep);
  }

  private buildahStep: string | undefined;

  result(): { total: number; cached: number } | undefined {
    if (this.steps.size === 0) return undefined;
    let cached = 0;
    for (const id of this.steps) if (this.cached.has(id)) cached++;
    return { total: this.steps.size, cached };
  }
}
