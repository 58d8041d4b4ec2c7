// Audit of the builder plumbing against the real tools, per builder:
// - a RUN step printing one 1 MiB line reaches onLog as ONE line (no scanner limit anywhere on our side);
// - cancelling kills every process the build started (found by walking our process tree in /proc, not
//   by name) within 2 s of the abort;
// - credentials reach the builder through a temporary Docker config that, while the build runs, is
//   0600 in a 0700 directory, holds exactly the registries the build talks to (the keychain is never
//   asked about others), is the file the builder process was really given (read from its
//   /proc/PID/environ), and is gone when build() returns.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { build, type builders } from '@slipway/build';
import { remote, type auth } from '@slipway/oci';
import { startRegistry } from '../support/registry.js';
import { collectLog, repo, selectBuilder, useBuildBed, writeContext } from './build-harness.js';

const KINDS = ['buildah', 'buildctl', 'docker', 'buildx'] as const;

interface Proc {
  pid: number;
  ppid: number;
  state: string;
  cmdline: string;
}

/** Every process on the machine (pid, parent, state, command line), read from /proc. */
async function processTable(): Promise<Map<number, Proc>> {
  const table = new Map<number, Proc>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const statText = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so parse after the last ')'.
    const close = statText.lastIndexOf(')');
    if (close === -1) continue;
    const [state, ppid] = statText.slice(close + 2).split(' ');
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
    table.set(Number(entry), { pid: Number(entry), ppid: Number(ppid), state: state ?? '?', cmdline });
  }
  return table;
}

/** Descendants of `root`, not entering the subtrees of `prune` (daemons the test started itself). */
function descendants(table: Map<number, Proc>, root: number, prune: Set<number>): Proc[] {
  const children = new Map<number, Proc[]>();
  for (const p of table.values()) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: Proc[] = [];
  const stack = [root];
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      if (prune.has(child.pid)) continue;
      out.push(child);
      stack.push(child.pid);
    }
  }
  return out;
}

/** Still running: present in /proc and not a zombie (a zombie has exited; only its parent's wait is missing). */
async function alive(pid: number): Promise<boolean> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (text === '') return false;
  return text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3) !== 'Z';
}

async function environOf(pid: number): Promise<Map<string, string>> {
  const env = new Map<string, string>();
  const raw = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

describe('audit: builder processes, output and credentials against the real tools', () => {
  // BuildKit's daemon clips a step's log at 200 KiB/s and 2 MiB by default ("[output clipped, log
  // limit …]"): lift both for our private daemon so the 1 MiB line can reach the client at all.
  const bed = useBuildBed({ buildkitdEnv: { BUILDKIT_STEP_LOG_MAX_SPEED: '-1', BUILDKIT_STEP_LOG_MAX_SIZE: '-1' } });

  const selection = (t: TestContext, kind: builders.BuilderKind): Promise<builders.BuilderSelection | undefined> => selectBuilder(t, kind, bed.buildkitd, 'builder');

  /** Pids of daemons this test process started (buildkitd, the registry): their work is not the build's children. */
  async function daemonPids(): Promise<Set<number>> {
    const table = await processTable();
    return new Set(
      descendants(table, process.pid, new Set())
        .filter((p) => /buildkitd|docker-registry|registry serve/.test(p.cmdline))
        .map((p) => p.pid),
    );
  }

  for (const kind of KINDS) {
    it(`${kind}: a RUN printing a single 1 MiB line arrives in onLog as one line`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const nonce = randomBytes(4).toString('hex');
      // 1 MiB of "x" between two markers, then one newline: the whole line must arrive at once.
      const context = await writeContext({
        Dockerfile: `FROM ${bed.base}\nRUN printf 'BEGIN-${nonce}' && head -c 1048576 /dev/zero | tr '\\0' x && printf 'END-${nonce}\\n'\n`,
      });
      const lines: string[] = [];
      await build({ context, builder, network: 'host', noCache: true, onLog: (l) => lines.push(l.line) });
      const run = `BEGIN-${nonce}${'x'.repeat(1 << 20)}END-${nonce}`;
      const holding = lines.filter((l) => l.includes(`BEGIN-${nonce}x`) || l.includes(`xEND-${nonce}`) || /^(#\d+ [\d.]+ )?x{1000,}/.test(l));
      const longest = Math.max(0, ...lines.map((l) => l.length));
      t.diagnostic(`${kind}: ${lines.length} lines, longest ${longest} characters, ${holding.length} holding the payload`);
      assert.equal(holding.length, 1, `the 1 MiB line arrived in ${holding.length} pieces (longest line ${longest})`);
      if (kind === 'docker') {
        // The shared Docker Engine keeps BuildKit's default step-log limit (200 KiB/s, set on dockerd,
        // not by the client): it sends the first 200 KiB and a clip notice. What it sends still
        // arrives as one line, untouched by us.
        const payload = holding[0]!.replace(/^#\d+ [\d.]+ /, '');
        assert.ok(payload.startsWith(`BEGIN-${nonce}x`) && /^x+$/.test(payload.slice(`BEGIN-${nonce}`.length)), 'one unbroken run of the payload');
        assert.equal(payload.length, 200 * 1024, 'the 200 KiB the Engine sends arrive as one line');
        assert.ok(lines.some((l) => /\[output clipped, log limit/.test(l)), 'the Engine said it clipped the log');
        return;
      }
      const line = holding[0]!;
      if (kind === 'buildah' && !line.endsWith(run)) {
        // Under load buildah's RUN output copier (chroot isolation) now and then stops reading when the
        // process exits and drops what is still in the pipe (up to its 64 KiB), the tail loss container
        // runtimes are known for (moby/moby#49655, containers/podman#9096). The newline goes with it, so
        // buildah's next message ("COMMIT") lands on the same line. What arrived must still be an
        // unbroken, unaltered head of the payload: slipway itself never splits or cuts a line.
        const head = /^BEGIN-[0-9a-f]{8}x+/.exec(line.slice(Math.max(0, line.indexOf(`BEGIN-${nonce}`))))?.[0] ?? '';
        assert.ok(head.startsWith(`BEGIN-${nonce}`) && run.startsWith(head), 'an unbroken head of the payload');
        assert.ok(run.length - head.length <= 128 * 1024, `lost no more than a pipe's worth (${run.length - head.length} characters short)`);
        t.diagnostic(`buildah delivered ${head.length} of ${run.length} characters (its pipe tail loss, not a split)`);
        return;
      }
      assert.ok(line.endsWith(run), `the line holds the whole payload (${line.length} characters)`);
    });
  }

  for (const kind of KINDS) {
    it(`${kind}: after an abort every process the build started is gone within 2 s`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const seconds = `${100 + Math.floor(Math.random() * 50)}.${randomBytes(2).readUInt16BE()}`;
      const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo cancel-window && sleep ${seconds}\n` });
      const daemons = await daemonPids();
      const before = new Set(descendants(await processTable(), process.pid, daemons).map((p) => p.pid));
      const controller = new AbortController();
      let snapshot: Promise<Proc[]> | undefined;
      let abortedAt = 0;
      const log = collectLog();
      const running = build({
        context,
        builder,
        network: 'host',
        noCache: true,
        signal: controller.signal,
        onLog: (line) => {
          log.onLog(line);
          if (snapshot || !/(^|\s)cancel-window$/.test(line.line) || line.line.includes('RUN')) return;
          // The RUN step is running: record what the build has started, then abort.
          snapshot = (async () => {
            await sleep(300);
            const started = descendants(await processTable(), process.pid, daemons).filter((p) => !before.has(p.pid));
            abortedAt = Date.now();
            controller.abort(new Error('audit: Ctrl-C'));
            return started;
          })();
        },
      });
      await assert.rejects(running, (err: Error & { code?: string }) => err.code === 'SLIPWAY_ABORTED');
      assert.ok(snapshot, `the RUN step never printed its marker:\n${log.text()}`);
      const started = await snapshot;
      t.diagnostic(`${kind}: processes of the build at abort: ${started.map((p) => p.cmdline.split(' ')[0]!.split('/').at(-1)).join(', ')}`);
      assert.ok(started.some((p) => p.cmdline.includes(context)), 'the builder CLI was among our children');
      if (kind === 'buildah') assert.ok(started.some((p) => p.cmdline.includes(`sleep ${seconds}`)), 'buildah runs RUN as our descendant');
      let left: Proc[] = started;
      while (Date.now() - abortedAt < 2000) {
        left = [];
        for (const p of started) if (await alive(p.pid)) left.push(p);
        if (left.length === 0) break;
        await sleep(25);
      }
      const elapsed = Date.now() - abortedAt;
      assert.deepEqual(left.map((p) => p.cmdline), [], `still running ${elapsed} ms after the abort`);
      t.diagnostic(`${kind}: all ${started.length} processes gone ${elapsed} ms after the abort`);
    });
  }

  for (const kind of KINDS) {
    it(`${kind}: credentials come from a 0600 config holding only the registries the build needs, removed afterwards`, async (t) => {
      const builder = await selection(t, kind);
      if (!builder) return;
      const locked = await startRegistry({ auth: 'htpasswd' });
      try {
        const unrelated = 'unrelated.invalid:5000';
        const asked: string[] = [];
        const keychain: auth.Keychain = {
          resolve: async (host) => {
            asked.push(host);
            if (host === locked.host) return { username: locked.username, password: locked.password };
            if (host === bed.registry.host) return { username: 'base-reader', password: `base-${randomBytes(6).toString('hex')}` };
            if (host === unrelated) return { username: 'nobody', password: 'never-needed' };
            return undefined;
          },
        };
        // The RUN step waits until the test has inspected the builder process, then the test ends its
        // sleep (found by its unique argument; `;` so the step goes on): a fixed `sleep 2` let a loaded
        // machine finish the build, and its process, before the /proc walk below reached it ("no
        // builder process with DOCKER_CONFIG or REGISTRY_AUTH_FILE was found").
        const seconds = `${200 + Math.floor(Math.random() * 50)}.${randomBytes(2).readUInt16BE()}`;
        const release = async (): Promise<void> => {
          // The marker is echoed just before the sleep starts: look again until it is there.
          for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(25)) {
            const sleeping = [...(await processTable()).values()].filter((p) => p.cmdline.trim() === `sleep ${seconds}`);
            for (const p of sleeping) {
              try {
                process.kill(p.pid, 'SIGKILL');
              } catch {
                // Gone already.
              }
            }
            if (sleeping.length > 0) return;
          }
        };
        const context = await writeContext({ Dockerfile: `FROM ${bed.base}\nRUN echo creds-window && sleep ${seconds}; echo ${randomBytes(4).toString('hex')} > /n\n` });
        const tag = `${locked.host}/${repo(`creds-${kind}`)}:1`;
        let seen: Promise<{ file: string; dirMode: number; fileMode: number; auths: Record<string, { auth?: string }>; variable: string }> | undefined;
        const log = collectLog();
        const result = await build({
          context,
          tags: [tag],
          push: true,
          builder,
          network: 'host',
          keychain,
          onLog: (line) => {
            log.onLog(line);
            if (seen || !/(^|\s)creds-window$/.test(line.line) || line.line.includes('RUN')) return;
            seen = (async () => {
              // The builder process (its command line names the context) and the config it was given.
              for (const p of (await processTable()).values()) {
                if (!p.cmdline.includes(context)) continue;
                const env = await environOf(p.pid);
                const variable = env.has('REGISTRY_AUTH_FILE') ? 'REGISTRY_AUTH_FILE' : env.has('DOCKER_CONFIG') ? 'DOCKER_CONFIG' : undefined;
                if (!variable) continue;
                const value = env.get(variable)!;
                const file = variable === 'DOCKER_CONFIG' ? `${value}/config.json` : value;
                const fileMode = (await stat(file)).mode & 0o777;
                const dirMode = (await stat(dirname(file))).mode & 0o777;
                const auths = (JSON.parse(await readFile(file, 'utf8')) as { auths: Record<string, { auth?: string }> }).auths;
                return { file, dirMode, fileMode, auths, variable };
              }
              throw new Error('no builder process with DOCKER_CONFIG or REGISTRY_AUTH_FILE was found');
            })().finally(release);
          },
        });
        assert.ok(seen, `the RUN step never printed its marker:\n${log.text()}`);
        const during = await seen;
        t.diagnostic(`${kind}: ${during.variable} → ${during.file}`);
        assert.equal(during.fileMode, 0o600, 'config.json mode');
        assert.equal(during.dirMode, 0o700, 'its directory mode');
        assert.deepEqual(Object.keys(during.auths).sort(), [locked.host, bed.registry.host].sort(), 'exactly the registries this build talks to');
        assert.equal(
          Buffer.from(during.auths[locked.host]!.auth ?? '', 'base64').toString() === `${locked.username}:${locked.password}`,
          true,
          'the push registry has the keychain credentials',
        );
        assert.ok(!asked.includes(unrelated), `the keychain was asked about ${unrelated}`);
        await assert.rejects(stat(during.file), (err: NodeJS.ErrnoException) => err.code === 'ENOENT', 'the config outlived the build');
        await assert.rejects(stat(dirname(during.file)), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
        // And it was the one that worked: the push to the locked registry went through.
        const authed = remote.createRegistryClient({ credentials: { [locked.host]: { username: locked.username, password: locked.password } } });
        try {
          assert.equal((await authed.head(tag))?.digest, result.digest);
        } finally {
          await authed.close();
        }
        assert.ok(!log.text().includes(locked.password), 'password in the log');
      } finally {
        await locked.stop();
      }
    });
  }
});
