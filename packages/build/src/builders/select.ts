/**
 * Making a builder from a selection, and choosing one automatically when none is named:
 * a configured BuildKit address (`BUILDKIT_HOST`) means buildctl (or buildx when buildctl is not
 * installed); otherwise the Docker Engine when it answers; otherwise buildah.
 * @module
 */
import { name } from '@slipway/oci';
import { BuildahBuilder } from './buildah.js';
import { BuildctlBuilder, BuildxBuilder } from './buildkit.js';
import { DockerBuilder } from './docker.js';
import { BuildError } from './errors.js';
import type { Availability, Builder, BuilderSelection } from './types.js';

export function createBuilder(selection: BuilderSelection): Builder {
  const common = {
    ...(selection.binary ? { binary: selection.binary } : {}),
    ...(selection.env ? { env: selection.env } : {}),
  };
  switch (selection.kind) {
    case 'docker':
      return new DockerBuilder({ ...common, ...(selection.address ? { address: selection.address } : {}) });
    case 'buildah':
      return new BuildahBuilder(common);
    case 'buildctl':
      return new BuildctlBuilder({ ...common, ...(selection.address ? { address: selection.address } : {}) });
    case 'buildx':
      return new BuildxBuilder({
        ...common,
        ...(selection.address ? { address: selection.address } : {}),
        ...(selection.name ? { name: selection.name } : {}),
      });
  }
}

/**
 * The automatic choice. Tries candidates in order and returns the first whose `available()` says
 * yes; fails with SLIPWAY_BUILDER_UNAVAILABLE listing why each was passed over.
 */
export async function selectBuilder(
  options: { signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {},
): Promise<{ builder: Builder; availability: Availability }> {
  const env = options.env ?? process.env;
  const candidates: Builder[] = [];
  if (env.BUILDKIT_HOST) {
    candidates.push(new BuildctlBuilder({ address: env.BUILDKIT_HOST }), new BuildxBuilder({ address: env.BUILDKIT_HOST }));
  }
  candidates.push(new DockerBuilder(env.DOCKER_HOST ? { address: env.DOCKER_HOST } : {}), new BuildahBuilder());
  const reasons: string[] = [];
  for (const candidate of candidates) {
    const availability = await candidate.available(options.signal);
    if (availability.ok) return { builder: candidate, availability };
    reasons.push(`${candidate.kind}${candidate.address ? ` (${name.redactUserinfo(candidate.address)})` : ''}: ${availability.reason ?? 'unavailable'}`);
  }
  throw new BuildError('SLIPWAY_BUILDER_UNAVAILABLE', `no builder is available:\n  ${reasons.join('\n  ')}\nname one with --builder KIND[=ADDRESS]`);
}
