import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../operator/lib/clock.js';
import { ConflictError, LeaderElector, type LeaseSpec, type LeaseStore } from '../../operator/lib/leader.js';

/** An in-memory Lease with resourceVersion checks, like the apiserver's. */
class MemLease implements LeaseStore {
  spec: LeaseSpec | null = null;
  rv = 0;
  failing = false;
  describe() {
    return 'mem';
  }
  async get() {
    if (this.failing) throw new Error('apiserver down');
    return this.spec ? { spec: { ...this.spec }, resourceVersion: String(this.rv) } : null;
  }
  async create(spec: LeaseSpec) {
    if (this.failing) throw new Error('apiserver down');
    if (this.spec) throw new ConflictError('exists');
    this.spec = { ...spec };
    return String(++this.rv);
  }
  async update(spec: LeaseSpec, rv: string) {
    if (this.failing) throw new Error('apiserver down');
    if (rv !== String(this.rv)) throw new ConflictError('conflict');
    this.spec = { ...spec };
    return String(++this.rv);
  }
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

function candidate(id: string, store: LeaseStore, clock: FakeClock) {
  const events: string[] = [];
  const e = new LeaderElector({
    identity: id,
    store,
    clock,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    onStartedLeading: () => events.push('start'),
    onStoppedLeading: () => events.push('stop'),
  });
  void e.run();
  return { e, events };
}

async function step(clock: FakeClock, ms: number, by = 500) {
  for (let t = 0; t < ms; t += by) {
    clock.advance(by);
    await flush();
  }
}

describe('LeaderElector', () => {
  it('one candidate acquires; a second waits while the first renews', async () => {
    const clock = new FakeClock(1_000_000);
    const store = new MemLease();
    const a = candidate('a', store, clock);
    await flush();
    expect(a.e.isLeader()).toBe(true);
    const b = candidate('b', store, clock);
    await step(clock, 60_000);
    expect(a.e.isLeader()).toBe(true);
    expect(b.e.isLeader()).toBe(false);
    expect(store.spec!.holderIdentity).toBe('a');
    expect(store.spec!.renewTime).toMatch(/\.\d{6}Z$/);
  });

  it('a standby takes over only after the lease duration once the leader stops renewing', async () => {
    const clock = new FakeClock(1_000_000);
    const store = new MemLease();
    const a = candidate('a', store, clock);
    await flush();
    const b = candidate('b', store, clock);
    await step(clock, 4000);
    a.e.frozen = true; // hung process: no renewals, no release
    await step(clock, 12_000);
    expect(b.e.isLeader()).toBe(false);
    await step(clock, 8_000);
    expect(b.e.isLeader()).toBe(true);
    expect(store.spec!.holderIdentity).toBe('b');
    expect(store.spec!.leaseTransitions).toBe(1);
  });

  it('racing candidates: exactly one leader', async () => {
    const clock = new FakeClock(1_000_000);
    const store = new MemLease();
    const cs = ['a', 'b', 'c', 'd'].map((id) => candidate(id, store, clock));
    await step(clock, 10_000);
    expect(cs.filter((c) => c.e.isLeader())).toHaveLength(1);
  });

  it('a leader that cannot renew for the renew deadline stops leading, once', async () => {
    const clock = new FakeClock(1_000_000);
    const store = new MemLease();
    const a = candidate('a', store, clock);
    await flush();
    store.failing = true;
    await step(clock, 9_000);
    expect(a.e.isLeader()).toBe(true);
    await step(clock, 3_000);
    expect(a.e.isLeader()).toBe(false);
    expect(a.events).toEqual(['start', 'stop']);
  });

  it('a clean stop releases the lease and the standby takes over within a retry period', async () => {
    const clock = new FakeClock(1_000_000);
    const store = new MemLease();
    const a = candidate('a', store, clock);
    await flush();
    const b = candidate('b', store, clock);
    await step(clock, 2000);
    await a.e.stop();
    expect(store.spec!.holderIdentity).toBeNull();
    await step(clock, 3000);
    expect(b.e.isLeader()).toBe(true);
  });

  it('refuses inconsistent timings', () => {
    expect(
      () => new LeaderElector({ identity: 'x', store: new MemLease(), leaseDurationMs: 5, renewDeadlineMs: 10, retryPeriodMs: 1, onStartedLeading() {}, onStoppedLeading() {} }),
    ).toThrow(/leaseDuration > renewDeadline > retryPeriod/);
  });
});
