/**
 * Named pipes (FIFOs) as libuv pipe handles rather than fs streams. An fs stream reads and writes on
 * the thread pool with blocking read(2)/write(2): a peer that holds the pipe open and neither reads
 * nor writes then holds a thread, and a cancelled copy, until it goes (a SIGINT took 18 s, a SIGTERM
 * waited for SIGKILL with 200 MB of staging left behind). A pipe handle is polled, and destroying it
 * closes it at once. Both ends are opened with O_NONBLOCK, so waiting for the peer honours the signal.
 * @module
 */
import { constants, open as openCallback } from 'node:fs';
import { Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { throwIfAborted } from '../errors.js';

/** open(2) with a raw descriptor, for handles (net.Socket, fs streams) that take one. */
export const openDescriptor = promisify(openCallback);

/** How often the write side of a FIFO is tried for a reader. */
const readerPollMs = 50;

/**
 * The FIFO at `path` as a writable pipe handle, once a reader has it open. open(2) refuses the write
 * side without a reader (ENXIO, O_NONBLOCK): it is tried again until one comes or `signal` aborts.
 */
export async function openFifoForWriting(path: string, signal?: AbortSignal): Promise<Socket> {
  for (;;) {
    throwIfAborted(signal);
    try {
      const fd = await openDescriptor(path, constants.O_WRONLY | constants.O_NONBLOCK);
      return new Socket({ fd, readable: false, writable: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
      await delay(readerPollMs, undefined, signal ? { signal } : {}).catch(() => throwIfAborted(signal));
    }
  }
}

/**
 * The FIFO at `path` as a readable pipe handle. The read side opens at once; Linux reports no
 * end-of-file on it before a writer has come and gone, so the handle waits for the writer's bytes
 * in the poll loop, where destroying it (an abort) ends the wait.
 */
export async function openFifoForReading(path: string): Promise<Socket> {
  const fd = await openDescriptor(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return new Socket({ fd, readable: true, writable: false });
}
