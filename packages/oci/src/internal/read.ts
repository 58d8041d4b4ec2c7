/**
 * Bounded body reads: a registry's error body, token response or manifest is read through a cap so a
 * hostile or broken server cannot make us buffer unbounded data.
 * @module
 */
import type { Readable } from 'node:stream';

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`body exceeds ${limit} bytes`);
  }
}

/** Reads at most `limit` bytes; with `truncate` it stops quietly at the cap, otherwise it throws BodyTooLargeError. */
export async function readCapped(body: Readable, limit: number, truncate = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  // Destroying an unfinished undici body emits an abort error; we are the only reader, so ignore it.
  body.on('error', () => {});
  try {
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      total += buffer.length;
      if (total > limit) {
        if (!truncate) throw new BodyTooLargeError(limit);
        chunks.push(buffer.subarray(0, buffer.length - (total - limit)));
        break;
      }
      chunks.push(buffer);
    }
  } finally {
    if (!body.destroyed) body.destroy();
  }
  return Buffer.concat(chunks);
}
