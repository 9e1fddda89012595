/**
 * What the agent needs from a BGP speaker. The GoBGP implementation (gobgp/client.ts) hides gRPC and
 * Any-packing behind it; business logic sees only these types.
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
  /** TCP MD5 password. Never logged. */
  password?: string;
  holdTime: number;
  keepaliveInterval: number;
  connectRetry: number;
  gracefulRestart?: { enabled: boolean; restartTime: number };
  ebgpMultihop?: number;
  description?: string;
}

export type SessionState = 'Unknown' | 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';

export interface PeerStatus {
  address: string;
  state: SessionState;
  establishedAt?: Date;
  prefixesSent: number;
  prefixesReceived: number;
  lastError?: string;
}

export interface Advertisement {
  prefix: string;
  nextHop: string;
  communities: string[];
}

export interface Router {
  /** null when BGP is not started (a fresh or restarted gobgpd). */
  getGlobal(): Promise<BgpGlobalConfig | null>;
  startBgp(cfg: BgpGlobalConfig): Promise<void>;
  stopBgp(): Promise<void>;
  listPeers(): Promise<Array<{ config: PeerConfig; status: PeerStatus }>>;
  addPeer(p: PeerConfig): Promise<void>;
  /** In place where GoBGP allows it (timers, password reset the session; see client). */
  updatePeer(p: PeerConfig): Promise<void>;
  deletePeer(address: string): Promise<void>;
  /** Locally originated paths, both families. */
  listAdvertisements(): Promise<Advertisement[]>;
  addAdvertisements(a: Advertisement[]): Promise<void>;
  deleteAdvertisements(a: Advertisement[]): Promise<void>;
  /** Peer state changes; onError when the stream breaks (gobgpd died). Returns a stop function. */
  watchPeers(onChange: (s: PeerStatus) => void, onError: (e: Error) => void): () => void;
  close(): void;
}
