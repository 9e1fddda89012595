/**
 * Host routes: N routes from a plan (the routes a node's L2Segments hold for it) applied by the agent's own sync code
 * (NodeAgent.applyRoutes: list the table, diff, one ip -batch, list again) into an empty main table of a
 * namespace, against the floor `ip -batch` of the same routes in one process; then a no-op resync whose
 * kernel writes are counted twice: by the route table (every batch it sends) and by the kernel
 * (`ip monitor route` in the namespace, bracketed by two sentinel routes).
 */
import { spawn } from 'node:child_process';
import type { DirectRoute } from '../operator/plan/segment.js';
import { DEFAULT_ROUTE_PROTOCOL } from '../operator/api/fabricconfig.js';
import { createIpRouteTable } from '../operator/routes/table.js';
import { run } from '../operator/lib/exec.js';
import { addNamespace, deleteNamespace, ip } from '../hack/lab/lib/netns.js';
import { waitFor } from './child.js';
import { agentUnderTest, type AgentUnderTest } from './agent-under-test.js';
import { percentile, round } from './stats.js';

const NS = 'pf-bench-rt';
const DEV = 'eth0';
const PROTO = DEFAULT_ROUTE_PROTOCOL;

/**
 * Route i of a plan. A plan's host routes go to neighbour nodes, one per node: every next hop is
 * different ('distinct', the plan's shape). 'shared' (50 next hops) shows the agent's own share: the
 * kernel's cost per distinct next hop dominates the first shape (ip -batch: ~0.25 s for 10,000 routes
 * via 50 next hops, ~2.5-3.5 s via 10,000 on this machine).
 */
type Shape = 'distinct' | 'shared';
const route = (i: number, shape: Shape = 'distinct') => ({
  destination: `100.${64 + (i >> 8)}.${i & 255}.0/24`,
  via: shape === 'distinct' ? `10.200.${1 + (i >> 8)}.${1 + (i % 250)}` : `10.200.1.${1 + (i % 50)}`,
});

/** Every route event the kernel reports in the namespace, in order. */
function monitor() {
  const lines: string[] = [];
  const p = spawn('ip', ['-n', NS, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let buf = '';
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  return { lines, stop: () => p.kill() };
}

async function ourRoutes(): Promise<number> {
  const r = await ip(['-n', NS, '-4', 'route', 'show', 'proto', String(PROTO)]);
  return r.stdout.split('\n').filter(Boolean).length;
}

async function flush(): Promise<void> {
  await ip(['-n', NS, '-4', 'route', 'flush', 'proto', String(PROTO)]);
  if ((await ourRoutes()) !== 0) throw new Error('routes left after flush');
}

/** The floor: one `ip -batch -` process with the same N routes (spawn to exit). */
async function ipBatch(n: number, shape: Shape): Promise<number> {
  const input = Array.from({ length: n }, (_, i) => {
    const r = route(i, shape);
    return `route replace ${r.destination} via ${r.via} dev ${DEV} proto ${PROTO}`;
  }).join('\n');
  const t0 = performance.now();
  await run(['ip', '-n', NS, '-batch', '-'], { input: `${input}\n` });
  return performance.now() - t0;
}

export interface RoutesResult {
  routes: number;
  agentMs: number;
  ipBatchMs: number;
  routesRatio: number;
  sharedAgentMs: number;
  sharedIpBatchMs: number;
  sharedRoutesRatio: number;
  noopKernelWrites: number;
  noopTableBatches: number;
  noopResyncMs: number;
}

export async function benchRoutes(n: number, rounds = 3): Promise<RoutesResult> {
  await addNamespace(NS);
  let agent: AgentUnderTest | undefined;
  try {
    await ip(['-n', NS, 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', 'eth1']);
    await ip(['-n', NS, 'link', 'set', DEV, 'up']);
    await ip(['-n', NS, 'link', 'set', 'eth1', 'up']);
    await ip(['-n', NS, 'addr', 'add', '10.200.0.1/16', 'dev', DEV]);
    let batches = 0;
    agent = agentUnderTest({ routes: (protocol) => createIpRouteTable({ protocol, netns: NS, onBatch: () => batches++ }) });
    const plan = (shape: Shape): DirectRoute[] => Array.from({ length: n }, (_, i) => ({ ...route(i, shape), node: `n${i}` }));
    const uplinks = new Map([[4 as const, { dev: DEV, address: '10.200.0.1', subnet: '10.200.0.0/16' }]]);

    /** Median ms of the agent's sync and of ip -batch, alternating, each into an empty table. */
    const compare = async (shape: Shape) => {
      const agentMs: number[] = [];
      const batchMs: number[] = [];
      for (let r = 0; r < rounds; r++) {
        await flush();
        batchMs.push(await ipBatch(n, shape));
        if ((await ourRoutes()) !== n) throw new Error(`ip -batch left ${await ourRoutes()} of ${n} routes`);
        await flush();
        const t0 = performance.now();
        const res = await agent!.applyRoutes(plan(shape), uplinks);
        agentMs.push(performance.now() - t0);
        if (res.routeErrors.length) throw new Error(`agent route errors: ${res.routeErrors.slice(0, 3).join('; ')}`);
        if ((await ourRoutes()) !== n) throw new Error(`the agent left ${await ourRoutes()} of ${n} routes`);
      }
      return { agent: percentile(agentMs, 50), batch: percentile(batchMs, 50) };
    };
    const shared = await compare('shared');
    const distinct = await compare('distinct');
    const spec = plan('distinct');

    // No-op resync: the table holds exactly the plan.
    const m = monitor();
    try {
      const sentinel = async (dst: string) => {
        await ip(['-n', NS, 'route', 'add', dst, 'via', '10.200.0.2', 'dev', DEV, 'proto', 'static']);
        await waitFor(`ip monitor sees ${dst}`, async () => m.lines.some((l) => l.startsWith(dst)), { timeoutMs: 10_000, everyMs: 10 });
      };
      await sentinel('198.18.0.0/24'); // the monitor is listening
      const seenBefore = m.lines.length;
      const batchesBefore = batches;
      const t0 = performance.now();
      const res = await agent.applyRoutes(spec, uplinks);
      const noopMs = performance.now() - t0;
      if (res.changes !== 0) throw new Error(`no-op resync made ${res.changes} changes`);
      await sentinel('198.18.1.0/24'); // everything the resync caused has been reported
      const during = m.lines.slice(seenBefore).filter((l) => !l.startsWith('198.18.1.0/24'));
      return {
        routes: n,
        agentMs: distinct.agent,
        ipBatchMs: distinct.batch,
        routesRatio: round(distinct.batch / distinct.agent, 2),
        sharedAgentMs: shared.agent,
        sharedIpBatchMs: shared.batch,
        sharedRoutesRatio: round(shared.batch / shared.agent, 2),
        noopKernelWrites: during.length,
        noopTableBatches: batches - batchesBefore,
        noopResyncMs: noopMs,
      };
    } finally {
      m.stop();
    }
  } finally {
    await agent?.stop();
    await deleteNamespace(NS);
  }
}
