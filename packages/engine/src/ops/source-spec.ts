/**
 * What a source string names: a registry reference, a `docker save` archive, an OCI layout (directory
 * or tar) or a Docker daemon image. Explicit prefixes use skopeo's transport spellings; without one,
 * an existing path is local (terraform-provider-crane's `os.Stat` rule) and anything else must parse
 * as a reference.
 * @module
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, name, NotFoundError, shellWord } from '@slipway/oci';

export type SourceSpec =
  | { kind: 'registry'; reference: string }
  /** `image`: a RepoTag (`app:1`) or `@N`, the N-th image of the archive's manifest.json. */
  | { kind: 'docker-archive'; path: string; image?: string }
  /** `reference`: an `org.opencontainers.image.ref.name` in index.json. */
  | { kind: 'oci-layout'; path: string; reference?: string }
  | { kind: 'oci-archive'; path: string; reference?: string }
  | { kind: 'docker-daemon'; image: string }
  /** A file given without a prefix: a docker save or OCI layout tar (gzip allowed), told apart when opened. */
  | { kind: 'archive'; path: string };

const prefixes = ['docker://', 'docker-daemon:', 'docker-archive:', 'oci-archive:', 'oci:'] as const;

/**
 * Decides what `text` names, looking at the file system only when no prefix says so.
 */
export async function parseSourceSpec(text: string): Promise<SourceSpec> {
  const trimmed = text.trim();
  if (trimmed === '') throw new InvalidArgumentError('empty source: want an image reference or a path to an archive or OCI layout');
  const prefix = prefixes.find((p) => trimmed.startsWith(p));
  if (prefix !== undefined) {
    const rest = trimmed.slice(prefix.length);
    // Only a layout's path can carry regctl's @DIGEST; a reference's @digest is its own (docker://app@sha256:…).
    return explicit(prefix, prefix === 'oci:' || prefix === 'oci-archive:' ? await digestAfterPath(rest) : rest, text);
  }

  const info = await stat(trimmed).catch(() => undefined);
  if (info?.isDirectory()) {
    const marker = await stat(join(trimmed, 'oci-layout')).catch(() => undefined);
    if (!marker?.isFile()) {
      const index = await stat(join(trimmed, 'index.json')).catch(() => undefined);
      // The image-layout spec requires the marker; a layout made by hand often lacks it (crane and
      // skopeo read it anyway): say how to add it rather than only that it is missing.
      const remedy = index?.isFile() ? `; it has an index.json: if it is a layout, add the marker the spec requires: echo '{"imageLayoutVersion":"1.0.0"}' > ${shellWord(join(trimmed, 'oci-layout'))}` : '';
      throw new InvalidArgumentError(`"${trimmed}" is a directory but not an OCI image layout (no oci-layout file in it)${remedy}`, { code: 'SLIPWAY_INVALID_ARCHIVE' });
    }
    return { kind: 'oci-layout', path: trimmed };
  }
  // A pipe (`docker save app | slipway push /dev/stdin …`, `<(…)`) or a device is read once into a
  // scratch file by the archive reader.
  if (info?.isFile() || info?.isFIFO() || info?.isCharacterDevice() || info?.isSocket()) return { kind: 'archive', path: trimmed };
  if (info) throw new InvalidArgumentError(`source "${trimmed}" is neither a file, a pipe nor a directory`, { code: 'SLIPWAY_INVALID_ARCHIVE' });
  // `image.tar` is also a valid repository name (docker.io/library/image.tar): a missing archive
  // must not turn into a Docker Hub pull. docker://image.tar still means the repository.
  if (/\.(tar|tar\.gz|tgz)$/i.test(trimmed)) {
    // `./app.tar` or `/x/app.tar` cannot name a repository: no docker:// advice for those.
    const repository = name.isReference(trimmed) ? ` (for a repository of that name, write docker://${trimmed})` : '';
    throw new NotFoundError(`source "${trimmed}": no such file or directory${repository}`);
  }
  try {
    name.parseReference(trimmed);
    return { kind: 'registry', reference: trimmed };
  } catch (err) {
    if (/^[./~]|\.(tar|tgz|gz)$/i.test(trimmed)) throw new NotFoundError(`source "${trimmed}": no such file or directory`);
    const why = err instanceof Error ? err.message : String(err);
    throw new InvalidArgumentError(`source "${name.redactUserinfo(trimmed)}" is neither an existing file or directory nor an image reference (${why})`, {
      code: 'SLIPWAY_INVALID_REFERENCE',
      cause: err,
    });
  }
}

function explicit(prefix: (typeof prefixes)[number], rest: string, text: string): SourceSpec {
  const missing = (): never => {
    throw new InvalidArgumentError(`source "${text}": nothing after "${prefix}"`);
  };
  if (rest === '') missing();
  switch (prefix) {
    case 'docker://':
      name.parseReference(rest);
      return { kind: 'registry', reference: rest };
    case 'docker-daemon:':
      name.parseReference(rest);
      return { kind: 'docker-daemon', image: rest };
    case 'docker-archive:': {
      // skopeo: docker-archive:PATH[:{reference|@index}]; the path ends at the first colon.
      const [path, image] = splitFirst(rest);
      if (path === '') missing();
      return image === undefined ? { kind: 'docker-archive', path } : { kind: 'docker-archive', path, image };
    }
    case 'oci:':
    case 'oci-archive:': {
      const [path, reference] = splitFirst(rest);
      if (path === '') missing();
      const kind = prefix === 'oci:' ? 'oci-layout' : 'oci-archive';
      return reference === undefined ? { kind, path } : { kind, path, reference };
    }
  }
}

/**
 * `oci:DIR@sha256:…` (regctl's `ocidir://DIR@DIGEST`) as `oci:DIR:sha256:…`: skopeo's grammar ends
 * the path at the first colon, which made the path "DIR@sha256" and the digest a tag, and the error
 * said the layout did not exist. A path that really ends in `@sha256` keeps skopeo's reading.
 */
async function digestAfterPath(rest: string): Promise<string> {
  const match = /^([^:]+)@((?:sha256|sha512):[0-9a-f]+)$/.exec(rest);
  if (!match) return rest;
  const [, path, digest] = match as unknown as [string, string, string];
  if (await stat(path.concat('@', digest.slice(0, digest.indexOf(':')))).catch(() => undefined)) return rest;
  return `${path}:${digest}`;
}

function splitFirst(text: string): [string, string | undefined] {
  const colon = text.indexOf(':');
  if (colon === -1) return [text, undefined];
  const after = text.slice(colon + 1);
  return [text.slice(0, colon), after === '' ? undefined : after];
}
