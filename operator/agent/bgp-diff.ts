/**
 * Desired BGP state vs what gobgpd reports → the smallest set of changes. Pure, no I/O.
 *
 * - A peer whose settings are unchanged produces no action, so its session is never touched.
 *   Comparison is on normalised values: addresses in canonical form (v6 compressed, lowercase), a local
 *   ASN equal to the global one = no local ASN, a graceful-restart time of 0 = the hold time (gobgpd's
 *   default), multihop 0 = off, empty password/description = none.
 * - Advertisements are keyed by prefix (canonical CIDR): gobgpd keeps one local path per prefix and
 *   AddPath of a known prefix replaces it (implicit withdraw, verified against FRR), so a changed next
 *   hop or community set is just an add, never delete + add (which would withdraw the route for a
 *   moment). Communities compare as a set. If `desired` lists a prefix twice, the last entry wins.
 * - A running BGP whose ASN, router ID, listen port or (when desired names them) listen addresses
 *   differ cannot be changed in place: `restartNeeded` says why, and the caller does StopBgp + StartBgp
 *   and re-adds every peer and advertisement (returned in addPeers/addAdvertisements).
 * Output lists are sorted (peers by address, advertisements by prefix) so results are deterministic.
 */
import { normalizeCidr, normalizeIP } from '../lib/ip.js';
import { normalizeCommunityList, type Advertisement, type BgpGlobalConfig, type PeerConfig } from '../gobgp/speaker.js';

export { normalizeCommunityList };

export interface BgpState {
  global: BgpGlobalConfig | null;
  peers: PeerConfig[];
  advertisements: Advertisement[];
}

export interface BgpDiff {
  startBgp?: BgpGlobalConfig;
  /** Set when a running BGP's ASN, router ID or listen settings differ: StopBgp + StartBgp + everything. */
  restartNeeded?: string;
  addPeers: PeerConfig[];
  updatePeers: PeerConfig[];
  deletePeers: string[];
  addAdvertisements: Advertisement[];
  deleteAdvertisements: Advertisement[];
}

const ip = (a: string) => normalizeIP(a) ?? a.trim().toLowerCase();
const cidr = (p: string) => normalizeCidr(p) ?? p.trim().toLowerCase();

export function normalizePeer(p: PeerConfig, globalAsn: number): PeerConfig {
  const gr = p.gracefulRestart?.enabled ? { enabled: true, restartTime: p.gracefulRestart.restartTime || p.holdTime } : undefined;
  return {
    address: ip(p.address),
    peerAsn: p.peerAsn,
    ...(p.localAsn && p.localAsn !== globalAsn ? { localAsn: p.localAsn } : {}),
    ...(p.password ? { password: p.password } : {}),
    holdTime: p.holdTime,
    keepaliveInterval: p.keepaliveInterval,
    connectRetry: p.connectRetry,
    ...(gr ? { gracefulRestart: gr } : {}),
    ...(p.ebgpMultihop ? { ebgpMultihop: p.ebgpMultihop } : {}),
    ...(p.description ? { description: p.description } : {}),
  };
}

export function normalizeAdvertisement(a: Advertisement): Advertisement {
  return { prefix: cidr(a.prefix), nextHop: ip(a.nextHop), communities: normalizeCommunityList(a.communities) };
}

function peerKey(p: PeerConfig): string {
  return JSON.stringify([
    p.peerAsn,
    p.localAsn ?? 0,
    p.password ?? '',
    p.holdTime,
    p.keepaliveInterval,
    p.connectRetry,
    p.gracefulRestart?.restartTime ?? 0,
    p.ebgpMultihop ?? 0,
    p.description ?? '',
  ]);
}

const advKey = (a: Advertisement) => JSON.stringify([a.nextHop, a.communities]);
const byAddress = (a: PeerConfig, b: PeerConfig) => a.address.localeCompare(b.address);
const byPrefix = (a: Advertisement, b: Advertisement) => a.prefix.localeCompare(b.prefix);

function globalChanges(o: BgpGlobalConfig, g: BgpGlobalConfig): string[] {
  const why: string[] = [];
  if (o.asn !== g.asn) why.push(`ASN ${o.asn} → ${g.asn}`);
  if (ip(o.routerId) !== ip(g.routerId)) why.push(`router ID ${o.routerId} → ${g.routerId}`);
  if (o.listenPort !== g.listenPort) why.push(`listen port ${o.listenPort} → ${g.listenPort}`);
  if (g.listenAddresses?.length) {
    const a = [...new Set((o.listenAddresses ?? []).map(ip))].sort().join(',');
    const b = [...new Set(g.listenAddresses.map(ip))].sort().join(',');
    if (a !== b) why.push(`listen addresses ${a || '(default)'} → ${b}`);
  }
  return why;
}

export function diffBgp(desired: BgpState & { global: BgpGlobalConfig }, observed: BgpState): BgpDiff {
  const out: BgpDiff = { addPeers: [], updatePeers: [], deletePeers: [], addAdvertisements: [], deleteAdvertisements: [] };
  const g = desired.global;
  const wantPeers = new Map<string, PeerConfig>();
  for (const p of desired.peers) {
    const n = normalizePeer(p, g.asn);
    wantPeers.set(n.address, n);
  }
  const wantAdv = new Map<string, Advertisement>();
  for (const a of desired.advertisements) {
    const n = normalizeAdvertisement(a);
    wantAdv.set(n.prefix, n);
  }
  const allPeers = () => [...wantPeers.values()].sort(byAddress);
  const allAdv = () => [...wantAdv.values()].sort(byPrefix);

  if (!observed.global) {
    // Unconfigured gobgpd (fresh or restarted): it has no peers and no paths.
    return { ...out, startBgp: g, addPeers: allPeers(), addAdvertisements: allAdv() };
  }
  const why = globalChanges(observed.global, g);
  if (why.length) return { ...out, restartNeeded: why.join(', '), addPeers: allPeers(), addAdvertisements: allAdv() };

  const havePeers = new Map<string, PeerConfig>();
  for (const p of observed.peers) {
    const n = normalizePeer(p, observed.global.asn);
    havePeers.set(n.address, n);
  }
  for (const p of allPeers()) {
    const cur = havePeers.get(p.address);
    if (!cur) out.addPeers.push(p);
    else if (peerKey(cur) !== peerKey(p)) out.updatePeers.push(p);
  }
  out.deletePeers = [...havePeers.keys()].filter((a) => !wantPeers.has(a)).sort();

  const haveAdv = new Map<string, Advertisement>();
  for (const a of observed.advertisements) {
    const n = normalizeAdvertisement(a);
    haveAdv.set(n.prefix, n);
  }
  for (const a of allAdv()) {
    const cur = haveAdv.get(a.prefix);
    if (!cur || advKey(cur) !== advKey(a)) out.addAdvertisements.push(a);
  }
  out.deleteAdvertisements = [...haveAdv.values()].filter((a) => !wantAdv.has(a.prefix)).sort(byPrefix);
  return out;
}
