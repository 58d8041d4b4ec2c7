/**
 * Worker thread for the context hasher: walks subtrees and hashes files on request.
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { FileHashError, hashFileInto } from './hashfile.js';
import { PatternMatcher, type IgnoreDialect } from './ignore.js';
import type { EncodedChunk, HashReply, WalkReply, WorkerRequest } from './protocol.js';
import { ContextWalkError, walkTask } from './walk.js';

const port = parentPort;
if (port === null) throw new Error('context worker must run in a worker thread');

const contexts = new Map<number, { root: string; matcher: PatternMatcher | null; dialect: IgnoreDialect }>();
const readBuffer = Buffer.allocUnsafe(1 << 20);

port.on('message', (msg: WorkerRequest) => {
  switch (msg.type) {
    case 'context':
      contexts.set(msg.ctx, {
        root: msg.root,
        matcher: msg.patterns.length > 0 ? new PatternMatcher(msg.patterns, msg.dialect) : null,
        dialect: msg.dialect,
      });
      return;
    case 'walk': {
      const ctx = contexts.get(msg.ctx);
      let reply: WalkReply;
      try {
        if (!ctx) throw new Error(`unknown context ${msg.ctx}`);
        const chunk = walkTask(ctx.root, ctx.matcher, ctx.dialect, msg.task, msg.budget, msg.statFiles);
        const encoded: EncodedChunk = {
          dir: chunk.dir,
          paths: chunk.paths.join('\0'),
          count: chunk.paths.length,
          kinds: chunk.kinds,
          stats: chunk.stats,
          links: chunk.links,
          leftovers: chunk.leftovers,
          seen: chunk.seen,
          surrogates: chunk.surrogates,
        };
        reply = { type: 'walked', id: msg.id, chunk: encoded };
        port.postMessage(reply, [encoded.kinds.buffer as ArrayBuffer, encoded.stats.buffer as ArrayBuffer]);
      } catch (e) {
        const failure = e instanceof ContextWalkError ? { path: e.path, errno: e.errno, message: e.message } : { path: '', errno: 'EINTERNAL', message: String(e) };
        reply = { type: 'walked', id: msg.id, error: failure };
        port.postMessage(reply);
      }
      return;
    }
    case 'hash': {
      const n = msg.files.length;
      const digests = new Uint8Array(n * 32);
      const sizes = new Float64Array(n);
      const stats = new Float64Array(n * 5);
      const errors: HashReply['errors'] = [];
      for (let i = 0; i < n; i++) {
        try {
          sizes[i] = hashFileInto(msg.files[i]!, readBuffer, digests, i * 32, stats, i * 5);
        } catch (e) {
          sizes[i] = -1;
          errors.push(e instanceof FileHashError ? { index: i, errno: e.errno, message: e.message } : { index: i, errno: 'EIO', message: String(e) });
        }
      }
      const reply: HashReply = { type: 'hashed', id: msg.id, digests, sizes, stats, errors };
      port.postMessage(reply, [digests.buffer, sizes.buffer, stats.buffer]);
      return;
    }
  }
});
