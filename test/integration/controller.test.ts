/**
 * The controller against the real kube-apiserver: allocation, release, pools, peers, bad input.
 * An in-process FabricController (the same code `podfabric controller` runs while leading).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Condition } from '../../operator/api/common.js';
import type { NodeFabricObj, IPPoolObj, BGPPeerObj, L2SegmentObj } from '../../operator/api/kinds.js';
import { segmentObjectName } from '../../operator/api/segment.js';
import { directRoutesFrom } from '../../operator/plan/segment.js';
import { FabricController } from '../../operator/controller/controller.js';
import { KubeEventRecorder } from '../../operator/kube/events.js';
import { StatusWriter } from '../../operator/kube/status.js';
import { setConditions } from '../../operator/api/conditions.js';
import { NodeFabric } from '../../operator/api/kinds.js';
import { AGENT_FIELD_MANAGER } from '../../operator/agent/agent.js';
import { newRegistry } from '../../operator/lib/metrics.js';
import { applyObjects, cleanCluster, createNodes, kubectl, node, testRest, waitFor, type Listed } from '../support/kube.js';
import { API_PATH as API } from '../../operator/api/common.js';

const rest = testRest();
let controller: FabricController;

const pool = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name }, spec });
const peer = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: { name }, spec });
const getNF = (name: string) => rest.get<NodeFabricObj>(`${API}/nodefabrics/${name}`).catch(() => undefined);
const getSeg = (name: string) => rest.get<L2SegmentObj>(`${API}/l2segments/${name}`).catch(() => undefined);
const getPool = (name: string) => rest.get<IPPoolObj>(`${API}/ippools/${name}`).catch(() => undefined);
const getPeer = (name: string) => rest.get<BGPPeerObj>(`${API}/bgppeers/${name}`).catch(() => undefined);
const cond = (o: { status?: { conditions?: Condition[] } } | undefined, type: string) => o?.status?.conditions?.find((c) => c.type === type);
const events = async (name: string) =>
  (await rest.get<Listed<{ reason: string; message: string; involvedObject: { name: string; kind: string } }>>(`/api/v1/namespaces/default/events`)).items.filter(
    (e) => e.involvedObject.name === name,
  );

/** Value of a Prometheus sample with (at least) these labels, in any label order; NaN when absent. */
function metric(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return NaN;
}

beforeAll(async () => {
  await cleanCluster(rest);
  controller = new FabricController({ rest, events: new KubeEventRecorder(rest, 'podfabric-controller'), registry: newRegistry('controller', false), resyncMs: 60_000 });
  await controller.start();
});

afterAll(async () => {
  await controller?.stop();
  await cleanCluster(rest);
});

describe('controller (real apiserver)', () => {
  it('allocates a block per family to new nodes, mirrors Node.spec.podCIDRs, and plans BGP and host routes', async () => {
    await applyObjects([
      pool('v4', { cidr: '10.244.0.0/16' }),
      pool('v6', { cidr: 'fd00:10:244::/56' }),
      peer('tor-r1', { peerAddress: '10.0.1.1', peerASN: 65101, nodeSelector: { matchLabels: { rack: 'r1' } }, communities: ['65000:101'] }),
    ]);
    await createNodes(rest, [
      node('c-r1n1', ['10.0.1.11', 'fd00:1::11'], { rack: 'r1' }),
      node('c-r1n2', ['10.0.1.12', 'fd00:1::12'], { rack: 'r1' }),
      node('c-r2n1', ['10.0.2.11'], { rack: 'r2' }),
    ]);
    const nf = await waitFor('c-r1n1 planned', async () => {
      const o = await getNF('c-r1n1');
      return o?.spec.podCIDRs?.length === 2 ? o : undefined;
    });
    expect(nf.spec.podCIDRs).toEqual([expect.stringMatching(/^10\.244\.\d+\.0\/24$/), expect.stringMatching(/^fd00:10:244:(:|[0-9a-f]+::)\/64$/)]);
    // Sessions are not in the spec (each agent derives its own from the BGPPeers); the BGPPeer counts its nodes.
    expect(nf.spec).not.toHaveProperty('peers');
    expect(nf.spec.asn).toBe(64512);
    await waitFor('tor-r1 selects the two r1 nodes', async () => (await getPeer('tor-r1'))?.status?.nodesSelected === 2);
    expect(nf.spec.advertisements!.map((a) => a.nextHop)).toEqual(['10.0.1.11', 'fd00:1::11']);
    expect(nf.spec.advertisements![0]).not.toHaveProperty('communities');
    // All is well: the controller writes none of its conditions (absent means fine; only problems are written).
    expect(nf.status?.conditions ?? []).toEqual([]);

    const n1 = await waitFor('Node.spec.podCIDRs mirrored', async () => {
      const n = await rest.get<{ spec: { podCIDRs?: string[] } }>('/api/v1/nodes/c-r1n1');
      return n.spec.podCIDRs?.length ? n : undefined;
    });
    expect(n1.spec.podCIDRs).toEqual(nf.spec.podCIDRs);

    // The r2 node (IPv4 only) gets only an IPv4 block's advertisement and no peer.
    const r2 = await waitFor('c-r2n1 planned and its conditions written', async () => {
      const o = await getNF('c-r2n1');
      return o?.spec.podCIDRs?.length && cond(o, 'PeersResolved') ? o : undefined;
    });
    expect(r2.spec).not.toHaveProperty('peers');
    // It has an IPv6 block but no IPv6 address to advertise it from.
    expect(cond(r2, 'PeersResolved')).toMatchObject({ status: 'False', reason: 'NoNodeIP' });

    // Agents report their subnets → same-subnet nodes get direct routes to each other, others not.
    for (const [n, subnets] of [
      ['c-r1n1', ['10.0.1.0/24', 'fd00:1::/64']],
      ['c-r1n2', ['10.0.1.0/24', 'fd00:1::/64']],
      ['c-r2n1', ['10.0.2.0/24']],
    ] as const) {
      await rest.apply(`${API}/nodefabrics/${n}/status`, { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: n }, status: { l2Subnets: subnets } }, 'test-agent');
    }
    // One L2Segment per segment and family holds the routes; each NodeFabric names its segments only.
    const v4 = segmentObjectName(4, 'subnet:10.0.1.0/24');
    const v6 = segmentObjectName(6, 'subnet:fd00:1::/64');
    const seg4 = await waitFor('rack r1 IPv4 segment with both members', async () => {
      const o = await getSeg(v4);
      return o?.spec.routes.length === 2 ? o : undefined;
    });
    const seg6 = await waitFor('rack r1 IPv6 segment with both members', async () => {
      const o = await getSeg(v6);
      return o?.spec.routes.length === 2 ? o : undefined;
    });
    const [m1, m2] = [(await getNF('c-r1n1'))!, (await getNF('c-r1n2'))!];
    expect(seg4.spec).toEqual({
      key: 'subnet:10.0.1.0/24',
      family: 4,
      reason: 'SameSubnet',
      routes: [
        { destination: m1.spec.podCIDRs![0], via: '10.0.1.11', node: 'c-r1n1' },
        { destination: m2.spec.podCIDRs![0], via: '10.0.1.12', node: 'c-r1n2' },
      ].sort((a, b) => ((a.destination ?? '') < (b.destination ?? '') ? -1 : 1)),
    });
    expect(seg6.spec.routes.map((r) => r.via).sort()).toEqual(['fd00:1::11', 'fd00:1::12']);
    expect(directRoutesFrom('c-r1n1', [seg4.spec, seg6.spec])).toEqual([
      { destination: m2.spec.podCIDRs![0], via: '10.0.1.12', node: 'c-r1n2' },
      { destination: m2.spec.podCIDRs![1], via: 'fd00:1::12', node: 'c-r1n2' },
    ]);
    const withSegs = await waitFor('c-r1n1 names its segments', async () => {
      const o = await getNF('c-r1n1');
      return o?.spec.routing?.segments?.length === 2 ? o : undefined;
    });
    expect(withSegs.spec.routing).toEqual({ l2Segment: 'subnet:10.0.1.0/24', segments: [v4, v6] });
    expect(withSegs.spec).not.toHaveProperty('directRoutes');
    // r2 is alone in its segment: its object holds its own route only, so it installs none.
    const r2seg = await waitFor('r2 segment', async () => getSeg(segmentObjectName(4, 'subnet:10.0.2.0/24')));
    expect(directRoutesFrom('c-r2n1', [r2seg.spec])).toEqual([]);

    const ev = await waitFor('Allocated event', async () => (await events('c-r1n1')).find((e) => e.reason === 'Allocated'));
    expect(ev.message).toMatch(/from IPPool v4|from IPPool v6/);
  });

  it('a spec written by server-side apply (an earlier version) or edited by hand goes back to exactly the plan: entries the plan lacks are removed; labels and the agent status stay', async () => {
    const plan = (await getNF('c-r1n1'))!;
    expect(plan.spec.routing?.segments).toHaveLength(2);
    const extraAd = { prefix: '10.244.251.0/24', nextHop: '10.0.1.11' };
    // The controller's own field manager, as the versions that wrote with apply did: it owns every entry.
    await rest.apply(`${API}/nodefabrics/c-r1n1`, { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: 'c-r1n1', labels: { team: 'net' } }, spec: { ...plan.spec, advertisements: [...plan.spec.advertisements!, extraAd], asn: 4_200_000_000 } }, 'podfabric-controller');
    const back = await waitFor('spec back to the plan', async () => {
      const o = await getNF('c-r1n1');
      return o && o.metadata.resourceVersion !== plan.metadata.resourceVersion && JSON.stringify(o.spec) === JSON.stringify(plan.spec) ? o : undefined;
    });
    expect(back.spec.advertisements).toEqual(plan.spec.advertisements);
    expect(back.metadata.labels).toMatchObject({ team: 'net', 'app.kubernetes.io/managed-by': 'podfabric' });
    expect(back.status?.l2Subnets).toEqual(['10.0.1.0/24', 'fd00:1::/64']);
    // The PUT carries no managedFields (the cache drops them): the apiserver keeps them, so the status
    // fields stay owned by their appliers (an apply that stops sending a condition still removes it).
    const owners = (back.metadata as { managedFields?: Array<{ manager: string; operation: string; subresource?: string }> }).managedFields ?? [];
    expect(owners).toContainEqual(expect.objectContaining({ manager: 'test-agent', operation: 'Apply', subresource: 'status' }));
    expect(owners).toContainEqual(expect.objectContaining({ manager: 'podfabric-controller', operation: 'Update' }));
    // An edit by another manager (an Update: it owns the entries it wrote; an apply would not remove them).
    await rest.request('PATCH', `${API}/nodefabrics/c-r1n1?fieldManager=kubectl-edit`, { spec: { routing: { segments: [...plan.spec.routing!.segments!.slice(0, 1), 'v4-ghost'] } } }, 'application/merge-patch+json');
    await waitFor('edit undone', async () => {
      const o = await getNF('c-r1n1');
      return o && o.metadata.resourceVersion !== back.metadata.resourceVersion && JSON.stringify(o.spec) === JSON.stringify(plan.spec) ? o : undefined;
    });
    // The segment's routes too: a route added by hand is removed, a deleted segment is re-created.
    const v4 = segmentObjectName(4, 'subnet:10.0.1.0/24');
    const seg = (await getSeg(v4))!;
    const ghost = { destination: '10.244.250.0/24', via: '10.0.1.99', node: 'ghost' };
    await rest.request('PATCH', `${API}/l2segments/${v4}?fieldManager=kubectl-edit`, { spec: { routes: [...seg.spec.routes, ghost] } }, 'application/merge-patch+json');
    await waitFor('segment edit undone', async () => {
      const o = await getSeg(v4);
      return o && o.metadata.resourceVersion !== seg.metadata.resourceVersion && JSON.stringify(o.spec) === JSON.stringify(seg.spec);
    });
    await rest.request('DELETE', `${API}/l2segments/${v4}`);
    await waitFor('segment re-created', async () => {
      const o = await getSeg(v4);
      return o && o.metadata.uid !== seg.metadata.uid && JSON.stringify(o.spec) === JSON.stringify(seg.spec);
    });
  });

  it('no block is handed out twice; deleting a node releases its blocks and removes its routes from neighbours', async () => {
    const all = (await rest.get<Listed<NodeFabricObj>>(`${API}/nodefabrics`)).items;
    const blocks = all.flatMap((o) => o.spec.podCIDRs ?? []);
    expect(new Set(blocks).size).toBe(blocks.length);

    const gone = (await getNF('c-r1n2'))!.spec.podCIDRs!;
    await rest.request('DELETE', '/api/v1/nodes/c-r1n2');
    await waitFor('NodeFabric of deleted node removed', async () => !(await getNF('c-r1n2')));
    const seg = await waitFor('its routes leave the segment', async () => {
      const o = await getSeg(segmentObjectName(4, 'subnet:10.0.1.0/24'));
      return o?.spec.routes.length === 1 ? o : undefined;
    });
    expect(seg.spec.routes.map((r) => r.node)).toEqual(['c-r1n1']);
    expect(directRoutesFrom('c-r1n1', [seg.spec])).toEqual([]);
    await waitFor('Released event', async () => (await events('c-r1n2')).find((e) => e.reason === 'Released'));
    // The freed IPv4 block is the lowest free one, so the next node gets it back.
    await createNodes(rest, [node('c-late', '10.0.3.11')]);
    const late = await waitFor('c-late allocated', async () => ((await getNF('c-late'))?.spec.podCIDRs?.length ? getNF('c-late') : undefined));
    expect(late!.spec.podCIDRs![0]).toBe(gone[0]);
  });

  it('adopts a pre-set Node.spec.podCIDRs inside a pool', async () => {
    await createNodes(rest, [node('c-preset', '10.0.4.11', {}, ['10.244.200.0/24'])]);
    const nf = await waitFor('adopted', async () => ((await getNF('c-preset'))?.spec.podCIDRs?.length ? getNF('c-preset') : undefined));
    expect(nf!.spec.allocations).toEqual([
      { cidr: '10.244.200.0/24', pool: 'v4' },
      expect.objectContaining({ pool: 'v6' }),
    ]);
  });

  it('pool status counts blocks and the pool is Ready', async () => {
    const p = await waitFor('pool status', async () => {
      const o = await getPool('v4');
      return o?.status?.blocksAllocated === 4 ? o : undefined;
    });
    expect(p.status).toMatchObject({ blocksTotal: 256, blocksAllocated: 4, blocksFree: 252, observedGeneration: 1 });
    expect(cond(p, 'Ready')).toMatchObject({ status: 'True', observedGeneration: 1 });
    expect(p.metadata.finalizers).toContain('podfabric.io/blocks-in-use');
  });

  it('an exhausted pool gets a condition and an Event; the node left out says why; other nodes keep their blocks', async () => {
    // The cluster-wide pools stop serving nodes labelled "pool" (existing blocks do not move).
    const notTiny = { matchExpressions: [{ key: 'pool', operator: 'DoesNotExist' }] };
    await applyObjects([pool('v4', { cidr: '10.244.0.0/16', nodeSelector: notTiny }), pool('v6', { cidr: 'fd00:10:244::/56', nodeSelector: notTiny })]);
    await applyObjects([pool('tiny', { cidr: '10.99.0.0/23', nodeSelector: { matchLabels: { pool: 'tiny' } } })]);
    await createNodes(rest, ['x1', 'x2', 'x3'].map((n, i) => node(`c-${n}`, `10.0.5.${11 + i}`, { pool: 'tiny' })));
    const left = await waitFor('third node refused', async () => {
      const all = await Promise.all(['c-x1', 'c-x2', 'c-x3'].map(getNF));
      const refused = all.filter((o) => cond(o, 'Allocated')?.reason === 'PoolExhausted');
      return refused.length === 1 && all.filter((o) => o?.spec.podCIDRs?.some((c) => c.startsWith('10.99.'))).length === 2 ? refused[0] : undefined;
    });
    expect(cond(left, 'Allocated')!.message).toMatch(/no free \/24 block left in IPv4 pool\(s\) tiny/);
    const tiny = await waitFor('pool Exhausted', async () => (cond(await getPool('tiny'), 'Exhausted')?.status === 'True' ? getPool('tiny') : undefined));
    expect(tiny!.status).toMatchObject({ blocksAllocated: 2, blocksFree: 0 });
    await waitFor('Exhausted event', async () => (await events('tiny')).find((e) => e.reason === 'Exhausted'));
    await waitFor('node event', async () => (await events(left!.metadata.name)).find((e) => e.reason === 'PoolExhausted'));
    expect((await getNF('c-r1n1'))!.spec.podCIDRs).toHaveLength(2);
  });

  it('the FabricConfig in use says so: Ready=True and an Applied Event', async () => {
    await applyObjects([{ apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'default' }, spec: {} }]);
    const fc = await waitFor('FabricConfig Ready', async () => {
      const o = await rest.get<{ metadata: { generation: number }; status?: { conditions?: Condition[] } }>(`${API}/fabricconfigs/default`);
      return cond(o, 'Ready')?.status === 'True' ? o : undefined;
    });
    expect(cond(fc, 'Ready')!.observedGeneration).toBe(fc!.metadata.generation);
    const ev = await waitFor('Applied event', async () => (await events('default')).find((e) => e.involvedObject.kind === 'FabricConfig' && e.reason === 'Applied'));
    expect(ev.message).toMatch(/uses this configuration/);
  });

  it('overlapping pools are flagged on both and give no new blocks from the overlap', async () => {
    await applyObjects([pool('inner', { cidr: '10.244.128.0/17', nodeSelector: { matchLabels: { never: 'x' } } })]);
    for (const name of ['v4', 'inner']) {
      const p = await waitFor(`${name} Overlapping`, async () => (cond(await getPool(name), 'Overlapping')?.status === 'True' ? getPool(name) : undefined));
      expect(cond(p, 'Overlapping')!.message).toContain(name === 'v4' ? 'inner' : 'v4');
    }
    await waitFor('Overlapping event', async () => (await events('inner')).find((e) => e.reason === 'Overlapping'));
    // The adopted 10.244.200.0/24 lies in the overlap and is kept.
    expect((await getNF('c-preset'))!.spec.podCIDRs![0]).toBe('10.244.200.0/24');
    await rest.request('DELETE', `${API}/ippools/inner`);
    await waitFor('inner gone', async () => !(await getPool('inner')));
  });

  it('a disabled pool keeps existing blocks and gives no new ones', async () => {
    await kubectl(['patch', 'ippool', 'tiny', '--type=merge', '-p', '{"spec":{"disabled":true}}']);
    const p = await waitFor('Disabled condition', async () => (cond(await getPool('tiny'), 'Ready')?.reason === 'Disabled' ? getPool('tiny') : undefined));
    expect(p!.status?.blocksAllocated).toBe(2);
    await createNodes(rest, [node('c-x4', '10.0.5.14', { pool: 'tiny' })]);
    const x4 = await waitFor('x4 refused', async () => (cond(await getNF('c-x4'), 'Allocated')?.status === 'False' ? getNF('c-x4') : undefined));
    expect(cond(x4, 'Allocated')!.reason).toBe('NoMatchingPool');
    // The two nodes that got tiny's blocks keep them.
    const kept = (await Promise.all(['c-x1', 'c-x2', 'c-x3'].map(getNF))).filter((o) => o?.spec.podCIDRs?.some((c) => c.startsWith('10.99.')));
    expect(kept).toHaveLength(2);
  });

  it('deleting a pool in use is held by its finalizer with a condition saying why, and completes once its blocks are free', async () => {
    await rest.request('DELETE', `${API}/ippools/tiny`);
    const p = await waitFor('DeletionBlocked', async () => (cond(await getPool('tiny'), 'Ready')?.reason === 'DeletionBlocked' ? getPool('tiny') : undefined));
    expect(cond(p, 'Ready')!.message).toMatch(/waits until its 2 block\(s\) are released \(held by c-x/);
    for (const n of ['c-x1', 'c-x2', 'c-x3', 'c-x4']) await rest.request('DELETE', `/api/v1/nodes/${n}`);
    await waitFor('pool deleted', async () => !(await getPool('tiny')), 30_000);
  });

  it('bad peers get conditions and Events; good peers keep working', async () => {
    await kubectl(['create', 'namespace', 'pf-ctl-secrets'], { allowFail: true });
    await applyObjects([
      peer('in-pod-range', { peerAddress: '10.244.7.1', peerASN: 65001 }),
      peer('no-secret', { peerAddress: '10.0.1.2', peerASN: 65001, passwordSecretRef: { namespace: 'pf-ctl-secrets', name: 'absent' } }),
      peer('tor-r1-dup', { peerAddress: '10.0.1.1', peerASN: 65999, nodeSelector: { matchLabels: { rack: 'r1' } } }),
    ]);
    const a = await waitFor('in-pod-range invalid', async () => (cond(await getPeer('in-pod-range'), 'Valid')?.status === 'False' ? getPeer('in-pod-range') : undefined));
    expect(cond(a, 'Valid')).toMatchObject({ reason: 'AddressInPodCIDR' });
    const b = await waitFor('no-secret invalid', async () => (cond(await getPeer('no-secret'), 'Valid')?.status === 'False' ? getPeer('no-secret') : undefined));
    expect(cond(b, 'Valid')).toMatchObject({ reason: 'SecretMissing' });
    await waitFor('SecretMissing event', async () => (await events('no-secret')).find((e) => e.reason === 'SecretMissing'));
    const dup = await waitFor('duplicate flagged', async () => (cond(await getPeer('tor-r1-dup'), 'Conflict')?.status === 'True' ? getPeer('tor-r1-dup') : undefined));
    expect(cond(dup, 'Conflict')!.message).toContain('c-r1n1');
    // The node keeps the older peer; the invalid ones are in no plan.
    const nf = await waitFor('node condition names the conflict', async () => (cond(await getNF('c-r1n1'), 'PeersResolved')?.reason === 'PeerConflict' ? getNF('c-r1n1') : undefined));
    expect(cond(nf, 'PeersResolved')).toMatchObject({ status: 'False', reason: 'PeerConflict' });
    expect(cond(nf, 'PeersResolved')!.message).toContain('BGPPeer tor-r1-dup duplicates address 10.0.1.1 of tor-r1, which is used');
    await waitFor('tor-r1 counts its node', async () => (await getPeer('tor-r1'))?.status?.nodesSelected === 1);

    // Creating the secret makes the peer valid (secrets are re-checked periodically).
    await kubectl(['-n', 'pf-ctl-secrets', 'create', 'secret', 'generic', 'absent', '--from-literal=password=s3cret']);
    await waitFor('no-secret valid after the secret appears', async () => cond(await getPeer('no-secret'), 'Valid')?.status === 'True', 40_000);
    await waitFor('no-secret selects nodes once valid', async () => ((await getPeer('no-secret'))?.status?.nodesSelected ?? 0) > 0);
  });

  it('a peer timer change writes no NodeFabric (the agents follow the BGPPeer themselves)', async () => {
    const all = async () => new Map((await rest.get<{ items: NodeFabricObj[] }>(`${API}/nodefabrics`)).items.map((o) => [o.metadata.name, `${o.metadata.generation}/${o.metadata.resourceVersion}`]));
    const before = await all();
    const selected = (await getPeer('tor-r1'))?.status?.nodesSelected;
    expect(selected).toBeGreaterThan(0);
    await kubectl(['patch', 'bgppeer', 'tor-r1', '--type=merge', '-p', '{"spec":{"timers":{"holdTime":9,"keepaliveInterval":3}}}']);
    const p = await waitFor('tor-r1 status observed the change', async () => {
      const o = await getPeer('tor-r1');
      return o && o.status?.observedGeneration === o.metadata.generation ? o : undefined;
    });
    expect(p.status?.nodesSelected).toBe(selected);
    // Not one NodeFabric written (spec or status): generation and resourceVersion of every record unchanged.
    expect(await all()).toEqual(before);
  });

  // Cross-object validity follows the watch: well inside the 60 s resync this file's controller runs with.
  it('a pool created or removed after a peer re-judges the peer at once (AddressInPodCIDR appears and goes)', async () => {
    await applyObjects([peer('late-tor', { peerAddress: '10.250.3.1', peerASN: 65002, nodeSelector: { matchLabels: { never: 'x' } } })]);
    await waitFor('late-tor valid', async () => cond(await getPeer('late-tor'), 'Valid')?.status === 'True');
    await applyObjects([pool('late', { cidr: '10.250.0.0/16', nodeSelector: { matchLabels: { never: 'x' } } })]);
    const p = await waitFor('late-tor invalid once the pool exists', async () => (cond(await getPeer('late-tor'), 'Valid')?.reason === 'AddressInPodCIDR' ? getPeer('late-tor') : undefined), 15_000);
    expect(cond(p, 'Valid')).toMatchObject({ status: 'False' });
    expect(cond(p, 'Valid')!.message).toContain('late');
    await rest.request('DELETE', `${API}/ippools/late`);
    await waitFor('late-tor valid again once the pool is gone', async () => cond(await getPeer('late-tor'), 'Valid')?.status === 'True', 15_000);
    await rest.request('DELETE', `${API}/bgppeers/late-tor`);
  });

  it('a pre-set Node.spec.podCIDRs outside every pool: a Warning on the Node and a lasting PodCIDRsHonoured=False', async () => {
    await createNodes(rest, [node('c-outside', '10.0.6.11', { pool: 'none' }, ['192.168.50.0/24'])]);
    const nf = await waitFor('PodCIDRsHonoured=False', async () => (cond(await getNF('c-outside'), 'PodCIDRsHonoured')?.status === 'False' ? getNF('c-outside') : undefined));
    expect(cond(nf, 'PodCIDRsHonoured')).toMatchObject({ reason: 'PodCIDROutsidePools' });
    expect(cond(nf, 'PodCIDRsHonoured')!.message).toContain('192.168.50.0/24');
    await waitFor('Warning on the Node', async () => (await events('c-outside')).find((e) => e.involvedObject.kind === 'Node' && e.reason === 'PodCIDROutsidePools'));
    // Another concern's write (the agent's own conditions, under its field manager) leaves it in place.
    const agent = new StatusWriter(rest, AGENT_FIELD_MANAGER);
    await agent.write(NodeFabric, 'c-outside', { conditions: setConditions([], [{ type: 'Ready', status: 'False', reason: 'Starting', message: 'test' }], undefined, new Date()) });
    const after = await getNF('c-outside');
    expect(cond(after, 'Ready')).toMatchObject({ reason: 'Starting' });
    expect(cond(after, 'PodCIDRsHonoured')).toMatchObject({ status: 'False', reason: 'PodCIDROutsidePools' });
    expect(cond(after, 'Allocated')).toMatchObject({ status: 'False' });
    await rest.request('DELETE', '/api/v1/nodes/c-outside');
  });

  it('the apiserver rejects invalid objects with clear messages (CRD schema and CEL)', async () => {
    const bad: Array<[unknown, RegExp]> = [
      [pool('bad-cidr', { cidr: '10.1.2.3/16' }), /host bits/],
      [pool('bad-cidr2', { cidr: 'banana' }), /must be a CIDR/],
      [pool('bad-block', { cidr: '10.1.0.0/16', blockSize: 8 }), /blockSize must not be shorter than the pool prefix/],
      [pool('bad-block4', { cidr: '10.1.0.0/16', blockSize: 64 }), /at most 32 for an IPv4 pool/],
      [peer('bad-asn', { peerAddress: '10.0.0.1', peerASN: 0 }), /peerASN/],
      [peer('bad-ip', { peerAddress: '10.0.0.300', peerASN: 1 }), /IPv4 or IPv6 address/],
      [peer('bad-timers', { peerAddress: '10.0.0.1', peerASN: 1, timers: { holdTime: 9, keepaliveInterval: 5 } }), /at most a third of holdTime/],
      [peer('bad-comm', { peerAddress: '10.0.0.1', peerASN: 1, communities: ['65000:70000'] }), /0-65535/],
      [peer('bad-sel', { peerAddress: '10.0.0.1', peerASN: 1, nodeSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }), /non-empty values/],
      [{ apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'other' }, spec: {} }, /must be named 'default'/],
      [{ apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'default' }, spec: { routeProtocol: 186 } }, /reserved/],
      [{ apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'default' }, spec: { cni: { mtu: 1000 } } }, /should be greater than or equal to 1280/],
    ];
    for (const [obj, msg] of bad) {
      const r = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(obj), allowFail: true });
      expect(r.code, JSON.stringify(obj)).not.toBe(0);
      expect(r.stderr).toMatch(msg);
    }
    const r = await kubectl(['patch', 'ippool', 'v4', '--type=merge', '-p', '{"spec":{"cidr":"10.245.0.0/16"}}'], { allowFail: true });
    expect(r.stderr).toMatch(/cidr is immutable/);
    // Nothing that worked was disturbed.
    expect((await getNF('c-r1n1'))!.spec.podCIDRs).toHaveLength(2);
  });

  it('exposes metrics for the queue, reconciles, allocations and pool utilisation', async () => {
    const text = await (controller as unknown as { opts: { registry: { metrics(): Promise<string> } } }).opts.registry.metrics();
    expect(metric(text, 'podfabric_controller_queue_depth', {})).toBeGreaterThanOrEqual(0);
    expect(metric(text, 'podfabric_controller_reconcile_duration_seconds_count', { kind: 'node', result: 'ok' })).toBeGreaterThan(0);
    expect(metric(text, 'podfabric_ipam_allocations_total', { pool: 'v4', how: 'allocated' })).toBeGreaterThan(0);
    expect(metric(text, 'podfabric_ipam_pool_utilization_ratio', { pool: 'v4' })).toBeCloseTo(4 / 256, 3);
  });
});
