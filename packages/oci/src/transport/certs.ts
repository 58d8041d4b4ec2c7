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
 * @module
 */
import { readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
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
