/**
 * Each controller reconciler on a fake client (FakeRest) and in-memory stores: what it writes, what
 * it reports and which other keys it hands back to the queue. The real-apiserver behaviour is in
 * test/integration/controller.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { API_PATH } from '../../operator/api/common.js';
import { BGPPeer, FabricConfig, IPPool, parseObject } from '../../operator/api/kinds.js';
import { ConfigReconciler } from '../../operator/controller/config-reconciler.js';
import { controllerMetrics } from '../../operator/controller/metrics.js';
import { NodeReconciler } from '../../operator/controller/node-reconciler.js';
import { SEGMENT_MIN_INTERVAL_MS, SegmentReconciler } from '../../operator/controller/segment-reconciler.js';
import { segmentObjectName } from '../../operator/api/segment.js';
import { directRoutesFrom } from '../../operator/plan/segment.js';
import { PEER_COUNTS_INTERVAL_MS, PeerReconciler, peerStatusDue, SECRET_RECHECK_MS } from '../../operator/controller/peer-reconciler.js';
import { PoolReconciler } from '../../operator/controller/pool-reconciler.js';
import { claimUnrecordedPodCIDRs, ControllerState, FIELD_MANAGER, POOL_FINALIZER, type KNode, type Stores } from '../../operator/controller/state.js';
import { MemoryEventSink } from '../../operator/kube/events.js';
import { StatusWriter } from '../../operator/kube/status.js';
import { KubeError } from '../../operator/kube/rest.js';
import { TerminalError, type ReconcileContext } from '../../operator/kube/workqueue.js';
import { log } from '../../operator/lib/log.js';
import { newRegistry } from '../../operator/lib/metrics.js';
import { FakeRest, MapStore } from '../support/fakes.js';

const ctx: ReconcileContext = { log, reconcileId: 't' };
const obj = (kind: string, name: string, spec: unknown, meta: Record<string, unknown> = {}) => ({ apiVersion: 'podfabric.io/v1alpha1', kind, metadata: { name, generation: 1, ...meta }, spec }) as any;
const node = (name: string, ip: string, labels: Record<string, string> = {}): KNode => ({ metadata: { name, uid: `uid-${name}`, labels }, status: { addresses: [{ type: 'InternalIP', address: ip }] } });

function rig() {
  const rest = new FakeRest();
  const events = new MemoryEventSink();
  const stores = {
    nodes: new MapStore<KNode>(),
    fabrics: new MapStore<any>(),
    pools: new MapStore<any, any>((o) => parseObject(IPPool, o)),
    peers: new MapStore<any, any>((o) => parseObject(BGPPeer, o)),
    configs: new MapStore<any, any>((o) => parseObject(FabricConfig, o)),
    segments: new MapStore<any>(),
  };
  const state = new ControllerState(stores as unknown as Stores, rest.asRest(), new StatusWriter(rest.asRest(), FIELD_MANAGER), events, controllerMetrics(newRegistry('ctl-unit', false), () => 0, () => 0));
  const syncPools = () => state.ipam.setPools(state.poolInfos());
  return { rest, events, stores, state, syncPools };
}

/** The NodeFabric spec writes (POST create, PUT replace), oldest first, of one node or all. */
const fabricWrites = (rest: FakeRest, name?: string) =>
  rest.calls.filter((c) => (c.method === 'POST' || c.method === 'PUT') && /\/nodefabrics(\?|\/[^/]*$)/.test(c.path) && (!name || (c.body as any).metadata.name === name)).map((c) => c.body as any);
/** A clock that moves 1 s per reading: no two segment writes fall inside SEGMENT_MIN_INTERVAL_MS. */
const ticking = () => {
  let t = 0;
  return () => (t += 1000);
};
const statusOf = (rest: FakeRest, path: RegExp) => rest.calls.filter((c) => c.method === 'APPLY' && path.test(c.path)).map((c) => (c.body as { status: any }).status);

describe('NodeReconciler (fake client)', () => {
  it('allocates, writes the plan, mirrors Node.spec.podCIDRs, hands back the pool: two writes, no status', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    const rec = new NodeReconciler(r.state);
    const res = await rec.reconcile('n1', ctx);
    const applied = fabricWrites(r.rest, 'n1')[0];
    expect(applied.spec.podCIDRs).toEqual(['10.244.0.0/24']);
    expect(applied.metadata.ownerReferences[0]).toMatchObject({ kind: 'Node', name: 'n1', uid: 'uid-n1' });
    expect(r.rest.calls.find((c) => c.method === 'PATCH' && c.path === '/api/v1/nodes/n1')!.body).toEqual({ spec: { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24'] } });
    // The happy path writes no controller condition (absent means fine): the Node patch and the NodeFabric only.
    expect(r.rest.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['PATCH /api/v1/nodes/n1', `POST ${API_PATH}/nodefabrics?fieldManager=podfabric-controller`]);
    expect(r.events.events.map((e) => e.reason)).toEqual(['Allocated']);
    expect(res.enqueue).toEqual([{ key: 'pool:v4', afterMs: 500 }]);
    // The Node patch's echo arrives before the NodeFabric's: the reconcile it triggers sees its own
    // write (not a missing record) and writes nothing again.
    r.stores.nodes.put({ ...node('n1', '10.0.1.11'), spec: { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24'] } });
    r.rest.calls = [];
    await rec.reconcile('n1', ctx);
    expect(r.rest.calls).toEqual([]);
    expect(r.events.events).toHaveLength(1);
  });

  it('a changed plan replaces the whole spec (PUT at the known resourceVersion): metadata others set is kept, status is not sent', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    const spec = { podCIDRs: ['10.244.0.0/24'], advertisements: [{ prefix: '10.244.9.0/24', nextHop: '10.0.1.19' }] };
    const labels = { team: 'x', 'app.kubernetes.io/managed-by': 'podfabric' };
    const ownerReferences = [{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'old-uid' }, { apiVersion: 'example.io/v1', kind: 'Thing', name: 't', uid: 'u-t' }];
    r.stores.fabrics.put({ apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: 'n1', resourceVersion: '7', labels, ownerReferences, annotations: { a: 'b' } }, spec, status: { l2Subnets: ['10.0.1.0/24'] } });
    await new NodeReconciler(r.state).reconcile('n1', ctx);
    const put = r.rest.calls.find((c) => c.method === 'PUT')!;
    expect(put.path).toBe(`${API_PATH}/nodefabrics/n1?fieldManager=podfabric-controller`);
    const body = put.body as any;
    expect(body.metadata).toMatchObject({ name: 'n1', resourceVersion: '7', labels, annotations: { a: 'b' } });
    expect(body.metadata.ownerReferences).toEqual([ownerReferences[1], { apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'uid-n1' }]);
    expect(body.spec.advertisements).toEqual([{ prefix: '10.244.0.0/24', nextHop: '10.0.1.11' }]); // the dropped entry is gone: the spec is the plan, whole
    expect(body.spec.podCIDRs).toEqual(['10.244.0.0/24']);
    expect(body.status).toBeUndefined();
    expect(r.rest.count('APPLY', /nodefabrics\/n1$/)).toBe(0);
  });

  it('a conflict (the agent moved the resourceVersion) reads the record once and writes again; a second conflict fails the reconcile', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    r.stores.fabrics.put({ apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: 'n1', resourceVersion: '7' }, spec: {} });
    r.rest.set(`${API_PATH}/nodefabrics`, [{ apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: 'n1', resourceVersion: '9' }, spec: {}, status: { l2Subnets: ['10.0.1.0/24'] } }]);
    let conflicts = 1;
    r.rest.failRequest = (m) => (m === 'PUT' && conflicts-- > 0 ? new KubeError(409, 'Conflict', 'the object has been modified') : undefined);
    await new NodeReconciler(r.state).reconcile('n1', ctx);
    const puts = r.rest.calls.filter((c) => c.method === 'PUT').map((c) => (c.body as any).metadata.resourceVersion);
    expect(puts).toEqual(['7', '9']);
    expect(r.state.fabric('n1')!.spec.podCIDRs).toEqual(['10.244.0.0/24']);

    const r2 = rig();
    r2.stores.nodes.put(node('n1', '10.0.1.11'));
    r2.stores.fabrics.put({ apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: 'n1', resourceVersion: '7' }, spec: { asn: 1 } });
    r2.rest.set(`${API_PATH}/nodefabrics`, [{ metadata: { name: 'n1', resourceVersion: '9' }, spec: {} }]);
    r2.rest.failRequest = (m) => (m === 'PUT' ? new KubeError(409, 'Conflict', 'the object has been modified') : undefined);
    const err = await new NodeReconciler(r2.state).reconcile('n1', ctx).catch((e) => e);
    expect(err).toBeInstanceOf(KubeError);
    expect(r2.rest.count('PUT', /nodefabrics\/n1/)).toBe(2);
  });

  it('a record the cache has not shown yet (POST answers AlreadyExists) is read and replaced', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    r.rest.set(`${API_PATH}/nodefabrics`, [{ apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: 'n1', resourceVersion: '3' }, spec: { asn: 1 } }]);
    r.rest.failRequest = (m) => (m === 'POST' ? new KubeError(409, 'AlreadyExists', 'already exists') : undefined);
    await new NodeReconciler(r.state).reconcile('n1', ctx);
    expect(r.rest.calls.map((c) => c.method).filter((m) => m !== 'PATCH')).toEqual(['POST', 'GET', 'PUT']);
    expect((r.rest.calls.find((c) => c.method === 'PUT')!.body as any).metadata.resourceVersion).toBe('3');
  });

  it('a problem that clears: its condition is removed (one status write), and nothing is written after', async () => {
    const r = rig();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    const rec = new NodeReconciler(r.state);
    await rec.reconcile('n1', ctx);
    const written = statusOf(r.rest, /nodefabrics\/n1\/status$/);
    expect(written.map((st) => st.conditions.map((c: any) => `${c.type}=${c.status}`))).toEqual([['Allocated=False']]);
    r.stores.fabrics.put({ metadata: { name: 'n1' }, spec: fabricWrites(r.rest, 'n1')[0].spec, status: written[0] });
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    r.rest.calls = [];
    await rec.reconcile('n1', ctx);
    expect(statusOf(r.rest, /nodefabrics\/n1\/status$/)).toEqual([{ conditions: [] }]);
  });

  it("a rack's first subnet report puts the whole rack in one L2Segment write; the members' specs only name it, and nothing cascades", async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    const rec = new NodeReconciler(r.state);
    const seg = new SegmentReconciler(r.state, (n) => rec.memberOf(n), ticking());
    const rack = ['n1', 'n2', 'n3', 'n4'];
    rack.forEach((n, i) => r.stores.nodes.put(node(n, `10.0.1.${11 + i}`)));
    r.stores.nodes.put(node('other', '10.0.2.11'));
    const recorded = (name: string) => {
      const spec = fabricWrites(r.rest, name).at(-1).spec;
      return { metadata: { name, resourceVersion: '1' }, spec, status: statusOf(r.rest, new RegExp(`nodefabrics/${name}/status$`)).at(-1) };
    };
    const put = (name: string, l2Subnets?: string[]) => {
      const f = recorded(name);
      r.stores.fabrics.put({ ...f, status: { ...(f.status ?? {}), ...(l2Subnets ? { l2Subnets } : {}) } });
    };
    for (const n of [...rack, 'other']) {
      await rec.reconcile(n, ctx);
      put(n);
    }
    expect(recorded('n2').spec.routing).toEqual({}); // nobody reported: nothing is known about the segment yet
    // n1's agent reports its subnet: n2..n4 (same subnet, no report) are adopted and queued; "other" is not.
    put('n1', ['10.0.1.0/24']);
    const res = await rec.reconcile('n1', ctx);
    put('n1', ['10.0.1.0/24']);
    const KEY = 'subnet:10.0.1.0/24';
    expect(res.enqueue?.filter((e) => e.key.startsWith('node:')).map((e) => e.key).sort()).toEqual(['node:n2', 'node:n3', 'node:n4']);
    expect(res.enqueue).toContainEqual({ key: `segment:${KEY}` });
    const name = segmentObjectName(4, KEY);
    expect(recorded('n1').spec.routing).toEqual({ l2Segment: KEY, segments: [name] });
    await seg.reconcile(KEY, ctx);
    const segWrites = () => r.rest.calls.filter((c) => /\/l2segments/.test(c.path) && c.method !== 'GET');
    expect(segWrites().map((c) => c.method)).toEqual(['POST']);
    const written = segWrites()[0]!.body as any;
    expect(written.metadata).toMatchObject({ name, labels: { 'app.kubernetes.io/managed-by': 'podfabric' } });
    expect(written.spec.routes.map((x: any) => x.node)).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(directRoutesFrom('n3', [written.spec]).map((x) => x.node)).toEqual(['n1', 'n2', 'n4']);
    r.stores.segments.put({ ...written, metadata: { ...written.metadata, resourceVersion: '5' } });
    const nfWrites = () => fabricWrites(r.rest).length;
    const before = nfWrites();
    for (const n of ['n2', 'n3', 'n4']) {
      const again = await rec.reconcile(n, ctx);
      expect(again.enqueue?.filter((e) => e.key.startsWith('node:'))).toEqual([]); // no cascade
      put(n);
      expect(recorded(n).spec.routing).toEqual({ l2Segment: KEY, segments: [name] });
    }
    expect(nfWrites()).toBe(before + 3); // each names its segment once
    // Their agents report the same subnet: no plan changes, nothing written; the segment is as stored.
    for (const n of ['n2', 'n3', 'n4']) {
      put(n, ['10.0.1.0/24']);
      const res2 = await rec.reconcile(n, ctx);
      expect(res2.enqueue?.filter((e) => e.key.startsWith('node:'))).toEqual([]);
    }
    await seg.reconcile(KEY, ctx);
    expect(nfWrites()).toBe(before + 3);
    expect(segWrites()).toHaveLength(1);
    expect(recorded('other').spec.routing).toEqual({});

    // A new leader (fresh state, the same caches): with the segment index filled before the first
    // reconcile, nothing is written, neither NodeFabrics nor the segment.
    const r2 = rig();
    r2.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r2.syncPools();
    for (const n of [...rack, 'other']) {
      r2.stores.nodes.put(r.stores.nodes.get(n)!);
      const f = r.stores.fabrics.get(n);
      r2.stores.fabrics.put(f);
      r2.state.ipam.commit(n, f.spec.allocations);
    }
    r2.stores.segments.put(r.stores.segments.get(name));
    const rec2 = new NodeReconciler(r2.state);
    rec2.indexSegments();
    for (const n of ['n3', 'n1', 'other', 'n4', 'n2']) await rec2.reconcile(n, ctx);
    await new SegmentReconciler(r2.state, (n) => rec2.memberOf(n), ticking()).reconcile(KEY, ctx);
    expect(r2.rest.calls.filter((c) => c.method !== 'GET' && /nodefabrics|l2segments/.test(c.path)).map((c) => `${c.method} ${c.path}`)).toEqual([]);
  });

  it('a node joining a rack: its own NodeFabric and one PUT of the segment; leaving: one PUT; the last member: DELETE', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    const lab = { 'podfabric.io/l2-segment': 'rack-7' };
    const KEY = 'label:rack-7';
    const rec = new NodeReconciler(r.state);
    const seg = new SegmentReconciler(r.state, (n) => rec.memberOf(n), ticking());
    const sync = () => {
      // the caches catch up with what was written
      for (const c of r.rest.calls) {
        const b = c.body as any;
        if ((c.method === 'POST' || c.method === 'PUT') && /nodefabrics/.test(c.path)) r.stores.fabrics.put({ ...b, metadata: { ...b.metadata, resourceVersion: '100' } });
        if ((c.method === 'POST' || c.method === 'PUT') && /l2segments/.test(c.path)) r.stores.segments.put({ ...b, metadata: { ...b.metadata, resourceVersion: '100' } });
        if (c.method === 'DELETE' && /l2segments/.test(c.path)) r.stores.segments.delete(c.path.split('/').at(-1)!);
      }
      r.rest.calls = [];
    };
    for (const [i, n] of ['a', 'b', 'c'].entries()) {
      r.stores.nodes.put(node(n, `10.0.${i}.11`, lab));
      await rec.reconcile(n, ctx);
    }
    await seg.reconcile(KEY, ctx);
    sync();
    r.stores.nodes.put(node('d', '10.0.9.11', lab));
    const res = await rec.reconcile('d', ctx);
    expect(res.enqueue).toContainEqual({ key: `segment:${KEY}` });
    await seg.reconcile(KEY, ctx);
    const writes = r.rest.calls.filter((c) => c.method !== 'GET' && c.method !== 'PATCH');
    expect(writes.map((c) => `${c.method} ${c.path.split('?')[0]!.split('/').at(-1)}`)).toEqual(['POST nodefabrics', `PUT ${segmentObjectName(4, KEY)}`]);
    expect((writes[1]!.body as any).spec.routes.map((x: any) => x.node)).toEqual(['a', 'b', 'c', 'd']);
    expect((writes[1]!.body as any).metadata.resourceVersion).toBe('100');
    sync();
    for (const n of ['a', 'b', 'c']) {
      r.stores.nodes.delete(n);
      const rel = await rec.reconcile(n, ctx);
      expect(rel.enqueue).toContainEqual({ key: `segment:${KEY}` });
    }
    await seg.reconcile(KEY, ctx);
    expect(r.rest.calls.filter((c) => /l2segments/.test(c.path)).map((c) => c.method)).toEqual(['PUT']);
    sync();
    r.stores.nodes.delete('d');
    await rec.reconcile('d', ctx);
    await seg.reconcile(KEY, ctx);
    expect(r.rest.calls.filter((c) => /l2segments/.test(c.path)).map((c) => `${c.method} ${c.path.split('/').at(-1)}`)).toEqual([`DELETE ${segmentObjectName(4, KEY)}`]);
    sync();
    await seg.reconcile(KEY, ctx);
    expect(r.rest.calls).toEqual([]);
  });

  it('a segment is written at most once per SEGMENT_MIN_INTERVAL_MS: the first change at once, later ones together when it is over', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    const lab = { 'podfabric.io/l2-segment': 'r' };
    let t = 10_000;
    const rec = new NodeReconciler(r.state);
    const seg = new SegmentReconciler(r.state, (n) => rec.memberOf(n), () => t);
    const segWrites = () => r.rest.calls.filter((c) => /l2segments/.test(c.path) && c.method !== 'GET');
    r.stores.nodes.put(node('a', '10.0.0.11', lab));
    await rec.reconcile('a', ctx);
    expect(await seg.reconcile('label:r', ctx)).toEqual({});
    expect(segWrites().map((c) => c.method)).toEqual(['POST']);
    const posted = segWrites()[0]!.body as any;
    r.stores.segments.put({ ...posted, metadata: { ...posted.metadata, resourceVersion: '2' } });
    // Two members join 100 ms later: nothing written yet, the key comes back when the interval is over.
    t += 100;
    for (const [n, ip] of [['b', '10.0.0.12'], ['c', '10.0.0.13']] as const) {
      r.stores.nodes.put(node(n, ip, lab));
      await rec.reconcile(n, ctx);
    }
    expect(await seg.reconcile('label:r', ctx)).toEqual({ requeueAfterMs: SEGMENT_MIN_INTERVAL_MS - 100 });
    expect(segWrites()).toHaveLength(1);
    t += SEGMENT_MIN_INTERVAL_MS - 100;
    expect(await seg.reconcile('label:r', ctx)).toEqual({});
    expect(segWrites().map((c) => c.method)).toEqual(['POST', 'PUT']);
    expect((segWrites()[1]!.body as any).spec.routes.map((x: any) => x.node)).toEqual(['a', 'b', 'c']);
  });

  it('a segment object changed by someone else is put back; one of ours under another name is deleted', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    const lab = { 'podfabric.io/l2-segment': 'r' };
    const rec = new NodeReconciler(r.state);
    const seg = new SegmentReconciler(r.state, (n) => rec.memberOf(n), ticking());
    r.stores.nodes.put(node('a', '10.0.0.11', lab));
    await rec.reconcile('a', ctx);
    const name = segmentObjectName(4, 'label:r');
    r.stores.segments.put(
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'L2Segment', metadata: { name, resourceVersion: '9' }, spec: { key: 'label:r', family: 4, reason: 'SegmentLabel', routes: [] } },
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'L2Segment', metadata: { name: 'old-name', uid: 'u1', resourceVersion: '3', labels: { 'app.kubernetes.io/managed-by': 'podfabric' } }, spec: { key: 'label:r', family: 4, reason: 'SegmentLabel', routes: [] } },
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'L2Segment', metadata: { name: 'hand-made', resourceVersion: '4' }, spec: { key: 'label:r', family: 4, reason: 'SegmentLabel', routes: [] } },
    );
    r.rest.calls = [];
    await seg.reconcile('label:r', ctx);
    const calls = r.rest.calls.map((c) => `${c.method} ${c.path.split('?')[0]!.split('/').at(-1)}`);
    expect(calls).toEqual([`PUT ${name}`, 'DELETE old-name']);
    expect((r.rest.calls[0]!.body as any).spec.routes).toEqual([{ destination: '10.244.0.0/24', via: '10.0.0.11', node: 'a' }]);
    expect((r.rest.calls[1]!.body as any).preconditions).toEqual({ uid: 'u1' });
  });

  it('with no pool for the node: Allocated=False NoMatchingPool, a Warning, nothing written to the Node', async () => {
    const r = rig();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    await new NodeReconciler(r.state).reconcile('n1', ctx);
    expect(statusOf(r.rest, /nodefabrics\/n1\/status$/)[0].conditions.find((c: any) => c.type === 'Allocated')).toMatchObject({ status: 'False', reason: 'NoMatchingPool' });
    expect(r.rest.count('PATCH', /\/api\/v1\/nodes\//)).toBe(0);
    expect(r.events.events.every((e) => e.type === 'Warning')).toBe(true);
  });

  it('a deleted node: its record is deleted first, then its blocks are released; the pool and its peers are handed back', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.stores.peers.put(obj('BGPPeer', 'tor', { peerAddress: '10.0.1.1', peerASN: 65001 }));
    r.syncPools();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    const rec = new NodeReconciler(r.state);
    await rec.reconcile('n1', ctx);
    expect(r.state.peerIndex.selectedBy('tor')).toEqual(['n1']);
    r.stores.nodes.delete('n1');
    const res = await rec.reconcile('n1', ctx);
    expect(r.rest.calls.at(-1)).toMatchObject({ method: 'DELETE', path: `${API_PATH}/nodefabrics/n1` });
    expect(r.state.ipam.claimsOf('n1')).toEqual([]);
    expect(res.enqueue).toEqual([{ key: 'peer:tor', afterMs: 200 }, { key: 'pool:v4', afterMs: 200 }]);
  });

  it('a failed status write still hands back the keys its index changes called for', async () => {
    const r = rig();
    r.stores.peers.put(obj('BGPPeer', 'tor', { peerAddress: '10.0.1.1', peerASN: 65001 }));
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    r.rest.failApply = new Error('apiserver down');
    const err = await new NodeReconciler(r.state).reconcile('n1', ctx).catch((e) => e);
    expect(err.message).toBe('apiserver down');
    expect(err.enqueue).toEqual([{ key: 'peer:tor', afterMs: 1000 }]);
  });
});

describe('NodeReconciler: conflicts stay visible (issue #16)', () => {
  const withPodCIDRs = (n: KNode, cidrs: string[]): KNode => ({ ...n, spec: { podCIDR: cidrs[0], podCIDRs: cidrs } }) as KNode;
  /** The NodeFabric as the cache would show it after the reconcile's writes. */
  const recorded = (r: ReturnType<typeof rig>, name: string) => {
    const spec = fabricWrites(r.rest, name).at(-1).spec;
    return { metadata: { name }, spec, status: statusOf(r.rest, new RegExp(`nodefabrics/${name}/status$`)).at(-1) };
  };

  it.each([
    { name: 'outside every pool', cidr: '192.168.7.0/24', reason: 'PodCIDROutsidePools', msg: /outside every IPPool/ },
    { name: 'held by another node', cidr: '10.244.0.0/24', reason: 'PodCIDRConflict', msg: /already held by node n0/ },
  ])('a pre-set Node.spec.podCIDRs $name: PodCIDRsHonoured=False lasts, one Warning on the Node', async ({ cidr, reason, msg }) => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    r.state.ipam.commit('n0', [{ cidr: '10.244.0.0/24', pool: 'v4' }]);
    r.stores.nodes.put(withPodCIDRs(node('n1', '10.0.1.11'), [cidr]));
    const rec = new NodeReconciler(r.state);
    await rec.reconcile('n1', ctx);
    const cond = statusOf(r.rest, /nodefabrics\/n1\/status$/)[0].conditions.find((c: any) => c.type === 'PodCIDRsHonoured');
    expect(cond).toMatchObject({ status: 'False', reason });
    expect(cond.message).toMatch(msg);
    const warnings = () => r.events.events.filter((e) => e.type === 'Warning' && e.reason === reason);
    expect(warnings().map((e) => e.ref.kind).sort()).toEqual(['Node', 'NodeFabric']);
    // Reconciled again (resync, another concern's change): the condition stays, no second Warning.
    r.stores.fabrics.put(recorded(r, 'n1'));
    r.rest.calls = [];
    await rec.reconcile('n1', ctx);
    expect(r.rest.count("APPLY", /nodefabrics\/n1\/status$/)).toBe(0);
    expect(warnings()).toHaveLength(2);
  });

  it("a node left without a block is warned once, not again when another concern's condition changes", async () => {
    const r = rig();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    const rec = new NodeReconciler(r.state);
    await rec.reconcile('n1', ctx);
    const warnings = () => r.events.events.filter((e) => e.reason === 'NoMatchingPool');
    expect(warnings().map((e) => e.ref.kind).sort()).toEqual(['Node', 'NodeFabric']);
    r.stores.fabrics.put(recorded(r, 'n1'));
    // Two peers with the same address: PeersResolved turns False (a status write), Allocated stays as it was.
    r.stores.peers.put(obj('BGPPeer', 'tor', { peerAddress: '10.0.1.1', peerASN: 65001 }, { creationTimestamp: '2026-01-01T00:00:00Z' }), obj('BGPPeer', 'tor2', { peerAddress: '10.0.1.1', peerASN: 65002 }, { creationTimestamp: '2026-01-02T00:00:00Z' }));
    r.rest.calls = [];
    await rec.reconcile('n1', ctx);
    expect(statusOf(r.rest, /nodefabrics\/n1\/status$/)[0].conditions.find((c: any) => c.type === 'PeersResolved')).toMatchObject({ status: 'False', reason: 'PeerConflict' });
    expect(warnings()).toHaveLength(2);
  });

  it('a node whose podCIDRs are honoured (or not pre-set) carries no controller condition (absent means fine)', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    r.stores.nodes.put(withPodCIDRs(node('n1', '10.0.1.11'), ['10.244.9.0/24']), node('n2', '10.0.1.12'));
    for (const n of ['n1', 'n2']) await new NodeReconciler(r.state).reconcile(n, ctx);
    for (const n of ['n1', 'n2']) expect(statusOf(r.rest, new RegExp(`nodefabrics/${n}/status$`))).toEqual([]);
    expect(r.events.events.filter((e) => e.type === 'Warning')).toEqual([]);
  });

  it('a node short of blocks because of an overlap says PoolOverlapping, not PoolExhausted', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'a', { cidr: '10.244.0.0/24' }), obj('IPPool', 'b', { cidr: '10.244.0.0/24' }));
    r.syncPools();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    await new NodeReconciler(r.state).reconcile('n1', ctx);
    expect(statusOf(r.rest, /nodefabrics\/n1\/status$/)[0].conditions.find((c: any) => c.type === 'Allocated')).toMatchObject({ status: 'False', reason: 'PoolOverlapping' });
    expect(r.events.events.map((e) => `${e.type} ${e.reason}`)).toContain('Warning PoolOverlapping');
  });

  it("a deleted waiting node leaves the pool's waiting list at once", async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'tiny', { cidr: '10.9.9.0/24' }));
    r.syncPools();
    r.stores.nodes.put(node('n1', '10.0.1.11'), node('n2', '10.0.1.12'));
    const rec = new NodeReconciler(r.state);
    await rec.reconcile('n1', ctx);
    await rec.reconcile('n2', ctx);
    r.stores.fabrics.put(recorded(r, 'n2'));
    const pools = new PoolReconciler(r.state);
    expect(pools.nodesWaitingOn('tiny')).toEqual(['n2']);
    r.stores.nodes.delete('n2');
    // The fabric is still in the cache (its delete event comes later): the pool is handed back and n2 is not listed.
    const res = await rec.reconcile('n2', ctx);
    expect(res.enqueue).toContainEqual({ key: 'pool:tiny' });
    expect(pools.nodesWaitingOn('tiny')).toEqual([]);
    r.stores.pools.put(obj('IPPool', 'tiny', { cidr: '10.9.9.0/24' }, { finalizers: [POOL_FINALIZER] }));
    await pools.reconcile('tiny', ctx);
    const exhausted = statusOf(r.rest, /ippools\/tiny\/status$/).at(-1).conditions.find((c: any) => c.type === 'Exhausted');
    expect(exhausted).toMatchObject({ status: 'True', reason: 'NoFreeBlocks' });
    expect(exhausted.message).not.toMatch(/n2/);
  });
});

describe('PoolReconciler (fake client)', () => {
  it('adds its finalizer to a live pool and reports Ready/Serving with counters', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }, { resourceVersion: '7' }));
    r.syncPools();
    await new PoolReconciler(r.state).reconcile('v4', ctx);
    expect(r.rest.calls[0]).toMatchObject({ method: 'PATCH', path: `${API_PATH}/ippools/v4`, body: { metadata: { finalizers: [POOL_FINALIZER], resourceVersion: '7' } } });
    const st = statusOf(r.rest, /ippools\/v4\/status$/)[0];
    expect(st).toMatchObject({ blocksTotal: 256, blocksAllocated: 0, blocksFree: 256 });
    expect(st.conditions.find((c: any) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Serving' });
  });

  it('a deleting pool with no blocks in use: the finalizer goes, an Event says so, no status write', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }, { finalizers: [POOL_FINALIZER, 'other'], deletionTimestamp: '2026-01-01T00:00:00Z', resourceVersion: '3' }));
    r.syncPools();
    await new PoolReconciler(r.state).reconcile('v4', ctx);
    expect(r.rest.calls).toEqual([expect.objectContaining({ method: 'PATCH', body: { metadata: { finalizers: ['other'], resourceVersion: '3' } } })]);
    expect(r.events.events.map((e) => e.reason)).toEqual(['Deleted']);
  });

  it('a deleting pool with blocks in use keeps its finalizer and says DeletionBlocked', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    await new NodeReconciler(r.state).reconcile('n1', ctx);
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }, { finalizers: [POOL_FINALIZER], deletionTimestamp: '2026-01-01T00:00:00Z' }));
    r.syncPools();
    r.rest.calls = [];
    await new PoolReconciler(r.state).reconcile('v4', ctx);
    expect(r.rest.count('PATCH', /ippools\/v4$/)).toBe(0);
    expect(statusOf(r.rest, /ippools\/v4\/status$/)[0].conditions.find((c: any) => c.type === 'Ready')).toMatchObject({ reason: 'DeletionBlocked' });
  });

  it('overlapping pools: each says Overlapping, Exhausted gives the overlap as its reason, and a capacity update keeps Overlapping', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'outer', { cidr: '10.0.0.0/23' }, { finalizers: [POOL_FINALIZER] }), obj('IPPool', 'inner', { cidr: '10.0.1.0/24' }, { finalizers: [POOL_FINALIZER] }));
    r.syncPools();
    const pools = new PoolReconciler(r.state);
    await pools.reconcile('outer', ctx);
    await pools.reconcile('inner', ctx);
    const last = (p: string) => statusOf(r.rest, new RegExp(`ippools/${p}/status$`)).at(-1);
    const cond = (p: string, t: string) => last(p).conditions.find((c: any) => c.type === t);
    for (const p of ['outer', 'inner']) expect(cond(p, 'Overlapping')).toMatchObject({ status: 'True', reason: 'Overlapping' });
    expect(r.events.events.filter((e) => e.reason === 'Overlapping').map((e) => e.ref.name).sort()).toEqual(['inner', 'outer']);
    // outer's one block outside the overlap goes to a node: capacity changes, the overlap is still said.
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    await new NodeReconciler(r.state).reconcile('n1', ctx);
    r.stores.pools.put({ ...r.stores.pools.get('outer'), status: last('outer') });
    await pools.reconcile('outer', ctx);
    expect(last('outer')).toMatchObject({ blocksAllocated: 1, blocksFree: 0 });
    expect(cond('outer', 'Overlapping')).toMatchObject({ status: 'True' });
    expect(cond('outer', 'Exhausted')).toMatchObject({ status: 'True', reason: 'ShadowedByPool' });
    expect(cond('outer', 'Exhausted').message).toMatch(/shared with IPPool\(s\) inner/);
    // One Overlapping Warning per pool, not one per write.
    expect(r.events.events.filter((e) => e.reason === 'Overlapping')).toHaveLength(2);
  });

  it('an undecodable pool: Ready=False Invalid written, then a terminal error (no retry until it changes)', async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'bad', { cidr: 42 }));
    const err = await new PoolReconciler(r.state).reconcile('bad', ctx).catch((e) => e);
    expect(err).toBeInstanceOf(TerminalError);
    expect(statusOf(r.rest, /ippools\/bad\/status$/)[0].conditions[0]).toMatchObject({ type: 'Ready', status: 'False', reason: 'Invalid' });
  });
});

describe('PeerReconciler (fake client)', () => {
  it('a missing password Secret: Valid=False SecretMissing, a Warning, looked at again later', async () => {
    const r = rig();
    r.stores.peers.put(obj('BGPPeer', 'tor', { peerAddress: '10.0.1.1', peerASN: 65001, passwordSecretRef: { namespace: 'net', name: 'absent' } }));
    const res = await new PeerReconciler(r.state).reconcile('tor', ctx);
    expect(statusOf(r.rest, /bgppeers\/tor\/status$/)[0].conditions.find((c: any) => c.type === 'Valid')).toMatchObject({ status: 'False', reason: 'SecretMissing' });
    expect(r.events.events.map((e) => e.reason)).toEqual(['SecretMissing']);
    expect(res).toMatchObject({ requeueAfterMs: SECRET_RECHECK_MS });
  });

  it('counts selected and established nodes; a changed verdict re-plans every node once ready', async () => {
    const r = rig();
    r.state.ready = true;
    r.stores.nodes.put(node('n1', '10.0.1.11'), node('n2', '10.0.1.12'));
    r.stores.peers.put(obj('BGPPeer', 'tor', { peerAddress: '10.0.1.1', peerASN: 65001 }));
    r.state.peerIndex.setSelected('tor', 'n1', true);
    r.state.peerIndex.setSelected('tor', 'n2', true);
    r.stores.fabrics.put({ metadata: { name: 'n1' }, status: { sessions: [{ name: 'tor', address: '10.0.1.1', state: 'Established' }] } });
    const res = await new PeerReconciler(r.state).reconcile('tor', ctx);
    const st = statusOf(r.rest, /bgppeers\/tor\/status$/)[0];
    expect(st).toMatchObject({ nodesSelected: 2, nodesEstablished: 1 });
    expect(st.conditions.find((c: any) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'NotEstablished' });
    expect(res!.enqueue).toEqual([{ key: 'node:n1' }, { key: 'node:n2' }]);
    // Same verdict the second time: no fan-out.
    expect((await new PeerReconciler(r.state).reconcile('tor', ctx))!.enqueue).toEqual([]);
  });

  it.each([
    { why: 'significant change', significant: true, lastWriteMs: 1_000, nowMs: 1_001, want: { now: true } },
    { why: 'never written by this controller', significant: false, lastWriteMs: undefined, nowMs: 5, want: { now: true } },
    { why: 'counts only, interval over', significant: false, lastWriteMs: 1_000, nowMs: 31_000, want: { now: true } },
    { why: 'counts only, inside the interval', significant: false, lastWriteMs: 1_000, nowMs: 11_000, want: { now: false, afterMs: 20_000 } },
  ])('peerStatusDue: $why', ({ significant, lastWriteMs, nowMs, want }) => {
    expect(peerStatusDue({ significant, lastWriteMs, nowMs, intervalMs: 30_000 })).toEqual(want);
  });

  it('counts-only changes are written at most once per interval per peer; a Ready reason change at once', async () => {
    const r = rig();
    let now = 0;
    const rec = new PeerReconciler(r.state, () => now);
    const nodes = ['n1', 'n2', 'n3'];
    r.stores.nodes.put(...nodes.map((n, i) => node(n, `10.0.1.${11 + i}`)));
    for (const n of nodes) r.state.peerIndex.setSelected('tor', n, true);
    const peerObj = (status?: unknown) => ({ ...obj('BGPPeer', 'tor', { peerAddress: '10.0.1.1', peerASN: 65001 }), ...(status ? { status } : {}) });
    const up = (...names: string[]) => r.stores.fabrics.put(...names.map((n) => ({ metadata: { name: n }, status: { sessions: [{ name: 'tor', address: '10.0.1.1', state: 'Established' }] } })));
    const writes = () => statusOf(r.rest, /bgppeers\/tor\/status$/);
    // The object shows each write (as the informer would).
    const reconcile = async () => {
      const before = writes().length;
      const res = await rec.reconcile('tor', ctx);
      if (writes().length > before) r.stores.peers.put(peerObj(writes().at(-1)));
      return res;
    };
    r.stores.peers.put(peerObj());
    up('n1');
    await reconcile();
    expect(writes().map((w) => w.nodesEstablished)).toEqual([1]);
    // 10 s later a second node comes up: same conditions' reasons, counts only → not yet, looked at again when due.
    now = 10_000;
    up('n2');
    const res = await reconcile();
    expect(writes()).toHaveLength(1);
    expect(res).toMatchObject({ requeueAfterMs: PEER_COUNTS_INTERVAL_MS - 10_000 });
    now = PEER_COUNTS_INTERVAL_MS;
    await reconcile();
    expect(writes().map((w) => w.nodesEstablished)).toEqual([1, 2]);
    // The last node: Ready turns True (reason Established) — written at once, inside the interval.
    now += 1_000;
    up('n3');
    await reconcile();
    expect(writes().map((w) => [w.nodesEstablished, w.conditions.find((c: any) => c.type === 'Ready').reason])).toEqual([
      [1, 'NotEstablished'],
      [2, 'NotEstablished'],
      [3, 'Established'],
    ]);
    // Nothing changed: no write, no requeue for counts.
    now += 1_000;
    expect(await reconcile()).not.toHaveProperty('requeueAfterMs');
    expect(writes()).toHaveLength(3);
  });
});

describe('a BGPPeer change (issue #15: sessions are not in the NodeFabric spec)', () => {
  it('re-plans every node without a single NodeFabric write; only the BGPPeer status is written', async () => {
    const r = rig();
    r.state.ready = true;
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    const names = ['n1', 'n2', 'n3'];
    const nodes = new NodeReconciler(r.state);
    for (const [i, n] of names.entries()) {
      const k = { ...node(n, `10.0.1.${11 + i}`), spec: {} as KNode['spec'] };
      r.stores.nodes.put(k);
      await nodes.reconcile(n, ctx);
      // The informer's view: the record as written, Node.spec.podCIDRs mirrored.
      const spec = fabricWrites(r.rest, n)[0].spec;
      r.stores.fabrics.put({ metadata: { name: n, generation: 1 }, spec });
      r.stores.nodes.put({ ...k, spec: { podCIDR: spec.podCIDRs[0], podCIDRs: spec.podCIDRs } });
    }
    for (const change of [{ peerAddress: '10.0.1.1', peerASN: 65001 }, { peerAddress: '10.0.1.1', peerASN: 65002, communities: ['65000:1'] }]) {
      r.stores.peers.put(obj('BGPPeer', 'tor', change, { creationTimestamp: '2026-01-01T00:00:00Z' }));
      r.rest.calls = [];
      const res = await new PeerReconciler(r.state).reconcile('tor', ctx);
      for (const n of names) await nodes.reconcile(n, ctx); // what onPeerChanged enqueues
      const fabricWrites = r.rest.calls.filter((c) => c.path.includes('/nodefabrics/'));
      expect(fabricWrites).toEqual([]);
      expect(r.state.peerIndex.selectedBy('tor').sort()).toEqual(names);
      expect(r.rest.calls.every((c) => c.path === `${API_PATH}/bgppeers/tor/status`)).toBe(true);
      expect(res).toBeDefined();
    }
  });
});

describe('ConfigReconciler (fake client)', () => {
  it('a valid config is applied (Ready=True Applied, Normal event) and every node re-planned', async () => {
    const r = rig();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    r.stores.configs.put(obj('FabricConfig', 'default', { routeProtocol: 202 }));
    const res = await new ConfigReconciler(r.state).reconcile(ctx);
    expect(r.state.config.routeProtocol).toBe(202);
    expect(res.enqueue).toEqual([{ key: 'node:n1' }]);
    expect(r.events.events.map((e) => `${e.type} ${e.reason}`)).toEqual(['Normal Applied']);
  });

  it('an invalid config keeps the previous one and says Invalid', async () => {
    const r = rig();
    r.stores.configs.put(obj('FabricConfig', 'default', { routeProtocol: 'x' }));
    const res = await new ConfigReconciler(r.state).reconcile(ctx);
    expect(r.state.config.routeProtocol).toBe(201);
    expect(res.enqueue).toEqual([]);
    expect(statusOf(r.rest, /fabricconfigs\/default\/status$/)[0].conditions[0]).toMatchObject({ status: 'False', reason: 'Invalid' });
  });

  it('a failed status write does not lose the re-plan of every node', async () => {
    const r = rig();
    r.stores.nodes.put(node('n1', '10.0.1.11'));
    r.stores.configs.put(obj('FabricConfig', 'default', { routeProtocol: 202 }));
    r.rest.failApply = new Error('down');
    const err = await new ConfigReconciler(r.state).reconcile(ctx).catch((e) => e);
    expect(err.enqueue).toEqual([{ key: 'node:n1' }]);
  });
});

describe('start-up claims of blocks already on Nodes (kill -9 between the Node patch and the NodeFabric)', () => {
  it("a Node's podCIDRs with no NodeFabric record are claimed before any allocation: a new node never gets them", async () => {
    const r = rig();
    r.stores.pools.put(obj('IPPool', 'v4', { cidr: '10.244.0.0/16' }));
    r.syncPools();
    // n1 carries the pool's lowest block on its Node (written just before a crash), with no NodeFabric yet.
    const n1: KNode = { ...node('n1', '10.0.1.11'), spec: { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24'] } } as KNode;
    r.stores.nodes.put(n1);
    r.stores.nodes.put(node('n2', '10.0.1.12'));
    expect(claimUnrecordedPodCIDRs(r.state.ipam, [n1, r.stores.nodes.get('n2')!])).toEqual(['10.244.0.0/24']);
    // n2 is reconciled first: it must not be handed n1's block.
    await new NodeReconciler(r.state).reconcile('n2', ctx);
    const n2Plan = fabricWrites(r.rest, 'n2')[0];
    expect(n2Plan.spec.podCIDRs).toEqual(['10.244.1.0/24']);
    await new NodeReconciler(r.state).reconcile('n1', ctx);
    const n1Plan = fabricWrites(r.rest, 'n1')[0];
    expect(n1Plan.spec.podCIDRs).toEqual(['10.244.0.0/24']);
  });
});
