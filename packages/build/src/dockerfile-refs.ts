/**
 * Which registries a Dockerfile pulls from (`FROM`, `COPY --from=`, `RUN --mount=…,from=`), so
 * the builder's temporary credentials can hold exactly those plus the push and cache registries.
 * This is a best-effort scan, not a parser: a reference it cannot resolve (an ARG without a
 * default) is skipped and the builder pulls it anonymously, as it would anyway.
 * @module
 */
import { name } from '@slipway/oci';

/** Joins continuation lines and drops comments, keeping the instruction structure. */
function logicalLines(text: string): string[] {
  const lines: string[] = [];
  let current = '';
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*#/.test(raw) && current === '') continue;
    if (raw.endsWith('\\')) {
      current += raw.slice(0, -1) + ' ';
      continue;
    }
    lines.push(current + raw);
    current = '';
  }
  if (current !== '') lines.push(current);
  return lines;
}

function substitute(text: string, vars: Record<string, string>): string | undefined {
  let unresolved = false;
  const out = text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => {
    const key = (a ?? b)!;
    const value = vars[key];
    if (value === undefined) unresolved = true;
    return value ?? '';
  });
  return unresolved ? undefined : out;
}

/** Image references the Dockerfile pulls, fully qualified (`docker.io/library/alpine:latest`). */
export function imageReferences(dockerfile: string, buildArgs: Record<string, string> = {}): string[] {
  const vars: Record<string, string> = {};
  const stages = new Set<string>();
  const refs = new Set<string>();
  const add = (text: string | undefined): void => {
    if (!text) return;
    const resolved = substitute(text, vars);
    if (!resolved || resolved === 'scratch' || stages.has(resolved.toLowerCase()) || /^\d+$/.test(resolved)) return;
    try {
      refs.add(name.parseReference(resolved).toString());
    } catch {
      // not an image reference (a stage or a named context); nothing to authenticate
    }
  };
  let beforeFirstFrom = true;
  for (const line of logicalLines(dockerfile)) {
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const instruction = match[1]!.toUpperCase();
    const rest = match[2]!;
    if (instruction === 'ARG') {
      // Global ARGs (before the first FROM) feed FROM lines; build args override their defaults.
      for (const item of rest.trim().split(/\s+/)) {
        const eq = item.indexOf('=');
        const key = eq === -1 ? item : item.slice(0, eq);
        const value = buildArgs[key] ?? (eq === -1 ? undefined : item.slice(eq + 1).replace(/^["']|["']$/g, ''));
        if (beforeFirstFrom && value !== undefined) vars[key] = value;
      }
      continue;
    }
    if (instruction === 'FROM') {
      beforeFirstFrom = false;
      const words = rest.trim().split(/\s+/).filter((w) => !w.startsWith('--'));
      add(words[0]);
      if (words[1]?.toUpperCase() === 'AS' && words[2]) stages.add(words[2].toLowerCase());
      continue;
    }
    for (const from of rest.matchAll(/--(?:from|mount=[^\s]*?from)=([^\s,]+)/g)) add(from[1]);
  }
  return [...refs];
}
