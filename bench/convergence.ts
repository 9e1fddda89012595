/**
 * On the lab: a Node object created → its pod CIDR in the ToR's kernel FIB, and → host routes to it on
 * its rack neighbours (p50/p99 over N additions; each node's machine — namespace, gobgpd, agent, ToR
 * neighbour — is up before its Node object is created, as when kubelet registers a booted server).
 * Floor in the same run: GoBGP AddPath on a node with an established session → prefix in the ToR FIB.
 * And: ToR (FRR) restart → every session re-established and every route back.
 */
import { spawn } from 'node:child_process';
import type { NodeFabricObj } from '../operator/api/kinds.js';
import { createGoBgpRouter } from '../operator/gobgp/client.js';
import { bgpNeighbors, restartFrr, stopFrr } from '../hack/lab/lib/frr.js';
import { gobgpSocket } from '../hack/lab/lib/gobgpd.js';
import { routesByProto } from '../hack/lab/lib/netns.js';
import { waitUntil } from '../hack/lab/lib/daemon.js';
import { labNode, labRest, nodeObject, removeNode, type LabState } from '../hack/lab/lab.js';
import { agentLogTime, bootMachine } from './machine.js';
import { onLab } from './lab-watch.js';
import { percentile, round } from './stats.js';

const N = Number(process.env.BENCH_ADDITIONS ?? 50);

/** First time each route line was seen by `ip monitor route` in a namespace. */
function monitor(ns: string) {
  const seen = new Map<string, number>();
  const p = spawn('ip', ['-n', ns, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let buf = '';
  p.stdout.on('data', (d: Buffer) => {
    const now = performance.now();
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('Deleted')) continue;
      const dst = line.split(' ')[0]!;
      if (!seen.has(dst)) seen.set(dst, now);
    }
  });
  return { seen, stop: () => p.kill() };
}

export function main() {
  return onLab({ racks: 2, nodesPerRack: 2, dualStack: false, podsPerNode: 0, controllers: 1 }, measure);
}

async function measure(s: LabState) {
  const rest = labRest(s);
  try {
    const tor = monitor('pf-lab-tor1');
    const neigh = ['r1n1', 'r1n2'].map((n) => ({ n, m: monitor(`pf-lab-${n}`) }));
    await new Promise((r) => setTimeout(r, 500));

    // Floor: AddPath → ToR FIB on an established node.
    const r = createGoBgpRouter(`unix://${gobgpSocket('pf-lab-r1n1')}`);
    const floor: number[] = [];
    for (let i = 0; i < N; i++) {
      const prefix = `10.250.${i}.0/24`;
      const t0 = performance.now();
      await r.addAdvertisements([{ prefix, nextHop: '172.20.1.11', communities: [] }]);
      await waitUntil('floor prefix', async () => tor.seen.has(prefix), 10_000, 2);
      floor.push(tor.seen.get(prefix)! - t0);
      await r.deleteAdvertisements([{ prefix, nextHop: '172.20.1.11', communities: [] }]);
    }
    r.close();

    const toTor: number[] = [];
    const toHosts: number[] = [];
    const sessionWait: number[] = [];
    const toAddPeer: number[] = [];
    for (let i = 0; i < N; i++) {
      const n = labNode(1, 10 + (i % 40), false);
      await bootMachine(s, n);
      const t0 = performance.now();
      const wall0 = Date.now();
      await rest.request('POST', '/api/v1/nodes', nodeObject(n));
      const cidr = await waitUntil('allocated', async () => (await rest.get<NodeFabricObj>(`/apis/podfabric.io/v1alpha1/nodefabrics/${n.name}`).catch(() => null))?.spec.podCIDRs?.[0], 20_000, 5);
      await waitUntil(`${cidr} in ToR FIB`, async () => tor.seen.has(cidr), 30_000, 2);
      await waitUntil(`host routes to ${cidr}`, async () => neigh.every((x) => x.m.seen.has(cidr)), 30_000, 2);
      toTor.push(tor.seen.get(cidr)! - t0);
      toHosts.push(Math.max(...neigh.map((x) => x.m.seen.get(cidr)!)) - t0);
      // Its session's share: the agent's AddPeer → Established (the ToR's connect-retry wait, not ours).
      const established = await waitUntil('session logged', () => agentLogTime(n.name, 'BGP session state changed', (o) => o.to === 'Established'), 10_000, 20);
      const added = await agentLogTime(n.name, 'BGP changes applied', (o) => Array.isArray(o.addPeers) && o.addPeers.length > 0);
      if (added !== undefined) {
        sessionWait.push(established - added);
        toAddPeer.push(added - wall0);
      }
      await removeNode(s, n.name);
      // Forget this block's sightings: the next node may get the same (lowest free) block.
      tor.seen.delete(cidr);
      for (const x of neigh) x.m.seen.delete(cidr);
      await waitUntil('withdrawn', async () => !(await routesByProto('pf-lab-tor1', 'bgp')).some((x) => x.dst === cidr), 30_000, 20);
    }
    tor.stop();
    for (const x of neigh) x.m.stop();

    // ToR restart → sessions and routes back.
    const restarts: number[] = [];
    const rackCidrs = await Promise.all(['r1n1', 'r1n2'].map(async (n) => (await rest.get<NodeFabricObj>(`/apis/podfabric.io/v1alpha1/nodefabrics/${n}`)).spec.podCIDRs![0]!));
    for (let i = 0; i < 5; i++) {
      await stopFrr('pf-lab-tor1', 'SIGKILL');
      const t0 = performance.now();
      await restartFrr('pf-lab-tor1', 'pf-lab-tor1');
      await waitUntil('tor1 back', async () => {
        const nb = await bgpNeighbors('pf-lab-tor1');
        const fib = (await routesByProto('pf-lab-tor1', 'bgp')).map((x) => x.dst);
        return ['172.20.1.11', '172.20.1.12', '172.31.1.2'].every((a) => nb.get(a)?.state === 'Established') && rackCidrs.every((c) => fib.includes(c));
      }, 60_000, 20);
      restarts.push(performance.now() - t0);
    }

    const out = {
      bench: 'convergence',
      additions: N,
      node_to_tor_fib_ms: { p50: round(percentile(toTor, 50)), p99: round(percentile(toTor, 99)) },
      node_to_neighbour_host_routes_ms: { p50: round(percentile(toHosts, 50)), p99: round(percentile(toHosts, 99)) },
      node_to_agent_addpeer_ms: { p50: round(percentile(toAddPeer, 50)), p99: round(percentile(toAddPeer, 99)) },
      session_establishment_ms: { p50: round(percentile(sessionWait, 50)), p99: round(percentile(sessionWait, 99)), note: 'AddPeer → Established: the ToR dials every 1 s (FRR minimum connect timer); GoBGP first dials 5–9 s after AddPeer' },
      floor_gobgp_addpath_to_tor_fib_ms: { p50: round(percentile(floor, 50)), p99: round(percentile(floor, 99)) },
      tor_restart_to_sessions_and_routes_s: { p50: round(percentile(restarts, 50) / 1000, 2), max: round(Math.max(...restarts) / 1000, 2), samples: restarts.length },
    };
    console.log(`convergence: Node created → pod CIDR in ToR FIB: p50 ${out.node_to_tor_fib_ms.p50} ms, p99 ${out.node_to_tor_fib_ms.p99} ms (${N} additions)`);
    console.log(`convergence: Node created → host routes on rack neighbours: p50 ${out.node_to_neighbour_host_routes_ms.p50} ms, p99 ${out.node_to_neighbour_host_routes_ms.p99} ms`);
    console.log(`convergence:   of which Node created → agent's AddPeer: p50 ${out.node_to_agent_addpeer_ms.p50} ms, p99 ${out.node_to_agent_addpeer_ms.p99} ms; AddPeer → session Established (ToR connect-retry wait): p50 ${out.session_establishment_ms.p50} ms, p99 ${out.session_establishment_ms.p99} ms`);
    console.log(`convergence: floor, GoBGP AddPath → ToR FIB: p50 ${out.floor_gobgp_addpath_to_tor_fib_ms.p50} ms, p99 ${out.floor_gobgp_addpath_to_tor_fib_ms.p99} ms`);
    console.log(`convergence: ToR restart → all sessions and routes back: p50 ${out.tor_restart_to_sessions_and_routes_s.p50} s, max ${out.tor_restart_to_sessions_and_routes_s.max} s`);
    return out;
  } finally {
    rest.close();
  }
}
