/**
 * Kubernetes' 48 NetworkPolicy e2e cases (test/support/netpol-cases.ts) against
 *   1. the pure reference evaluator (operator/policy/semantics.ts), and
 *   2. the compiled nftables objects of every node, run by the interpreter (operator/policy/interpret.ts):
 *      a flow passes the forward hook of the source pod's node (egress), then, when the destination
 *      lives elsewhere, the forward hook of the destination's node (ingress).
 * Each case runs in IPv4 and IPv6, with every pod on one node and with the pods spread over three
 * nodes. Every cell (from, to, port/proto) must agree with the expectation: 0 wrong cells.
 */
import { describe, expect, it } from 'vitest';
import { compile } from '../../operator/policy/compile.js';
import { forwardVerdict } from '../../operator/policy/interpret.js';
import { allows } from '../../operator/policy/semantics.js';
import { CASES, caseWorld, expectFor, expected } from '../support/netpol-cases.js';

const NS = ['x', 'y', 'z'];
const POD = ['a', 'b', 'c'];
function addrs(p: string): string[] {
  const [ns, name] = p.split('/') as [string, string];
  const i = NS.indexOf(ns) + 1;
  const j = POD.indexOf(name) + 10;
  return [`10.244.${i}.${j}`, `fd00:10:244:${i}::${j}`];
}
const placements: Record<string, (p: string) => string> = {
  'one node': () => 'n1',
  'three nodes': (p) => `n${(NS.indexOf(p.split('/')[0]!) + POD.indexOf(p.split('/')[1]!)) % 3}`,
};

describe('the 48 upstream NetworkPolicy cases', () => {
  it('has 42 TCP, 3 UDP and 3 SCTP cases', () => {
    expect(CASES).toHaveLength(48);
    const byProto = (p: string) => CASES.filter((c) => c.probes.every((x) => x.proto === p) || (p === 'TCP' && c.probes.some((x) => x.proto === 'TCP'))).length;
    expect([byProto('TCP'), CASES.filter((c) => c.probes.every((x) => x.proto === 'UDP')).length, byProto('SCTP')]).toEqual([42, 3, 3]);
  });

  for (const c of CASES)
    for (const family of [4, 6] as const)
      for (const [placement, nodeOf] of Object.entries(placements))
        it(`#${c.id} ${c.name} (IPv${family}, ${placement})`, () => {
          const wrong: string[] = [];
          let cells = 0;
          for (const [si, step] of c.steps.entries()) {
            const world = caseWorld(c, si, addrs, nodeOf, family);
            const nodes = [...new Set(world.pods.map((p) => p.nodeName!))];
            const rulesets = Object.fromEntries(nodes.map((n) => [n, compile({ ...world, node: n })]));
            const ip = (p: string) => addrs(p).find((a) => a.includes(':') === (family === 6))!;
            for (const probe of c.probes) {
              const e = expectFor(step, probe);
              for (const from of c.pods)
                for (const to of c.pods) {
                  if (from === to) continue;
                  cells++;
                  const want = expected(e, from, to);
                  const flow = { src: ip(from), dst: ip(to), protocol: probe.proto, port: probe.port };
                  const ref = allows(world, flow);
                  const pkt = { src: flow.src, dst: flow.dst, proto: probe.proto.toLowerCase() as 'tcp', dport: probe.port };
                  const [nf, nt] = [nodeOf(from), nodeOf(to)];
                  let got = forwardVerdict(rulesets[nf]!, pkt).verdict === 'accept';
                  if (got && nt !== nf) got = forwardVerdict(rulesets[nt]!, pkt).verdict === 'accept';
                  const cell = `step ${si} ${probe.proto}/${probe.port} ${from}->${to}`;
                  if (ref !== want) wrong.push(`${cell}: reference ${ref}, expected ${want}`);
                  if (got !== want) wrong.push(`${cell}: compiled ${got}, expected ${want}`);
                }
            }
          }
          expect(cells).toBeGreaterThan(0);
          expect(wrong).toEqual([]);
        });
});
