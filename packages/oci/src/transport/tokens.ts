/**
 * Bearer tokens cached per (registry, realm, service, scope list) until shortly before they expire.
 * Concurrent requests for the same key share one exchange, run under a signal of its own
 * (SharedTask): one caller's abort ends only its own wait, and the exchange is cancelled only when
 * every caller has gone. A failed exchange is forgotten. A token the registry rejects is dropped
 * through the {@link TokenLease} it was handed out with, so the entry dropped is the one the request
 * used, and a caller can tell a token that stopped working from one that never did.
 * @module
 */
import { SharedTask } from '../internal/shared-task.js';

export interface FetchedToken {
  token: string;
  expiresInMs: number;
}

interface Entry {
  task: SharedTask<FetchedToken>;
  /** Set when the exchange succeeds. */
  expiresAt?: number;
  /** Set once the registry answered a request sent with the token without a 401. */
  accepted?: boolean;
}

/** A token as handed to one request, to report back what the registry made of it. */
export interface TokenLease {
  readonly token: string;
  readonly key: string;
  /** The cache entry it came from (opaque to callers). */
  readonly entry: object;
}

export class TokenCache {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The token for `key`, fetching it (with the exchange's own signal) when absent or expired. */
  async get(key: string, fetch: (signal: AbortSignal) => Promise<FetchedToken>, signal?: AbortSignal): Promise<string> {
    return (await this.lease(key, fetch, signal)).token;
  }

  /** As {@link get}, with a lease to hand back to {@link accept} or {@link reject}. */
  async lease(key: string, fetch: (signal: AbortSignal) => Promise<FetchedToken>, signal?: AbortSignal): Promise<TokenLease> {
    let entry = this.#entries.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt <= this.#now()) entry = undefined;
    if (!entry) {
      this.#dropExpired();
      const fresh: Entry = {
        task: new SharedTask(async (taskSignal) => {
          const result = await fetch(taskSignal);
          fresh.expiresAt = this.#now() + result.expiresInMs;
          return result;
        }),
      };
      this.#entries.set(key, fresh);
      entry = fresh;
    }
    const { token } = await entry.task.get(signal);
    return { token, key, entry };
  }

  /** The registry took the leased token (answered without a 401). */
  accept(lease: TokenLease): void {
    (lease.entry as Entry).accepted = true;
  }

  /**
   * The registry answered 401 to the leased token: drop its entry, unless a newer one replaced it
   * already (several requests in flight with the same token each see the 401; only the first must
   * drop it, or the later ones would throw away the fresh token the first fetched). Returns whether
   * the registry had accepted this token before: it then expired early or was revoked, and the
   * credentials it was fetched with are not to blame.
   */
  reject(lease: TokenLease): boolean {
    if (this.#entries.get(lease.key) === lease.entry) this.#entries.delete(lease.key);
    return (lease.entry as Entry).accepted === true;
  }

  /**
   * Forgets expired tokens of every key, when a new one is about to be fetched: a long-lived client
   * that pushes to many repositories holds a key per repository, and kept every token it was issued.
   */
  #dropExpired(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}
