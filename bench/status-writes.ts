/**
 * What one agent status write costs the apiserver (#15): T NodeFabrics (default 300) created by the
 * controller's server-side apply (bench/ipam-writes.ts's object: the spec as the controller writes it
 * now, which names the node's L2Segment instead of listing its host routes, so its size no longer
 * depends on the segment's), then one status write per object per cell, 50 in flight, on one fresh
 * apiserver; the status reports against a plan of RACK_ROUTES host routes (a 40-node rack's segment),
 * all installed (the status counts routes and lists only differences, so the plan's size barely moves
 * it; the earlier K = 0 / 40 cells are gone). The apiserver's CPU per write (its own utime+stime from
 * /proc), minus what it burns idle over the same time with the same watches open, for:
 *   the agent's write: StatusWriter.write under the agent's field manager (server-side apply of the
 *     status subresource), the body built by the agent's own buildReport / agentConditions / mergeConditions;
 *   JSON merge PATCH of /status with the same body (replaces the conditions list: clobbers the controller's);
 *   PUT of /status with the object's resourceVersion (from the previous write's answer, as an informer has it);
 * with W = 0, 1000, 5000 other watches open on nodefabrics, each with `fieldSelector=metadata.name=<other>`
 * (what every agent holds on its own NodeFabric), opened over HTTP/2 by the project's client, 10 per
 * client connection as an agent holds them. Every write changes the status (a session comes or goes).
 */
import { buildReport } from '../operator/agent/report.js';
import { AGENT_FIELD_MANAGER } from '../operator/agent/agent.js';
import { agentConditions, type ObservedSession } from '../operator/agent/status.js';
import { API_PATH } from '../operator/api/common.js';
import { NodeFabric, type NodeFabricObj } from '../operator/api/kinds.js';
import type { NodeFabricSpec } from '../operator/api/nodefabric.js';
import type { DirectRoute } from '../operator/plan/segment.js';
import { KubeRest, loadKubeConfig } from '../operator/kube/rest.js';
import { mergeConditions, StatusWriter, type WithStatus } from '../operator/kube/status.js';
import { waitUntil } from '../hack/lab/lib/daemon.js';
import { apiserverGet, startBenchApiserver, type BenchApiserver } from './apiserver.js';
import { cpuSeconds, guard, numberArg } from './child.js';
import { parallel } from './ipam.js';
import { fabric } from './ipam-writes.js';
import { percentile, round } from './stats.js';

const API = `${API_PATH}/nodefabrics`;
const CONTROLLER = 'podfabric-controller';
const IN_FLIGHT = 50;
const WATCHES_PER_CLIENT = 10;
const IDLE_MS = 5_000;
const REPEATS = 3;
/** The host routes the agent's status reports against: a 40-node rack's segment, every other member's pod CIDR. */
export const RACK_ROUTES = 39;

const rack: DirectRoute[] = Array.from({ length: RACK_ROUTES }, (_, k) => ({ destination: `10.200.${k}.0/24`, via: `172.16.250.${k + 1}`, node: `rack-${k}` }));

interface Sample {
  ms: number;
  perSecond: number;
  cpuMs: number;
  netCpuMs: number;
  bytes: number;
}

const median = (xs: number[]) => percentile(xs, 50);

type Obj = NodeFabricObj & WithStatus & { metadata: { name: string; resourceVersion?: string } };

/** The status the agent writes in round r: 2 sessions on even rounds (both up), 1 on odd ones; the rack's routes installed. */
export function agentStatus(obj: WithStatus & { spec: NodeFabricSpec }, r: number, now: Date, planned: DirectRoute[] = rack): Record<string, unknown> {
  const spec = obj.spec;
  const generation = typeof obj.metadata.generation === 'number' ? obj.metadata.generation : 1;
  const router = spec.routerId ?? '172.16.0.1';
  const addrs = r % 2 === 0 ? ['172.16.255.1', '172.16.255.2'] : ['172.16.255.1'];
  const observed: ObservedSession[] = addrs.map((address, k) => ({ address, name: `tor-${k}`, state: 'Established', passwordSet: false, connectRetry: 5 }));
  const live = addrs.map((address) => ({ address, state: 'Established' as const, establishedAt: now, prefixesSent: 1, prefixesReceived: 5000 + r }));
  const installed = planned.map((d) => ({ dst: d.destination, via: d.via, dev: 'eth0' }));
  const uplinks = new Map([[4 as const, { dev: 'eth0', address: router, subnet: '172.16.0.0/16' }]]);
  const status = buildReport({ generation, spec, planned, uplinks, observed, live, installed, cni: { written: true, path: '/etc/cni/net.d/10-podfabric.conflist' } });
  const conds = agentConditions({ planned: true, peersPlanned: addrs.length, sessions: observed, routesWanted: installed.length, routesMissing: [], routeErrors: [], uplinkFound: true, cni: { written: true } });
  const { next } = mergeConditions(obj, conds, generation, now);
  return { ...status, conditions: next, lastSyncTime: now.toISOString().replace(/\.\d{3}Z$/, 'Z') };
}

interface Row {
  write: string;
  watches: number;
  perSecond: number;
  cpuMsPerWrite: number;
  /** cpuMsPerWrite minus the apiserver's idle CPU (with these watches open) over the same time. */
  netCpuMsPerWrite: number;
  /** The lowest and highest of the repeats (the other figures are their medians). */
  netCpuMsRange: [number, number];
  medianObjectBytes: number;
}

/** The apiserver's CPU ms per ms over IDLE_MS with nothing sent. */
async function idleCpuPerMs(pid: number): Promise<number> {
  const c0 = await cpuSeconds(pid);
  const t0 = performance.now();
  await new Promise((res) => setTimeout(res, IDLE_MS));
  return ((await cpuSeconds(pid)) - c0) * 1000 / (performance.now() - t0);
}

/** Watches on nodefabrics registered at the apiserver (apiserver_longrunning_requests). */
async function openWatches(kubeconfig: string): Promise<number> {
  const text = (await apiserverGet(kubeconfig, '/metrics', 60_000)).toString('utf8');
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith('apiserver_longrunning_requests{') && line.includes('resource="nodefabrics"') && line.includes('verb="WATCH"')) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  return n;
}

/** W watches, each on one other (absent) NodeFabric by name, over HTTP/2, WATCHES_PER_CLIENT per connection. */
class Watchers {
  private readonly clients: KubeRest[] = [];
  private readonly stops: Array<() => void> = [];
  count = 0;
  constructor(private readonly api: BenchApiserver) {}

  async grow(to: number, rv: string): Promise<void> {
    const kc = loadKubeConfig(this.api.kubeconfig);
    const from = this.count;
    for (let i = from; i < to; i++) {
      if (i % WATCHES_PER_CLIENT === 0) this.clients.push(new KubeRest(kc, { qps: 100_000, burst: 100_000, userAgent: 'podfabric-bench-agent', http2: true }));
      const sel = encodeURIComponent(`metadata.name=w-${String(i).padStart(5, '0')}`);
      const w = this.clients.at(-1)!.watch(`${API}?fieldSelector=${sel}&watch=true&allowWatchBookmarks=true&resourceVersion=${rv}`, () => {});
      w.done.catch(() => {});
      this.stops.push(() => w.stop());
    }
    this.count = to;
    await waitUntil(`${to} nodefabrics watches open`, async () => (await openWatches(this.api.kubeconfig)) >= to || undefined, 120_000, 500);
  }

  close(): void {
    for (const s of this.stops) s();
    for (const c of this.clients) c.close();
  }
}

const CRD = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/nodefabrics.podfabric.io';

/** Deletes every x-kubernetes-validations under a schema node. */
function stripCel(node: unknown): void {
  if (!node || typeof node !== 'object') return;
  const o = node as Record<string, unknown>;
  delete o['x-kubernetes-validations'];
  for (const v of Object.values(o)) stripCel(v);
}

/**
 * --no-spec-cel (an experiment, not a proposal): the NodeFabric CRD without the CEL rules of its spec,
 * to see what they cost a status write; waits until a route with host bits set is accepted (dry run).
 */
async function withoutSpecCel(r: KubeRest): Promise<void> {
  const crd = await r.get<{ spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: { spec: unknown } } } }> } }>(CRD);
  for (const v of crd.spec.versions) stripCel(v.schema.openAPIV3Schema.properties.spec);
  await r.request('PUT', CRD, crd);
  const bad = fabric('cel-probe', 1);
  bad.spec.podCIDRs[0] = '10.200.0.1/24';
  await waitUntil('NodeFabric CRD without spec CEL in effect', () => r.request('POST', `${API}?dryRun=All`, bad), 60_000, 250);
}

export async function main(args: string[] = []) {
  const T = numberArg(args, 'objects', 300);
  const noCel = args.includes('--no-spec-cel');
  const levels = [0, 1000, numberArg(args, 'watches', 5000)];
  const api = await startBenchApiserver('status-writes', { crds: true });
  const watchers = new Watchers(api);
  try {
    const pid = api.watched.pid;
    const r = api.rest;
    const agent = new StatusWriter(r, AGENT_FIELD_MANAGER);
    if (noCel) await withoutSpecCel(r);
    const cache = new Map<string, Obj>();
    const names = Array.from({ length: T }, (_, i) => `t-${String(i).padStart(5, '0')}`);
    let round_ = 0;
    await parallel(names, 10, async (n) => {
      const i = Number(n.slice(n.indexOf('-') + 1));
      cache.set(n, await r.apply<Obj>(`${API}/${n}`, fabric(n, i), CONTROLLER));
    });
    // the first status (a fresh object has none), so every measured write is an update of one
    await parallel(names, 10, async (n) => { await agent.write(NodeFabric, n, agentStatus(cache.get(n)!, round_, new Date())); cache.set(n, await r.get<Obj>(`${API}/${n}`)); });
    const writes: Record<string, (n: string) => Promise<Obj>> = {
      'agent SSA apply of /status': async (n) => {
        await agent.write(NodeFabric, n, agentStatus(cache.get(n)!, round_, new Date()));
        return cache.get(n)!; // StatusWriter.write returns nothing; the merge PATCH after it refreshes the cache
      },
      'merge PATCH of /status': (n) => r.request<Obj>('PATCH', `${API}/${n}/status`, { status: agentStatus(cache.get(n)!, round_, new Date()) }, 'application/merge-patch+json'),
      'PUT of /status (resourceVersion)': (n) => {
        const o = cache.get(n)!;
        return r.request<Obj>('PUT', `${API}/${n}/status`, { ...o, status: agentStatus(o, round_, new Date()) });
      },
    };
    const samples = new Map<string, Sample[]>();
    const idle: Array<{ watches: number; idleCpuMsPerSecond: number; idleBeforeCpuMsPerSecond: number; idleAfterCpuMsPerSecond: number }> = [];
    for (const W of levels) {
      const list = await r.get<{ metadata: { resourceVersion: string } }>(`${API}?limit=1`);
      if (W > watchers.count) await watchers.grow(W, list.metadata.resourceVersion);
      // idle before the cells (right after the watches opened) and after them; the lower one is subtracted
      const idleBefore = await idleCpuPerMs(pid);
      // the cells interleaved, REPEATS times: a slow moment of the machine spreads over all of them
      for (let rep = 0; rep < REPEATS; rep++) {
        for (const [write, fn] of Object.entries(writes)) {
          round_++;
          const c1 = await cpuSeconds(pid);
          const t0 = performance.now();
          await guard(parallel(names, IN_FLIGHT, async (n) => cache.set(n, await fn(n))), [api.watched]);
          const ms = performance.now() - t0;
          const cpu = (await cpuSeconds(pid)) - c1;
          const key = `${W}|${write}`;
          samples.set(key, [...(samples.get(key) ?? []), { ms, perSecond: T / (ms / 1000), cpuMs: (cpu * 1000) / T, netCpuMs: 0, bytes: median(names.map((n) => JSON.stringify(cache.get(n)).length)) }]);
          process.stderr.write(`bench: status-writes: W=${W} ${write} (${rep + 1}/${REPEATS}): apiserver ${round((cpu * 1000) / T, 2)} ms CPU per write\n`);
        }
      }
      const idleAfter = await idleCpuPerMs(pid);
      const idlePerMs = Math.min(idleBefore, idleAfter);
      idle.push({ watches: W, idleCpuMsPerSecond: round(idlePerMs * 1000, 1), idleBeforeCpuMsPerSecond: round(idleBefore * 1000, 1), idleAfterCpuMsPerSecond: round(idleAfter * 1000, 1) });
      for (const [key, xs] of samples) if (key.startsWith(`${W}|`)) for (const x of xs) x.netCpuMs = x.cpuMs - (idlePerMs * x.ms) / T;
    }
    const rows: Row[] = [...samples].map(([key, xs]) => {
      const [W, write] = key.split('|') as [string, string];
      const net = xs.map((x) => x.netCpuMs);
      return {
        write,
        watches: Number(W),
        perSecond: round(median(xs.map((x) => x.perSecond))),
        cpuMsPerWrite: round(median(xs.map((x) => x.cpuMs)), 2),
        netCpuMsPerWrite: round(median(net), 2),
        netCpuMsRange: [round(Math.min(...net), 2), round(Math.max(...net), 2)],
        medianObjectBytes: median(xs.map((x) => x.bytes)),
      };
    });
    for (const i of idle) console.log(`status-writes: idle with ${i.watches} watches: ${i.idleBeforeCpuMsPerSecond} ms apiserver CPU per second before the writes, ${i.idleAfterCpuMsPerSecond} after (the lower is subtracted)`);
    for (const w of rows) console.log(`status-writes: W=${w.watches} ${w.write}: ${w.perSecond}/s, ${w.cpuMsPerWrite} ms apiserver CPU per write, ${w.netCpuMsPerWrite} net of idle (${w.netCpuMsRange.join('–')}; object ${w.medianObjectBytes} B)`);
    return { bench: 'status-writes', objects: T, plannedRoutes: RACK_ROUTES, repeats: REPEATS, specCel: !noCel, inFlight: IN_FLIGHT, watchesPerClient: WATCHES_PER_CLIENT, idle, writes: rows };
  } finally {
    watchers.close();
    await api.stop();
  }
}

