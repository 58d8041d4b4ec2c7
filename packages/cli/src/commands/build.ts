/**
 * `slipway build [CONTEXT]`: build an image with docker, buildah, buildctl or buildx and (with
 * --push) publish it, reporting the registry's digest. Flag names follow `docker buildx build`
 * where they overlap, so a buildx command line ports by changing the program name.
 * @module
 */
import { parseKeyValue } from '@slipway/build';
import { buildImage } from '@slipway/engine';
import { defineCommand, listFlag, UsageError } from '../define.js';
import { destinationRegistry, printWarnings } from './shared.js';

function pairs(values: string[], what: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const result: Record<string, string> = {};
  for (const value of values) {
    const [key, val] = parseKeyValue(value, what, env);
    result[key] = val;
  }
  return result;
}

export const build = defineCommand({
  summary: 'build an image (docker, buildah, buildctl or buildx) and push it, printing the registry digest',
  synopsis: 'slipway build [CONTEXT] [-t TAG]… [--push] [--platform P[,P…]] [--builder KIND[=ADDRESS]] [flags]',
  details: `CONTEXT is the build context directory (default ".").

  -t, --tag TAG             image reference to push (repeatable); the first is "ref" in the output
  -f, --file PATH           Dockerfile (default CONTEXT/Dockerfile)
      --push                push to every tag (without it the image is only built)
      --platform P[,P…]     target platforms, e.g. linux/amd64,linux/arm64 (several make an index)
      --build-arg K=V       build argument (repeatable; K alone takes $K from the environment)
      --target STAGE        build this stage
      --label K=V           image label (repeatable)
      --secret id=ID,src=PATH | id=ID,env=VAR
                            build secret for RUN --mount=type=secret (never in logs, errors or the image)
      --ssh default|ID=PATH[,PATH]
                            SSH agent socket or keys for RUN --mount=type=ssh
      --cache-from SPEC     type=registry,ref=REF | type=local,src=DIR | REF (default: the tags that exist)
      --cache-to SPEC       type=inline | type=registry,ref=REF[,mode=max] | type=local,dest=DIR[,mode=max]
                            (default: inline when pushing)
      --build-context NAME=DIR|docker-image://REF
                            named context for FROM/COPY --from=NAME (repeatable)
      --network MODE        default, host or none for RUN steps
      --add-host HOST:IP    extra /etc/hosts entry for RUN steps (repeatable)
      --no-cache            do not use the build cache
      --pull                always look for newer base images
      --builder KIND[=ADDRESS]
                            docker | buildah | buildctl=unix:///run/buildkit/buildkitd.sock |
                            buildx=tcp://host:1234 | buildx:NAME (default: buildctl when BUILDKIT_HOST
                            is set, else the Docker Engine when it answers, else buildah)

The builder's output streams to stderr as it comes. Prints each TAG@DIGEST; with --json
{digest, ref, refs, platformDigests, contextHash, builder, steps, warnings}.`,
  options: {
    tag: { type: 'string', short: 't', multiple: true },
    file: { type: 'string', short: 'f' },
    push: { type: 'boolean' },
    platform: { type: 'string', multiple: true },
    'build-arg': { type: 'string', multiple: true },
    target: { type: 'string' },
    label: { type: 'string', multiple: true },
    secret: { type: 'string', multiple: true },
    ssh: { type: 'string', multiple: true },
    'cache-from': { type: 'string', multiple: true },
    'cache-to': { type: 'string', multiple: true },
    'build-context': { type: 'string', multiple: true },
    network: { type: 'string' },
    'add-host': { type: 'string', multiple: true },
    'no-cache': { type: 'boolean' },
    pull: { type: 'boolean' },
    builder: { type: 'string' },
  },
  positionals: { min: 0, max: 1 },
  async run(context) {
    const { values, io } = context;
    const tags = listFlag(values, 'tag');
    const file = values.file as string | undefined;
    if (file === '-') throw new UsageError('-f - (Dockerfile on stdin) is not supported; pass a path');
    const namedContexts = pairs(listFlag(values, 'build-context'), '--build-context', {});
    const result = await buildImage({
      context: context.args[0] ?? '.',
      ...(file !== undefined ? { dockerfile: file } : {}),
      tags,
      push: values.push === true,
      platforms: listFlag(values, 'platform'),
      buildArgs: pairs(listFlag(values, 'build-arg'), '--build-arg', io.env),
      ...(values.target !== undefined ? { target: values.target as string } : {}),
      labels: pairs(listFlag(values, 'label'), '--label', {}),
      secrets: listFlag(values, 'secret'),
      ssh: listFlag(values, 'ssh'),
      ...(values['cache-from'] !== undefined ? { cacheFrom: listFlag(values, 'cache-from') } : {}),
      ...(values['cache-to'] !== undefined ? { cacheTo: listFlag(values, 'cache-to') } : {}),
      namedContexts,
      ...(values.network !== undefined ? { network: values.network as string } : {}),
      addHosts: listFlag(values, 'add-host'),
      noCache: values['no-cache'] === true,
      pull: values.pull === true,
      ...(values.builder !== undefined ? { builder: values.builder as string } : {}),
      registries: context.registries(tags[0] === undefined ? undefined : destinationRegistry(tags[0])),
      insecure: context.insecure,
      signal: io.signal,
      // Plain lines on a terminal and in CI alike: BuildKit's own plain progress is the live view.
      ...(context.quiet ? {} : { onLog: (line: { line: string }) => void io.stderr.write(line.line + '\n') }),
    });
    if (!context.quiet) {
      const steps = result.steps ? `, ${result.steps.cached}/${result.steps.total} steps cached` : '';
      io.stderr.write(`slipway: built with ${result.builder.kind}${steps}; context ${result.contextHash}\n`);
      for (const [platform, digest] of Object.entries(result.platformDigests)) io.stderr.write(`slipway:   ${platform} ${digest}\n`);
    }
    printWarnings(context, result.warnings);
    return {
      json: {
        digest: result.digest ?? null,
        ref: result.ref ?? null,
        refs: result.refs,
        platformDigests: result.platformDigests,
        contextHash: result.contextHash,
        builder: result.builder,
        steps: result.steps ?? null,
        warnings: result.warnings,
      },
      text: result.refs.join('\n'),
    };
  },
});
