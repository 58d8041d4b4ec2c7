/**
 * Image references parsed and normalised exactly as Docker does (distribution/reference
 * `ParseNormalizedNamed` followed by `TagNameOnly`), so `slipway` and `docker pull` agree on what a
 * string names: `alpine` is `docker.io/library/alpine:latest`.
 * @see https://github.com/distribution/reference/blob/main/reference.go (grammar)
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { isDigest, type Digest } from '../v1/digest.js';

/** The registry Docker uses when a reference names none. */
export const dockerHubRegistry = 'docker.io';
/** The host that actually serves Docker Hub's registry API. */
export const dockerHubApiHost = 'registry-1.docker.io';
/** The tag assumed when a reference has neither tag nor digest. */
export const defaultTag = 'latest';
/** distribution/reference NameTotalLengthMax: registry + "/" + repository. */
export const maxNameLength = 255;

// Grammar from distribution/reference (regexp.go), anchored.
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainComponent}(?:\\.${domainComponent})*`;
const ipv6 = '\\[[a-fA-F0-9:]+\\]';
const domainPattern = new RegExp(`^(?:${domainName}|${ipv6})(?::[0-9]+)?$`);
const pathComponentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const hex64Pattern = /^[a-f0-9]{64}$/;

/** Whether `tag` is a name a reference can hold (distribution spec: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`). */
export function isValidTag(tag: string): boolean {
  return tagPattern.test(tag);
}

/** A repository on a registry, without tag or digest. */
export interface Repository {
  /** Registry as written (normalised for Docker Hub): `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly registry: string;
  /** Path inside the registry: `library/alpine`. */
  readonly repository: string;
  /** `registry/repository`. */
  readonly name: string;
  toString(): string;
}

/** A repository plus a tag, a digest, or both (the digest wins when resolving). */
export interface Reference extends Repository {
  readonly tag?: string;
  readonly digest?: Digest;
  /** What goes after `/manifests/` on the wire: the digest when present, else the tag. */
  readonly identifier: string;
  /** `registry/repository[:tag][@digest]`. */
  toString(): string;
  /** The same repository with this tag; a digest, if any, is kept (Docker's `WithTag`). */
  withTag(tag: string): Reference;
  /** The same repository with this digest; a tag, if any, is kept (Docker's `WithDigest`). */
  withDigest(digest: string): Reference;
  /** The same reference without its tag (only valid when it has a digest) or without its digest. */
  without(part: 'tag' | 'digest'): Reference;
}

class RepositoryName implements Repository {
  readonly name: string;
  constructor(readonly registry: string, readonly repository: string) {
    this.name = `${registry}/${repository}`;
  }
  toString(): string {
    return this.name;
  }
}

class ImageReference extends RepositoryName implements Reference {
  readonly tag?: string;
  readonly digest?: Digest;
  constructor(registry: string, repository: string, tag: string | undefined, digest: Digest | undefined) {
    super(registry, repository);
    if (tag !== undefined) this.tag = tag;
    if (digest !== undefined) this.digest = digest;
    Object.freeze(this);
  }
  get identifier(): string {
    return this.digest ?? this.tag ?? defaultTag;
  }
  override toString(): string {
    return `${this.name}${this.tag === undefined ? '' : `:${this.tag}`}${this.digest === undefined ? '' : `@${this.digest}`}`;
  }
  withTag(tag: string): Reference {
    if (!tagPattern.test(tag)) throw invalid(tag, 'tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}');
    return new ImageReference(this.registry, this.repository, tag, this.digest);
  }
  withDigest(digest: string): Reference {
    if (!isDigest(digest)) throw invalid(digest, 'digest must be sha256:<64 hex> or sha512:<128 hex>');
    return new ImageReference(this.registry, this.repository, this.tag, digest);
  }
  without(part: 'tag' | 'digest'): Reference {
    if (part === 'tag') {
      if (this.digest === undefined) throw invalid(this.toString(), 'cannot drop the tag of a reference without a digest');
      return new ImageReference(this.registry, this.repository, undefined, this.digest);
    }
    return new ImageReference(this.registry, this.repository, this.tag ?? defaultTag, undefined);
  }
}

function invalid(text: string, why: string): InvalidArgumentError {
  const shown = redactUserinfo(text);
  // The reason would quote pieces of the text, password included: give the real reason instead.
  const reason = shown === text ? why : 'credentials do not belong in a reference (user:password@…); use docker login, a Docker config or SLIPWAY_REGISTRY_USERNAME/PASSWORD';
  return new InvalidArgumentError(`invalid reference ${JSON.stringify(shown)}: ${reason}`, { code: 'SLIPWAY_INVALID_REFERENCE' });
}

/**
 * What follows the `@` of a digest reference, even a malformed one: a known algorithm, or any with a
 * long encoded part. `host:5000` after `user:pw@` is not one.
 */
const digestAfterAt = /^(?:(?:sha256|sha384|sha512|blake3)(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]*|[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,})$/;

/**
 * What follows the `@` of a lone-user userinfo: a registry host (with a `.` or a port, or
 * `localhost`, or an IPv6 literal), then the repository or the end.
 */
const hostAfterAt = /^(?:localhost|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9-]+(?=:))(?::\d+)?(?:\/|$)/;

/**
 * `text` with what could be a password hidden: `user:secret@host/repo` or `https://user:secret@…`,
 * a URL habit, is not a reference, and its error must not repeat the secret. The userinfo is up to
 * the last `@` not followed by a digest (a password may hold `/`, `@`, spaces); from its first `:` it
 * goes: `user:<redacted>@host/repo`. A userinfo without `:` is a token typed as the user
 * (`https://ghp_…@ghcr.io/app`, GitHub's habit) and goes whole: `<redacted>@host/repo`, when a scheme
 * came before it or a registry host follows it. `repo@sha256:…` and `app:1.0@sha256:…` are left as
 * they are, and so is `app@latest`.
 */
export function redactUserinfo(text: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text)?.[0] ?? '';
  const rest = text.slice(scheme.length);
  for (let at = rest.lastIndexOf('@'); at > 0; at = rest.lastIndexOf('@', at - 1)) {
    const after = rest.slice(at + 1);
    if (digestAfterAt.test(after)) continue;
    const colon = rest.indexOf(':');
    if (colon !== -1 && colon < at) return `${scheme}${rest.slice(0, colon + 1)}<redacted>${rest.slice(at)}`;
    if (scheme !== '' || hostAfterAt.test(after)) return `${scheme}<redacted>${rest.slice(at)}`;
    return text;
  }
  return text;
}

export interface ParseReferenceOptions {
  /**
   * Tag added when the reference has neither tag nor digest; `null` adds none.
   * @defaultValue `"latest"`
   */
  defaultTag?: string | null;
}

/**
 * Parses an image reference the way `docker pull` does.
 * - `alpine` → `docker.io/library/alpine:latest`; `index.docker.io/x` → `docker.io/library/x`
 * - the first path component is a registry iff it contains `.` or `:`, is `localhost`, or has an uppercase letter
 * - `name:tag@sha256:…` keeps both; the digest is what gets resolved
 * @throws InvalidArgumentError with code SLIPWAY_INVALID_REFERENCE, quoting the input and saying why.
 */
export function parseReference(text: string, options: ParseReferenceOptions = {}): Reference {
  const { registry, repository, tag, digest } = split(text);
  const fallback = options.defaultTag === undefined ? defaultTag : options.defaultTag;
  if (fallback !== null && !tagPattern.test(fallback)) throw invalid(fallback, 'default tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}');
  const effectiveTag = tag ?? (digest === undefined && fallback !== null ? fallback : undefined);
  return new ImageReference(registry, repository, effectiveTag, digest);
}

/** Parses `registry/repository` (no tag, no digest), with the same normalisation as parseReference. */
export function parseRepository(text: string): Repository {
  const { registry, repository, tag, digest } = split(text);
  if (tag !== undefined || digest !== undefined) throw invalid(text, 'want a repository without tag or digest');
  return new RepositoryName(registry, repository);
}

/** True when `text` parses as a reference. */
export function isReference(text: string): boolean {
  try {
    split(text);
    return true;
  } catch {
    return false;
  }
}

/** The host that serves the registry API for `registry`: Docker Hub's API lives on `registry-1.docker.io`. */
export function registryHost(registry: string): string {
  return registry === dockerHubRegistry || registry === 'index.docker.io' ? dockerHubApiHost : registry;
}

/**
 * The short form Docker prints (`alpine:latest`, `user/app`, `localhost:5000/app:1`).
 * Docker's `FamiliarString`.
 */
export function familiarString(reference: Reference | Repository): string {
  const full = reference.toString();
  if (reference.registry !== dockerHubRegistry) return full;
  const rest = full.slice(dockerHubRegistry.length + 1);
  return rest.startsWith('library/') && !reference.repository.slice('library/'.length).includes('/') ? rest.slice('library/'.length) : rest;
}

interface Parts {
  registry: string;
  repository: string;
  tag: string | undefined;
  digest: Digest | undefined;
}

function split(text: string): Parts {
  if (typeof text !== 'string' || text === '') throw invalid(String(text), 'empty');
  if (text.trim() !== text) throw invalid(text, 'leading or trailing whitespace');
  if (hex64Pattern.test(text)) throw invalid(text, 'a 64-character hexadecimal string is an image ID, not a name');

  let rest = text;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    const candidate = rest.slice(at + 1);
    if (!isDigest(candidate)) throw invalid(text, `digest ${JSON.stringify(candidate)} must be sha256:<64 hex> or sha512:<128 hex>`);
    digest = candidate;
    rest = rest.slice(0, at);
  }

  // A tag is what follows the last ':' after the last '/'; a ':' before that belongs to a registry port.
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) throw invalid(text, `tag ${JSON.stringify(tag)} must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  if (rest === '') throw invalid(text, 'no repository name');

  // distribution/reference splitDockerDomain.
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  let registry: string;
  let repository: string;
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    registry = dockerHubRegistry;
    repository = rest;
  } else {
    registry = first;
    repository = rest.slice(slash + 1);
  }
  if (registry === 'index.docker.io') registry = dockerHubRegistry;
  if (registry === dockerHubRegistry && !repository.includes('/')) repository = `library/${repository}`;

  if (!domainPattern.test(registry)) throw invalid(text, `registry ${JSON.stringify(registry)} is not a valid host[:port]`);
  if (repository === '') throw invalid(text, 'no repository name after the registry');
  if (repository.toLowerCase() !== repository) throw invalid(text, 'repository name must be lowercase');
  for (const component of repository.split('/')) {
    if (component === '') throw invalid(text, 'empty path component (doubled or trailing "/")');
    if (!pathComponentPattern.test(component)) {
      throw invalid(text, `path component ${JSON.stringify(component)} must be lowercase letters and digits separated by ".", "_", "__" or "-"`);
    }
  }
  const name = `${registry}/${repository}`;
  if (name.length > maxNameLength) throw invalid(text, `name is ${name.length} characters, at most ${maxNameLength} allowed`);
  return { registry, repository, tag, digest };
}
