/**
 * Blob HEAD and streaming GET. Downloads are verified (digest and size) as bytes flow, follow
 * redirects to object storage without `Authorization`, and resume with `Range` after a broken
 * connection or a short body, as c/image and regclient do.
 * @module
 */
import { Readable, pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';
import { AbortedError, SizeMismatchError, SlipwayError } from '../errors.js';
import { verifyStream } from '../internal/verify.js';
import type { Reference, Repository } from '../name/reference.js';
import { NetworkError } from '../transport/errors.js';
import { backoffDelay, describeNetworkError, isTemporaryNetworkError } from '../transport/retry.js';
import type { Transport } from '../transport/transport.js';
import type { Descriptor } from '../v1/manifest.js';
import { blobPath } from './paths.js';

const debug = debuglog('slipway');

export interface BlobCall {
  transport: Transport;
  repository: Repository | Reference;
  scopes: readonly string[];
  signal?: AbortSignal;
}

/** True when the repository holds the blob (HEAD 200), false on 404. */
export async function hasBlob(call: BlobCall & { digest: string }): Promise<boolean> {
  const response = await call.transport.request({
    method: 'HEAD',
    registry: call.repository.registry,
    path: blobPath(call.repository.repository, call.digest),
    scopes: call.scopes,
    expect: [200, 404],
    ...(call.signal ? { signal: call.signal } : {}),
  });
  return response.status === 200;
}

export interface OpenBlobOptions {
  /**
   * How many times a broken download is resumed from where it stopped.
   * @defaultValue the transport's retry attempts (5)
   */
  resumes?: number;
}

/**
 * A verified stream of the blob's bytes. Resolves once the first response arrived (so a 404 rejects
 * here); later failures, including a digest or size mismatch, surface as a stream error.
 */
export async function openBlob(call: BlobCall & { descriptor: Descriptor; options?: OpenBlobOptions }): Promise<Readable> {
  const { transport, repository, descriptor, scopes, signal } = call;
  const what = `blob ${descriptor.digest} from ${repository.name}`;
  const path = blobPath(repository.repository, descriptor.digest);
  const retry = transport.retryOptions;
  const maxResumes = call.options?.resumes ?? retry.attempts;

  const fetch = async (offset: number) => {
    const response = await transport.request({
      method: 'GET',
      registry: repository.registry,
      path,
      scopes,
      stream: true,
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      expect: offset > 0 ? [200, 206] : [200],
      ...(signal ? { signal } : {}),
    });
    const length = Number(response.header('content-length'));
    if (offset === 0 && Number.isSafeInteger(length) && length !== descriptor.size) {
      response.body?.destroy();
      throw new SizeMismatchError(descriptor.size, length, `${what} (Content-Length)`);
    }
    let skip = 0;
    if (offset > 0 && response.status === 206) {
      const start = /^bytes (\d+)-/.exec(response.header('content-range') ?? '')?.[1];
      if (start === undefined || Number(start) !== offset) {
        response.body?.destroy();
        throw new SlipwayError('SLIPWAY_REGISTRY', `resuming ${what} at byte ${offset}: the registry answered Content-Range ${JSON.stringify(response.header('content-range'))}`);
      }
    } else if (offset > 0) {
      // The server ignored Range and sent everything again: drop what we already passed on.
      skip = offset;
    }
    return { body: response.body!, skip };
  };

  const first = await fetch(0);

  async function* chunks(): AsyncGenerator<Buffer> {
    let offset = 0;
    let resumes = 0;
    let current: { body: Readable; skip: number } | undefined = first;
    for (;;) {
      try {
        if (!current) current = await fetch(offset);
        for await (const chunk of current.body) {
          let buffer = chunk as Buffer;
          if (current.skip > 0) {
            const dropped = Math.min(current.skip, buffer.length);
            current.skip -= dropped;
            buffer = buffer.subarray(dropped);
            if (buffer.length === 0) continue;
          }
          offset += buffer.length;
          yield buffer;
        }
        if (offset >= descriptor.size) return;
        // A clean end before the descriptor's size: the connection was cut between chunks (truncation).
        throw Object.assign(new Error(`response ended after ${offset} of ${descriptor.size} bytes`), { code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' });
      } catch (err) {
        current?.body.destroy();
        current = undefined;
        if (signal?.aborted) throw new AbortedError(`downloading ${what}: aborted`, { cause: signal.reason });
        const temporary = isTemporaryNetworkError(err) || (err instanceof NetworkError && err.temporary);
        if (!temporary || resumes >= maxResumes) {
          if (SlipwayError.is(err)) throw err;
          throw new NetworkError('GET', `${repository.name} ${descriptor.digest}`, `downloading ${what}: ${describeNetworkError(err)} after ${offset} bytes${resumes > 0 ? ` and ${resumes} resumes` : ''}`, {
            cause: err,
            temporary,
          });
        }
        resumes++;
        debug('download of %s broke after %d bytes (%s); resume %d', what, offset, describeNetworkError(err), resumes);
        await sleep(backoffDelay(resumes, retry), undefined, signal ? { signal } : {}).catch(() => {
          throw new AbortedError(`downloading ${what}: aborted`, { cause: signal?.reason });
        });
      }
    }
  }

  const verify = verifyStream({ digest: descriptor.digest, size: descriptor.size, what });
  return pipeline(Readable.from(chunks(), { objectMode: false }), verify, () => {
    // Errors reach the consumer through `verify`; pipeline destroys the source on early close.
  });
}
