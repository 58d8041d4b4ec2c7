/**
 * Messages between the context hasher and its worker threads.
 * @module
 */
import type { IgnoreDialect } from './ignore.js';
import type { DirTask, WalkChunk } from './walk.js';

export interface ContextSetup {
  type: 'context';
  ctx: number;
  root: string;
  patterns: string[];
  dialect: IgnoreDialect;
}

export interface WalkRequest {
  type: 'walk';
  id: number;
  ctx: number;
  task: DirTask;
  budget: number;
  /** lstat regular files (false when no stat cache can use the result: hashing fstat's them anyway). */
  statFiles: boolean;
}

export interface HashRequest {
  type: 'hash';
  id: number;
  files: string[];
}

export type WorkerRequest = ContextSetup | WalkRequest | HashRequest;

export interface WorkerFailure {
  path: string;
  errno: string;
  message: string;
}

/** A walk chunk as it crosses threads: paths joined with NUL, numbers in transferable arrays. */
export type EncodedChunk = Omit<WalkChunk, 'paths'> & { paths: string; count: number };

export interface WalkReply {
  type: 'walked';
  id: number;
  chunk?: EncodedChunk;
  error?: WorkerFailure;
}

export interface HashReply {
  type: 'hashed';
  id: number;
  /** 32 bytes per file. */
  digests: Uint8Array;
  /** Bytes read per file; -1 where `errors` has an entry. */
  sizes: Float64Array;
  /** fstat per file: executable bit, size, mtime ms, ctime ms, inode. */
  stats: Float64Array;
  errors: { index: number; errno: string; message: string }[];
}

export type WorkerReply = WalkReply | HashReply;
