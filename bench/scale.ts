/**
 * N nodes' agents (default 500) against the real controller and apiserver (`npm run bench -- scale [--nodes N]
 * [--changes K] [--quiet SECONDS]`; issue #15). In this one process, N simulated agents — each the real
 * NodeAgent with its own client, every watch a real agent opens and its status writes (bench/scale-agents.ts),
 * only gobgpd, the kernel and nft faked — run against `podfabric controller` (bin/podfabric.js, built
 * first) and a fresh harness apiserver, in a world described by bench/scale-world.ts. Measures:
 *   - a BGPPeer change (first a new peer selecting every node, then K−1 changes of its peerASN) until
 *     every agent's sync has programmed it into its speaker (each agent watches the BGPPeers itself):
 *     p50/p99 over the N agents' arrival times, pooled over the K changes; and the NodeFabric spec
 *     writes seen from the change until the apiserver is quiet again (peerChangeFabricWrites, expect 0:
 *     sessions are not in the spec);
 *   - steady state: apiserver requests per agent per second over a quiet window, from the apiserver's
 *     own apiserver_request_total (every verb, watches included; leases — the controller's leader
 *     election and the apiserver's identity — left out), beside the agents' own client-side count;
 *   - the controller's CPU seconds and RSS, the apiserver's RSS, and this process's RSS per agent.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { API_PATH, API_VERSION } from '../operator/api/common.js';
import { STATUS_HEARTBEAT_JITTER, STATUS_HEARTBEAT_SECONDS } from '../operator/api/nodefabric.js';
import type { PeerConfig } from '../operator/gobgp/speaker.js';
import { Informer, type KObj } from '../operator/kube/informer.js';
import { log } from '../operator/lib/log.js';
import { apiserverGet, countDelta, requestCounts, startBenchApiserver, watchEventCounts } from './apiserver.js';
import { buildOperator, guard, numberArg, ROOT, startChild, waitFor, type Watched } from './child.js';
import { clientCounts, simAgent, startFleet, type SimAgent } from './scale-agents.js';
import { buildWorld, defaultWorld, describeWorld, rackOf, torAddress } from './scale-world.js';
import { scaleNodes } from './sim-heap.js';
import { percentile, round } from './stats.js';

const SPINE = '172.31.255.1';
const say = (m: string) => process.stderr.write(`bench: scale: ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function procStat(pid: number): Promise<{ cpuSeconds: number; rssMB: number; peakRssMB: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { cpuSeconds: (Number(f[11] ?? 0) + Number(f[12] ?? 0)) / 100, rssMB: kb('VmRSS'), peakRssMB: kb('VmHWM') };
}

/**
 * What one NodeFabric costs as JSON (what the apiserver stores, caches and sends on every watch event):
 * the median and largest whole object, and the median of its spec, status and managedFields; beside
 * them, the L2Segments (each agent watches its own ones): how many, their median and largest size.
 */
async function nodeFabricBytes(rest: { get<T>(path: string): Promise<T> }): Promise<{ p50: number; max: number; specP50: number; statusP50: number; managedFieldsP50: number; objects: number; segments: number; segmentP50: number; segmentMax: number }> {
  type NF = { metadata: { managedFields?: unknown }; spec?: unknown; status?: unknown };
  // Paged: one 40 MB answer at 5,000 nodes outlived the apiserver's 60 s request timeout on a loaded machine.
  const pages = async (plural: string) => {
    const items: NF[] = [];
    let cont = '';
    do {
      const page = await rest.get<{ items: NF[]; metadata: { continue?: string } }>(`${API_PATH}/${plural}?limit=250${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
      items.push(...page.items);
      cont = page.metadata.continue ?? '';
    } while (cont);
    return items;
  };
  const list = { items: await pages('nodefabrics') };
  const segs = (await pages('l2segments')).map((o) => Buffer.byteLength(JSON.stringify({ apiVersion: API_VERSION, kind: 'L2Segment', ...o }))).sort((a, b) => a - b);
  const size = (x: unknown) => Buffer.byteLength(JSON.stringify(x ?? null));
  const sorted = (f: (o: (typeof list.items)[number]) => number) => list.items.map(f).sort((a, b) => a - b);
  const whole = sorted((o) => size({ apiVersion: API_VERSION, kind: 'NodeFabric', ...o }));
  return {
    p50: percentile(whole, 50),
    max: whole[whole.length - 1] ?? 0,
    specP50: percentile(sorted((o) => size(o.spec)), 50),
    statusP50: percentile(sorted((o) => size(o.status)), 50),
    managedFieldsP50: percentile(sorted((o) => size(o.metadata.managedFields)), 50),
    objects: list.items.length,
    segments: segs.length,
    segmentP50: percentile(segs, 50),
    segmentMax: segs[segs.length - 1] ?? 0,
  };
}

/** One change's arrivals in each agent (its speaker got the peer), and the NodeFabric spec writes meanwhile. */
class Round {
  readonly agents = new Map<number, number>();
  fabricWrites = 0;
  private wake: (() => void) | undefined;
  constructor(
    readonly address: string,
    readonly asn: number | undefined,
    readonly t0: number,
  ) {}
  matches(p: { address: string; asn: number }): boolean {
    return p.address === this.address && (this.asn === undefined || p.asn === this.asn);
  }
  seen(key: number): void {
    if (this.agents.has(key)) return;
    this.agents.set(key, performance.now() - this.t0);
    this.wake?.();
  }
  async until(n: number, timeoutMs: number, watched: Watched[]): Promise<boolean> {
    const end = performance.now() + timeoutMs;
    while (this.agents.size < n) {
      if (performance.now() > end) return false;
      await guard(new Promise<void>((r) => { this.wake = r; setTimeout(r, 1000); }), watched);
    }
    return true;
  }
}

export async function main(args: string[] = []) {
  const N = scaleNodes(args);
  const changes = numberArg(args, 'changes', 4);
  const quietS = numberArg(args, 'quiet', 300);
  const inFlight = numberArg(args, 'start-in-flight', 10);
  const http2 = !args.includes('--http1');
  const world = defaultWorld(N);
  log.level = 'error'; // N agents' info logs would bury the figures (and cost what a node's one agent does not)
  await buildOperator();
  const api = await startBenchApiserver('scale', { crds: true });
  let controller: SupervisedController | undefined;
  const agents: SimAgent[] = [];
  try {
    say(`building the world: ${describeWorld(world)}`);
    const tw = performance.now();
    await guard(buildWorld(api.rest, world), [api.watched]);
    say(`world built in ${round((performance.now() - tw) / 1000)} s`);

    // The benchmark's own view of every NodeFabric spec (one watch): planned nodes, and spec writes
    // during a change (a write that changes the spec moves metadata.generation).
    let round_: Round | undefined;
    const planned = new Set<string>();
    const seeFabric = (o: KObj | undefined, n: KObj) => {
      if ((n as { spec?: { podCIDRs?: string[] } }).spec?.podCIDRs?.length) planned.add(n.metadata.name!);
      if (round_ && (!o || o.metadata.generation !== n.metadata.generation)) round_.fabricWrites++;
    };
    const fabrics = new Informer<KObj>(api.rest, `${API_PATH}/nodefabrics`, { onAdd: (n) => seeFabric(undefined, n), onUpdate: seeFabric }, { name: 'bench nodefabrics' });
    fabrics.start();

    const logFile = join(api.dir, 'controller.log');
    controller = new SupervisedController([process.execPath, join(ROOT, 'bin/podfabric.js'), 'controller', `--kubeconfig=${api.kubeconfig}`, '--metrics-addr=127.0.0.1:0'], logFile);
    const watched: Watched[] = [api.watched];
    const tp = performance.now();
    await waitFor(`the controller plans all ${N} nodes`, async () => planned.size >= N, { timeoutMs: 900_000, everyMs: 1000, watched });
    const planSeconds = (performance.now() - tp) / 1000;
    say(`controller planned ${N} NodeFabrics in ${round(planSeconds)} s (log ${logFile})`);

    // The agents. Each reports the peers its sync programs.
    const rssBefore = process.memoryUsage().rss;
    const initial = new Round('', undefined, performance.now());
    const onPeer = (i: number, p: PeerConfig) => {
      if (p.address === torAddress(rackOf(i))) initial.seen(i);
      const r = round_;
      if (r?.matches({ address: p.address, asn: p.peerAsn })) r.seen(i);
    };
    for (let i = 0; i < N; i++) agents.push(simAgent(i, { kc: api.rest.kc, onPeer, http2 }));
    const ts = performance.now();
    const startCpu0 = process.cpuUsage();
    const startApi0 = await procStat(api.watched.pid);
    const startReq0 = await requestCounts(api.kubeconfig, { watches: true });
    const startEvents0 = await watchEventCounts(api.kubeconfig);
    // BENCH_PROFILE_DIR (with BENCH_APISERVER_FLAGS=--profiling=true): the apiserver's CPU profile over the start.
    const profiling = process.env.BENCH_PROFILE_DIR
      ? apiserverGet(api.kubeconfig, '/debug/pprof/profile?seconds=60', 120_000).then((b) => writeFile(join(process.env.BENCH_PROFILE_DIR!, 'apiserver-start.pprof'), b), (e: Error) => say(`profile: ${e.message}`))
      : undefined;
    await guard(startFleet(agents, inFlight, (n) => say(`${n} agents started (${round((performance.now() - ts) / 1000)} s)`)), watched);
    const startSeconds = (performance.now() - ts) / 1000;
    if (!(await initial.until(N, 600_000, watched))) throw new Error(`only ${initial.agents.size} of ${N} agents programmed their rack's peer`);
    const firstSyncSeconds = (performance.now() - ts) / 1000;
    const startCpu = process.cpuUsage(startCpu0);
    const startCpuPerAgent = (startCpu.user + startCpu.system) / 1e6 / N;
    const startApiCpuPerAgent = ((await procStat(api.watched.pid)).cpuSeconds - startApi0.cpuSeconds) / N;
    const watchesPerAgent = clientCounts.watches / N;
    const startRequests = countDelta(startReq0, await requestCounts(api.kubeconfig, { watches: true }));
    say(`requests while the agents started, per agent: ${Object.entries(startRequests).map(([k, v]) => `${k} ${round(v / N, 2)}`).join(', ')}`);
    const startEvents = countDelta(startEvents0, await watchEventCounts(api.kubeconfig));
    say(`watch events the apiserver sent while the agents started, per agent: ${Object.entries(startEvents).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${round(v / N, 2)}`).join(', ')}`);
    await profiling;
    say(`${N} agents started in ${round(startSeconds)} s, all programmed their plan after ${round(firstSyncSeconds)} s; ${round(watchesPerAgent, 1)} watches per agent`);
    await settle(api.kubeconfig, watched, N);

    // The changes.
    const all: number[] = [];
    const perRound: Array<{ change: string; fabricWrites: number; agentsP50Ms: number; agentsP99Ms: number; agentsMaxMs: number; missing: number; simCpuMsPerAgent: number; apiserverCpuMsPerAgent: number }> = [];
    for (let k = 0; k < changes; k++) {
      const asn = 65100 + k;
      // CPU spent until the last agent has the change: this process runs all N agents' syncs on one
      // thread (on real nodes each has its own CPU), and the apiserver takes their N status writes.
      const cpu0 = process.cpuUsage();
      const apiCpu0 = (await procStat(api.watched.pid)).cpuSeconds;
      const r = new Round(SPINE, asn, performance.now());
      round_ = r;
      const change = k === 0 ? `new BGPPeer "spine" selecting all nodes (peerASN ${asn})` : `BGPPeer "spine" peerASN → ${asn}`;
      if (k === 0) {
        await api.rest.request('POST', `${API_PATH}/bgppeers`, { apiVersion: API_VERSION, kind: 'BGPPeer', metadata: { name: 'spine' }, spec: { peerAddress: SPINE, peerASN: asn } });
      } else {
        await api.rest.request('PATCH', `${API_PATH}/bgppeers/spine`, { spec: { peerASN: asn } }, 'application/merge-patch+json');
      }
      const ok = await r.until(N, 300_000, watched);
      const cpu1 = process.cpuUsage(cpu0);
      const apiCpu1 = (await procStat(api.watched.pid)).cpuSeconds;
      const times = [...r.agents.values()].sort((a, b) => a - b);
      all.push(...times);
      // Spec writes are counted until the apiserver is quiet again (the controller re-plans every node).
      await settle(api.kubeconfig, watched, N);
      round_ = undefined;
      const row = {
        change,
        fabricWrites: r.fabricWrites,
        agentsP50Ms: round(percentile(times, 50)),
        agentsP99Ms: round(percentile(times, 99)),
        agentsMaxMs: round(times[times.length - 1] ?? 0),
        missing: N - r.agents.size,
        simCpuMsPerAgent: round(((cpu1.user + cpu1.system) / 1000) / N, 3),
        apiserverCpuMsPerAgent: round(((apiCpu1 - apiCpu0) * 1000) / N, 3),
      };
      perRound.push(row);
      say(`${change}: agents p50 ${row.agentsP50Ms} ms, p99 ${row.agentsP99Ms} ms, last ${row.agentsMaxMs} ms; ${row.fabricWrites} NodeFabric spec writes; CPU until the last agent had it, per agent: this process ${row.simCpuMsPerAgent} ms, apiserver ${row.apiserverCpuMsPerAgent} ms${ok ? '' : ` — ${row.missing} agents never saw it`}`);
    }
    all.sort((a, b) => a - b);

    // Steady state.
    say(`quiet window: ${quietS} s`);
    const c0 = await requestCounts(api.kubeconfig, { watches: true });
    const cl0 = { ...clientCounts };
    const cpu0 = process.cpuUsage();
    const ctl0 = await controller.stat();
    const api0 = await procStat(api.watched.pid);
    const tq = performance.now();
    await guard(sleep(quietS * 1000), watched);
    const quietSeconds = (performance.now() - tq) / 1000;
    const delta = countDelta(c0, await requestCounts(api.kubeconfig, { watches: true }));
    const cpu1 = process.cpuUsage(cpu0);
    const ctl1 = await controller.stat();
    const api1 = await procStat(api.watched.pid);
    const sum = (pred: (k: string) => boolean) => Object.entries(delta).reduce((s, [k, v]) => (pred(k) ? s + v : s), 0);
    const nonLease = sum((k) => !k.startsWith('leases'));
    const idle = nonLease / N / quietSeconds;
    const clientIdle = (clientCounts.requests - cl0.requests + clientCounts.watches - cl0.watches) / N / quietSeconds;
    if (process.env.BENCH_PROFILE_DIR) {
      await apiserverGet(api.kubeconfig, '/debug/pprof/heap', 120_000).then((b) => writeFile(join(process.env.BENCH_PROFILE_DIR!, 'apiserver-heap.pprof'), b), (e: Error) => say(`heap profile: ${e.message}`));
    }
    // A figure of its own: if it cannot be read, the run's other figures are still printed.
    const nfBytes = await nodeFabricBytes(api.rest).catch((e: Error) => (say(`NodeFabric sizes not read: ${e.message}`), undefined));
    const rss = process.memoryUsage();
    const fds = (await readdir('/proc/self/fd')).length;
    const out = {
      bench: 'scale',
      nodes: N,
      agentTransport: http2 ? 'HTTP/2, one connection per agent' : 'HTTP/1.1, one connection per watch',
      world: describeWorld(world),
      peerChangeP50Ms: round(percentile(all, 50)),
      peerChangeP99Ms: round(percentile(all, 99)),
      peerChangeMaxMs: round(all[all.length - 1] ?? 0),
      peerChangeFabricWrites: perRound.reduce((a, x) => a + x.fabricWrites, 0),
      peerChanges: perRound,
      idleRequestsPerAgentPerSec: round(idle, 4),
      idleRequestsMeasuredAt: 'apiserver /metrics apiserver_request_total delta, all verbs incl. WATCH, leases excluded',
      idleClientRequestsPerAgentPerSec: round(clientIdle, 4),
      idleRequestsByResource: delta,
      quietSeconds: round(quietSeconds),
      controllerCpuSeconds: round(ctl1.cpuSeconds, 2),
      controllerRestarts: controller.restarts,
      controllerQuietCpuSeconds: round(ctl1.cpuSeconds - ctl0.cpuSeconds, 2),
      controllerRssMB: round(ctl1.rssMB),
      controllerPeakRssMB: round(ctl1.peakRssMB),
      apiserverRssMB: round(api1.rssMB),
      apiserverPeakRssMB: round(api1.peakRssMB),
      apiserverQuietCores: round((api1.cpuSeconds - api0.cpuSeconds) / quietSeconds, 3),
      benchRssMB: round(rss.rss / 2 ** 20),
      benchRssPerAgentMB: round((rss.rss - rssBefore) / N / 2 ** 20, 3),
      benchHeapUsedMB: round(rss.heapUsed / 2 ** 20),
      benchQuietCoresPerAgent: round((cpu1.user + cpu1.system) / 1e6 / quietSeconds / N, 6),
      benchOpenFds: fds,
      nodeFabricBytes: nfBytes ?? null,
      watchesPerAgent: round(watchesPerAgent, 1),
      controllerPlanSeconds: round(planSeconds),
      agentsStartSeconds: round(startSeconds),
      agentsFirstSyncSeconds: round(firstSyncSeconds),
      agentStartCpuSecondsPerAgent: round(startCpuPerAgent, 4),
      apiserverCpuSecondsPerAgentStart: round(startApiCpuPerAgent, 4),
      startRequestsPerAgent: Object.fromEntries(Object.entries(startRequests).map(([k, v]) => [k, round(v / N, 2)])),
      loadAverage: loadavg().map((x) => round(x, 2)),
      cores: cpus().length,
      targets: { peerChangeP99Ms: '<= 10000', idleRequestsPerAgentPerSec: '<= 0.05', benchRssPerAgentMB: 'far below kubemark hollow node 220 MB / 0.09 core' },
    };
    console.log(`scale: world: ${out.world}`);
    console.log(`scale: controller planned all ${N} nodes in ${out.controllerPlanSeconds} s; ${N} agents (${out.watchesPerAgent} watches each) started in ${out.agentsStartSeconds} s, all programmed their plan after ${out.agentsFirstSyncSeconds} s`);
    console.log(`scale: starting one agent costs ${out.agentStartCpuSecondsPerAgent} CPU s here (its lists, decoding, first syncs) and ${out.apiserverCpuSecondsPerAgentStart} CPU s in the apiserver`);
    for (const p of perRound) console.log(`scale: ${p.change}: ${p.fabricWrites} NodeFabric spec writes, agents p50 ${p.agentsP50Ms} / p99 ${p.agentsP99Ms} / last ${p.agentsMaxMs} ms (CPU per agent: simulation ${p.simCpuMsPerAgent} ms, apiserver ${p.apiserverCpuMsPerAgent} ms)${p.missing ? `, ${p.missing} missing` : ''}`);
    console.log(`scale: peer change → every agent, over ${changes} changes × ${N} agents: p50 ${out.peerChangeP50Ms} ms, p99 ${out.peerChangeP99Ms} ms (target p99 ≤ 10 s)`);
    console.log(`scale: quiet ${out.quietSeconds} s: ${out.idleRequestsPerAgentPerSec} apiserver requests per agent per second (target ≤ 0.05; client-side count ${out.idleClientRequestsPerAgentPerSec}); by resource: ${JSON.stringify(delta)}`);
    if (controller.restarts) console.log(`scale: the controller lost its lease and exited ${controller.restarts} time(s) (restarted as its Deployment would; see ${logFile})`);
    console.log(`scale: controller CPU ${out.controllerCpuSeconds} s total (${out.controllerQuietCpuSeconds} s in the quiet window), RSS ${out.controllerRssMB} MB (peak ${out.controllerPeakRssMB}); apiserver RSS ${out.apiserverRssMB} MB (peak ${out.apiserverPeakRssMB}), ${out.apiserverQuietCores} cores when quiet`);
    console.log(`scale: this process: RSS ${out.benchRssMB} MB, ${out.benchRssPerAgentMB} MB and ${out.benchQuietCoresPerAgent} cores per simulated agent when quiet; ${fds} open fds (kubemark hollow node: 220 MB, 0.09 core)`);
    if (nfBytes) console.log(`scale: a NodeFabric is ${round(nfBytes.p50 / 1024, 1)} KB of JSON at the median (largest ${round(nfBytes.max / 1024, 1)} KB; spec ${round(nfBytes.specP50 / 1024, 1)}, status ${round(nfBytes.statusP50 / 1024, 1)}, managedFields ${round(nfBytes.managedFieldsP50 / 1024, 1)} KB), over ${nfBytes.objects} objects; ${nfBytes.segments} L2Segments, ${round(nfBytes.segmentP50 / 1024, 1)} KB at the median (largest ${round(nfBytes.segmentMax / 1024, 1)} KB)`);
    console.log(`scale: load average ${out.loadAverage.join(' ')} on ${out.cores} cores`);
    return out;
  } finally {
    await Promise.all(agents.map((a) => a.agent.stop().catch(() => undefined)));
    await controller?.stop();
    await api.stop();
  }
}

/**
 * The controller, restarted when it exits (as its Deployment would: it exits on purpose when it loses
 * its lease). CPU seconds add up over its lives (each life's last sample, taken every 2 s).
 */
class SupervisedController {
  restarts = 0;
  private current!: Watched;
  private stopped = false;
  private cpuOfPastLives = 0;
  private lastCpu = 0;
  private readonly sampler: NodeJS.Timeout;

  constructor(
    private readonly cmd: string[],
    private readonly logFile: string,
  ) {
    this.spawn();
    this.sampler = setInterval(() => void this.stat(), 2000);
  }

  private spawn(): void {
    const w = startChild('podfabric controller', this.cmd, { logFile: this.logFile, env: { ...process.env, PODFABRIC_LOG_LEVEL: 'warn' } });
    this.current = w;
    w.exited.catch((e: Error) => {
      if (this.stopped) return;
      this.restarts++;
      this.cpuOfPastLives += this.lastCpu;
      this.lastCpu = 0;
      say(`the controller exited (${e.message.split('\n')[0]}); restarting it`);
      this.spawn();
    });
  }

  async stat(): Promise<{ cpuSeconds: number; rssMB: number; peakRssMB: number }> {
    const s = await procStat(this.current.pid);
    if (s.cpuSeconds > 0) this.lastCpu = s.cpuSeconds;
    return { ...s, cpuSeconds: this.cpuOfPastLives + this.lastCpu };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sampler);
    await this.current.stop();
  }
}

/**
 * Waits until the apiserver's writes (leases aside) fall to what heartbeats alone make: at most one
 * status write per agent per shortest heartbeat interval, over 5 s windows (at most 180 s).
 */
async function settle(kubeconfig: string, watched: Watched[], agents: number): Promise<void> {
  const writes = (m: Map<string, number>) => [...m].reduce((a, [k, v]) => (k.startsWith('leases') || /(GET|LIST|WATCH)$/.test(k) ? a : a + v), 0);
  const allowed = Math.ceil((agents * 5) / (STATUS_HEARTBEAT_SECONDS * (1 - STATUS_HEARTBEAT_JITTER))) + 2;
  let last = writes(await requestCounts(kubeconfig));
  const end = Date.now() + 180_000;
  while (Date.now() < end) {
    await guard(sleep(5000), watched);
    const now = writes(await requestCounts(kubeconfig));
    if (now - last <= allowed) return;
    last = now;
  }
}


