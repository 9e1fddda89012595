/**
 * Watches every daemon of a lab run (bench/convergence.ts, bench/pods.ts) through the lab's own pid
 * files: the apiserver, kube-controller-manager, the lab kubelet, the controller supervisors, each node's
 * agent, gobgpd and kube-proxy, each FRR router. A pid
 * file whose process has been dead for GRACE_MS fails the benchmark's current wait with that daemon's
 * log. The grace covers the lab's own stops: they remove the file once the process is gone, but a
 * daemonized process (FRR) killed here stays a zombie until reaped, and the lab's stopPid waits up to
 * 5 s for it before removing the file. Controller
 * replicas themselves are left out: one that loses its lease exits by design and its supervisor starts
 * it again.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FRR_ROOT } from '../hack/lab/lib/frr.js';
import { GOBGP_ROOT, gobgpLog } from '../hack/lab/lib/gobgpd.js';
import { down, kubeProxyLog, kubeProxyPidFile, NS, STATE, up, type LabOptions, type LabState } from '../hack/lab/lab.js';
import { aliveNotZombie, buildHarness, buildOperator, guard, installDeps, type Watched } from './child.js';

interface Daemon {
  name: string;
  pidFile: string;
  log?: string;
}

async function dirs(root: string, prefix: string): Promise<string[]> {
  return existsSync(root) ? (await readdir(root)).filter((d) => d.startsWith(prefix)) : [];
}

async function daemons(): Promise<Daemon[]> {
  const out: Daemon[] = [
    { name: 'kube-apiserver', pidFile: join(STATE, 'apiserver', 'pid'), log: join(STATE, 'apiserver', 'apiserver.log') },
    { name: 'kube-controller-manager', pidFile: join(STATE, 'kcm.pid'), log: join(STATE, 'kcm.log') },
    { name: 'lab kubelet', pidFile: join(STATE, 'kubelet.pid'), log: join(STATE, 'kubelet.log') },
  ];
  for (const f of existsSync(STATE) ? await readdir(STATE) : []) {
    const m = /^(controller-\d+)\.pid$/.exec(f);
    if (m) out.push({ name: `${m[1]} supervisor`, pidFile: join(STATE, f), log: join(STATE, `${m[1]}.log`) });
  }
  for (const n of await dirs(join(STATE, 'nodes'), '')) {
    out.push({ name: `agent ${n}`, pidFile: join(STATE, 'nodes', n, 'agent.pid'), log: join(STATE, 'nodes', n, 'agent.log') });
    out.push({ name: `kube-proxy ${n}`, pidFile: kubeProxyPidFile(n), log: kubeProxyLog(n) });
  }
  for (const g of await dirs(GOBGP_ROOT, NS)) out.push({ name: `gobgpd ${g}`, pidFile: join(GOBGP_ROOT, g, 'gobgpd.pid'), log: gobgpLog(g) });
  for (const f of await dirs(FRR_ROOT, NS)) for (const d of ['zebra', 'bgpd']) out.push({ name: `FRR ${d} ${f}`, pidFile: join(FRR_ROOT, f, `${d}.pid`) });
  return out;
}

async function deadPid(pidFile: string): Promise<number | null> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return (await aliveNotZombie(pid)) ? null : pid;
}

const GRACE_MS = 7000;

export function watchLab(everyMs = 500): Watched {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  /** pid file:pid → when first seen dead. */
  let suspects = new Map<string, number>();
  let failure: Daemon | undefined;
  const tail = async (lines = 30) => (failure?.log ? (await readFile(failure.log, 'utf8').catch(() => '')).trim().split('\n').slice(-lines).join('\n') : '(no log)');
  const exited = new Promise<never>((_, reject) => {
    const poll = async () => {
      if (stopped) return;
      const now = new Map<string, number>();
      for (const d of await daemons()) {
        const pid = await deadPid(d.pidFile);
        if (pid === null) continue;
        const key = `${d.pidFile}:${pid}`;
        const since = suspects.get(key) ?? Date.now();
        if (Date.now() - since >= GRACE_MS) {
          failure = d;
          reject(new Error(`lab daemon ${d.name} (pid ${pid}) exited while the benchmark needed it; its last output${d.log ? ` (${d.log})` : ''}:\n${await tail()}`));
          return;
        }
        now.set(key, since);
      }
      suspects = now;
      timer = setTimeout(() => void poll(), everyMs);
    };
    void poll();
  });
  exited.catch(() => undefined);
  return {
    name: 'lab',
    pid: -1,
    exited,
    tail,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/**
 * Builds what the lab runs (system packages, operator, harness binary), brings a lab up and runs measure on it, failing
 * at once (with the daemon's log) if a lab daemon dies meanwhile; the lab is torn down in every case.
 */
export async function onLab<T>(o: LabOptions, measure: (s: LabState) => Promise<T>): Promise<T> {
  await installDeps();
  await buildOperator();
  await buildHarness();
  await down(); // a previous run's leftovers, before their pid files could look like deaths
  const lab = watchLab();
  try {
    const s = await guard(up(o, { skipBuild: true }), [lab]);
    return await guard(measure(s), [lab]);
  } finally {
    await lab.stop();
    await down();
  }
}
