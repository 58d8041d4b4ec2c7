/**
 * Content digests (`algorithm:hex`). Only sha256 and sha512 are accepted, as the OCI spec registers.
 * @module
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

export type Digest = `${string}:${string}`;

const digestPattern = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function isDigest(value: string): value is Digest {
  return digestPattern.test(value);
}

/** Returns the value as a Digest, or throws a clear error naming it. */
export function parseDigest(value: string): Digest {
  if (!isDigest(value)) throw new InvalidArgumentError(`invalid digest "${value}": want sha256:<64 hex> or sha512:<128 hex>`);
  return value;
}

export function sha256(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Hashes with the algorithm named by `like` (sha256 by default). */
export function digestOf(bytes: Uint8Array, like?: string): Digest {
  const algorithm = like?.startsWith('sha512:') ? 'sha512' : 'sha256';
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export function digestAlgorithm(digest: string): 'sha256' | 'sha512' {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}

export function digestHex(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}
