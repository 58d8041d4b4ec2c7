/**
 * Repository mirror bench: `slipway copy --all-tags` beside `crane copy --all-tags` and `skopeo sync`,
 * a first sync into an empty registry and a re-run, with 25 ms added to every request at both ends
 * (fault proxies on loopback), so that round trips count as they do between regions. The source
 * holds 50 tags: 10 small images made by crane, each under 5 tags (aliases), as release tags do.
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, runOk, runTimed, type FaultProxy, type Harness } from './support.js';

export interface MirrorRow {
  case: 'first sync' | 're-run';
  tool: string;
  seconds?: number;
  sourceRequests?: number;
  destinationRequests?: number;
  status: string;
}

const images = 10;
const aliasesPerImage = 4;
const latencyMs = 25;

export async function runMirrorBench(options: { harness: Harness; workDir: string; log: (line: string) => void }): Promise<{ rows: MirrorRow[]; note?: string }> {
  const { harness, workDir, log } = options;
  const crane = harness.tools.toolPath('crane');
  if (!crane) return { rows: [], note: 'mirror bench skipped: crane is not built (scripts/install-go-tools.sh); it makes the source images' };
  const source = await harness.registry.startRegistry({ logLevel: 'error' });
  const rows: MirrorRow[] = [];
  try {
    for (let i = 0; i < images; i++) {
      const dir = join(workDir, `mirror-layer-${i}`);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'file'), `image ${i}\n`.repeat(2000 + i));
      await runOk('tar', ['-C', dir, '-cf', `${dir}.tar`, 'file']);
      await runOk(crane, ['append', '--insecure', '-f', `${dir}.tar`, '-t', `${source.host}/many/app:v${i}`], { env: { HOME: workDir } });
      for (let a = 0; a < aliasesPerImage; a++) await runOk(crane, ['tag', '--insecure', `${source.host}/many/app:v${i}`, `v${i}.${a}`], { env: { HOME: workDir } });
    }
    const tools: { tool: string; run: (from: string, toHost: string) => [string, string[]] }[] = [
      { tool: 'slipway CLI', run: (from, toHost) => [process.execPath, [CLI, 'copy', '-q', '--all-tags', from, `${toHost}/mirror/app`]] },
      { tool: 'crane', run: (from, toHost) => [crane, ['copy', '--insecure', '--all-tags', from, `${toHost}/mirror/app`]] },
      { tool: 'skopeo sync', run: (from, toHost) => ['skopeo', ['sync', '--src-tls-verify=false', '--dest-tls-verify=false', '--src', 'docker', '--dest', 'docker', from, `${toHost}/mirror`]] },
    ];
    for (const { tool, run } of tools) {
      if (tool === 'skopeo sync' && !harness.tools.toolPath('skopeo')) continue;
      const destination = await harness.registry.startRegistry({ logLevel: 'error' });
      const proxies: FaultProxy[] = [await harness.proxy.startFaultProxy({ target: source }), await harness.proxy.startFaultProxy({ target: destination })];
      try {
        for (const p of proxies) p.inject({ fault: { delayMs: latencyMs }, times: Infinity });
        const [atSource, atDestination] = proxies as [FaultProxy, FaultProxy];
        for (const which of ['first sync', 're-run'] as const) {
          atSource.clearRequests();
          atDestination.clearRequests();
          const [cmd, args] = run(`${atSource.host}/many/app`, atDestination.host);
          const timed = await runTimed(cmd, args, { env: { HOME: workDir }, timeoutMs: 300_000 });
          const row: MirrorRow = {
            case: which,
            tool,
            seconds: timed.seconds,
            sourceRequests: atSource.requests.length,
            destinationRequests: atDestination.requests.length,
            status: timed.code === 0 ? 'ok' : `exit ${timed.code}: ${timed.stderr.trim().slice(-160)}`,
          };
          rows.push(row);
          log(`mirror ${which.padEnd(10)} ${tool.padEnd(12)} ${timed.seconds.toFixed(2)} s, ${row.sourceRequests} + ${row.destinationRequests} requests`);
        }
      } finally {
        await Promise.all(proxies.map((p) => p.stop()));
        await destination.stop();
      }
    }
  } finally {
    await source.stop();
  }
  return { rows };
}

export const mirrorBenchSetup = `${images * (aliasesPerImage + 1)} tags (${images} images made by crane, ${aliasesPerImage} aliases each), ${latencyMs} ms added to every request at both ends`;
