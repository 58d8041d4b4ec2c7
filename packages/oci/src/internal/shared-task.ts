/**
 * Single-flight work shared by concurrent callers, each with its own AbortSignal: the work runs under
 * a signal of its own, a caller's abort only ends that caller's wait, and the work is cancelled only
 * when every waiter has gone. A result is kept; a failure is forgotten so the next call retries.
 * @module
 */
import { AbortedError, SlipwayError, throwIfAborted } from '../errors.js';

/** A single-flight task shared by concurrent callers; a caller's abort cancels it only when nobody else waits. */
export class SharedTask<T> {
  #current: { promise: Promise<T>; controller: AbortController; waiters: number; done: boolean } | undefined;
  /** Runs every waiter gave up on: aborted, no longer current, but maybe still cleaning up. */
  readonly #abandoned = new Set<Promise<unknown>>();
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
    // Work cancelled under us (cancel(): the source was closed) fails however the work noticed,
    // often a bare AbortError from a stream: callers get SLIPWAY_ABORTED.
    const settled = entry.promise.catch((err: unknown) => {
      if (entry.controller.signal.aborted && !SlipwayError.is(err)) throw new AbortedError('operation aborted', { cause: entry.controller.signal.reason });
      throw err;
    });
    try {
      if (!signal) return await settled;
      return await new Promise<T>((resolve, reject) => {
        const onAbort = () => reject(new AbortedError('operation aborted', { cause: signal.reason }));
        signal.addEventListener('abort', onAbort, { once: true });
        settled.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
      });
    } finally {
      entry.waiters--;
      if (signal?.aborted && entry.waiters === 0 && !entry.done) {
        entry.controller.abort(signal.reason);
        if (this.#current === entry) this.#current = undefined;
        const settled = entry.promise.then(
          () => undefined,
          () => undefined,
        );
        this.#abandoned.add(settled);
        void settled.then(() => this.#abandoned.delete(settled));
      }
    }
  }

  /**
   * Cancels work in progress and waits for it to stop, abandoned runs included (a run whose callers
   * all aborted may still be removing its temp files; scratch directories go only after this).
   */
  async cancel(): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    if (current && !current.done) current.controller.abort(new AbortedError('source closed'));
    await Promise.all([current?.promise.catch(() => undefined), ...this.#abandoned]);
  }
}

/**
 * One SharedTask per key (a registry host, say), created on first use. `keyOf` maps what a caller asks
 * with to its key, so several spellings share one task (`https://a.io/` and `a.io`); the work runs
 * with what the key's first caller asked. By default what is asked is the key.
 */
export class SharedTaskMap<A, T> {
  readonly #tasks = new Map<unknown, SharedTask<T>>();
  constructor(
    private readonly run: (asked: A, signal: AbortSignal) => Promise<T>,
    private readonly keyOf: (asked: A) => unknown = (asked) => asked,
  ) {}

  get(asked: A, signal?: AbortSignal): Promise<T> {
    const key = this.keyOf(asked);
    let task = this.#tasks.get(key);
    if (!task) {
      task = new SharedTask((taskSignal) => this.run(asked, taskSignal));
      this.#tasks.set(key, task);
    }
    return task.get(signal);
  }
}
