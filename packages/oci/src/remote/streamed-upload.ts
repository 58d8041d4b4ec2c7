/**
 * A blob upload that starts before its digest is known: `POST` a session, send the bytes as they are
 * produced in **one `PATCH` with no `Content-Range`** (chunked transfer encoding), then `PUT
 * <location>?digest=` with an empty body once the producer knows the digest. This is the upload
 * docker, containers/image and ggcr's `stream.Layer` make (distribution-spec "streamed" upload); the
 * registry hashes what it stored and refuses the `PUT` unless the digest matches, so a blob can never
 * be committed under a digest its bytes do not have.
 *
 * It is an optimisation only, and never retried: a streamed body cannot be replayed, and some
 * registries or proxies refuse a PATCH without `Content-Range` (ggcr #2005: 400 through vSphere
 * networking). Every failure ends as `finish()` resolving `'failed'` (the session is `DELETE`d, best
 * effort) and the caller uploads the blob the ordinary way ({@link uploadBlob}) from a replayable source.
 * @module
 */
import { PassThrough, type Writable } from 'node:stream';
import { debuglog } from 'node:util';
import { AbortedError, SizeMismatchError } from '../errors.js';
import { linkSignals } from '../internal/signals.js';
import type { Reference, Repository } from '../name/reference.js';
import type { Transport } from '../transport/transport.js';
import type { Descriptor } from '../v1/manifest.js';
import { pushScope, uploadsPath } from './paths.js';
import { cancel, checkCommitted, describe, parseRange, sessionFrom, withDigest, type Session } from './upload.js';

const debug = debuglog('slipway');

/** Bytes buffered ahead of the connection before `sink.write()` asks the producer to wait. */
export const defaultStreamBuffer = 4 * 1024 * 1024;

export interface StreamedUploadCall {
  transport: Transport;
  repository: Repository | Reference;
  signal?: AbortSignal;
  /** @defaultValue 4 MiB ({@link defaultStreamBuffer}); memory held is about twice this */
  highWaterMark?: number;
}

export type StreamedUploadOutcome = 'ok' | 'failed';

export interface StreamedUpload {
  /**
   * Write the blob's bytes here, in order, then `end()` it. `write()` returning false means wait for
   * `'drain'`. When the upload fails the sink is destroyed with the reason (an `'error'` event): stop
   * writing, keep going without it, and upload the blob the ordinary way later.
   */
  readonly sink: Writable;
  /**
   * Commits the blob under `descriptor.digest` once every byte was written and the sink ended.
   * Resolves `'ok'` when the registry answered 201 for that digest, `'failed'` otherwise (the session
   * is then deleted). Never rejects. Idempotent.
   */
  finish(descriptor: Descriptor): Promise<StreamedUploadOutcome>;
  /** Gives the upload up: the PATCH is cut, the session deleted (best effort). No-op once finished. */
  abort(reason?: unknown): void;
  /** Why the upload failed, once it has (for logs); undefined otherwise. */
  readonly error: unknown;
}

/** Starts a streamed upload to `repository`; bytes written to `sink` before the session exists are buffered. */
export function startStreamedUpload(call: StreamedUploadCall): StreamedUpload {
  const { transport, repository } = call;
  const registry = repository.registry;
  const scopes = [pushScope(repository.repository)];
  const what = `streamed blob to ${repository.name}`;
  const controller = new AbortController();
  // Unhooked from the caller's signal once the upload is over (finished, or abandoned and cleaned up).
  const linked = linkSignals(call.signal, controller.signal);
  const signal = linked.signal!;
  const body = new PassThrough({ highWaterMark: call.highWaterMark ?? defaultStreamBuffer });
  // Failures are reported through finish(); a producer that stopped listening must not crash the process.
  body.on('error', () => undefined);
  let session: Session | undefined;
  let error: unknown;
  let finishing: Promise<StreamedUploadOutcome> | undefined;
  let committed = false;
  let cancelled = false;

  const fail = (err: unknown): void => {
    error ??= err;
    // Tells the producer at once (its 'error' listener), so it stops feeding an upload that is over.
    if (!body.destroyed) body.destroy(asError(err));
  };
  const cancelSession = async (reason?: unknown): Promise<void> => {
    if (cancelled || committed || !session) return;
    cancelled = true;
    await cancel(transport, registry, session, scopes, reason);
  };

  const patched = (async (): Promise<number | undefined> => {
    const started = await transport.request({
      method: 'POST',
      registry,
      path: uploadsPath(repository.repository),
      headers: { 'content-length': '0' },
      // Push scope first: a few registries only look at the first scope (ggcr bearer.go).
      scopes,
      expect: [202],
      signal,
    });
    session = sessionFrom(started, what);
    const response = await transport.request({
      method: 'PATCH',
      registry,
      path: session.location,
      // No Content-Length and no Content-Range: the body is sent chunked, its size known only at the end.
      headers: { 'content-type': 'application/octet-stream' },
      body: () => body,
      kind: 'push',
      scopes,
      // The body is a one-shot stream: nothing to replay. A failure falls back to the ordinary upload.
      retry: false,
      expect: [202],
      signal,
    });
    session = { ...sessionFrom(response, what, session.location), minChunk: 0 };
    return parseRange(response.header('range'));
  })();
  patched.catch(fail);

  return {
    sink: body,
    get error() {
      return error;
    },
    finish(descriptor: Descriptor): Promise<StreamedUploadOutcome> {
      finishing ??= (async (): Promise<StreamedUploadOutcome> => {
        try {
          // Already failed: the PATCH broke, or the upload was abandoned.
          if (error !== undefined) throw asError(error);
          const received = await patched;
          // `0-0` is distribution's answer for an empty session (see parseRange); a gzip blob is never that small.
          if (received !== undefined && received !== descriptor.size) throw new SizeMismatchError(descriptor.size, received, `${what}: bytes the registry holds`);
          const response = await transport.request({
            method: 'PUT',
            registry,
            path: withDigest(session!.location, descriptor.digest),
            headers: { 'content-type': 'application/octet-stream', 'content-length': '0' },
            scopes,
            // A lost answer may hide a commit: the ordinary path's HEAD finds out, no blind retry.
            retry: false,
            expect: [201],
            signal,
          });
          checkCommitted(response.header('docker-content-digest'), descriptor, what);
          committed = true;
          debug('committed %s as %s (%d bytes)', what, descriptor.digest, descriptor.size);
          return 'ok';
        } catch (err) {
          fail(err);
          await patched.catch(() => undefined);
          // Awaited (it never throws): the session is gone before the caller uploads the blob again.
          await cancelSession(err);
          debug('streamed upload of %s failed (%s); it goes the ordinary way', descriptor.digest, describe(err));
          return 'failed';
        } finally {
          linked.dispose();
        }
      })();
      return finishing;
    },
    abort(reason?: unknown): void {
      if (committed || controller.signal.aborted) return;
      const why = reason ?? new AbortedError(`${what}: abandoned`);
      fail(why);
      controller.abort(why);
      // After the POST settles: a session that started just as we gave up is deleted too.
      const cancelAfter = () => cancelSession(why);
      void patched.then(cancelAfter, cancelAfter).finally(linked.dispose);
    },
  };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
