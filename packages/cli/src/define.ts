/**
 * What every registry command shares: flag parsing (`node:util` parseArgs), the common flags
 * (`--json`, `--insecure HOST`, `--quiet`, `--help`), credentials from the environment, printing a
 * result as text or as one JSON object, and mapping errors to exit codes.
 * @module
 */
import type { Writable } from 'node:stream';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { RegistryCredential } from '@slipway/engine';
import { auth, name } from '@slipway/oci';
import { ExitCode, namedStream, wantsJson, type Command, type CommandIo } from './command.js';
import { describeError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Value = string | boolean | (string | boolean)[] | undefined;

export interface CommandContext {
  /** Positional arguments, count already checked. */
  args: string[];
  /** Command-specific flags by long name. */
  values: Record<string, Value>;
  io: CommandIo;
  json: boolean;
  quiet: boolean;
  /** Registries allowed plain HTTP or unverified TLS (`--insecure`, repeatable). Loopback always is. */
  insecure: string[];
  /** Credentials from SLIPWAY_REGISTRY_USERNAME/PASSWORD, scoped to SLIPWAY_REGISTRY_ADDRESS or `target`. */
  registries(target: string | undefined): RegistryCredential[];
  /**
   * Standard output carries the command's payload (`copy … docker-archive:/dev/stdout | docker load`):
   * the result, and the `--json` object for an error too, go to stderr instead, not into the archive.
   */
  stdoutCarriesPayload(): void;
  /** Standard error carries it (`2>&1 | docker load`, `/dev/stderr`): no progress, and no result there. */
  stderrCarriesPayload(): void;
}

export interface CommandOutput {
  /** The `--json` object. */
  json: unknown;
  /** What goes to stdout otherwise (a trailing newline is added to strings). */
  text: string | Uint8Array;
  /** A result that is not wholly a success (a repository copy that kept or failed some tags): its exit code. @defaultValue ExitCode.Ok */
  exitCode?: number;
}

export interface CommandSpec {
  /** One line for `slipway --help`. */
  summary: string;
  /** `slipway NAME ARGS…` line, without the common flags. */
  synopsis: string;
  /** Paragraphs after the synopsis: what it does, flags, output. */
  details: string;
  options?: Options;
  positionals: { min: number; max: number };
  run(context: CommandContext): Promise<CommandOutput>;
}

const commonOptions: Options = {
  json: { type: 'boolean' },
  insecure: { type: 'string', multiple: true },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
};

const commonHelp = `common flags:
  --json            print one JSON object on stdout (errors too: {"error":{code,message,exitCode}})
  --insecure HOST   allow plain HTTP / unverified TLS for HOST (repeatable); 127.0.0.1 and localhost always are
  -q, --quiet       no progress on stderr
  -h, --help        this text

credentials, first found wins: SLIPWAY_REGISTRY_USERNAME + SLIPWAY_REGISTRY_PASSWORD (for one registry: the
one in SLIPWAY_REGISTRY_ADDRESS, or else the one the command writes to or reads from; for build, the first
tag's), then the Docker config
($DOCKER_CONFIG/config.json or ~/.docker/config.json: auths, credHelpers, credsStore), then the containers
auth file ($REGISTRY_AUTH_FILE; set without DOCKER_CONFIG, it comes before ~/.docker/config.json), else
anonymous. A refused login names the file it came from. Passwords are never printed.

a registry's private CA: ~/.config/containers/certs.d/HOST/ca.crt (or /etc/containers/certs.d,
/etc/docker/certs.d); for every registry: NODE_EXTRA_CA_CERTS, or SSL_CERT_FILE/SSL_CERT_DIR.

exit codes: 0 ok, 1 failure, 2 usage (bad flag, reference or platform), 3 not found, 4 authentication,
5 destination holds a different image (use --overwrite), 128 + the signal when interrupted
(130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).`;

/** Builds a Command from a spec; the command only turns arguments into a result. */
export function defineCommand(spec: CommandSpec): Command {
  const usage = `usage: ${spec.synopsis}\n\n${spec.details}\n\n${commonHelp}\n`;
  return {
    summary: spec.summary,
    usage,
    async run(argv: string[], io: CommandIo): Promise<number> {
      const json = wantsJson(argv);
      const secrets = envSecrets(io.env);
      // A usage error comes before any destination is looked at: when one of the arguments names stdout
      // (`docker-archive:/dev/stdout | docker load`), its --json object goes to stderr with the message,
      // as it would once the archive had claimed stdout, rather than into the reader of the archive.
      const usageOut = argv.some(namesStdout) ? io.stderr : io.stdout;
      let parsed: ReturnType<typeof parseArgs>;
      const options = { ...commonOptions, ...spec.options };
      try {
        parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true, tokens: true });
        // parseArgs lets the last of a repeated single-value flag win: `--platform a --platform b`
        // would quietly inspect b. Only flags documented as repeatable may repeat.
        const seen = new Set<string>();
        for (const token of parsed.tokens ?? []) {
          if (token.kind !== 'option' || (options[token.name] as { multiple?: boolean } | undefined)?.multiple === true) continue;
          if (seen.has(token.name)) throw new Error(`--${token.name} given more than once`);
          seen.add(token.name);
        }
      } catch (err) {
        return fail(io, json, { code: 'SLIPWAY_USAGE', message: `${parseProblem(err)}; see "${spec.synopsis.split(' ').slice(0, 2).join(' ')} --help"`, exitCode: ExitCode.Usage }, secrets, usageOut);
      }
      const values = parsed.values as Record<string, Value>;
      if (values.help === true) {
        io.stdout.write(usage);
        return ExitCode.Ok;
      }
      const args = parsed.positionals;
      if (args.length < spec.positionals.min || args.length > spec.positionals.max) {
        return fail(io, json, { code: 'SLIPWAY_USAGE', message: `${args.length < spec.positionals.min ? 'missing' : 'too many'} arguments\n${usage.split('\n')[0]}`, exitCode: ExitCode.Usage }, secrets, usageOut);
      }
      // An empty argument (an unset shell variable: `slipway digest "$IMAGE"`) is named as such; the
      // library's check would quote its own function name at the user.
      const empty = args.findIndex((arg) => arg.trim() === '');
      if (empty !== -1) {
        return fail(io, json, { code: 'SLIPWAY_USAGE', message: `argument ${empty + 1} is empty (an unset variable?)\n${usage.split('\n')[0]}`, exitCode: ExitCode.Usage }, secrets, usageOut);
      }
      const insecure = (values.insecure as string[] | undefined) ?? [];
      // As matchesInsecure reads them: a wildcard names no port, and nothing is trimmed.
      const badInsecure = insecure.find((entry) => !/^(https?:\/\/)?(\*\.[^\s/*@:]+|[^\s/*@]+)\/*$/i.test(entry));
      if (badInsecure !== undefined) {
        // What never matches a registry would otherwise be taken in silence, and TLS still enforced.
        return fail(io, json, { code: 'SLIPWAY_USAGE', message: `--insecure wants HOST, HOST:PORT or *.DOMAIN, got ${JSON.stringify(badInsecure)}`, exitCode: ExitCode.Usage }, secrets, usageOut);
      }
      /** The registry SLIPWAY_REGISTRY_* were offered to (see registriesFromEnv), for a hint when another one asks. */
      let envTarget: string | undefined;
      let payloadOnStdout = false;
      let payloadOnStderr = false;
      // Where the result goes: stdout, unless the payload does; then stderr, unless it goes there too.
      const out = (): Writable | undefined => (!payloadOnStdout ? io.stdout : !payloadOnStderr ? io.stderr : undefined);
      const context: CommandContext = {
        args,
        values,
        io,
        json: values.json === true,
        quiet: values.quiet === true,
        insecure,
        registries: (target) => {
          envTarget = target;
          return registriesFromEnv(io.env, target);
        },
        stdoutCarriesPayload: () => {
          payloadOnStdout = true;
        },
        stderrCarriesPayload: () => {
          payloadOnStderr = true;
          context.quiet = true;
        },
      };
      try {
        const output = await spec.run(context);
        const result = out();
        if (context.json) result?.write(redact(JSON.stringify(output.json, null, 2), secrets) + '\n');
        else if (typeof output.text === 'string') result?.write(output.text === '' ? '' : redact(output.text, secrets) + '\n');
        else result?.write(output.text);
        return output.exitCode ?? ExitCode.Ok;
      } catch (err) {
        // Failed before the payload claimed a stream (a bad --platform): where a usage error would go.
        const failure = describeError(err, io.signal);
        const hint = envCredentialsHint(io.env, envTarget, failure);
        return fail(io, context.json, hint ? { ...failure, message: `${failure.message}; ${hint}` } : failure, secrets, payloadOnStdout || payloadOnStderr ? out() : usageOut);
      }
    },
  };
}

/**
 * When a registry found no credentials and SLIPWAY_REGISTRY_* were set for another one (a copy
 * offers them to its destination only), says how to point them here: otherwise "no credentials were
 * found" contradicts the variables the user just set.
 */
function envCredentialsHint(env: NodeJS.ProcessEnv, target: string | undefined, failure: { code: string; message: string }): string | undefined {
  if (failure.code !== 'SLIPWAY_AUTH' || !env.SLIPWAY_REGISTRY_USERNAME) return undefined;
  const asking = /no credentials for (\S+) were found/.exec(failure.message)?.[1];
  const given = env.SLIPWAY_REGISTRY_ADDRESS || target;
  const offeredTo = given === undefined ? undefined : name.redactUserinfo(given);
  if (asking === undefined || offeredTo === undefined || auth.normalizeRegistryKey(offeredTo) === auth.normalizeRegistryKey(asking)) return undefined;
  // With an address set, pointing it here loses the registry it names: a login here keeps both.
  return env.SLIPWAY_REGISTRY_ADDRESS
    ? `SLIPWAY_REGISTRY_USERNAME/PASSWORD went to ${offeredTo} only (SLIPWAY_REGISTRY_ADDRESS); docker login ${asking}, or point SLIPWAY_REGISTRY_ADDRESS at it`
    : `SLIPWAY_REGISTRY_USERNAME/PASSWORD went to ${offeredTo} only; set SLIPWAY_REGISTRY_ADDRESS=${asking} to use them for ${asking}`;
}

/**
 * A flag-parsing problem in our words: Node's unknown-option text ends in an unbalanced quote
 * (`as in '-- "--image"`) and tells a CLI user about positionals they did not mean.
 */
function parseProblem(err: unknown): string {
  const { code, message } = err as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : String(err);
  const option = /^Unknown option '([^']+)'/.exec(text)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option !== undefined) return `unknown option "${option}" (an argument that starts with "-" goes after "--")`;
  return text;
}

/** Whether an argument is, or holds between colons, a path naming this process's stdout (`oci-archive:/dev/stdout:app`). */
function namesStdout(arg: string): boolean {
  return arg.split(':').some((part) => namedStream(part) === 1);
}

interface Failure {
  code: string;
  message: string;
  exitCode: number;
  partial?: unknown;
}

/** Reports `failure` on stderr, and as the `--json` object on `out` (stdout unless it carries a payload; none when both do). */
function fail(io: CommandIo, json: boolean, failure: Failure, secrets: string[], out: Writable | undefined = io.stdout): number {
  const message = redact(failure.message, secrets);
  io.stderr.write(`slipway: ${message}\n`);
  const partial = failure.partial === undefined ? {} : { partial: failure.partial };
  if (json) out?.write(redact(JSON.stringify({ error: { code: failure.code, message, exitCode: failure.exitCode, ...partial } }, null, 2), secrets) + '\n');
  return failure.exitCode;
}

/**
 * Credentials from the environment, for CI where writing a Docker config is a chore. They apply to
 * one registry only, so a copy never sends them to the other side: SLIPWAY_REGISTRY_ADDRESS when set,
 * otherwise the command's target (the destination of copy/push, the first tag's registry for build, the named
 * registry of read commands).
 */
export function registriesFromEnv(env: NodeJS.ProcessEnv, target: string | undefined): RegistryCredential[] {
  const username = env.SLIPWAY_REGISTRY_USERNAME;
  const password = env.SLIPWAY_REGISTRY_PASSWORD;
  const address = env.SLIPWAY_REGISTRY_ADDRESS || target;
  // `https://user:pw@host`: the key would never match a registry, and the hint naming the address
  // would print the password. References refuse userinfo the same way.
  const shown = env.SLIPWAY_REGISTRY_ADDRESS ? name.redactUserinfo(env.SLIPWAY_REGISTRY_ADDRESS) : undefined;
  if (shown !== undefined && shown !== env.SLIPWAY_REGISTRY_ADDRESS) {
    throw new UsageError(`SLIPWAY_REGISTRY_ADDRESS ${JSON.stringify(shown)} holds credentials; they do not belong in an address: set SLIPWAY_REGISTRY_ADDRESS to the host alone and put them in SLIPWAY_REGISTRY_USERNAME and SLIPWAY_REGISTRY_PASSWORD`);
  }
  // Half a pair is a mistake in the CI setup, not a wish to go anonymous: say so.
  if (username && password === undefined) throw new UsageError('SLIPWAY_REGISTRY_USERNAME is set but SLIPWAY_REGISTRY_PASSWORD is not');
  if (!username && password !== undefined && password !== '') throw new UsageError('SLIPWAY_REGISTRY_PASSWORD is set but SLIPWAY_REGISTRY_USERNAME is not');
  if (!username || password === undefined || !address) return [];
  // An empty password is what an unset CI secret becomes: the refusal should say so.
  return [{ address, username, password, origin: `SLIPWAY_REGISTRY_USERNAME/PASSWORD${password === '' ? ' (the password is empty)' : ''}` }];
}

function envSecrets(env: NodeJS.ProcessEnv): string[] {
  const password = env.SLIPWAY_REGISTRY_PASSWORD;
  return password && password.length >= 4 ? [password] : [];
}

/** Belt and braces: the library never puts secrets in messages; the CLI still scrubs the ones it knows. */
function redact(text: string, secrets: string[]): string {
  let result = text;
  for (const secret of secrets) result = result.split(secret).join('***');
  return result;
}

/** Reads an integer flag, or throws a usage error naming it. */
export function integerFlag(values: Record<string, Value>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || !Number.isSafeInteger(n)) throw new UsageError(`--${name} wants a whole number, got ${JSON.stringify(raw)}`);
  return n;
}

/** Reads a repeatable string flag (`--platform a --platform b,c`). */
export function listFlag(values: Record<string, Value>, name: string): string[] {
  const raw = values[name];
  if (raw === undefined) return [];
  return (Array.isArray(raw) ? raw : [raw]).map(String);
}

export class UsageError extends Error {
  readonly code = 'SLIPWAY_USAGE';
}
