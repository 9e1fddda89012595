/**
 * The podfabric controller: allocates pod CIDRs and writes each node's plan (NodeFabric spec).
 *
 * Level-triggered: informers only enqueue keys ("node:<name>", "pool:<name>", "peer:<name>", "config");
 * each reconcile reads the caches, computes what should be (pure: ipam.ts, plan.ts), and writes only
 * the delta. Started only once this replica leads, so the caches it builds are a fresh LIST: every
 * allocation any earlier leader made is loaded before anything new is allocated.
 */
import type { Condition } from '../api/common.js';
import { fabricConfigSpec, type FabricConfigSpec } from '../api/fabricconfig.js';
import { BGPPeer, FabricConfig, IPPool, NodeFabric, parseObject, type BGPPeerObj, type IPPoolObj, type NodeFabricObj } from '../api/kinds.js';
import type { NodeFabricSpec } from '../api/nodefabric.js';
import { setConditions, sameConditions, type ConditionInput } from '../lib/conditions.js';
import { log } from '../lib/log.js';
import { Counter, Gauge, Histogram, RECONCILE_BUCKETS, type Registry } from '../lib/metrics.js';
import { stableStringify } from '../lib/stable.js';
import { runWorkers, startResync, WorkQueue, type ReconcileResult } from '../lib/workqueue.js';
import type { EventSink, ObjectRef } from '../kube/events.js';
import { Informer, type KObj } from '../kube/informer.js';
import { isNotFound, type KubeRest } from '../kube/rest.js';
import { Ipam, type Allocation, type PoolInfo } from './ipam.js';
import { computePlan, inferL2Subnets, nodeIPs, segmentKey, validatePeer, type PeerInfo, type PeerVerdict, type PlanNode } from './plan.js';
import { API_PATH as API } from '../api/common.js';

export const FIELD_MANAGER = 'podfabric-controller';
export const POOL_FINALIZER = 'podfabric.io/blocks-in-use';
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'podfabric' };
/** Condition types this controller owns on NodeFabric status (the agent owns the others). */
const CONTROLLER_NF_CONDITIONS = ['Allocated', 'PeersResolved'];

export interface KNode extends KObj {
  metadata: { name: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string; creationTimestamp?: string };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
  status?: { addresses?: Array<{ type: string; address: string }> };
}

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
  private readonly rest: KubeRest;
  private readonly events: EventSink;
  readonly ipam = new Ipam();
  readonly queue: WorkQueue;
  private nodes!: Informer<KNode>;
  private fabrics!: Informer<NodeFabricObj & KObj>;
  private pools!: Informer<IPPoolObj & KObj>;
  private peers!: Informer<BGPPeerObj & KObj>;
  private configs!: Informer<KObj>;
  private config: FabricConfigSpec = fabricConfigSpec.parse({});
  private peerVerdicts = new Map<string, PeerVerdict>();
  private peerSelected = new Map<string, Set<string>>();
  /** peer → nodes on which it lost a duplicate-address conflict */
  private peerConflicts = new Map<string, Set<string>>();
  private segments = new Map<string, Set<string>>();
  private nodeSegments = new Map<string, string[]>();
  private poolSignature = '';
  private stopResync: (() => void) | undefined;
  private workersDone: Promise<void> | undefined;
  private ready = false;
  private readonly metrics;

  constructor(private readonly opts: ControllerOptions) {
    this.rest = opts.rest;
    this.events = opts.events;
    this.queue = new WorkQueue({ name: 'controller', baseDelayMs: 50, maxDelayMs: 60_000 });
    const r = opts.registry;
    const queue = this.queue;
    this.metrics = {
      depth: new Gauge({
        name: 'podfabric_controller_queue_depth',
        help: 'Keys waiting in the work queue',
        registers: [r],
        collect() {
          this.set(queue.len());
        },
      }),
      reconcile: new Histogram({
        name: 'podfabric_controller_reconcile_duration_seconds',
        help: 'Time to reconcile one key',
        labelNames: ['kind', 'result'],
        buckets: RECONCILE_BUCKETS,
        registers: [r],
      }),
      allocations: new Counter({ name: 'podfabric_ipam_allocations_total', help: 'Blocks allocated or adopted', labelNames: ['pool', 'how'], registers: [r] }),
      releases: new Counter({ name: 'podfabric_ipam_releases_total', help: 'Blocks released', labelNames: ['pool'], registers: [r] }),
      poolTotal: new Gauge({ name: 'podfabric_ipam_pool_blocks', help: 'Blocks in a pool', labelNames: ['pool'], registers: [r] }),
      poolAllocated: new Gauge({ name: 'podfabric_ipam_pool_blocks_allocated', help: 'Blocks allocated from a pool', labelNames: ['pool'], registers: [r] }),
      poolUtil: new Gauge({ name: 'podfabric_ipam_pool_utilization_ratio', help: 'Allocated / total blocks', labelNames: ['pool'], registers: [r] }),
      leader: new Gauge({ name: 'podfabric_controller_leader', help: '1 while this replica leads and runs', registers: [r] }),
      nodesWithoutBlock: new Gauge({
        name: 'podfabric_ipam_nodes_without_block',
        help: 'Nodes no pool could serve',
        registers: [r],
        // Computed at scrape time, not on every reconcile (that would be O(nodes) per node).
        collect: () => this.collectNodesWithoutBlock(),
      }),
    };
  }

  isReady(): boolean {
    return this.ready;
  }

  private collectNodesWithoutBlock(): void {
    if (!this.nodes) return;
    this.metrics.nodesWithoutBlock.set(this.nodes.list().filter((n) => this.ipam.claimsOf(n.metadata.name).length === 0).length);
  }

  /** Build caches (a fresh LIST), load every allocation, then reconcile. Call only while leading. */
  async start(): Promise<void> {
    const enqueue = (k: string) => this.queue.add(k);
    this.configs = new Informer<KObj>(this.rest, `${API}/fabricconfigs`, {
      onAdd: () => enqueue('config'),
      onUpdate: () => enqueue('config'),
      onDelete: () => enqueue('config'),
    });
    this.pools = new Informer(this.rest, `${API}/ippools`, {
      onAdd: (p) => this.onPoolsChanged(p.metadata.name!),
      onUpdate: (_o, p) => this.onPoolsChanged(p.metadata.name!),
      onDelete: (p) => this.onPoolsChanged(p.metadata.name!),
    });
    this.peers = new Informer(this.rest, `${API}/bgppeers`, {
      onAdd: (p) => this.onPeerChanged(p.metadata.name!),
      onUpdate: (o, p) => {
        if (stableStringify(o.spec) !== stableStringify(p.spec)) this.onPeerChanged(p.metadata.name!);
      },
      onDelete: (p) => this.onPeerChanged(p.metadata.name!),
    });
    this.nodes = new Informer<KNode>(this.rest, '/api/v1/nodes', {
      onAdd: (n) => enqueue(`node:${n.metadata.name}`),
      onUpdate: (o, n) => {
        if (!sameNodeInputs(o, n)) {
          enqueue(`node:${n.metadata.name}`);
          this.enqueueSegmentOf(n.metadata.name);
        }
      },
      onDelete: (n) => {
        enqueue(`node:${n.metadata.name}`);
        this.enqueueSegmentOf(n.metadata.name);
      },
    });
    this.fabrics = new Informer(this.rest, `${API}/nodefabrics`, {
      onAdd: (f) => enqueue(`node:${f.metadata.name}`),
      onUpdate: (o, f) => this.onFabricUpdated(o, f),
      onDelete: (f) => enqueue(`node:${f.metadata.name}`),
    });
    for (const inf of [this.configs, this.pools, this.peers, this.nodes, this.fabrics]) inf.start();
    await Promise.all([this.configs, this.pools, this.peers, this.nodes, this.fabrics].map((i) => i.waitForSync()));

    this.loadConfig();
    this.syncPools();
    this.loadAllocations();
    for (const p of this.peers.list()) await this.reconcilePeerValidity(p.metadata.name!);
    this.ready = true;
    this.metrics.leader.set(1);
    log.info({ nodes: this.nodes.size(), fabrics: this.fabrics.size(), pools: this.pools.size(), peers: this.peers.size() }, 'caches synced; allocations loaded');

    this.enqueueAll();
    this.stopResync = startResync(this.opts.resyncMs ?? 300_000, () => this.enqueueAll());
    this.workersDone = runWorkers(this.queue, this.opts.workers ?? 8, (key) => this.reconcile(key), {
      onError: (key, err) => log.warn({ key, err: (err as Error).message }, 'reconcile failed; backing off'),
    });
  }

  async stop(): Promise<void> {
    this.ready = false;
    this.metrics.leader.set(0);
    this.stopResync?.();
    this.queue.shutDown();
    for (const inf of [this.configs, this.pools, this.peers, this.nodes, this.fabrics]) inf?.stop();
    await this.workersDone;
  }

  // ---------------------------------------------------------------- triggers

  private enqueueAll(): void {
    this.queue.add('config');
    for (const p of this.pools.list()) this.queue.add(`pool:${p.metadata.name}`);
    for (const p of this.peers.list()) this.queue.add(`peer:${p.metadata.name}`);
    for (const n of this.nodes.list()) this.queue.add(`node:${n.metadata.name}`);
    for (const f of this.fabrics.list()) this.queue.add(`node:${f.metadata.name}`);
  }

  private enqueueAllNodes(): void {
    for (const n of this.nodes.list()) this.queue.add(`node:${n.metadata.name}`);
  }

  private enqueueSegmentOf(name: string): void {
    for (const key of this.nodeSegments.get(name) ?? []) for (const m of this.segments.get(key) ?? []) if (m !== name) this.queue.add(`node:${m}`);
  }

  private onPoolsChanged(name: string): void {
    if (!this.ready) return;
    this.syncPools();
    // Overlap and capacity of every pool can change with one pool: look at all of them.
    this.queue.add(`pool:${name}`);
    for (const p of this.pools.list()) this.queue.add(`pool:${p.metadata.name}`);
    this.enqueueAllNodes();
  }

  private onPeerChanged(name: string): void {
    if (!this.ready) return;
    this.queue.add(`peer:${name}`);
    this.enqueueAllNodes();
  }

  private onFabricUpdated(o: NodeFabricObj & KObj, f: NodeFabricObj & KObj): void {
    const name = f.metadata.name!;
    if (stableStringify(o.spec) !== stableStringify(f.spec)) this.queue.add(`node:${name}`);
    if (stableStringify(o.status?.l2Subnets) !== stableStringify(f.status?.l2Subnets)) {
      this.queue.add(`node:${name}`);
      this.enqueueSegmentOf(name);
    }
    if (stableStringify(o.status?.sessions) !== stableStringify(f.status?.sessions)) {
      for (const p of f.spec?.peers ?? []) this.queue.addAfter(`peer:${p.name}`, 1000);
    }
  }

  // ---------------------------------------------------------------- state loading

  private loadConfig(): boolean {
    const raw = this.configs.get('default');
    let next: FabricConfigSpec;
    try {
      next = raw ? parseObject(FabricConfig, raw).spec : fabricConfigSpec.parse({});
    } catch (e) {
      log.warn({ kind: 'FabricConfig', name: 'default', err: (e as Error).message }, 'unreadable FabricConfig; keeping the previous one');
      return false;
    }
    const changed = stableStringify(next) !== stableStringify(this.config);
    this.config = next;
    return changed;
  }

  private poolInfos(): PoolInfo[] {
    const out: PoolInfo[] = [];
    for (const raw of this.pools.list()) {
      try {
        const p = parseObject(IPPool, raw);
        out.push({
          name: p.metadata.name,
          cidr: p.spec.cidr,
          ...(p.spec.blockSize !== undefined ? { blockSize: p.spec.blockSize } : {}),
          ...(p.spec.nodeSelector ? { nodeSelector: p.spec.nodeSelector } : {}),
          disabled: p.spec.disabled,
          deleting: !!p.metadata.deletionTimestamp,
        });
      } catch (e) {
        log.warn({ kind: 'IPPool', name: raw.metadata.name, err: (e as Error).message }, 'unreadable IPPool skipped');
      }
    }
    return out;
  }

  private syncPools(): void {
    const infos = this.poolInfos();
    const sig = stableStringify(infos);
    if (sig === this.poolSignature) return;
    this.poolSignature = sig;
    const invalid = this.ipam.setPools(infos);
    if (invalid.length) log.warn({ pools: invalid }, 'invalid pools ignored');
  }

  /** Every allocation in the durable record, oldest NodeFabric first: on a duplicate the older keeps it. */
  private loadAllocations(): void {
    const fabrics = this.fabrics.list().sort(
      (a, b) => String(a.metadata.creationTimestamp ?? '').localeCompare(String(b.metadata.creationTimestamp ?? '')) || a.metadata.name!.localeCompare(b.metadata.name!),
    );
    for (const f of fabrics) {
      const allocs = (f.spec?.allocations ?? []) as Allocation[];
      const dup = this.ipam.load(f.metadata.name!, allocs);
      for (const d of dup) {
        const owner = this.ipam.ownerOf(d.cidr);
        log.error({ kind: 'NodeFabric', name: f.metadata.name, cidr: d.cidr, owner }, 'duplicate block in the record; re-allocating');
        this.events.emit(nfRef(f), 'Warning', 'DuplicateBlock', `${d.cidr} is also held by node ${owner}; this node gets another block`);
      }
    }
  }

  // ---------------------------------------------------------------- reconcile

  private async reconcile(key: string): Promise<ReconcileResult | void> {
    const started = process.hrtime.bigint();
    const [kind, ...rest] = key.split(':');
    const name = rest.join(':');
    let result = 'ok';
    try {
      if (kind === 'node') return await this.reconcileNode(name);
      if (kind === 'pool') return await this.reconcilePool(name);
      if (kind === 'peer') return await this.reconcilePeer(name);
      if (kind === 'config') return await this.reconcileConfig();
    } catch (e) {
      result = 'error';
      throw e;
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics.reconcile.observe({ kind: kind ?? 'unknown', result }, seconds);
      log.debug({ key, result, ms: Math.round(seconds * 1000) }, 'reconciled');
    }
  }

  private async reconcileConfig(): Promise<void> {
    if (this.loadConfig()) this.enqueueAllNodes();
    const raw = this.configs.get('default');
    if (!raw) return;
    const gen = raw.metadata.generation as number | undefined;
    let cond: ConditionInput = { type: 'Ready', status: 'True', reason: 'Applied', message: 'the controller uses this configuration' };
    try {
      parseObject(FabricConfig, raw);
    } catch (e) {
      cond = { type: 'Ready', status: 'False', reason: 'Invalid', message: `not applied, the previous configuration stays: ${(e as Error).message}` };
    }
    if (await this.writeStatusConditions('fabricconfigs', raw, [cond], gen, {})) {
      this.events.emit(configRef(raw), cond.status === 'True' ? 'Normal' : 'Warning', cond.reason, cond.message);
    }
  }

  private planNode(n: KNode, allocations: Allocation[]): PlanNode {
    const f = this.fabrics.get(n.metadata.name);
    const reported = (f?.status?.l2Subnets as string[] | undefined) ?? [];
    const ips = nodeIPs(n.status?.addresses);
    return {
      name: n.metadata.name,
      labels: n.metadata.labels ?? {},
      annotations: n.metadata.annotations ?? {},
      ips,
      allocations,
      l2Subnets: reported.length ? reported : inferL2Subnets(ips, this.knownSubnets()),
    };
  }

  /** Subnets some node's agent reported (segment keys `subnet:…` with members). */
  private knownSubnets(): string[] {
    const out: string[] = [];
    for (const [k, members] of this.segments) if (members.size && k.startsWith('subnet:')) out.push(k.slice('subnet:'.length));
    return out;
  }

  /** Records the node's segments; when they changed, every member of the old and new segments is re-planned. */
  private updateSegmentIndex(pn: PlanNode): void {
    const keys = [4, 6].map((fam) => segmentKey(pn, fam as 4 | 6, this.config)).filter((k): k is string => !!k);
    const old = this.nodeSegments.get(pn.name) ?? [];
    if (stableStringify(old) !== stableStringify(keys)) {
      for (const k of new Set([...old, ...keys])) for (const m of this.segments.get(k) ?? []) if (m !== pn.name) this.queue.add(`node:${m}`);
    }
    for (const k of old) if (!keys.includes(k)) this.segments.get(k)?.delete(pn.name);
    for (const k of keys) {
      let s = this.segments.get(k);
      if (!s) this.segments.set(k, (s = new Set()));
      s.add(pn.name);
    }
    if (keys.length) this.nodeSegments.set(pn.name, keys);
    else this.nodeSegments.delete(pn.name);
  }

  private removeFromSegments(name: string): void {
    for (const k of this.nodeSegments.get(name) ?? []) this.segments.get(k)?.delete(name);
    this.nodeSegments.delete(name);
  }

  private async reconcileNode(name: string): Promise<void> {
    const node = this.nodes.get(name);
    const fabric = this.fabrics.get(name);
    if (!node) {
      await this.releaseNode(name, fabric);
      return;
    }
    const previous = this.ipam.claimsOf(name);
    const decision = this.ipam.decide({ name, labels: node.metadata.labels ?? {}, podCIDRs: nodePodCIDRs(node) });
    // Claim synchronously, before any await: no other reconcile can decide on these blocks.
    this.ipam.commit(name, decision.allocations);

    const me = this.planNode(node, decision.allocations);
    this.updateSegmentIndex(me);
    const neighbourNames = new Set<string>();
    for (const k of this.nodeSegments.get(name) ?? []) for (const m of this.segments.get(k) ?? []) neighbourNames.add(m);
    const neighbours: PlanNode[] = [];
    for (const m of neighbourNames) {
      const mn = this.nodes.get(m);
      if (mn && m !== name) neighbours.push(this.planNode(mn, this.ipam.claimsOf(m)));
    }
    const validPeers: PeerInfo[] = [];
    for (const p of this.peers.list()) {
      if (this.peerVerdicts.get(p.metadata.name!)?.invalid.length) continue;
      try {
        const o = parseObject(BGPPeer, p);
        validPeers.push({ name: o.metadata.name, spec: o.spec, creationTimestamp: o.metadata.creationTimestamp ?? '' });
      } catch {
        /* reported by the peer's own reconcile */
      }
    }
    const plan = computePlan(me, { config: this.config, validPeers, neighbours, nodesWithBlocks: this.ipam.owners().length });
    for (const p of validPeers) {
      const set = this.peerSelected.get(p.name) ?? new Set<string>();
      const selected = plan.spec.peers?.some((x) => x.name === p.name) ?? false;
      if (selected !== set.has(name)) {
        if (selected) set.add(name);
        else set.delete(name);
        this.peerSelected.set(p.name, set);
        this.queue.addAfter(`peer:${p.name}`, 1000);
      }
    }

    const lost = new Set(plan.conflicts.map((c) => c.peer));
    for (const p of validPeers) {
      const set = this.peerConflicts.get(p.name) ?? new Set<string>();
      if (lost.has(p.name) !== set.has(name)) {
        if (lost.has(p.name)) set.add(name);
        else set.delete(name);
        this.peerConflicts.set(p.name, set);
        this.queue.addAfter(`peer:${p.name}`, 500);
      }
    }

    // Contract with kube-proxy (detectLocalMode NodeCIDR): Node.spec.podCIDRs is written before the
    // NodeFabric that lets the agent get ready, so no node reports ready without them; it is written
    // once (the apiserver refuses any later change), so it never changes under a running node.
    let recorded = false;
    if (this.opts.mirrorNodePodCIDRs !== false && nodePodCIDRs(node).length === 0 && decision.allocations.length > 0) {
      const cidrs = decision.allocations.map((a) => a.cidr);
      try {
        await this.rest.request('PATCH', `/api/v1/nodes/${name}`, { spec: { podCIDR: cidrs[0], podCIDRs: cidrs } }, 'application/merge-patch+json');
      } catch (e) {
        this.ipam.commit(name, previous); // nothing was recorded: give the blocks back
        throw e;
      }
      recorded = true;
    }

    let current: NodeFabricObj & KObj = fabric as NodeFabricObj & KObj;
    if (!fabric || stableStringify(fabric.spec) !== stableStringify(plan.spec)) {
      try {
        current = await this.applyNodeFabric(node, plan.spec);
      } catch (e) {
        // Blocks already on the Node stay claimed (the next reconcile adopts them); otherwise give them back.
        if (!recorded) this.ipam.commit(name, previous);
        throw e;
      }
      for (const a of decision.allocated) {
        this.metrics.allocations.inc({ pool: a.pool, how: 'allocated' });
        this.events.emit(nfRef(current), 'Normal', 'Allocated', `allocated ${a.cidr} from IPPool ${a.pool} (lowest free block)`);
      }
      for (const a of decision.adopted) {
        this.metrics.allocations.inc({ pool: a.pool, how: 'adopted' });
        this.events.emit(nfRef(current), 'Normal', 'Adopted', `adopted Node.spec.podCIDRs ${a.cidr} (inside IPPool ${a.pool})`);
      }
      for (const a of [...decision.allocated, ...decision.adopted]) this.queue.addAfter(`pool:${a.pool}`, 500);
      if (stableStringify(fabric?.spec?.podCIDRs) !== stableStringify(plan.spec.podCIDRs)) this.enqueueSegmentOf(name);
    }

    // Controller-owned conditions on NodeFabric status.
    const conds: ConditionInput[] = [];
    const blocking = decision.problems.filter((p) => p.reason === 'PoolExhausted' || p.reason === 'NoMatchingPool');
    if (decision.allocations.length > 0) {
      const msg = decision.allocations.map((a) => `${a.cidr} from ${a.pool}`).join(', ');
      const extra = decision.problems.map((p) => p.message).join('; ');
      conds.push({ type: 'Allocated', status: 'True', reason: blocking.length ? 'Partial' : 'Allocated', message: extra ? `${msg}; ${extra}` : msg });
    } else {
      const p = blocking[0] ?? decision.problems[0];
      conds.push({ type: 'Allocated', status: 'False', reason: p?.reason ?? 'NoMatchingPool', message: p?.message ?? 'no IPPool selects this node' });
    }
    const peerIssues = [...plan.conflicts.map((c) => `BGPPeer ${c.peer} duplicates address ${c.address} of ${c.winner}, which is used`), ...plan.problems.map((p) => p.message)];
    conds.push(
      peerIssues.length
        ? { type: 'PeersResolved', status: 'False', reason: plan.conflicts.length ? 'PeerConflict' : plan.problems[0]!.reason, message: peerIssues.join('; ') }
        : { type: 'PeersResolved', status: 'True', reason: 'Resolved', message: `${plan.spec.peers?.length ?? 0} peer(s), ${plan.spec.directRoutes?.length ?? 0} direct route(s)` },
    );
    const changed = await this.writeStatusConditions('nodefabrics', current, conds, current.metadata.generation as number | undefined, {});
    if (changed) {
      for (const p of blocking) {
        this.events.emit(nfRef(current), 'Warning', p.reason, p.message);
        this.events.emit(nodeRef(node), 'Warning', p.reason, p.message);
        for (const pool of p.pools ?? []) this.queue.addAfter(`pool:${pool}`, 200);
      }
      for (const c of plan.conflicts) this.events.emit(nfRef(current), 'Warning', 'PeerConflict', `BGPPeer ${c.peer} has the same address ${c.address} as ${c.winner}; using ${c.winner}`);
    }
  }

  private async releaseNode(name: string, fabric: (NodeFabricObj & KObj) | undefined): Promise<void> {
    // Delete the durable record first (even if the cache has not seen it yet), then free the blocks.
    if (fabric || this.ipam.claimsOf(name).length) {
      try {
        await this.rest.request('DELETE', `${API}/nodefabrics/${name}`, {
          kind: 'DeleteOptions',
          apiVersion: 'v1',
          ...(fabric?.metadata.uid ? { preconditions: { uid: fabric.metadata.uid } } : {}),
        });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    const released = this.ipam.release(name);
    this.removeFromSegments(name);
    for (const p of this.peerSelected.values()) p.delete(name);
    for (const p of this.peerConflicts.values()) p.delete(name);
    for (const a of released) {
      this.metrics.releases.inc({ pool: a.pool });
      this.events.emit({ apiVersion: 'v1', kind: 'Node', name }, 'Normal', 'Released', `node deleted: released ${a.cidr} back to IPPool ${a.pool}`);
      this.queue.addAfter(`pool:${a.pool}`, 200);
    }
    if (released.length) log.info({ kind: 'Node', name, released: released.map((a) => a.cidr) }, 'released blocks');
  }

  private async applyNodeFabric(node: KNode, spec: NodeFabricSpec): Promise<NodeFabricObj & KObj> {
    const name = node.metadata.name;
    const body = {
      apiVersion: 'podfabric.io/v1alpha1',
      kind: 'NodeFabric',
      metadata: {
        name,
        labels: MANAGED_BY,
        ...(node.metadata.uid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata.uid }] } : {}),
      },
      spec,
    };
    return this.rest.apply<NodeFabricObj & KObj>(`${API}/nodefabrics/${name}`, body, FIELD_MANAGER);
  }

  /**
   * Server-side-applies this controller's conditions (and extra status fields) when they differ from
   * what the object shows. Returns whether anything was written.
   */
  private async writeStatusConditions(
    plural: string,
    obj: KObj & { status?: { conditions?: Condition[] } & Record<string, unknown> },
    updates: ConditionInput[],
    generation: number | undefined,
    extra: Record<string, unknown>,
  ): Promise<boolean> {
    const types = new Set(updates.map((u) => u.type));
    const existing = (obj.status?.conditions ?? []).filter((c) => types.has(c.type));
    const next = setConditions(existing, updates, generation, new Date());
    const extraSame = Object.entries(extra).every(([k, v]) => stableStringify(obj.status?.[k]) === stableStringify(v));
    if (sameConditions(existing, next) && extraSame) return false;
    await this.rest.apply(
      `${API}/${plural}/${obj.metadata.name}/status`,
      { apiVersion: 'podfabric.io/v1alpha1', kind: kindOfPlural(plural), metadata: { name: obj.metadata.name }, status: { ...extra, conditions: next } },
      FIELD_MANAGER,
    );
    return true;
  }

  private async reconcilePool(name: string): Promise<void> {
    const raw = this.pools.get(name);
    if (!raw) return;
    let pool: IPPoolObj;
    try {
      pool = parseObject(IPPool, raw);
    } catch (e) {
      await this.writeStatusConditions('ippools', raw, [{ type: 'Ready', status: 'False', reason: 'Invalid', message: (e as Error).message }], raw.metadata.generation as number, {});
      return;
    }
    const finalizers = pool.metadata.finalizers ?? [];
    const stats = this.ipam.stats(name);
    if (pool.metadata.deletionTimestamp) {
      if (!stats || stats.allocated === 0) {
        if (finalizers.includes(POOL_FINALIZER)) {
          await this.patchFinalizers(raw, finalizers.filter((f) => f !== POOL_FINALIZER));
          this.events.emit(poolRef(raw), 'Normal', 'Deleted', 'no blocks in use: deletion may proceed');
        }
        return;
      }
    } else if (!finalizers.includes(POOL_FINALIZER)) {
      await this.patchFinalizers(raw, [...finalizers, POOL_FINALIZER]);
    }
    const gen = pool.metadata.generation;
    const conds: ConditionInput[] = [];
    if (!stats) {
      conds.push({ type: 'Ready', status: 'False', reason: 'Invalid', message: 'blockSize does not fit the pool CIDR' });
    } else {
      this.metrics.poolTotal.set({ pool: name }, stats.total);
      this.metrics.poolAllocated.set({ pool: name }, stats.allocated);
      this.metrics.poolUtil.set({ pool: name }, stats.total ? stats.allocated / stats.total : 0);
      const waiting = this.nodesWaitingOn(name);
      conds.push(
        stats.overlaps.length
          ? { type: 'Overlapping', status: 'True', reason: 'Overlapping', message: `overlaps IPPool(s) ${stats.overlaps.join(', ')}: no new blocks come from the shared range` }
          : { type: 'Overlapping', status: 'False', reason: 'NoOverlap', message: 'no other pool overlaps this one' },
      );
      conds.push(
        stats.free === 0
          ? { type: 'Exhausted', status: 'True', reason: 'NoFreeBlocks', message: `all usable blocks are allocated${waiting.length ? `; nodes waiting: ${waiting.slice(0, 10).join(', ')}` : ''}` }
          : { type: 'Exhausted', status: 'False', reason: 'FreeBlocks', message: `${stats.free} block(s) free` },
      );
      if (pool.metadata.deletionTimestamp) {
        conds.push({
          type: 'Ready',
          status: 'False',
          reason: 'DeletionBlocked',
          message: `deletion waits until its ${stats.allocated} block(s) are released (held by ${stats.holders.join(', ')}${stats.allocated > stats.holders.length ? ', …' : ''}); delete or move those nodes`,
        });
      } else if (pool.spec.disabled) {
        conds.push({ type: 'Ready', status: 'False', reason: 'Disabled', message: `disabled: no new blocks; ${stats.allocated} existing block(s) kept` });
      } else {
        conds.push({ type: 'Ready', status: 'True', reason: 'Serving', message: `${stats.allocated}/${stats.total} blocks allocated` });
      }
    }
    const extra = stats ? { blocksTotal: stats.total, blocksAllocated: stats.allocated, blocksFree: stats.free, observedGeneration: gen } : { observedGeneration: gen };
    const before = raw.status?.conditions as Condition[] | undefined;
    if (await this.writeStatusConditions('ippools', raw, conds, gen, extra)) {
      for (const c of conds) {
        const prev = before?.find((b) => b.type === c.type);
        const turnedOn = c.status === 'True' && prev?.status !== 'True';
        if (c.type === 'Overlapping' && turnedOn) this.events.emit(poolRef(raw), 'Warning', 'Overlapping', c.message);
        if (c.type === 'Exhausted' && turnedOn) this.events.emit(poolRef(raw), 'Warning', 'Exhausted', c.message);
        if (c.type === 'Ready' && c.reason === 'DeletionBlocked' && prev?.reason !== 'DeletionBlocked') this.events.emit(poolRef(raw), 'Warning', 'DeletionBlocked', c.message);
      }
    }
  }

  private nodesWaitingOn(pool: string): string[] {
    const out: string[] = [];
    for (const f of this.fabrics.list()) {
      const c = (f.status?.conditions as Condition[] | undefined)?.find((x) => x.type === 'Allocated');
      if (c && c.status === 'False' && c.message.includes(pool)) out.push(f.metadata.name!);
    }
    return out.sort();
  }

  private async patchFinalizers(raw: KObj, finalizers: string[]): Promise<void> {
    await this.rest.request(
      'PATCH',
      `${API}/ippools/${raw.metadata.name}`,
      { metadata: { finalizers, resourceVersion: raw.metadata.resourceVersion } },
      'application/merge-patch+json',
    );
  }

  private async secretState(ref: { namespace: string; name: string; key: string }): Promise<'ok' | 'missing' | 'no-key'> {
    try {
      const s = await this.rest.get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${ref.namespace}/secrets/${ref.name}`);
      return s.data && s.data[ref.key] !== undefined ? 'ok' : 'no-key';
    } catch (e) {
      if (isNotFound(e)) return 'missing';
      throw e;
    }
  }

  private async reconcilePeerValidity(name: string): Promise<PeerVerdict | null> {
    const raw = this.peers.get(name);
    if (!raw) {
      this.peerVerdicts.delete(name);
      return null;
    }
    let verdict: PeerVerdict;
    try {
      const p = parseObject(BGPPeer, raw);
      const secret = p.spec.passwordSecretRef ? await this.secretState(p.spec.passwordSecretRef) : 'none';
      verdict = validatePeer(
        { name, spec: p.spec, creationTimestamp: p.metadata.creationTimestamp ?? '' },
        { poolCidrs: this.poolInfos().map((x) => ({ pool: x.name, cidr: x.cidr })), secret },
      );
    } catch (e) {
      verdict = { invalid: [{ reason: 'Invalid', message: (e as Error).message }] };
    }
    const before = this.peerVerdicts.get(name);
    this.peerVerdicts.set(name, verdict);
    if (this.ready && stableStringify(before) !== stableStringify(verdict)) this.enqueueAllNodes();
    return verdict;
  }

  private async reconcilePeer(name: string): Promise<{ requeueAfterMs?: number } | void> {
    const verdict = await this.reconcilePeerValidity(name);
    const raw = this.peers.get(name);
    if (!raw || !verdict) {
      this.peerSelected.delete(name);
      this.peerConflicts.delete(name);
      return;
    }
    const selected = [...(this.peerSelected.get(name) ?? [])];
    let established = 0;
    const address = String((raw.spec as { peerAddress?: string })?.peerAddress ?? '');
    for (const n of selected) {
      const s = (this.fabrics.get(n)?.status?.sessions ?? []).find((x) => x.name === name || x.address === address);
      if (s?.state === 'Established') established++;
    }
    const conflicts = [...(this.peerConflicts.get(name) ?? [])].sort();
    const gen = raw.metadata.generation as number | undefined;
    const conds: ConditionInput[] = [];
    if (verdict.invalid.length) {
      const msg = verdict.invalid.map((i) => i.message).join('; ');
      conds.push({ type: 'Valid', status: 'False', reason: verdict.invalid[0]!.reason, message: msg });
      conds.push({ type: 'Ready', status: 'False', reason: verdict.invalid[0]!.reason, message: `not configured on any node: ${msg}` });
    } else {
      conds.push({ type: 'Valid', status: 'True', reason: 'Valid', message: 'address, ASN and password reference are usable' });
      conds.push(
        conflicts.length
          ? { type: 'Conflict', status: 'True', reason: 'DuplicateAddress', message: `another BGPPeer with the same address wins on ${conflicts.length} node(s): ${conflicts.slice(0, 10).join(', ')}` }
          : { type: 'Conflict', status: 'False', reason: 'NoConflict', message: 'no other BGPPeer uses this address on the same nodes' },
      );
      conds.push(
        selected.length === 0
          ? { type: 'Ready', status: 'False', reason: 'NoNodes', message: 'no node is selected' }
          : established === selected.length
            ? { type: 'Ready', status: 'True', reason: 'Established', message: `established on all ${selected.length} selected node(s)` }
            : { type: 'Ready', status: 'False', reason: 'NotEstablished', message: `established on ${established} of ${selected.length} selected node(s)` },
      );
    }
    const before = raw.status?.conditions as Condition[] | undefined;
    const written = await this.writeStatusConditions('bgppeers', raw, conds, gen, {
      observedGeneration: gen,
      nodesSelected: selected.length,
      nodesEstablished: established,
    });
    if (written) {
      const v = conds.find((c) => c.type === 'Valid')!;
      if (v.status === 'False' && before?.find((b) => b.type === 'Valid')?.reason !== v.reason) this.events.emit(peerRef(raw), 'Warning', v.reason, v.message);
      const c = conds.find((x) => x.type === 'Conflict');
      if (c?.status === 'True' && before?.find((b) => b.type === 'Conflict')?.status !== 'True') this.events.emit(peerRef(raw), 'Warning', 'DuplicateAddress', c.message);
    }
    // Secrets are not watched: look again later.
    if (verdict.invalid.some((i) => i.reason.startsWith('Secret'))) return { requeueAfterMs: 15_000 };
  }
}

function nodePodCIDRs(n: KNode): string[] {
  return n.spec?.podCIDRs?.length ? n.spec.podCIDRs : n.spec?.podCIDR ? [n.spec.podCIDR] : [];
}

function sameNodeInputs(a: KNode, b: KNode): boolean {
  return (
    stableStringify(a.metadata.labels) === stableStringify(b.metadata.labels) &&
    stableStringify(a.metadata.annotations?.['podfabric.io/router-id']) === stableStringify(b.metadata.annotations?.['podfabric.io/router-id']) &&
    stableStringify(a.status?.addresses) === stableStringify(b.status?.addresses) &&
    stableStringify(nodePodCIDRs(a)) === stableStringify(nodePodCIDRs(b))
  );
}

function kindOfPlural(plural: string): string {
  return { nodefabrics: 'NodeFabric', ippools: 'IPPool', bgppeers: 'BGPPeer', fabricconfigs: 'FabricConfig' }[plural] ?? plural;
}

const ref = (kind: string) => (o: KObj): ObjectRef => ({ apiVersion: 'podfabric.io/v1alpha1', kind, name: o.metadata.name!, ...(o.metadata.uid ? { uid: o.metadata.uid } : {}) });
const nfRef = ref('NodeFabric');
const poolRef = ref('IPPool');
const peerRef = ref('BGPPeer');
const configRef = ref('FabricConfig');
const nodeRef = (n: KNode): ObjectRef => ({ apiVersion: 'v1', kind: 'Node', name: n.metadata.name, ...(n.metadata.uid ? { uid: n.metadata.uid } : {}) });
