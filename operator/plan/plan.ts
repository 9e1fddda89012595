/**
 * Each node's desired fabric (NodeFabric spec), from its allocations, the BGPPeers, FabricConfig and its
 * L2 neighbours. Pure: no I/O, no clock.
 */
import type { BGPPeerSpec } from '../api/bgppeer.js';
import { ASN_LABEL, ROUTER_ID_ANNOTATION, type FabricConfigSpec } from '../api/fabricconfig.js';
import type { Advertisement, DirectRoute, NodeFabricSpec, PlannedPeer } from '../api/nodefabric.js';
import { cidrContainsIP, formatCidr, normalizeIP, parseCidr, parseIP, type Family } from '../lib/ip.js';
import { selectorMatches } from '../api/selector.js';
import type { Allocation } from '../ipam/ipam.js';

export const MAX_DIRECT_ROUTES = 2048;

export interface PlanNode {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** InternalIP per family (canonical text). */
  ips: Partial<Record<Family, string>>;
  allocations: Allocation[];
  /** Uplink subnets the node's agent reported (NodeFabric status.l2Subnets). */
  l2Subnets: string[];
}

export interface PeerInfo {
  name: string;
  spec: BGPPeerSpec;
  creationTimestamp: string;
}

export interface PeerVerdict {
  /** Reasons the peer is unusable everywhere (it is left out of every plan). */
  invalid: Array<{ reason: string; message: string }>;
}

export interface PlanResult {
  spec: NodeFabricSpec;
  /** Peers this node would have had but that lost a duplicate-address conflict: peer name → winner. */
  conflicts: Array<{ peer: string; winner: string; address: string }>;
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

/** A stable 32-bit router ID from the node name (FNV-1a), never 0.0.0.0 or 255.255.255.255. */
export function hashRouterId(name: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  if (h === 0 || h === 0xffffffff) h = 0x0a000001;
  return [24, 16, 8, 0].map((s) => (h >>> s) & 0xff).join('.');
}

export function routerIdFor(node: PlanNode, cfg: FabricConfigSpec): string {
  const ann = node.annotations[ROUTER_ID_ANNOTATION];
  if (ann && parseIP(ann)?.family === 4) return normalizeIP(ann)!;
  if (cfg.routerIdSource === 'NodeIPv4' && node.ips[4]) return node.ips[4];
  return hashRouterId(node.name);
}

export function asnFor(node: PlanNode, cfg: FabricConfigSpec): number {
  const label = node.labels[ASN_LABEL];
  if (label && /^[0-9]{1,10}$/.test(label)) {
    const n = Number(label);
    if (n >= 1 && n <= 4294967295) return n;
  }
  return cfg.asn;
}

/**
 * Until a node's agent reports its uplink subnets, the subnets other agents reported that hold the
 * node's IP stand in for them: those nodes reach that IP on-link already (their kernel would ARP for it
 * directly), so their host routes to the new node can be planned at once instead of after the new
 * node's agent has reported. The most specific subnet wins per family. The agent's report replaces this.
 */
export function inferL2Subnets(ips: PlanNode['ips'], known: Iterable<string>): string[] {
  const best = new Map<Family, { cidr: string; len: number }>();
  for (const s of known) {
    const c = parseCidr(s);
    if (!c) continue;
    const ip = ips[c.family];
    const p = ip ? parseIP(ip) : null;
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

/** Problems that make a peer unusable for every node. */
export function validatePeer(
  peer: PeerInfo,
  ctx: { poolCidrs: Array<{ pool: string; cidr: string }>; secret: 'ok' | 'missing' | 'no-key' | 'none' },
): PeerVerdict {
  const invalid: PeerVerdict['invalid'] = [];
  const ip = parseIP(peer.spec.peerAddress);
  if (!ip) {
    invalid.push({ reason: 'InvalidAddress', message: `peerAddress ${peer.spec.peerAddress} is not an IP address` });
  } else {
    for (const p of ctx.poolCidrs) {
      const c = parseCidr(p.cidr);
      if (c && cidrContainsIP(c, ip.family, ip.value)) {
        invalid.push({
          reason: 'AddressInPodCIDR',
          message: `peerAddress ${peer.spec.peerAddress} lies inside pod IPPool ${p.pool} (${p.cidr}): a router cannot live in a pod range`,
        });
      }
    }
  }
  const ref = peer.spec.passwordSecretRef;
  if (ref && ctx.secret === 'missing') {
    invalid.push({ reason: 'SecretMissing', message: `password Secret ${ref.namespace}/${ref.name} does not exist; the session is not configured` });
  } else if (ref && ctx.secret === 'no-key') {
    invalid.push({ reason: 'SecretKeyMissing', message: `password Secret ${ref.namespace}/${ref.name} has no key "${ref.key}"; the session is not configured` });
  }
  return { invalid };
}

function olderFirst(a: PeerInfo, b: PeerInfo): number {
  return a.creationTimestamp.localeCompare(b.creationTimestamp) || a.name.localeCompare(b.name);
}

/**
 * The peers a node gets: every valid BGPPeer whose selector matches it; of peers with the same address
 * the oldest wins (then name), the others are reported as conflicts.
 */
export function selectPeers(node: PlanNode, validPeers: PeerInfo[]): { chosen: PeerInfo[]; conflicts: PlanResult['conflicts'] } {
  const byAddr = new Map<string, PeerInfo>();
  const conflicts: PlanResult['conflicts'] = [];
  for (const p of [...validPeers].sort(olderFirst)) {
    if (!selectorMatches(p.spec.nodeSelector, node.labels)) continue;
    const addr = normalizeIP(p.spec.peerAddress) ?? p.spec.peerAddress;
    const winner = byAddr.get(addr);
    if (winner) conflicts.push({ peer: p.name, winner: winner.name, address: addr });
    else byAddr.set(addr, p);
  }
  return { chosen: [...byAddr.values()], conflicts };
}

export interface PlanContext {
  config: FabricConfigSpec;
  validPeers: PeerInfo[];
  /** Candidate L2 neighbours (nodes sharing a segment key with this one; extra nodes are harmless). */
  neighbours: PlanNode[];
}

export function computePlan(node: PlanNode, ctx: PlanContext): PlanResult {
  const cfg = ctx.config;
  const problems: PlanResult['problems'] = [];
  const asn = asnFor(node, cfg);
  const { chosen, conflicts } = selectPeers(node, ctx.validPeers);

  const peers: PlannedPeer[] = chosen
    .map((p): PlannedPeer => {
      const t = p.spec.timers;
      const out: PlannedPeer = {
        address: normalizeIP(p.spec.peerAddress)!,
        name: p.name,
        peerASN: p.spec.peerASN,
        localASN: p.spec.localASN ?? asn,
        holdTime: t.holdTime,
        keepaliveInterval: t.keepaliveInterval,
        connectRetry: t.connectRetry,
      };
      if (p.spec.gracefulRestart?.enabled) out.gracefulRestart = { enabled: true, restartTime: p.spec.gracefulRestart.restartTime };
      if (p.spec.ebgpMultihop) out.ebgpMultihop = p.spec.ebgpMultihop;
      if (p.spec.passwordSecretRef) out.passwordSecretRef = { ...p.spec.passwordSecretRef };
      return out;
    })
    .sort((a, b) => a.address.localeCompare(b.address));

  const communities = [...new Set(chosen.flatMap((p) => p.spec.communities ?? []))].sort();
  const advertisements: Advertisement[] = [];
  for (const al of node.allocations) {
    const c = parseCidr(al.cidr);
    if (!c) continue;
    const nh = node.ips[c.family];
    if (!nh) {
      problems.push({ reason: 'NoNodeIP', message: `node has no IPv${c.family} InternalIP to advertise ${al.cidr} from` });
      continue;
    }
    advertisements.push({ prefix: al.cidr, nextHop: nh, ...(communities.length ? { communities } : {}) });
  }

  const directRoutes: DirectRoute[] = [];
  const direct = new Set<string>();
  for (const family of [4, 6] as const) {
    const key = segmentKey(node, family, cfg);
    if (!key) continue;
    for (const m of ctx.neighbours) {
      if (m.name === node.name || segmentKey(m, family, cfg) !== key) continue;
      const via = m.ips[family];
      if (!via) continue;
      for (const al of m.allocations) {
        if (parseCidr(al.cidr)?.family !== family) continue;
        const label = key.startsWith('label:');
        directRoutes.push({
          destination: al.cidr,
          via,
          node: m.name,
          reason: label ? 'SegmentLabel' : 'SameSubnet',
          detail: label ? `${cfg.hostRoutes.segmentLabel}=${key.slice(6)}` : `both on ${key.slice(7)}`,
        });
        direct.add(m.name);
      }
    }
  }
  directRoutes.sort((a, b) => a.destination.localeCompare(b.destination));
  if (directRoutes.length > MAX_DIRECT_ROUTES) {
    problems.push({
      reason: 'SegmentTooLarge',
      message: `${directRoutes.length} direct routes exceed ${MAX_DIRECT_ROUTES}; the rest go through the ToR`,
    });
    directRoutes.length = MAX_DIRECT_ROUTES;
  }
  const segment = segmentKey(node, 4, cfg) ?? segmentKey(node, 6, cfg);
  const spec: NodeFabricSpec = {
    podCIDRs: node.allocations.map((a) => a.cidr),
    allocations: node.allocations.map((a) => ({ cidr: a.cidr, pool: a.pool })),
    nodeIPs: [node.ips[4], node.ips[6]].filter((x): x is string => !!x),
    asn,
    routerId: routerIdFor(node, cfg),
    peers,
    advertisements,
    directRoutes,
    routing: {
      ...(segment ? { l2Segment: segment } : {}),
      directNodes: direct.size,
    },
  };
  return { spec, conflicts, problems };
}
