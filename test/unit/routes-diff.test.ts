import { describe, expect, it } from 'vitest';
import { findUplink } from '../../operator/agent/links.js';
import { diffRoutes, parseBatchErrors, validateProtocol, type KernelRoute } from '../../operator/agent/routes.js';

const r = (dst: string, via: string, dev = 'eth0'): KernelRoute => ({ dst, via, dev });

describe('diffRoutes', () => {
  it.each([
    { name: 'empty kernel: add all', desired: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.2.0/24', '10.0.1.13')], observed: [], add: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.2.0/24', '10.0.1.13')], del: [] },
    { name: 'in sync: nothing', desired: [r('10.244.1.0/24', '10.0.1.12')], observed: [r('10.244.1.0/24', '10.0.1.12')], add: [], del: [] },
    { name: 'stale route: delete', desired: [], observed: [r('10.244.1.0/24', '10.0.1.12')], add: [], del: [r('10.244.1.0/24', '10.0.1.12')] },
    { name: 'next hop changed: replace in place (no delete)', desired: [r('10.244.1.0/24', '10.0.1.99')], observed: [r('10.244.1.0/24', '10.0.1.12')], add: [r('10.244.1.0/24', '10.0.1.99')], del: [] },
    { name: 'IPv6 written differently is the same route', desired: [r('FD00:244:0:1::/64', 'FD00:1::12')], observed: [r('fd00:244:0:1::/64', 'fd00:1::12')], add: [], del: [] },
    { name: 'duplicates in desired collapse', desired: [r('10.244.1.0/24', '10.0.1.12'), r('10.244.1.0/24', '10.0.1.12')], observed: [], add: [r('10.244.1.0/24', '10.0.1.12')], del: [] },
    { name: 'device changed: replace', desired: [r('10.244.1.0/24', '10.0.1.12', 'eth1')], observed: [r('10.244.1.0/24', '10.0.1.12', 'eth0')], add: [r('10.244.1.0/24', '10.0.1.12', 'eth1')], del: [] },
  ])('$name', ({ desired, observed, add, del }) => {
    expect(diffRoutes(desired, observed)).toEqual({ add, del });
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
});

describe('validateProtocol', () => {
  it.each([0, 2, 4, 12, 186, 192, 256, 1.5])('rejects %s', (p) => expect(() => validateProtocol(p)).toThrow(/reserved or out of range/));
  it.each([201, 5, 250])('accepts %s', (p) => expect(() => validateProtocol(p)).not.toThrow());
});

describe('findUplink', () => {
  const addrs = [
    { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    { ifname: 'eth0', addr_info: [{ family: 'inet', local: '10.0.1.11', prefixlen: 24 }, { family: 'inet6', local: 'fd00:1::11', prefixlen: 64 }] },
  ];
  it('finds the interface and subnet of the node IP per family', () => {
    expect(findUplink(addrs, '10.0.1.11')).toEqual({ dev: 'eth0', address: '10.0.1.11', prefixLength: 24, subnet: '10.0.1.0/24' });
    expect(findUplink(addrs, 'FD00:1:0::11')).toEqual({ dev: 'eth0', address: 'fd00:1::11', prefixLength: 64, subnet: 'fd00:1::/64' });
    expect(findUplink(addrs, '10.9.9.9')).toBeNull();
  });
});
