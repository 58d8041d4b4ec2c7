// go-containerregistry's registry (pkg/registry) with its OCI 1.1 referrers API on, built by
// scripts/install-go-tools.sh from scripts/ggcr-registry: the registry of this test bed that lists
// referrers through `GET /v2/<name>/referrers/<digest>` (distribution 2.8 and v3 have no such API).
// In memory, plain HTTP on a loopback port it picks itself.
import { spawn } from 'node:child_process';
import { toolPath } from './tools.js';

export const GGCR_REGISTRY_TOOL = 'ggcr-registry';

export interface GgcrRegistry {
  /** `127.0.0.1:PORT`. */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  stop(): Promise<void>;
}

export function ggcrRegistryPath(): string | undefined {
  return toolPath(GGCR_REGISTRY_TOOL);
}

export interface StartGgcrRegistryOptions {
  /**
   * Answer a manifest PUT carrying a `subject` with `OCI-Subject`, as distribution spec v1.1 requires
   * of a registry that indexes referrers (pkg/registry itself leaves the header out).
   */
  ociSubject?: boolean;
}

export async function startGgcrRegistry(options: StartGgcrRegistryOptions = {}): Promise<GgcrRegistry> {
  const binary = ggcrRegistryPath();
  if (!binary) throw new Error(`${GGCR_REGISTRY_TOOL} not found: scripts/install-go-tools.sh ggcr-registry builds it`);
  const proc = spawn(binary, ['--address', '127.0.0.1:0', ...(options.ociSubject ? ['--oci-subject'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.unref();
  // A test process that ends without stop() must not leave the server behind.
  const kill = (): void => void proc.kill('SIGKILL');
  process.once('exit', kill);
  let output = '';
  const host = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${GGCR_REGISTRY_TOOL} did not start within 10 s: ${output}`)), 10_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const found = /listening on (127\.0\.0\.1:\d+)/.exec(output);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]!);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${GGCR_REGISTRY_TOOL} exited with ${code}: ${output}`));
    });
  });
  // Keep draining its output (a full pipe would block the server); unref'd so it holds nothing open.
  for (const stream of [proc.stdout, proc.stderr]) {
    stream.resume();
    (stream as unknown as { unref?: () => void }).unref?.();
  }
  return {
    host,
    url: `http://${host}`,
    stop: async () => {
      process.removeListener('exit', kill);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
