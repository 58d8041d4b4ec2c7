/**
 * Parsers for the string forms of build options, shared by the CLI (`docker buildx build` flag
 * syntax) and the IaC front doors: `--builder KIND[=ADDRESS]`, `--cache-from/--cache-to`,
 * `--secret`, `--ssh`, `--build-arg`/`--label` pairs, `--build-context`.
 * @module
 */
import { InvalidArgumentError } from '@slipway/oci';
import { builderKinds, type BuilderKind, type BuilderSelection, type CacheFrom, type CacheTo, type SecretSpec, type SshSpec } from './builders/types.js';

/** Splits one CSV record the way BuildKit reads attribute lists: `"a,b"` quotes a field, `""` is a quote. */
export function splitCsv(text: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  if (quoted) throw new InvalidArgumentError(`unterminated quote in ${JSON.stringify(text)}`);
  fields.push(field);
  return fields.map((f) => f.trim()).filter((f) => f !== '');
}

function attributes(text: string, what: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const field of splitCsv(text)) {
    const eq = field.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(text)}: "${field}" is not key=value`);
    result.set(field.slice(0, eq).trim().toLowerCase(), field.slice(eq + 1));
  }
  return result;
}

/** `KEY=VALUE` → [KEY, VALUE]; `KEY` alone takes the value from `env` (as `docker build --build-arg KEY` does) when `env` is given. */
export function parseKeyValue(text: string, what: string, env?: NodeJS.ProcessEnv): [string, string] {
  const eq = text.indexOf('=');
  if (eq === -1) {
    const fromEnv = env && text !== '' ? env[text] : undefined;
    if (fromEnv !== undefined) return [text, fromEnv];
    throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(text)}: want KEY=VALUE`);
  }
  if (eq === 0) throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(text)}: empty key`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/**
 * `docker`, `buildah`, `buildctl=unix:///run/buildkit/buildkitd.sock`, `buildx=tcp://host:1234`,
 * `buildx:mybuilder` (an existing buildx builder by name).
 */
export function parseBuilderOption(text: string): BuilderSelection {
  const trimmed = text.trim();
  const eq = trimmed.indexOf('=');
  const head = eq === -1 ? trimmed : trimmed.slice(0, eq);
  const address = eq === -1 ? undefined : trimmed.slice(eq + 1);
  const [kindText, name] = head.split(':', 2) as [string, string | undefined];
  const kind = kindText.toLowerCase();
  if (!builderKinds.includes(kind as BuilderKind)) {
    throw new InvalidArgumentError(`unknown builder ${JSON.stringify(kindText)}: want one of ${builderKinds.join(', ')}, optionally =ADDRESS (e.g. buildctl=unix:///run/buildkit/buildkitd.sock)`);
  }
  if (address !== undefined && address === '') throw new InvalidArgumentError(`builder ${JSON.stringify(text)}: empty address`);
  if (kind === 'buildah' && address !== undefined) throw new InvalidArgumentError('the buildah builder is daemonless and takes no address');
  if (name !== undefined && kind !== 'buildx') throw new InvalidArgumentError(`builder names (${JSON.stringify(text)}) exist only for buildx`);
  const selection: BuilderSelection = { kind: kind as BuilderKind };
  if (address !== undefined) selection.address = address;
  if (name) selection.name = name;
  return selection;
}

/** `type=registry,ref=R` | `type=local,src=DIR` | a bare reference (buildx's shorthand for registry). */
export function parseCacheFrom(text: string): CacheFrom {
  if (!text.includes('=')) return { type: 'registry', ref: text.trim() };
  const attrs = attributes(text, '--cache-from');
  const type = attrs.get('type') ?? 'registry';
  if (type === 'registry') {
    const ref = attrs.get('ref');
    if (!ref) throw new InvalidArgumentError(`invalid --cache-from ${JSON.stringify(text)}: type=registry needs ref=`);
    return { type, ref };
  }
  if (type === 'local') {
    const src = attrs.get('src');
    if (!src) throw new InvalidArgumentError(`invalid --cache-from ${JSON.stringify(text)}: type=local needs src=`);
    return { type, src };
  }
  throw new InvalidArgumentError(`unsupported --cache-from type ${JSON.stringify(type)}: slipway supports registry and local`);
}

/** `type=inline` | `type=registry,ref=R[,mode=max]` | `type=local,dest=DIR[,mode=max]`. */
export function parseCacheTo(text: string): CacheTo {
  if (!text.includes('=')) return { type: 'registry', ref: text.trim() };
  const attrs = attributes(text, '--cache-to');
  const type = attrs.get('type') ?? 'registry';
  const mode = attrs.get('mode');
  if (mode !== undefined && mode !== 'min' && mode !== 'max') throw new InvalidArgumentError(`invalid --cache-to mode ${JSON.stringify(mode)}: want min or max`);
  if (type === 'inline') return { type };
  if (type === 'registry') {
    const ref = attrs.get('ref');
    if (!ref) throw new InvalidArgumentError(`invalid --cache-to ${JSON.stringify(text)}: type=registry needs ref=`);
    return mode ? { type, ref, mode } : { type, ref };
  }
  if (type === 'local') {
    const dest = attrs.get('dest');
    if (!dest) throw new InvalidArgumentError(`invalid --cache-to ${JSON.stringify(text)}: type=local needs dest=`);
    return mode ? { type, dest, mode } : { type, dest };
  }
  throw new InvalidArgumentError(`unsupported --cache-to type ${JSON.stringify(type)}: slipway supports inline, registry and local`);
}

/** `id=ID,src=PATH` | `id=ID,env=VAR` | `id=ID` (env var ID, then file ID, as buildx does) | `type=file|env`. */
export function parseSecretOption(text: string): SecretSpec {
  const attrs = attributes(text, '--secret');
  const id = attrs.get('id');
  const src = attrs.get('src') ?? attrs.get('source');
  const env = attrs.get('env');
  const type = attrs.get('type');
  if (!id && !src && !env) throw new InvalidArgumentError('invalid --secret: want id=ID,src=PATH or id=ID,env=VAR');
  if (src !== undefined && env !== undefined) throw new InvalidArgumentError(`invalid --secret for "${id ?? src}": give src= or env=, not both`);
  const secretId = id ?? src ?? env!;
  if (src !== undefined) return { id: secretId, src };
  if (env !== undefined) return { id: secretId, env };
  if (type === 'file') return { id: secretId, src: secretId };
  return { id: secretId, env: secretId };
}

/** `default` | `default=/path/key` | `ID=/sock,/key2`. */
export function parseSshOption(text: string): SshSpec {
  const trimmed = text.trim();
  const eq = trimmed.indexOf('=');
  if (eq === 0 || trimmed === '') throw new InvalidArgumentError(`invalid --ssh ${JSON.stringify(text)}: want default or ID=PATH[,PATH]`);
  if (eq === -1) return { id: trimmed };
  const paths = trimmed.slice(eq + 1).split(',').map((p) => p.trim()).filter((p) => p !== '');
  return paths.length > 0 ? { id: trimmed.slice(0, eq), paths } : { id: trimmed.slice(0, eq) };
}
