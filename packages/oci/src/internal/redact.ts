/**
 * Redaction of secrets from URLs and free text, so errors and debug logs can quote what happened
 * without quoting credentials (octokit's RequestError and ggcr's redact package do the same).
 * @module
 */

// Query parameters whose values are safe to show; every other value is replaced. Upload `Location`s
// carry opaque state (`_state`, distribution's HMAC-signed upload state) and object-store redirects carry
// signatures (`X-Amz-Signature`, `sig`), so an allowlist is safer than a denylist.
const safeQueryKeys = new Set(['digest', 'mount', 'from', 'n', 'last', 'service', 'scope', 'tag', 'artifactType', 'origin', 'digest-algorithm']);

/** The URL without userinfo and with the values of non-allowlisted query parameters replaced by `REDACTED`. */
export function redactUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = new URL(url.toString());
  } catch {
    return '<unparseable URL>';
  }
  parsed.username = '';
  parsed.password = '';
  const entries = [...parsed.searchParams.entries()];
  if (entries.length > 0) {
    parsed.search = '';
    for (const [key, value] of entries) parsed.searchParams.append(key, safeQueryKeys.has(key) ? value : 'REDACTED');
  }
  return parsed.toString();
}

/** Replaces every known secret (and anything after `Bearer `/`Basic `) in `text`. */
export function redactText(text: string, secrets: Iterable<string> = []): string {
  return redactWith(text, matcherOf([...secrets].map((secret) => ({ secret, partial: true }))));
}

/**
 * A secret to look for; `partial`: its start alone is redacted too (see matchedLength). Not for a
 * `user:password` pair: its start is the user name, which messages name on purpose.
 */
interface KnownSecret {
  secret: string;
  partial: boolean;
}

/** Secrets by their first four characters, longest first in each list. */
type SecretMatcher = Map<string, KnownSecret[]>;

function matcherOf(secrets: Iterable<KnownSecret>): SecretMatcher {
  const matcher: SecretMatcher = new Map();
  for (const known of secrets) {
    // Short values would redact ordinary words; credentials this short are not worth hiding by text search.
    if (known.secret.length < 4) continue;
    const key = known.secret.slice(0, 4);
    const list = matcher.get(key);
    if (list) list.push(known);
    else matcher.set(key, [known]);
  }
  for (const list of matcher.values()) list.sort((a, b) => b.secret.length - a.secret.length);
  return matcher;
}

/**
 * One pass over `text`, looking each position up by its next four characters, so the cost does not
 * grow with the number of secrets (a client with thousands of tokens redacted an error detail in
 * tens of seconds, one split per secret per string). Every occurrence of every secret is covered,
 * overlapping ones merged into one `REDACTED`: a secret holding another (`user:password`) or
 * overlapping it leaves no piece of either.
 */
function redactWith(text: string, matcher: SecretMatcher): string {
  let result = text;
  const ranges: [number, number][] = [];
  if (matcher.size > 0) {
    for (let i = 0; i + 4 <= text.length; i++) {
      const candidates = matcher.get(text.slice(i, i + 4));
      if (candidates === undefined) continue;
      const length = matchedLength(text, i, candidates);
      if (length === 0) continue;
      const last = ranges.at(-1);
      if (last && i < last[1]) last[1] = Math.max(last[1], i + length);
      else ranges.push([i, i + length]);
    }
  }
  if (ranges.length > 0) {
    let at = 0;
    result = '';
    for (const [from, to] of ranges) {
      result += `${text.slice(at, from)}REDACTED`;
      at = to;
    }
    result += text.slice(at);
  }
  return result.replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 REDACTED');
}

/**
 * How much of `text` from `at` is a secret: a whole one, else the longest start of one that is long
 * enough to be no accident: {@link minPartialSecret} characters, or {@link minCutSecret} where the
 * text ends (a server echoing the first 23 characters of a token, or an error body cut at our cap
 * in the middle of one, showed that much of it). 0 for none.
 */
function matchedLength(text: string, at: number, secrets: readonly KnownSecret[]): number {
  let longest = 0;
  for (const { secret, partial } of secrets) {
    let n = 4;
    while (n < secret.length && at + n < text.length && text.charCodeAt(at + n) === secret.charCodeAt(n)) n++;
    const enough = n === secret.length ? 0 : !partial ? Infinity : at + n === text.length ? minCutSecret : minPartialSecret;
    if (n >= enough && n > longest) longest = n;
  }
  return longest;
}

/** A start of a secret this long is redacted wherever it appears in text (see matchedLength). */
const minPartialSecret = 12;
/** A start of a secret this long is redacted where the text ends with it (a cut). */
const minCutSecret = 6;

/**
 * How long after it expires a short-lived secret is still redacted: a request sent with a token just
 * before it expired (a long upload) may be answered, and quote it, well after.
 */
export const shortLivedGraceMs = 3600_000;

/**
 * At most this many short-lived secrets are remembered, the least recently used forgotten first (a
 * token is used again by every request that carries it): a mirror of thousands of repositories
 * within an hour kept 5000 tokens, 35 MB, otherwise.
 */
export const shortLivedLimit = 1024;

/**
 * A secret as it may appear in text: as is; base64, as in Basic headers and docker config `auth`
 * fields; escaped as a JSON error body quotes it; URL-encoded, as an OAuth2 form or a query string
 * carries it (`+` for a space in a form, `%20` in a URI component).
 */
function formsOf(value: string): string[] {
  return [value, Buffer.from(value).toString('base64'), JSON.stringify(value).slice(1, -1), encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2)];
}

/** How deep {@link SecretSet.redactJson} walks before it redacts a subtree as one JSON string. */
const maxJsonDepth = 32;

/**
 * Collects the secret values a client has seen (passwords, tokens) so any message built from a
 * registry's response can be scrubbed of them, even if a server echoes them back: as sent (base64
 * in a Basic header, URL-encoded in an OAuth2 form) or as a server quotes them (escaped in JSON).
 */
export class SecretSet {
  /** Each form of a credential, and whether its start alone is redacted too. */
  readonly #values = new Map<string, boolean>();
  /** Short-lived secrets' forms and when each may be forgotten, least recently used first (see {@link addShortLived}). */
  readonly #shortLived = new Map<string, { forms: string[]; forgetAt: number }>();
  /** Built on the first redaction after the secrets changed. */
  #matcher: SecretMatcher | undefined;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  add(...values: (string | undefined)[]): void {
    this.#addForms(values, true);
  }

  /**
   * Secrets redacted only whole: a `user:password` pair, whose start is the user name (a
   * `gitlab-ci-token` or an e-mail login that messages name on purpose). The password in it is
   * added by {@link add}, and goes in part too.
   */
  addWhole(...values: (string | undefined)[]): void {
    this.#addForms(values, false);
  }

  #addForms(values: (string | undefined)[], partial: boolean): void {
    for (const value of values) {
      if (value === undefined || value.length < 4) continue;
      // A form known both ways keeps partial matching (a password that is also some pair's start).
      for (const form of formsOf(value)) this.#values.set(form, partial || this.#values.get(form) === true);
      this.#matcher = undefined;
    }
  }

  /**
   * A secret valid for `lifetimeMs` (a bearer token), remembered until {@link shortLivedGraceMs}
   * after it expires, and while it is among the {@link shortLivedLimit} last used; call it again on
   * each use (0 for the lifetime then). A client held for a long time (a provider, a mirror of
   * thousands of repositories) fetches a token per repository and expiry: keeping each one kept
   * every token it was ever issued. Not by count alone: a token is sent until it expires, and a
   * request that carried it may be answered a while after.
   */
  addShortLived(value: string, lifetimeMs: number): void {
    if (value.length < 4) return;
    const now = this.#now();
    const forgetAt = now + Math.max(0, lifetimeMs) + shortLivedGraceMs;
    const current = this.#shortLived.get(value);
    // Moved to the end: the most recently used.
    this.#shortLived.delete(value);
    this.#shortLived.set(value, { forms: current?.forms ?? formsOf(value), forgetAt: Math.max(forgetAt, current?.forgetAt ?? 0) });
    if (current === undefined) this.#matcher = undefined;
    for (const [known, entry] of this.#shortLived) {
      if (entry.forgetAt > now && this.#shortLived.size <= shortLivedLimit) continue;
      this.#shortLived.delete(known);
      this.#matcher = undefined;
    }
  }

  redact(text: string): string {
    this.#matcher ??= matcherOf([
      ...[...this.#values].map(([secret, partial]) => ({ secret, partial })),
      ...[...this.#shortLived.values()].flatMap((e) => e.forms.map((secret) => ({ secret, partial: true }))),
    ]);
    return redactWith(text, this.#matcher);
  }
  /**
   * A parsed JSON value (an error's `detail`) with every string in it, keys included, redacted: a
   * secret quoted in a string is found in its unescaped form. Past {@link maxJsonDepth} levels the
   * rest is redacted as its JSON text and kept as a string.
   */
  redactJson(value: unknown, depth = 0): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (typeof value !== 'object' || value === null) return value;
    if (depth >= maxJsonDepth) return this.redact(JSON.stringify(value));
    if (Array.isArray(value)) return value.map((item) => this.redactJson(item, depth + 1));
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [this.redact(key), this.redactJson(item, depth + 1)]));
  }
}
