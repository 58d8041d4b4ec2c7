/**
 * Adding up the copy statistics of the several copies one operation makes (image, referrers, digest tags).
 * @module
 */
import type { copy } from '@slipway/oci';

export function sumStats(a: copy.CopyStats, b: copy.CopyStats): copy.CopyStats {
  return {
    blobsCopied: a.blobsCopied + b.blobsCopied,
    blobsSkipped: a.blobsSkipped + b.blobsSkipped,
    blobsMounted: a.blobsMounted + b.blobsMounted,
    bytesCopied: a.bytesCopied + b.bytesCopied,
    manifestsPut: a.manifestsPut + b.manifestsPut,
  };
}

export const noStats: Readonly<copy.CopyStats> = { blobsCopied: 0, blobsSkipped: 0, blobsMounted: 0, bytesCopied: 0, manifestsPut: 0 };
