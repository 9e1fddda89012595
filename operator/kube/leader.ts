/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics
 * (k8s.io/client-go/tools/leaderelection):
 * - a candidate acquires when the lease has no holder, or when the lease record has not changed for
 *   leaseDurationSeconds as measured by OUR clock since we last saw it change (the remote renewTime is
 *   never compared with our clock: clocks skew);
 * - every write carries the resourceVersion read (optimistic concurrency): of two racing candidates
 *   exactly one wins, the other gets 409 and stays a candidate;
 * - the leader renews every retryPeriod, by writing over the version it wrote last without reading
 *   first (client-go's optimistic fast path; on any failure it reads, then decides); if no renewal
 *   has succeeded for renewDeadline (counted from the start of the last successful attempt, even while a request hangs) it stops leading:
 *   onStoppedLeading is called exactly once and run() resolves — the caller exits the process, so a
 *   former leader never writes. It also stops at once when it sees another holder on the lease.
 *   With leaseDuration > renewDeadline, an old leader stops before anyone may take over.
 * - leaseTransitions is incremented whenever the holder changes; acquireTime / renewTime are MicroTime
 *   strings (RFC 3339 with microseconds);
 * - on a clean stop() the leader releases (releaseOnCancel, default on): holderIdentity '' and
 *   leaseDurationSeconds 1, so a standby takes over within about a retry period.
 */
import { realClock, type Clock, type Timer } from '../lib/clock.js';
import { log } from '../lib/log.js';
import { ConflictError, microTime, type LeaseSpec, type LeaseStore } from './lease-store.js';

export interface LeaderElectorOptions {
  /** Unique per process (a restarted process must not inherit the old one's lease). */
  identity: string;
  store: LeaseStore;
  /** How long a standby waits, after it last saw the lease change, before taking it. Default 15 000. */
  leaseDurationMs?: number;
  /** How long the leader keeps leading without a successful renewal. Default 10 000. */
  renewDeadlineMs?: number;
  /** Interval between attempts (acquire and renew). Default 2 000. */
  retryPeriodMs?: number;
  /** Acquire attempts wait retryPeriod·(1 + jitter·random). Default 0.2 (client-go's JitterFactor 1.2). */
  jitter?: number;
  clock?: Clock;
  /** stop() releases the lease if held. Default true. */
  releaseOnCancel?: boolean;
  random?: () => number;
  onStartedLeading(): void;
  /** Leadership lost (renew deadline passed, or another holder seen). Called at most once; not called by stop(). */
  onStoppedLeading(): void;
  /** The holder seen on the lease changed (ourselves included). */
  onNewLeader?(identity: string): void;
}

export interface ElectionTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** The timings with client-go's defaults (15 s, 10 s, 2 s); throws for timings a leader could not keep. */
export function electionTimings(o: Partial<ElectionTimings>): ElectionTimings {
  const t = { leaseDurationMs: o.leaseDurationMs ?? 15_000, renewDeadlineMs: o.renewDeadlineMs ?? 10_000, retryPeriodMs: o.retryPeriodMs ?? 2_000 };
  if (!(t.leaseDurationMs > t.renewDeadlineMs && t.renewDeadlineMs > t.retryPeriodMs && t.retryPeriodMs > 0)) {
    throw new Error(`leader election needs leaseDuration > renewDeadline > retryPeriod > 0 (got ${t.leaseDurationMs}, ${t.renewDeadlineMs}, ${t.retryPeriodMs} ms)`);
  }
  if (t.leaseDurationMs < 1000) throw new Error('leader election: leaseDuration must be at least 1 s (the Lease counts whole seconds)');
  return t;
}

const TIMEOUT = Symbol('timeout');

export class LeaderElector {
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly renewMs: number;
  private readonly retryMs: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private readonly where: string;
  private leading = false;
  private stoppedLeading = false;
  private stopped = false;
  private running: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** The record last seen, and when (by our clock) we saw it change. */
  private observed: { raw: string; at: number; spec: LeaseSpec; rv?: string } | undefined;
  /** Start of the last successful acquire/renew attempt. */
  private lastRenew = 0;
  private watchdog: Timer | undefined;
  private sleepTimer: Timer | undefined;
  private wake: (() => void) | undefined;
  private inflight: Promise<boolean> | undefined;
  private wrote = false;
  private lastLeader = '';
  private lostTo = '';

  constructor(private readonly o: LeaderElectorOptions) {
    this.clock = o.clock ?? realClock;
    const t = electionTimings(o);
    this.leaseMs = t.leaseDurationMs;
    this.renewMs = t.renewDeadlineMs;
    this.retryMs = t.retryPeriodMs;
    this.jitter = o.jitter ?? 0.2;
    this.random = o.random ?? Math.random;
    this.where = o.store.describe?.() ?? 'lease';
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The holder last seen on the lease ('' if none yet). */
  leader(): string {
    return this.lastLeader;
  }

  get identity(): string {
    return this.o.identity;
  }


  /**
   * Campaigns until it leads, then renews. Resolves when stop() is called or when leadership is lost
   * (after onStoppedLeading); an elector is not reused after that.
   */
  run(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  private async loop(): Promise<void> {
    // Acquire.
    while (!this.stopped) {
      const started = this.clock.now();
      const ok = await this.attempt(this.renewMs);
      if (this.stopped) return;
      if (ok) {
        this.lastRenew = started;
        this.leading = true;
        this.armWatchdog();
        log.info({ lease: this.where, identity: this.o.identity }, 'acquired the lease');
        this.callback('onStartedLeading', () => this.o.onStartedLeading());
        break;
      }
      await this.sleep(this.retryMs * (1 + this.jitter * this.random()));
    }
    // Renew.
    while (!this.stopped && this.leading) {
      await this.sleep(this.retryMs);
      if (this.stopped || !this.leading) return;
      const started = this.clock.now();
      const ok = await this.attempt(Math.max(1, this.lastRenew + this.renewMs - started));
      if (this.stopped || !this.leading) continue;
      if (ok) {
        this.lastRenew = started;
        this.armWatchdog();
      } else if (this.lostTo) {
        this.stepDown(`the lease is held by ${this.lostTo}`);
      } else if (this.clock.now() - this.lastRenew >= this.renewMs) {
        this.stepDown('could not renew the lease within the renew deadline');
      }
    }
  }

  /** Steps down once renewDeadline has passed since the last good renewal, even if a request hangs. */
  private armWatchdog(): void {
    if (this.watchdog) this.clock.clearTimeout(this.watchdog);
    this.watchdog = this.clock.setTimeout(
      () => {
        this.watchdog = undefined;
        if (this.stopped || !this.leading) return;
        if (this.clock.now() - this.lastRenew >= this.renewMs) this.stepDown('could not renew the lease within the renew deadline');
        else this.armWatchdog();
      },
      Math.max(0, this.lastRenew + this.renewMs - this.clock.now()),
    );
  }

  private stepDown(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    if (this.watchdog) this.clock.clearTimeout(this.watchdog);
    this.watchdog = undefined;
    this.wake?.(); // end run()
    if (this.stoppedLeading) return;
    this.stoppedLeading = true;
    log.error({ lease: this.where, identity: this.o.identity }, `stopped leading: ${reason}`);
    this.callback('onStoppedLeading', () => this.o.onStoppedLeading());
  }

  /** A throwing callback must not stop the renewals (nor leave the elector half-updated). */
  private callback(name: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      log.error({ lease: this.where, identity: this.o.identity, err: (e as Error).message }, `${name} threw`);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      this.wake = () => {
        if (this.sleepTimer) this.clock.clearTimeout(this.sleepTimer);
        this.sleepTimer = undefined;
        this.wake = undefined;
        r();
      };
      this.sleepTimer = this.clock.setTimeout(() => this.wake?.(), ms);
    });
  }

  /** p, or `fallback` if it has not settled after ms (p keeps running; its result is dropped). */
  private within<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
    return new Promise((resolve) => {
      const t = this.clock.setTimeout(() => resolve(fallback), ms);
      p.then(
        (v) => {
          this.clock.clearTimeout(t);
          resolve(v);
        },
        () => {
          this.clock.clearTimeout(t);
          resolve(fallback);
        },
      );
    });
  }

  private async attempt(timeoutMs: number): Promise<boolean> {
    const p = this.tryAcquireOrRenew().catch((e: unknown) => {
      log.debug({ lease: this.where, identity: this.o.identity, err: (e as Error).message }, 'lease attempt failed');
      return false;
    });
    this.inflight = p;
    void p.then(() => {
      if (this.inflight === p) this.inflight = undefined;
    });
    const r = await this.within(p, timeoutMs, TIMEOUT);
    if (r === TIMEOUT) {
      log.warn({ lease: this.where, identity: this.o.identity, timeoutMs }, 'lease attempt timed out');
      return false;
    }
    return r;
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.clock.now();
    const me = this.o.identity;
    const durationSeconds = Math.max(1, Math.ceil(this.leaseMs / 1000)); // rounding up only makes others wait longer

    // The leader's fast path (client-go's): write the renewal over the version it wrote last, without
    // reading first — one request per renewal instead of two. Any failure (409: someone else wrote;
    // an error) falls back to reading the lease, which is then judged as below.
    if (this.leading && this.observed?.rv) {
      const next: LeaseSpec = { ...this.observed.spec, holderIdentity: me, leaseDurationSeconds: durationSeconds, renewTime: microTime(now) };
      try {
        const rv = await this.o.store.update(next, this.observed.rv);
        this.observe(next, rv);
        return true;
      } catch (e) {
        log.debug({ lease: this.where, identity: me, err: (e as Error).message }, 'optimistic renewal failed; reading the lease');
      }
    }

    const cur = await this.o.store.get();
    if (!cur) {
      const spec: LeaseSpec = { holderIdentity: me, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 };
      let rv: string;
      try {
        rv = await this.o.store.create(spec);
      } catch (e) {
        if (e instanceof ConflictError) return false;
        throw e;
      }
      this.wrote = true;
      this.observe(spec, rv);
      return true;
    }

    const raw = JSON.stringify(cur.spec);
    if (!this.observed || this.observed.raw !== raw) this.observed = { raw, at: this.clock.now(), spec: cur.spec };
    this.observed.rv = cur.resourceVersion;
    const holder = cur.spec.holderIdentity ?? '';
    this.report(holder);
    const durationMs = (cur.spec.leaseDurationSeconds || durationSeconds) * 1000;
    const valid = this.observed.at + durationMs > now;
    if (holder !== '' && holder !== me && valid) {
      if (this.leading) this.lostTo = holder;
      return false;
    }

    const takeover = holder !== me;
    const next: LeaseSpec = {
      holderIdentity: me,
      leaseDurationSeconds: durationSeconds,
      acquireTime: takeover || !cur.spec.acquireTime ? microTime(now) : cur.spec.acquireTime,
      renewTime: microTime(now),
      leaseTransitions: (cur.spec.leaseTransitions ?? 0) + (takeover ? 1 : 0),
    };
    let rv: string;
    try {
      rv = await this.o.store.update(next, cur.resourceVersion);
    } catch (e) {
      if (e instanceof ConflictError) return false;
      throw e;
    }
    this.wrote = true;
    this.observe(next, rv);
    return true;
  }

  /** Records what we wrote, and the resourceVersion it got (the next renewal's fast path writes over it). */
  private observe(spec: LeaseSpec, rv: string): void {
    this.observed = { raw: JSON.stringify(spec), at: this.clock.now(), spec, rv };
    this.report(spec.holderIdentity ?? '');
  }

  private report(holder: string): void {
    if (!holder || holder === this.lastLeader) return;
    this.lastLeader = holder;
    this.callback('onNewLeader', () => this.o.onNewLeader?.(holder));
  }

  /**
   * Stops campaigning/renewing (isLeader() is false at once) and, if releaseOnCancel, releases the
   * lease if we hold it: holder '' and leaseDurationSeconds 1. Does not call onStoppedLeading.
   * Waits (at most renewDeadline) for an attempt in flight first, so it cannot re-take the lease after
   * the release.
   */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopped = true;
    this.leading = false;
    if (this.watchdog) this.clock.clearTimeout(this.watchdog);
    this.watchdog = undefined;
    this.wake?.();
    this.stopping = (async () => {
      await this.release();
      // The loop ends at its next step (at most an attempt's timeout away).
      if (this.running) await this.within(this.running, this.renewMs, undefined);
    })();
    return this.stopping;
  }

  /** Releases the lease if we hold it (see stop()). */
  private async release(): Promise<void> {
    if (this.inflight) await this.within(this.inflight, this.renewMs, false);
    if (!this.wrote || !(this.o.releaseOnCancel ?? true) || this.stoppedLeading) return;
    const attempt = async (): Promise<'released' | 'not held' | 'failed'> => {
      try {
        const cur = await this.o.store.get();
        if (!cur || cur.spec.holderIdentity !== this.o.identity) return 'not held';
        const now = microTime(this.clock.now());
        await this.o.store.update(
          { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: cur.spec.leaseTransitions ?? 0 },
          cur.resourceVersion,
        );
        return 'released';
      } catch (e) {
        log.warn({ lease: this.where, identity: this.o.identity, err: (e as Error).message }, 'could not release the lease');
        return 'failed';
      }
    };
    const r = await this.within(attempt(), this.renewMs, TIMEOUT);
    if (r === 'released') log.info({ lease: this.where, identity: this.o.identity }, 'released the lease');
    else if (r === TIMEOUT) log.warn({ lease: this.where, identity: this.o.identity }, 'releasing the lease timed out');
  }
}
