/**
 * The drain, on the lab: a Cluster LoadBalancer Service (pods on r1n2 and r2n2, so every node
 * advertises it); a client beyond the ToRs (in the spine's namespace) makes 1,000 TCP requests to its
 * address, one connection each (bench/lb-client.py), while r1n1 is cordoned (spec.unschedulable) →
 * its path carries GRACEFUL_SHUTDOWN at the ToR → the ToR's FIB drops it as a next hop → withdrawn
 * after the configured delay → uncordoned → back in the ToR's FIB. Reported: requests and failures
 * (per phase), the timeline (ms from the cordon write) and the connections r1n1 forwarded in each
 * phase (conntrack entries for the address in r1n1's namespace), which shows traffic really left it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { waitUntil } from '../hack/lab/lib/daemon.js';
import { inNs } from '../hack/lab/lib/netns.js';
import { addPod, type LabState } from '../hack/lab/lab.js';
import type { KubeRest } from '../operator/kube/rest.js';
import { ROOT } from './child.js';
import { bgpPaths, fibNextHops, isGshut, lbService, mono, setCordoned } from './services-lab.js';

const REQUESTS = Number(process.env.BENCH_DRAIN_REQUESTS ?? 1000);
const INTERVAL_MS = Number(process.env.BENCH_DRAIN_INTERVAL_MS ?? 15);
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const TOR1 = 'pf-lab-tor1';

interface Req {
  i: number;
  t: number;
  ok: boolean;
  detail: string;
  ms: number;
}

export interface DrainResult {
  requests: number;
  failed: number;
  /** ms from the cordon write. */
  timelineMs: { gshutAtTor: number; outOfTorFib: number; withdrawnAtTor: number; uncordon: number; backInTorFib: number };
  withdrawDelaySeconds: number;
  phases: Array<{ phase: string; requests: number; failed: number; viaCordonedNode: number }>;
  failures: Array<{ i: number; msFromCordon: number; error: string }>;
  summary: string[];
}

/** The client: resolves with every request once it printed "done"; progress() counts answered requests. */
export function client(ip: string, count = REQUESTS) {
  const reqs: Req[] = [];
  const p = spawn('ip', ['netns', 'exec', 'pf-lab-spine', PYTHON, join(ROOT, 'bench/lb-client.py'), ip, '80', String(count), String(INTERVAL_MS), '1000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<Req[]>((resolve, reject) => {
    p.on('error', reject);
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let n: number;
      while ((n = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, n).trim();
        buf = buf.slice(n + 1);
        if (line === 'done') return resolve(reqs);
        const [i, t, res, detail, ms] = line.split(' ');
        reqs.push({ i: Number(i), t: Number(t), ok: res === 'ok', detail: detail ?? '', ms: Number(ms) });
      }
    });
    p.on('exit', (code) => reject(new Error(`drain client exited ${code} after ${reqs.length} requests: ${err.trim().slice(-2000)}`)));
  });
  done.catch(() => undefined);
  /** Rejects (with the client's output) if it dies before it is done; never resolves. */
  const dead = done.then(() => new Promise<never>(() => undefined));
  dead.catch(() => undefined);
  return { reqs, done, dead, stop: () => p.kill() };
}

/** Connections the node forwarded to the address so far (conntrack entries in its namespace; they outlive this run). */
async function conntrackCount(node: string, ip: string): Promise<number> {
  const r = await inNs(`pf-lab-${node}`, ['conntrack', '-L', '-p', 'tcp', '--orig-dst', ip], { allowFail: true });
  return r.stdout.split('\n').filter((l) => l.startsWith('tcp')).length;
}

export async function measureDrain(s: LabState, rest: KubeRest, o: { namespace: string; cordon: string; delaySeconds: number }): Promise<DrainResult> {
  const node = s.nodes.find((n) => n.name === o.cordon)!;
  const rack = s.nodes.filter((n) => n.rack === node.rack).map((n) => n.ip4).sort();
  await addPod(s, 'r1n2', 'clu-a', { namespace: o.namespace, labels: { app: 'clu' } });
  await addPod(s, 'r2n2', 'clu-b', { namespace: o.namespace, labels: { app: 'clu' } });
  const ip = await lbService(rest, o.namespace, 'clu', 'Cluster');
  const prefix = `${ip}/32`;
  await waitUntil(`${TOR1}: ${prefix} via every rack-1 node`, async () => JSON.stringify(await fibNextHops(TOR1, prefix)) === JSON.stringify(rack), 60_000, 50);
  await waitUntil(`spine: ${prefix} via both ToRs`, async () => (await fibNextHops('pf-lab-spine', prefix)).length === 2, 60_000, 50);

  // Every node's kube-proxy must serve the address before the loop starts (the ToR may route to a node
  // whose kube-proxy has not seen the endpoints yet: it rejects with host-unreachable), as a rollout waits
  // for a Service to answer before sending it users.
  await waitUntil(`${prefix} answers 50 requests in a row from the spine`, async () => {
    const w = client(ip, 50);
    return (await w.done).every((r) => r.ok);
  }, 60_000, 200);
  const c = client(ip);
  const marks: Partial<Record<Mark, number>> = {};
  const counts: Partial<Record<Mark, number>> = {};
  const mark = async (k: Mark, t = mono()) => {
    marks[k] = t;
    counts[k] = await conntrackCount(o.cordon, ip);
  };
  try {
    await mark('start');
    await Promise.race([c.dead, waitUntil('150 requests before the cordon', async () => c.reqs.length >= 150 || undefined, 60_000, 10)]);
    await mark('cordon');
    await setCordoned(rest, o.cordon, true);
    const drained = waitUntil(`${TOR1}: ${o.cordon}'s path drained and withdrawn`, async () => {
      const now = mono();
      const paths = await bgpPaths(TOR1, prefix);
      if (marks.gshutAtTor === undefined && isGshut(paths.get(node.ip4))) marks.gshutAtTor = now;
      if (marks.outOfTorFib === undefined && !(await fibNextHops(TOR1, prefix)).includes(node.ip4)) await mark('outOfTorFib', now);
      if (marks.withdrawnAtTor === undefined && !paths.has(node.ip4)) await mark('withdrawnAtTor', now);
      return marks.outOfTorFib !== undefined && marks.withdrawnAtTor !== undefined;
    }, 60_000 + o.delaySeconds * 1000, 20);
    drained.catch(() => undefined); // observed through the race below
    await Promise.race([c.dead, drained]);
    // Hold the drained state a moment so some requests see it.
    await new Promise((r) => setTimeout(r, 1000));
    await mark('uncordon');
    await setCordoned(rest, o.cordon, false);
    const back = await waitUntil(`${TOR1}: ${o.cordon} back as a next hop`, async () => (await fibNextHops(TOR1, prefix)).includes(node.ip4) && mono(), 60_000, 20);
    await mark('backInTorFib', back);
    const reqs = await Promise.race([c.done, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`the drain client did not finish (${c.reqs.length} requests)`)), 10 * 60_000))]);
    await mark('end');
    return report(reqs, marks as Record<Mark, number>, counts as Record<Mark, number>, o);
  } finally {
    c.stop();
  }
}

type Mark = 'start' | 'cordon' | 'gshutAtTor' | 'outOfTorFib' | 'withdrawnAtTor' | 'uncordon' | 'backInTorFib' | 'end';

function report(reqs: Req[], m: Record<Mark, number>, counts: Record<Mark, number>, o: { cordon: string; delaySeconds: number }): DrainResult {
  const rel = (t: number) => Math.round(t - m.cordon);
  const phases = (
    [
      ['active, before the cordon', 'start', 'cordon'],
      ['cordoned, until out of the ToR FIB (GRACEFUL_SHUTDOWN)', 'cordon', 'outOfTorFib'],
      [`draining: out of the ToR FIB, path kept for the ${o.delaySeconds}s delay`, 'outOfTorFib', 'withdrawnAtTor'],
      ['drained: withdrawn', 'withdrawnAtTor', 'uncordon'],
      ['uncordoned, until back in the ToR FIB', 'uncordon', 'backInTorFib'],
      ['active again', 'backInTorFib', 'end'],
    ] as Array<[string, Mark, Mark]>
  ).map(([phase, a, b]) => {
    const inside = reqs.filter((r) => (a === 'start' || r.t >= m[a]) && (b === 'end' || r.t < m[b]));
    return { phase, requests: inside.length, failed: inside.filter((r) => !r.ok).length, viaCordonedNode: counts[b] - counts[a] };
  });
  const failures = reqs.filter((r) => !r.ok).map((r) => ({ i: r.i, msFromCordon: rel(r.t), error: r.detail }));
  const timelineMs = { gshutAtTor: rel(m.gshutAtTor ?? NaN), outOfTorFib: rel(m.outOfTorFib), withdrawnAtTor: rel(m.withdrawnAtTor), uncordon: rel(m.uncordon), backInTorFib: rel(m.backInTorFib) };
  const summary = [
    `drain: ${reqs.length} TCP requests from the spine to the Cluster Service, ${failures.length} failed; ${o.cordon} cordoned at t=0 (withdrawDelaySeconds ${o.delaySeconds})`,
    `drain: GRACEFUL_SHUTDOWN on its path at ${TOR1} +${timelineMs.gshutAtTor} ms, out of ${TOR1}'s FIB +${timelineMs.outOfTorFib} ms, withdrawn +${timelineMs.withdrawnAtTor} ms, uncordoned +${timelineMs.uncordon} ms, back in the FIB +${timelineMs.backInTorFib} ms`,
    ...phases.map((p) => `drain:   ${p.phase}: ${p.requests} requests, ${p.failed} failed, ${p.viaCordonedNode} new connections through ${o.cordon}`),
    ...failures.slice(0, 10).map((f) => `drain:   failed request #${f.i} at +${f.msFromCordon} ms: ${f.error}`),
  ];
  return { requests: reqs.length, failed: failures.length, timelineMs, withdrawDelaySeconds: o.delaySeconds, phases, failures: failures.slice(0, 50), summary };
}
