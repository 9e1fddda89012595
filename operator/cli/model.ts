/**
 * `kubectl fabric`: the plain objects the views work on (what the apiserver returned, nothing more)
 * and the small pure helpers shared by the tables, the node report and the map.
 */
import type { Condition } from '../api/common.js';
import type { BGPPeerObj, FabricConfigObj, IPPoolObj, L2SegmentObj, NodeFabricObj } from '../api/kinds.js';
import type { SessionStatus } from '../api/nodefabric.js';
import { findCondition } from '../api/conditions.js';
import { staleReady } from '../api/readiness.js';
import { canonIP } from '../lib/ip.js';
import { selectPeers, type PeerInfo } from '../plan/peers.js';

/** Node label that names a node's rack (the map groups by it first). */
export const RACK_LABEL = 'podfabric.io/rack';

/** The few fields of a core/v1 Node the plugin reads. */
export interface CoreNode {
  metadata: { name: string; labels?: Record<string, string>; creationTimestamp?: string };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
}

/** Everything `kubectl fabric` reads, at one moment. */
export interface FabricSnapshot {
  nodes: CoreNode[];
  nodeFabrics: NodeFabricObj[];
  /** Every L2Segment (the NodeFabrics name theirs in spec.routing.segments). */
  segments: L2SegmentObj[];
  peers: BGPPeerObj[];
  pools: IPPoolObj[];
  config?: FabricConfigObj | null;
}

export type SessionState = SessionStatus['state'];
export type ConditionStatus = Condition['status'];

/** Natural order ("r1n2" before "r1n10"), locale-independent so output is the same everywhere. */
export function naturalCompare(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    const nx = /^\d/.test(x) && /^\d/.test(y);
    if (nx && Number(x) !== Number(y)) return Number(x) - Number(y);
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length || (a < b ? -1 : a > b ? 1 : 0);
}

export const byName = (a: { metadata: { name: string } }, b: { metadata: { name: string } }): number => naturalCompare(a.metadata.name, b.metadata.name);

/** Canonical address / prefix text, so "fd00::0001" and "fd00::1" are the same peer. */

export interface ReadyView {
  status: ConditionStatus;
  reason: string;
  message: string;
}

/** The node's Ready condition (written by its agent); no status at all is Unknown/NoStatus. */
export function nodeReady(nf: NodeFabricObj | undefined): ReadyView {
  if (!nf) return { status: 'Unknown', reason: 'NoNodeFabric', message: 'the controller has not created a NodeFabric for this node' };
  if (!nf.status) return { status: 'Unknown', reason: 'NoStatus', message: 'the node agent has not written status yet' };
  const c = findCondition(nf.status.conditions, 'Ready');
  if (!c) return { status: 'Unknown', reason: 'NoReadyCondition', message: 'status has no Ready condition' };
  const stale = staleReady(nf);
  if (stale) return { status: 'Unknown', reason: 'PlanNotSynced', message: stale };
  return { status: c.status, reason: c.reason, message: c.message };
}

/** Rack of a node: label podfabric.io/rack, else the planned L2 segment, else the subnet the agent reports. */
export function rackOf(node: CoreNode | undefined, nf: NodeFabricObj | undefined): string {
  return node?.metadata.labels?.[RACK_LABEL] ?? nf?.spec.routing?.l2Segment ?? nf?.status?.l2Subnets?.[0] ?? '(no rack)';
}

/**
 * The sessions a node should have: the rule its agent applies (plan/peers.ts selectPeers), over the
 * BGPPeers the controller has not judged invalid (Valid=False). Empty when the Node is unknown.
 */
export function plannedSessions(s: FabricSnapshot, name: string): Array<{ address: string; name: string }> {
  const idx = indexOf(s);
  const node = idx.nodes.get(name);
  if (!node) return [];
  return selectPeers({ labels: node.metadata.labels ?? {} }, idx.validPeers).chosen.map((p) => ({ address: canonIP(p.spec.peerAddress), name: p.name }));
}

/** Per snapshot, computed once: Nodes by name and the peers not judged invalid. */
const indexes = new WeakMap<FabricSnapshot, { nodes: Map<string, CoreNode>; validPeers: PeerInfo[] }>();
function indexOf(s: FabricSnapshot): { nodes: Map<string, CoreNode>; validPeers: PeerInfo[] } {
  let idx = indexes.get(s);
  if (!idx) {
    const validPeers: PeerInfo[] = s.peers
      .filter((p) => findCondition(p.status?.conditions, 'Valid')?.status !== 'False')
      .map((p) => ({ name: p.metadata.name, spec: p.spec, creationTimestamp: p.metadata.creationTimestamp ?? '' }));
    idx = { nodes: new Map(s.nodes.map((n) => [n.metadata.name, n])), validPeers };
    indexes.set(s, idx);
  }
  return idx;
}

/** One BGP session of a node: the plan (plannedSessions) merged with what the agent sees (status.sessions). */
export interface SessionView {
  address: string;
  peerName?: string;
  planned: boolean;
  observed: boolean;
  state: SessionState;
  establishedSince?: string;
  prefixesSent?: number;
  prefixesReceived?: number;
  lastError?: string;
}

/** Planned and observed sessions of a node, by canonical address (planned without a session: Unknown). */
export function sessionsOf(nf: NodeFabricObj, s: FabricSnapshot): SessionView[] {
  const out = new Map<string, SessionView>();
  for (const p of plannedSessions(s, nf.metadata.name)) {
    out.set(p.address, { address: p.address, peerName: p.name, planned: true, observed: false, state: 'Unknown' });
  }
  for (const x of nf.status?.sessions ?? []) {
    const a = canonIP(x.address);
    const prev = out.get(a);
    out.set(a, {
      address: a,
      ...((prev?.peerName ?? x.name) !== undefined ? { peerName: prev?.peerName ?? x.name } : {}),
      planned: prev?.planned ?? false,
      observed: true,
      state: x.state,
      ...(x.establishedSince !== undefined ? { establishedSince: x.establishedSince } : {}),
      ...(x.prefixesSent !== undefined ? { prefixesSent: x.prefixesSent } : {}),
      ...(x.prefixesReceived !== undefined ? { prefixesReceived: x.prefixesReceived } : {}),
      ...(x.lastError !== undefined ? { lastError: x.lastError } : {}),
    });
  }
  return [...out.values()].sort((x, y) => naturalCompare(x.address, y.address));
}

/** Seconds since an RFC 3339 time, or null. */
export function ageSeconds(time: string | undefined, now: Date): number | null {
  if (!time) return null;
  const t = Date.parse(time);
  return Number.isNaN(t) ? null : Math.max(0, Math.floor((now.getTime() - t) / 1000));
}

/** kubectl-style age: 45s, 12m, 3h, 5d (2m30s under ten minutes, like kubectl). */
export function formatAge(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 600) return seconds % 60 ? `${Math.floor(seconds / 60)}m${seconds % 60}s` : `${seconds / 60}m`;
  if (seconds < 3 * 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 48 * 3600) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}
