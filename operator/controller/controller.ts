/**
 * The podfabric controller: allocates pod CIDRs and writes each node's plan (NodeFabric spec: blocks,
 * advertisements, its L2 segments; not its BGP sessions, which each agent derives from the BGPPeers)
 * and each L2 segment's host-gw routes (L2Segment).
 *
 * Level-triggered: informers only enqueue keys ("node:<name>", "segment:<key>", "pool:<name>",
 * "peer:<name>", "config"); each key goes to its reconciler (node-, segment-, pool-, peer-,
 * config-reconciler.ts), which reads the typed
 * caches, computes what should be (pure: ipam/, plan/, conditions.ts), writes only the delta and returns
 * the other keys it made stale. Started only once this replica leads, so the caches it builds are a
 * fresh LIST: every allocation any earlier leader made is loaded before anything new is allocated.
 */
import { API_PATH as API } from '../api/common.js';
import { BGPPeer, FabricConfig, IPPool, parseObject, type BGPPeerObj, type FabricConfigObj, type IPPoolObj } from '../api/kinds.js';
import type { EventSink } from '../kube/events.js';
import { Informer, type KObj } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import { StatusWriter } from '../kube/status.js';
import { runWorkers, startResync, WorkQueue, type ReconcileContext, type ReconcileResult } from '../kube/workqueue.js';
import type { Allocation } from '../ipam/ipam.js';
import { log } from '../lib/log.js';
import type { Registry } from '../lib/metrics.js';
import { stableStringify } from '../lib/stable.js';
import { ConfigReconciler } from './config-reconciler.js';
import { controllerMetrics } from './metrics.js';
import { NodeReconciler } from './node-reconciler.js';
import { PeerReconciler } from './peer-reconciler.js';
import { PoolReconciler, poolsWaitedOn } from './pool-reconciler.js';
import { SegmentReconciler, segmentQueueKey } from './segment-reconciler.js';
import { ServiceReconciler, SERVICES_KEY } from './service-reconciler.js';
import { claimUnrecordedPodCIDRs, ControllerState, FIELD_MANAGER, nfRef, sameNodeInputs, trimNode, type KNode, type RawFabric, type RawPeer, type RawPool, type RawSegment } from './state.js';

export { FIELD_MANAGER, POOL_FINALIZER, type KNode } from './state.js';

export interface ControllerOptions {
  rest: KubeRest;
  events: EventSink;
  registry: Registry;
  workers?: number;
  resyncMs?: number;
  /** Mirror allocations into Node.spec.podCIDRs when empty (default true). */
  mirrorNodePodCIDRs?: boolean;
}

export class FabricController {
  readonly queue = new WorkQueue({ name: 'controller', baseDelayMs: 50, maxDelayMs: 60_000 });
  private readonly nodes: Informer<KNode>;
  private readonly fabrics: Informer<RawFabric>;
  private readonly segmentObjs: Informer<RawSegment>;
  private readonly pools: Informer<RawPool, IPPoolObj>;
  private readonly peers: Informer<RawPeer, BGPPeerObj>;
  private readonly configs: Informer<KObj, FabricConfigObj>;
  private readonly state: ControllerState;
  private readonly config: ConfigReconciler;
  private readonly node: NodeReconciler;
  private readonly segment: SegmentReconciler;
  private readonly pool: PoolReconciler;
  private readonly peer: PeerReconciler;
  private readonly service: ServiceReconciler;
  private poolSignature = '';
  private stopResync: (() => void) | undefined;
  private workersDone: Promise<void> | undefined;

  constructor(private readonly opts: ControllerOptions) {
    const { rest } = opts;
    const add = (k: string) => this.queue.add(k);
    this.configs = new Informer(rest, `${API}/fabricconfigs`, { onAdd: () => add('config'), onUpdate: () => add('config'), onDelete: () => add('config') }, { decode: (o) => parseObject(FabricConfig, o) });
    this.pools = new Informer(
      rest,
      `${API}/ippools`,
      { onAdd: (p) => this.onPoolsChanged(p.metadata.name!), onUpdate: (_o, p) => this.onPoolsChanged(p.metadata.name!), onDelete: (p) => this.onPoolsChanged(p.metadata.name!) },
      { decode: (o) => parseObject(IPPool, o) },
    );
    this.peers = new Informer(
      rest,
      `${API}/bgppeers`,
      {
        onAdd: (p) => this.onPeerChanged(p.metadata.name!),
        onUpdate: (o, p) => {
          if (stableStringify(o.spec) !== stableStringify(p.spec)) this.onPeerChanged(p.metadata.name!);
        },
        onDelete: (p) => this.onPeerChanged(p.metadata.name!),
      },
      { decode: (o) => parseObject(BGPPeer, o) },
    );
    this.nodes = new Informer<KNode>(rest, '/api/v1/nodes', {
      onAdd: (n) => add(`node:${n.metadata.name}`),
      // The node's own reconcile enqueues its segments (old and new).
      onUpdate: (o, n) => !sameNodeInputs(o, n) && add(`node:${n.metadata.name}`),
      onDelete: (n) => add(`node:${n.metadata.name}`),
    }, { trim: trimNode });
    this.fabrics = new Informer(rest, `${API}/nodefabrics`, {
      onAdd: (f) => add(`node:${f.metadata.name}`),
      onUpdate: (o, f) => this.onFabricUpdated(o, f),
      onDelete: (f) => {
        add(`node:${f.metadata.name}`);
        this.onWaitingChanged(f, undefined);
      },
    });
    // Ours alone (segment-reconciler.ts): any change not ours is put back, a deleted one re-created.
    const segmentKey = (o: RawSegment) => typeof o.spec?.key === 'string' && add(segmentQueueKey(o.spec.key));
    this.segmentObjs = new Informer<RawSegment>(rest, `${API}/l2segments`, {
      onAdd: segmentKey,
      onUpdate: (o, n) => stableStringify(o.spec) !== stableStringify(n.spec) && segmentKey(n),
      onDelete: segmentKey,
    });
    const metrics = controllerMetrics(opts.registry, () => this.queue.len(), () => this.nodesWithoutBlock());
    const stores = { nodes: this.nodes, fabrics: this.fabrics, pools: this.pools, peers: this.peers, configs: this.configs, segments: this.segmentObjs };
    this.state = new ControllerState(stores, rest, new StatusWriter(rest, FIELD_MANAGER), opts.events, metrics, { ...(opts.mirrorNodePodCIDRs !== undefined ? { mirrorNodePodCIDRs: opts.mirrorNodePodCIDRs } : {}) });
    this.config = new ConfigReconciler(this.state);
    this.node = new NodeReconciler(this.state);
    this.segment = new SegmentReconciler(this.state, (name) => this.node.memberOf(name));
    this.pool = new PoolReconciler(this.state);
    this.peer = new PeerReconciler(this.state);
    this.service = new ServiceReconciler(rest, opts.events, () => this.state.config, add);
  }

  /** The IPAM this controller allocates from (tests and the bench look at it). */
  get ipam() {
    return this.state.ipam;
  }

  isReady(): boolean {
    return this.state.ready;
  }

  private nodesWithoutBlock(): number | undefined {
    if (!this.state.ready) return undefined;
    return this.nodes.list().filter((n) => this.state.ipam.claimsOf(n.metadata.name).length === 0).length;
  }

  /** Build caches (a fresh LIST), load every allocation, then reconcile. Call only while leading. */
  async start(): Promise<void> {
    const informers = [this.configs, this.pools, this.peers, this.nodes, this.fabrics, this.segmentObjs, ...this.service.informers];
    for (const inf of informers) inf.start();
    await Promise.all(informers.map((i) => i.waitForSync()));

    this.config.load(log);
    this.syncPools();
    this.loadAllocations();
    this.node.indexSegments();
    for (const p of this.peers.list()) await this.peer.validity(p.metadata.name!);
    this.state.ready = true;
    this.state.metrics.leader.set(1);
    log.info({ nodes: this.nodes.size(), fabrics: this.fabrics.size(), pools: this.pools.size(), peers: this.peers.size() }, 'caches synced; allocations loaded');

    this.enqueueAll();
    this.stopResync = startResync(this.opts.resyncMs ?? 300_000, () => this.enqueueAll());
    this.workersDone = runWorkers(this.queue, this.opts.workers ?? 8, (key, ctx) => this.reconcile(key, ctx), {
      component: 'controller',
      onError: (key, err) => log.warn({ key, err: (err as Error).message }, 'reconcile failed; backing off'),
      onDone: (key, ms, outcome) => {
        this.state.metrics.reconcile.observe({ kind: key.split(':')[0] ?? 'unknown', result: outcome }, ms / 1000);
        log.debug({ key, result: outcome, ms: Math.round(ms) }, 'reconciled');
      },
    });
  }

  async stop(): Promise<void> {
    this.state.ready = false;
    this.state.metrics.leader.set(0);
    this.stopResync?.();
    this.queue.shutDown();
    this.state.allocationEvents.flush();
    for (const inf of [this.configs, this.pools, this.peers, this.nodes, this.fabrics, this.segmentObjs, ...this.service.informers]) inf.stop();
    await this.workersDone;
  }

  private reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const [kind, ...rest] = key.split(':');
    const name = rest.join(':');
    if (kind === 'node') return this.node.reconcile(name, ctx);
    if (kind === 'segment') return this.segment.reconcile(name, ctx);
    if (kind === 'pool') return this.pool.reconcile(name, ctx);
    if (kind === 'peer') return this.peer.reconcile(name, ctx);
    // LoadBalancer addresses depend on FabricConfig spec.services: re-plan them after each config load.
    if (kind === 'config') return this.config.reconcile(ctx).then((r) => ({ ...r, enqueue: [...(r.enqueue ?? []), { key: SERVICES_KEY }] }));
    if (kind === SERVICES_KEY) return this.service.reconcile(ctx);
    return Promise.resolve();
  }

  // ---------------------------------------------------------------- triggers

  private enqueueAll(): void {
    this.queue.add('config');
    this.queue.add(SERVICES_KEY);
    for (const p of this.pools.list()) this.queue.add(`pool:${p.metadata.name}`);
    for (const p of this.peers.list()) this.queue.add(`peer:${p.metadata.name}`);
    for (const n of this.nodes.list()) this.queue.add(`node:${n.metadata.name}`);
    for (const f of this.fabrics.list()) this.queue.add(`node:${f.metadata.name}`);
    for (const k of this.state.segments.keys()) this.queue.add(segmentQueueKey(k));
    for (const o of this.segmentObjs.list()) if (typeof o.spec?.key === 'string') this.queue.add(segmentQueueKey(o.spec.key));
  }

  private enqueueAllNodes(): void {
    for (const n of this.nodes.list()) this.queue.add(`node:${n.metadata.name}`);
  }

  private onPoolsChanged(name: string): void {
    if (!this.state.ready) return;
    this.syncPools();
    // Overlap and capacity of every pool can change with one pool: look at all of them.
    this.queue.add(`pool:${name}`);
    for (const p of this.pools.list()) this.queue.add(`pool:${p.metadata.name}`);
    // A peer's validity depends on the pools (AddressInPodCIDR): judge every peer again now.
    for (const p of this.peers.list()) this.queue.add(`peer:${p.metadata.name}`);
    this.enqueueAllNodes();
  }

  /** A node started or stopped waiting for a pool's blocks: those pools' waiting lists change. */
  private onWaitingChanged(o: RawFabric | undefined, f: RawFabric | undefined): void {
    const names = this.state.ipam.poolNames();
    const [was, is] = [poolsWaitedOn(o, names), poolsWaitedOn(f, names)];
    for (const p of [...was.filter((x) => !is.includes(x)), ...is.filter((x) => !was.includes(x))]) this.queue.add(`pool:${p}`);
  }

  /**
   * Every node is looked at again (which nodes the peer selects, conflicts), but no NodeFabric spec
   * changes: sessions are not in it. Each agent sees the BGPPeer through its own watch.
   */
  private onPeerChanged(name: string): void {
    if (!this.state.ready) return;
    this.queue.add(`peer:${name}`);
    this.enqueueAllNodes();
  }

  private onFabricUpdated(o: RawFabric, f: RawFabric): void {
    const name = f.metadata.name!;
    if (stableStringify(o.spec) !== stableStringify(f.spec)) this.queue.add(`node:${name}`);
    this.onWaitingChanged(o, f);
    if (stableStringify(o.status?.l2Subnets) !== stableStringify(f.status?.l2Subnets)) this.queue.add(`node:${name}`);
    if (stableStringify(o.status?.sessions) !== stableStringify(f.status?.sessions)) {
      // The BGPPeers whose sessions on this node changed (the agent names them): nodesEstablished moves.
      const names = new Set([...(o.status?.sessions ?? []), ...(f.status?.sessions ?? [])].flatMap((x) => (x.name ? [x.name] : [])));
      for (const p of names) this.queue.addAfter(`peer:${p}`, 1000);
    }
  }

  // ---------------------------------------------------------------- state loading

  private syncPools(): void {
    const infos = this.state.poolInfos();
    const sig = stableStringify(infos);
    if (sig === this.poolSignature) return;
    this.poolSignature = sig;
    const invalid = this.state.ipam.setPools(infos);
    if (invalid.length) log.warn({ pools: invalid }, 'invalid pools ignored');
  }

  /** Every allocation in the durable record, oldest NodeFabric first: on a duplicate the older keeps it. */
  private loadAllocations(): void {
    const fabrics = this.fabrics.list().sort(
      (a, b) => String(a.metadata.creationTimestamp ?? '').localeCompare(String(b.metadata.creationTimestamp ?? '')) || a.metadata.name!.localeCompare(b.metadata.name!),
    );
    for (const f of fabrics) {
      const allocs = (f.spec?.allocations ?? []) as Allocation[];
      const dup = this.state.ipam.load(f.metadata.name!, allocs);
      for (const d of dup) {
        const owner = this.state.ipam.ownerOf(d.cidr);
        log.error({ kind: 'NodeFabric', name: f.metadata.name, cidr: d.cidr, owner }, 'duplicate block in the record; re-allocating');
        this.opts.events.emit(nfRef(f), 'Warning', 'DuplicateBlock', `${d.cidr} is also held by node ${owner}; this node gets another block`);
      }
    }
    claimUnrecordedPodCIDRs(this.state.ipam, this.nodes.list());
  }
}

