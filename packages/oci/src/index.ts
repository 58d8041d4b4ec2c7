/**
 * @slipway/oci: OCI registry client, image sources and sinks, and the copy engine.
 * Folders are namespaces: `import { remote, tarball } from '@slipway/oci'`.
 * @module
 */
export * from './errors.js';
export * from './v1/index.js';
export * as name from './name/index.js';
export * as copy from './copy/index.js';
