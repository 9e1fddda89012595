import { describe, expect, it } from 'vitest';
import { NodeFabric, parseObject } from '../../operator/api/kinds.js';
import { buildServicesView, renderServicesView } from '../../operator/cli/services-view.js';
import { buildServicesReport, renderServicesReport, unadvertisedAddresses } from '../../operator/cli/services-report.js';
import type { FabricConfigObj } from '../../operator/api/kinds.js';

const nf = (name: string, services?: unknown) => parseObject(NodeFabric, { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name }, spec: {}, ...(services ? { status: { services } } : {}) });

describe('kubectl fabric services view', () => {
  const lb = (communities: string[]) => ({ prefix: '192.0.2.1/32', class: 'LoadBalancer', services: ['shop/web'], communities });
  const snapshot = [
    nf('r1n10', { phase: 'Active', advertised: 1, routes: [lb(['65100:10'])] }),
    nf('r1n2', { phase: 'Active', advertised: 2, routes: [lb(['65100:10']), { prefix: '10.96.0.0/12', class: 'ClusterIP', services: [] }] }),
    nf('r2n1', { phase: 'Draining', advertised: 1, drainingSince: '2026-12-04T17:00:00Z', routes: [lb(['65100:10', '65535:0'])] }),
    nf('r2n2', { phase: 'Excluded', advertised: 0 }),
    nf('r3n1'),
  ];

  it('groups the nodes per prefix, splits the draining ones, lists nodes not advertising normally', () => {
    const v = buildServicesView(snapshot);
    expect(v.prefixes).toEqual([
      { prefix: '10.96.0.0/12', class: 'ClusterIP', services: [], active: ['r1n2'], draining: [], communities: [] },
      { prefix: '192.0.2.1/32', class: 'LoadBalancer', services: ['shop/web'], active: ['r1n2', 'r1n10'], draining: ['r2n1'], communities: ['65100:10'] },
    ]);
    expect(v.notActive.map((n) => [n.node, n.phase])).toEqual([
      ['r2n1', 'Draining'],
      ['r2n2', 'Excluded'],
    ]);
    expect(v.nodesReporting).toBe(4);
  });

  it('renders kubectl-style tables', () => {
    expect(renderServicesView(buildServicesView(snapshot))).toBe(
      [
        'SERVICE PREFIXES',
        'PREFIX        CLASS         SERVICES  NODES           DRAINING  COMMUNITIES',
        '10.96.0.0/12  ClusterIP     -         1 (r1n2)        -         -',
        '192.0.2.1/32  LoadBalancer  shop/web  2 (r1n2,r1n10)  1 (r2n1)  65100:10',
        '',
        'NODES NOT ADVERTISING NORMALLY',
        'NODE  PHASE     ROUTES  CORDONED SINCE',
        'r2n1  Draining  1       2026-12-04T17:00:00Z',
        'r2n2  Excluded  0       -',
        '',
        '4 node(s) report Service routes',
        '',
      ].join('\n'),
    );
    expect(renderServicesView(buildServicesView([]))).toContain('(none advertised)');
  });
});

describe('kubectl fabric services report', () => {
  const svc = (ns: string, name: string, o: { type?: string; cls?: string; policy?: string; ingress?: string[]; externalIPs?: string[]; conditions?: unknown[] } = {}) => ({
    metadata: { namespace: ns, name, creationTimestamp: '2026-12-04T10:00:00Z' },
    spec: { type: o.type ?? 'LoadBalancer', ...(o.cls ? { loadBalancerClass: o.cls } : {}), externalTrafficPolicy: o.policy ?? 'Cluster', clusterIP: '10.96.0.10', ...(o.externalIPs ? { externalIPs: o.externalIPs } : {}), ports: [{ port: 80 }] },
    status: { loadBalancer: { ingress: (o.ingress ?? []).map((ip) => ({ ip })) }, ...(o.conditions ? { conditions: o.conditions } : {}) },
  });
  const route = (prefix: string, services: string[], cls = 'LoadBalancer', communities?: string[]) => ({ prefix, class: cls, services, ...(communities ? { communities } : {}) });
  const nfs = [
    nf('r1n1', { phase: 'Active', advertised: 2, routes: [route('198.51.100.1/32', ['shop/web']), route('192.0.2.7/32', ['shop/ext'], 'ExternalIP')] }),
    nf('r1n2', { phase: 'Draining', advertised: 1, drainingSince: '2026-12-04T17:00:00Z', routes: [route('198.51.100.1/32', ['shop/web'], 'LoadBalancer', ['65535:0'])] }),
  ];
  const assigned = { type: 'podfabric.io/LoadBalancerAddress', status: 'True', reason: 'Assigned', message: '198.51.100.1 from pool lab-lb', lastTransitionTime: '2026-12-04T10:00:01Z' };
  const services = [
    svc('shop', 'web', { ingress: ['198.51.100.1'], conditions: [assigned] }),
    svc('shop', 'local', { policy: 'Local', ingress: ['198.51.100.2'] }),
    svc('shop', 'pending', { conditions: [{ ...assigned, status: 'False', reason: 'PoolExhausted', message: 'no free address' }] }),
    svc('shop', 'metallb', { cls: 'metallb.io/x' }),
    svc('shop', 'ext', { type: 'ClusterIP', externalIPs: ['192.0.2.7'] }),
    svc('shop', 'plain', { type: 'ClusterIP' }),
  ];

  it('asks for the ready endpoints only of our Services with an address no node advertises', () => {
    expect(unadvertisedAddresses({ services, nodeFabrics: nfs })).toEqual([{ namespace: 'shop', name: 'local' }]);
  });

  it('lists LoadBalancer and advertised Services with their nodes and drain; problems: no address, unadvertised with ready endpoints', () => {
    const r = buildServicesReport({ services, nodeFabrics: nfs, readyEndpoints: new Map([['shop/local', 2]]) });
    expect(r.services.map((s) => [s.service, s.ours, s.addresses, s.advertisedBy, s.draining])).toEqual([
      ['shop/ext', false, ['192.0.2.7'], ['r1n1'], []],
      ['shop/local', true, ['198.51.100.2'], [], []],
      ['shop/metallb', false, [], [], []],
      ['shop/pending', true, [], [], []],
      ['shop/web', true, ['198.51.100.1'], ['r1n1'], ['r1n2']],
    ]);
    expect(r.problems).toEqual(['shop/local: 198.51.100.2 advertised by no node though the Service has 2 ready endpoint(s)', 'shop/pending: no address (PoolExhausted: no free address)']);
    expect(r.ok).toBe(false);
    const text = renderServicesReport(r);
    expect(text.split('\n').slice(0, 8)).toEqual([
      'SERVICES  5 shown, 3 of class podfabric.io/bgp: 2 PROBLEM(S)',
      '',
      'SERVICE       CLASS                    POLICY   ADDRESSES     NODES     DRAINING  CONDITIONS',
      'shop/ext      (none) ClusterIP         Cluster  192.0.2.7     1 (r1n1)  -         -',
      'shop/local    (none)                   Local    198.51.100.2  0         -         -',
      'shop/metallb  metallb.io/x (not ours)  Cluster  <none>        -         -         -',
      'shop/pending  (none)                   Cluster  <none>        -         -         LoadBalancerAddress=False (PoolExhausted)',
      'shop/web      (none)                   Cluster  198.51.100.1  1 (r1n1)  1 (r1n2)  LoadBalancerAddress=True (Assigned)',
    ]);
    expect(text).toContain('SERVICE PREFIXES');
    expect(text).toContain('!! shop/pending: no address (PoolExhausted: no free address)');
  });

  it('no ready endpoint → not advertising is right; another class or handleUnclassed false → never a problem', () => {
    expect(buildServicesReport({ services, nodeFabrics: nfs, readyEndpoints: new Map([['shop/local', 0]]) }).problems).toEqual(['shop/pending: no address (PoolExhausted: no free address)']);
    const config = { apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'default' }, spec: { services: { handleUnclassed: false } } } as unknown as FabricConfigObj;
    const r = buildServicesReport({ services, nodeFabrics: nfs, config, readyEndpoints: new Map() });
    expect(r.ok).toBe(true);
    expect(r.services.filter((s) => s.ours)).toEqual([]);
    expect(unadvertisedAddresses({ services, nodeFabrics: nfs, config })).toEqual([]);
  });
});
