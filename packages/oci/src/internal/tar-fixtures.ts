/**
 * Tar builders for tests: archives no honest tool would write (hostile names, truncation, bad
 * manifests) are made here with tar-stream. Only tests import this module.
 * @module
 */
import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';

export interface TestEntry {
  name: string;
  body?: Buffer | string;
  type?: 'file' | 'symlink' | 'link' | 'directory';
  linkname?: string;
  /** pax records for the entry (tar-stream writes them in a pax header before it). */
  pax?: Record<string, string>;
}

/** Builds a tar in memory with tar-stream (the bad-input tests need tars no honest tool would write). */
export async function makeTar(entries: TestEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of p) chunks.push(chunk as Buffer);
  })();
  for (const e of entries) {
    const body = e.body === undefined ? undefined : Buffer.from(e.body);
    await new Promise<void>((resolve, reject) => {
      const header = { name: e.name, type: e.type ?? 'file', ...(e.linkname ? { linkname: e.linkname } : {}), ...(body ? { size: body.length } : {}), ...(e.pax ? { pax: e.pax } : {}) };
      p.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}


export interface StreamEntry {
  name: string;
  size: number;
  /** Produces exactly `size` bytes. */
  body: () => Readable;
}

/** Writes a tar to a file, streaming each entry's body (for archives too big for memory). */
export async function writeTarFile(path: string, entries: (TestEntry | StreamEntry)[]): Promise<void> {
  const p = pack();
  const writing = pipeline(p, createWriteStream(path));
  for (const e of entries) {
    if (typeof e.body === 'function') {
      const sink = p.entry({ name: e.name, size: (e as StreamEntry).size, type: 'file' });
      await pipeline(e.body(), sink as unknown as NodeJS.WritableStream);
    } else {
      const t = e as TestEntry;
      const body = t.body === undefined ? Buffer.alloc(0) : Buffer.from(t.body);
      await new Promise<void>((resolve, reject) => {
        p.entry({ name: t.name, type: t.type ?? 'file', ...(t.linkname ? { linkname: t.linkname } : {}), size: body.length }, body, (err) => (err ? reject(err) : resolve()));
      });
    }
  }
  p.finalize();
  await writing;
}
