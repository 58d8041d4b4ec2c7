/**
 * Single-flight work shared by concurrent callers, each with its own AbortSignal: the work runs under
 * a signal of its own, a caller's abort only ends that caller's wait, and the work is cancelled only
 * when every waiter has gone. A result is kept; a failure is forgotten so the next call retries.
 * @module
 */
import { AbortedError, throwIfAborted } from '../errors.js';

/** A single-flight task shared by concurrent callers; a caller's abort cancels it only when nobody else waits. */
export class SharedTask<T> {
  #current: { promise: Promise<T>; controller: AbortController; waiters: number; done: boolean } | undefined;
  constructor(private readonly run: (signal: AbortSignal) => Promise<T>) {}

  async get(signal?: AbortSignal): Promise<T> {
    throwIfAborted(signal);
    let current = this.#current;
    if (!current) {
      const controller = new AbortController();
      const promise = this.run(controller.signal);
      const fresh = { promise, controller, waiters: 0, done: false };
      promise.then(
        () => (fresh.done = true),
        () => {
          if (this.#current === fresh) this.#current = undefined;
        },
      );
      this.#current = current = fresh;
    }
    if (current.done) return current.promise;
    const entry = current;
    // Every caller counts, with or without a signal: one caller's abort must not cancel another's wait.
    entry.waiters++;
    try {
      if (!signal) return await entry.promise;
      return await new Promise<T>((resolve, reject) => {
        const onAbort = () => reject(new AbortedError('operation aborted', { cause: signal.reason }));
        signal.addEventListener('abort', onAbort, { once: true });
        entry.promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
      });
    } finally {
      entry.waiters--;
      if (signal?.aborted && entry.waiters === 0 && !entry.done) {
        entry.controller.abort(signal.reason);
        if (this.#current === entry) this.#current = undefined;
      }
    }
  }

  /** Cancels work in progress and waits for it to stop (before scratch files are removed). */
  async cancel(): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    if (!current) return;
    if (!current.done) current.controller.abort(new AbortedError('source closed'));
    await current.promise.catch(() => undefined);
  }
}

/** One SharedTask per key (a registry host, say), created on first use. */
export class SharedTaskMap<K, T> {
  readonly #tasks = new Map<K, SharedTask<T>>();
  constructor(private readonly run: (key: K, signal: AbortSignal) => Promise<T>) {}

  get(key: K, signal?: AbortSignal): Promise<T> {
    let task = this.#tasks.get(key);
    if (!task) {
      task = new SharedTask((taskSignal) => this.run(key, taskSignal));
      this.#tasks.set(key, task);
    }
    return task.get(signal);
  }
}
