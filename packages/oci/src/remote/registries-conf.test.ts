import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InvalidArgumentError } from '../errors.js';
import { parseReference } from '../name/reference.js';
import { checkNotBlocked, findRule, insecureHosts, loadRegistriesConf, pullCandidates, registriesConfFiles, type RegistriesConf } from './registries-conf.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-registries-conf-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function conf(text: string, name = `c${Math.random().toString(16).slice(2)}.conf`): Promise<RegistriesConf> {
  const path = join(dir, name);
  await writeFile(path, text);
  return loadRegistriesConf({ path });
}

const candidates = (c: RegistriesConf, ref: string): string[] => pullCandidates(c, parseReference(ref)).map((p) => `${p.mirror ? 'mirror ' : ''}${p.reference.toString()}`);

test('mirrors come first, in order, keeping the path after the prefix, a mirror namespace, the tag and the digest', async () => {
  const c = await conf(`
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "mirror.corp:5000/hub/"
[[registry.mirror]]
location = "second.corp"
`);
  assert.deepEqual(candidates(c, 'busybox:1'), ['mirror mirror.corp:5000/hub/library/busybox:1', 'mirror second.corp/library/busybox:1', 'docker.io/library/busybox:1']);
  const digest = `sha256:${'a'.repeat(64)}`;
  assert.deepEqual(candidates(c, `team/app:2@${digest}`)[0], `mirror mirror.corp:5000/hub/team/app:2@${digest}`);
  assert.deepEqual(candidates(c, 'ghcr.io/x/y:1'), ['ghcr.io/x/y:1'], 'other registries are untouched');
});

test('the longest prefix wins, only at a path boundary, wildcards ranked by their length too; a location remaps the registry', async () => {
  const c = await conf(`
[[registry]]
prefix = "quay.io"
location = "quay.io"
[[registry.mirror]]
location = "all-quay.corp"
[[registry]]
prefix = "quay.io/team"
location = "internal.corp/quay-team"
[[registry.mirror]]
location = "team-mirror.corp"
[[registry]]
prefix = "*.corp"
blocked = true
[[registry]]
prefix = "*.team.corp"
[[registry.mirror]]
location = "wild-mirror.corp"
[[registry]]
location = "ok.corp"
`);
  assert.deepEqual(candidates(c, 'quay.io/team/app:1'), ['mirror team-mirror.corp/app:1', 'internal.corp/quay-team/app:1']);
  assert.deepEqual(candidates(c, 'quay.io/teamx/app:1'), ['mirror all-quay.corp/teamx/app:1', 'quay.io/teamx/app:1'], '"quay.io/team" is not a prefix of "quay.io/teamx"');
  assert.equal(findRule(c, parseReference('quay.io/team:1'))?.prefix, 'quay.io/team');
  // containers/image ranks wildcards by the prefix's own length: *.team.corp (11) beats *.corp (6), ok.corp (7) beats *.corp.
  assert.deepEqual(candidates(c, 'a.team.corp/x:1'), ['mirror wild-mirror.corp/x:1', 'a.team.corp/x:1']);
  assert.deepEqual(candidates(c, 'ok.corp/x:1'), ['ok.corp/x:1']);
  assert.throws(() => candidates(c, 'other.corp/x:1'), /blocked/);
});

test('pull-from-mirror (and the older mirror-by-digest-only) choose mirrors by the kind of reference', async () => {
  const c = await conf(`
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "digests.corp"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.corp"
pull-from-mirror = "tag-only"
[[registry.mirror]]
location = "any.corp"
`);
  const digest = `sha256:${'b'.repeat(64)}`;
  assert.deepEqual(candidates(c, 'app:1'), ['mirror tags.corp/library/app:1', 'mirror any.corp/library/app:1', 'docker.io/library/app:1']);
  assert.deepEqual(candidates(c, `app@${digest}`), [`mirror digests.corp/library/app@${digest}`, `mirror any.corp/library/app@${digest}`, `docker.io/library/app@${digest}`]);
  const old = await conf('[[registry]]\nlocation = "docker.io"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "digests.corp"\n');
  assert.deepEqual(candidates(old, 'app:1'), ['docker.io/library/app:1']);
  assert.deepEqual(candidates(old, `app@${digest}`)[0], `mirror digests.corp/library/app@${digest}`);
});

test('blocked registries refuse pulls and pushes naming the file; wildcards match subdomains; insecure hosts are collected', async () => {
  const c = await conf(`
[[registry]]
prefix = "*.blocked.corp"
blocked = true
[[registry]]
location = "plain.corp:5000"
insecure = true
[[registry.mirror]]
location = "mirror.corp:5001/ns"
insecure = true
[[registry]]
prefix = "*.lab.corp"
insecure = true
`, 'policy.conf');
  assert.throws(() => pullCandidates(c, parseReference('a.blocked.corp/x:1')), (err: unknown) => err instanceof InvalidArgumentError && /pulling .* blocked by .*policy\.conf .*\*\.blocked\.corp/.test(err.message));
  assert.throws(() => checkNotBlocked(c, parseReference('a.blocked.corp/x:1'), 'pushing to'), /pushing to a\.blocked\.corp\/x:1 is blocked/);
  assert.deepEqual(candidates(c, 'blocked.corp/x:1'), ['blocked.corp/x:1'], 'a wildcard does not match the bare domain');
  assert.deepEqual(insecureHosts(c).sort(), ['*.lab.corp', 'mirror.corp:5001', 'plain.corp:5000']);
});

test('version 1 [registries.insecure] and [registries.block] become entries; mixing versions is refused', async () => {
  const v1 = await conf(`
[registries.search]
registries = ["docker.io"]
[registries.insecure]
registries = ["plain.corp:5000", "both.corp"]
[registries.block]
registries = ["evil.example", "both.corp"]
`);
  assert.throws(() => candidates(v1, 'evil.example/x:1'), /blocked/);
  assert.throws(() => candidates(v1, 'both.corp/x:1'), /blocked/);
  assert.deepEqual(insecureHosts(v1).sort(), ['both.corp', 'plain.corp:5000']);
  await assert.rejects(async () => conf('[registries.block]\nregistries = ["a.corp"]\n[[registry]]\nlocation = "b.corp"\n', 'mixed.conf'), /mixed\.conf mixes version 1/);
});

test('within a file the first entry for a prefix stands; mirror-by-digest-only and pull-from-mirror do not mix', async () => {
  const c = await conf('[[registry]]\nlocation = "a.corp"\nblocked = true\n[[registry]]\nlocation = "a.corp"\n');
  assert.throws(() => candidates(c, 'a.corp/x:1'), /blocked/);
  await assert.rejects(
    async () => conf('[[registry]]\nlocation = "a.corp"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.corp"\npull-from-mirror = "all"\n'),
    /mirror-by-digest-only cannot be combined with pull-from-mirror/,
  );
});

test('files: $CONTAINERS_REGISTRIES_CONF (required) or the user file over the system one, then drop-ins in name order', async () => {
  const home = join(dir, 'home');
  await mkdir(join(home, 'containers', 'registries.conf.d', 'dir.conf'), { recursive: true });
  const viaEnv = registriesConfFiles({ CONTAINERS_REGISTRIES_CONF: '/x/r.conf', XDG_CONFIG_HOME: home });
  assert.equal(viaEnv.main, '/x/r.conf');
  assert.equal(viaEnv.mainRequired, true);
  assert.throws(() => loadRegistriesConf({ env: { CONTAINERS_REGISTRIES_CONF: join(dir, 'typo.conf'), XDG_CONFIG_HOME: home } }), /reading .*typo\.conf/, 'a typo does not silently bypass the policy');
  assert.equal(registriesConfFiles({ XDG_CONFIG_HOME: home }).main, '/etc/containers/registries.conf');
  await writeFile(join(home, 'containers', 'registries.conf'), '[[registry]]\nlocation = "a.corp"\n');
  await writeFile(join(home, 'containers', 'registries.conf.d', '20-b.conf'), '[[registry]]\nlocation = "a.corp"\nblocked = true\n');
  await writeFile(join(home, 'containers', 'registries.conf.d', '10-a.conf'), '[aliases]\n"x" = "docker.io/library/x"\n');
  await writeFile(join(home, 'containers', 'registries.conf.d', 'ignored.txt'), 'not a drop-in');
  const files = registriesConfFiles({ XDG_CONFIG_HOME: home });
  assert.equal(files.main, join(home, 'containers', 'registries.conf'));
  assert.equal(files.mainRequired, false);
  // The per-user main file replaces the system one and its drop-ins; a directory named *.conf is not a drop-in.
  assert.deepEqual(files.dropIns, [join(home, 'containers', 'registries.conf.d', '10-a.conf'), join(home, 'containers', 'registries.conf.d', '20-b.conf')]);
  const merged = loadRegistriesConf({ env: { XDG_CONFIG_HOME: home } });
  assert.equal(findRule(merged, parseReference('a.corp/x:1'))?.blocked, true, 'the later drop-in replaces the entry for the same prefix');
  await writeFile(join(home, 'containers', 'registries.conf.d', '30-v1.conf'), '[registries.block]\nregistries = ["c.corp"]\n');
  assert.throws(() => loadRegistriesConf({ env: { XDG_CONFIG_HOME: home } }), /30-v1\.conf: drop-in files take version 2 tables/);
  assert.deepEqual(loadRegistriesConf({ path: false }), { rules: [], files: [] });
});

test('bad files are errors naming the file and the entry; files without registry tables are not parsed', async () => {
  await assert.rejects(async () => conf('[[registry]\nlocation = "x"', 'broken.conf'), (err: unknown) => err instanceof InvalidArgumentError && /broken\.conf is not valid TOML/.test(err.message));
  await assert.rejects(async () => conf('[[registry]]\ninsecure = true\n', 'empty.conf'), /empty\.conf: \[\[registry\]\] #1 has neither prefix nor location/);
  await assert.rejects(async () => conf('[[registry]]\nlocation = "x.corp"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "sometimes"\n'), /mirror #1: pull-from-mirror is "sometimes"/);
  await assert.rejects(async () => conf('[[registry]]\nprefix = "*.corp"\nlocation = "x.corp"\n'), /wildcard prefix \(\*\.corp\) cannot have a location/);
  await assert.rejects(async () => conf('[[registry]]\nlocation = "x.corp"\nblocked = "yes"\n'), /blocked must be true or false/);
  // Short-name settings say nothing here; a syntax error in such a file is not ours to report.
  assert.deepEqual((await conf('unqualified-search-registries = ["docker.io"]\n[aliases\n')).rules, []);
  assert.deepEqual((await conf('[registries.search]\nregistries = ["docker.io"]\n')).rules, []);
  assert.throws(() => loadRegistriesConf({ path: join(dir, 'absent.conf') }), /reading .*absent\.conf/);
});

test('a mirror location with a login that makes no reference is quoted without its password', async () => {
  const canary = 'CanaryMirrorPw-5t8u';
  const c = await conf(`
[[registry]]
prefix = "registry.example.com"
location = "registry.example.com"
[[registry.mirror]]
location = "puller:${canary}@mirror.example.com"
`);
  assert.throws(
    () => pullCandidates(c, parseReference('registry.example.com/team/app:1')),
    (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, String(err));
      assert.match(err.message, /mirror location "puller:<redacted>@mirror\.example\.com" makes an invalid reference/);
      for (let e: unknown = err; e instanceof Error; e = e.cause) assert.ok(!e.message.includes(canary), `the password is in: ${e.message}`);
      return true;
    },
  );
});
