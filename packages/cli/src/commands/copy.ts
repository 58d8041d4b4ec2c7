/**
 * `slipway copy SOURCE DESTINATION`: registry to registry, or any source to a registry or a local place.
 * @module
 */
import { copyImage } from '@slipway/engine';
import { defineCommand } from '../define.js';
import { runRepositoryCopy } from './copy-repository.js';
import { archiveFromStdin, archiveOnStdio, copyOutput, sourceRegistry, sourceSpecOf, transferOptions, withProgress } from './shared.js';

export const copy = defineCommand({
  summary: 'copy an image or index to a registry, an OCI layout or archive, or Docker: all platforms, one, or a subset',
  synopsis: 'slipway copy SOURCE DESTINATION [--platform P[,P…]] [--overwrite] [--include-nondistributable] [--referrers] [--digest-tags] [--all-tags | --tag-regex RE] [--jobs N]',
  details: `SOURCE is a registry reference, a docker save tar (gzip allowed), an OCI layout directory or tar, or
a prefixed source: docker://REF, docker-daemon:IMAGE, oci:PATH[:REF], oci-archive:PATH[:REF],
docker-archive:PATH[:IMAGE|:@N]; an archive or layout's REF is a name, a digest (oci:PATH@sha256:…
too) or a position @N. DESTINATION is registry/repository[:tag][@digest] (tag defaults to latest;
a digest alone stores the image untagged, and the copy is refused unless its result has that digest),
or a local place: oci:DIR[:NAME] (an OCI layout directory, created or added to),
oci-archive:FILE[:NAME] (an OCI layout tar), docker-archive:FILE[:IMAGE] (what docker load and
skopeo read), docker-daemon:IMAGE (loaded into the Docker Engine, DOCKER_HOST). A file is written
whole, replacing nothing unless --overwrite; a docker archive holds one image, so an index needs one
--platform (the daemon takes the image for its own platform unless --platform says otherwise). An archive can go to a pipe (docker-archive:/dev/stdout | docker load);
the result is then printed on stderr.

  --platform P[,P…]  os/arch[/variant]. None: the whole index, byte for byte (same digest).
                     One: that platform's image manifest as-is (its digest). Several: a new index
                     holding only those (a new digest). A single-image source must match.
  --overwrite        replace a different image at DESTINATION (otherwise exit 5)
  --include-nondistributable
                     also copy foreign layers (Windows base layers a manifest gives URLs for), from
                     the SOURCE, for a registry that cannot reach those URLs; by default they stay
                     at their URLs, as every tool leaves them (their licence may forbid copies)
  --referrers        also copy the artifacts (signatures, SBOMs) that refer to what was copied,
                     and theirs, by digest; registry to registry only. A destination without the
                     referrers API gets the sha256-<hex> fallback tag, merged with what it holds
  --digest-tags      also copy the SOURCE tags named after a copied digest, sha256-<hex>.sig,
                     .att, .sbom (cosign's signatures, attestations and SBOMs when it does not use
                     the referrers API); registry to registry only. A DESTINATION tag holding a
                     manifest the source's does not extend (a signature made there alone) is
                     kept and reported unless --overwrite
  --all-tags         copy every tag of the SOURCE repository to the DESTINATION repository (both
                     registry/repository, no tag), each under its own name, --jobs images at once;
                     a tag already holding the source's image costs one HEAD at each end. A tag
                     whose destination holds another image is kept (exit 5) unless --overwrite; a
                     tag that cannot be copied (platform missing, schema 1) is reported and the
                     rest go on (exit 1). Nothing is deleted. No tag (matching) yet: exit 0
  --tag-regex RE     --all-tags for the tags RE, a JavaScript regular expression, matches whole
                     ('v1\\..*' matches v1.2, not v10.0; a leading (?i) ignores case)
  -j, --jobs N       parallel transfers (default 4)

Prints DESTINATION@DIGEST, then a line per referrer and per digest tag copied; with --json the full
result. With --all-tags: DESTINATION:TAG@DIGEST for each tag it now holds from the source (also
those done before an error ended the run; with --json, under error.partial).`,
  options: {
    platform: { type: 'string', multiple: true },
    overwrite: { type: 'boolean' },
    'include-nondistributable': { type: 'boolean' },
    referrers: { type: 'boolean' },
    'digest-tags': { type: 'boolean' },
    jobs: { type: 'string', short: 'j' },
    'all-tags': { type: 'boolean' },
    'tag-regex': { type: 'string' },
  },
  positionals: { min: 2, max: 2 },
  async run(context) {
    if (context.values['all-tags'] === true || context.values['tag-regex'] !== undefined) return runRepositoryCopy(context);
    const [source, destination] = context.args as [string, string];
    const toStdio = await archiveOnStdio(context, destination);
    const sourceSpec = await sourceSpecOf(source);
    const fromStdin = await archiveFromStdin(context, source, sourceSpec);
    const readsFrom = sourceRegistry(sourceSpec);
    const result = await withProgress(context, (onProgress) =>
      copyImage({
        source,
        destination,
        ...transferOptions(context, destination, onProgress, readsFrom),
        ...toStdio,
        ...fromStdin,
        referrers: context.values.referrers === true,
        digestTags: context.values['digest-tags'] === true,
        includeNondistributable: context.values['include-nondistributable'] === true,
      }),
    );
    const output = copyOutput(result);
    // After the image's line: `referrer DIGEST ARTIFACT-TYPE -> SUBJECT`, `digest-tag TAG DIGEST -> SUBJECT`,
    // or for a tag left alone `digest-tag TAG kept HELD (source: DIGEST; --overwrite replaces it)`.
    const lines = [
      ...result.referrers.map((r) => `referrer ${r.digest} ${r.artifactType ?? '-'} -> ${r.subject}`),
      ...result.digestTags.map((t) =>
        t.outcome === 'kept' ? `digest-tag ${t.tag} kept ${t.held ?? '?'} (source: ${t.digest}; --overwrite replaces it)` : `digest-tag ${t.tag} ${t.digest} -> ${t.subject}`,
      ),
    ];
    return lines.length === 0 ? output : { ...output, text: [output.text, ...lines].join('\n') };
  },
});
