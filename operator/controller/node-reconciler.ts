/**
 * One node: decide its blocks (ipam), plan its fabric (plan), write the NodeFabric spec when it differs,
 * mirror the blocks into Node.spec.podCIDRs when empty, and write the controller's conditions. A deleted
 * node's record is deleted first, then its blocks are freed. Returns the other keys it made stale
 * (its L2 segments, peers whose selection changed, pools whose usage changed).
 */
import { API_PATH as API, type Condition } from '../api/common.js';
import { NodeFabric } from '../api/kinds.js';
import type { NodeFabricSpec } from '../api/nodefabric.js';
import { isNotFound } from '../kube/rest.js';
import { writeWhole } from '../kube/own-writes.js';
import { carryEnqueue, type ReconcileContext, type ReconcileResult } from '../kube/workqueue.js';
import type { Allocation } from '../ipam/ipam.js';
import type { PeerInfo } from '../plan/peers.js';
import { computePlan, inferL2Subnets, nodeIPs, segmentKey, type PlanNode } from '../plan/plan.js';
import { stableStringify } from '../lib/stable.js';
import { blockingProblems, NODE_CONDITION_TYPES, nodeConditionFine, nodeConditions, nodeConditionsToWrite } from './conditions.js';
import { poolsWaitedOn } from './pool-reconciler.js';
import { segmentQueueKey } from './segment-reconciler.js';
import { FIELD_MANAGER, nfRef, nodePodCIDRs, nodeRef, type ControllerState, type KNode, type RawFabric } from './state.js';

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'podfabric' };
const NF_API_VERSION = 'podfabric.io/v1alpha1';
type Enqueue = NonNullable<ReconcileResult['enqueue']>;

export class NodeReconciler {
  constructor(private readonly s: ControllerState) {}

  /** The uplink subnets the node's agent reported (NodeFabric status.l2Subnets); empty until it has. */
  private reported(name: string): string[] {
    return (this.s.stores.fabrics.get(name)?.status?.l2Subnets as string[] | undefined) ?? [];
  }

  /** The plan's view of a node: its addresses, blocks and L2 subnets (reported, else inferred). */
  planNode(n: KNode, allocations: Allocation[]): PlanNode {
    const reported = this.reported(n.metadata.name);
    const ips = nodeIPs(n.status?.addresses);
    return {
      name: n.metadata.name,
      labels: n.metadata.labels ?? {},
      annotations: n.metadata.annotations ?? {},
      ips,
      allocations,
      l2Subnets: reported.length ? reported : inferL2Subnets(ips, this.s.segments.knownSubnets()),
    };
  }

  /** A node as a segment member (segment-reconciler.ts): undefined once its Node is gone. */
  memberOf(name: string): PlanNode | undefined {
    const n = this.s.stores.nodes.get(name);
    return n ? this.planNode(n, this.s.ipam.claimsOf(name)) : undefined;
  }

  /**
   * Fills the L2 segment index from the caches before the first reconcile (start-up, or a new leader).
   * Without it a segment would be written with the members reconciled so far: a new leader would
   * withdraw and restore host routes on every node (it once rewrote 1,950 NodeFabrics for 1,000 nodes
   * that way). Nodes whose agents reported their subnet go first, so the others' inference sees every
   * known subnet.
   */
  indexSegments(): void {
    const s = this.s;
    const reported = (n: KNode) => this.reported(n.metadata.name).length > 0;
    const nodes = s.stores.nodes.list();
    for (const n of [...nodes.filter(reported), ...nodes.filter((x) => !reported(x))]) {
      s.segments.update(n.metadata.name, this.segmentKeys(this.planNode(n, s.ipam.claimsOf(n.metadata.name))));
    }
  }

  private segmentKeys(n: PlanNode): string[] {
    return [4, 6].map((fam) => segmentKey(n, fam as 4 | 6, this.s.config)).filter((k): k is string => !!k);
  }

  /**
   * A subnet an agent has just reported for the first time: every node with an IP in it that has not
   * reported its own joins that segment now (by inference, as planNode would infer it), in the index and
   * in the queue. So a rack coming up is one segment with all its members at once, instead of growing
   * by one member per report.
   */
  private adoptSubnet(key: string, reporter: string, enqueue: Enqueue): void {
    const s = this.s;
    for (const n of s.stores.nodes.list()) {
      const name = n.metadata.name;
      if (name === reporter || this.reported(name).length) continue;
      const keys = this.segmentKeys(this.planNode(n, s.ipam.claimsOf(name)));
      if (!keys.includes(key)) continue;
      for (const k of s.segments.update(name, keys)) enqueue.push({ key: segmentQueueKey(k) });
      enqueue.push({ key: `node:${name}` }); // its spec names its segments
    }
  }

  /** Peers that are valid (their own reconcile said so) and decode. */
  validPeers(): PeerInfo[] {
    const out: PeerInfo[] = [];
    for (const p of this.s.stores.peers.list()) {
      const name = p.metadata.name!;
      if (this.s.peerVerdicts.get(name)?.invalid.length) continue;
      const d = this.s.stores.peers.decoded(name);
      if (d?.ok) out.push({ name: d.value.metadata.name, spec: d.value.spec, creationTimestamp: d.value.metadata.creationTimestamp ?? '' });
      // an undecodable peer is reported by the peer's own reconcile
    }
    return out;
  }

  async reconcile(name: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    const s = this.s;
    const node = s.stores.nodes.get(name);
    const fabric = s.fabric(name);
    const enqueue: Enqueue = [];
    if (!node) {
      await this.release(name, fabric, enqueue, ctx);
      return { enqueue };
    }
    const previous = s.ipam.claimsOf(name);
    const decision = s.ipam.decide({ name, labels: node.metadata.labels ?? {}, podCIDRs: nodePodCIDRs(node) });
    // Claim synchronously, before any await: no other reconcile can decide on these blocks.
    s.ipam.commit(name, decision.allocations);

    const me = this.planNode(node, decision.allocations);
    const keys = this.segmentKeys(me);
    const known = new Set(s.segments.knownSubnets());
    // The segments it left and the ones it is in: their L2Segments (segment-reconciler.ts) follow its
    // blocks and addresses; a no-op when nothing changed, and at most one write per segment per 250 ms.
    for (const k of new Set([...s.segments.update(name, keys), ...keys])) enqueue.push({ key: segmentQueueKey(k) });
    for (const k of keys) if (k.startsWith('subnet:') && !known.has(k.slice('subnet:'.length))) this.adoptSubnet(k, name, enqueue);
    // The node's sessions are computed here only for the BGPPeers' status (nodesSelected, Conflict) and
    // this node's PeersResolved condition: they are not in the spec (each agent derives its own from the
    // BGPPeers, plan/peers.ts), so a BGPPeer change re-runs this for every node without writing any
    // NodeFabric. PeersResolved is written only while it reports a problem (nodeConditionsToWrite): a
    // duplicate-address conflict costs one status write per affected node, the normal case none.
    const validPeers = this.validPeers();
    const plan = computePlan(me, { config: s.config, validPeers });
    const lost = new Set(plan.conflicts.map((c) => c.peer));
    for (const p of validPeers) {
      const selected = plan.peers.some((x) => x.name === p.name);
      if (s.peerIndex.setSelected(p.name, name, selected)) enqueue.push({ key: `peer:${p.name}`, afterMs: 1000 });
    }
    for (const p of validPeers) if (s.peerIndex.setConflict(p.name, name, lost.has(p.name))) enqueue.push({ key: `peer:${p.name}`, afterMs: 500 });

    try {
      // Contract with kube-proxy (detectLocalMode NodeCIDR): Node.spec.podCIDRs is written before the
      // NodeFabric that lets the agent get ready, so no node reports ready without them; it is written
      // once (the apiserver refuses any later change), so it never changes under a running node. A crash
      // between the two writes is safe: start-up claims blocks found on Nodes (claimUnrecordedPodCIDRs).
      let recorded = false;
      if (s.opts.mirrorNodePodCIDRs !== false && nodePodCIDRs(node).length === 0 && decision.allocations.length > 0) {
        const cidrs = decision.allocations.map((a) => a.cidr);
        try {
          await s.rest.request('PATCH', `/api/v1/nodes/${name}`, { spec: { podCIDR: cidrs[0], podCIDRs: cidrs } }, 'application/merge-patch+json');
        } catch (e) {
          s.ipam.commit(name, previous); // nothing was recorded: give the blocks back
          throw e;
        }
        recorded = true;
      }
      let current = fabric as RawFabric;
      // The write answers with the whole object, status included (a fake client may not: keep what was seen).
      const statusOf = (f: RawFabric): RawFabric => (f.status || !fabric?.status ? f : { ...f, status: fabric.status });
      if (!fabric || stableStringify(fabric.spec) !== stableStringify(plan.spec)) {
        try {
          current = statusOf(await this.writeNodeFabric(node, plan.spec, fabric));
        } catch (e) {
          // Blocks already on the Node stay claimed (the next reconcile adopts them); otherwise give them back.
          if (!recorded) s.ipam.commit(name, previous);
          throw e;
        }
        s.wrote(name, current);
        for (const a of decision.allocated) {
          s.metrics.allocations.inc({ pool: a.pool, how: 'allocated' });
          s.allocationEvents.allocated(nfRef(current), a.pool, a.cidr);
        }
        for (const a of decision.adopted) {
          s.metrics.allocations.inc({ pool: a.pool, how: 'adopted' });
          s.events.emit(nfRef(current), 'Normal', 'Adopted', `adopted Node.spec.podCIDRs ${a.cidr} (inside IPPool ${a.pool})`);
        }
        for (const a of [...decision.allocated, ...decision.adopted]) enqueue.push({ key: `pool:${a.pool}`, afterMs: 500 });
      }

      const conds = nodeConditions(decision, plan);
      const before = current.status?.conditions as Condition[] | undefined;
      // Only the conditions that report a problem are written (absent means fine): none on the happy path.
      if (await s.status.writeIfChanged(NodeFabric, current, nodeConditionsToWrite(conds), current.metadata.generation as number | undefined, {}, NODE_CONDITION_TYPES)) {
        // Warnings (on the Node and its NodeFabric) when a problem appears or its reason changes, not on every write.
        const turned = (type: string) => {
          const c = conds.find((x) => x.type === type)!;
          const p = before?.find((x) => x.type === type);
          const same = p ? p.status === c.status && p.reason === c.reason : nodeConditionFine(c, type);
          return same ? undefined : c;
        };
        const warn = (reason: string, message: string) => {
          s.events.emit(nfRef(current), 'Warning', reason, message);
          s.events.emit(nodeRef(node), 'Warning', reason, message);
        };
        const honoured = turned('PodCIDRsHonoured');
        if (honoured?.status === 'False') warn(honoured.reason, honoured.message);
        const allocationChanged = !!turned('Allocated');
        for (const p of blockingProblems(decision)) {
          if (allocationChanged) warn(p.reason, p.message);
          for (const pool of p.pools ?? []) enqueue.push({ key: `pool:${pool}`, afterMs: 200 });
        }
        for (const c of plan.conflicts) s.events.emit(nfRef(current), 'Warning', 'PeerConflict', `BGPPeer ${c.peer} has the same address ${c.address} as ${c.winner}; using ${c.winner}`);
      }
    } catch (e) {
      throw carryEnqueue(e, enqueue);
    }
    return { enqueue };
  }

  private async release(name: string, fabric: RawFabric | undefined, enqueue: Enqueue, ctx: ReconcileContext): Promise<void> {
    const s = this.s;
    // Delete the durable record first (even if the cache has not seen it yet), then free the blocks.
    if (fabric || s.ipam.claimsOf(name).length) {
      try {
        await s.rest.request('DELETE', `${API}/nodefabrics/${name}`, {
          kind: 'DeleteOptions',
          apiVersion: 'v1',
          ...(fabric?.metadata.uid ? { preconditions: { uid: fabric.metadata.uid } } : {}),
        });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    // Pools listing it among their waiting nodes drop it (the fabric may already be gone from the cache).
    for (const p of poolsWaitedOn(fabric, s.ipam.poolNames())) enqueue.push({ key: `pool:${p}` });
    s.wrote(name, undefined);
    const released = s.ipam.release(name);
    for (const k of new Set(s.segments.keysOf(name))) enqueue.push({ key: segmentQueueKey(k) });
    s.segments.remove(name);
    // The peers it had selected count one node less (before the split, only a resync told them).
    for (const p of s.peerIndex.forgetNode(name)) enqueue.push({ key: `peer:${p}`, afterMs: 200 });
    for (const a of released) {
      s.metrics.releases.inc({ pool: a.pool });
      s.events.emit({ apiVersion: 'v1', kind: 'Node', name }, 'Normal', 'Released', `node deleted: released ${a.cidr} back to IPPool ${a.pool}`);
      enqueue.push({ key: `pool:${a.pool}`, afterMs: 200 });
    }
    if (released.length) ctx.log.info({ kind: 'Node', name, released: released.map((a) => a.cidr) }, 'released blocks');
  }

  /**
   * Writes the NodeFabric with exactly this spec. A new record is created (POST); an existing one is
   * replaced (PUT) from the newest version known, conditional on its resourceVersion: the whole spec is
   * written, so an entry the plan dropped is really gone (server-side apply would leave fields another
   * manager once set), the metadata others added is kept, and the status is the agent's (a PUT of the
   * main resource never changes it). Both are cheaper for the apiserver than an apply of a custom
   * resource (`npm run bench -- ipam-writes`). A conflict (the agent's status write moved the
   * resourceVersion, or the cache is behind) reads the record once and writes again; a second one fails
   * the reconcile, which is retried (kube/own-writes.ts writeWhole).
   */
  private async writeNodeFabric(node: KNode, spec: NodeFabricSpec, known: RawFabric | undefined): Promise<RawFabric> {
    const name = node.metadata.name;
    const owner = node.metadata.uid ? [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata.uid }] : undefined;
    return writeWhole<RawFabric>(this.s.rest, {
      collection: `${API}/nodefabrics`,
      name,
      fieldManager: FIELD_MANAGER,
      known,
      body: (cur) => ({
        apiVersion: cur?.apiVersion ?? NF_API_VERSION,
        kind: 'NodeFabric',
        metadata: cur
          ? {
              ...cur.metadata,
              labels: { ...cur.metadata.labels, ...MANAGED_BY },
              ...(owner ? { ownerReferences: [...((cur.metadata.ownerReferences ?? []) as Array<{ kind?: string }>).filter((r) => r.kind !== 'Node'), ...owner] } : {}),
            }
          : { name, labels: MANAGED_BY, ...(owner ? { ownerReferences: owner } : {}) },
        spec,
      }),
    });
  }
}
