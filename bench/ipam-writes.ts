/**
 * What one controller write costs the apiserver, by kind of write: N NodeFabrics (default 1,000) with
 * the spec the controller writes for a node (podCIDRs, allocations, nodeIPs, asn, routerId,
 * advertisements, routing: its segment and the name of its L2Segment; the host routes are in the
 * L2Segment, not here, so the spec no longer grows with the segment), 50 in flight, on one fresh
 * apiserver; writes/s and the apiserver's CPU per write (its own utime+stime from /proc) for:
 *   SSA apply create, POST create, SSA apply of an unchanged object, SSA apply of a changed object (the
 *   node moved to another segment),
 *   PUT (with resourceVersion) of a changed object, merge PATCH of a changed object,
 *   and for Nodes: POST create and the merge PATCH of spec.podCIDRs (what KCM writes).
 */
import { segmentObjectName } from '../operator/api/segment.js';
import { startBenchApiserver, type BenchApiserver } from './apiserver.js';
import { cpuSeconds, guard, numberArg } from './child.js';
import { parallel } from './ipam.js';
import { round } from './stats.js';

const API = '/apis/podfabric.io/v1alpha1/nodefabrics';
const MANAGER = 'podfabric-controller';
const IN_FLIGHT = 50;

const ip = (i: number) => `172.16.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const cidr = (i: number) => `10.${Math.floor(i / 256)}.${i % 256}.0/24`;

/** The node's segment: its uplink subnet, or (changed) another one, as when the node moved. */
export function fabricSpec(i: number, changed = false) {
  const segment = changed ? 'subnet:172.17.0.0/16' : 'subnet:172.16.0.0/16';
  return {
    podCIDRs: [cidr(i)],
    allocations: [{ cidr: cidr(i), pool: 'default' }],
    nodeIPs: [ip(i)],
    asn: 64512,
    routerId: ip(i),
    advertisements: [{ prefix: cidr(i), nextHop: ip(i) }],
    routing: { l2Segment: segment, segments: [segmentObjectName(4, segment)] },
  };
}

export const fabric = (name: string, i: number, changed = false) => ({
  apiVersion: 'podfabric.io/v1alpha1',
  kind: 'NodeFabric',
  metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'podfabric' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}` }] },
  spec: fabricSpec(i, changed),
});

interface Row {
  write: string;
  perSecond: number;
  cpuMsPerWrite: number;
}

async function measure(api: BenchApiserver, pid: number, write: string, n: number, fn: (i: number) => Promise<unknown>): Promise<Row> {
  const c0 = await cpuSeconds(pid);
  const t0 = performance.now();
  await guard(parallel(Array.from({ length: n }, (_, i) => i), IN_FLIGHT, fn), [api.watched]);
  const s = (performance.now() - t0) / 1000;
  const cpu = (await cpuSeconds(pid)) - c0;
  const row = { write, perSecond: round(n / s), cpuMsPerWrite: round((cpu * 1000) / n, 2) };
  process.stderr.write(`bench: ipam-writes: ${write}: ${row.perSecond}/s, apiserver ${row.cpuMsPerWrite} ms CPU per write\n`);
  return row;
}

export async function main(args: string[] = []) {
  const N = numberArg(args, 'nodes', 1000);
  const api = await startBenchApiserver('ipam-writes', { crds: true });
  try {
    const pid = api.watched.pid;
    const r = api.rest;
    const name = (p: string, i: number) => `${p}-${String(i).padStart(5, '0')}`;
    const apply = (path: string, body: unknown) => r.apply(path, body, MANAGER);
    const rows: Row[] = [];
    // warm-up: the CRD's first writes build its handlers and watch cache
    await parallel(Array.from({ length: 100 }, (_, i) => i), 10, (i) => apply(`${API}/warm-${i}`, fabric(`warm-${i}`, i)));
    rows.push(await measure(api, pid, 'NodeFabric SSA apply create', N, (i) => apply(`${API}/${name('a', i)}`, fabric(name('a', i), i))));
    rows.push(await measure(api, pid, 'NodeFabric POST create', N, (i) => r.request('POST', API, fabric(name('p', i), i))));
    rows.push(await measure(api, pid, "NodeFabric POST create, the floor's bare object (spec.podCIDRs only)", N, (i) => r.request('POST', API, { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: name('b', i) }, spec: { podCIDRs: [cidr(i)] } })));
    if (process.env.EXPERIMENT) {
      rows.push(await measure(api, pid, 'NodeFabric POST create, managedFields reset', N, (i) => { const o = fabric(name('m', i), i); return r.request('POST', API, { ...o, metadata: { ...o.metadata, managedFields: [{}] } }); }));
      rows.push(await measure(api, pid, 'NodeFabric POST create, no metadata extras', N, (i) => r.request('POST', API, { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: name('x', i) }, spec: fabricSpec(i) })));
    }
    rows.push(await measure(api, pid, 'NodeFabric SSA apply unchanged', N, (i) => apply(`${API}/${name('a', i)}`, fabric(name('a', i), i))));
    rows.push(await measure(api, pid, 'NodeFabric SSA apply changed', N, (i) => apply(`${API}/${name('a', i)}`, fabric(name('a', i), i, true))));
    const rvs = new Map<string, string>();
    const list = await r.get<{ items: Array<{ metadata: { name: string; resourceVersion: string } }> }>(`${API}?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dpodfabric`);
    for (const o of list.items) rvs.set(o.metadata.name, o.metadata.resourceVersion);
    rows.push(await measure(api, pid, 'NodeFabric PUT changed (resourceVersion)', N, (i) => {
      const o = fabric(name('p', i), i, true);
      const put = r.request<{ metadata: { resourceVersion: string } }>('PUT', `${API}/${name('p', i)}`, { ...o, metadata: { ...o.metadata, resourceVersion: rvs.get(name('p', i)) } });
      return put.then((x) => rvs.set(name('p', i), x.metadata.resourceVersion));
    }));
    rows.push(await measure(api, pid, 'NodeFabric PUT unchanged (resourceVersion)', N, (i) => {
      const o = fabric(name('p', i), i, true);
      return r.request('PUT', `${API}/${name('p', i)}`, { ...o, metadata: { ...o.metadata, resourceVersion: rvs.get(name('p', i)) } });
    }));
    rows.push(await measure(api, pid, 'NodeFabric merge PATCH changed spec', N, (i) => r.request('PATCH', `${API}/${name('p', i)}`, { spec: fabricSpec(i) }, 'application/merge-patch+json')));
    rows.push(await measure(api, pid, 'NodeFabric GET', N, (i) => r.get(`${API}/${name('p', i)}`)));
    rows.push(await measure(api, pid, 'Node POST create', N, (i) => r.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: name('n', i) }, status: { addresses: [{ type: 'InternalIP', address: ip(i) }] } })));
    rows.push(await measure(api, pid, 'Node merge PATCH spec.podCIDRs', N, (i) => r.request('PATCH', `/api/v1/nodes/${name('n', i)}`, { spec: { podCIDR: cidr(i), podCIDRs: [cidr(i)] } }, 'application/merge-patch+json')));
    for (const w of rows) console.log(`ipam-writes: ${w.write}: ${w.perSecond}/s, ${w.cpuMsPerWrite} ms apiserver CPU per write`);
    return { bench: 'ipam-writes', nodes: N, inFlight: IN_FLIGHT, writes: rows };
  } finally {
    await api.stop();
  }
}
