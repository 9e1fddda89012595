import { describe, expect, it } from 'vitest';
import { fabricConfigSpec } from '../../operator/api/fabricconfig.js';
import { MAX_SEGMENT_ROUTES, segmentObjectName } from '../../operator/api/segment.js';
import type { PlanNode } from '../../operator/plan/plan.js';
import { directRoutesFrom, planSegment, segmentsOf } from '../../operator/plan/segment.js';

const cfg = fabricConfigSpec.parse({});
const n = (name: string, ips: PlanNode['ips'], cidrs: string[], extra: Partial<PlanNode> = {}): PlanNode => ({
  name,
  labels: {},
  annotations: {},
  ips,
  allocations: cidrs.map((cidr) => ({ cidr, pool: 'p' })),
  l2Subnets: [],
  ...extra,
});
const SUB = 'subnet:10.0.1.0/24';
const rack = [
  n('r1n3', { 4: '10.0.1.13' }, ['10.244.2.0/24'], { l2Subnets: ['10.0.1.0/24'] }),
  n('r1n1', { 4: '10.0.1.11' }, ['10.244.0.0/24'], { l2Subnets: ['10.0.1.0/24'] }),
  n('r1n2', { 4: '10.0.1.12' }, ['10.244.1.0/24'], { l2Subnets: ['10.0.1.0/24'] }),
];

describe('segmentObjectName', () => {
  it.each([
    { family: 4 as const, key: 'label:rack-1', want: /^v4-label-rack-1-[0-9a-f]{8}$/ },
    { family: 6 as const, key: 'subnet:fd00:1::/64', want: /^v6-subnet-fd00-1-64-[0-9a-f]{8}$/ },
    { family: 4 as const, key: 'label:Hall_A.Row.7', want: /^v4-label-hall-a-row-7-[0-9a-f]{8}$/ },
    { family: 4 as const, key: `label:${'x'.repeat(63)}`, want: /^v4-label-x{34}-[0-9a-f]{8}$/ },
  ])('$key → a DNS label', ({ family, key, want }) => {
    const name = segmentObjectName(family, key);
    expect(name).toMatch(want);
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });
  it('keys that read the same once made a name still get different names; a key keeps its name', () => {
    expect(segmentObjectName(4, 'label:Rack1')).not.toBe(segmentObjectName(4, 'label:rack1'));
    expect(segmentObjectName(4, 'label:rack1')).not.toBe(segmentObjectName(6, 'label:rack1'));
    expect(segmentObjectName(4, 'label:rack1')).toBe(segmentObjectName(4, 'label:rack1'));
  });
});

describe('segmentsOf', () => {
  it.each([
    { name: 'detected subnet', node: rack[0]!, want: [{ family: 4, key: SUB }] },
    { name: 'label: one per family the node has an address of', node: n('d', { 4: '10.0.9.1', 6: 'fd00::1' }, [], { labels: { 'podfabric.io/l2-segment': 'hall' } }), want: [{ family: 4, key: 'label:hall' }, { family: 6, key: 'label:hall' }] },
    { name: 'label on an IPv4-only node: no IPv6 segment', node: n('e', { 4: '10.0.9.1' }, [], { labels: { 'podfabric.io/l2-segment': 'hall' } }), want: [{ family: 4, key: 'label:hall' }] },
    { name: 'no segment', node: n('f', { 4: '10.0.9.1' }, []), want: [] },
  ])('$name', ({ node, want }) => {
    expect(segmentsOf(node, cfg)).toEqual(want.map((w) => ({ ...w, name: segmentObjectName(w.family as 4 | 6, w.key) })));
  });
});

describe('planSegment', () => {
  it('every member of the family, sorted by destination, with the reason', () => {
    const p = planSegment(4, SUB, [...rack, n('other', { 4: '10.0.2.11' }, ['10.244.3.0/24'], { l2Subnets: ['10.0.2.0/24'] })], cfg);
    expect(p).toEqual({
      name: segmentObjectName(4, SUB),
      spec: {
        key: SUB,
        family: 4,
        reason: 'SameSubnet',
        routes: [
          { destination: '10.244.0.0/24', via: '10.0.1.11', node: 'r1n1' },
          { destination: '10.244.1.0/24', via: '10.0.1.12', node: 'r1n2' },
          { destination: '10.244.2.0/24', via: '10.0.1.13', node: 'r1n3' },
        ],
      },
    });
  });

  it('label segments across subnets; IPv6 routes via IPv6 addresses; a member without the family is left out', () => {
    const lab = { 'podfabric.io/l2-segment': 'hall-a' };
    const x = n('x', { 4: '10.0.1.11', 6: 'fd00:1::11' }, ['10.244.0.0/24', 'fd00:244::/64'], { labels: lab });
    const y = n('y', { 4: '10.0.2.11' }, ['10.244.1.0/24'], { labels: lab });
    const z = n('z', { 4: '10.0.1.12' }, ['10.244.2.0/24'], { l2Subnets: ['10.0.1.0/24'] }); // unlabelled: not a member
    expect(planSegment(4, 'label:hall-a', [x, y, z], cfg).spec?.routes.map((r) => r.node)).toEqual(['x', 'y']);
    expect(planSegment(4, 'label:hall-a', [x, y, z], cfg).spec?.reason).toBe('SegmentLabel');
    expect(planSegment(6, 'label:hall-a', [x, y, z], cfg).spec?.routes).toEqual([{ destination: 'fd00:244::/64', via: 'fd00:1::11', node: 'x' }]);
  });

  it('no route → no object; a member without a block adds none', () => {
    expect(planSegment(4, SUB, [n('a', { 4: '10.0.1.11' }, [], { l2Subnets: ['10.0.1.0/24'] })], cfg)).toEqual({ name: segmentObjectName(4, SUB), spec: undefined });
    expect(planSegment(6, SUB, rack, cfg).spec).toBeUndefined();
  });

  it('too many routes: the first MAX kept, the rest counted and reported', () => {
    const many = Array.from({ length: MAX_SEGMENT_ROUTES + 3 }, (_, i) => n(`m${i}`, { 4: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}` }, [`10.${100 + Math.floor(i / 256)}.${i % 256}.0/24`], { labels: { 'podfabric.io/l2-segment': 'big' } }));
    const p = planSegment(4, 'label:big', many, cfg);
    expect(p.spec?.routes.length).toBe(MAX_SEGMENT_ROUTES);
    expect(p.spec?.omitted).toBe(3);
    expect(p.problem?.reason).toBe('SegmentTooLarge');
  });
});

describe('directRoutesFrom', () => {
  const seg = planSegment(4, SUB, rack, cfg).spec!;
  it('every route but the node\'s own', () => {
    expect(directRoutesFrom('r1n2', [seg]).map((r) => r.node)).toEqual(['r1n1', 'r1n3']);
    expect(directRoutesFrom('stranger', [seg]).length).toBe(3);
  });
  it('two families merge, sorted; a destination listed twice is installed once', () => {
    const v6 = { routes: [{ destination: 'fd00:244::/64', via: 'fd00:1::11', node: 'r1n1' }] };
    const stale = { routes: [{ destination: '10.244.0.0/24', via: '10.0.9.9', node: 'old' }] };
    expect(directRoutesFrom('r1n2', [seg, v6, stale]).map((r) => `${r.destination} via ${r.via}`)).toEqual(['10.244.0.0/24 via 10.0.1.11', '10.244.2.0/24 via 10.0.1.13', 'fd00:244::/64 via fd00:1::11']);
  });
  it('no segments → no routes', () => expect(directRoutesFrom('x', [])).toEqual([]));
});
