/**
 * IPAM at scale: N Node objects (default 5,000; `--nodes 500` for a quick run) created against a real
 * apiserver while an allocator runs; seconds until every Node has its block, allocations per second.
 * Four allocators, each on its own fresh apiserver, in one run:
 *   1. `podfabric controller` at its shipped defaults (client QPS 200, burst 400): a node counts as
 *      allocated once both its NodeFabric and its Node's spec.podCIDRs carry the block;
 *   2. the same with the client's own rate limit lifted (is the controller itself ever the bottleneck?);
 *   3. kube-controller-manager's node IPAM alone (the harness binary's controller-manager, only the
 *      nodeipam controller) at KCM's default client QPS 20 / burst 30;
 *   4. the same at podfabric's QPS (200 / 400).
 * `--qps Q [--burst B]` (burst defaults to 2Q) runs allocators 1 and 4 at that client QPS instead: with one
 * write per node for KCM and two for podfabric, both bound by their token bucket cannot be closer than
 * (N − B)/(2N − B) < 0.5; `qpsBoundSeconds` and `kcmEqualQpsBoundSeconds` show that bound per run.
 * CPU: the apiserver's and the allocator's own (utime + stime) from the first Node creation until every
 * Node has its block; the floor's apiserver CPU per write is measured the same way.
 * Floor, on allocator 1's apiserver before it starts: creating N bare NodeFabric records directly, 50 in
 * flight (the apiserver's own write rate for the records the controller must write).
 * Writes per node: the apiserver's own apiserver_request_total, write verbs, from just before the
 * allocator starts until its writes stop, minus the benchmark's own Node creations; lease renewals
 * (leader election, the apiserver's identity lease) are time-bound, not per node, and reported apart.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockTracker, countDelta, requestCounts, startBenchApiserver, WRITE_VERBS, type BenchApiserver } from './apiserver.js';
import { buildHarness, buildOperator, cpuSeconds, guard, numberArg, peakRssMB, ROOT, startChild, waitFor, type Watched } from './child.js';
import { round } from './stats.js';

/** The controller's shipped client defaults (operator/controller/main.ts); `--qps Q [--burst B]` runs allocators 1 and 4 at others. */
const PF_QPS = 200;
const PF_BURST = 400;
const KCM_QPS = 20;
const KCM_BURST = 30;
const CLUSTER_CIDR = '10.0.0.0/8';
const BLOCK = 24;

/** Runs fn over items, n at a time. */
export async function parallel<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

const nodeObject = (name: string, i: number) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name },
  status: { addresses: [{ type: 'InternalIP', address: `172.16.${Math.floor(i / 250)}.${(i % 250) + 1}` }] },
});

interface Allocator {
  label: string;
  podfabric: boolean;
  start(api: BenchApiserver, logFile: string): Watched;
}

interface Run {
  label: string;
  seconds: number;
  allocationsPerSecond: number;
  nodeCreateSeconds: number;
  fabricSeconds?: number;
  peakRssMB: number;
  writesPerNode: number;
  writes: Record<string, number>;
  /** GET/LIST requests (watches left out) in the same window. */
  reads: Record<string, number>;
  readsPerNode: number;
  leaseWrites: number;
  /** CPU seconds used from the first Node creation until every Node has its block. */
  apiserverCpuSeconds: number;
  allocatorCpuSeconds: number;
}

const isLease = (k: string) => k.startsWith('leases');
const isWrite = (k: string) => WRITE_VERBS.has(k.slice(k.lastIndexOf(' ') + 1));
const total = (writes: Record<string, number>) => Object.entries(writes).reduce((a, [k, v]) => (isLease(k) ? a : a + v), 0);

/** Waits until the apiserver's write counters (leases aside) stop moving for 2 s (at most 60 s). */
async function settledWrites(api: BenchApiserver, watched: Watched[]): Promise<Map<string, number>> {
  const sum = (m: Map<string, number>) => [...m].reduce((a, [k, v]) => (isLease(k) || !isWrite(k) ? a : a + v), 0);
  let last = await requestCounts(api.kubeconfig);
  let stableSince = Date.now();
  const end = Date.now() + 60_000;
  while (Date.now() - stableSince < 2000 && Date.now() < end) {
    await guard(new Promise((r) => setTimeout(r, 500)), watched);
    const now = await requestCounts(api.kubeconfig);
    if (sum(now) !== sum(last)) stableSince = Date.now();
    last = now;
  }
  return last;
}

async function measure(a: Allocator, names: string[], logDir: string, before?: (api: BenchApiserver) => Promise<void>): Promise<Run> {
  const api = await startBenchApiserver(a.label, { crds: a.podfabric });
  const trackers: BlockTracker[] = [];
  let proc: Watched | undefined;
  try {
    await before?.(api);
    if (a.podfabric) {
      await api.rest.request('POST', '/apis/podfabric.io/v1alpha1/ippools', { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'bench' }, spec: { cidr: CLUSTER_CIDR, blockSize: BLOCK } });
    }
    const nodes = new BlockTracker(api.rest, '/api/v1/nodes');
    trackers.push(nodes);
    if (a.podfabric) trackers.push(new BlockTracker(api.rest, '/apis/podfabric.io/v1alpha1/nodefabrics'));
    await Promise.all(trackers.map((t) => t.start()));
    const w0 = await requestCounts(api.kubeconfig);
    proc = a.start(api, join(logDir, `${a.label}.log`));
    const watched = [api.watched, proc];
    // Up and allocating: one warm-up node gets its block before the clock starts.
    const warm = 'bench-warmup';
    await guard(api.rest.request('POST', '/api/v1/nodes', nodeObject(warm, 65_000)), watched);
    await guard(Promise.all(trackers.map((t) => t.whenAll([warm]))), watched).catch((e: Error) => {
      throw new Error(`${a.label}: the warm-up node got no block: ${e.message}`);
    });
    const cpu = () => Promise.all([cpuSeconds(api.watched.pid), cpuSeconds(proc!.pid)]);
    const cpu0 = await cpu();
    const t0 = performance.now();
    const created = parallel(names.map((n, i) => [n, i] as const), 50, ([n, i]) => api.rest.request('POST', '/api/v1/nodes', nodeObject(n, i))).then(() => performance.now());
    const done = Promise.all(trackers.map((t) => t.whenAll(names)));
    const progress = setInterval(() => process.stderr.write(`bench: ipam ${a.label}: ${trackers.map((t) => t.count(names)).join(' / ')} of ${names.length} allocated after ${((performance.now() - t0) / 1000).toFixed(0)} s\n`), 15_000);
    let ends: number[];
    let tCreated: number;
    try {
      [tCreated, ends] = await guard(Promise.all([created, done]), watched);
    } finally {
      clearInterval(progress);
    }
    const cpu1 = await cpu();
    const all = [warm, ...names];
    const distinct = nodes.blocks(all).size;
    if (distinct !== all.length) throw new Error(`${a.label}: ${all.length - distinct} Nodes share a block with another Node`);
    const rss = await peakRssMB(proc.pid);
    const requests = countDelta(w0, await settledWrites(api, watched));
    // The benchmark's own: its Node creations, and its tracker's list if a watch was resumed.
    delete requests['nodes POST'];
    const writes = Object.fromEntries(Object.entries(requests).filter(([k]) => isWrite(k)));
    const reads = Object.fromEntries(Object.entries(requests).filter(([k]) => !isWrite(k)));
    const leaseWrites = Object.entries(writes).reduce((s, [k, v]) => (isLease(k) ? s + v : s), 0);
    const perNode = total(writes) / all.length;
    const seconds = (Math.max(...ends) - t0) / 1000;
    return {
      label: a.label,
      seconds,
      allocationsPerSecond: names.length / seconds,
      nodeCreateSeconds: (tCreated - t0) / 1000,
      ...(a.podfabric ? { fabricSeconds: (ends[1]! - t0) / 1000 } : {}),
      peakRssMB: rss,
      writesPerNode: perNode,
      writes,
      reads,
      readsPerNode: Object.entries(reads).reduce((s2, [k, v]) => (isLease(k) ? s2 : s2 + v), 0) / all.length,
      leaseWrites,
      apiserverCpuSeconds: cpu1[0] - cpu0[0],
      allocatorCpuSeconds: cpu1[1] - cpu0[1],
    };
  } finally {
    for (const t of trackers) t.stop();
    await proc?.stop();
    await api.stop();
  }
}

function podfabric(label: string, qps: number, burst: number): Allocator {
  return {
    label,
    podfabric: true,
    start: (api, logFile) =>
      startChild(
        `podfabric controller (${label})`,
        [process.execPath, join(ROOT, 'bin/podfabric.js'), 'controller', `--kubeconfig=${api.kubeconfig}`, '--metrics-addr=127.0.0.1:0', ...(qps === PF_QPS && burst === PF_BURST ? [] : [`--qps=${qps}`, `--burst=${burst}`])],
        { logFile, env: { ...process.env, PODFABRIC_LOG_LEVEL: 'info' } },
      ),
  };
}

function kcm(label: string, harness: string, qps?: number, burst?: number): Allocator {
  return {
    label,
    podfabric: false,
    start: (api, logFile) =>
      startChild(
        `kube-controller-manager nodeipam (${label})`,
        [
          harness,
          'controller-manager',
          `--kubeconfig=${api.kubeconfig}`,
          '--controllers=nodeipam',
          '--allocate-node-cidrs=true',
          `--cluster-cidr=${CLUSTER_CIDR}`,
          `--node-cidr-mask-size=${BLOCK}`,
          '--secure-port=0',
          '--leader-elect=false',
          `--flex-volume-plugin-dir=${join(api.dir, 'flex')}`,
          ...(qps ? [`--kube-api-qps=${qps}`, `--kube-api-burst=${burst}`] : []),
        ],
        { logFile },
      ),
  };
}

export async function main(args: string[] = []) {
  const N = numberArg(args, 'nodes', Number(process.env.BENCH_NODES ?? 5000));
  await buildOperator();
  const harness = await buildHarness();
  const logDir = await mkdtemp(join(tmpdir(), 'pf-bench-ipam-logs-'));
  process.stderr.write(`bench: ipam: ${N} nodes; allocator logs in ${logDir}\n`);
  const names = Array.from({ length: N }, (_, i) => `bench-${String(i).padStart(5, '0')}`);

  // 1. podfabric at its shipped defaults, after the floor on the same apiserver.
  const qps = numberArg(args, 'qps', PF_QPS);
  const burst = numberArg(args, 'burst', qps === PF_QPS ? PF_BURST : 2 * qps);
  const atQps = qps === PF_QPS && burst === PF_BURST ? 'at its defaults' : 'at';
  let floorS = 0;
  let floorCpu = 0;
  const floor = async (api: BenchApiserver) => {
    const c0 = await cpuSeconds(api.watched.pid);
    const t = performance.now();
    await guard(parallel(names, 50, (n) => api.rest.request('POST', '/apis/podfabric.io/v1alpha1/nodefabrics', { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: `floor-${n}` }, spec: { podCIDRs: ['10.0.0.0/24'] } })), [api.watched]);
    floorS = (performance.now() - t) / 1000;
    floorCpu = (await cpuSeconds(api.watched.pid)) - c0;
    await api.rest.request('DELETE', '/apis/podfabric.io/v1alpha1/nodefabrics'); // one DeleteCollection
    await waitFor('floor NodeFabrics deleted', async () => (await api.rest.get<{ items: unknown[] }>('/apis/podfabric.io/v1alpha1/nodefabrics?limit=1')).items.length === 0, { timeoutMs: 300_000, everyMs: 500, watched: [api.watched] });
  };
  const pf = await measure(podfabric(atQps === 'at' ? `podfabric-qps${qps}` : 'podfabric-defaults', qps, burst), names, logDir, floor);
  const pfFree = await measure(podfabric('podfabric-unthrottled', 100_000, 100_000), names, logDir);
  const k = await measure(kcm('kcm-defaults', harness), names, logDir);
  const kEq = await measure(kcm(`kcm-qps${qps}`, harness, qps, burst), names, logDir);

  const floorRate = N / floorS;
  const out = {
    bench: 'ipam',
    nodes: N,
    seconds_until_all_have_blocks: round(pf.seconds),
    allocations_per_second: round(pf.allocationsPerSecond),
    node_create_seconds: round(pf.nodeCreateSeconds),
    controller_peak_rss_mb: round(pf.peakRssMB),
    controller_qps: qps,
    controller_burst: burst,
    floor_apiserver_write_nodefabrics_seconds: round(floorS),
    floor_writes_per_second: round(floorRate),
    floorApiserverCpuMsPerWrite: round((floorCpu * 1000) / N, 2),
    apiserverCpuMsPerAllocation: round((pf.apiserverCpuSeconds * 1000) / N, 2),
    unthrottledApiserverCpuMsPerAllocation: round((pfFree.apiserverCpuSeconds * 1000) / N, 2),
    kcmEqualQpsApiserverCpuMsPerAllocation: round((kEq.apiserverCpuSeconds * 1000) / N, 2),
    // The least time the client's token bucket allows for the writes each made (burst first, then qps/s).
    qpsBoundSeconds: round(Math.max(0, total(pf.writes) - burst) / qps, 2),
    kcmEqualQpsBoundSeconds: round(Math.max(0, total(kEq.writes) - burst) / qps, 2),
    ratioVsKcm: round(pf.allocationsPerSecond / k.allocationsPerSecond, 2),
    ratioVsKcmEqualQps: round(pf.allocationsPerSecond / kEq.allocationsPerSecond, 2),
    kcmAllocationsPerSecond: round(k.allocationsPerSecond),
    kcmEqualQpsAllocationsPerSecond: round(kEq.allocationsPerSecond),
    writesPerNode: round(pf.writesPerNode, 2),
    ratioVsApiserverFloor: round(pfFree.allocationsPerSecond / floorRate, 2),
    controllerPeakRssMB: round(pf.peakRssMB),
    unthrottledAllocationsPerSecond: round(pfFree.allocationsPerSecond),
    unthrottledWritesPerNode: round(pfFree.writesPerNode, 2),
    unthrottledPeakRssMB: round(pfFree.peakRssMB),
    kcmWritesPerNode: round(k.writesPerNode, 2),
    kcmPeakRssMB: round(k.peakRssMB),
    kcmQps: { defaults: `${KCM_QPS}/${KCM_BURST} (KCM's own defaults, flags not set)`, equal: `${qps}/${burst}` },
    cpuSecondsUntilAllHaveBlocks: Object.fromEntries([pf, pfFree, k, kEq].map((r) => [r.label, { apiserver: round(r.apiserverCpuSeconds, 2), allocator: round(r.allocatorCpuSeconds, 2) }])),
    writesByResource: pf.writes,
    readsPerNode: round(pf.readsPerNode, 2),
    readsByResource: pf.reads,
    leaseWrites: pf.leaseWrites,
    targets: { writesPerNode: '<= 2', ratioVsApiserverFloor: '>= 0.5', ratioVsKcm: '>= 1.0', ratioVsKcmEqualQps: '>= 0.5', controllerPeakRssMB: '<= 150' },
  };
  const line = (r: Run, what: string) =>
    console.log(`ipam: ${what}: ${N} nodes allocated in ${round(r.seconds)} s (${round(r.allocationsPerSecond)}/s; nodes created in ${round(r.nodeCreateSeconds)} s), ${round(r.writesPerNode, 2)} writes/node, peak RSS ${round(r.peakRssMB)} MB; CPU until done: apiserver ${round(r.apiserverCpuSeconds, 2)} s, allocator ${round(r.allocatorCpuSeconds, 2)} s`);
  line(pf, `podfabric ${atQps} (QPS ${qps}/${burst})`);
  console.log(`ipam:   writes during allocation: ${JSON.stringify(pf.writes)}; reads (GET/LIST): ${JSON.stringify(pf.reads)} (${round(pf.readsPerNode, 2)}/node)`);
  line(pfFree, 'podfabric, client rate limit lifted');
  line(k, `kube-controller-manager nodeipam at its defaults (QPS ${KCM_QPS}/${KCM_BURST})`);
  line(kEq, `kube-controller-manager nodeipam at QPS ${qps}/${burst}`);
  console.log(`ipam: floor — the apiserver creates ${N} NodeFabric records in ${round(floorS)} s (${round(floorRate)}/s at 50 in flight, ${out.floorApiserverCpuMsPerWrite} ms apiserver CPU each)`);
  console.log(`ipam: ratioVsKcm ${out.ratioVsKcm} (target >= 1.0), ratioVsKcmEqualQps ${out.ratioVsKcmEqualQps} (>= 0.5), ratioVsApiserverFloor ${out.ratioVsApiserverFloor} (>= 0.5), writesPerNode ${out.writesPerNode} (<= 2), controllerPeakRssMB ${out.controllerPeakRssMB} (<= 150)`);
  return out;
}
