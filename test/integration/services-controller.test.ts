/**
 * The controller's ServiceReconciler against the real kube-apiserver: an in-process FabricController
 * (the same code `podfabric controller` runs while leading) assigns LoadBalancer addresses into real
 * Services' status, says why when it cannot (condition + Warning Event), leaves other classes alone,
 * and keeps the LoadBalancerPool's status and finalizer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_PATH as API } from '../../operator/api/common.js';
import { FabricController } from '../../operator/controller/controller.js';
import { KubeEventRecorder } from '../../operator/kube/events.js';
import { newRegistry } from '../../operator/lib/metrics.js';
import { applyObjects, cleanCluster, ensureNamespace, kubectl, testRest, waitFor, type Listed } from '../support/kube.js';

const rest = testRest();
const NS = `pf-svcc-${Date.now().toString(36)}`;
const POOL = 'pf-svcc-pool';
let controller: FabricController;

interface Svc {
  metadata: { name: string };
  status?: { loadBalancer?: { ingress?: Array<{ ip: string }> }; conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
}
interface Pool {
  metadata: { finalizers?: string[] };
  status?: { addressesAssigned?: number; addressesFree?: number; conditions?: Array<{ type: string; status: string; reason: string }> };
}
const svc = (name: string, spec: Record<string, unknown> = {}, annotations: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: NS, annotations },
  spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80, protocol: 'TCP' }], ...spec },
});
const getSvc = (name: string) => rest.get<Svc>(`/api/v1/namespaces/${NS}/services/${name}`);
const ips = (s: Svc) => (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
const lbCond = (s: Svc) => s.status?.conditions?.find((c) => c.type === 'podfabric.io/LoadBalancerAddress');
const getPool = () => rest.get<Pool>(`${API}/loadbalancerpools/${POOL}`);
const eventsOf = async (name: string) =>
  (await rest.get<Listed<{ type: string; reason: string; message: string; involvedObject: { name: string; kind: string } }>>(`/api/v1/namespaces/${NS}/events`)).items.filter(
    (e) => e.involvedObject.kind === 'Service' && e.involvedObject.name === name,
  );

beforeAll(async () => {
  await cleanCluster(rest);
  await ensureNamespace(NS);
  await applyObjects([{ apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', metadata: { name: POOL }, spec: { cidrs: ['198.51.100.0/30'] } }]);
  controller = new FabricController({ rest, events: new KubeEventRecorder(rest, 'podfabric-controller'), registry: newRegistry('controller', false), resyncMs: 60_000 });
  await controller.start();
});

afterAll(async () => {
  await controller?.stop();
  await kubectl(['delete', 'namespace', NS, '--wait=false'], { allowFail: true });
  await rest.request('PATCH', `${API}/loadbalancerpools/${POOL}`, { metadata: { finalizers: null } }, 'application/merge-patch+json').catch(() => undefined);
  await kubectl(['delete', 'loadbalancerpool', POOL, '--ignore-not-found', '--wait=false'], { allowFail: true });
  await cleanCluster(rest);
});

describe('ServiceReconciler (real apiserver)', () => {
  it('assigns addresses (requested and automatic) with a condition and an Event; other classes are never written', async () => {
    await applyObjects([svc('req', {}, { 'podfabric.io/load-balancer-ips': '198.51.100.3' })]);
    await applyObjects([svc('auto'), svc('other', { loadBalancerClass: 'example.com/other' }), svc('plain', { type: 'ClusterIP' })]);
    const req = await waitFor('req assigned', async () => {
      const s = await getSvc('req');
      return ips(s).length ? s : undefined;
    });
    expect(ips(req)).toEqual(['198.51.100.3']);
    expect(lbCond(req)).toMatchObject({ status: 'True', reason: 'Assigned' });
    const auto = await waitFor('auto assigned', async () => {
      const s = await getSvc('auto');
      return ips(s).length ? s : undefined;
    });
    expect(ips(auto)).toHaveLength(1);
    expect(ips(auto)[0]).toMatch(/^198\.51\.100\.[0-2]$/);
    await waitFor('AddressAssigned Event on auto', async () => (await eventsOf('auto')).find((e) => e.reason === 'AddressAssigned' && e.message.includes(ips(auto)[0]!)));
    // The other class and the ClusterIP Service: no ingress, no condition of ours.
    for (const name of ['other', 'plain']) {
      const s = await getSvc(name);
      expect(ips(s), name).toEqual([]);
      expect(lbCond(s), name).toBeUndefined();
    }
    // Pool status counts them and the finalizer guards the addresses in use.
    const pool = await waitFor('pool status', async () => {
      const p = await getPool();
      return p.status?.addressesAssigned === 2 ? p : undefined;
    });
    expect(pool.status!.addressesFree).toBe(2);
    expect(pool.metadata.finalizers).toContain('podfabric.io/addresses-in-use');
    expect(pool.status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
  });

  it('a requested address in use: condition False and a Warning Event; the holder keeps it', async () => {
    await applyObjects([svc('clash', {}, { 'podfabric.io/load-balancer-ips': '198.51.100.3' })]);
    const clash = await waitFor('clash refused', async () => {
      const s = await getSvc('clash');
      return lbCond(s)?.status === 'False' ? s : undefined;
    });
    expect(lbCond(clash)!.reason).toBe('AddressInUse');
    expect(ips(clash)).toEqual([]);
    await waitFor('AddressInUse Event', async () => (await eventsOf('clash')).find((e) => e.type === 'Warning' && e.reason === 'AddressInUse'));
    expect(ips(await getSvc('req'))).toEqual(['198.51.100.3']);
  });

  it('exhaustion: the pool says so, the Service left out says why and gets the next freed address', async () => {
    await applyObjects([svc('fill1'), svc('fill2')]);
    await applyObjects([svc('fill3')]);
    const fills = await waitFor('fill1..3 decided', async () => {
      const all = await Promise.all(['fill1', 'fill2', 'fill3'].map(getSvc));
      return all.every((s) => lbCond(s)) ? all : undefined;
    });
    // /30 = 4 addresses: req, auto, fill1 and fill2 (older first, then by name) get one; fill3 is left out.
    expect(fills.map((s) => lbCond(s)!.status)).toEqual(['True', 'True', 'False']);
    expect(lbCond(fills[2]!)!.reason).toBe('PoolExhausted');
    await waitFor('PoolExhausted Event on fill3', async () => (await eventsOf('fill3')).find((e) => e.type === 'Warning' && e.reason === 'PoolExhausted'));
    await waitFor('pool Exhausted', async () => ((await getPool()).status?.conditions ?? []).find((c) => c.type === 'Exhausted' && c.status === 'True'));
    // Deleting a holder frees its address; the starved Service gets it.
    const freed = ips(await getSvc('auto'))[0];
    await kubectl(['-n', NS, 'delete', 'service', 'auto']);
    const fill3 = await waitFor('fill3 assigned after auto left', async () => {
      const s = await getSvc('fill3');
      return lbCond(s)?.status === 'True' ? s : undefined;
    });
    expect(ips(fill3)).toEqual([freed]);
  });

  it('deleting the pool is held while Services hold its addresses', async () => {
    await kubectl(['delete', 'loadbalancerpool', POOL, '--wait=false']);
    const p = await waitFor('DeletionBlocked', async () => {
      const x = await getPool();
      return x.status?.conditions?.find((c) => c.type === 'Ready' && c.reason === 'DeletionBlocked') ? x : undefined;
    });
    expect(p.metadata.finalizers).toContain('podfabric.io/addresses-in-use');
    // Every Service of ours gone → finalizer removed → pool gone.
    await kubectl(['-n', NS, 'delete', 'service', '--all']);
    await waitFor('pool deleted', async () => (await getPool().catch(() => undefined)) === undefined || undefined);
  });
});
