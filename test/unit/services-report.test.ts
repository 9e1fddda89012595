import { describe, expect, it } from 'vitest';
import { nodeServicesStatus } from '../../operator/api/services.js';
import type { ServiceRoute } from '../../operator/services/advertise.js';
import { renderNatTable, nftScript } from '../../operator/services/nat.js';
import { cordonedSinceFromStatus, phaseEvent, routeEvents, servicesStatus } from '../../operator/services/report.js';

const route = (prefix: string, services: string[], local: boolean, communities: string[] = []): ServiceRoute => ({
  prefix,
  class: 'LoadBalancer',
  nextHop: '172.20.1.11',
  communities,
  services,
  local,
});

describe('Service route Events and status', () => {
  it('Events only for Local routes, one per Service, with why a route went', () => {
    const prev = [route('192.0.2.1/32', ['web/a'], true), route('192.0.2.2/32', ['web/c'], false)];
    const next = [route('192.0.2.3/32', ['web/b', 'web/d'], true), route('192.0.2.4/32', ['web/e'], false)];
    expect(routeEvents('n1', prev, next, 'Active')).toEqual([
      { service: 'web/b', type: 'Normal', reason: 'Advertised', message: 'node n1 advertises 192.0.2.3/32 (ready local endpoint)' },
      { service: 'web/d', type: 'Normal', reason: 'Advertised', message: 'node n1 advertises 192.0.2.3/32 (ready local endpoint)' },
      { service: 'web/a', type: 'Normal', reason: 'Withdrawn', message: 'node n1 withdrew 192.0.2.1/32 (no ready local endpoint)' },
    ]);
    expect(routeEvents('n1', prev, [], 'Drained')[0]!.message).toBe('node n1 withdrew 192.0.2.1/32 (node cordoned, drain delay over)');
    expect(routeEvents('n1', prev, prev, 'Active')).toEqual([]);
  });

  it.each([
    [undefined, 'Active', null],
    ['Active', 'Active', null],
    ['Active', 'Draining', 'ServiceDrainStarted'],
    ['Draining', 'Drained', 'ServiceRoutesWithdrawn'],
    ['Drained', 'Active', 'ServiceRoutesRestored'],
    ['Active', 'Excluded', 'ServiceRoutesExcluded'],
  ] as const)('phase %s → %s: %s', (a, b, reason) => {
    expect(phaseEvent(a, b, 3, 30)?.reason ?? null).toBe(reason);
  });

  it('status.services validates against its schema and round-trips drainingSince', () => {
    const st = servicesStatus('Draining', [route('192.0.2.1/32', ['web/a'], true, ['65535:0']), route('10.96.0.0/12', [], false)], Date.parse('2026-12-04T17:00:00Z'));
    expect(nodeServicesStatus.parse(st)).toEqual(st);
    expect(st).toMatchObject({ phase: 'Draining', drainingSince: '2026-12-04T17:00:00Z', advertised: 2 });
    expect(st.routes![1]).toEqual({ prefix: '10.96.0.0/12', class: 'LoadBalancer', services: [] });
    expect(cordonedSinceFromStatus(st)).toBe(Date.parse('2026-12-04T17:00:00Z'));
    expect(cordonedSinceFromStatus({ phase: 'Active', advertised: 0 })).toBeUndefined();
    const many = Array.from({ length: 5000 }, (_, i) => route(`10.${i >> 8}.${i & 255}.1/32`, [], false));
    expect(servicesStatus('Active', many)).toMatchObject({ advertised: 5000 });
    expect(servicesStatus('Active', many).routes).toHaveLength(4096);
  });
});

describe('natOutgoing nftables table', () => {
  const input = {
    pools: [
      { cidr: '10.244.0.0/16', natOutgoing: true },
      { cidr: '10.245.0.0/16' },
      { cidr: '10.244.8.0/24', natOutgoing: true },
      { cidr: 'fd00:10:244::/56', natOutgoing: true },
    ],
    serviceCIDRs: ['10.96.0.0/12', 'fd00:10:96::/112'],
    loadBalancerCIDRs: ['192.0.2.0/28'],
  };

  it('masquerades natOutgoing pools to everything outside the pod and Service ranges, per family', () => {
    const { enabled, table } = renderNatTable(input);
    expect(enabled).toBe(true);
    expect(table.sets).toEqual([
      { name: 'nat-sources-v4', type: 'ipv4_addr', flags: ['interval'], elements: ['10.244.0.0/16'] },
      { name: 'cluster-dests-v4', type: 'ipv4_addr', flags: ['interval'], elements: ['10.96.0.0/12', '10.244.0.0/16', '10.245.0.0/16', '192.0.2.0/28'] },
      { name: 'nat-sources-v6', type: 'ipv6_addr', flags: ['interval'], elements: ['fd00:10:244::/56'] },
      { name: 'cluster-dests-v6', type: 'ipv6_addr', flags: ['interval'], elements: ['fd00:10:96::/112', 'fd00:10:244::/56'] },
    ]);
    expect(table.chains).toEqual([
      {
        name: 'postrouting',
        base: 'type nat hook postrouting priority srcnat; policy accept;',
        rules: ['ip saddr @nat-sources-v4 ip daddr != @cluster-dests-v4 masquerade', 'ip6 saddr @nat-sources-v6 ip6 daddr != @cluster-dests-v6 masquerade'],
      },
    ]);
  });

  it('no natOutgoing pool: no rules, enabled false; one family only when only it has one', () => {
    expect(renderNatTable({ ...input, pools: input.pools.map((p) => ({ cidr: p.cidr })) })).toMatchObject({ enabled: false, table: { sets: [], chains: [{ rules: [] }] } });
    const v6only = renderNatTable({ ...input, pools: [{ cidr: '10.244.0.0/16' }, { cidr: 'fd00:10:244::/56', natOutgoing: true }] });
    expect(v6only.table.chains[0]!.rules).toEqual(['ip6 saddr @nat-sources-v6 ip6 daddr != @cluster-dests-v6 masquerade']);
  });

  it('renders one replace-the-table nft transaction', () => {
    const text = nftScript(renderNatTable({ ...input, pools: [{ cidr: '10.244.0.0/16', natOutgoing: true }] }).table);
    expect(text).toBe(
      [
        'table inet podfabric-nat',
        'delete table inet podfabric-nat',
        'table inet podfabric-nat {',
        '\tset nat-sources-v4 {',
        '\t\ttype ipv4_addr',
        '\t\tflags interval',
        '\t\telements = { 10.244.0.0/16 }',
        '\t}',
        '\tset cluster-dests-v4 {',
        '\t\ttype ipv4_addr',
        '\t\tflags interval',
        '\t\telements = { 10.96.0.0/12, 10.244.0.0/16, 192.0.2.0/28 }',
        '\t}',
        '\tchain postrouting {',
        '\t\ttype nat hook postrouting priority srcnat; policy accept;',
        '\t\tip saddr @nat-sources-v4 ip daddr != @cluster-dests-v4 masquerade',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });
});
