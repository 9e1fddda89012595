import { describe, expect, it } from 'vitest';
import { IPPool, parseObject, type LoadBalancerPoolObj } from '../../operator/api/kinds.js';
import { LB_CONDITION, LB_POOL_FINALIZER, LoadBalancerPool, type ServicesConfigInput } from '../../operator/api/services.js';
import { planLoadBalancers, planNat, planNodeServices, serviceRoutePrefixes } from '../../operator/services/index.js';
import { endpointSliceFromJson, endpointSliceFromJsonOnce, serviceFromJson, serviceFromJsonOnce } from '../../operator/services/model.js';

const now = new Date('2026-12-04T17:00:00Z');
const lbPool = (name: string, spec: Record<string, unknown>, status?: Record<string, unknown>): LoadBalancerPoolObj =>
  parseObject(LoadBalancerPool, { apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', metadata: { name, generation: 3 }, spec, ...(status ? { status } : {}) });
const rawService = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'web', uid: `u-${name}`, generation: 1, creationTimestamp: '2026-12-04T16:00:00Z' },
  spec: { type: 'LoadBalancer', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], ports: [{ port: 80, protocol: 'TCP' }], externalTrafficPolicy: 'Local', selector: { app: name } },
  status: { loadBalancer: {} },
  ...extra,
});

describe('controller entry point: planLoadBalancers', () => {
  it('writes server-side-apply bodies for the Services that change, with the condition stamped, and the pool status', () => {
    const pools = [lbPool('lb', { cidrs: ['192.0.2.0/31'] })];
    const r = planLoadBalancers({ config: undefined, pools, services: [rawService('a'), rawService('b', { metadata: { name: 'b', namespace: 'web', creationTimestamp: '2026-12-04T16:00:01Z' } }), rawService('c', { metadata: { name: 'c', namespace: 'web', creationTimestamp: '2026-12-04T16:00:02Z' } })], now });
    expect(r.servicePatches.map((p) => [p.name, p.body.status.loadBalancer.ingress])).toEqual([
      ['a', [{ ip: '192.0.2.0', ipMode: 'VIP' }]],
      ['b', [{ ip: '192.0.2.1', ipMode: 'VIP' }]],
      ['c', []],
    ]);
    expect(r.servicePatches[0]!.body).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'a', namespace: 'web' },
      status: {
        loadBalancer: { ingress: [{ ip: '192.0.2.0', ipMode: 'VIP' }] },
        conditions: [{ type: LB_CONDITION, status: 'True', reason: 'Assigned', message: '192.0.2.0 (pool lb)', observedGeneration: 1, lastTransitionTime: '2026-12-04T17:00:00Z' }],
      },
    });
    expect(r.servicePatches[2]!.events.map((e) => e.reason)).toEqual(['PoolExhausted']);
    const st = r.poolStatuses[0]!;
    expect(st).toMatchObject({ name: 'lb', changed: true, status: { observedGeneration: 3, addressesTotal: 2, addressesAssigned: 2, addressesFree: 0 } });
    expect(st.status.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Exhausted', 'True', 'NoFreeAddress'],
      ['Overlapping', 'False', 'Disjoint'],
      ['Ready', 'True', 'Serving'],
    ]);
    expect(st.events.map((e) => e.reason)).toEqual(['PoolExhausted']);
    // written back: nothing more to write, no Event again
    const written = lbPool('lb', { cidrs: ['192.0.2.0/31'] }, st.status);
    expect(planLoadBalancers({ config: undefined, pools: [written], services: [], now }).poolStatuses[0]).toMatchObject({ changed: true });
    const services = ['a', 'b', 'c'].map((n, k) => {
      const p = r.servicePatches[k]!;
      return rawService(n, { metadata: { name: n, namespace: 'web', generation: 1, creationTimestamp: `2026-12-04T16:00:0${k}Z` }, status: p.body.status });
    });
    const again = planLoadBalancers({ config: undefined, pools: [written], services, now: new Date('2026-12-04T18:00:00Z') });
    expect(again.servicePatches).toEqual([]);
    expect(again.poolStatuses[0]!.status).toEqual(st.status);
    expect(again.poolStatuses[0]).toMatchObject({ changed: false, events: [] });
  });
});

describe('LoadBalancerPool deletion', () => {
  const held = (extra: Record<string, unknown>) =>
    parseObject(LoadBalancerPool, { apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', metadata: { name: 'lb', finalizers: [LB_POOL_FINALIZER], ...extra }, spec: { cidrs: ['192.0.2.0/30'] } });
  const holder = rawService('a', { status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } });

  it('a new pool gets the finalizer; a deleted pool in use keeps it, names the holders and gives no new address; released when unused', () => {
    expect(planLoadBalancers({ config: undefined, pools: [lbPool('lb', { cidrs: ['192.0.2.0/30'] })], services: [], now }).poolStatuses[0]!.finalizer).toBe('add');
    expect(planLoadBalancers({ config: undefined, pools: [held({})], services: [], now }).poolStatuses[0]!.finalizer).toBeNull();
    const deleting = held({ deletionTimestamp: '2026-12-04T16:59:00Z' });
    const r = planLoadBalancers({ config: undefined, pools: [deleting], services: [holder, rawService('b')], now });
    expect(r.poolStatuses[0]!.finalizer).toBeNull();
    expect(r.poolStatuses[0]!.status.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'DeletionBlocked', message: '1 Service(s) hold addresses of this pool: web/a; delete them or change their type' });
    expect(r.decisions.find((d) => d.name === 'a')!.ingress).toEqual(['192.0.2.1']);
    expect(r.decisions.find((d) => d.name === 'b')).toMatchObject({ ingress: [], condition: { reason: 'NoPool' } });
    const gone = planLoadBalancers({ config: undefined, pools: [deleting], services: [], now });
    expect(gone.poolStatuses[0]).toMatchObject({ finalizer: 'remove', status: { addressesAssigned: 0 } });
  });
});

describe('agent entry point: planNodeServices', () => {
  const config: ServicesConfigInput = { drain: { withdrawDelaySeconds: 10 } };
  const node = (unschedulable = false) => ({ metadata: { name: 'n1' }, spec: { unschedulable }, status: { addresses: [{ type: 'InternalIP', address: '172.20.1.11' }] } });
  const pools = [lbPool('lb', { cidrs: ['192.0.2.0/28'] })];
  const services = [rawService('a', { status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } })];
  const slices = (ready: boolean) => [
    { metadata: { namespace: 'web', name: 'a-1', labels: { 'kubernetes.io/service-name': 'a' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.0.5'], nodeName: 'n1', conditions: { ready } }] },
  ];

  it('advertises, reports, and emits Events against the previous result; the drain survives a restart through the status', () => {
    const t0 = Date.parse('2026-12-04T17:00:00Z');
    const first = planNodeServices({ node: node(), config, pools, services, endpointSlices: slices(true), now: t0 });
    expect(first.advertisements).toEqual([{ prefix: '192.0.2.1/32', nextHop: '172.20.1.11', communities: [] }]);
    expect(first.serviceEvents).toEqual([]); // no previous: a restarted agent does not replay Events
    expect(first.phaseEvent).toBeNull();
    expect(serviceRoutePrefixes(first.status)).toEqual(['192.0.2.1/32']);

    const gone = planNodeServices({ node: node(), config, pools, services, endpointSlices: slices(false), previous: first.result, previousStatus: first.status, now: t0 + 1 });
    expect(gone.advertisements).toEqual([]);
    expect(gone.serviceEvents).toEqual([{ service: 'web/a', type: 'Normal', reason: 'Withdrawn', message: 'node n1 withdrew 192.0.2.1/32 (no ready local endpoint)' }]);

    const cordon = planNodeServices({ node: node(true), config, pools, services, endpointSlices: slices(true), previous: gone.result, previousStatus: gone.status, now: t0 + 2000 });
    expect(cordon).toMatchObject({ nextWakeAt: t0 + 12_000, phaseEvent: { reason: 'ServiceDrainStarted' }, status: { phase: 'Draining', drainingSince: '2026-12-04T17:00:02Z' } });
    expect(cordon.advertisements[0]!.communities).toEqual(['65535:0']);
    // the agent restarts (no previous) 11 s later: the drain is not restarted, it completes on time
    const restarted = planNodeServices({ node: node(true), config, pools, services, endpointSlices: slices(true), previousStatus: cordon.status, now: t0 + 12_000 });
    expect(restarted).toMatchObject({ advertisements: [], status: { phase: 'Drained' }, phaseEvent: { reason: 'ServiceRoutesWithdrawn' } });
  });

  it('the drain delay runs from the cordon to the millisecond while the agent runs (the status keeps whole seconds)', () => {
    const t0 = Date.parse('2026-12-04T17:00:00.900Z');
    const cordon = planNodeServices({ node: node(true), config, pools, services, endpointSlices: slices(true), now: t0 });
    expect(cordon).toMatchObject({ nextWakeAt: t0 + 10_000, status: { phase: 'Draining', drainingSince: '2026-12-04T17:00:00Z' } });
    // Another sync 9.5 s later, with the stored (truncated) status: still draining until t0 + 10 s.
    const later = planNodeServices({ node: node(true), config, pools, services, endpointSlices: slices(true), previous: cordon.result, previousStatus: cordon.status, now: t0 + 9_500 });
    expect(later).toMatchObject({ nextWakeAt: t0 + 10_000, status: { phase: 'Draining' } });
    expect(later.advertisements[0]!.communities).toEqual(['65535:0']);
  });
});

describe('agent entry point: planNat', () => {
  it('reads IPPool natOutgoing, the ClusterIP range and the LoadBalancer pools', () => {
    const ipPool = (name: string, cidr: string, natOutgoing?: boolean) =>
      parseObject(IPPool, { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name }, spec: { cidr, ...(natOutgoing !== undefined ? { natOutgoing } : {}) } });
    const r = planNat({ ipPools: [ipPool('a', '10.244.0.0/16', true), ipPool('b', '10.250.0.0/16')], config: { clusterIP: { cidrs: ['10.96.0.0/12'] } }, lbPools: [lbPool('lb', { cidrs: ['192.0.2.0/28'] })] });
    expect(r.enabled).toBe(true);
    expect(r.table.sets.find((s) => s.name === 'cluster-dests-v4')!.elements).toEqual(['10.96.0.0/12', '10.244.0.0/16', '10.250.0.0/16', '192.0.2.0/28']);
    expect(planNat({ ipPools: [ipPool('a', '10.244.0.0/16')], config: undefined, lbPools: [] }).enabled).toBe(false);
  });
});

describe('each Service and EndpointSlice is parsed once per version', () => {
  const raw = () => ({ metadata: { name: 's', namespace: 'ns', uid: 'u' }, spec: { type: 'ClusterIP', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ports: [{ port: 80 }] } });
  it('the same object gives the same parse; a replaced object (a new version) is parsed again', () => {
    const a = raw();
    const first = serviceFromJsonOnce(a);
    expect(serviceFromJsonOnce(a)).toBe(first);
    expect(first).toEqual(serviceFromJson(a));
    const b = { ...a, spec: { ...a.spec, clusterIP: '10.96.0.11', clusterIPs: ['10.96.0.11'] } };
    expect(serviceFromJsonOnce(b)).not.toBe(first);
    expect(serviceFromJsonOnce(b)).toEqual(serviceFromJson(b));
    const slice = { metadata: { name: 's-1', namespace: 'ns', labels: { 'kubernetes.io/service-name': 's' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true } }] };
    expect(endpointSliceFromJsonOnce(slice)).toBe(endpointSliceFromJsonOnce(slice));
    expect(endpointSliceFromJsonOnce(slice)).toEqual(endpointSliceFromJson(slice));
  });
});
