import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InvalidArgumentError } from '../errors.js';
import { parseReference } from '../name/reference.js';
import { findRule, insecureHosts, loadRegistriesConf, pullCandidates, registriesConfFiles, type RegistriesConf } from './registries-conf.js';

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

test('the longest prefix wins, only at a path boundary; a location remaps the registry itself', async () => {
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
`);
  assert.deepEqual(candidates(c, 'quay.io/team/app:1'), ['mirror team-mirror.corp/app:1', 'internal.corp/quay-team/app:1']);
  assert.deepEqual(candidates(c, 'quay.io/teamx/app:1'), ['mirror all-quay.corp/teamx/app:1', 'quay.io/teamx/app:1'], '"quay.io/team" is not a prefix of "quay.io/teamx"');
  assert.equal(findRule(c, parseReference('quay.io/team:1'))?.prefix, 'quay.io/team');
});

test('pull-from-mirror (and the older mirror-by-digest-only) choose mirrors by the kind of reference', async () => {
  const c = await conf(`
[[registry]]
location = "docker.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "digests.corp"
[[registry.mirror]]
location = "tags.corp"
pull-from-mirror = "tag-only"
[[registry.mirror]]
location = "any.corp"
pull-from-mirror = "all"
`);
  const digest = `sha256:${'b'.repeat(64)}`;
  assert.deepEqual(candidates(c, 'app:1'), ['mirror tags.corp/library/app:1', 'mirror any.corp/library/app:1', 'docker.io/library/app:1']);
  assert.deepEqual(candidates(c, `app@${digest}`), [`mirror digests.corp/library/app@${digest}`, `mirror any.corp/library/app@${digest}`, `docker.io/library/app@${digest}`]);
});

test('blocked registries refuse pulls naming the file; wildcards match subdomains; insecure hosts are collected', async () => {
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
`, 'policy.conf');
  assert.throws(() => pullCandidates(c, parseReference('a.blocked.corp/x:1')), (err: unknown) => err instanceof InvalidArgumentError && /blocked by .*policy\.conf .*\*\.blocked\.corp/.test(err.message));
  assert.deepEqual(candidates(c, 'blocked.corp/x:1'), ['blocked.corp/x:1'], 'a wildcard does not match the bare domain');
  assert.deepEqual(insecureHosts(c).sort(), ['mirror.corp:5001', 'plain.corp:5000']);
});

test('files: CONTAINERS_REGISTRIES_CONF alone, else the user file over the system one, then drop-ins in name order', async () => {
  const home = join(dir, 'home');
  await mkdir(join(home, 'containers', 'registries.conf.d'), { recursive: true });
  assert.deepEqual(registriesConfFiles({ CONTAINERS_REGISTRIES_CONF: '/x/r.conf', XDG_CONFIG_HOME: home }), ['/x/r.conf']);
  assert.equal(registriesConfFiles({ XDG_CONFIG_HOME: home })[0], '/etc/containers/registries.conf');
  await writeFile(join(home, 'containers', 'registries.conf'), '[[registry]]\nlocation = "a.corp"\n');
  await writeFile(join(home, 'containers', 'registries.conf.d', '20-b.conf'), '[[registry]]\nlocation = "a.corp"\nblocked = true\n');
  await writeFile(join(home, 'containers', 'registries.conf.d', '10-a.conf'), '[aliases]\n"x" = "docker.io/library/x"\n');
  await writeFile(join(home, 'containers', 'registries.conf.d', 'ignored.txt'), 'not a drop-in');
  const files = registriesConfFiles({ XDG_CONFIG_HOME: home });
  assert.equal(files[0], join(home, 'containers', 'registries.conf'));
  assert.deepEqual(files.slice(-2), [join(home, 'containers', 'registries.conf.d', '10-a.conf'), join(home, 'containers', 'registries.conf.d', '20-b.conf')]);
  const merged = loadRegistriesConf({ env: { XDG_CONFIG_HOME: home } });
  assert.equal(findRule(merged, parseReference('a.corp/x:1'))?.blocked, true, 'the later drop-in replaces the entry for the same prefix');
  assert.deepEqual(loadRegistriesConf({ path: false }), { rules: [], files: [] });
});

test('bad files are errors naming the file and the entry; files without registry tables are not parsed', async () => {
  await assert.rejects(async () => conf('[[registry]\nlocation = "x"', 'broken.conf'), (err: unknown) => err instanceof InvalidArgumentError && /broken\.conf is not valid TOML/.test(err.message));
  await assert.rejects(async () => conf('[[registry]]\ninsecure = true\n', 'empty.conf'), /empty\.conf: \[\[registry\]\] #1 has neither prefix nor location/);
  await assert.rejects(async () => conf('[[registry]]\nlocation = "x.corp"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "sometimes"\n'), /mirror #1: pull-from-mirror is "sometimes"/);
  await assert.rejects(async () => conf('[[registry]]\nprefix = "*.corp"\nlocation = "x.corp"\n'), /wildcard prefix \(\*\.corp\) cannot have a location/);
  await assert.rejects(async () => conf('[[registry]]\nlocation = "x.corp"\nblocked = "yes"\n'), /blocked must be true or false/);
  // Version 1 and short-name settings say nothing about mirrors; a syntax error in such a file is not ours to report.
  assert.deepEqual((await conf('[registries.search]\nregistries = ["docker.io"]\n[aliases\n')).rules, []);
  assert.throws(() => loadRegistriesConf({ path: join(dir, 'absent.conf') }), /reading .*absent\.conf/);
});
