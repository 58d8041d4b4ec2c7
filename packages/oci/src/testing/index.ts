/**
 * Test helpers shared by every ImageSource implementation: the conformance suite (uses `node:test`;
 * importing it has no side effects until the suite function is called), errorOf for asserting
 * on SlipwayErrors, and silentServer, a peer that accepts connections and never answers.
 * @module
 */
export { imageSourceConformance } from './conformance.js';
export type { ConformanceExpectation, ConformanceSubject } from './conformance.js';
export { errorOf } from './rejection.js';
export { silentServer } from './silent-server.js';
export type { SilentServer } from './silent-server.js';
