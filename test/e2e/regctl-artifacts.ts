// regctl as the tests' independent artifact tool: attaching referrers (`artifact put --subject`),
// listing them (`artifact list`: the referrers API where a registry has it, else the fallback tag),
// and listing tags. Plain HTTP to the given hosts, with a private HOME so the user's regctl
// configuration is neither read nor written.
import assert from 'node:assert/strict';
import { runChecked, toolPath } from '../support/tools.js';

export const regctlPath = toolPath('regctl');

/** A referrer descriptor as regctl lists it. */
export interface ListedReferrer {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface Regctl {
  run: (args: string[], input?: string) => Promise<string>;
  /** The referrers of `reference`, by digest order. */
  referrersOf: (reference: string) => Promise<ListedReferrer[]>;
  /** Attaches an artifact with `content` to `subject`; returns the new referrer's digest. */
  attach: (subject: string, artifactType: string, content: string, annotation?: string) => Promise<string>;
  /** The tags of `host/repository`, sorted. */
  tags: (repository: string) => Promise<string[]>;
}

/** `hosts()` and `home()` are read at each call: registries and temp dirs start in `before`. */
export function regctl(hosts: () => string[], home: () => string): Regctl {
  const run = async (args: string[], input?: string): Promise<string> => {
    const flags = hosts().flatMap((h) => ['--host', `reg=${h},tls=disabled`]);
    const result = await runChecked(regctlPath!, [...args, ...flags], { env: { HOME: home() }, ...(input === undefined ? {} : { input }) });
    return result.stdout;
  };
  const referrersOf = async (reference: string): Promise<ListedReferrer[]> => {
    const body = JSON.parse(await run(['artifact', 'list', reference, '--format', '{{json .Descriptors}}'])) as ListedReferrer[] | null;
    return (body ?? []).sort((a, b) => a.digest.localeCompare(b.digest));
  };
  return {
    run,
    referrersOf,
    attach: async (subject, artifactType, content, annotation) => {
      const before = new Set((await referrersOf(subject)).map((d) => d.digest));
      await run(['artifact', 'put', '--subject', subject, '--artifact-type', artifactType, ...(annotation ? ['--annotation', annotation] : [])], content);
      const added = (await referrersOf(subject)).filter((d) => !before.has(d.digest));
      assert.equal(added.length, 1, `one new referrer of ${subject}`);
      return added[0]!.digest;
    },
    tags: async (repository) => {
      return (await run(['tag', 'ls', repository])).split('\n').filter(Boolean).sort();
    },
  };
}
