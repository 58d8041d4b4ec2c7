// Test images made locally, never pulled: a busybox root filesystem from Debian's busybox-static
// .deb (amd64, arm64, armhf → linux/arm/v7), turned into images and indexes with the real tools
// (buildah, docker, skopeo). Expensive intermediate results are cached per process in a temp dir
// that is removed when the process exits.
import { createReadStream, createWriteStream, existsSync, readdirSync, rmSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { BUILDAH_ENV, DOCKER_CLI, debCacheDir, runChecked } from './tools.js';

/** OCI architecture names of the three test platforms (`arm` means linux/arm/v7, Debian armhf). */
export type BusyboxArch = 'amd64' | 'arm64' | 'arm';
export const BUSYBOX_ARCHES: readonly BusyboxArch[] = ['amd64', 'arm64', 'arm'];

export interface PlatformSpec { os: 'linux'; architecture: BusyboxArch; variant?: 'v7' }

export function platformOf(arch: BusyboxArch): PlatformSpec {
  return arch === 'arm' ? { os: 'linux', architecture: 'arm', variant: 'v7' } : { os: 'linux', architecture: arch };
}
/** `linux/amd64`, `linux/arm64`, `linux/arm/v7`. */
export function platformString(arch: BusyboxArch): string {
  const p = platformOf(arch);
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

const DEB_ARCH: Record<BusyboxArch, string> = { amd64: 'amd64', arm64: 'arm64', arm: 'armhf' };

/** Applets linked in /bin so `RUN echo …`, `sh -c`, `ls`, `cat` work in builds FROM the base. */
const APPLETS = ['sh', 'ash', 'ls', 'cat', 'echo', 'mkdir', 'rm', 'cp', 'mv', 'ln', 'true', 'false', 'env', 'sleep', 'test',
  '[', 'grep', 'sed', 'wc', 'head', 'tail', 'touch', 'id', 'whoami', 'uname', 'date', 'sha256sum', 'printf', 'pwd', 'chmod',
  'chown', 'find', 'tar', 'gzip', 'gunzip', 'hostname', 'stat', 'du', 'sort', 'uniq', 'tr', 'cut', 'xargs', 'dd', 'which',
  'readlink', 'basename', 'dirname', 'seq', 'tee', 'awk', 'vi', 'wget'];

let cacheDirPromise: Promise<string> | undefined;

/** Per-process cache dir (removed at exit). Set SLIPWAY_FIXTURE_CACHE to keep one across runs. */
export function fixtureCacheDir(): Promise<string> {
  cacheDirPromise ??= (async () => {
    const fixed = process.env.SLIPWAY_FIXTURE_CACHE;
    if (fixed !== undefined && fixed !== '') {
      await mkdir(fixed, { recursive: true });
      return fixed;
    }
    const dir = await mkdtemp(join(tmpdir(), 'slipway-fixtures-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  })();
  return cacheDirPromise;
}

function memo<T>(map: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let p = map.get(key);
  if (p === undefined) {
    p = make();
    map.set(key, p);
    // a failure must not be cached forever (e.g. a tool installed mid-run)
    p.catch(() => map.delete(key));
  }
  return p;
}

/** Path of the cached busybox-static .deb for an arch; throws with the fix when missing. */
export function busyboxDeb(arch: BusyboxArch): string {
  const dir = debCacheDir();
  const want = `_${DEB_ARCH[arch]}.deb`;
  const found = existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith('busybox-static_') && f.endsWith(want)).sort() : [];
  const last = found[found.length - 1];
  if (last === undefined) {
    throw new Error(`no busybox-static ${DEB_ARCH[arch]} .deb in ${dir}: run scripts/ci-setup.sh (it runs apt-get download busybox-static:${DEB_ARCH[arch]})`);
  }
  return join(dir, last);
}

/** Whether the busybox .deb for this arch is available (for loud skips). */
export function hasBusyboxDeb(arch: BusyboxArch): boolean {
  try {
    busyboxDeb(arch);
    return true;
  } catch {
    return false;
  }
}

export interface BusyboxRootfs {
  arch: BusyboxArch;
  /** Directory holding the root filesystem (bin/busybox, applet symlinks, etc/passwd, tmp). */
  dir: string;
  /** Deterministic uncompressed tar of `dir` (sorted, mtime 0, uid/gid 0). */
  tarPath: string;
}

const rootfsCache = new Map<string, Promise<BusyboxRootfs>>();

/** The busybox root filesystem for an arch, extracted from the Debian .deb (cached per process). */
export function busyboxRootfs(arch: BusyboxArch): Promise<BusyboxRootfs> {
  return memo(rootfsCache, arch, async () => {
    const deb = busyboxDeb(arch);
    const base = join(await fixtureCacheDir(), `rootfs-${arch}`);
    await rm(base, { recursive: true, force: true });
    const extract = join(base, 'deb');
    const dir = join(base, 'rootfs');
    await mkdir(extract, { recursive: true });
    await runChecked('dpkg-deb', ['-x', deb, extract]);
    for (const d of ['bin', 'etc', 'tmp', 'root']) await mkdir(join(dir, d), { recursive: true });
    await copyFile(join(extract, 'bin', 'busybox'), join(dir, 'bin', 'busybox'));
    await chmod(join(dir, 'bin', 'busybox'), 0o755);
    await chmod(join(dir, 'tmp'), 0o1777);
    for (const a of APPLETS) await symlink('busybox', join(dir, 'bin', a));
    await writeFile(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    await writeFile(join(dir, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    const tarPath = join(base, 'rootfs.tar');
    await runChecked('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', dir, '-cf', tarPath, '.']);
    await rm(extract, { recursive: true, force: true });
    return { arch, dir, tarPath };
  });
}

// ---------------------------------------------------------------------------------------------
// buildah: images and a multi-platform index

export type ImageFormat = 'oci' | 'docker';

/** buildah global flags for this process' private storage (vfs, no interference with other tests). */
async function buildahArgs(): Promise<string[]> {
  const root = join(await fixtureCacheDir(), 'buildah');
  return ['--root', join(root, 'root'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs'];
}

/** Runs buildah with the per-process storage and the env it needs here (vfs, chroot isolation). */
export async function buildah(args: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<string> {
  const r = await runChecked('buildah', [...await buildahArgs(), ...args], { env: { ...BUILDAH_ENV }, signal: opts.signal });
  return r.stdout.trim();
}

const localImageCache = new Map<string, Promise<string>>();

/** Commits the busybox image for an arch into buildah's storage; returns its local name. */
function localBusyboxImage(arch: BusyboxArch, format: ImageFormat): Promise<string> {
  return memo(localImageCache, `${arch}/${format}`, async () => {
    const { tarPath } = await busyboxRootfs(arch);
    const p = platformOf(arch);
    const name = `localhost/slipway-busybox:${arch}${p.variant ?? ''}-${format}`;
    const ctr = await buildah(['from', '--quiet', 'scratch']);
    try {
      await buildah(['add', '--quiet', ctr, tarPath, '/']);
      await buildah(['config', '--os', p.os, '--arch', p.architecture, ...(p.variant ? ['--variant', p.variant] : []),
        '--cmd', '["sh"]', '--env', 'PATH=/bin', '--label', 'org.opencontainers.image.title=slipway-busybox', ctr]);
      // --timestamp 0: the same inputs give the same digest on every run and machine.
      await buildah(['commit', '--quiet', '--timestamp', '0', '--format', format, ctr, name]);
    } finally {
      await buildah(['rm', ctr]).catch(() => undefined);
    }
    return name;
  });
}

export interface PushOptions {
  tag?: string;
  /** 'oci' (default) or 'docker' (Docker v2 schema 2 manifests and manifest list). */
  format?: ImageFormat;
  /** Registry credentials (htpasswd/token registries). */
  creds?: { username: string; password: string };
  signal?: AbortSignal;
}

export interface PushedImage {
  /** `host/repo:tag` */
  ref: string;
  /** `host/repo@sha256:…` */
  digestRef: string;
  digest: string;
}

function credsArgs(creds: PushOptions['creds']): string[] {
  return creds === undefined ? [] : ['--creds', `${creds.username}:${creds.password}`];
}

/** Pushes the single-platform busybox image for `arch` to `host/repo:tag` (default tag: the arch). */
export async function pushBusyboxImage(host: string, repo: string, arch: BusyboxArch = 'amd64', opts: PushOptions = {}): Promise<PushedImage> {
  const format = opts.format ?? 'oci';
  const image = await localBusyboxImage(arch, format);
  const ref = `${host}/${repo}:${opts.tag ?? arch}`;
  const digestFile = join(await fixtureCacheDir(), `digest-${process.hrtime.bigint()}`);
  await buildah(['push', '--quiet', '--tls-verify=false', '--digestfile', digestFile, ...credsArgs(opts.creds),
    ...(format === 'docker' ? ['--format', 'v2s2'] : ['--format', 'oci']), image, `docker://${ref}`], { signal: opts.signal });
  const digest = (await readFile(digestFile, 'utf8')).trim();
  await rm(digestFile, { force: true });
  return { ref, digestRef: `${host}/${repo}@${digest}`, digest };
}

const indexCache = new Map<string, Promise<string>>();

function localBusyboxIndex(format: ImageFormat, arches: readonly BusyboxArch[]): Promise<string> {
  return memo(indexCache, `${format}/${arches.join(',')}`, async () => {
    const images = await Promise.all(arches.map((a) => localBusyboxImage(a, format)));
    const list = `localhost/slipway-busybox-index:${format}-${arches.join('-')}`;
    // A storage kept across runs (SLIPWAY_FIXTURE_CACHE) still holds the list an earlier process made:
    // `manifest create` refuses a name in use.
    await buildah(['manifest', 'rm', list]).catch(() => undefined);
    await buildah(['manifest', 'create', list]);
    for (const [i, arch] of arches.entries()) {
      const p = platformOf(arch);
      await buildah(['manifest', 'add', '--os', p.os, '--arch', p.architecture, ...(p.variant ? ['--variant', p.variant] : []),
        list, `containers-storage:${images[i]!}`]);
    }
    return list;
  });
}

export interface PushIndexOptions extends PushOptions {
  /** Platforms in the index. Default linux/amd64, linux/arm64, linux/arm/v7. */
  arches?: readonly BusyboxArch[];
}

/**
 * Pushes a multi-platform busybox index (made with `buildah manifest create/add`, pushed with
 * `buildah manifest push --all`) to `host/repo:tag` (default tag `latest`). The digest is the index digest.
 */
export async function pushBusyboxIndex(host: string, repo: string, opts: PushIndexOptions = {}): Promise<PushedImage> {
  const format = opts.format ?? 'oci';
  const list = await localBusyboxIndex(format, opts.arches ?? BUSYBOX_ARCHES);
  const ref = `${host}/${repo}:${opts.tag ?? 'latest'}`;
  const digestFile = join(await fixtureCacheDir(), `digest-${process.hrtime.bigint()}`);
  await buildah(['manifest', 'push', '--quiet', '--all', '--tls-verify=false', '--digestfile', digestFile, ...credsArgs(opts.creds),
    '--format', format === 'docker' ? 'v2s2' : 'oci', list, `docker://${ref}`], { signal: opts.signal });
  const digest = (await readFile(digestFile, 'utf8')).trim();
  await rm(digestFile, { force: true });
  return { ref, digestRef: `${host}/${repo}@${digest}`, digest };
}

// ---------------------------------------------------------------------------------------------
// Docker Engine

/**
 * Loads the busybox rootfs into the Docker Engine as `tag` (`docker import` with CMD ["sh"]);
 * returns the image ID. Needs a running daemon (see tools.dockerAvailable()).
 */
export async function loadBusyboxIntoDocker(tag: string, arch: BusyboxArch = 'amd64', opts: { signal?: AbortSignal } = {}): Promise<string> {
  const { tarPath } = await busyboxRootfs(arch);
  const r = await runChecked(DOCKER_CLI, ['import', '--platform', platformString(arch), '--change', 'CMD ["sh"]',
    '--change', 'ENV PATH=/bin', tarPath, tag], { signal: opts.signal });
  return r.stdout.trim();
}

/** `docker save` of the given tags into `path` (gzip-compressed when asked); returns `path`. */
export async function dockerSaveArchive(tags: readonly string[], path: string, opts: { gzip?: boolean; signal?: AbortSignal } = {}): Promise<string> {
  if (opts.gzip !== true) {
    await runChecked(DOCKER_CLI, ['save', '-o', path, ...tags], { signal: opts.signal });
    return path;
  }
  const raw = `${path}.tmp-${process.pid}.tar`;
  try {
    await runChecked(DOCKER_CLI, ['save', '-o', raw, ...tags], { signal: opts.signal });
    await pipeline(createReadStream(raw), createGzip(), createWriteStream(path), { signal: opts.signal });
  } finally {
    await rm(raw, { force: true });
  }
  return path;
}

// ---------------------------------------------------------------------------------------------
// skopeo: archives in every layout our readers must accept

export interface SkopeoArchiveOptions {
  /** Where to write; default a fresh dir in the fixture cache. */
  dir?: string;
  /** Name recorded inside the archives (docker-archive RepoTags — skopeo normalises it to `docker.io/…` —, oci ref.name = its tag); default `slipway/fixture:latest`. */
  refName?: string;
  creds?: { username: string; password: string };
  /** For an index source: copy the whole index into the OCI outputs (docker-archive always holds one image). */
  all?: boolean;
  /** For an index source: which platform docker-archive (and the OCI outputs unless `all`) gets. Default amd64. */
  arch?: BusyboxArch;
  signal?: AbortSignal;
}

export interface SkopeoArchives {
  /** `docker-archive:` tar (Docker `manifest.json` layout). */
  dockerArchive: string;
  /** `oci-archive:` tar (OCI image layout in a tar). */
  ociArchive: string;
  /** `oci:` directory (OCI image layout). */
  ociDir: string;
}

/**
 * Copies `srcRef` (`docker://host/repo:tag`, or `host/repo:tag`) with the real skopeo into a
 * docker-archive tar, an oci-archive tar and an oci layout directory.
 */
export async function skopeoArchives(srcRef: string, opts: SkopeoArchiveOptions = {}): Promise<SkopeoArchives> {
  const src = /^[a-z-]+:/.test(srcRef) && !/^[^/]+:\d+\//.test(srcRef) ? srcRef : `docker://${srcRef}`;
  const dir = opts.dir ?? await mkdtemp(join(await fixtureCacheDir(), 'skopeo-'));
  await mkdir(dir, { recursive: true });
  const refName = opts.refName ?? 'slipway/fixture:latest';
  const p = platformOf(opts.arch ?? 'amd64');
  const common = ['--src-tls-verify=false', '--override-os', p.os, '--override-arch', p.architecture,
    ...(p.variant ? ['--override-variant', p.variant] : []),
    ...(opts.creds ? ['--src-creds', `${opts.creds.username}:${opts.creds.password}`] : [])];
  const out: SkopeoArchives = {
    dockerArchive: join(dir, 'docker-archive.tar'),
    ociArchive: join(dir, 'oci-archive.tar'),
    ociDir: join(dir, 'oci-layout'),
  };
  const all = opts.all === true ? ['--all'] : [];
  const tagOnly = refName.includes(':') ? refName.slice(refName.lastIndexOf(':') + 1) : 'latest';
  await runChecked('skopeo', ['copy', '--quiet', ...common, src, `docker-archive:${out.dockerArchive}:${refName}`], { signal: opts.signal });
  await runChecked('skopeo', ['copy', '--quiet', ...common, ...all, src, `oci-archive:${out.ociArchive}:${tagOnly}`], { signal: opts.signal });
  await runChecked('skopeo', ['copy', '--quiet', ...common, ...all, src, `oci:${out.ociDir}:${tagOnly}`], { signal: opts.signal });
  return out;
}

/** `skopeo inspect --raw` of a reference on a plain-HTTP/self-signed test registry: the manifest bytes as JSON. */
export async function skopeoInspectRaw(ref: string, opts: { creds?: { username: string; password: string }; signal?: AbortSignal } = {}): Promise<unknown> {
  const src = ref.startsWith('docker://') ? ref : `docker://${ref}`;
  const r = await runChecked('skopeo', ['inspect', '--raw', '--tls-verify=false',
    ...(opts.creds ? ['--creds', `${opts.creds.username}:${opts.creds.password}`] : []), src], { signal: opts.signal });
  return JSON.parse(r.stdout) as unknown;
}

const layoutCache = new Map<string, Promise<{ dir: string; tag: string }>>();

/**
 * An OCI image layout directory (index.json, blobs/) holding the busybox image for `arch`, written
 * by `buildah push … oci:DIR:TAG` — a source for tests that need no registry. Cached per process;
 * treat it as read-only (copy it if a test modifies it).
 */
export function busyboxOciLayout(arch: BusyboxArch = 'amd64', format: ImageFormat = 'oci'): Promise<{ dir: string; tag: string }> {
  return memo(layoutCache, `${arch}/${format}`, async () => {
    const image = await localBusyboxImage(arch, format);
    const dir = join(await fixtureCacheDir(), `oci-layout-${arch}-${format}`);
    await rm(dir, { recursive: true, force: true });
    const tag = 'latest';
    await buildah(['push', '--quiet', ...(format === 'docker' ? ['--format', 'v2s2'] : ['--format', 'oci']), image, `oci:${dir}:${tag}`]);
    return { dir, tag };
  });
}
