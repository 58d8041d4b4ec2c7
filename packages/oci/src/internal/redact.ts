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
  let result = text;
  // Longest first: a secret that holds another (`user:password`, a form holding the raw value) is
  // replaced whole, not left with a piece around `REDACTED`.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    // Short values would redact ordinary words; credentials this short are not worth hiding by text search.
    if (secret.length >= 4) result = result.split(secret).join('REDACTED');
  }
  return result.replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 REDACTED');
}

/**
 * How long after it expires a short-lived secret is still redacted: a request sent with a token just
 * before it expired (a long upload) may be answered, and quote it, well after.
 */
export const shortLivedGraceMs = 3600_000;

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
  readonly #values = new Set<string>();
  /** Short-lived secrets' forms, and when each may be forgotten (see {@link addShortLived}). */
  readonly #shortLived = new Map<string, { forms: string[]; forgetAt: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  add(...values: (string | undefined)[]): void {
    for (const value of values) {
      if (value === undefined || value.length < 4) continue;
      for (const form of formsOf(value)) this.#values.add(form);
    }
  }

  /**
   * A secret valid for `lifetimeMs` (a bearer token), remembered until {@link shortLivedGraceMs}
   * after it expires. A client held for a long time (a provider, a mirror of thousands of
   * repositories) fetches a token per repository and expiry; keeping each one kept every token it
   * was ever issued, and made every redaction scan them all. Forgotten by time, not by count: a
   * token is sent until it expires, and a request that carried it may answer a while after.
   */
  addShortLived(value: string, lifetimeMs: number): void {
    if (value.length < 4) return;
    const now = this.#now();
    for (const [known, entry] of this.#shortLived) if (entry.forgetAt <= now) this.#shortLived.delete(known);
    const forgetAt = now + Math.max(0, lifetimeMs) + shortLivedGraceMs;
    const current = this.#shortLived.get(value);
    this.#shortLived.set(value, { forms: current?.forms ?? formsOf(value), forgetAt: Math.max(forgetAt, current?.forgetAt ?? 0) });
  }

  redact(text: string): string {
    return redactText(text, this.#shortLived.size === 0 ? this.#values : [...this.#values, ...[...this.#shortLived.values()].flatMap((e) => e.forms)]);
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
