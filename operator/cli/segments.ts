/**
 * `kubectl fabric`: a node's host-gw plan as its agent sees it. The NodeFabric names its L2Segments
 * (spec.routing.segments); the planned routes are every route of those objects but the node's own
 * (plan/segment.ts directRoutesFrom, the agent's own function). Pure: works on a FabricSnapshot.
 */
import type { L2SegmentObj, NodeFabricObj } from '../api/kinds.js';
import type { L2SegmentSpec } from '../api/segment.js';
import { parseCidr, parseIP } from '../lib/ip.js';
import { directRoutesFrom, type DirectRoute } from '../plan/segment.js';
import type { FabricSnapshot } from './model.js';

/** A planned host route, with the L2Segment it comes from. */
export interface PlannedRoute extends DirectRoute {
  segment: string;
  reason: L2SegmentSpec['reason'] | null;
}

/** One L2Segment a NodeFabric names: the object's key, family and size, or not found. */
export interface SegmentView {
  name: string;
  found: boolean;
  key: string | null;
  family: 4 | 6 | null;
  reason: L2SegmentSpec['reason'] | null;
  /** Routes in the object (the node's own included); null when not found. */
  routes: number | null;
  /** Routes the controller left out beyond the object's limit (reached through the ToR). */
  omitted: number;
  /** Not found although the node has a pod CIDR and an IP of the segment's family: its own route belongs there. */
  expected: boolean;
}

const byNames = new WeakMap<FabricSnapshot, Map<string, L2SegmentObj>>();
function segmentIndex(s: FabricSnapshot): Map<string, L2SegmentObj> {
  let m = byNames.get(s);
  if (!m) byNames.set(s, (m = new Map(s.segments.map((o) => [o.metadata.name, o]))));
  return m;
}

/** An object read without validation (the CLI shows what is stored) may lack routes: none then, never a crash. */
const routesOf = (o: L2SegmentObj): L2SegmentSpec['routes'] => (Array.isArray(o.spec?.routes) ? o.spec.routes : []);

/** The L2Segment objects a NodeFabric names, in its order, those that exist. */
function namedSegments(nf: NodeFabricObj | undefined, s: FabricSnapshot): L2SegmentObj[] {
  const idx = segmentIndex(s);
  return (nf?.spec.routing?.segments ?? []).flatMap((n) => idx.get(n) ?? []);
}

/** The node's planned host-gw routes (what its agent installs), each with its segment. */
export function plannedRoutes(nf: NodeFabricObj | undefined, s: FabricSnapshot): PlannedRoute[] {
  if (!nf) return [];
  const tagged = namedSegments(nf, s).map((o) => ({ routes: routesOf(o).map((r) => ({ ...r, segment: o.metadata.name, reason: o.spec?.reason ?? null })) }));
  return directRoutesFrom(nf.metadata.name, tagged);
}

/** The family a segment object's name is for (segmentObjectName: `v4-...`, `v6-...`). */
function familyOfName(name: string): 4 | 6 | null {
  return name.startsWith('v4-') ? 4 : name.startsWith('v6-') ? 6 : null;
}

/** Every L2Segment the NodeFabric names, found or not. */
export function segmentViews(nf: NodeFabricObj | undefined, s: FabricSnapshot): SegmentView[] {
  const idx = segmentIndex(s);
  const has = (family: 4 | 6) =>
    (nf?.spec.podCIDRs ?? []).some((c) => parseCidr(c)?.family === family) && (nf?.spec.nodeIPs ?? []).some((ip) => parseIP(ip)?.family === family);
  return (nf?.spec.routing?.segments ?? []).map((name) => {
    const o = idx.get(name);
    if (!o) {
      const family = familyOfName(name);
      return { name, found: false, key: null, family, reason: null, routes: null, omitted: 0, expected: family !== null && has(family) };
    }
    const family = o.spec?.family === 4 || o.spec?.family === 6 ? o.spec.family : familyOfName(name);
    return { name, found: true, key: o.spec?.key ?? null, family, reason: o.spec?.reason ?? null, routes: routesOf(o).length, omitted: o.spec?.omitted ?? 0, expected: false };
  });
}
