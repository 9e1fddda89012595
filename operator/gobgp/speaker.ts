/**
 * What the agent needs from a BGP speaker. The GoBGP implementation (gobgp/client.ts) hides gRPC and
 * Any-packing behind it; business logic sees only these types. Addresses and prefixes coming back are
 * in canonical form (IPv6 compressed, lowercase; prefixes with host bits cleared), communities sorted.
 */
export interface BgpGlobalConfig {
  asn: number;
  routerId: string;
  /** 179 by default; -1: do not listen (outbound sessions only). */
  listenPort: number;
  listenAddresses?: string[];
}

export interface PeerConfig {
  address: string;
  peerAsn: number;
  /** Overrides the global ASN for this session. */
  localAsn?: number;
  /** TCP MD5 password. Never logged. GoBGP returns it in clear text from ListPeer, so it is compared directly. */
  password?: string;
  holdTime: number;
  keepaliveInterval: number;
  connectRetry: number;
  /** restartTime 0 = the hold time (GoBGP's default). */
  gracefulRestart?: { enabled: boolean; restartTime: number };
  /** TTL; 0/undefined = off. */
  ebgpMultihop?: number;
  description?: string;
}

export type SessionState = 'Unknown' | 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';

export interface PeerStatus {
  address: string;
  state: SessionState;
  /** When the current session came up (listPeers: gobgpd's uptime stamp, 1 s resolution). */
  establishedAt?: Date;
  prefixesSent: number;
  prefixesReceived: number;
  /**
   * Only what the speaker exposes: admin down, prefix limit, or NOTIFICATIONs exchanged since the session
   * was last up (a rejected OPEN: ASN mismatch...). A TCP MD5 mismatch leaves this empty: the session
   * just stays Active/Connect with no OPEN ever exchanged (the kernel drops the unsigned segments).
   */
  lastError?: string;
}

export interface Advertisement {
  /** v4 or v6 CIDR. */
  prefix: string;
  /** Same family as the prefix (v6: sent in MP_REACH_NLRI). */
  nextHop: string;
  /** "65000:100" */
  communities: string[];
}

export interface Router {
  /** null when BGP is not started (a fresh or restarted gobgpd). */
  getGlobal(): Promise<BgpGlobalConfig | null>;
  startBgp(cfg: BgpGlobalConfig): Promise<void>;
  stopBgp(): Promise<void>;
  listPeers(): Promise<Array<{ config: PeerConfig; status: PeerStatus }>>;
  /**
   * restarting: set the Restart State and Forwarding State bits of the graceful-restart capability — the
   * BGP speaker restarted while the node kept forwarding — so a helper router keeps this node's routes
   * until the session is back and the routes are refreshed. Only for peers with graceful restart on.
   */
  addPeer(p: PeerConfig, opts?: { restarting?: boolean }): Promise<void>;
  /**
   * Timers change in place without a session reset (new hold/keepalive apply at the next OPEN); any
   * other change (ASN, password, description, graceful restart, multihop) resets that one session.
   */
  updatePeer(p: PeerConfig): Promise<void>;
  deletePeer(address: string): Promise<void>;
  /**
   * Locally originated paths, both families. With `prefixes`, only those prefixes are looked up (exact
   * match), so the agent does not walk a global table that holds every route the ToR sends.
   */
  listAdvertisements(prefixes?: string[]): Promise<Advertisement[]>;
  /** Re-adding a prefix replaces its next hop/communities in place (no withdraw in between). */
  addAdvertisements(a: Advertisement[]): Promise<void>;
  /** By prefix; deleting one that is not advertised is a no-op. */
  deleteAdvertisements(a: Advertisement[]): Promise<void>;
  /** Peer state changes; onError when the stream breaks (gobgpd died). Returns a stop function. */
  watchPeers(onChange: (s: PeerStatus) => void, onError: (e: Error) => void): () => void;
  close(): void;
}

// The one community normaliser: the agent diffs with it, the gRPC codec canonicalises with it.
/** "065000:01" → "65000:1"; anything unparsable is kept verbatim (the router will reject it). */
function community(c: string): string {
  const m = /^\s*(\d+):(\d+)\s*$/.exec(c);
  return m ? `${Number(m[1])}:${Number(m[2])}` : c;
}

export function normalizeCommunityList(cs: readonly string[] | undefined): string[] {
  const out = [...new Set((cs ?? []).map(community))];
  const num = (c: string) => {
    const [a, b] = c.split(':').map(Number);
    return Number.isFinite(a) && Number.isFinite(b) ? a! * 65536 + b! : Number.MAX_SAFE_INTEGER;
  };
  return out.sort((a, b) => num(a) - num(b) || a.localeCompare(b));
}
