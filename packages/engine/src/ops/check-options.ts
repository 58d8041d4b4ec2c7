/**
 * Shape checks for the options objects of the engine's entry points. Providers pass values from
 * plain JavaScript, Python or Go programs, computed ones included, so a missing or mistyped field
 * must be a SlipwayError naming the field, not a TypeError from deep inside.
 * @module
 */
import { InvalidArgumentError } from '@slipway/oci';

type FieldKind = 'string' | 'string?' | 'boolean?' | 'count?' | 'function?' | 'platforms?' | 'strings?' | 'signal?' | 'registries?' | 'cacheDir?' | 'proxy?' | 'writable?' | 'readable?';

/** Fields every op takes (AccessOptions). */
const accessFields: Record<string, FieldKind> = { registries: 'registries?', insecure: 'strings?', proxy: 'proxy?', certDirectories: 'strings?', signal: 'signal?' };

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function fieldProblem(kind: FieldKind, value: unknown): string | undefined {
  if (value === undefined) return kind.endsWith('?') ? undefined : 'is required';
  switch (kind) {
    case 'string':
      return typeof value === 'string' && value.trim() !== '' ? undefined : `must be a non-empty string, got ${describeValue(value)}`;
    case 'string?':
      return typeof value === 'string' ? undefined : `must be a string, got ${describeValue(value)}`;
    case 'boolean?':
      return typeof value === 'boolean' ? undefined : `must be true or false, got ${describeValue(value)}`;
    case 'count?':
      return typeof value === 'number' && Number.isInteger(value) ? undefined : `must be a whole number, got ${describeValue(value)}`;
    case 'function?':
      return typeof value === 'function' ? undefined : `must be a function, got ${describeValue(value)}`;
    case 'platforms?':
      return typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))
        ? undefined
        : `must be a platform string or a list of them, got ${describeValue(value)}`;
    case 'strings?':
      return Array.isArray(value) && value.every((v) => typeof v === 'string') ? undefined : `must be a list of strings, got ${describeValue(value)}`;
    case 'signal?':
      return value instanceof AbortSignal ? undefined : `must be an AbortSignal, got ${describeValue(value)}`;
    case 'readable?':
      return typeof value === 'object' && value !== null && 'pipe' in value && typeof value.pipe === 'function' && 'on' in value && typeof value.on === 'function'
        ? undefined
        : `must be a readable stream, got ${describeValue(value)}`;
    case 'writable?':
      return typeof value === 'object' && value !== null && 'write' in value && typeof value.write === 'function' && 'on' in value && typeof value.on === 'function'
        ? undefined
        : `must be a writable stream, got ${describeValue(value)}`;
    case 'cacheDir?':
      return typeof value === 'string' || value === false ? undefined : `must be a directory or false, got ${describeValue(value)}`;
    case 'proxy?': {
      // A mistyped proxy would otherwise read as "no proxy" and connect directly without a word.
      if (value === false || value === 'environment') return undefined;
      const settings = value as Record<string, unknown> | null;
      const fields = ['httpProxy', 'httpsProxy', 'noProxy'];
      const fits = typeof settings === 'object' && settings !== null && !Array.isArray(settings) && fields.every((key) => settings[key] === undefined || typeof settings[key] === 'string');
      // Not the value: a proxy URL may hold a password.
      return fits ? undefined : `must be 'environment', false or { httpProxy?, httpsProxy?, noProxy? } of strings, got ${typeof value === 'string' ? 'a string' : describeValue(value)}`;
    }
    case 'registries?': {
      if (!Array.isArray(value)) return `must be a list of { address, username, password }, got ${describeValue(value)}`;
      for (const [i, entry] of value.entries()) {
        const record = entry as Record<string, unknown> | null;
        for (const key of ['address', 'username', 'password']) {
          // The values are never shown: one of them is a password.
          if (typeof record?.[key] !== 'string') return `entry ${i} needs ${key} as a string`;
        }
      }
      return undefined;
    }
  }
}

/** Throws SLIPWAY_INVALID_ARG naming the first field of `options` that does not fit `fields` (plus the access fields). */
export function checkOptions(op: string, options: unknown, fields: Record<string, FieldKind>): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`${op}: options must be an object, got ${describeValue(options)}`);
  }
  const record = options as Record<string, unknown>;
  const known = { ...accessFields, ...fields };
  for (const [field, kind] of Object.entries(known)) {
    const problem = fieldProblem(kind, record[field]);
    if (problem) throw new InvalidArgumentError(`${op}: ${field} ${problem}`);
  }
  // A misspelt field would otherwise be dropped without a word: \`platform\` for copyImage's
  // \`platforms\` copied every platform, \`overWrite: true\` refused to replace anything.
  for (const field of Object.keys(record)) {
    if (field in known || record[field] === undefined) continue;
    const near = Object.keys(known).find((candidate) => candidate.toLowerCase() === field.toLowerCase() || candidate === `${field}s` || `${candidate}s` === field);
    throw new InvalidArgumentError(`${op}: unknown option ${JSON.stringify(field)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : `; it takes ${Object.keys(known).join(', ')}`}`);
  }
}
