/** `lab status`: nodes as their NodeFabrics say, routers as FRR says, pods, and a ping matrix between every pod. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { API_PATH as API } from '../../operator/api/common.js';
import type { NodeFabricObj } from '../../operator/api/kinds.js';
import { table } from '../../operator/cli/table.js';
import { alive, readPid } from './lib/daemon.js';
import { bgpNeighbors, vtyshJson } from './lib/frr.js';
import { ping } from './lib/netns.js';
import { labRest, NS, STATE, type LabPod, type LabState } from './topology.js';

export interface StatusReport {
  nodes: Array<{ name: string; cidrs: string; sessions: string; routes: number; ready: string; reason: string }>;
  tors: Array<{ name: string; sessions: string; prefixes: number }>;
  pods: LabPod[];
  matrix: Array<{ from: string; to: string; ip: string; ok: boolean }>;
}

export async function status(s: LabState, opts: { pings?: boolean } = {}): Promise<StatusReport> {
  const rest = labRest(s);
  const nodes: StatusReport['nodes'] = [];
  try {
    for (const n of s.nodes) {
      const nf = await rest.get<NodeFabricObj>(`${API}/nodefabrics/${n.name}`).catch(() => null);
      const ready = (nf?.status?.conditions ?? []).find((c) => c.type === 'Ready');
      nodes.push({
        name: n.name,
        cidrs: (nf?.spec.podCIDRs ?? []).join(',') || '-',
        sessions: `${nf?.status?.sessionsEstablished ?? 0}/${nf?.status?.sessionsTotal ?? 0}`,
        routes: nf?.status?.routesInstalled ?? 0,
        ready: ready?.status ?? 'Unknown',
        reason: ready?.status === 'True' ? '' : (ready?.message ?? 'no status yet').slice(0, 80),
      });
    }
  } finally {
    rest.close();
  }
  const tors: StatusReport['tors'] = [];
  for (let r = 1; r <= s.opts.racks; r++) tors.push(await routerSummary(`${NS}tor${r}`));
  tors.push(await routerSummary(`${NS}spine`));
  const matrix: StatusReport['matrix'] = [];
  if (opts.pings ?? true) {
    const jobs: Array<Promise<void>> = [];
    for (const a of s.pods) {
      for (const b of s.pods) {
        if (a === b) continue;
        // Every address of the target: both families on a dual-stack lab.
        for (const ip of b.ips) jobs.push(ping(a.ns, ip, { timeoutS: 1 }).then((ok) => void matrix.push({ from: `${a.node}/${a.name}`, to: `${b.node}/${b.name}`, ip, ok })));
      }
    }
    await Promise.all(jobs);
  }
  return { nodes, tors, pods: s.pods, matrix };
}

async function routerSummary(name: string): Promise<StatusReport['tors'][number]> {
  try {
    const nb = await bgpNeighbors(name);
    const up = [...nb.values()].filter((p) => p.state === 'Established').length;
    const routes4 = await vtyshJson<Record<string, unknown>>(name, 'show ip route bgp json');
    const routes6 = await vtyshJson<Record<string, unknown>>(name, 'show ipv6 route bgp json').catch(() => ({}));
    return { name: name.replace(NS, ''), sessions: `${up}/${nb.size}`, prefixes: Object.keys(routes4).length + Object.keys(routes6).length };
  } catch {
    return { name: name.replace(NS, ''), sessions: 'down', prefixes: 0 };
  }
}

export function renderStatus(r: StatusReport): string {
  const out: string[] = [];
  out.push('NODES', table([['NODE', 'POD CIDRS', 'SESSIONS', 'ROUTES', 'READY', 'WHY NOT'], ...r.nodes.map((n) => [n.name, n.cidrs, n.sessions, String(n.routes), n.ready, n.reason])]));
  out.push('', 'ROUTERS', table([['ROUTER', 'SESSIONS', 'BGP PREFIXES IN FIB'], ...r.tors.map((t) => [t.name, t.sessions, String(t.prefixes)])]));
  if (r.pods.length) out.push('', 'PODS', table([['POD', 'NAMESPACE', 'NODE', 'IPS'], ...r.pods.map((p) => [p.name, p.namespace ?? 'default', p.node, p.ips.join(',')])]));
  if (r.matrix.length) {
    const names = r.pods.map((p) => `${p.node}/${p.name}`);
    const ok = (a: string, b: string) => {
      if (a === b) return '·';
      const pings = r.matrix.filter((m) => m.from === a && m.to === b);
      return pings.length && pings.every((m) => m.ok) ? '✓' : '✗';
    };
    out.push('', 'PING MATRIX (row pings column)', table([['', ...names.map((_, i) => String(i + 1))], ...names.map((a, i) => [`${i + 1} ${a}`, ...names.map((b) => ok(a, b))])]));
    const bad = r.matrix.filter((m) => !m.ok).length;
    out.push('', bad ? `${bad} of ${r.matrix.length} pings FAILED` : `all ${r.matrix.length} pod-to-pod pings OK`);
  }
  return out.join('\n');
}

/** The running controller replicas and their lease identities (read from their logs). */
export async function controllerPids(): Promise<Array<{ id: string; pid: number | null; alive: boolean }>> {
  const out = [];
  for (let i = 1; i <= 3; i++) {
    const pid = await readPid(join(STATE, `controller-${i}.child.pid`));
    if (!pid) continue;
    const logText = await readFile(join(STATE, `controller-${i}.log`), 'utf8').catch(() => '');
    const ids = [...logText.matchAll(/"identity":"([^"]+)"/g)].map((m) => m[1]!);
    out.push({ id: ids.at(-1) ?? '', pid, alive: alive(pid) });
  }
  return out;
}
