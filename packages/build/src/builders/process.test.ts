import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { groupAlive, LineSplitter, LogTail, Redactor, run, which } from './process.js';

describe('LineSplitter', () => {
  it('splits across chunk boundaries, drops \\r before \\n, and flushes a final partial line', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line));
    splitter.write('fir');
    splitter.write('st\r\nsec');
    splitter.write(Buffer.from('ond\n\nthird'));
    splitter.end();
    assert.deepEqual(lines, ['first', 'second', '', 'third']);
  });

  it('keeps a multi-byte character split between chunks intact', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line));
    const bytes = Buffer.from('é€\n');
    splitter.write(bytes.subarray(0, 1));
    splitter.write(bytes.subarray(1, 3));
    splitter.write(bytes.subarray(3));
    splitter.end();
    assert.deepEqual(lines, ['é€']);
  });
});

describe('Redactor', () => {
  it('replaces every occurrence, longest secret first, line by line for multi-line values', () => {
    const redactor = new Redactor(['hunter2hunter2', 'hunter2', 'abc', 'line-one\nline-two']);
    assert.equal(redactor.redact('x hunter2hunter2 y hunter2 abc'), 'x *** y *** abc');
    assert.equal(redactor.redact('got line-two here'), 'got *** here');
  });
});

describe('LogTail', () => {
  it('keeps the last lines and shortens only the stored copy of a huge line', () => {
    const tail = new LogTail(3, 1_000_000, 10);
    for (const line of ['a', 'b', 'c', 'd', 'x'.repeat(25)]) tail.push(line);
    assert.deepEqual(tail.toArray(), ['c', 'd', `${'x'.repeat(10)}… (15 more characters)`]);
  });
});

describe('run', () => {
  it('delivers a 1 MiB line whole (no line-length limit), redacted, and reports the exit code', async () => {
    const lines: string[] = [];
    const result = await run({
      command: process.execPath,
      args: ['-e', 'process.stdout.write("s3cr3t-value " + "x".repeat(1 << 20) + "\\nend\\n"); process.exitCode = 3'],
      env: process.env,
      redactor: new Redactor(['s3cr3t-value']),
      onLog: (line) => lines.push(line.line),
    });
    assert.equal(result.exitCode, 3);
    assert.equal(lines.length, 2);
    assert.equal(lines[0]!.length, '*** '.length + (1 << 20));
    assert.ok(lines[0]!.startsWith('*** '));
    assert.equal(lines[1], 'end');
    assert.ok(!result.tail.join('\n').includes('s3cr3t'));
  });

  it('on abort takes the whole process group down within 2 s, even a child that ignores SIGINT', async () => {
    const controller = new AbortController();
    let pid: number | undefined;
    const started = Date.now();
    const child = `process.on("SIGINT", () => {}); setInterval(() => {}, 1000);`;
    const parent = `const { spawn } = require("node:child_process");
      const c = spawn(process.execPath, ["-e", ${JSON.stringify(child)}], { stdio: "inherit" });
      process.on("SIGINT", () => {});
      console.log("ready " + process.pid + " " + c.pid); setInterval(() => {}, 1000);`;
    const running = run({
      command: process.execPath,
      args: ['-e', parent],
      env: process.env,
      signal: controller.signal,
      onLog: (line) => {
        const match = /^ready (\d+) (\d+)/.exec(line.line);
        if (match) {
          pid = Number(match[1]);
          setTimeout(() => controller.abort(new Error('test')), 50);
        }
      },
    });
    await assert.rejects(running, (err: Error & { code?: string }) => err.code === 'SLIPWAY_ABORTED');
    assert.ok(pid !== undefined);
    assert.equal(groupAlive(pid), false, 'process group still alive after abort');
    assert.ok(Date.now() - started < 4000, `took ${Date.now() - started} ms`);
  });

  it('reports a missing executable as SLIPWAY_BUILDER_UNAVAILABLE', async () => {
    await assert.rejects(
      run({ command: '/nonexistent/tool', args: [], env: process.env }),
      (err: Error & { code?: string }) => err.code === 'SLIPWAY_BUILDER_UNAVAILABLE',
    );
  });
});

describe('groupAlive', () => {
  it('is false for a group whose only member is a zombie nobody reaps (kill(2) still finds it)', { skip: process.platform !== 'linux' ? 'reads /proc' : false }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-zombie-'));
    // The member leaves its parent's group (setsid), writes its pid and exits; the parent then
    // execs sleep, which never reaps it: a group of one zombie.
    const parent = spawn('sh', ['-c', `(exec setsid sh -c 'echo $$ > "$1"; exit 0' sh "${join(dir, 'pid')}") & exec sleep 30`], { stdio: 'ignore' });
    try {
      let pid: number | undefined;
      for (let i = 0; i < 200 && pid === undefined; i++) {
        const text = await readFile(join(dir, 'pid'), 'utf8').catch(() => '');
        const stat = text.trim() === '' ? '' : await readFile(`/proc/${text.trim()}/stat`, 'utf8').catch(() => '');
        if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) pid = Number(text.trim());
        else await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.ok(pid !== undefined, 'the member became a zombie');
      assert.doesNotThrow(() => process.kill(-pid, 0), 'kill(2) still finds the zombie group');
      assert.equal(groupAlive(pid), false);
      const self = await readFile('/proc/self/stat', 'utf8');
      const ownGroup = Number(self.slice(self.lastIndexOf(')') + 2).split(' ')[2]);
      assert.equal(groupAlive(ownGroup), true, 'the group this live process is in');
    } finally {
      parent.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('which', () => {
  it('finds a bare name only in absolute PATH directories: a builder checked into the repository being built never runs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-which-'));
    const cwd = process.cwd();
    try {
      const trusted = join(dir, 'trusted');
      const checkout = join(dir, 'checkout');
      for (const folder of [trusted, checkout]) {
        await mkdir(folder);
        await writeFile(join(folder, 'buildah'), '#!/bin/sh\n');
        await chmod(join(folder, 'buildah'), 0o755);
      }
      process.chdir(checkout);
      assert.deepEqual(await which('buildah', { PATH: `.::${trusted}` }), [join(trusted, 'buildah')]);
      assert.deepEqual(await which('buildah', { PATH: `:checkout` }), []);
      // A path the user wrote is taken as it is.
      assert.deepEqual(await which('./buildah', { PATH: '' }), [join(checkout, 'buildah')]);
    } finally {
      process.chdir(cwd);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
