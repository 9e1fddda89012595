/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics:
 * - a candidate acquires when the lease has no holder, or when the lease record has not changed for
 *   leaseDuration as measured by OUR clock since we last saw it change (remote timestamps are not
 *   trusted: clocks skew);
 * - the leader renews every retryPeriod; if no renewal succeeded for renewDeadline it stops leading
 *   (onStoppedLeading, once) — the caller exits, so a former leader never writes;
 * - every write carries the resourceVersion read (optimistic concurrency): of two racing candidates
 *   exactly one wins, the other gets 409;
 * - on a clean stop the leader releases: holder emptied, duration 1 s, so a standby takes over at once.
 */
import { realClock, type Clock, type Timer } from './clock.js';
import { log } from './log.js';
import { isConflict, isNotFound, type KubeRest } from '../kube/rest.js';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

export class ConflictError extends Error {}

export interface LeaseStore {
  get(): Promise<{ spec: LeaseSpec; resourceVersion: string } | null>;
  create(spec: LeaseSpec): Promise<string>;
  update(spec: LeaseSpec, resourceVersion: string): Promise<string>;
  describe(): string;
}

export function kubeLeaseStore(rest: KubeRest, namespace: string, name: string): LeaseStore {
  const base = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
  const wrap = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (e) {
      if (isConflict(e)) throw new ConflictError((e as Error).message);
      throw e;
    }
  };
  return {
    describe: () => `${namespace}/${name}`,
    async get() {
      try {
        const l = await rest.get<{ metadata: { resourceVersion: string }; spec?: LeaseSpec }>(`${base}/${name}`);
        return { spec: l.spec ?? {}, resourceVersion: l.metadata.resourceVersion };
      } catch (e) {
        if (isNotFound(e)) return null;
        throw e;
      }
    },
    async create(spec) {
      const l = await wrap(rest.request<{ metadata: { resourceVersion: string } }>('POST', base, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec }));
      return l.metadata.resourceVersion;
    },
    async update(spec, resourceVersion) {
      const l = await wrap(
        rest.request<{ metadata: { resourceVersion: string } }>('PUT', `${base}/${name}`, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace, resourceVersion },
          spec,
        }),
      );
      return l.metadata.resourceVersion;
    },
  };
}

/** MicroTime: RFC 3339 with microseconds. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface LeaderElectorOptions {
  identity: string;
  store: LeaseStore;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  clock?: Clock;
  releaseOnCancel?: boolean;
  onStartedLeading(): void;
  onStoppedLeading(): void;
  onNewLeader?(identity: string): void;
}

export class LeaderElector {
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly renewMs: number;
  private readonly retryMs: number;
  private leading = false;
  private stopped = false;
  private observed: { record: string; at: number; rv: string; spec: LeaseSpec } | undefined;
  private lastRenew = 0;
  private timer: Timer | undefined;
  private wake: (() => void) | undefined;
  private lastLeader = '';
  private lostTo = '';
  /** Test hook: a frozen elector stops renewing without releasing (as if the process hung). */
  frozen = false;

  constructor(private readonly o: LeaderElectorOptions) {
    this.clock = o.clock ?? realClock;
    this.leaseMs = o.leaseDurationMs ?? 15_000;
    this.renewMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
    if (!(this.leaseMs > this.renewMs && this.renewMs > this.retryMs)) {
      throw new Error('leader election needs leaseDuration > renewDeadline > retryPeriod');
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      this.wake = r;
      this.timer = this.clock.setTimeout(r, ms);
    });
  }

  /** Loops until stop(); acquires, then renews, while leading. */
  async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.frozen) {
        const ok = await this.tryAcquireOrRenew().catch((e: Error) => {
          log.debug({ lease: this.o.store.describe(), err: e.message }, 'lease attempt failed');
          return false;
        });
        const now = this.clock.now();
        if (ok) {
          this.lastRenew = now;
          if (!this.leading && !this.stopped) {
            this.leading = true;
            log.info({ lease: this.o.store.describe(), identity: this.o.identity }, 'acquired the lease');
            this.o.onStartedLeading();
          }
        } else if (this.leading && (this.lostTo || now - this.lastRenew >= this.renewMs)) {
          this.leading = false;
          log.error({ lease: this.o.store.describe(), identity: this.o.identity }, 'could not renew the lease within the renew deadline');
          this.o.onStoppedLeading();
        }
      }
      if (this.stopped) break;
      await this.sleep(this.leading ? this.retryMs : this.retryMs * (1 + Math.random() * 0.2));
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.clock.now();
    const me = this.o.identity;
    const desired = (prev: LeaseSpec | undefined, takeover: boolean): LeaseSpec => ({
      holderIdentity: me,
      leaseDurationSeconds: Math.ceil(this.leaseMs / 1000),
      acquireTime: takeover || !prev?.acquireTime ? microTime(now) : prev.acquireTime,
      renewTime: microTime(now),
      leaseTransitions: (prev?.leaseTransitions ?? 0) + (takeover && prev?.holderIdentity ? 1 : 0),
    });
    const cur = await this.o.store.get();
    if (!cur) {
      const rv = await this.o.store.create(desired(undefined, true)).catch((e) => {
        if (e instanceof ConflictError) return null;
        throw e;
      });
      if (rv === null) return false;
      this.observe(desired(undefined, true), rv, now);
      return true;
    }
    const record = JSON.stringify(cur.spec);
    if (!this.observed || this.observed.record !== record) this.observed = { record, at: now, rv: cur.resourceVersion, spec: cur.spec };
    const holder = cur.spec.holderIdentity ?? '';
    if (holder && holder !== this.lastLeader) {
      this.lastLeader = holder;
      this.o.onNewLeader?.(holder);
    }
    const durationMs = (cur.spec.leaseDurationSeconds ?? Math.ceil(this.leaseMs / 1000)) * 1000;
    const expired = this.observed.at + durationMs <= now;
    if (holder && holder !== me && !expired) {
      if (this.leading) this.lostTo = holder;
      return false;
    }
    const next = desired(cur.spec, holder !== me);
    try {
      const rv = await this.o.store.update(next, cur.resourceVersion);
      this.observe(next, rv, now);
      return true;
    } catch (e) {
      if (e instanceof ConflictError) return false;
      throw e;
    }
  }

  private observe(spec: LeaseSpec, rv: string, at: number): void {
    this.observed = { record: JSON.stringify(spec), at, rv, spec };
    if (this.lastLeader !== this.o.identity) {
      this.lastLeader = this.o.identity;
      this.o.onNewLeader?.(this.o.identity);
    }
  }

  /** Stops the loop; releases the lease if we hold it (unless releaseOnCancel is false). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.wake?.();
    if (this.leading && (this.o.releaseOnCancel ?? true)) {
      this.leading = false;
      try {
        const cur = await this.o.store.get();
        if (cur && cur.spec.holderIdentity === this.o.identity) {
          await this.o.store.update(
            { ...cur.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(this.clock.now()), acquireTime: null },
            cur.resourceVersion,
          );
          log.info({ lease: this.o.store.describe(), identity: this.o.identity }, 'released the lease');
        }
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'could not release the lease');
      }
    }
  }
}
