/**
 * Each node's desired fabric (NodeFabric spec), from its allocations and FabricConfig; its host-gw
 * routes are its L2 segments' (segment.ts), named here, not listed. Pure: no I/O, no clock. The node's BGP sessions are not in the spec: each agent derives
 * them from the BGPPeers it watches (peers.ts, the same functions the controller reports with), so a
 * BGPPeer change writes no NodeFabric. The plan still carries them (PlanResult.peers) for the
 * controller's view: which peers select which node, and duplicate-address conflicts.
 */
import type { FabricConfigSpec } from '../api/fabricconfig.js';
import type { Advertisement, NodeFabricSpec, PlannedPeer } from '../api/nodefabric.js';
import { cidrContainsIP, formatCidr, normalizeIP, parseCidr, parseIP, type Family } from '../lib/ip.js';
import type { Allocation } from '../ipam/ipam.js';
import { nodeSessions, type PeerConflict, type PeerInfo, type PeerNode } from './peers.js';
import { segmentsOf } from './segment.js';


export interface PlanNode extends PeerNode {
  allocations: Allocation[];
  /** Uplink subnets the node's agent reported (NodeFabric status.l2Subnets). */
  l2Subnets: string[];
}

export interface PlanResult {
  spec: NodeFabricSpec;
  /** The node's sessions (what its agent derives itself; not part of the spec). */
  peers: PlannedPeer[];
  /** Peers this node would have had but that lost a duplicate-address conflict: peer name → winner. */
  conflicts: PeerConflict[];
  problems: Array<{ reason: string; message: string }>;
}

/** Node IPs per family from Node.status.addresses (InternalIP first, then ExternalIP). */
export function nodeIPs(addresses: Array<{ type: string; address: string }> | undefined): Partial<Record<Family, string>> {
  const out: Partial<Record<Family, string>> = {};
  for (const type of ['InternalIP', 'ExternalIP']) {
    for (const a of addresses ?? []) {
      if (a.type !== type) continue;
      const p = parseIP(a.address);
      if (p && !out[p.family]) out[p.family] = normalizeIP(a.address)!;
    }
  }
  return out;
}


/**
 * Until a node's agent reports its uplink subnets, the subnets other agents reported that hold the
 * node's IP stand in for them: those nodes reach that IP on-link already (their kernel would ARP for it
 * directly), so their host routes to the new node can be planned at once instead of after the new
 * node's agent has reported. The most specific subnet wins per family. The agent's report replaces this.
 */
export function inferL2Subnets(ips: PlanNode['ips'], known: Iterable<string>): string[] {
  const best = new Map<Family, { cidr: string; len: number }>();
  // Parsed once per call, not once per subnet: with 5,000 nodes and 125 rack subnets this loop was the
  // controller's largest CPU cost (its profile in bench scale).
  const parsed = { 4: ips[4] ? parseIP(ips[4]) : null, 6: ips[6] ? parseIP(ips[6]) : null };
  for (const s of known) {
    const c = parseCidr(s);
    if (!c) continue;
    const p = parsed[c.family];
    if (!p || !cidrContainsIP(c, p.family, p.value)) continue;
    const prev = best.get(c.family);
    if (!prev || c.prefixLength > prev.len) best.set(c.family, { cidr: formatCidr(c), len: c.prefixLength });
  }
  return [4, 6].flatMap((f) => { const b = best.get(f as Family); return b ? [b.cidr] : []; });
}

/**
 * Per-family L2 segment key: the segment label when either the node carries it, otherwise the detected
 * uplink subnet. null: no direct routes in that family.
 */
export function segmentKey(node: PlanNode, family: Family, cfg: FabricConfigSpec): string | null {
  if (!cfg.hostRoutes.enabled) return null;
  const label = node.labels[cfg.hostRoutes.segmentLabel];
  if (label !== undefined) return `label:${label}`;
  if (!cfg.hostRoutes.detectL2) return null;
  const ip = node.ips[family];
  if (!ip) return null;
  for (const s of node.l2Subnets) {
    const c = parseCidr(s);
    const p = parseIP(ip);
    if (c && p && c.family === family && cidrContainsIP(c, p.family, p.value)) return `subnet:${formatCidr(c)}`;
  }
  return null;
}

export interface PlanContext {
  config: FabricConfigSpec;
  validPeers: PeerInfo[];
}

export function computePlan(node: PlanNode, ctx: PlanContext): PlanResult {
  const cfg = ctx.config;
  const problems: PlanResult['problems'] = [];
  // Sessions and their communities are the agent's (peers.ts); the spec's advertisements carry none.
  const { asn, routerId, peers, conflicts } = nodeSessions(node, cfg, ctx.validPeers);
  const advertisements: Advertisement[] = [];
  for (const al of node.allocations) {
    const c = parseCidr(al.cidr);
    if (!c) continue;
    const nh = node.ips[c.family];
    if (!nh) {
      problems.push({ reason: 'NoNodeIP', message: `node has no IPv${c.family} InternalIP to advertise ${al.cidr} from` });
      continue;
    }
    advertisements.push({ prefix: al.cidr, nextHop: nh });
  }

  const segments = segmentsOf(node, cfg);
  const segment = segments[0]?.key;
  const spec: NodeFabricSpec = {
    podCIDRs: node.allocations.map((a) => a.cidr),
    allocations: node.allocations.map((a) => ({ cidr: a.cidr, pool: a.pool })),
    nodeIPs: [node.ips[4], node.ips[6]].filter((x): x is string => !!x),
    asn,
    routerId,
    advertisements,
    routing: {
      ...(segment ? { l2Segment: segment } : {}),
      ...(segments.length ? { segments: segments.map((x) => x.name) } : {}),
    },
  };
  return { spec, peers, conflicts, problems };
}
