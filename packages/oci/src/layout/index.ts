/**
 * OCI image layouts: read a layout directory or tar (plain or gzipped) as an ImageSource, write a
 * layout directory as an ImageSink.
 * @example
 * ```ts
 * const source = await layout.open('./out.tar', { image: 'app:1' });
 * const target = layout.sink('./mirror', { tag: 'app:1' });
 * ```
 * @module
 */
export { open, list, LayoutSource, describeImage, refNameAnnotation, imageNameAnnotation } from './source.js';
export type { LayoutOptions, LayoutImage } from './source.js';
export { sink, LayoutSink } from './sink.js';
export type { LayoutSinkOptions } from './sink.js';
