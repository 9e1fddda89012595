import { describe, expect, it } from 'vitest';
import { findUplink } from '../../operator/host/links.js';
import { parseBatchErrors } from '../../operator/routes/ip-batch.js';
import { compareRoutes, diffRoutes, invalidRoute, normalizeRoute, validateProtocol, type KernelRoute } from '../../operator/routes/model.js';

const r = (dst: string, via: string, dev = 'eth0'): KernelRoute => ({ dst, via, dev });

describe('diffRoutes', () => {
  it.each([
    { name: 'empty kernel: add all', desired: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.2.0/24', '10.0.1.13')], observed: [], add: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.2.0/24', '10.0.1.13')], del: [] },
    { name: 'in sync: nothing to do', desired: [r('10.244.1.0/24', '10.0.1.12'), r('fd00:244:0:1::/64', 'fd00:1::12')], observed: [r('fd00:244:0:1::/64', 'fd00:1::12'), r('10.244.1.0/24', '10.0.1.12')], add: [], del: [] },
    { name: 'both empty', desired: [], observed: [], add: [], del: [] },
    { name: 'stale route: delete', desired: [], observed: [r('10.244.1.0/24', '10.0.1.12')], add: [], del: [r('10.244.1.0/24', '10.0.1.12')] },
    { name: 'next hop changed: replace in place (no delete)', desired: [r('10.244.1.0/24', '10.0.1.99')], observed: [r('10.244.1.0/24', '10.0.1.12')], add: [r('10.244.1.0/24', '10.0.1.99')], del: [] },
    { name: 'device changed: replace', desired: [r('10.244.1.0/24', '10.0.1.12', 'eth1')], observed: [r('10.244.1.0/24', '10.0.1.12', 'eth0')], add: [r('10.244.1.0/24', '10.0.1.12', 'eth1')], del: [] },
    { name: 'IPv6 written differently is the same route', desired: [r('FD00:244:0:1:0::/64', 'FD00:1:0:0::12')], observed: [r('fd00:244:0:1::/64', 'fd00:1::12')], add: [], del: [] },
    { name: 'IPv6 add comes out canonical', desired: [r('FD00:0244:0000:0001::/64', 'FD00:1::0012')], observed: [], add: [r('fd00:244:0:1::/64', 'fd00:1::12')], del: [] },
    { name: 'duplicates in desired collapse', desired: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.1.0/24', '10.0.1.12')], observed: [], add: [r('10.244.1.0/24', '10.0.1.12')], del: [] },
    { name: 'duplicates in observed collapse', desired: [], observed: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.1.0/24', '10.0.1.12')], add: [], del: [r('10.244.1.0/24', '10.0.1.12')] },
    {
      name: 'two observed routes to one destination: the wrong one goes',
      desired: [r('10.244.1.0/24', '10.0.1.12')],
      observed: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.1.0/24', '10.0.1.13')],
      add: [],
      del: [r('10.244.1.0/24', '10.0.1.13')],
    },
    {
      name: 'two observed, neither desired: both go, desired is added',
      desired: [r('10.244.1.0/24', '10.0.1.14')],
      observed: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.1.0/24', '10.0.1.13')],
      add: [r('10.244.1.0/24', '10.0.1.14')],
      del: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.1.0/24', '10.0.1.13')],
    },
    {
      name: 'host bits are not repaired: the route is passed on as written (apply reports it)',
      desired: [r('10.244.1.7/24', '10.0.1.12')],
      observed: [],
      add: [r('10.244.1.7/24', '10.0.1.12')],
      del: [],
    },
    {
      name: 'mixed add, delete and replace',
      desired: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.3.0/24', '10.0.1.99'), r('fd00:244:0:4::/64', 'fd00:1::14')],
      observed: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.2.0/24', '10.0.1.13'), r('10.244.3.0/24', '10.0.1.15')],
      add: [r('10.244.3.0/24', '10.0.1.99'), r('fd00:244:0:4::/64', 'fd00:1::14')],
      del: [r('10.244.2.0/24', '10.0.1.13')],
    },
  ])('$name', ({ desired, observed, add, del }) => {
    expect(diffRoutes(desired, observed)).toEqual({ add, del });
  });

  it('is deterministic: numeric order, v4 before v6, independent of input order; conflicting wishes resolve the same way', () => {
    const desired = [r('fd00::/64', 'fd00:1::1'), r('10.10.0.0/24', '10.0.0.2'), r('10.9.0.0/24', '10.0.0.3'), r('10.9.0.0/24', '10.0.0.2'), r('10.9.0.0/16', '10.0.0.2')];
    const a = diffRoutes(desired, []);
    const b = diffRoutes([...desired].reverse(), []);
    expect(a).toEqual(b);
    expect(a.add.map((x) => `${x.dst} ${x.via}`)).toEqual(['10.9.0.0/16 10.0.0.2', '10.9.0.0/24 10.0.0.2', '10.10.0.0/24 10.0.0.2', 'fd00::/64 fd00:1::1']);
  });

  it('does not modify its inputs', () => {
    const desired = [r('FD00::/64', 'FD00::1')];
    const observed = [r('10.1.0.0/24', '10.0.0.1')];
    const copy = JSON.stringify([desired, observed]);
    diffRoutes(desired, observed);
    expect(JSON.stringify([desired, observed])).toBe(copy);
  });
});

describe('normalizeRoute / compareRoutes / invalidRoute', () => {
  it('normalises valid routes, keeps invalid ones as written', () => {
    expect(normalizeRoute(r('FD00:0:0::/48', 'FD00::0001'))).toEqual(r('fd00::/48', 'fd00::1'));
    expect(normalizeRoute(r('10.0.0.1/8', 'x'))).toEqual(r('10.0.0.1/8', 'x'));
  });
  it('orders by numeric prefix, not text', () => {
    expect([r('10.10.0.0/24', '1.1.1.1'), r('10.9.0.0/24', '1.1.1.1')].sort(compareRoutes).map((x) => x.dst)).toEqual(['10.9.0.0/24', '10.10.0.0/24']);
  });
  it.each([
    [r('10.0.0.0/24', '10.1.0.1'), null],
    [r('fd00::/64', 'fd00:1::1'), null],
    [r('10.0.0.1/24', '10.1.0.1'), /host bits/],
    [r('10.0.0.0/33', '10.1.0.1'), /not a CIDR/],
    [r('10.0.0.0', '10.1.0.1'), /not a CIDR/],
    [r('10.0.0.0/24', 'fd00::1'), /IPv6, destination .* IPv4/],
    [r('fd00::/64', '10.1.0.1'), /IPv4, destination .* IPv6/],
    [r('10.0.0.0/24', 'gateway'), /next hop/],
    [r('10.0.0.0/24', '10.1.0.1', 'a-very-long-ifname'), /device/],
    [r('10.0.0.0/24', '10.1.0.1', 'eth0 proto 4'), /device/],
    [r('10.0.0.0/24', '10.1.0.1', ''), /device/],
  ])('invalidRoute(%j)', (route, want) => {
    const got = invalidRoute(route);
    if (want === null) expect(got).toBeNull();
    else expect(got).toMatch(want);
  });
});

describe('parseBatchErrors', () => {
  it('maps "Command failed -:N" to the message before it', () => {
    const m = parseBatchErrors('Error: Nexthop has invalid gateway.\nCommand failed -:3\nRTNETLINK answers: No such process\nCommand failed -:7\n');
    expect([...m]).toEqual([
      [3, 'Error: Nexthop has invalid gateway.'],
      [7, 'RTNETLINK answers: No such process'],
    ]);
  });
  it('a failure without a message still counts', () => {
    expect([...parseBatchErrors('Command failed -:1\n')]).toEqual([[1, 'failed']]);
  });
});

describe('validateProtocol', () => {
  it.each([0, 1, 2, 3, 4, 8, 12, 16, 18, 42, 99, 186, 187, 188, 189, 192, 256, -1, 1.5, Number.NaN])('rejects %s', (p) =>
    expect(() => validateProtocol(p)).toThrow(/reserved or out of range/),
  );
  it.each([5, 6, 7, 17, 19, 41, 43, 98, 100, 185, 190, 191, 193, 201, 255])('accepts %s', (p) => expect(() => validateProtocol(p)).not.toThrow());
});

describe('findUplink', () => {
  const addrs = [
    { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    {
      ifname: 'eth0',
      addr_info: [
        { family: 'inet', local: '10.0.1.11', prefixlen: 24 },
        { family: 'inet6', local: 'fd00:1::11', prefixlen: 64 },
        { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
      ],
    },
    { ifname: 'eth1', addr_info: [{ family: 'inet', local: '192.168.7.200', prefixlen: 26 }] },
  ];
  it('finds the interface and subnet of the node IP per family', () => {
    expect(findUplink(addrs, '10.0.1.11')).toEqual({ dev: 'eth0', address: '10.0.1.11', prefixLength: 24, subnet: '10.0.1.0/24' });
    expect(findUplink(addrs, 'FD00:1:0::11')).toEqual({ dev: 'eth0', address: 'fd00:1::11', prefixLength: 64, subnet: 'fd00:1::/64' });
    expect(findUplink(addrs, '192.168.7.200')).toEqual({ dev: 'eth1', address: '192.168.7.200', prefixLength: 26, subnet: '192.168.7.192/26' });
  });
  it('null for an address nobody holds or a non-address', () => {
    expect(findUplink(addrs, '10.9.9.9')).toBeNull();
    expect(findUplink(addrs, 'node-1')).toBeNull();
    expect(findUplink([], '10.0.1.11')).toBeNull();
  });
});
