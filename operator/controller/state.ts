/**
 * What the controller's reconcilers share: the typed stores (informer caches), the IPAM and the two
 * indexes, the current FabricConfig, and the writers (REST, status, events, metrics). Each reconciler
 * owns its own logic; this is only the house they live in.
 */
import { fabricConfigSpec, type FabricConfigSpec } from '../api/fabricconfig.js';
import type { BGPPeerObj, FabricConfigObj, IPPoolObj, L2SegmentObj, NodeFabricObj } from '../api/kinds.js';
import type { ObjectRef, EventSink } from '../kube/events.js';
import type { Decoded, KObj } from '../kube/informer.js';
import { OwnWrites } from '../kube/own-writes.js';
import type { KubeRest } from '../kube/rest.js';
import type { StatusWriter } from '../kube/status.js';
import { stableStringify } from '../lib/stable.js';
import { Ipam, type PoolInfo } from '../ipam/ipam.js';
import { log } from '../lib/log.js';
import type { PeerVerdict } from '../plan/peers.js';
import { AllocationEvents, type AllocationEventOptions } from './allocation-events.js';
import type { ControllerMetrics } from './metrics.js';
import { PeerIndex } from './peer-index.js';
import { SegmentIndex } from './segment-index.js';

export const FIELD_MANAGER = 'podfabric-controller';
export const POOL_FINALIZER = 'podfabric.io/blocks-in-use';

export interface KNode extends KObj {
  metadata: { name: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string; creationTimestamp?: string };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
  status?: { addresses?: Array<{ type: string; address: string }> };
}

/** A read-only cache (an Informer in production, a map in unit tests). */
export interface Store<T, D = T> {
  get(name: string): T | undefined;
  list(): T[];
  size(): number;
  decoded(name: string): Decoded<D> | undefined;
}

export type RawPool = IPPoolObj & KObj;
export type RawPeer = BGPPeerObj & KObj;
export type RawFabric = NodeFabricObj & KObj;
export type RawSegment = L2SegmentObj & KObj;

export interface Stores {
  nodes: Store<KNode>;
  fabrics: Store<RawFabric>;
  pools: Store<RawPool, IPPoolObj>;
  peers: Store<RawPeer, BGPPeerObj>;
  configs: Store<KObj, FabricConfigObj>;
  /** The L2Segments (the controller writes them; one per segment and family). */
  segments: Store<RawSegment>;
}

export class ControllerState {
  readonly ipam = new Ipam();
  readonly segments = new SegmentIndex();
  readonly peerIndex = new PeerIndex();
  readonly peerVerdicts = new Map<string, PeerVerdict>();
  config: FabricConfigSpec = fabricConfigSpec.parse({});
  /** Caches are synced and allocations loaded: reconcilers may fan out to other keys. */
  ready = false;
  /** NodeFabrics as this controller last wrote them, until the informer's cache shows that write. */
  private readonly written = new OwnWrites<RawFabric>();
  /** Normal `Allocated` Events: per node while few, one summary per pool under a burst. */
  readonly allocationEvents: AllocationEvents;

  constructor(
    readonly stores: Stores,
    readonly rest: KubeRest,
    readonly status: StatusWriter,
    readonly events: EventSink,
    readonly metrics: ControllerMetrics,
    readonly opts: { mirrorNodePodCIDRs?: boolean; allocationEvents?: AllocationEventOptions } = {},
  ) {
    this.allocationEvents = new AllocationEvents(events, (pool) => {
      const p = stores.pools.get(pool);
      return p ? poolRef(p) : { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', name: pool };
    }, opts.allocationEvents);
  }

  /** The newest NodeFabric known: the cache's, or this controller's own write the cache has not shown yet. */
  fabric(name: string): RawFabric | undefined {
    return this.written.get(name, this.stores.fabrics.get(name));
  }

  /** Records a NodeFabric this controller just wrote (see fabric()); undefined forgets it (deleted). */
  wrote(name: string, f: RawFabric | undefined): void {
    if (f) this.written.wrote(name, f);
    else this.written.forget(name);
  }

  /** The pools as IPAM sees them (decoded on arrival; an undecodable pool is skipped, with a warning). */
  poolInfos(): PoolInfo[] {
    const out: PoolInfo[] = [];
    for (const raw of this.stores.pools.list()) {
      const d = this.stores.pools.decoded(raw.metadata.name!);
      if (!d?.ok) {
        log.warn({ kind: 'IPPool', name: raw.metadata.name, err: d?.error }, 'unreadable IPPool skipped');
        continue;
      }
      const p = d.value;
      out.push({
        name: p.metadata.name,
        cidr: p.spec.cidr,
        ...(p.spec.blockSize !== undefined ? { blockSize: p.spec.blockSize } : {}),
        ...(p.spec.nodeSelector ? { nodeSelector: p.spec.nodeSelector } : {}),
        disabled: p.spec.disabled,
        deleting: !!p.metadata.deletionTimestamp,
      });
    }
    return out;
  }

  nodeKeys(): Array<{ key: string }> {
    return this.stores.nodes.list().map((n) => ({ key: `node:${n.metadata.name}` }));
  }
}

/**
 * A Node as the controller caches it: only what it reads (KNode's fields; of the annotations, podfabric's
 * own). A real Node carries its images, conditions and kubelet annotations — kilobytes each, thousands
 * of times over — none of which the controller looks at.
 */
export function trimNode(n: KNode): KNode {
  const m = n.metadata;
  const ann = m.annotations ? Object.entries(m.annotations).filter(([k]) => k.startsWith('podfabric.io/')) : [];
  return {
    metadata: {
      name: m.name,
      ...(m.uid !== undefined ? { uid: m.uid } : {}),
      ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
      ...(m.creationTimestamp !== undefined ? { creationTimestamp: m.creationTimestamp } : {}),
      ...(m.labels ? { labels: m.labels } : {}),
      ...(ann.length ? { annotations: Object.fromEntries(ann) } : {}),
    },
    ...(n.spec?.podCIDR || n.spec?.podCIDRs ? { spec: { ...(n.spec.podCIDR ? { podCIDR: n.spec.podCIDR } : {}), ...(n.spec.podCIDRs ? { podCIDRs: n.spec.podCIDRs } : {}) } } : {}),
    ...(n.status?.addresses ? { status: { addresses: n.status.addresses } } : {}),
  };
}

export function nodePodCIDRs(n: KNode): string[] {
  return n.spec?.podCIDRs?.length ? n.spec.podCIDRs : n.spec?.podCIDR ? [n.spec.podCIDR] : [];
}

/** Whether a Node update changes anything the plan reads (labels, router-id, addresses, podCIDRs). */
export function sameNodeInputs(a: KNode, b: KNode): boolean {
  return (
    stableStringify(a.metadata.labels) === stableStringify(b.metadata.labels) &&
    stableStringify(a.metadata.annotations?.['podfabric.io/router-id']) === stableStringify(b.metadata.annotations?.['podfabric.io/router-id']) &&
    stableStringify(a.status?.addresses) === stableStringify(b.status?.addresses) &&
    stableStringify(nodePodCIDRs(a)) === stableStringify(nodePodCIDRs(b))
  );
}

const ref = (kind: string) => (o: KObj): ObjectRef => ({ apiVersion: 'podfabric.io/v1alpha1', kind, name: o.metadata.name!, ...(o.metadata.uid ? { uid: o.metadata.uid } : {}) });
export const nfRef = ref('NodeFabric');
export const poolRef = ref('IPPool');
export const peerRef = ref('BGPPeer');
export const configRef = ref('FabricConfig');
export const nodeRef = (n: KNode): ObjectRef => ({ apiVersion: 'v1', kind: 'Node', name: n.metadata.name, ...(n.metadata.uid ? { uid: n.metadata.uid } : {}) });

/**
 * Blocks already on Nodes that have no record yet — podCIDRs set before podfabric ran, or a controller
 * killed between writing Node.spec.podCIDRs and the NodeFabric — are claimed at start-up before anything
 * is allocated (as kube-controller-manager's range allocator does), so no other node is handed a block a
 * Node already carries. Oldest Node first on a clash; each node's reconcile then records its blocks.
 */
export function claimUnrecordedPodCIDRs(ipam: Ipam, nodes: KNode[]): string[] {
  const claimed: string[] = [];
  const unrecorded = nodes
    .filter((n) => ipam.claimsOf(n.metadata.name).length === 0 && nodePodCIDRs(n).length > 0)
    .sort((a, b) => String(a.metadata.creationTimestamp ?? '').localeCompare(String(b.metadata.creationTimestamp ?? '')) || a.metadata.name.localeCompare(b.metadata.name));
  for (const n of unrecorded) {
    const d = ipam.decide({ name: n.metadata.name, labels: n.metadata.labels ?? {}, podCIDRs: nodePodCIDRs(n) });
    if (d.adopted.length) ipam.commit(n.metadata.name, d.adopted);
    claimed.push(...d.adopted.map((a) => a.cidr));
  }
  return claimed;
}
