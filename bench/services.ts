/**
 * `npm run bench -- services`, on the lab (real kube-apiserver, kube-controller-manager, kube-proxy,
 * podfabric controller and agents, gobgpd, FRR ToRs and spine):
 *  1. A LoadBalancer Service with externalTrafficPolicy Local and one pod on r1n1: N times (BENCH_REPS,
 *     default 30) the pod's readiness is written as the kubelet writes it when its probe flips
 *     (status subresource): ready → the /32 installed in the ToR's kernel FIB (ip monitor route in the
 *     ToR's namespace), unready → removed from it. p50/p99 both ways, split into
 *       the pod's status write → its EndpointSlice updated (kube-controller-manager's share, seen by a watch),
 *       → the agent's AddPath / DeletePath logged ("BGP changes applied": ours),
 *       → the ToR's FIB (BGP UPDATE, FRR bestpath, zebra: the routers' share).
 *  2. Floor in the same run: a raw GoBGP AddPath / DeletePath of a /32 on r1n2's gobgpd → ToR FIB.
 *  3. The drain (bench/services-drain.ts): 1,000 TCP requests from the spine to a Cluster Service's
 *     address while r1n1 is cordoned, drained, uncordoned.
 */
import { createGoBgpRouter } from '../operator/gobgp/client.js';
import type { KubeRest } from '../operator/kube/rest.js';
import { gobgpSocket } from '../hack/lab/lib/gobgpd.js';
import { inNs } from '../hack/lab/lib/netns.js';
import { waitUntil } from '../hack/lab/lib/daemon.js';
import { addPod, kubectl, labRest, type LabState } from '../hack/lab/lab.js';
import { agentLogTime } from './machine.js';
import { onLab } from './lab-watch.js';
import { measureDrain, type DrainResult } from './services-drain.js';
import { fibMonitor, lbService, mono, setPodReady } from './services-lab.js';
import { percentile, round } from './stats.js';

const N = Number(process.env.BENCH_REPS ?? 30);
const DRAIN_DELAY_S = Number(process.env.BENCH_DRAIN_DELAY_S ?? 5);
const TOR1 = 'pf-lab-tor1';
const NS = 'svcbench';

const stat = (xs: number[]) => ({ p50: round(percentile(xs, 50)), p99: round(percentile(xs, 99)) });

export function main() {
  return onLab({ racks: 2, nodesPerRack: 2, dualStack: false, podsPerNode: 0, controllers: 1 }, measure);
}

/** Spread flows over every ECMP next hop by ports too (the L3 default sends one client's traffic one way). */
async function hashOnPorts(): Promise<void> {
  for (const ns of ['pf-lab-spine', 'pf-lab-tor1', 'pf-lab-tor2']) await inNs(ns, ['sysctl', '-qw', 'net.ipv4.fib_multipath_hash_policy=1']);
}

/** Times (monotonic ms) at which the watch saw the pod's endpoint become ready / not ready. */
function watchEndpoint(rest: KubeRest, service: string, pod: string) {
  const seen: Array<{ t: number; ready: boolean }> = [];
  const w = rest.watch<{ endpoints?: Array<{ conditions?: { ready?: boolean }; targetRef?: { name?: string } }> }>(
    `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices?watch=1&labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${service}`)}`,
    (e) => {
      const t = mono();
      const ep = e.object.endpoints?.find((x) => x.targetRef?.name === pod);
      if (ep && e.type !== 'DELETED') seen.push({ t, ready: ep.conditions?.ready === true });
    },
  );
  w.done.catch(() => undefined);
  const next = (ready: boolean, after: number) => waitUntil(`EndpointSlice: ${pod} ready=${ready}`, async () => seen.find((x) => x.t >= after && x.ready === ready)?.t, 30_000, 2);
  return { next, stop: () => w.stop() };
}

interface Split {
  total: number[];
  kcm: number[];
  agent: number[];
  routers: number[];
}
const split = (): Split => ({ total: [], kcm: [], agent: [], routers: [] });

async function localCycles(s: LabState, rest: KubeRest) {
  const node = s.nodes.find((n) => n.name === 'r1n1')!;
  const pod = await addPod(s, 'r1n1', 'loc-a', { namespace: NS, labels: { app: 'loc' } });
  const ip = await lbService(rest, NS, 'loc', 'Local');
  const prefix = `${ip}/32`;
  const fib = fibMonitor(TOR1);
  await fib.ready;
  await waitUntil(`${prefix} first in ${TOR1}'s FIB`, async () => (await inNs(TOR1, ['ip', 'route', 'show', prefix, 'proto', 'bgp'])).stdout.trim() !== '', 60_000, 20);
  const ep = watchEndpoint(rest, 'loc', 'loc-a');
  const up = split();
  const down = split();
  // Wall clock ↔ monotonic, for the agent's log times (ms since epoch).
  const wall0 = Date.now();
  const mono0 = mono();
  const toMono = (wall: number) => mono0 + (wall - wall0);
  const agentApplied = async (key: 'advertise' | 'withdraw', after: number) =>
    toMono(await waitUntil(`agent r1n1 logged ${key} ${prefix}`, () => agentLogTime('r1n1', 'BGP changes applied', (o) => (o.time as number) >= wall0 + (after - mono0) - 1 && Array.isArray(o[key]) && (o[key] as string[]).includes(prefix)), 30_000, 20));
  try {
    for (let i = 0; i < N; i++) {
      for (const ready of [false, true]) {
        const out = ready ? up : down;
        const t0 = mono();
        await setPodReady(rest, pod, node.ip4, ready);
        const tFib = await fib.next(prefix, !ready, t0);
        const tSlice = await ep.next(ready, t0);
        const tAgent = await agentApplied(ready ? 'advertise' : 'withdraw', t0);
        out.total.push(tFib - t0);
        out.kcm.push(tSlice - t0);
        out.agent.push(tAgent - tSlice);
        out.routers.push(tFib - tAgent);
      }
    }
  } finally {
    ep.stop();
    fib.stop();
  }
  return { ip, up, down };
}

/** Floor: raw AddPath / DeletePath of a /32 on an established node's gobgpd → the ToR's kernel FIB. */
async function floorCycles() {
  const fib = fibMonitor(TOR1);
  await fib.ready;
  const r = createGoBgpRouter(`unix://${gobgpSocket('pf-lab-r1n2')}`);
  const add: number[] = [];
  const del: number[] = [];
  try {
    for (let i = 0; i < N; i++) {
      const a = { prefix: `203.0.113.${(i % 250) + 1}/32`, nextHop: '172.20.1.12', communities: [] };
      let t0 = mono();
      await r.addAdvertisements([a]);
      add.push((await fib.next(a.prefix, false, t0)) - t0);
      t0 = mono();
      await r.deleteAdvertisements([a]);
      del.push((await fib.next(a.prefix, true, t0)) - t0);
    }
  } finally {
    r.close();
    fib.stop();
  }
  return { add, del };
}

async function measure(s: LabState) {
  const rest = labRest(s);
  try {
    await kubectl(s, ['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'default' }, spec: { services: { drain: { withdrawDelaySeconds: DRAIN_DELAY_S } } } }));
    await hashOnPorts();
    const local = await localCycles(s, rest);
    const floor = await floorCycles();
    const drain: DrainResult = await measureDrain(s, rest, { namespace: NS, cordon: 'r1n1', delaySeconds: DRAIN_DELAY_S });

    const out = {
      bench: 'services',
      repetitions: N,
      advertiseP50Ms: round(percentile(local.up.total, 50)),
      advertiseP99Ms: round(percentile(local.up.total, 99)),
      withdrawP50Ms: round(percentile(local.down.total, 50)),
      withdrawP99Ms: round(percentile(local.down.total, 99)),
      advertiseSplitMs: { podStatusToEndpointSlice: stat(local.up.kcm), endpointSliceToAgentAddPath: stat(local.up.agent), addPathToTorFib: stat(local.up.routers) },
      withdrawSplitMs: { podStatusToEndpointSlice: stat(local.down.kcm), endpointSliceToAgentDeletePath: stat(local.down.agent), deletePathToTorFib: stat(local.down.routers) },
      floorRawAddPathToTorFibMs: stat(floor.add),
      floorRawDeletePathToTorFibMs: stat(floor.del),
      drainRequests: drain.requests,
      drainFailed: drain.failed,
      drain: { ...drain, summary: undefined },
    };
    const f = (x: { p50: number; p99: number }) => `p50 ${x.p50} ms, p99 ${x.p99} ms`;
    console.log(`services: Local Service ${local.ip}, pod on r1n1, ${N} readiness flips each way (target p99 ≤ 1000 ms)`);
    console.log(`services: endpoint ready → /32 in ${TOR1}'s FIB: ${f(stat(local.up.total))}`);
    console.log(`services:   pod status write → EndpointSlice (kube-controller-manager): ${f(out.advertiseSplitMs.podStatusToEndpointSlice)}`);
    console.log(`services:   EndpointSlice → agent's AddPath (ours): ${f(out.advertiseSplitMs.endpointSliceToAgentAddPath)}`);
    console.log(`services:   AddPath → ToR FIB (BGP, FRR, zebra): ${f(out.advertiseSplitMs.addPathToTorFib)}`);
    console.log(`services: endpoint not ready → /32 gone from ${TOR1}'s FIB: ${f(stat(local.down.total))}`);
    console.log(`services:   pod status write → EndpointSlice: ${f(out.withdrawSplitMs.podStatusToEndpointSlice)}`);
    console.log(`services:   EndpointSlice → agent's DeletePath (ours): ${f(out.withdrawSplitMs.endpointSliceToAgentDeletePath)}`);
    console.log(`services:   DeletePath → ToR FIB: ${f(out.withdrawSplitMs.deletePathToTorFib)}`);
    console.log(`services: floor, raw GoBGP AddPath → ToR FIB: ${f(out.floorRawAddPathToTorFibMs)}; DeletePath → gone: ${f(out.floorRawDeletePathToTorFibMs)}`);
    for (const line of drain.summary) console.log(`services: ${line}`);
    return out;
  } finally {
    rest.close();
  }
}
