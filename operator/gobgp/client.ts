/**
 * The Router interface on a GoBGP v3 gobgpd (gRPC API over a Unix socket or loopback TCP).
 *
 * Behaviour worth knowing (measured on gobgpd 3.10 + FRR 8.4; test/integration/gobgp.test.ts):
 * - getGlobal(): GetBgp answers asn 0 until StartBgp → null. A restarted gobgpd is unconfigured again.
 * - updatePeer(): timers (hold, keepalive, connect-retry) are changed in place by UpdatePeer without a
 *   session reset; the new hold/keepalive only take effect at the next OPEN (they are negotiated), the
 *   new connect-retry at the next connection attempt. Any other change (peer/local ASN, password,
 *   description, graceful restart, eBGP multihop) is done as DeletePeer + AddPeer, i.e. that one
 *   session resets: gobgpd would do the same internally for all of these but multihop, which its
 *   UpdatePeer silently ignores. (Graceful restart with restartTime 0 follows the hold time, so there a
 *   hold-time change is a GR change too, and resets.) In-place works because peerMessage() spells out
 *   every value gobgpd defaults; the previous client's sparse UpdatePeer reset the session every time.
 * - listPeers(): the MD5 password comes back in clear text (conf.auth_password), so it can be compared.
 *   A password mismatch is invisible to gobgpd (the kernel drops the segments): the peer sits in Active
 *   with no OPEN exchanged; the node's TcpExt TCPMD5Failure/NotFound/Unexpected counters do count it.
 * - deletePeer() of an unknown address is a no-op (gobgpd itself answers an error).
 * - addAdvertisements(): adding a prefix that is already advertised replaces the old path (implicit
 *   withdraw; one UPDATE to the peers, no withdraw in between), so a changed next hop or community is
 *   just an add. Batches of >= STREAM_THRESHOLD go through AddPathStream, smaller ones unary AddPath.
 * - deleteAdvertisements(): by path, never by UUID (ListPath returns no UUIDs and DeletePath by UUID is
 *   O(N)). Batches go through AddPathStream with is_withdraw, small ones unary DeletePath. Deleting a
 *   prefix that is not advertised is a no-op, not an error.
 * - watchPeers(): WatchEvent peer events carry only address, ASNs, state and admin state (no counters,
 *   no uptime, no reason). The first events after subscribing are a snapshot of every peer (INIT); the
 *   END_OF_INIT marker is dropped. establishedAt is set only on STATE events (the time it arrived).
 */
import { GoBgpApi, GoBgpError, type GoBgpApiOptions } from './api.js';
import {
  advOf,
  FAMILY,
  isLocalPath,
  notificationCounts,
  onlyTimersDiffer,
  pathOf,
  peerFromRaw,
  peerMessage,
  type NotificationCounts,
  type RawPath,
  type RawPeer,
} from './codec.js';
import { normalizeIP, parseCidr } from '../lib/ip.js';
import type { Advertisement, BgpGlobalConfig, PeerConfig, PeerStatus, Router } from './speaker.js';

export { checkTarget, DEFAULT_PROTO_DIR, GoBgpError } from './api.js';
export { peerFromRaw } from './codec.js';

/** At or above this many paths, add/delete use one AddPathStream instead of unary calls. */
export const STREAM_THRESHOLD = 20;
/** Paths per AddPathStream message (NOTES: 100-1000 a message gives 6k-17k paths/s). */
export const STREAM_CHUNK = 500;

export type GoBgpRouterOptions = GoBgpApiOptions;

interface RawGlobal {
  asn?: number;
  router_id?: string;
  listen_port?: number;
  listen_addresses?: string[];
}

/** Same path as DEFAULT_GOBGP_SOCKET in operator/api/fabricconfig.ts (the sidecar's shared volume). */
export const DEFAULT_TARGET = 'unix:///run/podfabric/gobgp.sock';

/**
 * A Router on gobgpd at `target`: unix:///abs/path (default DEFAULT_TARGET), 127.0.0.1:PORT or [::1]:PORT.
 * Any other TCP target throws unless opts.allowNonLoopback (the GoBGP API has no authentication).
 * The connection is lazy and re-established by itself after a gobgpd restart.
 */
export function createGoBgpRouter(target: string = DEFAULT_TARGET, opts: GoBgpRouterOptions = {}): Router {
  const api = new GoBgpApi(target, opts);
  let globalAsn = 0;
  /** Notification counters per peer when last seen Established (see codec.peerError). */
  const countersWhenUp = new Map<string, NotificationCounts>();

  const rawPeers = async (address = ''): Promise<RawPeer[]> => {
    try {
      // enableAdvertised: without it afi_safis[].state.advertised (prefixesSent) stays 0.
      return (await api.list<{ peer?: RawPeer }>('ListPeer', { address, enableAdvertised: true })).flatMap((r) => (r.peer ? [r.peer] : []));
    } catch (e) {
      // gobgpd 3.10 answers an unknown address with an empty list; older ones may error: "no such peer".
      if (address && e instanceof GoBgpError && /doesn't exist|not found/i.test(e.message)) return [];
      throw e;
    }
  };

  const ensureAsn = async (): Promise<number> => {
    if (!globalAsn) await router.getGlobal();
    if (!globalAsn) throw new Error('gobgpd: BGP is not started (StartBgp first)');
    return globalAsn;
  };

  const convert = (r: RawPeer) => {
    const addr = normalizeIP(r.conf?.neighbor_address ?? '') ?? '';
    if (r.state?.session_state === 'ESTABLISHED') countersWhenUp.set(addr, notificationCounts(r));
    return peerFromRaw(r, globalAsn, countersWhenUp.get(addr));
  };

  const streamPaths = (list: Advertisement[], withdraw: boolean) => {
    function* messages() {
      for (let i = 0; i < list.length; i += STREAM_CHUNK) {
        yield { table_type: 'GLOBAL', paths: list.slice(i, i + STREAM_CHUNK).map((a) => pathOf(a, withdraw)) };
      }
    }
    // Encode everything first so a bad entry fails before anything is sent.
    const all = [...messages()];
    return api.clientStream('AddPathStream', all, 60_000 + list.length * 5);
  };

  const router: Router = {
    async getGlobal(): Promise<BgpGlobalConfig | null> {
      const r = await api.unary<{ global?: RawGlobal }>('GetBgp', {});
      const g = r.global;
      if (!g?.asn) {
        globalAsn = 0;
        return null;
      }
      globalAsn = g.asn;
      return {
        asn: g.asn,
        routerId: g.router_id ?? '',
        listenPort: g.listen_port ?? 0,
        ...(g.listen_addresses?.length ? { listenAddresses: g.listen_addresses } : {}),
      };
    },

    async startBgp(cfg: BgpGlobalConfig): Promise<void> {
      await api.unary('StartBgp', {
        global: { asn: cfg.asn, router_id: cfg.routerId, listen_port: cfg.listenPort, listen_addresses: cfg.listenAddresses ?? [] },
      });
      globalAsn = cfg.asn;
      countersWhenUp.clear();
    },

    async stopBgp(): Promise<void> {
      await api.unary('StopBgp', {});
      globalAsn = 0;
      countersWhenUp.clear();
    },

    async listPeers() {
      if (!globalAsn) await router.getGlobal();
      return (await rawPeers()).map(convert);
    },

    async addPeer(p: PeerConfig, opts?: { restarting?: boolean }): Promise<void> {
      const peer = peerMessage(p, await ensureAsn());
      if (opts?.restarting && p.gracefulRestart?.enabled) (peer.graceful_restart as Record<string, unknown>).local_restarting = true;
      await api.unary('AddPeer', { peer });
    },

    async updatePeer(p: PeerConfig): Promise<void> {
      const asn = await ensureAsn();
      const address = normalizeIP(p.address) ?? p.address;
      const [cur] = await rawPeers(address);
      if (!cur) {
        await api.unary('AddPeer', { peer: peerMessage(p, asn) });
        return;
      }
      if (onlyTimersDiffer(peerFromRaw(cur, asn).config, p, asn)) {
        await api.unary('UpdatePeer', { peer: peerMessage(p, asn), do_soft_reset_in: false });
        return;
      }
      await api.unary('DeletePeer', { address });
      countersWhenUp.delete(address);
      await api.unary('AddPeer', { peer: peerMessage(p, asn) });
    },

    async deletePeer(address: string): Promise<void> {
      const a = normalizeIP(address) ?? address;
      try {
        await api.unary('DeletePeer', { address: a });
      } catch (e) {
        // Idempotent: gobgpd refuses to delete an unknown peer ("can't delete a peer configuration").
        if (!(e instanceof GoBgpError && /can't delete a peer/.test(e.message))) throw e;
      }
      countersWhenUp.delete(a);
    },

    async listAdvertisements(prefixes?: string[]): Promise<Advertisement[]> {
      const out: Advertisement[] = [];
      for (const fam of [4, 6] as const) {
        const lookup = prefixes?.filter((p) => parseCidr(p)?.family === fam).map((prefix) => ({ prefix, type: 'EXACT' }));
        if (lookup && lookup.length === 0) continue;
        let rs: Array<{ destination?: { paths?: RawPath[] } }>;
        try {
          rs = await api.list('ListPath', { table_type: 'GLOBAL', family: FAMILY[fam], name: '', ...(lookup ? { prefixes: lookup } : {}) }, 60_000);
        } catch (e) {
          // An unconfigured gobgpd has no paths (ListPath: "bgp server hasn't started yet").
          if (e instanceof GoBgpError && /hasn't started/.test(e.message)) return [];
          throw e;
        }
        for (const r of rs) {
          for (const p of r.destination?.paths ?? []) {
            const a = isLocalPath(p) ? advOf(p) : null;
            if (a) out.push(a);
          }
        }
      }
      return out;
    },

    async addAdvertisements(list: Advertisement[]): Promise<void> {
      if (!list.length) return;
      if (list.length >= STREAM_THRESHOLD) return streamPaths(list, false);
      const paths = list.map((a) => pathOf(a));
      for (const path of paths) await api.unary('AddPath', { table_type: 'GLOBAL', path });
    },

    async deleteAdvertisements(list: Advertisement[]): Promise<void> {
      if (!list.length) return;
      if (list.length >= STREAM_THRESHOLD) return streamPaths(list, true);
      const paths = list.map((a) => pathOf(a, true));
      for (const path of paths) await api.unary('DeletePath', { table_type: 'GLOBAL', family: path.family, path });
    },

    watchPeers(onChange: (s: PeerStatus) => void, onError: (e: Error) => void): () => void {
      return api.watch<{ peer?: { type?: string; peer?: RawPeer } }>(
        'WatchEvent',
        { peer: {} },
        (ev) => {
          const raw = ev.peer?.peer;
          if (!raw || ev.peer?.type === 'END_OF_INIT' || !(raw.conf?.neighbor_address || raw.state?.neighbor_address)) return;
          const { status } = peerFromRaw(raw, globalAsn);
          // A STATE event arrives the moment the FSM changes; INIT events describe sessions of any age.
          onChange(status.state === 'Established' && ev.peer?.type === 'STATE' ? { ...status, establishedAt: new Date() } : status);
        },
        onError,
      );
    },

    close(): void {
      api.close();
    },
  };
  return router;
}
