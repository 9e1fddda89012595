import { spawn, type ChildProcess } from 'node:child_process';

/**
 * A persistent `ip -j -batch -` child (no -force) for reads: each `route show` prints exactly one line
 * of JSON, so one query at a time maps one-to-one onto stdout lines — about 0.1 ms a query instead of
 * a process spawn (4 ms idle, tens of ms on a loaded node). A failing command makes ip exit: that
 * query is rejected and the next one starts a new child.
 */
export class IpReader {
  private proc: ChildProcess | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  spawns = 0;

  constructor(private readonly args: string[]) {}

  query(command: string, timeoutMs = 10_000): Promise<string> {
    const p = this.chain.then(() => this.once(command, timeoutMs));
    this.chain = p.catch(() => undefined);
    return p;
  }

  private once(command: string, timeoutMs: number): Promise<string> {
    if (this.closed) return Promise.reject(new Error('ip reader closed'));
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) {
      this.proc = spawn('ip', this.args, { stdio: ['pipe', 'pipe', 'pipe'] });
      this.proc.stdin!.on('error', () => undefined); // EPIPE after it died: reported by 'close'
      this.spawns++;
    }
    const proc = this.proc;
    return new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      const done = (e?: Error, line?: string) => {
        clearTimeout(timer);
        proc.stdout!.off('data', onOut);
        proc.stderr!.off('data', onErr);
        proc.off('close', onClose);
        if (e) reject(e);
        else resolve(line!);
      };
      const onOut = (d: Buffer) => {
        out += d.toString();
        const i = out.indexOf('\n');
        if (i >= 0) done(undefined, out.slice(0, i));
      };
      const onErr = (d: Buffer) => (err += d.toString());
      const onClose = (code: number | null, signal: string | null) => {
        if (this.proc === proc) this.proc = undefined;
        done(new Error(`ip ${command}: ${err.trim() || `exited (${signal ?? `code ${code}`})`}`));
      };
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        done(new Error(`ip ${command}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      proc.stdout!.on('data', onOut);
      proc.stderr!.on('data', onErr);
      proc.on('close', onClose);
      proc.stdin!.write(`${command}\n`);
    });
  }

  close(): void {
    this.closed = true;
    this.proc?.stdin?.end();
  }
}
