/**
 * One long-lived `nft -i` process, fed one transaction per line (I/O). Starting `nft` for every
 * change costs a process start (plus `ip netns exec` in the lab) and a cold cache; a session pays
 * that once. Protocol, as Debian bookworm's nft 1.0.6 behaves (libedit, stdin a pipe): every input
 * line is parsed and committed as ONE batch (`nft_run_cmd_from_buffer`, atomic like `nft -f`);
 * success prints nothing; an error prints to stderr (merged into stdout here) and the line changes
 * nothing. After each transaction the session sends `describe meta mark`, a command that touches no
 * kernel state and prints one fixed line: everything printed before that line is the transaction's
 * error text. The process is replaced after a failure it cannot explain (exit, timeout) and every
 * RECYCLE_AFTER transactions (libedit keeps every line in its history).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

const MARKER_CMD = 'describe meta mark';
const MARKER = 'meta expression, datatype mark (packet mark) (basetype integer), 32 bits\n';
const RECYCLE_AFTER = 1000;
/** Longer scripts (a whole table) go to a fresh `nft -f -` instead of one huge line. */
export const SESSION_MAX_BYTES = 256 * 1024;

/**
 * Joins a `nft -f` script into one line, i.e. one transaction (newline and `;` both end a command).
 * Comment lines are dropped: on one line a `#` would swallow every command after it.
 */
export function oneLine(script: string): string {
  return script
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .join(' ; ');
}

interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class NftSession {
  private child: ChildProcessWithoutNullStreams | undefined;
  private out = '';
  private pending: Pending | undefined;
  private used = 0;
  private queue: Promise<void> = Promise.resolve();
  /** Processes started so far (a test and the bench read it). */
  starts = 0;
  /**
   * False once a transaction got no marker in time: an nft whose `describe` prints differently from
   * 1.0.6's would time out every time, so the runner stops using the session (fresh `nft -f -` instead).
   */
  usable = true;

  constructor(
    /** The command before `nft -i`, e.g. ['ip', 'netns', 'exec', 'ns1'] (empty: this namespace). */
    private readonly prefix: string[],
    private readonly timeoutMs = 60_000,
  ) {}

  /** Applies one script as one transaction; rejects with nft's error text (nothing changed then). */
  apply(script: string): Promise<void> {
    const line = oneLine(script);
    const next = this.queue.then(() => this.exchange(line));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Ends the process (it also ends by itself when this process dies: its stdin closes). */
  close(): void {
    const c = this.child;
    this.child = undefined;
    if (!c) return;
    c.stdin.end();
    c.kill('SIGTERM');
  }

  private exchange(line: string): Promise<void> {
    if (!line) return Promise.resolve();
    if (this.used >= RECYCLE_AFTER) this.close();
    const c = this.child ?? this.start();
    this.used++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.usable = false;
        this.fail(new Error(`nft -i: no answer within ${this.timeoutMs} ms; applying with nft -f from now on`));
      }, this.timeoutMs);
      this.pending = { resolve, reject, timer };
      c.ref();
      c.stdin.write(`${line}\n${MARKER_CMD}\n`);
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    // stderr into stdout (one ordered stream), so an error is read before the marker that follows it.
    // HOME=/dev/null: libedit's history file can never be written.
    const cmd = [...this.prefix, 'nft', '-i'];
    const c = spawn('sh', ['-c', 'exec "$@" 2>&1', 'sh', ...cmd], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, HOME: '/dev/null' } });
    this.child = c;
    this.used = 0;
    this.out = '';
    this.starts++;
    // Output of a process this session has already replaced is ignored.
    c.stdout.setEncoding('utf8').on('data', (d: string) => this.child === c && this.onData(d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => this.child === c && this.onData(d));
    c.stdin.on('error', () => undefined);
    c.on('error', (e) => this.childGone(c, e.message));
    c.on('exit', (code, signal) => this.childGone(c, `nft -i exited (${signal ?? code})`));
    this.idle(c);
    return c;
  }

  private onData(d: string): void {
    this.out += d;
    const i = this.out.indexOf(MARKER);
    if (i < 0 || !this.pending) return;
    const text = this.out.slice(0, i).trim();
    this.out = this.out.slice(i + MARKER.length);
    const p = this.pending;
    this.pending = undefined;
    clearTimeout(p.timer);
    if (this.child) this.idle(this.child);
    if (text) p.reject(new Error(`nft: ${text}`));
    else p.resolve();
  }

  /** An idle session never keeps this process alive. */
  private idle(c: ChildProcessWithoutNullStreams): void {
    c.unref();
    for (const s of [c.stdin, c.stdout, c.stderr] as Array<{ unref?: () => void }>) s.unref?.();
  }

  private childGone(c: ChildProcessWithoutNullStreams, why: string): void {
    if (this.child !== c) return; // closed or replaced on purpose
    this.child = undefined;
    this.fail(new Error(`${why}${this.out.trim() ? `: ${this.out.trim()}` : ''}`));
  }

  private fail(e: Error): void {
    const p = this.pending;
    this.pending = undefined;
    if (this.child) {
      // A timed-out process is in an unknown state: replace it.
      const c = this.child;
      this.child = undefined;
      c.kill('SIGKILL');
    }
    if (!p) return;
    clearTimeout(p.timer);
    p.reject(e);
  }
}
