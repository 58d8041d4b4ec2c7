/**
 * The error for every malformed or hostile archive, in a module of its own so that the tar index and
 * the sparse-entry reader it uses can both raise it.
 * @module
 */
import { SlipwayError } from '../errors.js';

/** The error for every malformed or hostile archive: one stable code, and the entry named. */
export function invalidArchive(archive: string, why: string, cause?: unknown): SlipwayError {
  return new SlipwayError('SLIPWAY_INVALID_ARCHIVE', `invalid archive ${JSON.stringify(archive)}: ${why}`, cause === undefined ? undefined : { cause });
}
