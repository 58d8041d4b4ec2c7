/**
 * `slipway push ARCHIVE DESTINATION`: a docker save tar or an OCI layout (directory or tar) to a registry.
 * @module
 */
import { pushArchive } from '@slipway/engine';
import { defineCommand } from '../define.js';
import { archiveFromStdin, copyOutput, sourceSpecOf, transferOptions, withProgress } from './shared.js';

export const push = defineCommand({
  summary: 'push a docker save tar or an OCI layout (directory or tar) to a registry',
  synopsis: 'slipway push ARCHIVE DESTINATION [--image NAME] [--platform P[,P…]] [--overwrite] [--jobs N] [--no-stream] [--no-layer-cache]',
  details: `ARCHIVE is a docker save tar (gzip allowed), an OCI layout directory, or an OCI layout tar
(docker buildx --output type=oci, skopeo oci-archive:); a pipe is read once into a temp file
(docker save app | slipway push /dev/stdin …). DESTINATION is registry/repository[:tag][@digest] (a digest: the
result must be it; alone, the image is stored untagged).

  --image NAME       which image of an archive holding several: a RepoTag of a docker save
                     (app:1), a ref name of an OCI layout (its org.opencontainers.image.ref.name),
                     or @N for the N-th (from 0)
  --platform P[,P…]  as for copy
  --overwrite        replace a different image at DESTINATION (otherwise exit 5)
  -j, --jobs N       parallel transfers (default 4)
  --no-stream        compress every uncompressed layer before uploading any (by default, into a
                     repository with no tags yet, layers are uploaded while they are compressed)
  --no-layer-cache   do not read or write the compressed-layer cache ($XDG_CACHE_HOME/slipway)

An OCI layout keeps its digests. A docker save archive is pushed as the Docker image manifest its
layers describe; that digest is slipway's, not necessarily what docker push reports.
Prints DESTINATION@DIGEST; with --json the full result.`,
  options: {
    image: { type: 'string' },
    platform: { type: 'string', multiple: true },
    overwrite: { type: 'boolean' },
    jobs: { type: 'string', short: 'j' },
    'no-stream': { type: 'boolean' },
    'no-layer-cache': { type: 'boolean' },
  },
  positionals: { min: 2, max: 2 },
  async run(context) {
    const [archive, destination] = context.args as [string, string];
    const image = context.values.image as string | undefined;
    const fromStdin = await archiveFromStdin(context, archive, await sourceSpecOf(archive));
    const result = await withProgress(context, (onProgress) =>
      pushArchive({
        archive,
        destination,
        ...(image === undefined ? {} : { image }),
        ...(context.values['no-stream'] === true ? { streamLayers: false } : {}),
        ...(context.values['no-layer-cache'] === true ? { cacheDir: false as const } : {}),
        ...transferOptions(context, destination, onProgress),
        ...fromStdin,
      }),
    );
    return copyOutput(result);
  },
});
