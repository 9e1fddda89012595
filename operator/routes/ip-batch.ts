/**
 * The persistent `ip -force -batch -` child that writes routes (see table.ts for the protocol: a marker
 * line after each batch, "Command failed -:N" lines mapped back to routes).
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** Errors of one batch from ip's stderr: each failing line N is reported as "<message>\nCommand failed -:N". */
export function parseBatchErrors(stderr: string): Map<number, string> {
  const out = new Map<number, string>();
  let msg: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)/.exec(line);
    if (m) {
      out.set(Number(m[1]), msg.join(' ').trim() || 'failed');
      msg = [];
    } else if (line.trim()) msg.push(line.trim());
  }
  return out;
}

// The persistent ip -batch child

export type BatchOutcome = { done: true; errors: Map<number, string> } | { done: false; reason: string; errors: Map<number, string> };

const MARKER = 'podfabric-batch-marker';

interface Child {
  proc: ChildProcess;
  /** Lines written to this child so far: ip numbers lines per process, from 1. */
  fed: number;
  stderr: string;
}

interface Waiter {
  child: Child;
  base: number;
  marker: number;
  resolve: (o: BatchOutcome) => void;
  timer: NodeJS.Timeout;
}

/** One `ip -force -batch -` child at a time; runs one batch at a time (callers serialise). */
export class IpBatch {
  private child: Child | undefined;
  private waiter: Waiter | undefined;
  private closed = false;
  spawns = 0;

  constructor(private readonly args: string[]) {}

  get pid(): number | undefined {
    return this.child?.proc.pid;
  }

  private spawnChild(): Child {
    const proc = spawn('ip', this.args, { stdio: ['pipe', 'ignore', 'pipe'] });
    const c: Child = { proc, fed: 0, stderr: '' };
    this.spawns++;
    this.child = c;
    proc.stdin!.on('error', () => undefined); // EPIPE when it died: reported by 'close'
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      c.stderr += d;
      const w = this.waiter;
      if (!w || w.child !== c) return;
      const end = c.stderr.indexOf(`Command failed -:${w.marker}\n`);
      if (end < 0) return;
      const text = c.stderr.slice(0, end);
      c.stderr = c.stderr.slice(end).replace(/^[^\n]*\n/, '');
      this.settle(w, { done: true, errors: relativeErrors(text, w.base, w.marker) });
    });
    let gone = false;
    const onGone = (why: string) => {
      if (gone) return;
      gone = true;
      if (this.child === c) this.child = undefined;
      const w = this.waiter;
      if (!w || w.child !== c) return;
      const tail = c.stderr.trim().split('\n').slice(-3).join(' | ');
      this.settle(w, { done: false, reason: `${why}${tail ? `: ${tail}` : ''}`, errors: relativeErrors(c.stderr, w.base, w.marker) });
    };
    proc.on('error', (e) => onGone(`ip -batch could not run: ${e.message}`));
    proc.on('close', (code, signal) => onGone(`ip -batch exited (${signal ?? `code ${code}`})`));
    return c;
  }

  private settle(w: Waiter, o: BatchOutcome): void {
    if (this.waiter !== w) return;
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.resolve(o);
  }

  run(lines: string[], timeoutMs: number): Promise<BatchOutcome> {
    if (this.waiter) throw new Error('IpBatch.run: a batch is already running');
    if (this.closed) return Promise.resolve({ done: false, reason: 'route table closed', errors: new Map() });
    const alive = this.child && this.child.proc.exitCode === null && this.child.proc.signalCode === null;
    const c = alive ? this.child! : this.spawnChild();
    return new Promise<BatchOutcome>((resolve) => {
      const base = c.fed;
      const marker = base + lines.length + 1;
      c.fed = marker;
      const timer = setTimeout(() => {
        c.stderr += `\ntimed out after ${timeoutMs} ms`;
        c.proc.kill('SIGKILL'); // its 'close' reports the batch as not done
      }, timeoutMs);
      this.waiter = { child: c, base, marker, resolve, timer };
      c.proc.stdin!.write(lines.length ? `${lines.join('\n')}\n${MARKER}\n` : `${MARKER}\n`);
    });
  }

  /** ip exits at EOF, after finishing what it was given (a batch in flight still completes). */
  close(): void {
    this.closed = true;
    this.child?.proc.stdin?.end();
  }
}

/** Errors keyed by index into the batch (0-based), leaving out the marker. */
function relativeErrors(text: string, base: number, marker: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const [n, msg] of parseBatchErrors(text)) if (n > base && n < marker) out.set(n - base - 1, msg);
  return out;
}
