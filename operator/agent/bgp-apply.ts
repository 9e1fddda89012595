/**
 * BGP apply: the node's global settings and sessions (derived by the agent from the BGPPeers,
 * plan/peers.ts) and its advertisements (the NodeFabric's pod CIDRs, with the sessions' communities)
 * → what gobgpd should have, diffed (pure diffBgp) against what it has, and only the delta applied. A changed ASN/router ID/port restarts
 * BGP; a gobgpd found unconfigured after this process programmed it (a sidecar restart), or while the
 * NodeFabric's status lists prefixes a previous agent advertised (the whole pod replaced), is a restart:
 * its graceful-restart peers are re-added as restarting so the routers keep this node's routes meanwhile.
 */
import type { PlannedPeer } from '../api/nodefabric.js';
import type { Advertisement, PeerConfig, PeerStatus, Router } from '../gobgp/speaker.js';
import type { Logger } from '../lib/log.js';
import { diffBgp } from './bgp-diff.js';
import type { SessionTracker } from './sessions.js';

/** The password of a peer's Secret reference, from the watched Secrets (undefined when absent). */
export type PasswordLookup = (ref: NonNullable<PlannedPeer['passwordSecretRef']>) => string | undefined;

export interface BgpOutcome {
  changes: number;
  bgpError?: string;
  /** The sessions gobgpd listed after applying. */
  sessions: PeerStatus[];
  /** Peer address → whether a password was configured. */
  passwords: Map<string, boolean>;
}

/** The value of a settled promise, or its error thrown. */
function settled<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

/** A planned peer as gobgpd's PeerConfig (the local ASN only when it differs from the node's). */
export function peerConfig(p: PlannedPeer, nodeAsn: number | undefined, password: string | undefined): PeerConfig {
  return {
    address: p.address,
    peerAsn: p.peerASN,
    ...(p.localASN !== nodeAsn ? { localAsn: p.localASN } : {}),
    ...(password ? { password } : {}),
    holdTime: p.holdTime,
    keepaliveInterval: p.keepaliveInterval,
    connectRetry: p.connectRetry,
    ...(p.gracefulRestart ? { gracefulRestart: p.gracefulRestart } : {}),
    ...(p.ebgpMultihop ? { ebgpMultihop: p.ebgpMultihop } : {}),
    description: p.name,
  };
}

/** What this node's gobgpd should have. */
export interface BgpWant {
  asn: number;
  routerId: string;
  peers: PlannedPeer[];
  /**
   * The node's routes; undefined while its NodeFabric does not exist yet: the sessions are configured,
   * and the advertisements gobgpd has are neither looked up nor changed.
   */
  advertisements: Advertisement[] | undefined;
}

export class BgpApplier {
  /** This process has programmed gobgpd before: finding it unconfigured again means gobgpd restarted. */
  private programmed = false;
  /** Prefixes this node may have originated in gobgpd (looked up each sync to find stale ones). */
  private readonly originated = new Set<string>();

  constructor(
    private readonly router: Router,
    private readonly sessions: SessionTracker,
    private readonly passwords: PasswordLookup,
    private readonly listenPort = 179,
  ) {}

  /**
   * `want` undefined: nothing known yet (no Node or FabricConfig), gobgpd is left as it is.
   * `extra`: routes besides the node's pod CIDRs (this node's Service routes, service-routes.ts).
   */
  async apply(want: BgpWant | undefined, previouslyAdvertised: string[], log: Logger, extra: Advertisement[] = []): Promise<BgpOutcome> {
    let changes = 0;
    let bgpError: string | undefined;
    const passwords = new Map<string, boolean>();
    const r = this.router;
    const planned = !!want;
    if (want) {
      try {
        const peers: PeerConfig[] = [];
        for (const p of want.peers) {
          const password = p.passwordSecretRef ? this.passwords(p.passwordSecretRef) : undefined;
          passwords.set(p.address, !!password);
          peers.push(peerConfig(p, want.asn, password));
        }
        const routes = !!want.advertisements;
        const advertisements: Advertisement[] = routes ? [...want.advertisements!, ...extra] : [];
        // Three independent reads at once; peers and paths count only when BGP is running.
        // Only the prefixes this node may have originated: what it wants, what its status last said it
        // advertised (survives an agent restart) and what this process added.
        for (const p of [...previouslyAdvertised, ...advertisements.map((a) => a.prefix)]) this.originated.add(p);
        const [g, lp, la] = await Promise.allSettled([r.getGlobal(), r.listPeers(), routes ? r.listAdvertisements([...this.originated]) : Promise.resolve([])]);
        const global = settled(g);
        const observedPeers = global ? settled(lp).map((p) => p.config) : [];
        const observedAdv = global ? settled(la) : [];
        const desiredGlobal = { asn: want.asn, routerId: want.routerId, listenPort: this.listenPort };
        const diff = diffBgp({ global: desiredGlobal, peers, advertisements }, { global, peers: observedPeers, advertisements: observedAdv });
        if (diff.restartNeeded) {
          log.warn({ reason: diff.restartNeeded }, 'BGP global settings changed: restarting BGP');
          await r.stopBgp();
          await r.startBgp(desiredGlobal);
          for (const p of peers) await r.addPeer(p);
          if (advertisements.length) await r.addAdvertisements(advertisements);
          changes += 1 + peers.length + advertisements.length;
        } else {
          // gobgpd unconfigured (fresh) while this node has advertised before — this process programmed
          // it (a sidecar crash), or the NodeFabric's status says a previous agent did (the whole pod was
          // replaced, as a DaemonSet rolling update does): graceful-restart peers are added with the
          // Restart State bit, so the routers keep this node's routes until End-of-RIB.
          const restarting = !!diff.startBgp && (this.programmed || previouslyAdvertised.length > 0);
          if (diff.startBgp) {
            log.info({ asn: desiredGlobal.asn, routerId: desiredGlobal.routerId, restarting }, 'starting BGP (gobgpd was unconfigured)');
            await r.startBgp(diff.startBgp);
            changes++;
          }
          for (const a of diff.deletePeers) {
            await r.deletePeer(a);
            this.sessions.deleted(a);
          }
          // Peers and paths are independent in gobgpd (a path added before its peer is sent once the
          // session is up): one round of concurrent calls instead of one after another.
          await Promise.all([
            ...diff.addPeers.map(async (p) => {
              await r.addPeer(p, restarting ? { restarting: true } : undefined);
              this.sessions.added(p.address);
            }),
            ...diff.updatePeers.map((p) => r.updatePeer(p)),
            (async () => {
              if (diff.deleteAdvertisements.length) await r.deleteAdvertisements(diff.deleteAdvertisements);
              if (diff.addAdvertisements.length) await r.addAdvertisements(diff.addAdvertisements);
            })(),
          ]);
          for (const a of diff.deleteAdvertisements) this.originated.delete(a.prefix);
          changes += diff.deletePeers.length + diff.addPeers.length + diff.updatePeers.length + diff.deleteAdvertisements.length + diff.addAdvertisements.length;
          if (changes) {
            log.info(
              {
                addPeers: diff.addPeers.map((p) => p.address),
                updatePeers: diff.updatePeers.map((p) => p.address),
                deletePeers: diff.deletePeers,
                advertise: diff.addAdvertisements.map((a) => a.prefix),
                withdraw: diff.deleteAdvertisements.map((a) => a.prefix),
              },
              'BGP changes applied',
            );
          }
        }
        this.programmed = true;
      } catch (e) {
        bgpError = `gobgpd: ${(e as Error).message}`;
      }
    }
    let sessions: PeerStatus[] = [];
    if (!bgpError && planned) {
      try {
        sessions = (await r.listPeers()).map((p) => p.status);
      } catch (e) {
        bgpError = `gobgpd: ${(e as Error).message}`;
      }
    }
    this.sessions.listed(sessions);
    return { changes, ...(bgpError ? { bgpError } : {}), sessions, passwords };
  }
}
