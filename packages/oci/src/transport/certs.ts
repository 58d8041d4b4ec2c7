/**
 * Per-registry TLS material from `certs.d` directories, the layout Docker and containers/image
 * (podman, skopeo, buildah) share: `<root>/<host[:port]>/` holding
 * - `*.crt`: CA certificates trusted for that registry, on top of the system roots;
 * - `*.cert` with a `*.key` of the same base name: a client certificate, for registries that
 *   require mutual TLS (Harbor, Artifactory or distribution with `http.tls.clientcas`).
 *
 * Roots are searched in order and the first holding a directory for the registry answers alone, as
 * containers/image does: by default `$XDG_CONFIG_HOME/containers/certs.d` (or
 * `~/.config/containers/certs.d`), `/etc/containers/certs.d`, `/etc/docker/certs.d`. A registry's
 * directory is named as the reference names it (`registry.corp:5000`, `docker.io`).
 *
 * A `.key` without its `.cert` (or the reverse) is an error, not a silent fallback to no client
 * certificate: the registry would refuse the handshake with a message far from the cause. As in
 * containers/image, a directory this user may not read (a root-only `/etc/docker/certs.d/<host>`
 * under a rootless run) is passed over, and so is a `.crt` that is a dangling link; both are noted
 * in the debug log (`NODE_DEBUG=slipway`).
 *
 * Also the CAs that `SSL_CERT_FILE` and `SSL_CERT_DIR` name, the variables OpenSSL and Go's
 * crypto/x509 (so crane, skopeo, docker) read on Linux: a file of PEM certificates, and a
 * colon-separated list of directories of them. slipway adds them to Node's roots rather than
 * replacing those as OpenSSL and Go do: see {@link readEnvironmentCertificates}.
 * @module
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { debuglog } from 'node:util';
import { InvalidArgumentError } from '../errors.js';

const debug = debuglog('slipway');

/** TLS material for one registry, from one directory. */
export interface HostCertificates {
  /** The directory it came from, for messages. */
  directory: string;
  /** PEM CA certificates (`*.crt`). */
  ca: string[];
  /** PEM client certificates (`*.cert`) and their keys (`*.key`), pair by pair. */
  cert: string[];
  key: string[];
}

/** The default roots, most specific first (see the module comment). */
export function defaultCertDirectories(env: NodeJS.ProcessEnv = process.env): string[] {
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return [join(config, 'containers', 'certs.d'), '/etc/containers/certs.d', '/etc/docker/certs.d'];
}

/** A directory name for a registry must not climb out of its root (`..`, `/`): references never hold those. */
function safeName(registry: string): boolean {
  return registry !== '' && registry !== '.' && registry !== '..' && !/[/\\\0]/.test(registry);
}

/**
 * The TLS material of the first root holding a directory for `registry`, or undefined when none
 * does (or the directory holds no `.crt`, `.cert` or `.key`).
 */
export async function readHostCertificates(roots: readonly string[], registry: string): Promise<HostCertificates | undefined> {
  if (!safeName(registry)) return undefined;
  for (const root of roots) {
    const directory = join(root, registry);
    let names: string[];
    try {
      names = (await readdir(directory, { withFileTypes: true })).filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      if (code === 'EACCES' || code === 'EPERM') {
        debug('certs.d: %s is not readable (%s), passed over', directory, code);
        continue;
      }
      throw new InvalidArgumentError(`reading certificates for ${registry} in ${directory}: ${(err as Error).message}`, { cause: err });
    }
    names.sort();
    /** A file's text; undefined for a dangling link when `missingOk` (a CA: nothing to trust, nothing to fail over). */
    const read = async (name: string, missingOk = false): Promise<string | undefined> => {
      try {
        return await readFile(join(directory, name), 'utf8');
      } catch (err) {
        if (missingOk && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          debug('certs.d: %s is a dangling link, passed over', join(directory, name));
          return undefined;
        }
        throw new InvalidArgumentError(`reading ${join(directory, name)}: ${(err as Error).message}`, { cause: err });
      }
    };
    const found: HostCertificates = { directory, ca: [], cert: [], key: [] };
    for (const name of names) {
      if (name.endsWith('.crt')) {
        const pem = await read(name, true);
        if (pem !== undefined) found.ca.push(pem);
      } else if (name.endsWith('.cert')) {
        const keyName = `${name.slice(0, -'.cert'.length)}.key`;
        if (!names.includes(keyName)) throw new InvalidArgumentError(`client certificate ${join(directory, name)} has no key ${keyName} beside it`);
        found.cert.push((await read(name))!);
        found.key.push((await read(keyName))!);
      } else if (name.endsWith('.key')) {
        const certName = `${name.slice(0, -'.key'.length)}.cert`;
        if (!names.includes(certName)) throw new InvalidArgumentError(`client key ${join(directory, name)} has no certificate ${certName} beside it`);
      }
    }
    // An existing directory answers even when empty, as in containers/image: later roots are not read.
    return found.ca.length + found.cert.length === 0 ? undefined : found;
  }
  return undefined;
}

/** What `SSL_CERT_FILE` and `SSL_CERT_DIR` name, read once when a client is created. */
export interface CertificateEnvironment {
  /** `SSL_CERT_FILE`, when set and not empty. */
  file?: string;
  /** `SSL_CERT_DIR` split at its colons, empty entries dropped (Go drops them too). */
  directories: string[];
}

/** `SSL_CERT_FILE` and `SSL_CERT_DIR` from `env`; an empty value counts as unset, as in Go. */
export function certificateEnvironment(env: NodeJS.ProcessEnv = process.env): CertificateEnvironment {
  const file = env.SSL_CERT_FILE;
  const directories = (env.SSL_CERT_DIR ?? '').split(':').filter((d) => d !== '');
  return file ? { file, directories } : { directories };
}

/** Whether the environment names any certificate at all (nothing to read otherwise). */
export function namesCertificates(environment: CertificateEnvironment): boolean {
  return environment.file !== undefined || environment.directories.length > 0;
}

const pemBlock = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g;

/**
 * The PEM certificate blocks in `text` whose body decodes to a DER sequence, as `key → block`, the
 * key being the body without whitespace (the same CA in two files is trusted once). Other PEM blocks
 * (keys, `TRUSTED CERTIFICATE`) are ignored, as Go's AppendCertsFromPEM ignores them. Blocks are not
 * parsed: node:crypto's X509Certificate takes ~0.3 ms a certificate, 40 ms for a system bundle, and
 * Node's TLS itself passes over a block it cannot parse.
 */
function certificateBlocks(text: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const match of text.matchAll(pemBlock)) {
    const body = match[1]!.replace(/\s+/g, '');
    if (Buffer.from(body.slice(0, 8), 'base64')[0] !== 0x30) continue;
    blocks.set(body, match[0]);
  }
  return blocks;
}

/** Names OpenSSL's `c_rehash` gives the certificates of a hashed directory: 8 hex digits, a dot, a number. */
const hashedName = /^[0-9a-f]{8}\.\d+$/i;

/** Whether a file in an `SSL_CERT_DIR` directory is read: `*.pem`, `*.crt`, `*.cer` and OpenSSL hash names. */
export function isCertificateFileName(name: string): boolean {
  return /\.(pem|crt|cer)$/i.test(name) || hashedName.test(name);
}

/**
 * The PEM CA certificates `SSL_CERT_FILE` and `SSL_CERT_DIR` name, each once, for slipway to trust on
 * top of Node's bundled roots (and `NODE_EXTRA_CA_CERTS`, `caCertificates`, certs.d). OpenSSL and Go
 * let these variables replace the system roots; slipway adds instead, because Node's roots are not
 * the system's: a user who points `SSL_CERT_FILE` at a private CA for one registry would otherwise
 * lose Docker Hub, ghcr.io and every other public registry.
 *
 * `SSL_CERT_FILE` was named explicitly, so a path that cannot be read, or a file holding no
 * certificate, is an InvalidArgumentError naming the variable (a handshake failing later with "not
 * trusted" would hide the cause). In the `SSL_CERT_DIR` directories every regular file named as
 * {@link isCertificateFileName} says is read (links followed: the hash names of `/etc/ssl/certs`
 * are links, to files read once); a directory that does not exist, a file that cannot be read or
 * holds no certificate is passed over and noted in the debug log, as Go passes over what it cannot
 * use there.
 *
 * Read synchronously, once per client before its first connection: `/etc/ssl/certs` (what many
 * images set `SSL_CERT_DIR` to) has ~300 entries, 9 ms read here this way and 30–40 ms through the
 * promise API, whose every stat and read waits its turn in libuv's thread pool.
 */
export async function readEnvironmentCertificates(environment: CertificateEnvironment): Promise<string[]> {
  const found = new Map<string, string>();
  const add = (blocks: Map<string, string>): void => {
    for (const [key, block] of blocks) if (!found.has(key)) found.set(key, block);
  };
  if (environment.file !== undefined) {
    const file = environment.file;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'which does not exist' : code === 'EISDIR' ? 'which is a directory (SSL_CERT_DIR names directories)' : `which cannot be read (${(err as Error).message})`;
      throw new InvalidArgumentError(`SSL_CERT_FILE names ${file}, ${why}; point it at a PEM file of CA certificates, or unset it`, { cause: err });
    }
    const blocks = certificateBlocks(text);
    if (blocks.size === 0) throw new InvalidArgumentError(`SSL_CERT_FILE names ${file}, which holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    debug('SSL_CERT_FILE: %d certificates from %s', blocks.size, file);
    add(blocks);
  }
  const seen = new Set<string>();
  for (const directory of environment.directories) {
    let names: string[];
    try {
      names = readdirSync(directory).filter(isCertificateFileName).sort();
    } catch (err) {
      debug('SSL_CERT_DIR: %s passed over (%s)', directory, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
      continue;
    }
    let count = 0;
    for (const name of names) {
      const path = join(directory, name);
      try {
        // stat first: reading a FIFO or a device named like a certificate would wait forever.
        const stats = statSync(path);
        if (!stats.isFile()) {
          debug('SSL_CERT_DIR: %s is not a regular file, passed over', path);
          continue;
        }
        const identity = `${stats.dev}:${stats.ino}`;
        if (seen.has(identity)) continue;
        seen.add(identity);
        const blocks = certificateBlocks(readFileSync(path, 'utf8'));
        if (blocks.size === 0) {
          debug('SSL_CERT_DIR: %s holds no PEM certificate, passed over', path);
          continue;
        }
        count += blocks.size;
        add(blocks);
      } catch (err) {
        debug('SSL_CERT_DIR: %s passed over (%s)', path, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
      }
    }
    debug('SSL_CERT_DIR: %d certificates from %s', count, directory);
  }
  return [...found.values()];
}

let trustedByDefault: { keys: Set<string>; nodeExtra: string[] } | undefined;

/**
 * What Node trusts with no `ca` option: its bundled roots and the certificates of
 * `NODE_EXTRA_CA_CERTS` (as keys, see certificateBlocks), and those of `NODE_EXTRA_CA_CERTS` that are
 * not bundled roots. Read once per process, as Node reads the variable once, at start-up.
 */
function defaultTrust(): { keys: Set<string>; nodeExtra: string[] } {
  if (trustedByDefault) return trustedByDefault;
  const keys = new Set<string>();
  for (const pem of rootCertificates) for (const key of certificateBlocks(pem).keys()) keys.add(key);
  const nodeExtra: string[] = [];
  const file = process.env.NODE_EXTRA_CA_CERTS;
  let text = '';
  try {
    if (file) text = readFileSync(file, 'utf8');
  } catch {
    // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS.
  }
  for (const [key, block] of certificateBlocks(text)) {
    if (keys.has(key)) continue;
    keys.add(key);
    nodeExtra.push(block);
  }
  trustedByDefault = { keys, nodeExtra };
  return trustedByDefault;
}

/**
 * `certificates` less those Node trusts anyway (its roots, `NODE_EXTRA_CA_CERTS`): where both
 * variables name the system bundle, as many images set them, nothing is left, and connections keep
 * Node's default trust store, which costs nothing to set up.
 */
export function notTrustedByDefault(certificates: readonly string[]): string[] {
  const { keys } = defaultTrust();
  return certificates.filter((pem) => ![...certificateBlocks(pem).keys()].every((key) => keys.has(key)));
}

/**
 * One TLS context trusting Node's roots, `NODE_EXTRA_CA_CERTS` and `extra`, for every verifying
 * connection to share, presenting `client`'s certificate when given (certs.d for mutual TLS: a
 * `secureContext` passed to tls.connect makes it ignore `cert` and `key`). Built by adding to the
 * default context rather than with the `ca` option: `ca` replaces the roots, so all 144 of them would
 * be parsed again from PEM (~40 ms here, on every connection when passed to tls.connect); added to,
 * the context copies the roots Node parsed once. Node 20 leaves `NODE_EXTRA_CA_CERTS` out of that
 * copy, so its certificates are added too (those that are not bundled roots already).
 */
export function secureContextTrusting(extra: readonly (string | Buffer)[], client?: { cert: (string | Buffer)[]; key: (string | Buffer)[] }): SecureContext {
  const { nodeExtra } = defaultTrust();
  const context = createSecureContext(client ?? {});
  // `context` is the native context tls.createSecureContext itself adds `ca` entries to; should a
  // Node release hide it, `ca` does the same, only slower.
  const native = (context as { context?: { addCACert?: (pem: string | Buffer) => void } }).context;
  if (typeof native?.addCACert !== 'function') return createSecureContext({ ...client, ca: [...rootCertificates, ...nodeExtra, ...extra] });
  for (const pem of [...nodeExtra, ...extra]) native.addCACert(pem);
  return context;
}
