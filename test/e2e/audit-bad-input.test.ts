// Acceptance audit: bad input through the built CLI, against the real registry. Each case must end
// with a clear message, a stable error code in --json, and a meaningful exit code — and malformed
// references or platforms must be refused before a single request is sent.
//  - malformed references and platforms (exit 2);
//  - an index entry of an unknown media type, and malformed manifests the registry accepted from a
//    manual PUT (exit 1, SLIPWAY_UNSUPPORTED_MEDIA_TYPE / SLIPWAY_INVALID_MANIFEST);
//  - manifests over 4 MiB (distribution 2.8 refuses to store or serve them — 400 on PUT, 500 from its
//    4 MiB read cap on GET — so one arrives through a 307 to another host, and one sits in a layout);
//  - Docker schema 1, really stored by distribution (compatibility.schema1 enabled) via skopeo --format v2s1;
//  - tarballs made with GNU tar holding "..", absolute paths and symlinks, and missing files.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { appendFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { hasBusyboxDeb, pushBusyboxImage } from '../support/fixtures.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { hasTool, runChecked } from '../support/tools.js';
import { jsonError, putRawBlob, putRawManifest, sha256Of, slipway, type RawDescriptor } from './audit-support.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const UNKNOWN = 'application/vnd.example.unknown+json';

describe('bad input at the CLI, against the real registry (audit)', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let someFile: string;
  let image: { manifest: RawDescriptor; config: RawDescriptor; layer: RawDescriptor; body: Record<string, unknown> };

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ target: registry });
    work = await mkdtemp(join(tmpdir(), 'slipway-audit-bad-'));
    someFile = join(work, 'exists.tar');
    await writeFile(someFile, 'not used: the command must fail before opening it');
    const config = await putRawBlob(registry, 'raw/app', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })), OCI_CONFIG);
    const layer = await putRawBlob(registry, 'raw/app', Buffer.from('a layer the registry does not look into'), OCI_LAYER);
    const body = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] };
    const put = await putRawManifest(registry, 'raw/app', 'good', Buffer.from(JSON.stringify(body)), OCI_MANIFEST);
    assert.equal(put.status, 201, put.body);
    image = { manifest: put.descriptor, config, layer, body };
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Runs a command that must fail: checks exit code, --json code, that stderr says the same, and returns the message. */
  async function refused(args: string[], exitCode: number, code: string): Promise<string> {
    const outcome = await slipway([...args, '--json']);
    assert.equal(outcome.code, exitCode, `slipway ${args.join(' ')}: exit ${outcome.code}\n${outcome.stderr}`);
    const error = jsonError(outcome);
    assert.equal(error.code, code, `slipway ${args.join(' ')}: ${error.message}`);
    assert.equal(error.exitCode, exitCode);
    assert.equal(outcome.stderr.trim().split('\n').at(-1), `slipway: ${error.message}`, 'stderr carries the same one-line message');
    assert.ok(!/\n\s+at /.test(outcome.stderr), 'no stack trace');
    return error.message;
  }

  it('malformed references: exit 2, SLIPWAY_INVALID_REFERENCE, the input quoted, no request sent', async () => {
    proxy.clearRequests();
    const cases: [string[], string][] = [
      [['copy', 'Bad/Ref', `${proxy.host}/dst:1`], '"Bad/Ref"'],
      [['copy', `${proxy.host}/src:1`, `${proxy.host}/dst:`], `"${proxy.host}/dst:"`],
      [['copy', `${proxy.host}/src:1`, `${proxy.host}/dst@sha256:abc`], `"${proxy.host}/dst@sha256:abc"`],
      [['copy', `${proxy.host}/src:1`, 'host:port/dst'], '"host:port/dst"'],
      [['push', someFile, 'r.io/Dst:1'], '"r.io/Dst:1"'],
      [['digest', 'app@sha256:abc'], '"app@sha256:abc"'],
      [['digest', 'a'.repeat(64)], 'image ID'],
      [['manifest', '[::1/app'], '"[::1/app"'],
      [['platforms', `${proxy.host}//app`], `"${proxy.host}//app"`],
      [['tags', `${proxy.host}/app:tag`], 'without tag or digest'],
      [['tags', 'r.io/App'], 'lowercase'],
    ];
    for (const [args, quoted] of cases) {
      const message = await refused(args, 2, 'SLIPWAY_INVALID_REFERENCE');
      assert.ok(message.includes(quoted), `message of slipway ${args.join(' ')} says ${quoted}: ${message}`);
    }
    assert.equal(proxy.requests.length, 0, `requests were sent: ${proxy.requests.map((r) => `${r.method} ${r.path}`).join(', ')}`);
  });

  it('malformed platforms: exit 2, SLIPWAY_INVALID_PLATFORM, on copy, push, digest and manifest, no request sent', async () => {
    proxy.clearRequests();
    const bad = ['linux', 'linux/', '/amd64', 'linux/amd64/v7/x', 'linux/amd64:', 'linux/am$d64', 'linux//arm64', '', ',', ' '];
    const src = `${proxy.host}/raw/app:good`;
    const commands = [
      (platform: string) => ['copy', src, `${proxy.host}/dst:1`, '--platform', platform],
      (platform: string) => ['push', someFile, `${proxy.host}/dst:1`, '--platform', platform],
      (platform: string) => ['digest', src, '--platform', platform],
      (platform: string) => ['manifest', src, '--platform', platform],
    ];
    // Every command with the first bad platform, then the commands in turn (each CLI run costs a Node start).
    const runs = [...commands.map((command) => command(bad[0]!)), ...bad.slice(1).map((platform, i) => commands[i % commands.length]!(platform))];
    for (const args of runs) {
      const platform = args.at(-1)!;
      const message = await refused(args, 2, 'SLIPWAY_INVALID_PLATFORM');
      assert.ok(message.startsWith(`invalid platform ${JSON.stringify(platform)}: `), message);
      assert.match(message, /want os\/arch\[\/variant\]\[:osversion\]/);
    }
    const twice = await refused(['copy', src, `${proxy.host}/dst:1`, '--platform', 'linux/amd64,linux/x86_64'], 2, 'SLIPWAY_INVALID_PLATFORM');
    assert.match(twice, /"linux\/amd64" listed twice/);
    // digest and manifest name one manifest: a list is named as such, not as a malformed component.
    const list = await refused(['digest', src, '--platform', 'linux/amd64,linux/arm64'], 2, 'SLIPWAY_INVALID_PLATFORM');
    assert.match(list, /^invalid platform "linux\/amd64,linux\/arm64": a list, where one platform names one manifest/);
    assert.equal(proxy.requests.length, 0, `requests were sent: ${proxy.requests.map((r) => `${r.method} ${r.path}`).join(', ')}`);
  });

  it('an index entry of an unknown media type is refused by name; the other platforms still copy', async () => {
    const other = await putRawManifest(registry, 'raw/app', 'other', Buffer.from(JSON.stringify({ ...image.body, annotations: { other: 'yes' } })), OCI_MANIFEST);
    assert.equal(other.status, 201, other.body);
    const body = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { ...image.manifest, mediaType: OCI_MANIFEST, platform: { os: 'linux', architecture: 'amd64' } },
        { ...other.descriptor, mediaType: UNKNOWN, platform: { os: 'linux', architecture: 'riscv64' } },
      ],
    }));
    const put = await putRawManifest(registry, 'raw/app', 'unknown-child', body, OCI_INDEX);
    assert.equal(put.status, 201, `the registry accepts it: ${put.body}`);
    const src = `${registry.host}/raw/app:unknown-child`;
    for (const extra of [[], ['--platform', 'linux/riscv64']]) {
      const message = await refused(['copy', src, `${registry.host}/copied/app:odd`, ...extra], 1, 'SLIPWAY_UNSUPPORTED_MEDIA_TYPE');
      assert.ok(message.includes(`index entry ${other.descriptor.digest} has media type "${UNKNOWN}"`), message);
    }
    assert.equal((await slipway(['digest', `${registry.host}/copied/app:odd`])).code, 3, 'nothing was tagged');
    const ok = await slipway(['copy', src, `${registry.host}/copied/app:amd64`, '--platform', 'linux/amd64', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { digest: string }).digest, image.manifest.digest);
  });

  it('malformed manifests the registry stored are refused with SLIPWAY_INVALID_MANIFEST naming the field', async () => {
    const cases: [string, Record<string, unknown>, string, RegExp][] = [
      ['negative-size', { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...image.manifest, mediaType: OCI_MANIFEST, size: -5 }] }, OCI_INDEX, /manifests\[0\] has invalid size -5/],
      ['layer-without-type', { ...image.body, layers: [{ digest: image.layer.digest, size: image.layer.size }] }, OCI_MANIFEST, /layers\[0\] has no mediaType/],
    ];
    for (const [tag, body, type, why] of cases) {
      const put = await putRawManifest(registry, 'raw/app', tag, Buffer.from(JSON.stringify(body)), type);
      assert.equal(put.status, 201, `distribution 2.8 accepts ${tag}: ${put.body}`);
      for (const args of [['manifest', `${registry.host}/raw/app:${tag}`], ['platforms', `${registry.host}/raw/app:${tag}`], ['copy', `${registry.host}/raw/app:${tag}`, `${registry.host}/copied/app:${tag}`]]) {
        const message = await refused(args, 1, 'SLIPWAY_INVALID_MANIFEST');
        assert.match(message, why);
        assert.ok(message.includes(`raw/app:${tag}`), `the message names the manifest: ${message}`);
      }
    }
  });

  it('a manifest over 4 MiB is refused before it is buffered: served (307 to another host) or in a layout', async () => {
    // Served: the registry answers the manifest GET with a redirect to a server that streams 6 MiB.
    const huge = Buffer.from(JSON.stringify({ ...image.body, annotations: { padding: 'x'.repeat(6 * 1024 * 1024) } }));
    // Why not from the registry itself: distribution refuses to store it.
    const stored = await putRawManifest(registry, 'raw/app', 'huge', huge, OCI_MANIFEST);
    assert.equal(stored.status, 400, stored.body);
    assert.match(stored.body, /request body too large/);
    let sent = 0;
    const server: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': huge.length });
      res.on('close', () => undefined);
      const step = 64 * 1024;
      const pump = (): void => {
        while (sent < huge.length) {
          const ok = res.write(huge.subarray(sent, sent + step));
          sent += step;
          if (!ok) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    try {
      const rule = proxy.inject({
        match: { method: 'GET', path: '/v2/raw/app/manifests/huge' },
        fault: { status: 307, headers: { location: `http://127.0.0.2:${(server.address() as AddressInfo).port}/huge.json` } },
        times: Infinity,
      });
      const message = await refused(['manifest', `${proxy.host}/raw/app:huge`], 1, 'SLIPWAY_INVALID_MANIFEST');
      rule.remove();
      assert.match(message, /larger than the 4194304-byte manifest limit/);
      assert.ok(rule.hits >= 1, 'the redirect was served');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }

    // Local: an OCI layout whose index.json names a 6 MiB manifest. Nothing may reach the registry.
    const layout = join(work, 'huge-layout');
    const blobs = join(layout, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(join(blobs, sha256Of(huge).slice(7)), huge);
    await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256Of(huge), size: huge.length }] }));
    proxy.clearRequests();
    // In a layout the oversize file is the archive's fault: the reader refuses it before reading it.
    const local = await refused(['push', layout, `${proxy.host}/huge/app:1`], 1, 'SLIPWAY_INVALID_ARCHIVE');
    assert.ok(local.includes(`invalid OCI layout ${JSON.stringify(layout)}: manifest ${sha256Of(huge)} is ${huge.length} bytes, more than the 4194304-byte limit`), local);
    assert.equal(proxy.requestsMatching({ path: '/manifests/' }).length, 0, 'no manifest request reached the registry');
  });

  it('Docker schema 1, really stored by distribution, is refused clearly by every command', async (t) => {
    if (!hasTool('skopeo') || !hasTool('buildah') || !hasBusyboxDeb('amd64')) {
      t.skip('SKIPPED: skopeo, buildah or the busybox debs missing (schema 1 is made by skopeo --format v2s1); run scripts/ci-setup.sh');
      return;
    }
    const old = await startRegistry();
    try {
      // distribution 2.8 refuses schema 1 pushes unless compatibility.schema1.enabled; restart() keeps config.yml.
      await old.halt();
      await appendFile(join(old.dataDir, 'config.yml'), 'compatibility:\n  schema1:\n    enabled: true\n');
      await old.restart();
      const pushed = await pushBusyboxImage(old.host, 'modern/app', 'amd64', { format: 'docker' });
      await runChecked('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', '--format', 'v2s1', `docker://${pushed.ref}`, `docker://${old.host}/old/app:1`]);
      const raw = JSON.parse((await runChecked('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${old.host}/old/app:1`])).stdout) as { schemaVersion: number };
      assert.equal(raw.schemaVersion, 1, 'the registry holds a schema 1 manifest');
      const ref = `${old.host}/old/app:1`;
      for (const args of [['digest', ref], ['manifest', ref], ['platforms', ref], ['copy', ref, `${old.host}/new/app:1`], ['copy', ref, `${old.host}/new/app:1`, '--platform', 'linux/amd64']]) {
        const message = await refused(args, 1, 'SLIPWAY_UNSUPPORTED_MEDIA_TYPE');
        assert.ok(message.includes(`${old.host}/old/app:1 is a Docker schema 1 manifest, which slipway does not support`), message);
        assert.match(message, /skopeo copy --format v2s2/);
      }
    } finally {
      await old.stop();
    }
  });

  it('hostile tarballs made with GNU tar are refused with SLIPWAY_INVALID_ARCHIVE naming the entry; nothing is sent', async () => {
    const dir = join(work, 'tar');
    const outside = join(work, 'outside');
    await mkdir(dir, { recursive: true });
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'secret.txt'), 'outside the archive\n');
    const diffId = `sha256:${'0'.repeat(64)}`;
    await writeFile(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['evil:1'], Layers: ['layer.tar'] }]));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] } }));
    const tar = async (name: string, layer: 'file' | { link: string }, extra: string[], flags: string[] = []) => {
      await rm(join(dir, 'layer.tar'), { force: true });
      if (layer === 'file') await writeFile(join(dir, 'layer.tar'), 'layer\n');
      else await symlink(layer.link, join(dir, 'layer.tar'));
      const path = join(work, name);
      await runChecked('tar', [...flags, '-cf', path, '-C', dir, 'manifest.json', 'config.json', 'layer.tar', ...extra]);
      return path;
    };
    const cases: [string, RegExp][] = [
      [await tar('dotdot.tar', 'file', ['../outside/secret.txt'], ['-P']), /entry "\.\.\/outside\/secret\.txt" has a "\.\." path component/],
      [await tar('absolute.tar', 'file', [join(outside, 'secret.txt')], ['-P']), new RegExp(`entry "${join(outside, 'secret.txt')}" has an absolute path`)],
      [await tar('symlink-absolute.tar', { link: '/etc/passwd' }, []), /entry "layer\.tar" is a symlink to the absolute path "\/etc\/passwd"/],
      [await tar('symlink-outside.tar', { link: '../outside/secret.txt' }, []), /entry "layer\.tar" is a symlink that leaves the archive/],
    ];
    // manifest.json itself a symlink to a file inside the archive: still refused (it must be a regular file).
    await rm(join(dir, 'layer.tar'), { force: true });
    await writeFile(join(dir, 'layer.tar'), 'layer\n');
    await writeFile(join(dir, 'real.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['evil:1'], Layers: ['layer.tar'] }]));
    await rm(join(dir, 'manifest.json'));
    await symlink('real.json', join(dir, 'manifest.json'));
    const linked = join(work, 'manifest-symlink.tar');
    await runChecked('tar', ['-cf', linked, '-C', dir, 'manifest.json', 'real.json', 'config.json', 'layer.tar']);
    cases.push([linked, /"manifest\.json" is a symbolic link, not a regular file/]);

    proxy.clearRequests();
    for (const [path, why] of cases) {
      for (const args of [['push', path, `${proxy.host}/evil/app:1`], ['copy', `docker-archive:${path}`, `${proxy.host}/evil/app:1`]]) {
        const message = await refused(args, 1, 'SLIPWAY_INVALID_ARCHIVE');
        assert.match(message, why);
        assert.ok(message.startsWith(`invalid archive ${JSON.stringify(path)}: `), message);
      }
    }
    assert.equal(proxy.requests.length, 0, 'a hostile archive reached the registry');
  });

  it('an OCI layout whose blob is a symlink out of it is refused with SLIPWAY_INVALID_ARCHIVE', async () => {
    const layout = join(work, 'linked-layout');
    const blobs = join(layout, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const manifest = Buffer.from(JSON.stringify(image.body));
    await writeFile(join(blobs, sha256Of(manifest).slice(7)), manifest);
    await symlink('/etc/passwd', join(blobs, image.config.digest.slice(7)));
    await writeFile(join(blobs, image.layer.digest.slice(7)), 'a layer the registry does not look into');
    await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256Of(manifest), size: manifest.length }] }));
    proxy.clearRequests();
    const message = await refused(['push', layout, `${proxy.host}/linked/app:1`], 1, 'SLIPWAY_INVALID_ARCHIVE');
    assert.ok(message.includes(image.config.digest.slice(7)) || message.includes('/etc/passwd') || /outside/.test(message), message);
    assert.equal(proxy.requestsMatching({ method: 'PUT', path: '/manifests/' }).length, 0, 'the tag was written');
  });

  it('a missing file is SLIPWAY_NOT_FOUND (exit 3), however it is named', async () => {
    const missing = join(work, 'missing.tar');
    for (const [args, quoted] of [
      [['push', missing, `${proxy.host}/x:1`], missing],
      [['copy', missing, `${proxy.host}/x:1`], missing],
      [['copy', './missing.tar', `${proxy.host}/x:1`], './missing.tar'],
      [['push', `oci:${join(work, 'no-layout')}`, `${proxy.host}/x:1`], join(work, 'no-layout')],
      [['copy', `oci-archive:${missing}`, `${proxy.host}/x:1`], missing],
      [['copy', `docker-archive:${missing}`, `${proxy.host}/x:1`], missing],
      [['digest', missing], missing],
      [['platforms', `oci:${join(work, 'no-layout')}`], join(work, 'no-layout')],
    ] as [string[], string][]) {
      const message = await refused(args, 3, 'SLIPWAY_NOT_FOUND');
      assert.ok(message.includes(JSON.stringify(quoted)), `names the path: ${message}`);
    }
  });
});
