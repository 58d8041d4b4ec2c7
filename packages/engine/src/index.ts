/**
 * @slipway/engine: provider-neutral resource logic and the string-in ops every front door calls.
 * @module
 */
export * from './ops/index.js';
export * from './build-image.js';
