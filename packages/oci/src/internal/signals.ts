/**
 * Linking abort signals for the length of one operation.
 *
 * Why not `AbortSignal.any`: Node 20 (measured on 20.20.2) keeps every composite it makes in a set
 * on each source signal (a WeakRef per call, not pruned), so a long-lived signal (a provider's, a
 * client's) grows by one entry per request: 200 000 calls left 200 000 entries and 11.6 MB. Here the
 * listeners are removed when the operation ends, and nothing is made when one signal will do.
 * @module
 */
import { setMaxListeners } from 'node:events';

export interface LinkedSignal {
  /** Aborts when any of the linked signals does (undefined when none was given). */
  readonly signal: AbortSignal | undefined;
  /** Unhooks from the linked signals; call it once the operation is over. Idempotent. */
  dispose(this: void): void;
}

const nothingToDispose = (): void => undefined;

/** A signal that aborts, with the first reason, when any of `signals` does. */
export function linkSignals(...signals: readonly (AbortSignal | undefined)[]): LinkedSignal {
  const distinct = [...new Set(signals.filter((s): s is AbortSignal => s !== undefined))];
  if (distinct.length <= 1) return { signal: distinct[0], dispose: nothingToDispose };
  const aborted = distinct.find((s) => s.aborted);
  if (aborted) return { signal: AbortSignal.abort(aborted.reason), dispose: nothingToDispose };
  const controller = new AbortController();
  // A composite fans out to the operation's own waiters (each request, stream, queued task):
  // many listeners are expected there, not a leak.
  setMaxListeners(0, controller.signal);
  const onAbort = function (this: AbortSignal): void {
    dispose();
    controller.abort(this.reason);
  };
  const dispose = (): void => {
    for (const s of distinct) s.removeEventListener('abort', onAbort);
  };
  for (const s of distinct) s.addEventListener('abort', onAbort, { once: true });
  return { signal: controller.signal, dispose };
}
