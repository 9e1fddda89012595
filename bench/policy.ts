/**
 * NetworkPolicy at scale on one node: 1,000 policies x 1,000 pods (all on this node: the worst case
 * for dispatch), IPv4. Measures, with the real nft in a network namespace (pf-np-bench):
 *   - compile + first apply (whole table in one transaction);
 *   - one pod's label change: recompile + delta + nft, ms and nft statements (p50/p99 over N pods);
 *   - the nft object count;
 *     through the agent's long-lived nft session (what it ships), and again through a fresh
 *     `nft -f -` per change (the previous way);
 *   - the nft object count, and rules that would make nft dump an interval set per element change;
 *   - floors, same run: `nft -f` alone of the same full ruleset; one element changed by a fresh
 *     `nft -f -` and by the session; starting a process in the namespace (`ip netns exec NS true`).
 * Then, on the lab (bench/policy-lab.ts): policy created → enforced on every node (p50Ms, p99Ms).
 * BENCH_POLICY_LAB=0 skips the lab part.
 * Each policy selects one app in its namespace, admits two peers (an app in the namespace and an app
 * across namespaces of one team) on a numeric or a named port; every fifth also has egress to an
 * ipBlock with except and a pod selector.
 */
import { cpus, loadavg } from 'node:os';
import { deleteNamespace } from '../hack/lab/lib/netns.js';
import { run } from '../operator/lib/exec.js';
import { nftRunner, PolicyTableApplier } from '../operator/nftables/applier.js';
import { fullScript } from '../operator/nftables/script.js';
import { compile } from '../operator/policy/compile.js';
import { namespaceInfo, parsePolicy, type PodInfo, type Policy } from '../operator/policy/model.js';
import { countObjects, renderRule, type Ruleset } from '../operator/policy/objects.js';
import { policyOnLab } from './policy-lab.js';
import { medianMs, percentile, round } from './stats.js';

const PODS = Number(process.env.BENCH_PODS ?? 1000);
const POLICIES = Number(process.env.BENCH_POLICIES ?? 1000);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 20);
const NAMESPACES = 20;
const APPS = 100;
const NS = 'pf-np-bench';

export function world() {
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => namespaceInfo(`ns${i}`, { team: `t${i % 5}` }));
  const pods: PodInfo[] = Array.from({ length: PODS }, (_, i) => ({
    namespace: `ns${i % NAMESPACES}`,
    name: `p${i}`,
    labels: { app: `a${i % APPS}`, tier: i % 3 ? 'web' : 'db' },
    ips: [`10.80.${i >> 8}.${i & 255}`],
    nodeName: 'n1',
    ports: [{ name: 'http', containerPort: 8080 + (i % 3) }],
  }));
  const policies: Policy[] = Array.from({ length: POLICIES }, (_, i) => {
    const ns = `ns${i % NAMESPACES}`;
    const spec: Record<string, unknown> = {
      podSelector: { matchLabels: { app: `a${i % APPS}` } },
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { app: `a${(i * 7 + 1) % APPS}` } } }, { namespaceSelector: { matchLabels: { team: `t${i % 5}` } }, podSelector: { matchLabels: { tier: 'web' } } }],
          ports: [i % 2 ? { port: 8000 + (i % 50), endPort: 8000 + (i % 50) + 5 } : { port: 'http' }],
        },
      ],
    };
    if (i % 5 === 0) {
      spec.policyTypes = ['Ingress', 'Egress'];
      spec.egress = [{ to: [{ ipBlock: { cidr: '192.168.0.0/16', except: [`192.168.${i % 256}.0/24`] } }, { podSelector: { matchLabels: { app: `a${(i + 3) % APPS}` } } }], ports: [{ port: 443 }, { protocol: 'UDP', port: 53 }] }];
    }
    const r = parsePolicy({ metadata: { name: `pol${i}`, namespace: ns }, spec });
    if (!r.ok) throw new Error(r.error);
    return r.policy;
  });
  return { namespaces, pods, policies };
}

export async function main() {
  const single = await oneNode();
  if (process.env.BENCH_POLICY_LAB === '0') return single;
  const lab = await policyOnLab();
  const result = { ...single, p50Ms: lab.createdToEnforcedEveryNodeMs.p50, p99Ms: lab.createdToEnforcedEveryNodeMs.p99, lab };
  console.log(`policy created → enforced on every node: p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms (target p50 ≤ 100 ms, p99 ≤ 500 ms)`);
  return result;
}

/** Rules whose rendering needs an interval set (nft dumps each one's elements before any element change). */
const intervalSetRules = (rs: Ruleset) => Object.values(rs.chains).reduce((n, c) => n + c.rules.filter((r) => /\{[^}]*[\d:]-[\da-f:]/.test(renderRule(r))).length, 0);

type Sample = { ms: number; compile: number; diff: number; nft: number; statements: number };
const p50 = (xs: number[]) => round(percentile(xs, 50));
const dist = (xs: number[]) => ({ p50: round(percentile(xs, 50)), p99: round(percentile(xs, 99)), max: round(Math.max(...xs)) });

async function oneNode() {
  await deleteNamespace(NS);
  await run(['ip', 'netns', 'add', NS]);
  const pre = ['ip', 'netns', 'exec', NS];
  const spawnNft = (text: string) => run([...pre, 'nft', '-f', '-'], { input: text });
  const session = nftRunner({ netns: NS });
  try {
    const w = world();
    const applier = new PolicyTableApplier(session);

    const t0 = performance.now();
    const rs = compile({ ...w, node: 'n1' });
    const tCompiled = performance.now();
    const first = await applier.sync(rs);
    const firstApplyMs = performance.now() - t0;
    const compileMs = tCompiled - t0;
    const objects = countObjects(rs);
    const listed = (await run([...pre, 'nft', 'list', 'table', 'inet', rs.table])).stdout.split('\n').length;

    // Floor: nft -f of the same full ruleset (replacing the table), no compile, no diff.
    const text = fullScript(rs).text;
    const floors: number[] = [];
    for (let i = 0; i < 3; i++) {
      const f0 = performance.now();
      await spawnNft(text);
      floors.push(performance.now() - f0);
    }
    applier.reset();
    await applier.sync(rs);

    // One pod's label change at a time: recompile everything, diff, apply the delta.
    let pods = w.pods;
    let k = 0;
    const changes = async (a: PolicyTableApplier): Promise<Sample[]> => {
      const out: Sample[] = [];
      for (let n = 0; n < CHANGES; n++, k++) {
        const victim = (k * 37) % PODS;
        pods = pods.map((p, i) => (i === victim ? { ...p, labels: { ...p.labels, app: `a${(Number(p.labels.app!.slice(1)) + 1) % APPS}` } } : p));
        const c0 = performance.now();
        const desired = compile({ ...w, pods, node: 'n1' });
        const compiled = performance.now() - c0;
        const r = await a.sync(desired);
        out.push({ ms: performance.now() - c0, compile: compiled, diff: r.diffMs, nft: r.nftMs, statements: r.statements });
      }
      return out;
    };
    const viaSession = await changes(applier);
    const noop0 = performance.now();
    const noop = await applier.sync(compile({ ...w, pods, node: 'n1' }));
    const noopMs = performance.now() - noop0;
    // The same through a fresh `nft -f -` per change (after one full sync of what the session left).
    const spawnApplier = new PolicyTableApplier(nftRunner({ netns: NS, session: false }));
    await spawnApplier.sync(compile({ ...w, pods, node: 'n1' }));
    const viaSpawn = await changes(spawnApplier);

    // Floors of a small change: one element added and removed (one transaction), and a bare process start.
    const el = (i: number) => `add element inet ${rs.table} egress4 { 10.81.0.${i} : drop }\ndelete element inet ${rs.table} egress4 { 10.81.0.${i} }\n`;
    const small = await medianMs(10, (i) => spawnNft(el(i)));
    const smallSession = await medianMs(10, (i) => session.apply(el(i)));
    const spawnOnly = await medianMs(10, () => run([...pre, 'true']));

    const col = (xs: Sample[], key: keyof Sample) => xs.map((x) => x[key]);
    const result = {
      bench: 'policy',
      pods: PODS,
      policies: POLICIES,
      compileMs: round(compileMs),
      firstApplyMs: round(firstApplyMs),
      firstApplyStatements: first.statements,
      objects,
      nftListLines: listed,
      labelChangeMs: dist(col(viaSession, 'ms')),
      labelChangeStatements: { p50: percentile(col(viaSession, 'statements'), 50), max: Math.max(...col(viaSession, 'statements')) },
      labelChangePartsP50Ms: { compile: p50(col(viaSession, 'compile')), diff: p50(col(viaSession, 'diff')), nft: p50(col(viaSession, 'nft')) },
      labelChangeSpawnMs: dist(col(viaSpawn, 'ms')),
      labelChangeSpawnPartsP50Ms: { compile: p50(col(viaSpawn, 'compile')), diff: p50(col(viaSpawn, 'diff')), nft: p50(col(viaSpawn, 'nft')) },
      intervalSetRules: intervalSetRules(rs),
      floorSmallNftMs: small,
      floorSessionSmallNftMs: smallSession,
      floorSpawnOnlyMs: spawnOnly,
      loadAverage1m: round(loadavg()[0]!, 2),
      noopSyncMs: round(noopMs),
      noopStatements: noop.statements,
      floorFullNftMs: round(percentile(floors, 50)),
    };
    console.log(`${POLICIES} policies x ${PODS} pods (all local, IPv4)`);
    console.log(`compile ${result.compileMs} ms; compile + first apply ${result.firstApplyMs} ms (${first.statements} nft statements)`);
    console.log(`objects: ${JSON.stringify(objects)}; \`nft list table\` ${listed} lines; rules needing an interval set: ${result.intervalSetRules}`);
    const line = (what: string, d: ReturnType<typeof dist>, parts: { compile: number; diff: number; nft: number }) =>
      console.log(`one pod's label change ${what} (compile + diff + nft, ${CHANGES} changes): p50 ${d.p50} ms, p99 ${d.p99} ms; of which (p50) compile ${parts.compile} ms, diff ${parts.diff} ms, nft ${parts.nft} ms`);
    line('through the nft session', result.labelChangeMs, result.labelChangePartsP50Ms);
    line('through nft -f per change', result.labelChangeSpawnMs, result.labelChangeSpawnPartsP50Ms);
    console.log(`  statements p50 ${result.labelChangeStatements.p50}, max ${result.labelChangeStatements.max}`);
    console.log(`floors: one element changed by nft -f ${small} ms, by the session ${smallSession} ms; \`ip netns exec\` of /bin/true ${spawnOnly} ms`);
    console.log(`no-op sync: ${result.noopSyncMs} ms, ${noop.statements} statements`);
    console.log(`floor: nft -f of the same full ruleset ${result.floorFullNftMs} ms (median of 3); load average ${result.loadAverage1m} on ${cpus().length} cores`);
    return result;
  } finally {
    session.close?.();
    await deleteNamespace(NS);
  }
}
