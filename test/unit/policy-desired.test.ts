/** The agent's entry points: raw objects → desired table; the enforcer with a fake nft and conntrack. */
import { describe, expect, it } from 'vitest';
import { PolicyEnforcer } from '../../operator/nftables/enforcer.js';
import { desiredPolicyState, isolationOf, samePolicyInputs } from '../../operator/policy/desired.js';

const podObj = (ns: string, name: string, ip: string, labels: Record<string, string>, node = 'n1') => ({
  metadata: { namespace: ns, name, labels },
  spec: { nodeName: node, containers: [{ ports: [{ name: 'web', containerPort: 8080 }] }] },
  status: { phase: 'Running', podIPs: [{ ip }] },
});
const inputs = {
  policies: [
    { metadata: { namespace: 'x', name: 'web' }, spec: { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ ports: [{ port: 'web' }] }] } },
    { metadata: { namespace: 'x', name: 'broken' }, spec: { podSelector: { matchLabels: { app: 'db' } }, egress: [{ ports: [{ port: 99999 }] }] } },
  ],
  namespaces: [{ metadata: { name: 'x', labels: { team: 'a' } } }],
  pods: [podObj('x', 'a', '10.0.0.1', { app: 'web' }), podObj('x', 'b', '10.0.0.2', { app: 'db' }), podObj('x', 'c', '10.0.0.3', { app: 'web' }, 'n2')],
  node: 'n1',
};

describe('desiredPolicyState', () => {
  it('compiles raw objects, reports the broken policy and isolates its pods both ways', () => {
    const d = desiredPolicyState(inputs);
    expect(d.errors).toEqual([{ key: 'x/broken', error: expect.stringMatching(/spec\.egress\[0\]\.ports\[0\]\.port: 99999/) }]);
    expect(d.counts).toMatchObject({ policies: 2, invalid: 1, localPods: 2, isolatedIngress: 2, isolatedEgress: 1 });
    expect(isolationOf(d.ruleset, '10.0.0.2')).toEqual({ ingress: expect.stringMatching(/^gi-/), egress: expect.stringMatching(/^ge-/) });
    expect(isolationOf(d.ruleset, '10.0.0.3')).toEqual({}); // on another node
    expect(isolationOf(desiredPolicyState({ ...inputs, pods: [podObj('x', 'a', 'FD00::0:1', { app: 'web' })] }).ruleset, 'fd00::1')).toEqual({ ingress: expect.stringMatching(/^gi-/) });
  });
});

describe('PolicyEnforcer', () => {
  it('applies, then cuts the flows the new table denies; a no-op sync neither writes nor lists conntrack', async () => {
    const scripts: string[] = [];
    const deleted: string[] = [];
    let lists = 0;
    const ct =
      'tcp      6 431999 ESTABLISHED src=10.0.0.3 dst=10.0.0.2 sport=40000 dport=5432 src=10.0.0.2 dst=10.0.0.3 sport=5432 dport=40000 [ASSURED] mark=0 use=1\n' +
      'tcp      6 431999 ESTABLISHED src=10.0.0.3 dst=10.0.0.1 sport=40001 dport=8080 src=10.0.0.1 dst=10.0.0.3 sport=8080 dport=40001 [ASSURED] mark=0 use=1\n';
    const e = new PolicyEnforcer(
      { apply: async (s) => void scripts.push(s), list: async () => null },
      { list: async (f) => (lists++, f === 4 ? ct : ''), delete: async (f) => void deleted.push(`${f.src}:${f.sport}`) },
      () => ['192.168.0.1'],
    );
    const r = await e.enforce(desiredPolicyState(inputs).ruleset);
    expect(r.sync.full).toBe(true);
    expect(deleted).toEqual(['10.0.0.3:40000']); // to the broken (fail-closed) db pod: cut; to web:8080: kept
    const again = await e.enforce(desiredPolicyState(inputs).ruleset);
    expect([again.sync.statements, scripts.length, lists]).toEqual([0, 1, 2]);
  });

  it('drift: a missing table or a chain with fewer rules makes the next enforce a full rewrite', async () => {
    let listing: string | null = null;
    const scripts: string[] = [];
    const e = new PolicyEnforcer({ apply: async (s) => void scripts.push(s), list: async () => listing }, { list: async () => '', delete: async () => undefined }, () => []);
    const rs = desiredPolicyState(inputs).ruleset;
    await e.enforce(rs);
    expect(await e.checkDrift()).toBe('table inet podfabric-policy is gone');
    expect((await e.enforce(rs)).sync.full).toBe(true);
    // A faithful listing (names, sizes, rule counts) is no drift; one rule short is.
    const body = [
      ...Object.values(rs.sets).map((s) => ({ set: { name: s.name, ...(s.elements.length ? { elem: s.elements } : {}) } })),
      ...Object.values(rs.maps).map((m) => ({ map: { name: m.name, elem: Object.keys(m.elements) } })),
      ...Object.values(rs.chains).flatMap((c) => [{ chain: { name: c.name } }, ...c.rules.map(() => ({ rule: { chain: c.name } }))]),
    ];
    listing = JSON.stringify({ nftables: [{ metainfo: {} }, ...body] });
    expect(await e.checkDrift()).toBeNull();
    listing = JSON.stringify({ nftables: body.filter((o, i) => !('rule' in o) || i !== body.findIndex((x) => 'rule' in x)) });
    expect(await e.checkDrift()).toMatch(/^chain \S+: \d+ in the kernel, \d+ committed$/);
    expect((await e.enforce(rs)).sync.full).toBe(true);
  });

  it('a conntrack failure is reported, not thrown', async () => {
    const e = new PolicyEnforcer({ apply: async () => undefined, list: async () => null }, { list: async () => Promise.reject(new Error('no conntrack')), delete: async () => undefined }, () => []);
    expect((await e.enforce(desiredPolicyState(inputs).ruleset)).cutError).toBe('no conntrack');
  });
});

describe('samePolicyInputs (the agent reuses its last table when it holds)', () => {
  const pod = { metadata: { name: 'a', namespace: 'n' } };
  const ns = { metadata: { name: 'n' } };
  const pol = { metadata: { name: 'p', namespace: 'n' }, spec: {} };
  const base = { policies: [pol], namespaces: [ns], pods: [pod], node: 'n1', podCIDRs: ['10.0.0.0/24'] };
  it('holds for the same objects in fresh arrays, fails for any changed input', () => {
    expect(samePolicyInputs(base, { ...base, pods: [pod], podCIDRs: ['10.0.0.0/24'] })).toBe(true);
    expect(samePolicyInputs(base, { ...base, pods: [{ ...pod }] })).toBe(false); // a changed object is a new object
    expect(samePolicyInputs(base, { ...base, pods: [] })).toBe(false);
    expect(samePolicyInputs(base, { ...base, namespaces: [ns, ns] })).toBe(false);
    expect(samePolicyInputs(base, { ...base, policies: [] })).toBe(false);
    expect(samePolicyInputs(base, { ...base, node: 'n2' })).toBe(false);
    expect(samePolicyInputs(base, { ...base, podCIDRs: ['10.0.1.0/24'] })).toBe(false);
    expect(samePolicyInputs(base, { ...base, table: 'other' })).toBe(false);
  });
});
