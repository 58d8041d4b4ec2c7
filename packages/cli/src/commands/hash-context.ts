/**
 * `slipway hash-context [CONTEXT]`: the build-context hash the build uses to decide whether to
 * rebuild, the files it covers (`--list`) and what changed since the last run (`--explain`).
 * @module
 */
import { context as buildContext, hashContext, type ContextHashResult } from '@slipway/build';
import { defineCommand, listFlag, UsageError } from '../define.js';

const LIST_LIMIT = 50;

function namedContexts(values: string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0 || eq === value.length - 1) throw new UsageError(`--build-context wants NAME=DIR, got ${JSON.stringify(value)}`);
    result[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return result;
}

function capped(lines: string[], prefix: string): string[] {
  const shown = lines.slice(0, LIST_LIMIT).map((l) => `  ${prefix} ${l}`);
  if (lines.length > LIST_LIMIT) shown.push(`  … and ${lines.length - LIST_LIMIT} more (--json lists all)`);
  return shown;
}

function explain(r: ContextHashResult, contextArg: string): string[] {
  const { formatBytes } = buildContext;
  const lines = [
    `context ${contextArg}: ${r.files} files (${formatBytes(r.bytes)}), ${r.directories} directories, ${r.symlinks} symlinks`,
    `ignore file: ${r.ignoreFile ?? 'none'}`,
    `Dockerfile: ${r.dockerfile.inline ? 'inline' : r.dockerfile.path} (${r.dockerfile.digest})`,
    `read ${r.stats.hashedFiles} files (${formatBytes(r.stats.hashedBytes)}), ${r.stats.cachedFiles} unchanged from the stat cache`,
  ];
  const c = r.changes;
  if (!c) {
    lines.push('no previous run recorded for this context (or --no-cache): nothing to compare with');
  } else if (c.added.length + c.removed.length + c.changed.length === 0 && !c.dockerfileChanged) {
    lines.push('nothing changed since the last run');
  } else {
    lines.push(`since the last run: ${c.added.length} added, ${c.removed.length} removed, ${c.changed.length} changed${c.dockerfileChanged ? ', Dockerfile changed' : ''}`);
    lines.push(...capped(c.added, '+'), ...capped(c.removed, '-'), ...capped(c.changed, '~'));
  }
  for (const d of r.biggestDirectories ?? []) lines.push(`  ${formatBytes(d.bytes).padStart(10)} ${String(d.files).padStart(8)} files  ${d.path}`);
  return lines;
}

function listing(r: ContextHashResult): string[] {
  return (r.entries ?? []).map((e) => {
    const type = e.type.padEnd(7);
    const target = e.type === 'symlink' ? ` -> ${e.target}` : '';
    return `${type} ${e.executable ? 'x' : '-'} ${String(e.size).padStart(12)}  ${e.context === undefined ? '' : `${e.context}:`}${e.path}${target}`;
  });
}

export const hashContextCommand = defineCommand({
  summary: 'hash a build context exactly as BuildKit would send it; --explain says what changed since the last run',
  synopsis: 'slipway hash-context [CONTEXT] [-f DOCKERFILE] [--build-context NAME=DIR]… [--explain] [--list] [--no-cache] [--dialect buildkit|legacy|buildah]',
  details: `CONTEXT is the build context directory (default ".").

The hash covers the Dockerfile's content and every file, directory and symlink that BuildKit sends
for "COPY . ." after applying <Dockerfile>.dockerignore (next to the Dockerfile) or else
CONTEXT/.dockerignore: path, type, executable bit, size, content (symlinks: their text). Full
permission bits, owners and timestamps do not count. Sockets, FIFOs and devices are skipped with
a warning.

  -f, --file PATH            Dockerfile (default CONTEXT/Dockerfile)
      --build-context NAME=DIR
                             named context, hashed with its own DIR/.dockerignore (repeatable)
      --explain              also print counts, the ignore file, and the files added, removed or
                             changed since the last run of this context (from the stat cache)
      --list                 print every entry hashed: type, executable bit, size, path
      --no-cache             neither read nor write the stat cache (every file is read)
      --dialect D            .dockerignore semantics of the client that sends the context:
                             buildkit (buildx, buildctl, Docker 23+; default), legacy (Docker 20.10 CLI)
                             or buildah (buildah 1.28: also .containerignore; none for named contexts)

The stat cache lives in $XDG_CACHE_HOME/slipway/context (default ~/.cache/slipway/context).
Prints the digest; with --json the whole result {digest, files, directories, symlinks, bytes,
dockerfile, ignoreFile, changes?, warnings, biggestDirectories?, entries? (with --list), stats}.`,
  options: {
    file: { type: 'string', short: 'f' },
    'build-context': { type: 'string', multiple: true },
    explain: { type: 'boolean' },
    list: { type: 'boolean' },
    'no-cache': { type: 'boolean' },
    dialect: { type: 'string' },
  },
  positionals: { min: 0, max: 1 },
  async run(c) {
    const contextArg = c.args[0] ?? '.';
    const dialect = (c.values.dialect as string | undefined) ?? 'buildkit';
    if (dialect !== 'buildkit' && dialect !== 'legacy' && dialect !== 'buildah') throw new UsageError(`--dialect wants buildkit, legacy or buildah, got ${JSON.stringify(dialect)}`);
    const file = c.values.file as string | undefined;
    const result = await hashContext({
      context: contextArg,
      ...(file === undefined ? {} : { dockerfile: file }),
      namedContexts: namedContexts(listFlag(c.values, 'build-context')),
      cacheDir: c.values['no-cache'] === true ? false : buildContext.defaultCacheDir(c.io.env),
      ignoreDialect: dialect,
      listEntries: c.values.list === true,
      signal: c.io.signal,
      onWarning: (w) => {
        if (!c.quiet && !c.json) c.io.stderr.write(`slipway: warning: ${w.message}\n`);
      },
    });
    const text = [result.digest];
    if (c.values.explain === true) text.push(...explain(result, contextArg));
    if (c.values.list === true) text.push(...listing(result));
    return { json: result, text: text.join('\n') };
  },
});
