/**
 * NetworkPolicy against the REAL kernel: a node namespace (bridge cni0 with br_netfilter, like a
 * kube-proxy node) and seven pod namespaces (x/a x/b x/c y/a y/b z/a z/b) running TCP and UDP echo
 * servers on 80 and 81. The compiled ruleset is applied by the applier with the real nft, then real
 * connections from inside the pods are the oracle for a selection of the upstream e2e cases; plus a
 * Service ClusterIP (a DNAT in another table, as kube-proxy's), the node reaching an isolated pod,
 * delta syncs compared with a fresh full apply, and an established flow cut when a policy tightens.
 * SCTP cannot be tested: this kernel has no SCTP sockets (its rules are compiled and loaded, see the
 * full apply of case 47 below).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conntrackRunner } from '../../operator/nftables/conntrack.js';
import { PolicyEnforcer } from '../../operator/nftables/enforcer.js';
import { nftRunner, PolicyTableApplier, type NftRunner } from '../../operator/nftables/applier.js';
import { compile, DEFAULT_TABLE } from '../../operator/policy/compile.js';
import type { Ruleset } from '../../operator/policy/objects.js';
import { run } from '../../operator/lib/exec.js';
import { namespaceInfo, parsePolicy, type PodInfo } from '../../operator/policy/model.js';
import { CASES, caseWorld, expectFor, expected, SERVE_PORTS, type CaseWorld } from '../support/netpol-cases.js';
import { createKernelNode, waitForLine, type KernelNode } from '../support/netpol-kernel.js';

const PODS = ['x/a', 'x/b', 'x/c', 'y/a', 'y/b', 'z/a', 'z/b'];
const SVC_IP = '10.96.0.10';
let node: KernelNode;
let enforcer: PolicyEnforcer;
let applier: PolicyTableApplier;
let runner: NftRunner;
const nft = (args: string[], ns = () => node.ns) => run(['ip', 'netns', 'exec', ns(), 'nft', ...args]);

async function enforce(world: CaseWorld): Promise<Ruleset> {
  const rs = compile({ ...world, node: 'n1' });
  await enforcer.enforce(rs);
  return rs;
}

/** Probes every cell of a case step; re-probes wrong cells (rules land asynchronously in real CNIs: upstream retries for 10 s). */
async function wrongCells(id: number, step: number, family: 4 | 6): Promise<string[]> {
  const c = CASES.find((x) => x.id === id)!;
  const ip = (p: string) => node.addrs(p).find((a) => a.includes(':') === (family === 6))!;
  type Cell = { from: string; to: string; port: number; proto: 'tcp' | 'udp'; want: boolean };
  let cells: Cell[] = [];
  for (const probe of c.probes)
    for (const from of c.pods)
      for (const to of c.pods)
        if (from !== to) cells.push({ from, to, port: probe.port, proto: probe.proto.toLowerCase() as 'tcp', want: expected(expectFor(c.steps[step]!, probe), from, to) });
  let wrong: string[] = [];
  for (let round = 0; round < 3 && cells.length; round++) {
    const results = await Promise.all(
      c.pods.map(async (from) => {
        const mine = cells.filter((x) => x.from === from);
        const got = mine.length ? await node.connect(from, mine.map((x) => ({ host: ip(x.to), port: x.port, proto: x.proto }))) : [];
        return mine.map((x, i) => ({ ...x, got: got[i] }));
      }),
    );
    const bad = results.flat().filter((x) => x.got !== x.want);
    wrong = bad.map((x) => `${x.proto}/${x.port} ${x.from}->${x.to}: got ${x.got}, want ${x.want}`);
    cells = bad;
  }
  return wrong;
}

beforeAll(async () => {
  node = await createKernelNode(PODS);
  // A Service ClusterIP the way kube-proxy programs one: DNAT in prerouting, in its own table.
  await run(['ip', 'netns', 'exec', node.ns, 'nft', '-f', '-'], {
    input: `table ip pf-np-svc {\n chain pre { type nat hook prerouting priority dstnat; ip daddr ${SVC_IP} tcp dport 80 dnat to ${node.addrs('x/a')[0]}:80; }\n}\n`,
  });
  runner = nftRunner({ netns: node.ns });
  enforcer = new PolicyEnforcer(runner, conntrackRunner({ netns: node.ns }), () => ['10.77.0.1', 'fd00:77::1']);
  applier = enforcer.applier;
});

afterAll(async () => {
  runner?.close?.();
  await node?.close();
});

const KERNEL_CASES: Array<[number, 4 | 6]> = [
  [1, 4], [2, 4], [10, 4], [17, 4], [19, 4], [22, 4], [28, 4], [30, 4], [35, 4], [36, 4], [43, 4], [44, 4],
  [1, 6], [19, 6], [35, 6],
];

describe('upstream cases against real connections', () => {
  it('everything connects before any policy', async () => {
    await enforce({ policies: [], namespaces: [], pods: [] });
    const r = await node.connect('x/a', PODS.slice(1).map((p) => ({ host: node.addrs(p)[0]!, port: 80, proto: 'tcp' as const })));
    expect(r).toEqual(PODS.slice(1).map(() => true));
  });

  it.each(KERNEL_CASES)('case #%i in IPv%i: 0 wrong cells', async (id, family) => {
    const c = CASES.find((x) => x.id === id)!;
    const wrong: string[] = [];
    for (const [si] of c.steps.entries()) {
      await enforce(caseWorld(c, si, node.addrs, () => 'n1', family));
      wrong.push(...(await wrongCells(id, si, family)).map((w) => `step ${si}: ${w}`));
    }
    expect(wrong).toEqual([]);
  });

  it('SCTP rules (case #47) load into the kernel', async () => {
    const rs = await enforce(caseWorld(CASES.find((x) => x.id === 47)!, 0, node.addrs, () => 'n1', 4));
    expect(Object.keys(rs.chains).length).toBeGreaterThan(2);
    expect((await nft(['list', 'table', 'inet', DEFAULT_TABLE])).stdout).toMatch(/sctp/);
  });
});

const X = ['x', 'y', 'z'].map((n) => namespaceInfo(n));
const podsOf = (labels: Record<string, Record<string, string>> = {}): PodInfo[] =>
  PODS.map((p) => {
    const [namespace, name] = p.split('/') as [string, string];
    return { namespace, name, labels: { pod: name, ...labels[p] }, ips: node.addrs(p), nodeName: 'n1', ports: SERVE_PORTS };
  });
const policy = (o: unknown) => {
  const r = parsePolicy(o);
  if (!r.ok) throw new Error(r.error);
  return r.policy;
};
const tcp = (host: string, port = 80) => ({ host, port, proto: 'tcp' as const });

describe('enforcement points', () => {
  it('through a Service ClusterIP: ingress and egress are judged on the backend pod (after DNAT)', async () => {
    const toA = policy({ metadata: { name: 'to-a', namespace: 'x' }, spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b', 'c'] }] } }] }] } });
    const cOut = policy({ metadata: { name: 'c-out', namespace: 'x' }, spec: { podSelector: { matchLabels: { pod: 'c' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: { matchLabels: { pod: 'a' } } }] }] } });
    await enforce({ policies: [toA, cOut], namespaces: X, pods: podsOf() });
    expect(await node.connect('x/b', [tcp(SVC_IP)])).toEqual([true]);
    expect(await node.connect('y/a', [tcp(SVC_IP)])).toEqual([false]);
    // x/c may only talk to pod a: the ClusterIP (rewritten to x/a) passes, x/b directly does not.
    expect(await node.connect('x/c', [tcp(SVC_IP), tcp(node.addrs('x/b')[0]!)])).toEqual([true, false]);
  });

  it('the node itself reaches a pod that denies all ingress (kubelet probes); other pods do not', async () => {
    const deny = policy({ metadata: { name: 'deny', namespace: 'x' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } });
    await enforce({ policies: [deny], namespaces: X, pods: podsOf() });
    expect(await node.connect(node.ns, [tcp(node.addrs('x/a')[0]!), tcp(node.addrs('x/a')[1]!)])).toEqual([true, true]);
    expect(await node.connect('y/a', [tcp(node.addrs('x/a')[0]!)])).toEqual([false]);
  });

  it('fail closed: a pod whose address the agent does not know yet sends and receives nothing in the pod CIDRs until it is programmed', async () => {
    const podCIDRs = ['10.77.0.0/24', 'fd00:77::/64'];
    const deny = policy({ metadata: { name: 'deny-zb', namespace: 'z' }, spec: { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Ingress'] } });
    // z/b runs, but the agent has not seen its Pod (or its IP) yet.
    await enforcer.enforce(compile({ policies: [deny], namespaces: X, pods: podsOf().filter((p) => p.name !== 'b' || p.namespace !== 'z'), node: 'n1', podCIDRs }));
    const zb = node.addrs('z/b');
    expect(await node.connect('z/b', [tcp(node.addrs('x/a')[0]!), tcp(node.addrs('x/a')[1]!)])).toEqual([false, false]);
    expect(await node.connect('x/a', [tcp(zb[0]!), tcp(zb[1]!), tcp(node.addrs('x/b')[0]!)])).toEqual([false, false, true]);
    // Known: its isolation (deny-zb) is in place in the same transaction that lets it talk.
    await enforcer.enforce(compile({ policies: [deny], namespaces: X, pods: podsOf(), node: 'n1', podCIDRs }));
    expect(await node.connect('z/b', [tcp(node.addrs('x/a')[0]!), tcp(node.addrs('x/a')[1]!)])).toEqual([true, true]);
    expect(await node.connect('x/a', [tcp(zb[0]!), tcp(zb[1]!)])).toEqual([false, false]);
  });
});

/** `nft -j list table` without handles, set elements sorted, rules keyed by (chain, position): comparable across namespaces. */
async function normalizedTable(ns: string): Promise<string[]> {
  const j = JSON.parse((await run(['ip', 'netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', DEFAULT_TABLE])).stdout) as { nftables: Array<Record<string, Record<string, unknown>>> };
  const pos = new Map<string, number>();
  return j.nftables
    .filter((o) => !o.metainfo)
    .map((o) => {
      const [kind, body] = Object.entries(o)[0]!;
      const { handle: _h, ...rest } = body;
      if (Array.isArray(rest.elem)) rest.elem = rest.elem.map((e) => JSON.stringify(e)).sort();
      if (kind === 'rule') {
        const n = pos.get(String(rest.chain)) ?? 0;
        pos.set(String(rest.chain), n + 1);
        rest.position = n;
      }
      return `${kind} ${JSON.stringify(rest)}`;
    })
    .sort();
}

describe('applier', () => {
  it('a no-op sync writes nothing; a label change writes a few statements and leaves what a full apply would; other tables untouched', async () => {
    const svcBefore = (await nft(['list', 'table', 'ip', 'pf-np-svc'])).stdout;
    const pol = policy({ metadata: { name: 'from-b2', namespace: 'x' }, spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }], ports: [{ port: 'serve-80-tcp' }] }] } });
    const before = { policies: [pol], namespaces: X, pods: podsOf() };
    await enforce(before);
    const listed = await normalizedTable(node.ns);
    expect(await applier.sync(compile({ ...before, node: 'n1' }))).toMatchObject({ statements: 0, full: false });
    expect(await normalizedTable(node.ns)).toEqual(listed);
    expect(await node.connect('x/b', [tcp(node.addrs('x/a')[0]!)])).toEqual([false]);

    const after = { ...before, pods: podsOf({ 'x/b': { pod2: 'updated' } }) };
    const r = await applier.sync(compile({ ...after, node: 'n1' }));
    console.log(`label change: ${r.statements} nft statements (${r.elements} elements) in ${r.ms.toFixed(1)} ms:\n${r.text}`);
    expect(r.full).toBe(false);
    expect(r.statements).toBeGreaterThan(0);
    expect(r.statements).toBeLessThanOrEqual(4);
    expect(await node.connect('x/b', [tcp(node.addrs('x/a')[0]!), tcp(node.addrs('x/a')[0]!, 81)])).toEqual([true, false]);

    // The same desired state applied from scratch in another namespace lists identically.
    const ref = `${node.ns.replace(/node$/, '')}ref`;
    await run(['ip', 'netns', 'add', ref]);
    try {
      const refRunner = nftRunner({ netns: ref });
      await new PolicyTableApplier(refRunner).sync(compile({ ...after, node: 'n1' }));
      refRunner.close?.();
      expect(await normalizedTable(node.ns)).toEqual(await normalizedTable(ref));
    } finally {
      await run(['ip', 'netns', 'del', ref]);
    }
    expect((await nft(['list', 'table', 'ip', 'pf-np-svc'])).stdout).toBe(svcBefore);
  });

  it('a chain flushed behind the applier’s back is seen as drift, and the next sync restores the table', async () => {
    const deny = policy({ metadata: { name: 'deny', namespace: 'x' }, spec: { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Ingress'] } });
    const rs = await enforce({ policies: [deny], namespaces: X, pods: podsOf() });
    expect(await enforcer.checkDrift()).toBeNull();
    const group = Object.keys(rs.chains).find((c) => c.startsWith('gi-'))!;
    await nft(['flush', 'chain', 'inet', DEFAULT_TABLE, group]);
    expect(await node.connect('y/a', [tcp(node.addrs('x/a')[0]!)])).toEqual([true]); // the hole
    expect(await enforcer.checkDrift()).toBe(`chain ${group}: 0 in the kernel, ${rs.chains[group]!.rules.length} committed`);
    const r = await enforcer.enforce(rs);
    expect(r.sync.full).toBe(true);
    expect(await enforcer.checkDrift()).toBeNull();
    expect(await node.connect('y/a', [tcp(node.addrs('x/a')[0]!)])).toEqual([false]);
  });

  it('tightening a policy cuts an established flow it now denies, and only that one', async () => {
    await enforce({ policies: [], namespaces: X, pods: podsOf() });
    const held = node.agnhost('y/a', ['hold', node.addrs('x/a')[0]!, '80']);
    const kept = node.agnhost('y/a', ['hold', node.addrs('y/b')[0]!, '80']);
    try {
      await Promise.all([waitForLine(held, /^connected$/), waitForLine(kept, /^connected$/)]);
      held.stdin!.write('one\n');
      await waitForLine(held, /^one$/);
      const deny = policy({ metadata: { name: 'deny', namespace: 'x' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } });
      const rs = compile({ policies: [deny], namespaces: X, pods: podsOf(), node: 'n1' });
      const { cut, ms, cutError } = await enforcer.enforce(rs);
      console.log(`sync + conntrack cut: ${ms.toFixed(0)} ms, ${cut.length} flow(s) cut`);
      expect(cutError).toBeUndefined();
      const cutText = cut.map((f) => `${f.src}->${f.replySrc}:${f.replySport}`);
      expect(cutText).toContain(`${node.addrs('y/a')[0]}->${node.addrs('x/a')[0]}:80`);
      expect(cutText).not.toContain(`${node.addrs('y/a')[0]}->${node.addrs('y/b')[0]}:80`);
      // The denied flow is dead: its next segment is a new, denied packet. The other flow still echoes.
      held.stdin!.write('two\n');
      kept.stdin!.write('three\n');
      await waitForLine(kept, /^three$/);
      await expect(waitForLine(held, /^two$/, 3000)).rejects.toThrow(/no line matching/);
    } finally {
      held.kill('SIGKILL');
      kept.kill('SIGKILL');
    }
  });
});
