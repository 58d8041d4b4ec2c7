/**
 * A counting semaphore with abortable waits: bounds concurrent requests per registry host.
 * @module
 */
import { AbortedError } from '../errors.js';

export type Release = () => void;

export class Semaphore {
  #available: number;
  readonly #waiters: { grant: (release: Release) => void; reject: (err: unknown) => void }[] = [];

  constructor(readonly limit: number) {
    this.#available = limit;
  }

  /** Resolves with a release function once a slot is free; calling release twice is harmless. */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(new AbortedError('operation aborted', { cause: signal.reason }));
    if (this.#available > 0) {
      this.#available--;
      return Promise.resolve(this.#releaser());
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter = {
        grant: (release: Release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
        reject,
      };
      const onAbort = () => {
        const index = this.#waiters.indexOf(waiter);
        if (index !== -1) this.#waiters.splice(index, 1);
        reject(new AbortedError('operation aborted', { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await task();
    } finally {
      release();
    }
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) next.grant(this.#releaser());
      else this.#available++;
    };
  }
}
