/**
 * Descriptors, manifests, platforms, media types, digests, and the ImageSource/ImageSink interfaces.
 * @module
 */
export * from './digest.js';
export * from './media-types.js';
export * from './manifest.js';
export * from './platform.js';
export * from './source.js';
