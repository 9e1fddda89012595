/**
 * What the agent remembers about its BGP sessions between syncs: the last state each peer's watch
 * reported, when each session went down (or was configured), and the node's TCP MD5 counters when the
 * first session was seen down (so "auth failure suspected" can become proof). The one owner of
 * `downSince`: the watch, the BGP apply and the session listing all report here.
 */
import type { PlannedPeer } from '../api/nodefabric.js';
import type { PeerStatus } from '../gobgp/speaker.js';
import { md5Delta, type Md5Counters } from '../host/netstat.js';
import type { Clock } from '../lib/clock.js';
import type { ObservedSession } from './status.js';

export class SessionTracker {
  private readonly states = new Map<string, PeerStatus>();
  private readonly downSince = new Map<string, number>();
  private md5Base: Md5Counters | undefined;

  constructor(private readonly clock: Clock) {}

  /** A state from the peer watch; returns the previous one. */
  watched(s: PeerStatus): PeerStatus | undefined {
    const prev = this.states.get(s.address);
    this.states.set(s.address, s);
    if (s.state === 'Established') this.downSince.delete(s.address);
    else if (prev?.state === 'Established' || !this.downSince.has(s.address)) this.downSince.set(s.address, this.clock.now());
    return prev;
  }

  /** A peer was just configured: it counts as down from now. */
  added(address: string): void {
    this.downSince.set(address, this.clock.now());
  }

  /** A peer was removed: forget it. */
  deleted(address: string): void {
    this.downSince.delete(address);
    this.states.delete(address);
  }

  /** The sessions as gobgpd listed them this sync. */
  listed(sessions: PeerStatus[]): void {
    for (const s of sessions) {
      if (s.state === 'Established') this.downSince.delete(s.address);
      else if (!this.downSince.has(s.address)) this.downSince.set(s.address, this.clock.now());
    }
  }

  /**
   * Each planned session as gobgpd listed it this sync, else as its watch last reported it; with how
   * long it has been down, whether it has a password, and MD5 counter growth while any is down.
   */
  async observe(planned: PlannedPeer[], listed: PeerStatus[], passwords: Map<string, boolean>, md5Counters?: () => Promise<Md5Counters | null>): Promise<ObservedSession[]> {
    const seen = new Map(planned.map((p) => [p.address, listed.find((x) => x.address === p.address) ?? this.states.get(p.address)]));
    const anyDown = planned.some((p) => seen.get(p.address)?.state !== 'Established');
    let md5: Md5Counters | undefined;
    if (anyDown && md5Counters) {
      const now = await md5Counters().catch(() => null);
      if (now) {
        this.md5Base ??= now;
        md5 = md5Delta(this.md5Base, now);
      }
    } else if (!anyDown) {
      this.md5Base = undefined;
    }
    const now = this.clock.now();
    return planned.map((p) => {
      const s = seen.get(p.address);
      const down = this.downSince.get(p.address);
      return {
        address: p.address,
        name: p.name,
        state: s?.state ?? 'Unknown',
        ...(down !== undefined ? { downForMs: now - down } : {}),
        ...(s?.lastError ? { lastError: s.lastError } : {}),
        passwordSet: passwords.get(p.address) ?? false,
        connectRetry: p.connectRetry,
        ...(md5 ? { md5 } : {}),
      };
    });
  }
}
