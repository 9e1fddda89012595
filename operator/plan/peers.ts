/**
 * A node's BGP sessions, from its own labels/annotations/addresses, FabricConfig and the BGPPeers (issue
 * #15). Pure: no I/O, no clock. One rule, one place: the agent computes its sessions with planNodePeers
 * from what it watches (its Node, FabricConfig, BGPPeers, IPPools, its peers' password Secrets), and the
 * controller uses the same validatePeer (BGPPeer status) and nodeSessions (nodesSelected, conflicts) for
 * what it reports. The sessions are not written into any NodeFabric spec: one BGPPeer change would
 * otherwise rewrite every selected node's record.
 */
import type { BGPPeerSpec } from '../api/bgppeer.js';
import { ASN_LABEL, ROUTER_ID_ANNOTATION, type FabricConfigSpec } from '../api/fabricconfig.js';
import type { PlannedPeer } from '../api/nodefabric.js';
import { selectorMatches } from '../api/selector.js';
import { cidrContainsIP, normalizeIP, parseCidr, parseIP, type Family } from '../lib/ip.js';

/** What the session plan reads of a node. */
export interface PeerNode {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** InternalIP per family (canonical text). */
  ips: Partial<Record<Family, string>>;
}

export interface PeerInfo {
  name: string;
  spec: BGPPeerSpec;
  creationTimestamp: string;
}

export interface PeerVerdict {
  /** Reasons the peer is unusable everywhere (it is left out of every node's sessions). */
  invalid: Array<{ reason: string; message: string }>;
}

/** A password Secret as its watcher (agent) or a GET (controller) found it; 'none': no reference. */
export type SecretState = 'ok' | 'missing' | 'no-key' | 'none';
export type SecretRef = NonNullable<BGPPeerSpec['passwordSecretRef']>;

export interface PeerConflict {
  peer: string;
  winner: string;
  address: string;
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

export function routerIdFor(node: PeerNode, cfg: FabricConfigSpec): string {
  const ann = node.annotations[ROUTER_ID_ANNOTATION];
  if (ann && parseIP(ann)?.family === 4) return normalizeIP(ann)!;
  if (cfg.routerIdSource === 'NodeIPv4' && node.ips[4]) return node.ips[4];
  return hashRouterId(node.name);
}

export function asnFor(node: PeerNode, cfg: FabricConfigSpec): number {
  const label = node.labels[ASN_LABEL];
  if (label && /^[0-9]{1,10}$/.test(label)) {
    const n = Number(label);
    if (n >= 1 && n <= 4294967295) return n;
  }
  return cfg.asn;
}

/** Problems that make a peer unusable for every node. */
export function validatePeer(peer: PeerInfo, ctx: { poolCidrs: Array<{ pool: string; cidr: string }>; secret: SecretState }): PeerVerdict {
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
export function selectPeers(node: Pick<PeerNode, 'labels'>, validPeers: PeerInfo[]): { chosen: PeerInfo[]; conflicts: PeerConflict[] } {
  const byAddr = new Map<string, PeerInfo>();
  const conflicts: PeerConflict[] = [];
  for (const p of [...validPeers].sort(olderFirst)) {
    if (!selectorMatches(p.spec.nodeSelector, node.labels)) continue;
    const addr = normalizeIP(p.spec.peerAddress) ?? p.spec.peerAddress;
    const winner = byAddr.get(addr);
    if (winner) conflicts.push({ peer: p.name, winner: winner.name, address: addr });
    else byAddr.set(addr, p);
  }
  return { chosen: [...byAddr.values()], conflicts };
}

/** A node's sessions and what goes with them. */
export interface NodeSessions {
  asn: number;
  routerId: string;
  /** Sorted by address. */
  peers: PlannedPeer[];
  /** The union of the chosen peers' communities, sorted: attached to the node's pod CIDR routes. */
  communities: string[];
  conflicts: PeerConflict[];
}

/** The sessions of a node, from the peers already judged valid. */
export function nodeSessions(node: PeerNode, config: FabricConfigSpec, validPeers: PeerInfo[]): NodeSessions {
  const asn = asnFor(node, config);
  const { chosen, conflicts } = selectPeers(node, validPeers);
  const peers = chosen
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
  return { asn, routerId: routerIdFor(node, config), peers, communities, conflicts };
}

/** The password Secrets of the peers selecting this node (valid or not): the ones whose state matters here. */
export function secretRefsFor(node: Pick<PeerNode, 'labels'>, peers: PeerInfo[]): SecretRef[] {
  return peers.flatMap((p) => (p.spec.passwordSecretRef && selectorMatches(p.spec.nodeSelector, node.labels) ? [p.spec.passwordSecretRef] : []));
}

export interface NodePeersInput {
  config: FabricConfigSpec;
  /** Every BGPPeer that decodes. */
  peers: PeerInfo[];
  poolCidrs: Array<{ pool: string; cidr: string }>;
  /** The state of a peer's password Secret. */
  secret: (ref: SecretRef) => SecretState;
}

export interface NodePeers extends NodeSessions {
  /** Peers selecting this node that are unusable (the controller reports them on the BGPPeer). */
  invalid: Array<{ peer: string; reasons: PeerVerdict['invalid'] }>;
}

/** The agent's whole rule: judge the peers selecting the node, then choose its sessions. */
export function planNodePeers(node: PeerNode, input: NodePeersInput): NodePeers {
  const valid: PeerInfo[] = [];
  const invalid: NodePeers['invalid'] = [];
  for (const p of input.peers) {
    if (!selectorMatches(p.spec.nodeSelector, node.labels)) continue;
    const ref = p.spec.passwordSecretRef;
    const v = validatePeer(p, { poolCidrs: input.poolCidrs, secret: ref ? input.secret(ref) : 'none' });
    if (v.invalid.length) invalid.push({ peer: p.name, reasons: v.invalid });
    else valid.push(p);
  }
  return { ...nodeSessions(node, input.config, valid), invalid };
}
