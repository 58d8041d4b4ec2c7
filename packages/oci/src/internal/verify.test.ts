import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { DigestMismatchError, SizeMismatchError } from '../errors.js';
import { sha256 } from '../v1/digest.js';
import { Verifier, verifyStream } from './verify.js';

const chunks = (bytes: Buffer, size = 1000) => Readable.from(Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size)));

describe('verifyStream', () => {
  const bytes = randomBytes(10_000);
  const digest = sha256(bytes);

  it('passes matching bytes through unchanged', async () => {
    const verify = verifyStream({ digest, size: bytes.length });
    const out = buffer(verify);
    await pipeline(chunks(bytes), verify);
    assert.deepEqual(await out, bytes);
    assert.equal(verify.bytesRead, bytes.length);
  });

  it('fails on corrupted bytes with got and want', async () => {
    const bad = Buffer.from(bytes);
    bad[5000] = bad[5000]! ^ 0xff;
    await assert.rejects(pipeline(chunks(bad), verifyStream({ digest, size: bytes.length, what: 'blob x' }), async function* (s) { for await (const _ of s) yield; }), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.code, 'SLIPWAY_DIGEST_MISMATCH');
      assert.match(err.message, new RegExp(`^verifying blob x after reading 10000 bytes: got sha256:[0-9a-f]{64}, want ${digest}$`));
      return true;
    });
  });

  it('fails on truncated and on overlong input', async () => {
    const sink = async function* (s: AsyncIterable<unknown>) { for await (const _ of s) yield; };
    await assert.rejects(pipeline(chunks(bytes.subarray(0, 9000)), verifyStream({ digest, size: bytes.length }), sink), SizeMismatchError);
    await assert.rejects(pipeline(chunks(Buffer.concat([bytes, Buffer.from('x')])), verifyStream({ digest, size: bytes.length }), sink), (err: unknown) => {
      assert.ok(err instanceof SizeMismatchError);
      assert.match(err.message, /more bytes than the descriptor's size/);
      return true;
    });
  });

  it('checks the digest alone when the size is unknown', async () => {
    const verify = verifyStream({ digest });
    const out = buffer(verify);
    await pipeline(chunks(bytes), verify);
    assert.equal((await out).length, bytes.length);
  });
});

describe('Verifier', () => {
  const bytes = randomBytes(10_000);
  const digest = sha256(bytes);

  it('accepts the bytes fed in pieces, and counts them', () => {
    const verifier = new Verifier({ digest, size: bytes.length });
    for (let i = 0; i < bytes.length; i += 3000) assert.equal(verifier.update(bytes.subarray(i, i + 3000)), undefined);
    assert.equal(verifier.bytesRead, bytes.length);
    assert.equal(verifier.finish(), undefined);
  });

  it('says when there are more bytes than the size, before hashing them', () => {
    const verifier = new Verifier({ digest, size: 10, what: 'blob x' });
    const wrong = verifier.update(bytes.subarray(0, 11));
    assert.ok(wrong instanceof SizeMismatchError);
    assert.match(wrong.message, /blob x \(more bytes than the descriptor's size\)/);
  });

  it('finishes with a size or digest mismatch', () => {
    const short = new Verifier({ digest, size: bytes.length });
    short.update(bytes.subarray(1));
    assert.ok(short.finish() instanceof SizeMismatchError);
    const bad = Buffer.from(bytes);
    bad[0] = bad[0]! ^ 0xff;
    const corrupt = new Verifier({ digest, size: bytes.length });
    corrupt.update(bad);
    assert.ok(corrupt.finish() instanceof DigestMismatchError);
  });
});
