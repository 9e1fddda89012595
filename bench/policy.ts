/**
 * NetworkPolicy at scale on one node: 1,000 policies x 1,000 pods (all on this node: the worst case
 * for dispatch), IPv4. Measures, with the real nft in a network namespace (pf-np-bench):
 *   - compile + first apply (whole table in one transaction);
 *   - one pod's label change: recompile + delta + nft, ms and nft statements (p50/p99 over N pods);
 *   - the nft object count;
 *   - floor, same run: `nft -f` alone of the same full ruleset.
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
import { countObjects } from '../operator/policy/objects.js';
import { percentile, round } from './stats.js';

const PODS = Number(process.env.BENCH_PODS ?? 1000);
const POLICIES = Number(process.env.BENCH_POLICIES ?? 1000);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 20);
const NAMESPACES = 20;
const APPS = 100;
const NS = 'pf-np-bench';

function world() {
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
  await deleteNamespace(NS);
  await run(['ip', 'netns', 'add', NS]);
  try {
    const w = world();
    const nft = nftRunner({ netns: NS });
    const applier = new PolicyTableApplier(nft);

    const t0 = performance.now();
    const rs = compile({ ...w, node: 'n1' });
    const tCompiled = performance.now();
    const first = await applier.sync(rs);
    const firstApplyMs = performance.now() - t0;
    const compileMs = tCompiled - t0;
    const objects = countObjects(rs);
    const listed = (await run(['ip', 'netns', 'exec', NS, 'nft', 'list', 'table', 'inet', rs.table])).stdout.split('\n').length;

    // Floor: nft -f of the same full ruleset (replacing the table), no compile, no diff.
    const text = fullScript(rs).text;
    const floors: number[] = [];
    for (let i = 0; i < 3; i++) {
      const f0 = performance.now();
      await nft.apply(text);
      floors.push(performance.now() - f0);
    }
    applier.reset();
    await applier.sync(rs);

    // One pod's label change at a time: recompile everything, diff, apply the delta.
    const changeMs: number[] = [];
    const parts = { compile: [] as number[], diff: [] as number[], nft: [] as number[] };
    const statements: number[] = [];
    let pods = w.pods;
    for (let k = 0; k < CHANGES; k++) {
      const victim = (k * 37) % PODS;
      pods = pods.map((p, i) => (i === victim ? { ...p, labels: { ...p.labels, app: `a${(Number(p.labels.app!.slice(1)) + 1) % APPS}` } } : p));
      const c0 = performance.now();
      const desired = compile({ ...w, pods, node: 'n1' });
      parts.compile.push(performance.now() - c0);
      const r = await applier.sync(desired);
      changeMs.push(performance.now() - c0);
      parts.diff.push(r.diffMs);
      parts.nft.push(r.nftMs);
      statements.push(r.statements);
    }
    const noop0 = performance.now();
    const noop = await applier.sync(compile({ ...w, pods, node: 'n1' }));
    const noopMs = performance.now() - noop0;

    // Floor of a small change: one nft process applying one element (spawn + netns + transaction).
    const small: number[] = [];
    for (let i = 0; i < 10; i++) {
      const f0 = performance.now();
      await nft.apply(`add element inet ${rs.table} egress4 { 10.81.0.${i} : drop }\ndelete element inet ${rs.table} egress4 { 10.81.0.${i} }\n`);
      small.push(performance.now() - f0);
    }
    const p50 = (xs: number[]) => round(percentile(xs, 50));
    const result = {
      bench: 'policy',
      pods: PODS,
      policies: POLICIES,
      compileMs: round(compileMs),
      firstApplyMs: round(firstApplyMs),
      firstApplyStatements: first.statements,
      objects,
      nftListLines: listed,
      labelChangeMs: { p50: round(percentile(changeMs, 50)), p99: round(percentile(changeMs, 99)), max: round(Math.max(...changeMs)) },
      labelChangeStatements: { p50: percentile(statements, 50), max: Math.max(...statements) },
      labelChangePartsP50Ms: { compile: p50(parts.compile), diff: p50(parts.diff), nft: p50(parts.nft) },
      floorSmallNftMs: p50(small),
      loadAverage1m: round(loadavg()[0]!, 2),
      noopSyncMs: round(noopMs),
      noopStatements: noop.statements,
      floorFullNftMs: round(percentile(floors, 50)),
    };
    console.log(`${POLICIES} policies x ${PODS} pods (all local, IPv4)`);
    console.log(`compile ${result.compileMs} ms; compile + first apply ${result.firstApplyMs} ms (${first.statements} nft statements)`);
    console.log(`objects: ${JSON.stringify(objects)}; \`nft list table\` ${listed} lines`);
    console.log(`one pod's label change (compile + diff + nft, ${CHANGES} changes): p50 ${result.labelChangeMs.p50} ms, p99 ${result.labelChangeMs.p99} ms; statements p50 ${result.labelChangeStatements.p50}, max ${result.labelChangeStatements.max}`);
    console.log(`  of which (p50) compile ${result.labelChangePartsP50Ms.compile} ms, diff ${result.labelChangePartsP50Ms.diff} ms, nft ${result.labelChangePartsP50Ms.nft} ms; floor: one nft -f of a one-element change ${result.floorSmallNftMs} ms`);
    console.log(`no-op sync: ${result.noopSyncMs} ms, ${noop.statements} statements`);
    console.log(`floor: nft -f of the same full ruleset ${result.floorFullNftMs} ms (median of 3); load average ${result.loadAverage1m} on ${cpus().length} cores`);
    return result;
  } finally {
    await deleteNamespace(NS);
  }
}
