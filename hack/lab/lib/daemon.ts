/** Background processes that outlive the command that started them, tracked by pid files. */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';

export async function startDaemon(cmd: string[], opts: { log: string; pidFile: string; env?: NodeJS.ProcessEnv; cwd?: string }): Promise<number> {
  const out = openSync(opts.log, 'a');
  const child = spawn(cmd[0]!, cmd.slice(1), { detached: true, stdio: ['ignore', out, out], env: opts.env ?? process.env, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  child.unref();
  const { writeFile } = await import('node:fs/promises');
  await writeFile(opts.pidFile, String(child.pid));
  return child.pid!;
}

export async function readPid(pidFile: string): Promise<number | null> {
  try {
    const n = Number((await readFile(pidFile, 'utf8')).trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

export function alive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Signal the process in pidFile and wait until it is gone (SIGKILL after timeoutMs). */
export async function stopPid(pidFile: string, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<void> {
  const pid = await readPid(pidFile);
  if (pid && alive(pid)) {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
    const end = Date.now() + timeoutMs;
    while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    if (alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  await rm(pidFile, { force: true });
}

/** Polls fn until it returns something truthy; the timeout error names what it waited for and the last error seen. */
export async function waitUntil<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Pids of processes (other than this one) with an argument containing `needle`: finds lab daemons whose
 * pid files are gone (a run killed mid-way, or its state directory removed by another run).
 */
export async function pidsWithArg(needle: string): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const out: number[] = [];
  for (const d of await readdir('/proc')) {
    const pid = Number(d);
    if (!Number.isInteger(pid) || pid === process.pid || pid === process.ppid) continue;
    const cmd = await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '');
    if (cmd.split('\0').some((a) => a.includes(needle))) out.push(pid);
  }
  return out;
}

/** SIGTERM, then SIGKILL after timeoutMs, to each pid; returns once all are gone. */
export async function stopPids(pids: number[], timeoutMs = 3000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => pids.filter(alive).forEach((p) => {
    try {
      process.kill(p, sig);
    } catch {
      /* gone */
    }
  });
  signal('SIGTERM');
  const end = Date.now() + timeoutMs;
  while (pids.some(alive) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  signal('SIGKILL');
}
