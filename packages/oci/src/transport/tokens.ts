/**
 * Bearer tokens cached per (registry, realm, service, scope list) until shortly before they expire.
 * Concurrent requests for the same key share one exchange, run under a signal of its own
 * (SharedTask): one caller's abort ends only its own wait, and the exchange is cancelled only when
 * every caller has gone. A failed exchange is forgotten.
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
}

export class TokenCache {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The token for `key`, fetching it (with the exchange's own signal) when absent or expired. */
  async get(key: string, fetch: (signal: AbortSignal) => Promise<FetchedToken>, signal?: AbortSignal): Promise<string> {
    let entry = this.#entries.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt <= this.#now()) entry = undefined;
    if (!entry) {
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
    return (await entry.task.get(signal)).token;
  }

  invalidate(key: string): void {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}
