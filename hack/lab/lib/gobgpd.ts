/** gobgpd sidecars in lab namespaces: API on a Unix socket only, pprof off. */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { alive, readPid, startDaemon, stopPid, waitUntil } from './daemon.js';
import { createGoBgpRouter } from '../../../operator/agent/gobgp/client.js';

export const GOBGP_ROOT = process.env.PODFABRIC_LAB_GOBGP_DIR ?? '/tmp/pf-lab-gobgp';

export const gobgpDir = (name: string) => join(GOBGP_ROOT, name);
export const gobgpSocket = (name: string) => join(gobgpDir(name), 'gobgp.sock');

export async function startGobgpd(name: string, ns: string): Promise<string> {
  const dir = gobgpDir(name);
  await stopGobgpd(name, 'SIGKILL');
  await mkdir(dir, { recursive: true });
  await rm(gobgpSocket(name), { force: true });
  await startDaemon(['ip', 'netns', 'exec', ns, 'gobgpd', `--api-hosts=unix://${gobgpSocket(name)}`, '--pprof-disable', '--log-level=info'], {
    log: join(dir, 'gobgpd.log'),
    pidFile: join(dir, 'gobgpd.pid'),
  });
  await waitGobgpd(name);
  return `unix://${gobgpSocket(name)}`;
}

/** Waits until gobgpd's API answers. */
export async function waitGobgpd(name: string, timeoutMs = 15_000): Promise<void> {
  const r = createGoBgpRouter(`unix://${gobgpSocket(name)}`);
  try {
    await waitUntil(`gobgpd ${name} API`, async () => {
      await r.getGlobal();
      return true;
    }, timeoutMs);
  } finally {
    r.close();
  }
}

export async function stopGobgpd(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await stopPid(join(gobgpDir(name), 'gobgpd.pid'), signal);
}

export async function gobgpdRunning(name: string): Promise<boolean> {
  return alive(await readPid(join(gobgpDir(name), 'gobgpd.pid')));
}
