import { describe, expect, it } from 'vitest';
import { LB_CONDITION, LB_IPS_ANNOTATION, LB_POOL_ANNOTATION, LB_SHARING_ANNOTATION, loadBalancerPoolSpec } from '../../operator/api/services.js';
import { allocateLoadBalancerAddresses, type AllocationResult } from '../../operator/services/allocate.js';
import { serviceFromJson, type ServiceInfo } from '../../operator/services/model.js';
import { UsedAddresses, lowestFree, poolCapacity, poolFromSpec, type PoolInfo } from '../../operator/services/pools.js';

const config = { loadBalancerClass: 'podfabric.io/bgp', handleUnclassed: true };

function pool(name: string, spec: Record<string, unknown>): PoolInfo {
  return poolFromSpec(name, loadBalancerPoolSpec.parse(spec));
}

let seq = 0;
function svc(name: string, o: { spec?: Record<string, unknown>; ingress?: string[]; annotations?: Record<string, string>; labels?: Record<string, string>; ns?: string; created?: string; conditions?: unknown[] } = {}): ServiceInfo {
  seq++;
  return serviceFromJson({
    metadata: {
      name,
      namespace: o.ns ?? 'default',
      uid: `uid-${name}`,
      creationTimestamp: o.created ?? `2026-01-01T00:00:${String(seq % 60).padStart(2, '0')}Z`,
      annotations: o.annotations,
      labels: o.labels,
    },
    spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }], ipFamilies: ['IPv4'], ...o.spec },
    status: { loadBalancer: { ingress: (o.ingress ?? []).map((ip) => ({ ip })) }, conditions: o.conditions ?? [] },
  });
}

const at = (n: number) => `2026-01-01T00:00:${String(n).padStart(2, '0')}Z`;
const run = (pools: PoolInfo[], services: ServiceInfo[], cfg = config) => allocateLoadBalancerAddresses({ config: cfg, pools, services });
const byName = (r: AllocationResult, name: string) => r.decisions.find((d) => d.name === name)!;

/** The Services as the apiserver holds them once the decisions were written. */
function applied(services: ServiceInfo[], r: AllocationResult): ServiceInfo[] {
  return services.map((s) => {
    const d = r.decisions.find((x) => x.namespace === s.namespace && x.name === s.name);
    if (!d) return s;
    return { ...s, ingressIPs: d.ingress, conditions: [{ ...d.condition, lastTransitionTime: '2026-01-01T00:00:00Z' }] };
  });
}

const v4 = pool('a-v4', { cidrs: ['192.0.2.0/30'] });

describe('LoadBalancer allocation', () => {
  it('gives the lowest free addresses, oldest Service first, with an Assigned condition and an Event', () => {
    const r = run([v4], [svc('young', { created: at(9) }), svc('old', { created: at(1) })]);
    expect(r.decisions.map((d) => [d.name, d.ingress])).toEqual([
      ['old', ['192.0.2.0']],
      ['young', ['192.0.2.1']],
    ]);
    const d = byName(r, 'old');
    expect(d.ingressChanged).toBe(true);
    expect(d.condition).toMatchObject({ type: LB_CONDITION, status: 'True', reason: 'Assigned', message: '192.0.2.0 (pool a-v4)' });
    expect(d.events).toEqual([{ type: 'Normal', reason: 'AddressAssigned', message: 'assigned 192.0.2.0' }]);
    expect(r.pools).toEqual([{ name: 'a-v4', total: 4, assigned: 2, free: 2, exhausted: false, overlapping: [], holders: ['default/old', 'default/young'] }]);
  });

  it.each([
    ['another class', { loadBalancerClass: 'other.io/lb' }, config, false],
    ['no class, handleUnclassed', {}, config, true],
    ['no class, handleUnclassed off', {}, { ...config, handleUnclassed: false }, false],
    ['our class, handleUnclassed off', { loadBalancerClass: 'podfabric.io/bgp' }, { ...config, handleUnclassed: false }, true],
    ['type NodePort', { type: 'NodePort' }, config, false],
  ])('%s → served %s', (_n, spec, cfg, servedIt) => {
    const r = run([v4], [svc('s', { spec })], cfg);
    expect(r.decisions.length).toBe(servedIt ? 1 : 0);
  });

  it('is restart-safe and deterministic: a second run over the written statuses changes nothing, in any input order', () => {
    const services = [svc('a', { created: at(1) }), svc('b', { created: at(2) }), svc('c', { created: at(3), spec: { loadBalancerClass: 'x.io/y' } })];
    const first = run([v4], services);
    const after = applied(services, first);
    for (const order of [after, [...after].reverse()]) {
      const again = run([v4], order);
      expect(again.decisions.map((d) => [d.name, d.ingress, d.ingressChanged, d.conditionChanged, d.events.length])).toEqual([
        ['a', ['192.0.2.0'], false, false, 0],
        ['b', ['192.0.2.1'], false, false, 0],
      ]);
    }
  });

  it('never moves an assigned address: not for a lower free one, a disabled pool, a selector that no longer matches, nor a lost pool', () => {
    const keep = svc('keep', { ingress: ['192.0.2.3'] });
    expect(byName(run([v4], [keep]), 'keep')).toMatchObject({ ingress: ['192.0.2.3'], ingressChanged: false });
    const disabled = pool('a-v4', { cidrs: ['192.0.2.0/30'], disabled: true, namespaces: ['elsewhere'] });
    expect(byName(run([disabled], [keep]), 'keep')).toMatchObject({ ingress: ['192.0.2.3'], ingressChanged: false, condition: { status: 'True' } });
    const orphan = byName(run([], [keep]), 'keep');
    expect(orphan).toMatchObject({ ingress: ['192.0.2.3'], ingressChanged: false, condition: { status: 'False', reason: 'AddressOutsidePools' } });
  });

  it('two Services holding one address: the older keeps it, the younger gets another with a Warning', () => {
    const r = run([v4], [svc('young', { created: at(5), ingress: ['192.0.2.1'] }), svc('old', { created: at(1), ingress: ['192.0.2.1'] })]);
    expect(byName(r, 'old')).toMatchObject({ ingress: ['192.0.2.1'], ingressChanged: false });
    const y = byName(r, 'young');
    expect(y.ingress).toEqual(['192.0.2.0']);
    expect(y.events.map((e) => e.reason)).toEqual(['AddressConflict', 'AddressAssigned', 'AddressReleased']);
  });

  it('a requested address: granted, refused with a reason when taken / outside pools / invalid, and moved only once obtainable', () => {
    const want = (ip: string, extra: Parameters<typeof svc>[1] = {}) => svc('req', { created: at(9), annotations: { [LB_IPS_ANNOTATION]: ip }, ...extra });
    expect(byName(run([v4], [want('192.0.2.2')]), 'req').ingress).toEqual(['192.0.2.2']);
    expect(byName(run([v4], [svc('legacy', { spec: { loadBalancerIP: '192.0.2.3' } })]), 'legacy').ingress).toEqual(['192.0.2.3']);
    const holder = svc('holder', { created: at(1), ingress: ['192.0.2.2'] });
    const taken = byName(run([v4], [holder, want('192.0.2.2')]), 'req');
    expect(taken).toMatchObject({ ingress: [], condition: { status: 'False', reason: 'AddressInUse' } });
    expect(taken.condition.message).toContain('default/holder');
    expect(taken.events).toEqual([{ type: 'Warning', reason: 'AddressInUse', message: taken.condition.message }]);
    expect(byName(run([v4], [want('198.51.100.1')]), 'req').condition.reason).toBe('AddressNotInPool');
    expect(byName(run([v4], [want('nonsense')]), 'req')).toMatchObject({ ingress: [], condition: { reason: 'InvalidRequest' } });
    expect(byName(run([v4], [want('2001:db8::1')]), 'req').condition.reason).toBe('InvalidRequest');
    // changed request: moves when the new address is free, stays when it is not
    expect(byName(run([v4], [want('192.0.2.3', { ingress: ['192.0.2.0'] })]), 'req')).toMatchObject({ ingress: ['192.0.2.3'], ingressChanged: true });
    const stuck = byName(run([v4], [holder, want('192.0.2.2', { ingress: ['192.0.2.0'] })]), 'req');
    expect(stuck).toMatchObject({ ingress: ['192.0.2.0'], ingressChanged: false, condition: { status: 'False', reason: 'AddressInUse' } });
  });

  it('a pool that does not serve the Service refuses a request; the pool annotation restricts auto-assignment', () => {
    const scoped = pool('b-scoped', { cidrs: ['198.51.100.0/30'], namespaces: ['team-a'], autoAssign: false });
    expect(byName(run([v4, scoped], [svc('x', { annotations: { [LB_IPS_ANNOTATION]: '198.51.100.1' } })]), 'x').condition.reason).toBe('PoolNotAllowed');
    expect(byName(run([v4, scoped], [svc('y', { ns: 'team-a', annotations: { [LB_POOL_ANNOTATION]: 'b-scoped' } })]), 'y').ingress).toEqual(['198.51.100.0']);
    expect(byName(run([v4, scoped], [svc('z', { annotations: { [LB_POOL_ANNOTATION]: 'nope' } })]), 'z').condition.reason).toBe('PoolNotFound');
    // autoAssign false: a Service asking nothing never lands there
    expect(byName(run([scoped], [svc('w', { ns: 'team-a' })]), 'w').condition.reason).toBe('NoPool');
  });

  it.each<[string, { k: string; ports: Array<{ port: number; protocol: string }>; etp?: string }, boolean]>([
    ['same key, other ports', { k: 'web', ports: [{ port: 443, protocol: 'TCP' }] }, true],
    ['same key, same port on UDP', { k: 'web', ports: [{ port: 80, protocol: 'UDP' }] }, true],
    ['same key, same TCP port', { k: 'web', ports: [{ port: 80, protocol: 'TCP' }] }, false],
    ['other key', { k: 'dns', ports: [{ port: 53, protocol: 'UDP' }] }, false],
    ['one is Local', { k: 'web', ports: [{ port: 443, protocol: 'TCP' }], etp: 'Local' }, false],
  ])('sharing: %s → shared %s', (_n, o, shared) => {
    const first = svc('first', { created: at(1), annotations: { [LB_SHARING_ANNOTATION]: 'web' } });
    const second = svc('second', { created: at(2), annotations: { [LB_SHARING_ANNOTATION]: o.k }, spec: { ports: o.ports, externalTrafficPolicy: o.etp ?? 'Cluster' } });
    const r = run([v4], [first, second]);
    expect(byName(r, 'second').ingress).toEqual([shared ? '192.0.2.0' : '192.0.2.1']);
    if (shared) expect(byName(r, 'second').condition.message).toBe('192.0.2.0 (pool a-v4) shared with default/first');
  });

  it('Local Services share only with the same pod selector', () => {
    const mk = (name: string, sel: Record<string, string>, port: number) =>
      svc(name, { annotations: { [LB_SHARING_ANNOTATION]: 'k' }, spec: { externalTrafficPolicy: 'Local', selector: sel, ports: [{ port, protocol: 'TCP' }] } });
    expect(byName(run([v4], [mk('a', { app: 'x' }, 80), mk('b', { app: 'x' }, 81)]), 'b').ingress).toEqual(['192.0.2.0']);
    expect(byName(run([v4], [mk('a', { app: 'x' }, 80), mk('b', { app: 'y' }, 81)]), 'b').ingress).toEqual(['192.0.2.1']);
  });

  it('exhaustion: the Service left out gets PoolExhausted and one Warning; the pool is marked; the others are untouched', () => {
    const tiny = pool('tiny', { cidrs: ['192.0.2.0/31'] });
    const services = [svc('a', { created: at(1) }), svc('b', { created: at(2) }), svc('c', { created: at(3) })];
    const r = run([tiny], services);
    expect(r.decisions.map((d) => d.ingress)).toEqual([['192.0.2.0'], ['192.0.2.1'], []]);
    const c = byName(r, 'c');
    expect(c.condition).toMatchObject({ status: 'False', reason: 'PoolExhausted', message: 'no free IPv4 address in pool tiny.' });
    expect(c.events).toEqual([{ type: 'Warning', reason: 'PoolExhausted', message: c.condition.message }]);
    expect(r.pools[0]).toMatchObject({ total: 2, assigned: 2, free: 0, exhausted: true });
    const again = run([tiny], applied(services, r));
    expect(again.decisions.flatMap((d) => d.events)).toEqual([]);
    expect(byName(again, 'c').conditionChanged).toBe(false);
  });

  it('dual stack: one address per family; RequireDualStack takes none when a family cannot be served; PreferDualStack keeps what it got', () => {
    const v6 = pool('b-v6', { cidrs: ['2001:db8:1b::/120'] });
    const ds = (policy: string) => svc('ds', { spec: { ipFamilies: ['IPv6', 'IPv4'], ipFamilyPolicy: policy } });
    expect(byName(run([v4, v6], [ds('RequireDualStack')]), 'ds').ingress).toEqual(['2001:db8:1b::', '192.0.2.0']);
    const req = byName(run([v4], [ds('RequireDualStack')]), 'ds');
    expect(req).toMatchObject({ ingress: [], condition: { status: 'False', reason: 'NoPool' } });
    const pref = byName(run([v4], [ds('PreferDualStack')]), 'ds');
    expect(pref).toMatchObject({ ingress: ['192.0.2.0'], condition: { status: 'False', reason: 'NoPool' } });
    expect(pref.condition.message).toContain('Assigned: 192.0.2.0 (pool a-v4)');
  });

  it('addresses in the status of another implementation’s Services are never handed out', () => {
    const foreign = svc('metallb', { created: at(1), spec: { loadBalancerClass: 'metallb.io/x' }, ingress: ['192.0.2.0'] });
    const r = run([v4], [foreign, svc('mine', { created: at(2) })]);
    expect(r.decisions.map((d) => d.name)).toEqual(['mine']);
    expect(byName(r, 'mine').ingress).toEqual(['192.0.2.1']);
    const req = byName(run([v4], [foreign, svc('mine', { annotations: { [LB_IPS_ANNOTATION]: '192.0.2.0' } })]), 'mine');
    expect(req.condition.message).toContain('another load-balancer implementation');
  });

  it('a Service that is no longer type LoadBalancer gets its addresses released', () => {
    const r = run([v4], [svc('was', { spec: { type: 'ClusterIP' }, ingress: ['192.0.2.1'] })]);
    expect(byName(r, 'was')).toMatchObject({ ingress: [], ingressChanged: true, condition: { status: 'False', reason: 'NotLoadBalancer' } });
    expect(byName(r, 'was').events).toEqual([{ type: 'Normal', reason: 'AddressReleased', message: 'released 192.0.2.1' }]);
    expect(run([v4], [svc('never', { spec: { type: 'ClusterIP' } })]).decisions).toEqual([]);
  });
});

describe('pool arithmetic', () => {
  it('UsedAddresses hands out addresses in order and finds a released one again (its search hint is reset)', () => {
    const p = pool('p', { cidrs: ['192.0.2.0/30', '198.51.100.0/31'] });
    const u = new UsedAddresses();
    const got: Array<string | null> = [];
    for (let k = 0; k < 5; k++) {
      const ip = u.lowestFree(p, 4);
      got.push(ip);
      if (ip) u.add(ip);
    }
    expect(got).toEqual(['192.0.2.0', '192.0.2.1', '192.0.2.2', '192.0.2.3', '198.51.100.0']);
    u.remove('192.0.2.1');
    expect(u.has('192.0.2.1')).toBe(false);
    expect(u.lowestFree(p, 4)).toBe('192.0.2.1');
    u.add('192.0.2.1');
    u.add('198.51.100.1');
    expect(u.lowestFree(p, 4)).toBeNull();
  });

  it('an address released by a changed request in the same pass goes to the next Service needing one', () => {
    const mover = svc('mover', { created: at(1), ingress: ['192.0.2.0'], annotations: { [LB_IPS_ANNOTATION]: '192.0.2.3' } });
    const r = run([v4], [mover, svc('a', { created: at(2), ingress: ['192.0.2.1'] }), svc('b', { created: at(3) })]);
    expect(r.decisions.map((d) => [d.name, d.ingress])).toEqual([
      ['mover', ['192.0.2.3']],
      ['a', ['192.0.2.1']],
      ['b', ['192.0.2.0']],
    ]);
  });

  it('avoidBuggyIPs skips .0 and .255 and counts them out', () => {
    const p = pool('p', { cidrs: ['10.0.0.0/23'], avoidBuggyIPs: true });
    expect(lowestFree(p, 4, new Set())).toBe('10.0.0.1');
    expect(lowestFree(p, 4, new Set(Array.from({ length: 254 }, (_, i) => `10.0.0.${i + 1}`)))).toBe('10.0.1.1');
    expect(poolCapacity(p)).toBe(512 - 4);
    expect(poolCapacity(pool('q', { cidrs: ['10.0.0.252/30'], avoidBuggyIPs: true }))).toBe(3);
  });
  it('finds the lowest free address of a huge IPv6 pool without walking it, and saturates its capacity', () => {
    const p = pool('p', { cidrs: ['2001:db8::/64', '2001:db8:1::/126'] });
    expect(lowestFree(p, 6, new Set(['2001:db8::', '2001:db8::1', '2001:db8::3']))).toBe('2001:db8::2');
    expect(lowestFree(p, 4, new Set())).toBeNull();
    expect(poolCapacity(p)).toBe(Number.MAX_SAFE_INTEGER);
  });
  it('overlapping pools are reported on both', () => {
    const r = run([v4, pool('b', { cidrs: ['192.0.2.0/24'] })], []);
    expect(r.pools.map((p) => [p.name, p.overlapping])).toEqual([
      ['a-v4', ['b']],
      ['b', ['a-v4']],
    ]);
  });
});
