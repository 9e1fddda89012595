/**
 * Fail closed for new pods: with the node's pod CIDRs, the table drops traffic from and to any
 * address inside them that no known local pod holds, so a pod the agent has not seen yet (or whose
 * IP it has not seen yet) sends and receives nothing until its policies are programmed.
 */
import { describe, expect, it } from 'vitest';
import { desiredPolicyState } from '../../operator/policy/desired.js';
import { forwardVerdict } from '../../operator/policy/interpret.js';

const pod = (ns: string, name: string, ip: string | undefined, node = 'n1') => ({
  metadata: { namespace: ns, name, labels: { pod: name } },
  spec: { nodeName: node, containers: [{ name: 'c' }] },
  status: { phase: ip ? 'Running' : 'Pending', ...(ip ? { podIPs: [{ ip }] } : {}) },
});
const ns = [{ metadata: { name: 'x' } }];
const pods = [pod('x', 'a', '10.1.0.2'), pod('x', 'b', '10.1.0.3'), pod('x', 'r', '10.2.0.2', 'n2'), pod('x', 'v6', 'fd00:1::2'), pod('x', 'pending', undefined)];
const v = (rs: ReturnType<typeof desiredPolicyState>['ruleset'], src: string, dst: string) => forwardVerdict(rs, { src, dst, proto: 'tcp', dport: 80 }).verdict;

describe('fail closed for addresses the agent does not know', () => {
  const rs = desiredPolicyState({ policies: [], namespaces: ns, pods, node: 'n1', podCIDRs: ['10.1.0.0/24', 'fd00:1::/64'] }).ruleset;

  it.each([
    ['known local → known local', '10.1.0.2', '10.1.0.3', 'accept'],
    ['remote → known local', '10.2.0.2', '10.1.0.2', 'accept'],
    ['unknown local → known local', '10.1.0.9', '10.1.0.2', 'drop'],
    ['unknown local → remote', '10.1.0.9', '10.2.0.2', 'drop'],
    ['remote → unknown local', '10.2.0.2', '10.1.0.9', 'drop'],
    ['known local → unknown local', '10.1.0.3', '10.1.0.9', 'drop'],
    ['outside → outside (not ours)', '192.0.2.1', '198.51.100.1', 'accept'],
    ['v6 known → v6 unknown', 'fd00:1::2', 'fd00:1::9', 'drop'],
    ['v6 remote → v6 known', 'fd00:2::2', 'fd00:1::2', 'accept'],
  ])('%s: %s → %s %s', (_what, src, dst, want) => {
    expect(v(rs, src, dst)).toBe(want);
  });

  it('the pod is let through as soon as the agent knows its IP; its isolation is in place at that moment', () => {
    const known = [...pods, pod('x', 'new', '10.1.0.9')];
    const deny = { metadata: { namespace: 'x', name: 'deny' }, spec: { podSelector: { matchLabels: { pod: 'new' } }, policyTypes: ['Ingress'] } };
    const open = desiredPolicyState({ policies: [], namespaces: ns, pods: known, node: 'n1', podCIDRs: ['10.1.0.0/24'] }).ruleset;
    expect(v(open, '10.1.0.9', '10.1.0.2')).toBe('accept');
    expect(v(open, '10.1.0.2', '10.1.0.9')).toBe('accept');
    const isolated = desiredPolicyState({ policies: [deny], namespaces: ns, pods: known, node: 'n1', podCIDRs: ['10.1.0.0/24'] }).ruleset;
    expect(v(isolated, '10.1.0.2', '10.1.0.9')).toBe('drop');
    expect(v(isolated, '10.1.0.9', '10.1.0.2')).toBe('accept');
  });

  it('without pod CIDRs (no plan yet) nothing extra is dropped', () => {
    const rs0 = desiredPolicyState({ policies: [], namespaces: ns, pods, node: 'n1' }).ruleset;
    expect(v(rs0, '10.1.0.9', '10.1.0.2')).toBe('accept');
    expect(rs0.sets.known4).toBeUndefined();
  });
});
