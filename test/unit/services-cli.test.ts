import { describe, expect, it } from 'vitest';
import { NodeFabric, parseObject } from '../../operator/api/kinds.js';
import { buildServicesView, renderServicesView } from '../../operator/cli/services-view.js';

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
