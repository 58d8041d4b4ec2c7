import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { copy } from '@slipway/oci';
import type { CommandIo } from './command.js';
import { createProgress, formatBytes, shortDigest } from './progress.js';

function stderr(isTTY: boolean, columns = 80) {
  const chunks: string[] = [];
  const stream = Object.assign(
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString());
        callback();
      },
    }),
    { isTTY, columns },
  );
  const io = { stdout: stream, stderr: stream, env: {}, signal: new AbortController().signal } as CommandIo;
  return { io, text: () => chunks.join('') };
}

const digest = `sha256:${'ab'.repeat(32)}` as const;
const totals = (bytesDone: number) => ({ blobsDone: bytesDone === 100 ? 1 : 0, blobsTotal: 1, bytesDone, bytesTotal: 100 });
const events: copy.CopyEvent[] = [
  { type: 'plan', manifests: 1, totals: totals(0) },
  { type: 'blob-start', digest, size: 100, mediaType: 'x', totals: totals(0) },
  { type: 'blob-progress', digest, size: 100, mediaType: 'x', bytes: 50, totals: totals(50) },
  { type: 'blob-done', digest, size: 100, mediaType: 'x', totals: totals(100) },
  { type: 'manifest-done', digest, mediaType: 'x', size: 10, tag: 'latest', totals: totals(100) },
];

describe('progress', () => {
  it('writes plain lines on a terminal too narrow for bars, and bar lines never exceed the width', async () => {
    const narrow = stderr(true, 30);
    const view = createProgress(narrow.io, { intervalMs: 0 });
    for (const e of events) view.onProgress(e);
    view.finish();
    assert.ok(!narrow.text().includes('\x1b['), 'no cursor movement: wrapped rows could not be erased');
    assert.match(narrow.text(), /^blob sha256:abababababab copied/m);
    const wide = stderr(true, 60);
    const bars = createProgress(wide.io, { intervalMs: 0 });
    for (const e of events.slice(0, 3)) bars.onProgress(e);
    await delay(20);
    bars.finish();
    // eslint-disable-next-line no-control-regex
    const rows = wide.text().replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split('\n');
    assert.ok(rows.some((row) => row.includes('[')), 'bars drawn');
    for (const row of rows) assert.ok(row.length < 60, `a ${row.length}-column row wraps a 60-column terminal: ${row}`);
    // A pseudo-terminal whose size was never set says 0 columns: that is unknown, and gets bars.
    const unsized = stderr(true, 0);
    const unknown = createProgress(unsized.io, { intervalMs: 0 });
    for (const e of events.slice(0, 3)) unknown.onProgress(e);
    await delay(20);
    unknown.finish();
    assert.match(unsized.text(), /\[=+\s*\]/);
  });

  it('writes plain lines when stderr is not a terminal', () => {
    const out = stderr(false);
    const view = createProgress(out.io);
    for (const e of events) view.onProgress(e);
    view.finish();
    assert.equal(
      out.text(),
      [
        'to check: 1 manifest, 1 blob (100 B)',
        `blob ${shortDigest(digest)} copied (100 B)`,
        `manifest ${shortDigest(digest)} written as latest`,
        '',
      ].join('\n'),
    );
    assert.ok(!out.text().includes('\x1b'));
  });

  it('redraws bars in place on a terminal, throttled, and erases them at the end', async () => {
    const out = stderr(true);
    const view = createProgress(out.io, { intervalMs: 20 });
    view.onProgress(events[1]!);
    view.onProgress(events[2]!);
    await delay(40);
    const drawn = out.text();
    assert.match(drawn, /sha256:abababababab \[=+ +\] 50 B \/ 100 B/);
    assert.match(drawn, /0\/1 blobs/);
    view.onProgress(events[3]!);
    view.finish();
    assert.ok(out.text().endsWith('\x1b[2A\x1b[2K\n\x1b[2K\n\x1b[2A'), JSON.stringify(out.text().slice(-40)));
  });

  it('stays silent with quiet', () => {
    const out = stderr(true);
    const view = createProgress(out.io, { quiet: true });
    for (const e of events) view.onProgress(e);
    view.finish();
    assert.equal(out.text(), '');
  });

  it('formats sizes', () => {
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1500), '1.50 kB');
    assert.equal(formatBytes(123_456_789), '123.5 MB');
  });
});
