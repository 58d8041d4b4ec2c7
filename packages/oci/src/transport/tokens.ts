/**
 * Bearer tokens cached per (registry, realm, service, scope list) until shortly before they expire.
 * Concurrent requests for the same key share one exchange; a failed exchange is forgotten.
 * @module
 */

interface Entry {
  promise: Promise<{ token: string; expiresInMs: number }>;
  expiresAt?: number;
}

export class TokenCache {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async get(key: string, fetch: () => Promise<{ token: string; expiresInMs: number }>): Promise<string> {
    const existing = this.#entries.get(key);
    if (existing && (existing.expiresAt === undefined || existing.expiresAt > this.#now())) return (await existing.promise).token;
    const entry: Entry = { promise: fetch() };
    this.#entries.set(key, entry);
    try {
      const result = await entry.promise;
      entry.expiresAt = this.#now() + result.expiresInMs;
      return result.token;
    } catch (err) {
      if (this.#entries.get(key) === entry) this.#entries.delete(key);
      throw err;
    }
  }

  invalidate(key: string): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}
