import { describe, expect, it } from 'vitest';
import { Ipam, type NodeInfo, type PoolInfo } from '../../operator/ipam/ipam.js';
import { selectorMatches } from '../../operator/api/selector.js';

const pool = (name: string, cidr: string, extra: Partial<PoolInfo> = {}): PoolInfo => ({ name, cidr, disabled: false, deleting: false, ...extra });
const node = (name: string, labels: Record<string, string> = {}, podCIDRs: string[] = []): NodeInfo => ({ name, labels, podCIDRs });

/** decide + commit, as the controller does. */
function allocate(ipam: Ipam, n: NodeInfo) {
  const d = ipam.decide(n);
  ipam.commit(n.name, d.allocations);
  return d;
}

describe('IPAM', () => {
  it.each([
    { name: 'IPv4 default /24 blocks', pools: [pool('v4', '10.244.0.0/16')], want: [['10.244.0.0/24'], ['10.244.1.0/24'], ['10.244.2.0/24']] },
    { name: 'IPv6 default /64 blocks', pools: [pool('v6', 'fd00:10:244::/48')], want: [['fd00:10:244::/64'], ['fd00:10:244:1::/64'], ['fd00:10:244:2::/64']] },
    {
      name: 'dual-stack: one block per family, IPv4 first',
      pools: [pool('v6', 'fd00:10:244::/56'), pool('v4', '10.244.0.0/16', { blockSize: 26 })],
      want: [
        ['10.244.0.0/26', 'fd00:10:244::/64'],
        ['10.244.0.64/26', 'fd00:10:244:1::/64'],
        ['10.244.0.128/26', 'fd00:10:244:2::/64'],
      ],
    },
    { name: 'pool smaller than default block: whole pool is one block', pools: [pool('tiny', '10.9.9.0/25')], want: [['10.9.9.0/25'], [], []] },
  ])('$name', ({ pools, want }) => {
    const ipam = new Ipam();
    expect(ipam.setPools(pools)).toEqual([]);
    const got = ['a', 'b', 'c'].map((n) => allocate(ipam, node(n)).allocations.map((a) => a.cidr));
    expect(got).toEqual(want);
  });

  it('re-committing what a node already holds changes nothing; a changed commit re-indexes', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('p', '10.0.0.0/20')]);
    for (const n of ['a', 'b', 'c']) allocate(ipam, node(n));
    const held = ipam.claimsOf('a');
    ipam.commit('a', [...held]); // every reconcile of an allocated node does this
    expect(ipam.claimsOf('a')).toEqual(held);
    expect(allocate(ipam, node('d')).allocations.map((a) => a.cidr)).toEqual(['10.0.3.0/24']);
    // a gives its block back through a changed commit: the lowest free block is a's again.
    ipam.commit('a', []);
    expect(allocate(ipam, node('e')).allocations.map((a) => a.cidr)).toEqual(['10.0.0.0/24']);
  });

  it('never hands out a block twice and reuses the lowest released one', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('p', '10.0.0.0/20')]);
    const seen = new Set<string>();
    for (let i = 0; i < 16; i++) {
      const d = allocate(ipam, node(`n${i}`));
      expect(d.allocated).toHaveLength(1);
      expect(seen.has(d.allocated[0]!.cidr)).toBe(false);
      seen.add(d.allocated[0]!.cidr);
    }
    expect(ipam.stats('p')).toMatchObject({ total: 16, allocated: 16, free: 0 });
    expect(ipam.release('n5')).toEqual([{ cidr: '10.0.5.0/24', pool: 'p' }]);
    expect(allocate(ipam, node('late')).allocations).toEqual([{ cidr: '10.0.5.0/24', pool: 'p' }]);
  });

  it('exhaustion is a problem for the node left out, others keep their blocks', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('small', '10.0.0.0/23')]);
    allocate(ipam, node('a'));
    allocate(ipam, node('b'));
    const d = allocate(ipam, node('c'));
    expect(d.allocations).toEqual([]);
    expect(d.problems).toEqual([expect.objectContaining({ reason: 'PoolExhausted', family: 4, pools: ['small'] })]);
    expect(ipam.claimsOf('a')).toEqual([{ cidr: '10.0.0.0/24', pool: 'small' }]);
    expect(ipam.stats('small')).toMatchObject({ allocated: 2, free: 0 });
  });

  it('selectors: pools pick their nodes; first matching pool by name wins; the next one takes over when it is full', () => {
    const ipam = new Ipam();
    ipam.setPools([
      pool('rack-a', '10.1.0.0/23', { nodeSelector: { matchLabels: { rack: 'a' } } }),
      pool('rack-b', '10.2.0.0/16', { nodeSelector: { matchExpressions: [{ key: 'rack', operator: 'In', values: ['b'] }] } }),
      pool('z-overflow', '10.3.0.0/16', { nodeSelector: { matchExpressions: [{ key: 'rack', operator: 'Exists' }] } }),
    ]);
    expect(allocate(ipam, node('a1', { rack: 'a' })).allocations[0]).toEqual({ cidr: '10.1.0.0/24', pool: 'rack-a' });
    expect(allocate(ipam, node('b1', { rack: 'b' })).allocations[0]).toEqual({ cidr: '10.2.0.0/24', pool: 'rack-b' });
    expect(allocate(ipam, node('a2', { rack: 'a' })).allocations[0]).toEqual({ cidr: '10.1.1.0/24', pool: 'rack-a' });
    expect(allocate(ipam, node('a3', { rack: 'a' })).allocations[0]).toEqual({ cidr: '10.3.0.0/24', pool: 'z-overflow' });
    const none = allocate(ipam, node('unlabelled'));
    expect(none.allocations).toEqual([]);
    expect(none.problems).toEqual([expect.objectContaining({ reason: 'NoMatchingPool' })]);
  });

  it('adopts Node.spec.podCIDRs inside a pool, even a different size or a disabled pool', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('p', '10.244.0.0/16'), pool('old', '10.50.0.0/16', { disabled: true })]);
    const d = allocate(ipam, node('pre', {}, ['10.244.7.0/24']));
    expect(d.adopted).toEqual([{ cidr: '10.244.7.0/24', pool: 'p' }]);
    expect(d.allocated).toEqual([]);
    expect(allocate(ipam, node('big', {}, ['10.244.8.0/23'])).adopted).toEqual([{ cidr: '10.244.8.0/23', pool: 'p' }]);
    expect(allocate(ipam, node('legacy', {}, ['10.50.3.0/24'])).adopted).toEqual([{ cidr: '10.50.3.0/24', pool: 'old' }]);
    // The adopted blocks are never handed out again.
    const cidrs = Array.from({ length: 12 }, (_, i) => allocate(ipam, node(`n${i}`)).allocations[0]!.cidr);
    expect(cidrs).not.toContain('10.244.7.0/24');
    expect(cidrs).not.toContain('10.244.8.0/24');
    expect(cidrs).not.toContain('10.244.9.0/24');
    expect(cidrs.slice(6, 9)).toEqual(['10.244.6.0/24', '10.244.10.0/24', '10.244.11.0/24']);
  });

  it('a podCIDR already held by another node is not adopted twice', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('p', '10.244.0.0/16')]);
    allocate(ipam, node('first', {}, ['10.244.3.0/24']));
    const d = allocate(ipam, node('second', {}, ['10.244.3.0/24']));
    expect(d.adopted).toEqual([]);
    expect(d.allocated).toEqual([{ cidr: '10.244.0.0/24', pool: 'p' }]);
    expect(d.problems).toEqual([expect.objectContaining({ reason: 'PodCIDRConflict' })]);
  });

  it('a podCIDR outside all pools is reported and a pool block allocated', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('p', '10.244.0.0/16')]);
    const d = allocate(ipam, node('x', {}, ['192.168.77.0/24']));
    expect(d.allocated).toEqual([{ cidr: '10.244.0.0/24', pool: 'p' }]);
    expect(d.problems.map((p) => p.reason)).toEqual(['PodCIDROutsidePools']);
  });

  it('load() keeps the first owner of a duplicated block and reports the second', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('p', '10.244.0.0/16')]);
    expect(ipam.load('a', [{ cidr: '10.244.1.0/24', pool: 'p' }])).toEqual([]);
    expect(ipam.load('b', [{ cidr: '10.244.1.0/24', pool: 'p' }])).toEqual([{ cidr: '10.244.1.0/24', pool: 'p' }]);
    expect(ipam.ownerOf('10.244.1.0/24')).toBe('a');
    expect(allocate(ipam, node('b')).allocated).toEqual([{ cidr: '10.244.0.0/24', pool: 'p' }]);
  });

  it('disabled and deleting pools give no new blocks; existing ones are kept', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('p', '10.244.0.0/16')]);
    allocate(ipam, node('a'));
    ipam.setPools([pool('p', '10.244.0.0/16', { disabled: true })]);
    expect(allocate(ipam, node('a')).allocations).toEqual([{ cidr: '10.244.0.0/24', pool: 'p' }]);
    const b = allocate(ipam, node('b'));
    expect(b.allocations).toEqual([]);
    expect(b.problems[0]).toMatchObject({ reason: 'NoMatchingPool', pools: ['p'] });
    ipam.setPools([pool('p', '10.244.0.0/16', { deleting: true })]);
    expect(allocate(ipam, node('c')).allocations).toEqual([]);
    expect(ipam.stats('p')).toMatchObject({ allocated: 1, holders: ['a'] });
  });

  it('overlapping pools: the nested region gives no new blocks, the rest of the outer pool does', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('outer', '10.0.0.0/22'), pool('inner', '10.0.1.0/24')]);
    expect(ipam.stats('outer')!.overlaps).toEqual(['inner']);
    expect(ipam.stats('inner')!.overlaps).toEqual(['outer']);
    const got = ['a', 'b', 'c', 'd'].map((n) => allocate(ipam, node(n)).allocations.map((x) => x.cidr)[0]);
    expect(got).toEqual(['10.0.0.0/24', '10.0.2.0/24', '10.0.3.0/24', undefined]);
    expect(ipam.stats('outer')).toMatchObject({ free: 0, shadowed: 1 });
    // The true reason for the 4th node: the overlap, not exhaustion.
    const d = ipam.decide(node('d'));
    expect(d.problems).toEqual([expect.objectContaining({ reason: 'PoolOverlapping', family: 4 })]);
    expect(d.problems[0]!.message).toMatch(/shared with IPPool\(s\) inner/);
  });

  it('a pool truly full of blocks is exhausted, not overlapping', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('outer', '10.0.0.0/23'), pool('inner', '10.0.1.0/24')]);
    expect(allocate(ipam, node('a')).allocations.map((x) => x.cidr)).toEqual(['10.0.0.0/24']);
    expect(ipam.decide(node('b')).problems[0]).toMatchObject({ reason: 'PoolOverlapping' });
    ipam.setPools([pool('outer', '10.0.0.0/23')]);
    allocate(ipam, node('b'));
    expect(ipam.decide(node('c')).problems[0]).toMatchObject({ reason: 'PoolExhausted' });
    expect(ipam.stats('outer')).toMatchObject({ free: 0, shadowed: 0 });
  });

  it('identical pools both refuse new blocks', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('x', '10.0.0.0/16'), pool('y', '10.0.0.0/16')]);
    expect(allocate(ipam, node('a')).problems[0]).toMatchObject({ reason: 'PoolOverlapping', pools: ['x', 'y'] });
  });

  it('is deterministic: the same inputs in the same order give the same blocks', () => {
    const run = () => {
      const ipam = new Ipam();
      ipam.setPools([pool('v4', '10.244.0.0/16'), pool('v6', 'fd00::/56')]);
      return Array.from({ length: 50 }, (_, i) => allocate(ipam, node(`n${i}`)).allocations);
    };
    expect(run()).toEqual(run());
  });

  it('rejects invalid pools instead of crashing', () => {
    const ipam = new Ipam();
    expect(ipam.setPools([pool('bad', '10.0.0.1/16'), pool('short', '10.0.0.0/16', { blockSize: 8 }), pool('ok', '10.1.0.0/16')])).toEqual(['bad', 'short']);
    expect(allocate(ipam, node('a')).allocations).toEqual([{ cidr: '10.1.0.0/24', pool: 'ok' }]);
  });

  it('5,000 nodes allocate quickly (a sanity bound, not a benchmark)', () => {
    const ipam = new Ipam();
    ipam.setPools([pool('v4', '10.0.0.0/8'), pool('v6', 'fd00::/40')]);
    const all = new Set<string>();
    for (let i = 0; i < 5000; i++) for (const a of allocate(ipam, node(`n${i}`)).allocations) all.add(a.cidr);
    expect(all.size).toBe(10000);
  });
});

describe('selectorMatches', () => {
  it.each([
    [undefined, {}, true],
    [{}, { a: '1' }, true],
    [{ matchLabels: { a: '1' } }, { a: '1' }, true],
    [{ matchLabels: { a: '1' } }, { a: '2' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'NotIn' as const, values: ['1'] }] }, {}, true],
    [{ matchExpressions: [{ key: 'a', operator: 'NotIn' as const, values: ['1'] }] }, { a: '1' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' as const }] }, { a: '' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'Exists' as const }] }, { a: '' }, true],
  ])('%j on %j → %s', (sel, labels, want) => expect(selectorMatches(sel, labels)).toBe(want));
});
