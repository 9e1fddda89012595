/**
 * Service addresses over BGP against the real kube-apiserver: the generated CRD schemas and CEL rules
 * (LoadBalancerPool, FabricConfig spec.services, IPPool natOutgoing) and the controller's Service
 * status writes (planLoadBalancers → server-side apply on services/status), re-planned from what the
 * apiserver returns (restart safety on real objects, with every defaulted field).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_PATH } from '../../operator/api/common.js';
import { LoadBalancerPool, type LoadBalancerPoolSpec } from '../../operator/api/services.js';
import { parseObject } from '../../operator/api/kinds.js';
import { planLoadBalancers } from '../../operator/services/index.js';
import { applyObjects, ensureNamespace, kubectl, testRest } from '../support/kube.js';

const rest = testRest();
const NS = `pf-svc-${Date.now().toString(36)}`;
const POOL = 'pf-svc-pool';

const lbPool = (name: string, spec: LoadBalancerPoolSpec) => ({ apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', metadata: { name }, spec });
const fabricConfig = (services: unknown) => ({ apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'default' }, spec: { services } });
const rejected = async (obj: unknown) => {
  const r = await applyObjects([obj], { allowFail: true });
  expect(r.code, `accepted: ${JSON.stringify(obj)}`).not.toBe(0);
  return r.stderr;
};

afterAll(async () => {
  await kubectl(['delete', 'loadbalancerpools', '--all', '--wait=false'], { allowFail: true });
  await kubectl(['delete', 'fabricconfig', 'default', '--ignore-not-found'], { allowFail: true });
  await kubectl(['delete', 'ippool', 'pf-svc-nat', '--ignore-not-found'], { allowFail: true });
  await kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFail: true });
});

describe('Service advertisement API on the apiserver', () => {
  it('LoadBalancerPool: CIDRs may be added, never removed; host bits and duplicates are refused; printer columns work', async () => {
    await applyObjects([lbPool(POOL, { cidrs: ['192.0.2.0/28'] })]);
    await applyObjects([lbPool(POOL, { cidrs: ['192.0.2.0/28', '2001:db8:1b::/120'] })]);
    expect(await rejected(lbPool(POOL, { cidrs: ['2001:db8:1b::/120'] }))).toContain('may be added, never removed');
    expect(await rejected(lbPool('pf-svc-bad', { cidrs: ['192.0.2.1/28'] }))).toContain('must not have host bits set');
    expect(await rejected(lbPool('pf-svc-dup', { cidrs: ['192.0.2.0/28', '192.0.2.0/28'] }))).toMatch(/duplicate entries/);
    const table = (await kubectl(['get', 'pflbpool', POOL])).stdout;
    expect(table.split('\n')[0]).toMatch(/NAME\s+CIDRS\s+ASSIGNED\s+FREE\s+DISABLED\s+EXHAUSTED\s+AGE/);
  });

  it('FabricConfig spec.services: CEL refuses advertising ranges it does not know, and a class without a domain', async () => {
    expect(await rejected(fabricConfig({ clusterIP: { advertise: true } }))).toContain('needs cidrs');
    expect(await rejected(fabricConfig({ externalIPs: { advertise: true } }))).toContain('needs allowedCIDRs');
    expect(await rejected(fabricConfig({ loadBalancerClass: 'bgp' }))).toMatch(/loadBalancerClass/);
    expect(await rejected(fabricConfig({ drain: { withdrawDelaySeconds: 7200 } }))).toMatch(/withdrawDelaySeconds/);
    await applyObjects([
      fabricConfig({
        clusterIP: { advertise: true, cidrs: ['10.96.0.0/12'], communities: ['65000:1'] },
        externalIPs: { advertise: true, allowedCIDRs: ['198.51.100.0/24'] },
        drain: { withdrawDelaySeconds: 20 },
      }),
    ]);
    const ok = JSON.parse((await kubectl(['get', 'fabricconfig', 'default', '-o', 'json'])).stdout);
    expect(ok.spec.services.clusterIP.cidrs).toEqual(['10.96.0.0/12']);
    await applyObjects([{ apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'pf-svc-nat' }, spec: { cidr: '10.248.0.0/16', natOutgoing: true } }]);
    expect(JSON.parse((await kubectl(['get', 'ippool', 'pf-svc-nat', '-o', 'json'])).stdout).spec.natOutgoing).toBe(true);
  });
});

describe('LoadBalancer addresses written to real Services', () => {
  beforeAll(async () => {
    await ensureNamespace(NS);
    const svc = (name: string, spec: Record<string, unknown> = {}, annotations: Record<string, string> = {}) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: NS, annotations },
      spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80, protocol: 'TCP' }], ...spec },
    });
    // created one by one so creationTimestamps (1 s resolution) do not decide the order alone
    await applyObjects([svc('a')]);
    await applyObjects([svc('b', {}, { 'podfabric.io/load-balancer-ips': '192.0.2.9' })]);
    await applyObjects([svc('other', { loadBalancerClass: 'example.com/other' })]);
  });

  const plan = async () => {
    const pools = (await rest.get<{ items: unknown[] }>(`${API_PATH}/loadbalancerpools`)).items.map((p) => parseObject(LoadBalancerPool, p));
    const services = (await rest.get<{ items: unknown[] }>(`/api/v1/namespaces/${NS}/services`)).items;
    return planLoadBalancers({ config: undefined, pools, services, now: new Date() });
  };

  it('assigns, writes status by server-side apply, and finds nothing to do when planned again from the apiserver', async () => {
    const first = await plan();
    expect(first.servicePatches.map((p) => p.name).sort()).toEqual(['a', 'b']);
    for (const p of first.servicePatches) await rest.apply(`/api/v1/namespaces/${p.namespace}/services/${p.name}/status`, p.body, 'podfabric-controller');
    const got = async (name: string) => rest.get<{ status: { loadBalancer: { ingress?: Array<{ ip: string }> }; conditions?: Array<{ type: string; status: string; reason: string }> } }>(`/api/v1/namespaces/${NS}/services/${name}`);
    const a = await got('a');
    expect(a.status.loadBalancer.ingress).toEqual([{ ip: '192.0.2.0', ipMode: 'VIP' }]);
    expect(a.status.conditions).toEqual([expect.objectContaining({ type: 'podfabric.io/LoadBalancerAddress', status: 'True', reason: 'Assigned' })]);
    expect((await got('b')).status.loadBalancer.ingress).toEqual([{ ip: '192.0.2.9', ipMode: 'VIP' }]);
    expect((await got('other')).status.loadBalancer.ingress).toBeUndefined();
    const again = await plan();
    expect(again.servicePatches).toEqual([]);
    expect(again.decisions.map((d) => [d.name, d.ingress]).sort()).toEqual([
      ['a', ['192.0.2.0']],
      ['b', ['192.0.2.9']],
    ]);
    const pool = again.poolStatuses.find((p) => p.name === POOL)!;
    await rest.apply(`${API_PATH}/loadbalancerpools/${POOL}/status`, { apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', metadata: { name: POOL }, status: pool.status }, 'podfabric-controller');
    const table = (await kubectl(['get', 'pflbpool', POOL, '--no-headers'])).stdout;
    expect(table).toMatch(/^pf-svc-pool\s+\S+\s+2\s+270\s/);
  });
});
