/**
 * Pure conversions between the Router types and GoBGP v3 API messages (proto-loader JSON form:
 * snake_case fields, enums as strings, Any values as objects with '@type'). No I/O here.
 *
 * Facts these encode (measured against gobgpd 3.10 + FRR 8.4, see test/integration/gobgp.test.ts):
 * - NLRI and attributes are Any-packed. A v4 path carries NextHopAttribute; a v6 path carries
 *   MpReachNLRIAttribute {family, next_hops: [nh], nlris: [nlri]} (gobgpd refuses an MP_REACH without
 *   nlris: "invalid mp reach attribute"; it would also turn a NextHopAttribute on a v6 path into
 *   MP_REACH itself). ListPath returns v6 paths in the MP_REACH form. Local paths keep the next hop we
 *   set when sent to eBGP peers (gobgpd only rewrites it when it is unspecified: 0.0.0.0 / ::).
 * - Locally originated paths in ListPath have neighbor_ip "<nil>", source_asn 0, is_from_external false.
 * - ListPeer returns the MD5 password in clear text in conf.auth_password (state.auth_password is empty).
 * - timers.state.uptime is a Timestamp: the moment the session last became Established (null if never).
 */
import { normalizeCidr, normalizeIP, parseCidr, parseIP } from '../lib/ip.js';
import { normalizeCommunityList, type Advertisement, type PeerConfig, type PeerStatus, type SessionState } from './speaker.js';

export const typeUrl = (name: string) => `type.googleapis.com/apipb.${name}`;

export const FAMILY = {
  4: { afi: 'AFI_IP', safi: 'SAFI_UNICAST' },
  6: { afi: 'AFI_IP6', safi: 'SAFI_UNICAST' },
} as const;

const STATES: Record<string, SessionState> = {
  UNKNOWN: 'Unknown',
  IDLE: 'Idle',
  CONNECT: 'Connect',
  ACTIVE: 'Active',
  OPENSENT: 'OpenSent',
  OPENCONFIRM: 'OpenConfirm',
  ESTABLISHED: 'Established',
};

/** gobgpd's default graceful-restart deferral time; sent explicitly so UpdatePeer sees no change. */
export const GR_DEFERRAL_DEFAULT = 360;

// ---------------------------------------------------------------- communities

/** "65000:100" → 0xFDE80064. Throws on anything else (no names, no large/extended communities). */
export function communityToU32(c: string): number {
  const m = /^(\d{1,10}):(\d{1,10})$/.exec(c.trim());
  const hi = Number(m?.[1]);
  const lo = Number(m?.[2]);
  if (!m || hi > 0xffff || lo > 0xffff) throw new Error(`invalid BGP community "${c}" (want ASN:VALUE, both 0-65535)`);
  return hi * 0x10000 + lo;
}

export function u32ToCommunity(n: number): string {
  return `${Math.floor(n / 0x10000)}:${n % 0x10000}`;
}

/** Sorted, deduplicated, canonical ("065000:01" → "65000:1"); throws on an invalid community. */
export function normalizeCommunities(cs: readonly string[]): string[] {
  for (const c of cs) communityToU32(c);
  return normalizeCommunityList(cs);
}

// ---------------------------------------------------------------- paths

export interface ApiPath {
  family: { afi: string; safi: string };
  nlri: Record<string, unknown>;
  pattrs: Array<Record<string, unknown>>;
  is_withdraw?: boolean;
}

/** The API path for an advertisement; validates prefix, next hop (same family) and communities. */
export function pathOf(a: Advertisement, withdraw = false): ApiPath {
  const c = parseCidr(a.prefix);
  const canonical = normalizeCidr(a.prefix);
  if (!c || !canonical) throw new Error(`invalid prefix "${a.prefix}" (want a CIDR with its host bits zero)`);
  const [addr, len] = canonical.split('/') as [string, string];
  const nh = parseIP(a.nextHop);
  if (!nh) throw new Error(`invalid next hop "${a.nextHop}" for ${a.prefix}`);
  if (nh.family !== c.family) throw new Error(`next hop ${a.nextHop} is not IPv${c.family} like ${a.prefix} (mixed families are not supported)`);
  const nextHop = normalizeIP(a.nextHop)!;
  const nlri = { '@type': typeUrl('IPAddressPrefix'), prefix: addr, prefix_len: Number(len) };
  const pattrs: Array<Record<string, unknown>> = [{ '@type': typeUrl('OriginAttribute'), origin: 0 }];
  if (c.family === 4) pattrs.push({ '@type': typeUrl('NextHopAttribute'), next_hop: nextHop });
  else pattrs.push({ '@type': typeUrl('MpReachNLRIAttribute'), family: FAMILY[6], next_hops: [nextHop], nlris: [nlri] });
  const communities = normalizeCommunities(a.communities ?? []);
  if (communities.length) pattrs.push({ '@type': typeUrl('CommunitiesAttribute'), communities: communities.map(communityToU32) });
  return { family: FAMILY[c.family], nlri, pattrs, ...(withdraw ? { is_withdraw: true } : {}) };
}

export interface RawPath {
  nlri?: { prefix?: string; prefix_len?: number };
  pattrs?: Array<Record<string, unknown>>;
  neighbor_ip?: string;
  source_asn?: number;
  is_from_external?: boolean;
  is_withdraw?: boolean;
}

/** A path gobgpd originated itself (added through the API), as opposed to one learned from a peer. */
export function isLocalPath(p: RawPath): boolean {
  const n = p.neighbor_ip ?? '';
  return !p.is_from_external && !p.is_withdraw && (n === '' || n === '<nil>' || n === '0.0.0.0' || n === '::');
}

export function advOf(p: RawPath): Advertisement | null {
  if (!p.nlri?.prefix || p.nlri.prefix_len === undefined) return null;
  const prefix = normalizeCidr(`${p.nlri.prefix}/${p.nlri.prefix_len}`);
  if (!prefix) return null;
  let nextHop = '';
  let communities: string[] = [];
  for (const a of p.pattrs ?? []) {
    const t = String(a['@type'] ?? '');
    if (t.endsWith('.NextHopAttribute')) nextHop = String(a.next_hop ?? '');
    else if (t.endsWith('.MpReachNLRIAttribute')) nextHop = String((a.next_hops as string[] | undefined)?.[0] ?? '');
    else if (t.endsWith('.CommunitiesAttribute')) communities = ((a.communities as number[] | undefined) ?? []).map(u32ToCommunity);
  }
  return { prefix, nextHop: normalizeIP(nextHop) ?? nextHop, communities: normalizeCommunities(communities) };
}

// ---------------------------------------------------------------- peers

/**
 * The AddPeer/UpdatePeer message. It spells out every value gobgpd would otherwise default (local ASN,
 * peer type, transport local address, GR deferral time) because UpdatePeer compares the request with the
 * *defaulted* stored config: anything left at zero counts as a change and makes gobgpd delete and re-add
 * the peer (a session reset) even when only a timer changed.
 */
export function peerMessage(p: PeerConfig, globalAsn: number): Record<string, unknown> {
  const addr = parseIP(p.address);
  if (!addr) throw new Error(`invalid peer address "${p.address}"`);
  const localAsn = p.localAsn || globalAsn;
  if (!localAsn) throw new Error('peer config needs the local ASN: start BGP first');
  const gr = p.gracefulRestart?.enabled ? p.gracefulRestart : undefined;
  const afiSafi: Record<string, unknown> = {
    config: { family: FAMILY[addr.family], enabled: true },
    mp_graceful_restart: { config: { enabled: !!gr } },
  };
  return {
    conf: {
      neighbor_address: normalizeIP(p.address),
      peer_asn: p.peerAsn,
      local_asn: localAsn,
      type: p.peerAsn === localAsn ? 'INTERNAL' : 'EXTERNAL',
      auth_password: p.password ?? '',
      description: p.description ?? '',
    },
    timers: { config: { connect_retry: p.connectRetry, hold_time: p.holdTime, keepalive_interval: p.keepaliveInterval } },
    transport: { local_address: addr.family === 4 ? '0.0.0.0' : '::' },
    afi_safis: [afiSafi],
    graceful_restart: gr
      ? // notification_enabled: RFC 8538's N bit. gobgpd's own shutdown (SIGTERM, as the kubelet sends on
        // a rolling update) closes every session with a Cease NOTIFICATION; with the N bit negotiated the
        // router treats that as a graceful restart and keeps the node's routes, as it does for a crash.
        { enabled: true, restart_time: gr.restartTime || p.holdTime, deferral_time: GR_DEFERRAL_DEFAULT, notification_enabled: true }
      : { enabled: false },
    ebgp_multihop: p.ebgpMultihop ? { enabled: true, multihop_ttl: p.ebgpMultihop } : { enabled: false, multihop_ttl: 0 },
  };
}

export interface RawMessageCounters {
  notification?: number;
  open?: number;
  update?: number;
  keepalive?: number;
  total?: number;
}

export interface RawPeer {
  conf?: { neighbor_address?: string; peer_asn?: number; local_asn?: number; auth_password?: string; description?: string; admin_down?: boolean };
  state?: {
    neighbor_address?: string;
    peer_asn?: number;
    local_asn?: number;
    session_state?: string;
    admin_state?: string;
    auth_password?: string;
    messages?: { received?: RawMessageCounters; sent?: RawMessageCounters };
  };
  timers?: {
    config?: { connect_retry?: number; hold_time?: number; keepalive_interval?: number };
    state?: { negotiated_hold_time?: number; uptime?: { seconds?: number; nanos?: number } | null; downtime?: { seconds?: number } | null };
  };
  afi_safis?: Array<{ config?: { family?: { afi?: string } }; state?: { advertised?: number; received?: number; accepted?: number } }>;
  graceful_restart?: { enabled?: boolean; restart_time?: number };
  ebgp_multihop?: { enabled?: boolean; multihop_ttl?: number };
}

export interface NotificationCounts {
  received: number;
  sent: number;
}

export function notificationCounts(r: RawPeer): NotificationCounts {
  return { received: r.state?.messages?.received?.notification ?? 0, sent: r.state?.messages?.sent?.notification ?? 0 };
}

/**
 * What gobgpd tells about a session that is down. gobgpd's API has no "last error": the FSM's reason
 * (hold timer expired, NOTIFICATION code) only goes to its log. What it does expose: admin state, and
 * NOTIFICATION counters (cumulative for the peer's lifetime). `sinceUp` are the counters when the session
 * was last seen Established, so an old Cease does not taint a later, different failure.
 * A TCP MD5 mismatch shows nothing at all here: the kernel drops the segments, the session stays
 * Active/Connect with zero OPENs exchanged.
 */
export function peerError(r: RawPeer, sinceUp: NotificationCounts = { received: 0, sent: 0 }): string | undefined {
  const admin = r.state?.admin_state;
  if (admin === 'DOWN' || r.conf?.admin_down) return 'administratively down (DisablePeer/ShutdownPeer)';
  if (admin === 'PFX_CT') return 'prefix limit exceeded: gobgpd shut the session down';
  if (r.state?.session_state === 'ESTABLISHED') return undefined;
  const n = notificationCounts(r);
  const recv = n.received - Math.min(sinceUp.received, n.received);
  const sent = n.sent - Math.min(sinceUp.sent, n.sent);
  if (sent > 0) {
    return `gobgpd sent ${sent} NOTIFICATION(s) since the session was last seen up: it rejected the peer's OPEN or closed the session (if this keeps growing: peer ASN, router ID or hold time mismatch; gobgpd's log has the code)`;
  }
  if (recv > 0) {
    return `the peer sent ${recv} NOTIFICATION(s) since the session was last seen up: it closed the session or rejected our OPEN (if this keeps growing, check its neighbour config for this node's address and ASN)`;
  }
  return undefined;
}

export function peerFromRaw(
  r: RawPeer,
  globalAsn: number,
  sinceUp?: NotificationCounts,
): { config: PeerConfig; status: PeerStatus } {
  const address = normalizeIP(r.conf?.neighbor_address || r.state?.neighbor_address || '') ?? '';
  const localAsn = r.conf?.local_asn || r.state?.local_asn || 0;
  const password = r.conf?.auth_password || r.state?.auth_password || '';
  const config: PeerConfig = {
    address,
    peerAsn: r.conf?.peer_asn || r.state?.peer_asn || 0,
    ...(localAsn && globalAsn && localAsn !== globalAsn ? { localAsn } : {}),
    ...(password ? { password } : {}),
    holdTime: r.timers?.config?.hold_time ?? 0,
    keepaliveInterval: r.timers?.config?.keepalive_interval ?? 0,
    connectRetry: r.timers?.config?.connect_retry ?? 0,
    ...(r.graceful_restart?.enabled ? { gracefulRestart: { enabled: true, restartTime: r.graceful_restart.restart_time ?? 0 } } : {}),
    ...(r.ebgp_multihop?.enabled ? { ebgpMultihop: r.ebgp_multihop.multihop_ttl ?? 0 } : {}),
    ...(r.conf?.description ? { description: r.conf.description } : {}),
  };
  const state = STATES[r.state?.session_state ?? 'UNKNOWN'] ?? 'Unknown';
  const up = r.timers?.state?.uptime;
  const lastError = peerError(r, sinceUp);
  const status: PeerStatus = {
    address,
    state,
    ...(state === 'Established' && up?.seconds ? { establishedAt: new Date(up.seconds * 1000 + Math.floor((up.nanos ?? 0) / 1e6)) } : {}),
    prefixesSent: (r.afi_safis ?? []).reduce((n, a) => n + (a.state?.advertised ?? 0), 0),
    prefixesReceived: (r.afi_safis ?? []).reduce((n, a) => n + (a.state?.received ?? 0), 0),
    ...(lastError ? { lastError } : {}),
  };
  return { config, status };
}

/** Settings UpdatePeer applies in place; everything else needs DeletePeer + AddPeer (a session reset). */
export function onlyTimersDiffer(a: PeerConfig, b: PeerConfig, globalAsn: number): boolean {
  const key = (p: PeerConfig) =>
    JSON.stringify([
      normalizeIP(p.address),
      p.peerAsn,
      p.localAsn || globalAsn,
      p.password ?? '',
      p.gracefulRestart?.enabled ? p.gracefulRestart.restartTime || p.holdTime : 0,
      p.ebgpMultihop ?? 0,
      p.description ?? '',
    ]);
  return key(a) === key(b);
}
