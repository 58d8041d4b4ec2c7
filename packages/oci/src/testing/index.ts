/**
 * Test helpers shared by every ImageSource implementation: the conformance suite (uses `node:test`;
 * importing it has no side effects until the suite function is called), and errorOf for asserting
 * on SlipwayErrors.
 * @module
 */
export { imageSourceConformance } from './conformance.js';
export type { ConformanceExpectation, ConformanceSubject } from './conformance.js';
export { errorOf } from './rejection.js';
