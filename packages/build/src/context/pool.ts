/**
 * A small pool of worker threads for walking and hashing, created lazily and terminated when
 * the hash is done (a warm run of an unchanged context never starts one).
 * @module
 */
import { Worker } from 'node:worker_threads';
import { AbortedError } from '@slipway/oci';
import type { ContextSetup, HashRequest, WalkRequest, WorkerReply } from './protocol.js';

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

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly setups: ContextSetup[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;
  private readonly onAbort = (): void => this.fail(new AbortedError('context hashing aborted', { cause: this.signal?.reason }));

  constructor(private readonly signal?: AbortSignal) {
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Workers started so far. */
  get size(): number {
    return this.slots.length;
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
    const worker = new Worker(new URL('./worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 64 } });
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
      if (!this.closed) this.fail(new Error(`context worker exited with code ${code}`));
    });
    this.slots.push(slot);
  }

  /** Sends a context definition to every worker (must precede walk requests for it). */
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
