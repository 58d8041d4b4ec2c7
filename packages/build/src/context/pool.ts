/**
 * A small pool of worker threads for walking and hashing.
 *
 * Pools are created lazily (a warm run of a small unchanged context never starts one) and, once a
 * hash is done, parked for {@link POOL_IDLE_MS} instead of terminated: a long-lived process (the
 * Pulumi and Terraform providers hash every image's context on each preview, the bench hashes in a
 * loop) then walks with warm workers, whose start-up (~40–60 ms here: a V8 isolate plus this
 * package's walker modules) would otherwise cost more than the `lstat` calls they take over. A
 * parked pool's workers are unref'd, so it never keeps a process alive; its timer is unref'd too.
 * @module
 */
import { Worker } from 'node:worker_threads';
import { AbortedError } from '@slipway/oci';
import type { ContextSetup, HashRequest, WalkRequest, WorkerReply } from './protocol.js';

/** How long a finished hash keeps its workers for the next one. */
export const POOL_IDLE_MS = 5000;

interface Slot {
  worker: Worker;
  inflight: number;
}

interface Pending {
  slot: Slot;
  resolve: (reply: WorkerReply) => void;
  reject: (error: Error) => void;
}

type Request = Omit<WalkRequest, 'id'> | Omit<HashRequest, 'id'>;

/**
 * A worker thread ended while the pool still counted on it. `reusedPool`: the pool had been parked,
 * so the worker may have died between two hashes (a host's `terminate`, a thread killed for memory)
 * with its 'exit' event not delivered yet when the pool was taken; a fresh pool can do the work.
 */
export class WorkerLostError extends Error {
  constructor(
    readonly exitCode: number,
    readonly reusedPool: boolean,
  ) {
    super(`context worker exited with code ${exitCode}`);
    this.name = 'WorkerLostError';
  }
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private setups: ContextSetup[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;
  /** Taken from the parked slot rather than started for this hash. */
  reused = false;
  private signal: AbortSignal | undefined;
  private readonly onAbort = (): void => this.fail(new AbortedError('context hashing aborted', { cause: this.signal?.reason }));

  constructor(signal?: AbortSignal) {
    this.attach(signal);
  }

  /** Workers started so far. */
  get size(): number {
    return this.slots.length;
  }

  /** Usable for another hash: not failed, not closed, nothing in flight. */
  get reusable(): boolean {
    return !this.failure && !this.closed && this.pending.size === 0;
  }

  /** Binds the pool to one hash: its abort fails the pool; its workers keep the process alive. */
  attach(signal: AbortSignal | undefined): void {
    this.signal = signal;
    this.setups = [];
    signal?.addEventListener('abort', this.onAbort, { once: true });
    for (const s of this.slots) s.worker.ref();
  }

  /** Unbinds the pool from its hash (parked workers must not keep the process alive). */
  detach(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.signal = undefined;
    for (const s of this.slots) s.worker.unref();
  }

  /** Grows the pool to `n` workers (a new worker first receives every context definition). */
  grow(n: number): void {
    while (this.slots.length < n && !this.closed) {
      this.spawn();
      const worker = this.slots[this.slots.length - 1]!.worker;
      for (const msg of this.setups) worker.postMessage(msg);
    }
  }

  private spawn(): void {
    // A larger young generation: the walk allocates many short-lived strings and Stats objects.
    // `--input-type` (a host run with `node --input-type=module -e`) is refused by a worker from a file.
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const worker = new Worker(new URL('./worker.js', import.meta.url), { execArgv, resourceLimits: { maxYoungGenerationSizeMb: 64 } });
    const slot: Slot = { worker, inflight: 0 };
    worker.on('message', (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      p.slot.inflight--;
      p.resolve(reply);
    });
    worker.on('error', (e) => this.fail(new Error(`context worker failed: ${e.message}`, { cause: e })));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(new WorkerLostError(code, this.reused));
    });
    this.slots.push(slot);
  }

  /**
   * Sends a context definition to every worker (must precede walk requests for it). A parked
   * pool's workers still hold the previous hash's definitions under the same ids: this replaces them.
   */
  setup(msg: ContextSetup): void {
    this.setups.push(msg);
    for (const slot of this.slots) slot.worker.postMessage(msg);
  }

  /** Requests in flight on the least busy worker. */
  get minInflight(): number {
    let min = Infinity;
    for (const s of this.slots) min = Math.min(min, s.inflight);
    return min;
  }

  request(msg: Request, transfer?: ArrayBuffer[]): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    let slot = this.slots[0]!;
    for (const s of this.slots) if (s.inflight < slot.inflight) slot = s;
    const id = this.nextId++;
    slot.inflight++;
    return new Promise<WorkerReply>((resolve, reject) => {
      this.pending.set(id, { slot, resolve, reject });
      slot.worker.postMessage({ ...msg, id }, transfer ?? []);
    });
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    void this.close();
  }

  /** See {@link loseParkedWorkerForTests}. */
  firstWorkerForTests(): Worker | undefined {
    return this.slots[0]?.worker;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    if (parked?.pool === this) {
      clearTimeout(parked.timer);
      parked = undefined;
    }
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

let parked: { pool: WorkerPool; timer: NodeJS.Timeout } | undefined;

/** Workers of the parked pool, 0 when none is waiting (with some, a parallel walk costs no start-up). */
export function warmWorkers(): number {
  return parked?.pool.reusable ? parked.pool.size : 0;
}

/**
 * The parked pool if there is one (taken exclusively), else a new one. A parked pool with more than
 * `maxWorkers` workers is closed instead: a hash asking for fewer threads (`concurrency`) must not
 * be handed the bigger pool of an earlier one. `fresh`: never the parked pool (a retry after one lost
 * a worker).
 */
export function acquireWorkerPool(signal?: AbortSignal, maxWorkers = Infinity, fresh = false): WorkerPool {
  const p = parked;
  if (p) {
    parked = undefined;
    clearTimeout(p.timer);
    if (!fresh && p.pool.reusable && p.pool.size <= maxWorkers) {
      p.pool.attach(signal);
      p.pool.reused = true;
      if (loseWorkerOnReuse) {
        loseWorkerOnReuse = false;
        void p.pool.firstWorkerForTests()?.terminate();
      }
      return p.pool;
    }
    void p.pool.close();
  }
  return new WorkerPool(signal);
}

/** Parks a pool after a hash for the next one, or closes it if it failed or another is parked. */
export async function releaseWorkerPool(pool: WorkerPool): Promise<void> {
  pool.detach();
  if (!pool.reusable || parked !== undefined || pool.size === 0) {
    await pool.close();
    return;
  }
  const timer = setTimeout(() => void pool.close(), POOL_IDLE_MS);
  timer.unref();
  parked = { pool, timer };
}

let loseWorkerOnReuse = false;

/**
 * Tests only: the next hash that takes the parked pool finds one of its workers ending just after
 * taking it, before its 'exit' event can be delivered, which is what a thread dying between two
 * hashes looks like to the next one (a plain terminate() of a parked worker may be noticed while still
 * parked, and then the pool is simply not reused). False when nothing is parked.
 */
export function loseParkedWorkerForTests(): boolean {
  if (!parked?.pool.firstWorkerForTests()) return false;
  loseWorkerOnReuse = true;
  return true;
}

/** Terminates a parked pool now (tests, or a host about to exit cleanly). */
export async function closeIdleWorkers(): Promise<void> {
  await parked?.pool.close();
}
