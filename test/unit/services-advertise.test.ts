import { describe, expect, it } from 'vitest';
import { EXCLUDE_LB_LABEL, loadBalancerPoolSpec, resolveServicesConfig, type ServicesConfigInput } from '../../operator/api/services.js';
import { clusterIPContribution, mergeNodeRoutes, nodeServiceAdvertisements, serviceContribution, type NodeAdvertisementInput, type NodeContext } from '../../operator/services/advertise.js';
import { drainState } from '../../operator/services/drain.js';
import { endpointSliceFromJson, nodeFromJson, serviceFromJson } from '../../operator/services/model.js';
import { poolFromSpec } from '../../operator/services/pools.js';

const pools = [poolFromSpec('lb', loadBalancerPoolSpec.parse({ cidrs: ['192.0.2.0/28', '2001:db8:1b::/120'], communities: ['65000:7'] }))];
const cfgInput: ServicesConfigInput = {
  clusterIP: { advertise: true, cidrs: ['10.96.0.0/12'], communities: ['65000:1'] },
  externalIPs: { advertise: true, allowedCIDRs: ['198.51.100.0/24'], communities: ['65000:2'] },
  loadBalancer: { communities: ['65000:3'] },
  drain: { withdrawDelaySeconds: 30 },
};
const config = resolveServicesConfig(cfgInput);

const node = (o: { name?: string; labels?: Record<string, string>; unschedulable?: boolean } = {}) =>
  nodeFromJson({
    metadata: { name: o.name ?? 'n1', labels: o.labels ?? {} },
    spec: { unschedulable: o.unschedulable },
    status: { addresses: [{ type: 'Hostname', address: 'n1' }, { type: 'InternalIP', address: '172.20.1.11' }, { type: 'InternalIP', address: 'fd00:20:1::11' }] },
  });

const service = (name: string, o: { etp?: string; ingress?: string[]; externalIPs?: string[]; families?: string[]; labels?: Record<string, string>; cls?: string } = {}) =>
  serviceFromJson({
    metadata: { name, namespace: 'web', labels: o.labels },
    spec: {
      type: 'LoadBalancer',
      clusterIPs: ['10.96.0.10'],
      ipFamilies: o.families ?? ['IPv4'],
      externalTrafficPolicy: o.etp ?? 'Cluster',
      externalIPs: o.externalIPs,
      ...(o.cls ? { loadBalancerClass: o.cls } : {}),
      ports: [{ port: 80, protocol: 'TCP' }],
    },
    status: { loadBalancer: { ingress: (o.ingress ?? []).map((ip) => ({ ip })) } },
  });

type Ep = { node?: string; ready?: boolean; serving?: boolean; terminating?: boolean };
const slice = (svc: string, eps: Ep[], addressType = 'IPv4') =>
  endpointSliceFromJson({
    metadata: { name: `${svc}-x`, namespace: 'web', labels: { 'kubernetes.io/service-name': svc } },
    addressType,
    endpoints: eps.map((e) => ({
      addresses: ['10.244.0.5'],
      ...(e.node ? { nodeName: e.node } : {}),
      conditions: { ready: e.ready ?? true, serving: e.serving ?? e.ready ?? true, terminating: e.terminating ?? false },
    })),
  });

const run = (o: Partial<NodeAdvertisementInput>) =>
  nodeServiceAdvertisements({ node: node(), config, pools, services: [], endpointSlices: [], now: 1_000_000, ...o });
const prefixes = (o: Partial<NodeAdvertisementInput>) => run(o).routes.map((r) => r.prefix);

describe('who advertises what', () => {
  it('the ClusterIP range is one aggregate from every eligible node, with its class communities', () => {
    const r = run({});
    expect(r.phase).toBe('Active');
    expect(r.advertisements).toEqual([{ prefix: '10.96.0.0/12', nextHop: '172.20.1.11', communities: ['65000:1'] }]);
    expect(r.routes[0]).toMatchObject({ class: 'ClusterIP', services: [], local: false });
  });

  it.each<[string, Ep[], boolean]>([
    ['a ready endpoint on this node', [{ node: 'n1' }], true],
    ['a ready endpoint elsewhere only', [{ node: 'n2' }], false],
    ['a not-ready endpoint on this node', [{ node: 'n1', ready: false, serving: false }], false],
    ['a terminating (still serving) endpoint on this node', [{ node: 'n1', ready: false, serving: true, terminating: true }], false],
    ['terminating here, ready elsewhere', [{ node: 'n1', ready: false, terminating: true }, { node: 'n2' }], false],
    ['one of two local endpoints ready', [{ node: 'n1', ready: false }, { node: 'n1' }], true],
    ['no endpoints at all', [], false],
  ])('Local: %s (%j) → advertised %s', (_n, eps, yes) => {
    const svc = service('s', { etp: 'Local', ingress: ['192.0.2.1'] });
    expect(prefixes({ services: [svc], endpointSlices: [slice('s', eps)] }).includes('192.0.2.1/32')).toBe(yes);
  });

  it.each<[string, Ep[], boolean]>([
    ['a ready endpoint on another node', [{ node: 'n2' }], true],
    ['only not-ready endpoints', [{ node: 'n1', ready: false }], false],
    ['only terminating endpoints', [{ node: 'n2', ready: false, terminating: true }], false],
  ])('Cluster: %s (%j) → advertised %s', (_n, eps, yes) => {
    const svc = service('s', { ingress: ['192.0.2.1'] });
    expect(prefixes({ services: [svc], endpointSlices: [slice('s', eps)] }).includes('192.0.2.1/32')).toBe(yes);
  });

  it('withdraws the moment the last ready local endpoint goes', () => {
    const svc = service('s', { etp: 'Local', ingress: ['192.0.2.1'] });
    const before = run({ services: [svc], endpointSlices: [slice('s', [{ node: 'n1' }, { node: 'n1' }])] });
    const one = run({ services: [svc], endpointSlices: [slice('s', [{ node: 'n1', ready: false, terminating: true }, { node: 'n1' }])] });
    const none = run({ services: [svc], endpointSlices: [slice('s', [{ node: 'n1', ready: false, terminating: true }, { node: 'n1', ready: false, terminating: true }])] });
    expect(before.routes.map((r) => r.prefix)).toContain('192.0.2.1/32');
    expect(one.routes.map((r) => r.prefix)).toContain('192.0.2.1/32');
    expect(none.routes.map((r) => r.prefix)).toEqual(['10.96.0.0/12']);
  });

  it('dual stack: each family follows its own EndpointSlices; /128 with the IPv6 next hop and pool communities', () => {
    const svc = service('s', { etp: 'Local', families: ['IPv4', 'IPv6'], ingress: ['192.0.2.1', '2001:db8:1b::1'] });
    const r = run({ services: [svc], endpointSlices: [slice('s', [{ node: 'n2' }]), slice('s', [{ node: 'n1' }], 'IPv6')] });
    expect(r.advertisements).toEqual([
      { prefix: '10.96.0.0/12', nextHop: '172.20.1.11', communities: ['65000:1'] },
      { prefix: '2001:db8:1b::1/128', nextHop: 'fd00:20:1::11', communities: ['65000:3', '65000:7'] },
    ]);
    expect(r.routes[1]).toMatchObject({ class: 'LoadBalancer', services: ['web/s'], local: true });
  });

  it('only addresses from a pool, of a served class; ExternalIPs only inside allowedCIDRs; skips Services kube-proxy does not serve', () => {
    const eps = (n: string) => slice(n, [{ node: 'n1' }]);
    const services = [
      service('outside', { ingress: ['203.0.113.9'] }),
      service('other-class', { ingress: ['192.0.2.2'], cls: 'metallb.io/x' }),
      service('ext', { externalIPs: ['198.51.100.7', '203.0.113.7'] }),
      service('proxied-elsewhere', { ingress: ['192.0.2.3'], labels: { 'service.kubernetes.io/service-proxy-name': 'other' } }),
    ];
    const r = run({ services, endpointSlices: services.map((s) => eps(s.name)) });
    expect(r.routes.map((x) => [x.prefix, x.class, x.communities])).toEqual([
      ['10.96.0.0/12', 'ClusterIP', ['65000:1']],
      ['198.51.100.7/32', 'ExternalIP', ['65000:2']],
    ]);
  });

  it('two Services sharing an address make one route listing both', () => {
    const a = service('a', { ingress: ['192.0.2.1'] });
    const b = service('b', { ingress: ['192.0.2.1'] });
    const r = run({ services: [b, a], endpointSlices: [slice('a', [{ node: 'n9' }]), slice('b', [{ node: 'n9' }])] });
    expect(r.routes.filter((x) => x.prefix === '192.0.2.1/32')).toEqual([
      { prefix: '192.0.2.1/32', class: 'LoadBalancer', nextHop: '172.20.1.11', communities: ['65000:3', '65000:7'], services: ['web/a', 'web/b'], local: false },
    ]);
  });

  it('nodes labelled exclude-from-external-load-balancers or outside the nodeSelector advertise nothing', () => {
    const svc = service('s', { ingress: ['192.0.2.1'] });
    const eps = [slice('s', [{ node: 'n1' }])];
    expect(run({ node: node({ labels: { [EXCLUDE_LB_LABEL]: '' } }), services: [svc], endpointSlices: eps })).toEqual({ phase: 'Excluded', routes: [], advertisements: [] });
    const picky = resolveServicesConfig({ ...cfgInput, nodeSelector: { matchLabels: { edge: 'true' } } });
    expect(run({ config: picky }).phase).toBe('Excluded');
    expect(run({ config: picky, node: node({ labels: { edge: 'true' } }) }).routes.length).toBe(1);
  });

  it('defaults: only LoadBalancer addresses, no ClusterIP range, no ExternalIPs', () => {
    const svc = service('s', { ingress: ['192.0.2.1'], externalIPs: ['198.51.100.7'] });
    const r = run({ config: resolveServicesConfig(undefined), services: [svc], endpointSlices: [slice('s', [{ node: 'n1' }])] });
    expect(r.advertisements).toEqual([{ prefix: '192.0.2.1/32', nextHop: '172.20.1.11', communities: ['65000:7'] }]);
  });
});

describe('incremental evaluation', () => {
  it('per-Service contributions merged give exactly the whole evaluation, and one Service can be recomputed alone', () => {
    const services = [service('a', { etp: 'Local', ingress: ['192.0.2.1'] }), service('b', { ingress: ['192.0.2.1'] }), service('c', { externalIPs: ['198.51.100.9'] })];
    const slices = [slice('a', [{ node: 'n1' }]), slice('b', [{ node: 'n2' }]), slice('c', [{ node: 'n3' }])];
    const ctx: NodeContext = { node: node(), config, pools };
    const cache = new Map(services.map((s) => [s.name, serviceContribution(ctx, s, slices)]));
    const merged = () => mergeNodeRoutes(ctx, [clusterIPContribution(ctx), ...cache.values()], undefined, 0);
    expect(merged()).toEqual(run({ services, endpointSlices: slices, now: 0 }));
    // a's last local endpoint goes: only a is recomputed; the shared prefix stays for b (Cluster)
    const gone = [slice('a', [{ node: 'n1', ready: false, terminating: true }]), ...slices.slice(1)];
    cache.set('a', serviceContribution(ctx, services[0]!, gone));
    expect(merged()).toEqual(run({ services, endpointSlices: gone, now: 0 }));
    expect(merged().routes.find((r) => r.prefix === '192.0.2.1/32')).toMatchObject({ services: ['web/b'], local: false });
  });
});

describe('drain', () => {
  const svc = service('s', { ingress: ['192.0.2.1'] });
  const eps = [slice('s', [{ node: 'n2' }])];
  const cordoned = node({ unschedulable: true });

  it('cordoned: Service routes re-advertised with GRACEFUL_SHUTDOWN, then withdrawn after the delay; uncordon restores', () => {
    const t0 = 1_000_000;
    const first = run({ node: cordoned, services: [svc], endpointSlices: eps, now: t0 });
    expect(first).toMatchObject({ phase: 'Draining', cordonedSince: t0, nextWakeAt: t0 + 30_000 });
    expect(first.advertisements.map((a) => a.communities)).toEqual([
      ['65000:1', '65535:0'],
      ['65000:3', '65000:7', '65535:0'],
    ]);
    const later = run({ node: cordoned, services: [svc], endpointSlices: eps, now: t0 + 29_999, cordonedSince: t0 });
    expect(later.phase).toBe('Draining');
    const done = run({ node: cordoned, services: [svc], endpointSlices: eps, now: t0 + 30_000, cordonedSince: t0 });
    expect(done).toEqual({ phase: 'Drained', cordonedSince: t0, routes: [], advertisements: [] });
    const back = run({ services: [svc], endpointSlices: eps, now: t0 + 40_000, cordonedSince: t0 });
    expect(back.phase).toBe('Active');
    expect(back.cordonedSince).toBeUndefined();
    expect(back.advertisements.map((a) => a.communities)).toEqual([['65000:1'], ['65000:3', '65000:7']]);
  });

  it.each([
    ['not cordoned', { unschedulable: false, now: 5 }, { phase: 'Active' }],
    ['just cordoned', { unschedulable: true, now: 5 }, { phase: 'Draining', cordonedSince: 5, nextWakeAt: 10_005 }],
    ['cordoned long ago (agent restarted)', { unschedulable: true, cordonedSince: 0, now: 20_000 }, { phase: 'Drained', cordonedSince: 0 }],
    ['clock stepped back', { unschedulable: true, cordonedSince: 50_000, now: 1_000 }, { phase: 'Draining', cordonedSince: 50_000, nextWakeAt: 60_000 }],
    ['drain disabled', { unschedulable: true, now: 5, enabled: false }, { phase: 'Drained', cordonedSince: 5 }],
    ['zero delay', { unschedulable: true, now: 5, delay: 0 }, { phase: 'Drained', cordonedSince: 5 }],
  ])('drainState: %s', (_n, i: { unschedulable: boolean; now: number; cordonedSince?: number; enabled?: boolean; delay?: number }, want) => {
    const { enabled = true, delay = 10, ...rest } = i;
    expect(drainState({ ...rest, drain: { enabled, withdrawDelaySeconds: delay } })).toEqual(want);
  });
});

describe('model parsing', () => {
  it('tolerates junk and reads EndpointSlice condition defaults per the API (nil ready = ready, terminating never ready)', () => {
    expect(serviceFromJson(null)).toMatchObject({ name: '', type: 'ClusterIP', ipFamilies: ['IPv4'], ingressIPs: [] });
    const s = endpointSliceFromJson({ metadata: { labels: { 'kubernetes.io/service-name': 'x' } }, endpoints: [{}, { conditions: { ready: true, terminating: true } }, 'junk'] });
    expect(s.endpoints.slice(0, 2)).toEqual([
      { ready: true, serving: true, terminating: false },
      { ready: false, serving: false, terminating: true },
    ]);
    const v6 = serviceFromJson({ metadata: { name: 'a' }, spec: { clusterIP: 'FD00::A' }, status: { loadBalancer: { ingress: [{ ip: '2001:DB8::0001' }, { hostname: 'x' }] } } });
    expect(v6).toMatchObject({ clusterIPs: ['fd00::a'], ipFamilies: ['IPv6'], ingressIPs: ['2001:db8::1'] });
    expect(serviceFromJson({ spec: { clusterIP: 'None' } }).clusterIPs).toEqual([]);
  });
});
