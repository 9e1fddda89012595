/**
 * gobgpd sidecars in lab namespaces: API on a Unix socket only (never --api-hosts on all interfaces:
 * the API has no authentication), pprof off, log to <dir>/gobgpd.log. No config file: BGP starts only
 * when a client calls StartBgp, like the agent's sidecar.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { alive, readPid, startDaemon, stopPid, waitUntil } from './daemon.js';
import { createGoBgpRouter } from '../../../operator/gobgp/client.js';

export const GOBGP_ROOT = process.env.PODFABRIC_LAB_GOBGP_DIR ?? '/tmp/pf-lab-gobgp';

export const gobgpDir = (name: string) => join(GOBGP_ROOT, name);
export const gobgpSocket = (name: string) => join(gobgpDir(name), 'gobgp.sock');
export const gobgpTarget = (name: string) => `unix://${gobgpSocket(name)}`;
export const gobgpLog = (name: string) => join(gobgpDir(name), 'gobgpd.log');

/**
 * Starts gobgpd `name` inside namespace `ns` (a previous instance of that name is killed first) and
 * waits until its API answers. Returns the API target (unix://...).
 */
export async function startGobgpd(name: string, ns: string, opts: { logLevel?: string; timeoutMs?: number } = {}): Promise<string> {
  const dir = gobgpDir(name);
  await stopGobgpd(name, 'SIGKILL');
  await mkdir(dir, { recursive: true });
  await rm(gobgpSocket(name), { force: true });
  await startDaemon(
    ['ip', 'netns', 'exec', ns, 'gobgpd', `--api-hosts=${gobgpTarget(name)}`, '--pprof-disable', `--log-level=${opts.logLevel ?? 'info'}`],
    { log: gobgpLog(name), pidFile: join(dir, 'gobgpd.pid') },
  );
  await waitGobgpd(name, opts.timeoutMs);
  return gobgpTarget(name);
}

/** Waits until gobgpd's API answers. */
export async function waitGobgpd(name: string, timeoutMs = 15_000): Promise<void> {
  const r = createGoBgpRouter(gobgpTarget(name));
  try {
    await waitUntil(
      `gobgpd ${name} API`,
      async () => {
        await r.getGlobal();
        return true;
      },
      timeoutMs,
    );
  } finally {
    r.close();
  }
}

/** SIGTERM (default) or SIGKILL; waits until the process is gone. Idempotent. */
export async function stopGobgpd(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await stopPid(join(gobgpDir(name), 'gobgpd.pid'), signal);
}

export const killGobgpd = (name: string) => stopGobgpd(name, 'SIGKILL');

/** Kill (SIGKILL) and start again: the new gobgpd is unconfigured (no BGP, peers or paths). */
export async function restartGobgpd(name: string, ns: string): Promise<string> {
  await killGobgpd(name);
  return startGobgpd(name, ns);
}

export async function gobgpdRunning(name: string): Promise<boolean> {
  return alive(await readPid(join(gobgpDir(name), 'gobgpd.pid')));
}

/** The last `lines` lines of gobgpd's log (for failure messages). */
export async function gobgpdLogTail(name: string, lines = 30): Promise<string> {
  const text = await readFile(gobgpLog(name), 'utf8').catch(() => '');
  return text.split('\n').slice(-lines - 1).join('\n');
}
