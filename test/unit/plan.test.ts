import { describe, expect, it } from 'vitest';
import { bgpPeerSpec } from '../../operator/api/bgppeer.js';
import { fabricConfigSpec } from '../../operator/api/fabricconfig.js';
import { computePlan, inferL2Subnets, nodeIPs, segmentKey, type PlanNode } from '../../operator/plan/plan.js';
import { hashRouterId, selectPeers, validatePeer, type PeerInfo } from '../../operator/plan/peers.js';
import { segmentObjectName } from '../../operator/api/segment.js';

const cfg = fabricConfigSpec.parse({});
const n = (name: string, v4: string | undefined, cidrs: string[], extra: Partial<PlanNode> = {}): PlanNode => ({
  name,
  labels: {},
  annotations: {},
  ips: { ...(v4 ? { 4: v4 } : {}) },
  allocations: cidrs.map((cidr) => ({ cidr, pool: 'p' })),
  l2Subnets: [],
  ...extra,
});
const peer = (name: string, spec: Record<string, unknown>, ts = '2026-01-01T00:00:00Z'): PeerInfo => ({
  name,
  spec: bgpPeerSpec.parse(spec),
  creationTimestamp: ts,
});

describe('L2 adjacency (segmentKey)', () => {
  const a = n('a', '10.0.1.11', [], { l2Subnets: ['10.0.1.0/24'] });
  it.each([
    { name: 'detected subnet', node: a, family: 4 as const, config: cfg, want: 'subnet:10.0.1.0/24' },
    { name: 'label overrides detection', node: { ...a, labels: { 'podfabric.io/l2-segment': 'rack1' } }, family: 4 as const, config: cfg, want: 'label:rack1' },
    { name: 'no report yet → none', node: n('x', '10.0.1.12', []), family: 4 as const, config: cfg, want: null },
    { name: 'subnet not holding the node IP → none', node: n('y', '10.9.9.9', [], { l2Subnets: ['10.0.1.0/24'] }), family: 4 as const, config: cfg, want: null },
    { name: 'detection off', node: a, family: 4 as const, config: { ...cfg, hostRoutes: { ...cfg.hostRoutes, detectL2: false } }, want: null },
    { name: 'host routes off, even with a label', node: { ...a, labels: { 'podfabric.io/l2-segment': 'r' } }, family: 4 as const, config: { ...cfg, hostRoutes: { ...cfg.hostRoutes, enabled: false } }, want: null },
    { name: 'no IPv6 address → no IPv6 segment', node: a, family: 6 as const, config: cfg, want: null },
  ])('$name', ({ node, family, config, want }) => expect(segmentKey(node, family, config)).toBe(want));
});

describe('inferL2Subnets (before the node\'s agent reports)', () => {
  it.each([
    { name: 'a reported subnet holding the IP', ips: { 4: '10.0.1.13' }, known: ['10.0.1.0/24', '10.0.2.0/24'], want: ['10.0.1.0/24'] },
    { name: 'the most specific subnet wins', ips: { 4: '10.0.1.13' }, known: ['10.0.0.0/16', '10.0.1.0/24', '10.0.1.128/25'], want: ['10.0.1.0/24'] },
    { name: 'no subnet holds the IP → none', ips: { 4: '10.9.9.9' }, known: ['10.0.1.0/24'], want: [] },
    { name: 'per family, IPv4 first', ips: { 4: '10.0.1.13', 6: 'fd00:1::13' }, known: ['fd00:1::/64', '10.0.1.0/24', 'fd00:2::/64'], want: ['10.0.1.0/24', 'fd00:1::/64'] },
    { name: 'a family the node lacks is ignored', ips: { 6: 'fd00:1::13' }, known: ['10.0.1.0/24', 'fd00:1::/64'], want: ['fd00:1::/64'] },
    { name: 'garbage is skipped', ips: { 4: '10.0.1.13' }, known: ['nope', '10.0.1.0/24'], want: ['10.0.1.0/24'] },
  ])('$name', ({ ips, known, want }) => expect(inferL2Subnets(ips as PlanNode['ips'], known)).toEqual(want));

  it('puts the new node into its neighbours\' segment, so both sides plan host routes at once', () => {
    const x = n('x', '10.0.1.12', ['10.244.5.0/24']);
    const inferred = { ...x, l2Subnets: inferL2Subnets(x.ips, ['10.0.1.0/24']) };
    expect(segmentKey(x, 4, cfg)).toBeNull();
    expect(segmentKey(inferred, 4, cfg)).toBe('subnet:10.0.1.0/24');
  });
});

describe('computePlan', () => {
  const rack1 = [
    n('r1n1', '10.0.1.11', ['10.244.0.0/24'], { l2Subnets: ['10.0.1.0/24'] }),
    n('r1n2', '10.0.1.12', ['10.244.1.0/24'], { l2Subnets: ['10.0.1.0/24'] }),
    n('r1n3', '10.0.1.13', ['10.244.2.0/24'], { l2Subnets: ['10.0.1.0/24'] }),
  ];
  const rack2 = [n('r2n1', '10.0.2.11', ['10.244.3.0/24'], { l2Subnets: ['10.0.2.0/24'] })];
  const tor1 = peer('tor1', { peerAddress: '10.0.1.1', peerASN: 65100, communities: ['65000:1'], nodeSelector: { matchLabels: { rack: '1' } } });
  const everyone = peer('route-server', { peerAddress: '10.0.0.254', peerASN: 65000, communities: ['65000:2', '65000:1'], timers: { holdTime: 9, keepaliveInterval: 3 } });

  it('names its L2 segment and its L2Segment object, and lists no routes (those live in the segment)', () => {
    const r = computePlan({ ...rack1[0]!, labels: { rack: '1' } }, { config: cfg, validPeers: [tor1, everyone] });
    expect(r.spec).not.toHaveProperty('directRoutes');
    expect(r.spec.routing).toEqual({ l2Segment: 'subnet:10.0.1.0/24', segments: [segmentObjectName(4, 'subnet:10.0.1.0/24')] });
    expect(r.spec.podCIDRs).toEqual(['10.244.0.0/24']);
    expect(r.spec.routerId).toBe('10.0.1.11');
    expect(r.spec.asn).toBe(64512);
    // A neighbour's arrival changes nothing here: the spec does not depend on the other members.
    expect(computePlan({ ...rack1[0]!, labels: { rack: '1' } }, { config: cfg, validPeers: [tor1, everyone] }).spec).toEqual(r.spec);
    expect(computePlan(n('alone', '10.9.0.1', [], {}), { config: cfg, validPeers: [] }).spec.routing).toEqual({});
  });

  it('peers selected by label with resolved ASN and timers, beside the spec (not in it); no communities in the spec', () => {
    const r = computePlan({ ...rack1[0]!, labels: { rack: '1', 'podfabric.io/asn': '65011' } }, { config: cfg, validPeers: [tor1, everyone] });
    expect(r.spec).not.toHaveProperty('peers');
    expect(r.peers).toEqual([
      { address: '10.0.0.254', name: 'route-server', peerASN: 65000, localASN: 65011, holdTime: 9, keepaliveInterval: 3, connectRetry: 5 },
      { address: '10.0.1.1', name: 'tor1', peerASN: 65100, localASN: 65011, holdTime: 90, keepaliveInterval: 30, connectRetry: 5 },
    ]);
    expect(r.spec.advertisements).toEqual([{ prefix: '10.244.0.0/24', nextHop: '10.0.1.11' }]);
    const r2 = computePlan(rack2[0]!, { config: cfg, validPeers: [tor1, everyone] });
    expect(r2.peers.map((p) => p.name)).toEqual(['route-server']);
    // A peer change leaves the spec as it was: the controller has nothing to write.
    expect(computePlan(rack2[0]!, { config: cfg, validPeers: [] }).spec).toEqual(r2.spec);
  });

  it('dual-stack: one segment per family, advertisements per family', () => {
    const a = { ...n('a', '10.0.1.11', ['10.244.0.0/24', 'fd00:244::/64'], { l2Subnets: ['10.0.1.0/24', 'fd00:1::/64'] }), ips: { 4: '10.0.1.11', 6: 'fd00:1::11' } as PlanNode['ips'] };
    const r = computePlan(a, { config: cfg, validPeers: [] });
    expect(r.spec.routing?.segments).toEqual([segmentObjectName(4, 'subnet:10.0.1.0/24'), segmentObjectName(6, 'subnet:fd00:1::/64')]);
    expect(r.spec.advertisements!.map((x) => [x.prefix, x.nextHop])).toEqual([
      ['10.244.0.0/24', '10.0.1.11'],
      ['fd00:244::/64', 'fd00:1::11'],
    ]);
    expect(r.spec.nodeIPs).toEqual(['10.0.1.11', 'fd00:1::11']);
  });

  it('a block without a node IP of its family is reported, not advertised', () => {
    const r = computePlan(n('v4only', '10.0.1.11', ['fd00:244::/64']), { config: cfg, validPeers: [] });
    expect(r.spec.advertisements).toEqual([]);
    expect(r.problems).toEqual([expect.objectContaining({ reason: 'NoNodeIP' })]);
  });

  it('router ID: annotation, then IPv4, then a stable hash', () => {
    const base = n('node-7', undefined, []);
    expect(computePlan(base, { config: cfg, validPeers: [] }).spec.routerId).toBe(hashRouterId('node-7'));
    expect(computePlan({ ...base, annotations: { 'podfabric.io/router-id': '1.2.3.4' } }, { config: cfg, validPeers: [] }).spec.routerId).toBe('1.2.3.4');
    expect(hashRouterId('node-7')).toBe(hashRouterId('node-7'));
    expect(hashRouterId('node-7')).not.toBe(hashRouterId('node-8'));
    expect(hashRouterId('node-7')).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });
});

describe('peers', () => {
  it('duplicate address for one node: the oldest wins, the other is a conflict', () => {
    const old = peer('old', { peerAddress: '10.0.1.1', peerASN: 65100 }, '2026-01-01T00:00:00Z');
    const dup = peer('dup', { peerAddress: '10.0.1.1', peerASN: 65200 }, '2026-02-01T00:00:00Z');
    const { chosen, conflicts } = selectPeers(n('a', '10.0.1.11', []), [dup, old]);
    expect(chosen.map((p) => p.name)).toEqual(['old']);
    expect(conflicts).toEqual([{ peer: 'dup', winner: 'old', address: '10.0.1.1' }]);
  });

  it.each([
    { name: 'address inside a pool', spec: { peerAddress: '10.244.3.1', peerASN: 1 }, secret: 'none' as const, reasons: ['AddressInPodCIDR'] },
    { name: 'missing secret', spec: { peerAddress: '10.0.1.1', peerASN: 1, passwordSecretRef: { namespace: 'ns', name: 's' } }, secret: 'missing' as const, reasons: ['SecretMissing'] },
    { name: 'secret without key', spec: { peerAddress: '10.0.1.1', peerASN: 1, passwordSecretRef: { namespace: 'ns', name: 's' } }, secret: 'no-key' as const, reasons: ['SecretKeyMissing'] },
    { name: 'valid', spec: { peerAddress: '10.0.1.1', peerASN: 1, passwordSecretRef: { namespace: 'ns', name: 's' } }, secret: 'ok' as const, reasons: [] },
  ])('validatePeer: $name', ({ spec, secret, reasons }) => {
    const v = validatePeer(peer('p', spec), { poolCidrs: [{ pool: 'v4', cidr: '10.244.0.0/16' }], secret });
    expect(v.invalid.map((i) => i.reason)).toEqual(reasons);
  });
});

describe('nodeIPs', () => {
  it('prefers InternalIP per family and canonicalises', () => {
    expect(
      nodeIPs([
        { type: 'Hostname', address: 'n1' },
        { type: 'ExternalIP', address: '192.0.2.1' },
        { type: 'InternalIP', address: '10.0.1.11' },
        { type: 'InternalIP', address: 'FD00:1:0::11' },
      ]),
    ).toEqual({ 4: '10.0.1.11', 6: 'fd00:1::11' });
  });
});
