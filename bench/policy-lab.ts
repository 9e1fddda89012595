/**
 * On the lab (2 racks × 2 nodes, real apiserver, controller, agents, kube-proxy): a NetworkPolicy
 * created → enforced on every node, and deleted → no longer enforced, p50/p99 over N repetitions.
 *
 * Oracle: real connections. A client pod (r1n1, not selected) opens a new TCP connection to the
 * lab pod of every node every PROBE_EVERY_MS (each a new flow, so each SYN meets the policy); the
 * policy denies all ingress to those pods. A node enforces it from the first connection attempt that
 * fails and after which every attempt fails (the time of that attempt's SYN: resolution
 * PROBE_EVERY_MS); it stops enforcing at the first attempt that connects after the deletion. The
 * clock starts just before the POST / DELETE to the apiserver. After each creation the kernel's map
 * of every node is checked to hold its pod (the nft view of the same fact).
 *
 * Breakdown per node, from the agent's own log line for that sync (policy-apply.ts): the change
 * seen by the informer (apiserver + watch delivery), compile, nft commit. Floor in the same run: one
 * `nft -f` of the same change (the same compiler's delta for r1n1) in a scratch namespace, and the
 * same through the agent's long-lived nft session.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitUntil } from '../hack/lab/lib/daemon.js';
import { addNamespace, deleteNamespace } from '../hack/lab/lib/netns.js';
import { addPod, inNs, labRest, nodeDir, type LabPod, type LabState } from '../hack/lab/lab.js';
import { run } from '../operator/lib/exec.js';
import { nftRunner, PolicyTableApplier } from '../operator/nftables/applier.js';
import { deltaScript } from '../operator/nftables/script.js';
import { desiredPolicyState } from '../operator/policy/desired.js';
import { onLab } from './lab-watch.js';
import { medianMs, percentile, round } from './stats.js';

const REPS = Number(process.env.BENCH_POLICY_REPS ?? 20);
const PROBE_EVERY_MS = 10;
const PROBE_TIMEOUT_MS = 300;
const FLOOR_NS = 'pf-np-floor';
// Wall clock, as the prober (time.time()) and the agents' log lines (Date.now()) use.
const now = () => Date.now();

/** One process in the client pod: a new TCP connection to each target every EVERY ms; prints "start_ms index ok" per attempt. */
const PROBER = `import socket,select,struct,sys,time
t=[(a,int(p)) for a,p in (x.split(':') for x in sys.argv[1].split(','))];every=float(sys.argv[2])/1000;tmo=float(sys.argv[3])/1000
pend={};nxt=time.time();poll=select.poll();poll.register(sys.stdin,select.POLLIN|select.POLLHUP)
while True:
  n=time.time()
  if n>=nxt:
    for i,a in enumerate(t):
      s=socket.socket();s.setblocking(False);s.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack('ii',1,0))
      s.connect_ex(a);pend[s.fileno()]=(s,n,i);poll.register(s,select.POLLOUT)
    nxt+=every
  out=[]
  for fd,ev in poll.poll(max(0,(nxt-time.time())*1000)):
    if fd==0: sys.exit(0)
    s,st,i=pend.pop(fd);poll.unregister(fd);ok=s.getsockopt(socket.SOL_SOCKET,socket.SO_ERROR)==0;s.close();out.append('%.3f %d %d'%(st*1000,i,ok))
  n=time.time()
  for fd,(s,st,i) in list(pend.items()):
    if n-st>tmo: pend.pop(fd);poll.unregister(fd);s.close();out.append('%.3f %d 0'%(st*1000,i))
  if out: sys.stdout.write('\\n'.join(out)+'\\n');sys.stdout.flush()
`;

interface Attempt {
  at: number;
  ok: boolean;
}

function prober(client: LabPod, targets: LabPod[]) {
  const seen: Attempt[][] = targets.map(() => []);
  const p = spawn('ip', ['netns', 'exec', client.ns, 'python3', '-c', PROBER, targets.map((t) => `${t.ips[0]}:80`).join(','), String(PROBE_EVERY_MS), String(PROBE_TIMEOUT_MS)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let buf = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) {
      const [at, i, ok] = l.split(' ');
      seen[Number(i)]!.push({ at: Number(at), ok: ok === '1' });
    }
  });
  return { seen, stop: () => p.stdin.end() };
}

/** Start of the first failing attempt after t0 that every later completed attempt (at least 3) also failed; or undefined. */
function enforcedAt(xs: Attempt[], t0: number): number | undefined {
  const after = xs.filter((x) => x.at >= t0).sort((a, b) => a.at - b.at);
  let lastOk = -1;
  after.forEach((x, i) => x.ok && (lastOk = i));
  const fails = after.slice(lastOk + 1);
  return fails.length >= 3 ? fails[0]!.at : undefined;
}
const reopenedAt = (xs: Attempt[], t0: number) => xs.filter((x) => x.at >= t0 && x.ok).sort((a, b) => a.at - b.at)[0]?.at;

interface SyncLog {
  time: number;
  compileMs: number;
  nftMs: number;
  ms: number;
  sinceChangeMs: number;
}
/**
 * The agent's first 'policy table programmed' line for a sync that includes a change seen after t0
 * (not a sync still finishing the previous change's conntrack cut when t0 came).
 */
async function agentSync(node: string, t0: number): Promise<SyncLog | undefined> {
  const text = await readFile(join(nodeDir(node), 'agent.log'), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    if (!line.includes('policy table programmed')) continue;
    const o = JSON.parse(line) as SyncLog & { msg: string };
    if (o.time - o.sinceChangeMs >= t0 - 1) return o;
  }
  return undefined;
}

/** The duration of the agent's first conntrack cut logged at or after `since` (it runs after the commit, off the sync path). */
async function agentCut(node: string, since: number): Promise<{ ms: number } | undefined> {
  const text = await readFile(join(nodeDir(node), 'agent.log'), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    if (!line.includes('"conntrack cut"')) continue;
    const o = JSON.parse(line) as { time: number; ms: number };
    if (o.time >= since) return { ms: o.ms };
  }
  return undefined;
}

const p50 = (xs: number[]) => round(percentile(xs, 50));
const p99 = (xs: number[]) => round(percentile(xs, 99));
const stat = (xs: number[]) => ({ p50: round(percentile(xs, 50)), p99: round(percentile(xs, 99)), max: round(Math.max(...xs)) });

export function policyOnLab() {
  return onLab({ racks: 2, nodesPerRack: 2, dualStack: false, podsPerNode: 1, controllers: 1 }, measure);
}

async function measure(s: LabState) {
  const rest = labRest(s);
  const targets = s.nodes.map((n) => s.pods.find((p) => p.node === n.name)!);
  const client = await addPod(s, 'r1n1', 'bench-client', { labels: { app: 'bench-client' } });
  const probe = prober(client, targets);
  const base = '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies';
  const policy = (name: string) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: 'default' }, spec: { podSelector: { matchLabels: { app: 'lab' } }, policyTypes: ['Ingress'] } });
  const created: number[] = [];
  const deleted: number[] = [];
  const parts = { seen: [] as number[], queued: [] as number[], compile: [] as number[], nft: [] as number[], cut: [] as number[], committedToObserved: [] as number[] };
  const perNode = new Map(s.nodes.map((n) => [n.name, [] as number[]]));
  let kernelChecked = 0;
  try {
    await waitUntil('every lab pod answers the client', async () => targets.every((_, i) => probe.seen[i]!.some((x) => x.ok && x.at > now() - 200)), 30_000, 20);
    for (let r = 0; r < REPS; r++) {
      const name = `bench-deny-${r}`;
      const t0 = now();
      await rest.request('POST', base, policy(name));
      const on = await waitUntil(`policy ${name} enforced on every node`, async () => {
        const ts = probe.seen.map((xs) => enforcedAt(xs, t0));
        return ts.every((t) => t !== undefined) && (ts as number[]);
      }, 30_000, 10);
      created.push(Math.max(...on) - t0);
      s.nodes.forEach((n, i) => perNode.get(n.name)!.push(on[i]! - t0));
      // The kernel agrees: every node's ingress map holds its pod.
      for (const [i, n] of s.nodes.entries()) {
        const r2 = await inNs(n.ns, ['nft', 'get', 'element', 'inet', 'podfabric-policy', 'ingress4', `{ ${targets[i]!.ips[0]} }`], { allowFail: true });
        if (r2.code !== 0) throw new Error(`${n.name}: connections fail but its ingress4 map lacks ${targets[i]!.ips[0]}: ${r2.stderr}`);
        kernelChecked++;
      }
      for (const [i, n] of s.nodes.entries()) {
        const l = await waitUntil(`${n.name} agent logged its sync`, () => agentSync(n.name, t0), 10_000, 20);
        // sinceChangeMs = (waiting for the queue) + compile + ms (diff + nft commit; the cut runs after, apart)
        parts.seen.push(l.time - l.sinceChangeMs - t0);
        parts.queued.push(l.sinceChangeMs - l.compileMs - l.ms);
        parts.compile.push(l.compileMs);
        parts.nft.push(l.nftMs);
        const cut = await waitUntil(`${n.name} agent logged its conntrack cut`, () => agentCut(n.name, l.time), 10_000, 20);
        parts.cut.push(cut.ms);
        // the SYN that first failed vs the agent's commit (logged right after it)
        parts.committedToObserved.push(on[i]! - l.time);
      }
      const t1 = now();
      await rest.request('DELETE', `${base}/${name}`);
      const off = await waitUntil(`policy ${name} lifted on every node`, async () => {
        const ts = probe.seen.map((xs) => reopenedAt(xs, t1));
        return ts.every((t) => t !== undefined) && (ts as number[]);
      }, 30_000, 10);
      deleted.push(Math.max(...off) - t1);
      await waitUntil('every node settled', async () => probe.seen.every((xs) => xs.filter((x) => x.at > t1).slice(-3).every((x) => x.ok)), 10_000, 10);
    }
    const conntrackEntries = Object.fromEntries(await Promise.all(s.nodes.map(async (n) => [n.name, Number((await inNs(n.ns, ['conntrack', '-C'], { allowFail: true })).stdout.trim())] as const)));
    const floor = await floorOfTheSameChange(rest, policy('bench-floor'));
    const out = {
      createdToEnforcedEveryNodeMs: stat(created),
      deletedToLiftedEveryNodeMs: stat(deleted),
      createdBreakdownP50Ms: { apiserverAndWatch: p50(parts.seen), queued: p50(parts.queued), compile: p50(parts.compile), nftCommit: p50(parts.nft), conntrackCutAfter: p50(parts.cut), commitToFirstRefusedSyn: p50(parts.committedToObserved) },
      createdBreakdownP99Ms: { apiserverAndWatch: p99(parts.seen), queued: p99(parts.queued), compile: p99(parts.compile), nftCommit: p99(parts.nft), conntrackCutAfter: p99(parts.cut), commitToFirstRefusedSyn: p99(parts.committedToObserved) },
      createdToEnforcedPerNodeP50Ms: Object.fromEntries([...perNode].map(([n, xs]) => [n, p50(xs)])),
      floorSameChangeNftFMs: floor.spawn,
      floorSameChangeSessionMs: floor.session,
      conntrackEntriesAtEnd: conntrackEntries,
      reps: REPS,
      nodes: s.nodes.length,
      probeResolutionMs: PROBE_EVERY_MS,
      kernelChecks: kernelChecked,
    };
    console.log(`lab (${s.nodes.length} nodes, ${REPS} repetitions): policy created → enforced on every node (first refused connection): p50 ${out.createdToEnforcedEveryNodeMs.p50} ms, p99 ${out.createdToEnforcedEveryNodeMs.p99} ms; deleted → lifted: p50 ${out.deletedToLiftedEveryNodeMs.p50} ms, p99 ${out.deletedToLiftedEveryNodeMs.p99} ms`);
    for (const [q, b] of [['p50', out.createdBreakdownP50Ms], ['p99', out.createdBreakdownP99Ms]] as const)
      console.log(`  per node (${q}): apiserver + watch delivery ${b.apiserverAndWatch} ms, queued behind the previous sync ${b.queued} ms, compile ${b.compile} ms, nft commit ${b.nftCommit} ms (conntrack cut after it ${b.conntrackCutAfter} ms); commit → first refused SYN ${b.commitToFirstRefusedSyn} ms (probe every ${PROBE_EVERY_MS} ms)`);
    console.log(`  created → enforced per node (p50): ${JSON.stringify(out.createdToEnforcedPerNodeP50Ms)}; conntrack entries per node at the end (the probes' closed flows): ${JSON.stringify(conntrackEntries)}`);
    console.log(`  floor, the same change on one node: nft -f ${floor.spawn} ms, through the nft session ${floor.session} ms (p50 of 10); kernel map checked ${kernelChecked} times`);
    return out;
  } finally {
    probe.stop();
    rest.close();
  }
}

/** The agent's delta for r1n1 (the same compiler, from the apiserver's objects), applied alone in a scratch namespace. */
async function floorOfTheSameChange(rest: ReturnType<typeof labRest>, pol: unknown) {
  const list = async (path: string) => (await rest.request<{ items: unknown[] }>('GET', path)).items;
  const [policies, namespaces, pods] = await Promise.all([list('/apis/networking.k8s.io/v1/networkpolicies'), list('/api/v1/namespaces'), list('/api/v1/pods')]);
  const before = desiredPolicyState({ policies, namespaces, pods, node: 'r1n1' }).ruleset;
  const after = desiredPolicyState({ policies: [...policies, pol], namespaces, pods, node: 'r1n1' }).ruleset;
  const on = deltaScript(before, after).text;
  const off = deltaScript(after, before).text;
  await addNamespace(FLOOR_NS);
  const session = nftRunner({ netns: FLOOR_NS });
  try {
    await new PolicyTableApplier(session).sync(before);
    return {
      spawn: await medianMs(10, () => run(['ip', 'netns', 'exec', FLOOR_NS, 'nft', '-f', '-'], { input: on }), () => session.apply(off)),
      session: await medianMs(10, () => session.apply(on), () => session.apply(off)),
    };
  } finally {
    session.close?.();
    await deleteNamespace(FLOOR_NS);
  }
}
