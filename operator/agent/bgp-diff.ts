/**
 * Desired BGP state vs what gobgpd reports → the smallest set of changes. Pure.
 * A peer whose settings are unchanged produces no action, so its session never resets.
 */
import { normalizeCidr, normalizeIP } from '../lib/ip.js';
import type { Advertisement, BgpGlobalConfig, PeerConfig } from './router.js';

export interface BgpState {
  global: BgpGlobalConfig | null;
  peers: PeerConfig[];
  advertisements: Advertisement[];
}

export interface BgpDiff {
  startBgp?: BgpGlobalConfig;
  /** Set when a running BGP's ASN, router ID or listen port differs: StopBgp + StartBgp + everything. */
  restartNeeded?: string;
  addPeers: PeerConfig[];
  updatePeers: PeerConfig[];
  deletePeers: string[];
  addAdvertisements: Advertisement[];
  deleteAdvertisements: Advertisement[];
}

const ip = (a: string) => normalizeIP(a) ?? a;

function peerKey(p: PeerConfig): string {
  return JSON.stringify([
    p.peerAsn,
    p.localAsn ?? 0,
    p.password ?? '',
    p.holdTime,
    p.keepaliveInterval,
    p.connectRetry,
    p.gracefulRestart?.enabled ? p.gracefulRestart.restartTime : 0,
    p.ebgpMultihop ?? 0,
    p.description ?? '',
  ]);
}

function advKey(a: Advertisement): string {
  return JSON.stringify([normalizeCidr(a.prefix) ?? a.prefix, ip(a.nextHop), [...a.communities].sort()]);
}

export function diffBgp(desired: BgpState & { global: BgpGlobalConfig }, observed: BgpState): BgpDiff {
  const out: BgpDiff = { addPeers: [], updatePeers: [], deletePeers: [], addAdvertisements: [], deleteAdvertisements: [] };
  const g = desired.global;
  if (!observed.global) {
    out.startBgp = g;
  } else {
    const o = observed.global;
    const why: string[] = [];
    if (o.asn !== g.asn) why.push(`ASN ${o.asn} → ${g.asn}`);
    if (o.routerId !== g.routerId) why.push(`router ID ${o.routerId} → ${g.routerId}`);
    if (o.listenPort !== g.listenPort) why.push(`listen port ${o.listenPort} → ${g.listenPort}`);
    if (why.length) {
      out.restartNeeded = why.join(', ');
      return { ...out, addPeers: desired.peers, addAdvertisements: desired.advertisements };
    }
  }
  const have = observed.global ? observed.peers : [];
  const haveByAddr = new Map(have.map((p) => [ip(p.address), p]));
  const want = new Map<string, PeerConfig>();
  for (const p of desired.peers) want.set(ip(p.address), { ...p, address: ip(p.address) });
  for (const [addr, p] of [...want].sort(([a], [b]) => a.localeCompare(b))) {
    const cur = haveByAddr.get(addr);
    if (!cur) out.addPeers.push(p);
    else if (peerKey(cur) !== peerKey(p)) out.updatePeers.push(p);
  }
  for (const addr of [...haveByAddr.keys()].sort()) if (!want.has(addr)) out.deletePeers.push(addr);

  const haveAdv = new Map((observed.global ? observed.advertisements : []).map((a) => [advKey(a), a]));
  const wantAdv = new Map(desired.advertisements.map((a) => [advKey(a), a]));
  for (const [k, a] of wantAdv) if (!haveAdv.has(k)) out.addAdvertisements.push(a);
  for (const [k, a] of haveAdv) if (!wantAdv.has(k)) out.deleteAdvertisements.push(a);
  // GoBGP keeps one local path per prefix: a re-added prefix replaces the old path (implicit withdraw),
  // so a changed next hop or community needs no delete (which would withdraw it for a moment).
  const readded = new Set(out.addAdvertisements.map((a) => normalizeCidr(a.prefix)));
  out.deleteAdvertisements = out.deleteAdvertisements.filter((a) => !readded.has(normalizeCidr(a.prefix)));
  return out;
}
