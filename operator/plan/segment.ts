/**
 * L2 segments (pure): which L2Segment objects a node belongs to, what each holds, and the host routes a
 * member installs from them. A segment key comes from plan.segmentKey, one per family; the nodes with
 * the same key for a family are that family's segment, and each one's pod CIDRs of the family, with its
 * IP of the family as the next hop, are the segment's routes.
 */
import type { FabricConfigSpec } from '../api/fabricconfig.js';
import { MAX_SEGMENT_ROUTES, segmentObjectName, type L2SegmentSpec, type SegmentRoute } from '../api/segment.js';
import { parseCidr, type Family } from '../lib/ip.js';
import { segmentKey, type PlanNode } from './plan.js';

/** One host-gw route a node installs: to a neighbour's pod CIDR via the neighbour's IP. */
export type DirectRoute = SegmentRoute;

export interface SegmentRef {
  family: Family;
  key: string;
  /** The L2Segment object's name. */
  name: string;
}

/**
 * The node's segments: one per family it has an IP and a segment key of (a node without an IPv6 address
 * has no use for its neighbours' IPv6 routes, and a label segment is per family like any other).
 */
export function segmentsOf(node: PlanNode, cfg: FabricConfigSpec): SegmentRef[] {
  const out: SegmentRef[] = [];
  for (const family of [4, 6] as const) {
    if (!node.ips[family]) continue;
    const key = segmentKey(node, family, cfg);
    if (key) out.push({ family, key, name: segmentObjectName(family, key) });
  }
  return out;
}

const byDestination = (a: { destination: string }, b: { destination: string }) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0);

export interface SegmentPlan {
  name: string;
  /** Undefined: the segment has no route (no member with a pod CIDR and an IP of the family); no object. */
  spec: L2SegmentSpec | undefined;
  problem?: { reason: 'SegmentTooLarge'; message: string };
}

/**
 * The L2Segment for (family, key) from candidate members (extra nodes are harmless: only those whose key
 * for the family is this one count). A segment of one member has one route, its own: the object exists
 * as soon as it could matter, and the next member to join finds it.
 */
export function planSegment(family: Family, key: string, candidates: PlanNode[], cfg: FabricConfigSpec): SegmentPlan {
  const name = segmentObjectName(family, key);
  const routes: SegmentRoute[] = [];
  for (const m of candidates) {
    if (segmentKey(m, family, cfg) !== key) continue;
    const via = m.ips[family];
    if (!via) continue;
    for (const al of m.allocations) if (parseCidr(al.cidr)?.family === family) routes.push({ destination: al.cidr, via, node: m.name });
  }
  if (!routes.length) return { name, spec: undefined };
  routes.sort(byDestination);
  const reason = key.startsWith('label:') ? ('SegmentLabel' as const) : ('SameSubnet' as const);
  if (routes.length <= MAX_SEGMENT_ROUTES) return { name, spec: { key, family, reason, routes } };
  const omitted = routes.length - MAX_SEGMENT_ROUTES;
  return {
    name,
    spec: { key, family, reason, routes: routes.slice(0, MAX_SEGMENT_ROUTES), omitted },
    problem: { reason: 'SegmentTooLarge', message: `${routes.length} routes exceed ${MAX_SEGMENT_ROUTES}; ${omitted} pod CIDR(s) of this segment are reached through the ToR` },
  };
}

/**
 * The routes node `self` installs from its segments' objects: every route but its own, sorted by
 * destination. A destination listed twice (two segments of one family cannot both hold it; a stale
 * object can) keeps the first, so the kernel is never asked for two routes to one prefix. Routes come
 * back as given (the CLI passes them tagged with their segment).
 */
export function directRoutesFrom<R extends DirectRoute>(self: string, segments: ReadonlyArray<{ routes: readonly R[] }>): R[] {
  const out = new Map<string, R>();
  for (const s of segments) for (const r of s.routes) if (r.node !== self && !out.has(r.destination)) out.set(r.destination, r);
  return [...out.values()].sort(byDestination);
}
