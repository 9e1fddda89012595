/**
 * The lab in dual stack (IPv4 + IPv6 pools, sessions in both families, IPv6 across the spine): pods get
 * one address per family from their node's blocks, and reach every other pod in both families — within a
 * rack over the host route, across racks through the ToRs — without NAT.
 * Owns the pf-lab-* namespaces like lab.test.ts (files run one after the other).
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeFabricObj } from '../../operator/api/kinds.js';
import { cidrContainsIP, parseCidr, parseIP } from '../../operator/lib/ip.js';
import { vtyshJson } from '../../hack/lab/lib/frr.js';
import { conflistPath, down, labRest, status, up, type LabPod, type LabState } from '../../hack/lab/lab.js';
import { sourceSeenBy, traceroute } from '../support/pods.js';
import { API_PATH as API } from '../../operator/api/common.js';

let s: LabState;
const pod = (node: string): LabPod => s.pods.find((p) => p.node === node)!;
const v6 = (p: LabPod) => p.ips.find((ip) => ip.includes(':'))!;
const v4 = (p: LabPod) => p.ips.find((ip) => !ip.includes(':'))!;
const inside = (cidr: string, ip: string) => {
  const c = parseCidr(cidr)!;
  const a = parseIP(ip)!;
  return cidrContainsIP(c, a.family, a.value);
};

beforeAll(async () => {
  s = await up({ racks: 2, nodesPerRack: 2, dualStack: true, podsPerNode: 1, controllers: 1 }, { skipBuild: true });
}, 300_000);

afterAll(async () => {
  await down();
}, 120_000);

describe('podfabric lab, dual stack', () => {
  it('every node has one block per family; every pod one address per family from its node; the conflist has one range per family', async () => {
    const rest = labRest(s);
    try {
      for (const n of s.nodes) {
        const f = await rest.get<NodeFabricObj>(`${API}/nodefabrics/${n.name}`);
        const cidrs = f.spec.podCIDRs ?? [];
        expect(cidrs.map((c) => parseCidr(c)!.family).sort()).toEqual([4, 6]);
        expect(f.status?.sessionsEstablished).toBe(2);
        const p = pod(n.name);
        expect(p.ips).toHaveLength(2);
        for (const ip of p.ips) expect(cidrs.some((c) => inside(c, ip))).toBe(true);
        const conf = JSON.parse(await readFile(conflistPath(n.name), 'utf8')) as { plugins: Array<{ type: string; ipam?: { ranges?: unknown[][] } }> };
        const bridge = conf.plugins.find((x) => x.type === 'bridge')!;
        expect(bridge.ipam?.ranges).toHaveLength(2);
      }
    } finally {
      rest.close();
    }
  });

  it('every pod pings every other pod in both families', async () => {
    const r = await status(s);
    expect(r.matrix).toHaveLength(4 * 3 * 2);
    expect(r.matrix.filter((m) => m.ip.includes(':'))).toHaveLength(12);
    expect(r.matrix.filter((m) => !m.ok)).toEqual([]);
  });

  it('IPv6 prefixes of both racks reach the spine and the other ToR', async () => {
    for (const router of ['pf-lab-spine', 'pf-lab-tor1', 'pf-lab-tor2']) {
      const fib = Object.keys(await vtyshJson<Record<string, unknown>>(router, 'show ipv6 route bgp json'));
      const rest = labRest(s);
      try {
        for (const n of s.nodes) {
          const c6 = (await rest.get<NodeFabricObj>(`${API}/nodefabrics/${n.name}`)).spec.podCIDRs!.find((c) => c.includes(':'))!;
          // A ToR learns its own rack's prefixes from the nodes and the other rack's through the spine.
          expect(fib, `${router} misses ${c6}`).toContain(c6);
        }
      } finally {
        rest.close();
      }
    }
  });

  it('IPv6 within a rack takes the host route (no ToR hop); across racks it goes through the ToR', async () => {
    const a = pod('r1n1');
    expect(await traceroute(a, v6(pod('r1n2')))).toEqual([expect.stringMatching(/^fd00:10:244:[0-9a-f:]*:1$/), 'fd00:20:1::12', v6(pod('r1n2'))]);
    const cross = await traceroute(a, v6(pod('r2n1')));
    expect(cross).toContain('fd00:20:1::1');
    expect(cross.at(-1)).toBe(v6(pod('r2n1')));
  });

  it('no NAT in either family: the receiver sees the sender pod address', async () => {
    const src = pod('r1n2');
    const dst = pod('r2n2');
    expect(await sourceSeenBy(src, dst, v6(dst))).toBe(v6(src));
    expect(await sourceSeenBy(src, dst, v4(dst), 9998)).toBe(v4(src));
  });
});
