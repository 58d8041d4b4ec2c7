/**
 * Blob uploads, in the order that costs the fewest round trips and survives the most failures:
 * 1. cross-repository mount (`POST ?mount=&from=`): 201 done, 202 gives a session, any error → plain upload
 *    (Harbor answers 401 and Docker Hub 400 for an unknown `from`: ggcr #1404, #1679, goharbor/harbor#17097);
 * 2. monolithic `POST` + `PUT ?digest=` with `Content-Length` (regclient's first choice);
 * 3. on failure, chunked `PATCH` with `Content-Range` (honouring `OCI-Chunk-Min-Length`), using the new
 *    `Location` each time and resuming from the registry's `Range` (`GET <location>`) after a reset or 416;
 *    a session the registry forgot (restart, expiry) is replaced by a new one.
 * The session is `DELETE`d when the upload finally fails. Success means the registry answered 201
 * for our digest, so a manifest never gets pushed over a blob that is not fully there.
 * @see https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pushing-blobs
 * @module
 */
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';
import { AbortedError, DigestMismatchError, SizeMismatchError, SlipwayError } from '../errors.js';
import type { Reference, Repository } from '../name/reference.js';
import { NetworkError, RegistryError } from '../transport/errors.js';
import { backoffDelay, describeNetworkError, isTemporaryNetworkError } from '../transport/retry.js';
import { linkSignals } from '../internal/signals.js';
import type { Transport } from '../transport/transport.js';
import type { Descriptor } from '../v1/manifest.js';
import type { PutBlobOptions } from '../v1/source.js';
import { pullScope, pushScope, uploadsPath } from './paths.js';

const debug = debuglog('slipway');

/** Chunk size for the chunked fallback; large enough to keep round trips few, small enough to buffer. */
export const defaultChunkSize = 8 * 1024 * 1024;
/** Chunks in a row a registry may accept (202) without its Range moving before the upload is given up. */
const maxStalledChunks = 3;
/** Registries may ask for huge minimum chunks; we buffer one chunk, so cap what we honour (regclient: 1 GiB). */
const maxChunkSize = 256 * 1024 * 1024;

export interface UploadCall {
  transport: Transport;
  repository: Repository | Reference;
  descriptor: Descriptor;
  open: () => Promise<Readable>;
  options?: PutBlobOptions;
  /** @defaultValue 8 MiB */
  chunkSize?: number;
  /**
   * How many times the chunked upload may resume or restart after failures.
   * @defaultValue the transport's retry attempts, at least 3
   */
  attempts?: number;
  /** Skip the monolithic PUT (tests, or registries with body-size limits). */
  chunkedOnly?: boolean;
}

/** An upload session: where to send the next request, and the registry's minimum chunk. */
export interface Session {
  location: URL;
  minChunk: number;
}

/** Uploads one blob; resolves once the registry confirmed it (201) under the descriptor's digest. */
export async function uploadBlob(call: UploadCall): Promise<void> {
  const { transport, repository, descriptor, options } = call;
  const signal = options?.signal;
  const what = `blob ${descriptor.digest} to ${repository.name}`;
  const scopes = [pushScope(repository.repository)];
  const base = { registry: repository.registry, ...(signal ? { signal } : {}) };

  const startSession = async (mount?: { repository: string }): Promise<Session | 'mounted'> => {
    const path = new URL(uploadsPath(repository.repository), 'http://placeholder');
    if (mount) {
      path.searchParams.set('mount', descriptor.digest);
      path.searchParams.set('from', mount.repository);
    }
    const response = await transport.request({
      ...base,
      method: 'POST',
      path: path.pathname + path.search,
      headers: { 'content-length': '0' },
      // Push scope first: a few registries only look at the first scope (ggcr bearer.go).
      scopes: mount ? [...scopes, pullScope(mount.repository)] : scopes,
      expect: mount ? [201, 202] : [202],
    });
    if (response.status === 201) return 'mounted';
    return sessionFrom(response, what);
  };

  let session: Session | undefined;
  let live: { session: Session } | undefined;
  const mountFrom = options?.mountFrom;
  if (mountFrom && mountFrom.registry === (await registryWireHost(transport, repository.registry, options?.signal)) && mountFrom.repository !== repository.repository) {
    try {
      const result = await startSession({ repository: mountFrom.repository });
      if (result === 'mounted') {
        debug('mounted %s from %s', what, mountFrom.repository);
        options?.onProgress?.(descriptor.size);
        return;
      }
      session = result;
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      debug('mount of %s from %s failed (%s); uploading instead', what, mountFrom.repository, (err as Error).message);
    }
  }
  // Open the source while the session starts: a registry source then answers its GET while the
  // destination answers our POST, instead of one after the other. (Not before a mount: it may move no bytes.)
  let early = !session && !call.chunkedOnly ? call.open() : undefined;
  early?.catch(() => {
    // Surfaces where it is used; unused, it is only destroyed.
  });
  try {
    session ??= (await startSession()) as Session;
  } catch (err) {
    discard(early);
    throw err;
  }

  try {
    if (!call.chunkedOnly) {
      try {
        const opened = early;
        early = undefined;
        await monolithic(call, session, what, opened);
        return;
      } catch (err) {
        if (isFatal(err)) throw err;
        debug('monolithic upload of %s failed (%s); continuing chunked', what, (err as Error).message);
      }
    }
    // The session chunked() works in changes with every PATCH answer (a new `_state`) and when a
    // forgotten one is replaced: the DELETE must name the live one, or distribution refuses it (404).
    live = { session };
    await chunked(call, live, startSession, what);
  } catch (err) {
    const current = live?.session ?? session;
    if (current) void cancel(transport, repository.registry, current, scopes, err);
    throw err;
  }
}

/**
 * One PUT with the whole blob; the source stream is `opened` already or opened only when the request
 * goes out (a retried request opens a fresh one).
 */
async function monolithic(call: UploadCall, session: Session, what: string, opened?: Promise<Readable>): Promise<void> {
  const { transport, repository, descriptor, open, options } = call;
  const url = withDigest(session.location, descriptor.digest);
  let sent = 0;
  let ready = opened;
  try {
    const response = await transport.request({
      method: 'PUT',
      registry: repository.registry,
      path: url,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(descriptor.size) },
      body: async () => {
        const first = ready;
        ready = undefined;
        const stream = await (first ?? open());
        const progress = options?.onProgress;
        if (progress) {
          // Counted by a listener on the source rather than a Transform (a stream layer per chunk costs
          // CPU on every byte). Paused first so the listener does not start the flow before undici has
          // attached its own; undici resumes the body when it starts writing.
          stream.pause();
          stream.on('data', (chunk: Buffer) => {
            sent += chunk.length;
            progress(sent);
          });
        }
        return stream;
      },
      scopes: [pushScope(repository.repository)],
      // A PUT that broke midway may have left bytes in the session; replaying it would append twice.
      retry: false,
      expect: [201],
      ...(options?.signal ? { signal: options.signal } : {}),
    });
    checkCommitted(response.header('docker-content-digest'), descriptor, what);
  } finally {
    // Still here when the request failed before it asked for its body.
    discard(ready);
  }
}

/** Closes a source stream that was opened ahead and never used. */
function discard(opened: Promise<Readable> | undefined): void {
  opened?.then(
    (stream) => stream.destroy(),
    () => undefined,
  );
}

/**
 * Chunked upload with resume. Bytes are read from one source stream in order; when the registry's
 * offset falls behind ours the source is reopened and skipped forward. `live.session` is kept on the
 * session in use (each PATCH answer's Location, a replacement for a forgotten one) for the caller's
 * clean-up.
 */
async function chunked(
  call: UploadCall,
  live: { session: Session },
  startSession: () => Promise<Session | 'mounted'>,
  what: string,
): Promise<void> {
  const { transport, repository, descriptor, open, options } = call;
  const signal = options?.signal;
  const scopes = [pushScope(repository.repository)];
  const retry = transport.retryOptions;
  const attempts = call.attempts ?? Math.max(3, retry.attempts);
  let reader: ChunkReader | undefined;
  let failures = 0;
  let stalls = 0;
  /** The most bytes any session of this upload has held. */
  let furthest = 0;

  /** After a failure: the offset to continue from, asking the registry; a forgotten session is replaced. */
  const recover = async (err: unknown): Promise<number> => {
    let current = err;
    for (;;) {
      if (isFatal(current) || ++failures > attempts) throw current;
      if (isForgotten(current)) break;
      debug('chunked upload of %s: %s; recovering (%d/%d)', what, describe(current), failures, attempts);
      await pause(backoffDelay(failures, retry), signal);
      try {
        return await sessionOffset(transport, repository.registry, live.session, scopes, signal, (location) => (live.session = { ...live.session, location }));
      } catch (statusErr) {
        current = statusErr;
      }
    }
    // The registry forgot the session (restarted without a shared secret, expired, or it refused the
    // bytes a broken request left behind): start over in a new one.
    debug('upload session for %s is gone (%s); starting a new one', what, describe(current));
    const next = await startSession();
    if (next === 'mounted') throw new SlipwayError('SLIPWAY_REGISTRY', `${what}: unexpected mount`);
    live.session = next;
    return 0;
  };

  // A source that says nothing (a stalled export) must not keep an aborted upload waiting: reading it
  // is not a request either signal reaches (the call's, or the client's, which Ctrl-C aborts), so an
  // abort destroys it.
  const watched = linkSignals(signal, transport.signal);
  const onAbort = (): void => reader?.close();
  watched.signal?.addEventListener('abort', onAbort, { once: true });
  const aborted = () => watched.signal?.aborted === true;
  try {
    // A session the monolithic PUT used may hold part of the blob; a fresh one holds nothing.
    let offset = 0;
    if (!call.chunkedOnly) {
      try {
        offset = await sessionOffset(transport, repository.registry, live.session, scopes, signal, (location) => (live.session = { ...live.session, location }));
      } catch (err) {
        offset = await recover(err);
      }
    }
    for (;;) {
      try {
        const chunkSize = Math.min(maxChunkSize, Math.max(call.chunkSize ?? defaultChunkSize, live.session.minChunk));
        if (offset < descriptor.size) {
          // A source that failed (a reset mid-blob in a copy) is read again from the start: its
          // iterator is over, and the bytes it took before failing are gone with it.
          if (!reader || reader.broken || reader.position > offset) {
            reader?.close();
            reader = new ChunkReader(await open());
            if (aborted()) reader.close();
          }
          await reader.skipTo(offset);
          const chunk = await reader.read(Math.min(chunkSize, descriptor.size - offset));
          if (chunk.length === 0) throw new SizeMismatchError(descriptor.size, offset, `${what}: the source ended early`);
          const end = offset + chunk.length - 1;
          const response = await transport.request({
            method: 'PATCH',
            registry: repository.registry,
            path: live.session.location,
            headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end}` },
            body: chunk,
            kind: 'push',
            scopes,
            // Retrying a chunk blindly could append it twice; recovery asks the registry for its offset instead.
            retry: false,
            expect: [202],
            ...(signal ? { signal } : {}),
          });
          live.session = { ...sessionFrom(response, what, live.session.location), minChunk: live.session.minChunk };
          const range = parseRange(response.header('range'));
          // After a one-byte first chunk `0-0` is ambiguous (see parseRange): the 202 says it was stored.
          const stored = range === undefined || (range === 0 && end === 0) ? end + 1 : range;
          if (stored > end + 1) {
            throw new SlipwayError('SLIPWAY_REGISTRY', `${what}: the registry says it holds ${stored} bytes after a chunk ending at byte ${end + 1}`);
          }
          // A registry that answers 202 but never moves its Range would be fed the same chunk for ever.
          stalls = stored > offset ? 0 : stalls + 1;
          // Progress earns a fresh allowance: a big blob whose token is revoked every minute recovers
          // each time, and the bound still stops a registry that fails every chunk. Only bytes beyond
          // any reached before count: a registry that forgets each new session after its first chunk
          // would otherwise be fed sessions for ever.
          if (stored > furthest) {
            furthest = stored;
            failures = 0;
          }
          if (stalls >= maxStalledChunks) {
            throw new SlipwayError('SLIPWAY_REGISTRY', `${what}: the registry took ${stalls} chunks in a row without storing them (its Range stays at ${stored} bytes)`);
          }
          offset = stored;
          options?.onProgress?.(offset);
          continue;
        }
        // Read past the last byte so a verifying source reports a digest or size mismatch before we commit.
        if (reader && reader.position === descriptor.size && (await reader.read(1)).length > 0) {
          throw new SizeMismatchError(descriptor.size, descriptor.size + 1, `${what}: the source has more bytes than the descriptor says`);
        }
        const response = await transport.request({
          method: 'PUT',
          registry: repository.registry,
          path: withDigest(live.session.location, descriptor.digest),
          headers: { 'content-type': 'application/octet-stream', 'content-length': '0' },
          scopes,
          retry: false,
          expect: [201],
          ...(signal ? { signal } : {}),
        });
        checkCommitted(response.header('docker-content-digest'), descriptor, what);
        return;
      } catch (err) {
        if (aborted()) throw new AbortedError(`${what}: aborted`, { cause: watched.signal?.reason });
        offset = await recover(err);
      }
    }
  } finally {
    watched.signal?.removeEventListener('abort', onAbort);
    watched.dispose();
    reader?.close();
  }
}

/** The registry's view of how many bytes the session holds: `GET <location>` → 204 with `Range: 0-<last>`. */
async function sessionOffset(
  transport: Transport,
  registry: string,
  session: Session,
  scopes: string[],
  signal: AbortSignal | undefined,
  onLocation: (location: URL) => void,
): Promise<number> {
  const response = await transport.request({
    method: 'GET',
    registry,
    path: session.location,
    scopes,
    expect: [204],
    ...(signal ? { signal } : {}),
  });
  const location = response.header('location');
  if (location) onLocation(new URL(location, session.location));
  return parseRange(response.header('range')) ?? 0;
}

/**
 * `Range: 0-1023` → 1024 (the next offset). No `bytes=` prefix per the spec, but accept one.
 * `0-0` is what distribution answers for an empty session (its end is `size - 1` floored at 0), so it
 * means 0 bytes, not 1: resending one byte is harmless, skipping one would corrupt the blob.
 */
export function parseRange(header: string | undefined): number | undefined {
  const match = /^(?:bytes=)?0-(\d+)$/.exec(header?.trim() ?? '');
  if (!match) return undefined;
  const end = Number(match[1]);
  return end === 0 ? 0 : end + 1;
}

export function sessionFrom(response: { header(name: string): string | undefined; url: URL }, what: string, previous?: URL): Session {
  const location = response.header('location');
  if (!location) {
    if (previous) return { location: previous, minChunk: 0 };
    throw new SlipwayError('SLIPWAY_REGISTRY', `uploading ${what}: the registry started an upload session without a Location header`);
  }
  const minChunk = Number(response.header('oci-chunk-min-length'));
  // Location may be relative and carries state (`_state`) that must be kept exactly; resolve against the request URL.
  return { location: new URL(location, response.url), minChunk: Number.isSafeInteger(minChunk) && minChunk > 0 ? minChunk : 0 };
}

export function withDigest(location: URL, digest: string): URL {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url;
}

/**
 * The registry's `Docker-Content-Digest` for a committed blob must be the digest asked for, when it is
 * of the same algorithm: distribution verifies a sha512 upload and then answers with the blob's
 * sha256 (the spec: the header "MAY differ from the provided digest"), which says nothing against it.
 */
export function checkCommitted(stored: string | undefined, descriptor: Descriptor, what: string): void {
  if (!stored || stored === descriptor.digest) return;
  const algorithm = (digest: string) => digest.slice(0, digest.indexOf(':'));
  if (algorithm(stored) !== algorithm(descriptor.digest)) return;
  throw new DigestMismatchError(descriptor.digest, stored, `${what}: digest the registry committed`);
}

/** Bound on the courtesy `DELETE`: a registry that hangs must not hold up the error the caller is waiting for. */
const cancelTimeoutMs = 10_000;
/** Shorter after a cancellation: someone pressed Ctrl-C and waits for the exit (a second Ctrl-C exits at once). */
const cancelAfterAbortTimeoutMs = 2_000;
/** GET-then-DELETE rounds for a session whose Location went stale (see cancel), and the pause between them. */
const staleRounds = 4;
const staleRoundPauseMs = 100;

/**
 * `DELETE`s a session the upload gives up on (best effort, never throws, bounded in time). It is sent
 * also when the upload was aborted, whatever signal aborted it: an abandoned session holds the bytes
 * sent so far in the registry's `_uploads` until its purge runs (distribution: a week by default).
 *
 * A request cut mid-body (Ctrl-C during a PATCH or PUT) leaves the session's `Location` stale:
 * distribution signs the offset into `_state`, and refuses the DELETE of a session that grew since
 * (v3: 416, 2.8: 404). v3 answers a `GET` of the stale location with a fresh one, which the DELETE
 * then takes; 2.8 refuses that too, and its session stays until the purge.
 */
export async function cancel(transport: Transport, registry: string, session: Session, scopes: string[], reason?: unknown): Promise<void> {
  const signal = AbortSignal.timeout(reason instanceof AbortedError ? cancelAfterAbortTimeoutMs : cancelTimeoutMs);
  const ask = (method: 'DELETE' | 'GET', location: URL) =>
    transport.request({ method, registry, path: location, scopes, retry: false, expect: [200, 202, 204, 404, 416], signal, cleanup: true });
  try {
    // One piece for close(): the caller's error is often on its way to a close() already.
    await transport.cleanup(signal, async () => {
      let location = session.location;
      let deleted = await ask('DELETE', location);
      // The cut body's last bytes may still be landing (socket buffers, a proxy's): the Location a
      // GET gives can be stale again by the DELETE. A few rounds, a moment apart, within the timeout.
      for (let round = 0; round < staleRounds && (deleted.status === 404 || deleted.status === 416); round++) {
        if (round > 0) await sleep(staleRoundPauseMs, undefined, { signal });
        const current = await ask('GET', location);
        const fresh = current.status === 204 ? current.header('location') : undefined;
        if (!fresh) return;
        location = new URL(fresh, location);
        deleted = await ask('DELETE', location);
      }
    });
  } catch {
    // Cancelling is a courtesy; the registry expires abandoned sessions anyway.
  }
}

/**
 * Errors that no retry can fix: bad content, cancellation, or a registry refusing us outright. A 401
 * is not one: a Bearer token can expire while a chunk is in flight (a slow link, a short TTL), and
 * the offset query that recovery sends authenticates afresh; credentials that are really refused
 * fail there, within the attempts.
 */
function isFatal(err: unknown): boolean {
  if (err instanceof DigestMismatchError || err instanceof SizeMismatchError || err instanceof AbortedError) return true;
  if (RegistryError.is(err)) return !err.temporary && err.status !== 416 && err.status !== 401 && !isForgotten(err);
  // A source that already resumed as often as it may says temporary: false; the destination's own
  // failures are temporary unless nothing can cure them (a certificate, an unknown host).
  if (err instanceof NetworkError) return !err.temporary;
  if (SlipwayError.is(err)) return err.code !== 'SLIPWAY_NETWORK';
  return !isTemporaryNetworkError(err);
}

/** The registry no longer knows the session: 404 BLOB_UPLOAD_UNKNOWN, or 400 BLOB_UPLOAD_INVALID for bad state. */
function isForgotten(err: unknown): boolean {
  return (
    RegistryError.is(err) &&
    (err.status === 404 || err.errors.some((e) => e.code === 'BLOB_UPLOAD_UNKNOWN' || e.code === 'BLOB_UPLOAD_INVALID'))
  );
}

export function describe(err: unknown): string {
  return err instanceof Error ? (SlipwayError.is(err) ? err.message : describeNetworkError(err)) : String(err);
}

async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, signal ? { signal } : {});
  } catch (err) {
    throw new AbortedError('upload aborted', { cause: signal?.reason ?? err });
  }
}

async function registryWireHost(transport: Transport, registry: string, signal: AbortSignal | undefined): Promise<string> {
  return (await transport.baseUrl(registry, signal)).host;
}

/** Reads a stream in exact-size pieces, tracking the position, so chunks can be cut from one pass. */
class ChunkReader {
  readonly #iterator: AsyncIterator<Buffer>;
  readonly #stream: Readable;
  #pending: Buffer = Buffer.alloc(0);
  #position = 0;
  #done = false;
  #broken = false;

  constructor(stream: Readable) {
    this.#stream = stream;
    this.#iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  get position(): number {
    return this.#position;
  }

  /** The source failed: nothing more can be read from it. */
  get broken(): boolean {
    return this.#broken;
  }

  async read(size: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < size) {
      if (this.#pending.length === 0) {
        if (this.#done) break;
        let next: IteratorResult<Buffer>;
        try {
          next = await this.#iterator.next();
        } catch (err) {
          this.#broken = true;
          throw err;
        }
        if (next.done) {
          this.#done = true;
          break;
        }
        this.#pending = next.value;
      }
      const take = this.#pending.subarray(0, size - have);
      this.#pending = this.#pending.subarray(take.length);
      parts.push(take);
      have += take.length;
    }
    this.#position += have;
    return Buffer.concat(parts, have);
  }

  async skipTo(offset: number): Promise<void> {
    while (this.#position < offset) {
      const skipped = await this.read(Math.min(offset - this.#position, 1024 * 1024));
      if (skipped.length === 0) break;
    }
  }

  close(): void {
    this.#stream.destroy();
  }
}
