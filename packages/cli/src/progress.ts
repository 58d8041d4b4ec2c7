/**
 * Copy progress on stderr: bars redrawn in place on a terminal (throttled), plain lines elsewhere
 * so CI logs stay readable (skopeo#658 asks for exactly that).
 * @module
 */
import type { copy } from '@slipway/oci';
import type { CommandIo } from './command.js';

type CopyEvent = copy.CopyEvent;

export interface ProgressView {
  onProgress(event: CopyEvent): void;
  /** Clears the bars. Idempotent. */
  finish(): void;
}

export interface ProgressOptions {
  quiet?: boolean;
  /** Minimum milliseconds between redraws on a terminal. @defaultValue 100 */
  intervalMs?: number;
}

/**
 * Bars need this many columns: a bar line is at least ~52 characters, and a narrower terminal wraps it
 * onto rows that the redraw (which moves up by lines) does not erase. Below it, plain lines.
 */
const minBarColumns = 60;

export function createProgress(io: CommandIo, options: ProgressOptions = {}): ProgressView {
  if (options.quiet) return { onProgress: () => undefined, finish: () => undefined };
  // A pseudo-terminal whose size was never set (`script` under CI) reports 0 columns: unknown, not narrow.
  const bars = io.stderr.isTTY === true && (io.stderr.columns || 80) >= minBarColumns;
  return bars ? new TerminalProgress(io.stderr, options.intervalMs ?? 100) : new LineProgress(io.stderr);
}

/** `sha256:0123456789ab` — enough to tell blobs apart in a listing. */
export function shortDigest(digest: string): string {
  return digest.slice(0, digest.indexOf(':') + 13);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

class LineProgress implements ProgressView {
  constructor(private readonly out: CommandIo['stderr']) {}

  onProgress(event: CopyEvent): void {
    const line = describe(event);
    if (line) this.out.write(line + '\n');
  }

  finish(): void {}
}

/** `1 manifest`, `2 manifests`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function describe(event: CopyEvent): string | undefined {
  switch (event.type) {
    case 'plan':
      return `to check: ${plural(event.manifests, 'manifest')}, ${plural(event.totals.blobsTotal, 'blob')} (${formatBytes(event.totals.bytesTotal)})`;
    case 'blob-skip':
      return `blob ${shortDigest(event.digest)} exists (${formatBytes(event.size)})`;
    case 'blob-mount':
      return `blob ${shortDigest(event.digest)} mounted from ${event.from} (${formatBytes(event.size)})`;
    case 'blob-done':
      return `blob ${shortDigest(event.digest)} copied (${formatBytes(event.size)})`;
    case 'manifest-done':
      return `manifest ${shortDigest(event.digest)} written${event.tag === undefined ? '' : ` as ${event.tag}`}`;
    default:
      return undefined;
  }
}

interface Active {
  digest: string;
  size: number;
  bytes: number;
}

class TerminalProgress implements ProgressView {
  readonly #active = new Map<string, Active>();
  #totals: CopyEvent['totals'] = { blobsDone: 0, blobsTotal: 0, bytesDone: 0, bytesTotal: 0 };
  #drawn = 0;
  #last = 0;
  #timer: NodeJS.Timeout | undefined;
  #finished = false;

  constructor(
    private readonly out: CommandIo['stderr'],
    private readonly intervalMs: number,
  ) {}

  onProgress(event: CopyEvent): void {
    if (this.#finished) return;
    this.#totals = event.totals;
    if (event.type === 'blob-start') this.#active.set(event.digest, { digest: event.digest, size: event.size, bytes: 0 });
    else if (event.type === 'blob-progress') {
      const active = this.#active.get(event.digest);
      if (active) active.bytes = event.bytes;
    } else if (event.type === 'blob-done' || event.type === 'blob-skip' || event.type === 'blob-mount') this.#active.delete(event.digest);
    this.#schedule();
  }

  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#timer);
    this.#clear();
  }

  #schedule(): void {
    if (this.#timer) return;
    const wait = Math.max(0, this.#last + this.intervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#draw();
    }, wait);
    this.#timer.unref();
  }

  #draw(): void {
    if (this.#finished) return;
    this.#last = Date.now();
    const width = Math.max(minBarColumns, Math.min(this.out.columns || 80, 120)) - 1;
    const lines: string[] = [];
    const shown = [...this.#active.values()].slice(0, 6);
    for (const blob of shown) lines.push(barLine(`${shortDigest(blob.digest)}`, blob.bytes, blob.size, width));
    if (this.#active.size > shown.length) lines.push(`  … ${this.#active.size - shown.length} more`);
    const t = this.#totals;
    lines.push(barLine(`${t.blobsDone}/${t.blobsTotal} blobs`, t.bytesDone, t.bytesTotal, width));
    this.#clear();
    this.out.write(lines.join('\n') + '\n');
    this.#drawn = lines.length;
  }

  /** Moves up over the previous frame and erases it (ANSI CSI: cursor up, erase line). */
  #clear(): void {
    if (this.#drawn === 0) return;
    this.out.write(`\x1b[${this.#drawn}A` + '\x1b[2K\n'.repeat(this.#drawn) + `\x1b[${this.#drawn}A`);
    this.#drawn = 0;
  }
}

function barLine(label: string, done: number, total: number, width: number): string {
  const tail = `${formatBytes(done)} / ${formatBytes(total)}`;
  const barWidth = Math.max(10, width - label.length - tail.length - 8);
  const ratio = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(ratio * barWidth);
  return `${label} [${'='.repeat(filled)}${' '.repeat(barWidth - filled)}] ${tail}`;
}
