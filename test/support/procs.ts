/** podfabric processes (built CLI) for integration tests; each logs JSON to a file and reports its metrics port. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { kubeconfigPath } from './kube.js';

const root = join(import.meta.dirname, '..', '..');

export interface Proc {
  child: ChildProcess;
  port: Promise<number>;
  log: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function startPodfabric(args: string[], logFile: string): Proc {
  const child = spawn(process.execPath, [join(root, 'bin/podfabric.js'), ...args, `--kubeconfig=${kubeconfigPath()}`, '--metrics-addr=127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PODFABRIC_LOG_LEVEL: 'info' },
  });
  const out = createWriteStream(logFile, { flags: 'a' });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const port = new Promise<number>((resolve) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const m = /"port":(\d+)[^\n]*listening/.exec(buf);
      if (m) {
        resolve(Number(m[1]));
        child.stdout!.off('data', onData);
      }
      if (buf.length > 100_000) buf = buf.slice(-10_000);
    };
    child.stdout!.on('data', onData);
  });
  return {
    child,
    port,
    log: logFile,
    kill: (signal = 'SIGTERM') =>
      new Promise<void>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) return r();
        child.once('exit', () => r());
        child.kill(signal);
      }),
  };
}

export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, body: await r.text() };
}
