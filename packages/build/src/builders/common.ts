/**
 * Pieces every builder uses: probing a tool with a timeout, running a build step with the log
 * wired to the caller, the step counter and the failure error.
 * @module
 */
import { name } from '@slipway/oci';
import { failure, StepCounter } from './errors.js';
import { Redactor, run, type RunResult } from './process.js';
import type { BuilderKind, BuilderRunOptions } from './types.js';

/**
 * The secret part of an address's userinfo (`tcp://user:password@host`): the password and the whole
 * userinfo, as written and percent-decoded, which is how a tool may echo them back (the docker client
 * quotes a `DOCKER_HOST` it cannot parse whole).
 */
export function addressSecrets(address: string | undefined): string[] {
  const scheme = address === undefined ? undefined : /^[a-z][a-z0-9+.-]*:\/\//i.exec(address)?.[0];
  if (address === undefined || scheme === undefined) return [];
  const rest = address.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  if (at <= 0) return [];
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  const forms = colon === -1 ? [userinfo] : [userinfo, userinfo.slice(colon + 1)];
  const decoded = forms.map((form) => {
    try {
      return decodeURIComponent(form);
    } catch {
      return form; // `%Pw` is no escape: the tool quotes it as written
    }
  });
  return [...new Set([...forms, ...decoded])].filter((secret) => secret !== '');
}

/**
 * `text` with every argument that carries userinfo (`tcp://user:password@host`, a builder address)
 * shown without it, where the command line or the tool's own output quotes it; then any password
 * those arguments or the environment's Docker and BuildKit hosts hold, wherever else it appears.
 */
export function hideUserinfo(text: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): string {
  let shown = text;
  for (const arg of args) {
    const safe = name.redactUserinfo(arg);
    if (safe !== arg) shown = shown.split(arg).join(safe);
  }
  const secrets = [...args, env.DOCKER_HOST, env.BUILDKIT_HOST].flatMap(addressSecrets);
  return secrets.length === 0 ? shown : new Redactor(secrets).redact(shown);
}

/** Runs a short probe command (version, ping). Never throws; returns undefined output on failure with the reason. */
export async function probe(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; signal?: AbortSignal; timeout?: number },
): Promise<{ ok: boolean; output: string; reason?: string }> {
  try {
    const result = await run({
      command,
      args,
      env: options.env ?? process.env,
      signal: options.signal,
      timeout: options.timeout ?? 15_000,
      captureStdout: true,
      tailLines: 20,
    });
    const env = options.env ?? process.env;
    if (result.timedOut) return { ok: false, output: result.stdout, reason: hideUserinfo(`"${[command, ...args].join(' ')}" did not answer within ${(options.timeout ?? 15_000) / 1000} s`, args, env) };
    if (result.exitCode !== 0) {
      const last = result.tail.filter((line) => line.trim() !== '').slice(-3).join(' / ');
      return { ok: false, output: result.stdout, reason: hideUserinfo(`"${[command, ...args].join(' ')}" exited ${result.exitCode ?? result.exitSignal}${last ? `: ${last}` : ''}`, args, env) };
    }
    return { ok: true, output: result.stdout };
  } catch (err) {
    return { ok: false, output: '', reason: (err as Error).message };
  }
}

/**
 * Runs one builder command as part of a build: lines go to `onLog` and the step counter; a
 * non-zero exit becomes a BuildError carrying the redacted tail.
 */
export async function runStep(
  kind: BuilderKind,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  options: BuilderRunOptions,
  steps: StepCounter,
  what = 'build',
  cwd?: string,
): Promise<RunResult> {
  const result = await run({
    command,
    args,
    env,
    cwd,
    signal: options.signal,
    redactor: options.redactor,
    onLog: (line) => {
      steps.observe(line.line);
      options.onLog?.(line);
    },
  });
  if (result.exitCode !== 0) throw failure(kind, result.exitCode, result.tail, what);
  return result;
}

export { StepCounter };
