import { describe, expect, it } from 'vitest';
import { FakeClock, type Clock } from '../../operator/lib/clock.js';
import { LeaderElector } from '../../operator/kube/leader.js';
import { ConflictError, microTime, type LeaseSpec, type LeaseStore } from '../../operator/kube/lease-store.js';
import { killable } from '../support/killable.js';

/** One in-memory Lease with the apiserver's resourceVersion checks. Each candidate talks through its own view. */
class MemLease {
  /** Each request takes this long on `clock` (so candidates waking together really race). */
  constructor(private readonly latency?: { clock: Clock; ms: number }) {}
  spec: LeaseSpec | null = null;
  rv = 0;
  conflicts = 0;
  gets = 0;
  writes: Array<{ by: string; holder: string }> = [];

  view(id: string) {
    const lease = this;
    const v = {
      /** Every request fails (a partition between this candidate and the apiserver). */
      failing: false,
      /** Every request hangs forever. */
      hanging: false,
      async gate() {
        const l = lease.latency;
        if (l) await new Promise<void>((r) => l.clock.setTimeout(r, l.ms));
        if (v.hanging) await new Promise(() => {});
        if (v.failing) throw new Error('apiserver unreachable');
      },
      store: {
        describe: () => `mem/${id}`,
        async get() {
          await v.gate();
          lease.gets++;
          return lease.spec ? { spec: { ...lease.spec }, resourceVersion: String(lease.rv) } : null;
        },
        async create(spec: LeaseSpec) {
          await v.gate();
          if (lease.spec) {
            lease.conflicts++;
            throw new ConflictError('already exists');
          }
          lease.spec = { ...spec };
          lease.writes.push({ by: id, holder: spec.holderIdentity ?? '' });
          return String(++lease.rv);
        },
        async update(spec: LeaseSpec, rv: string) {
          await v.gate();
          if (rv !== String(lease.rv)) {
            lease.conflicts++;
            throw new ConflictError('the object has been modified');
          }
          lease.spec = { ...spec };
          lease.writes.push({ by: id, holder: spec.holderIdentity ?? '' });
          return String(++lease.rv);
        },
      } satisfies LeaseStore,
    };
    return v;
  }
}

interface Candidate {
  id: string;
  e: LeaderElector;
  /** SIGKILL from the outside (see test/support/killable.ts). */
  proc: ReturnType<typeof killable>;
  view: ReturnType<MemLease['view']>;
  events: string[];
  leaders: string[];
  startedAt?: number;
  stoppedAt?: number;
  done: Promise<void>;
  finished: boolean;
}

function candidate(id: string, lease: MemLease, clock: Clock & { now(): number }, opts: { releaseOnCancel?: boolean; timeClock?: Clock; random?: () => number } = {}): Candidate {
  const view = lease.view(id);
  const proc = killable(view.store, opts.timeClock ?? clock);
  const c: Partial<Candidate> & { events: string[]; leaders: string[]; finished: boolean } = { id, view, proc, events: [], leaders: [], finished: false };
  const e = new LeaderElector({
    identity: id,
    store: proc.store,
    clock: proc.clock,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    ...(opts.releaseOnCancel === undefined ? {} : { releaseOnCancel: opts.releaseOnCancel }),
    ...(opts.random ? { random: opts.random } : {}),
    onStartedLeading: () => {
      c.events.push('start');
      c.startedAt = clock.now();
    },
    onStoppedLeading: () => {
      c.events.push('stop');
      c.stoppedAt = clock.now();
    },
    onNewLeader: (l) => c.leaders.push(l),
  });
  c.e = e;
  c.done = e.run().then(() => {
    c.finished = true;
  });
  return c as Candidate;
}

/** Advances in steps, checking after each that at most one candidate believes it leads. */
async function run(clock: FakeClock, ms: number, cs: Candidate[], step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    await clock.advanceAsync(Math.min(step, ms - t));
    const leaders = cs.filter((c) => c.e.isLeader() && !c.proc.dead);
    expect(leaders.length, `leaders at ${clock.now()}: ${leaders.map((c) => c.id)}`).toBeLessThanOrEqual(1);
  }
}

const T0 = Date.parse('2026-11-23T13:20:00Z');

describe('LeaderElector', () => {
  it('a single candidate acquires at once and writes a well-formed Lease', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    await clock.advanceAsync(0);
    expect(a.e.isLeader()).toBe(true);
    expect(a.events).toEqual(['start']);
    expect(a.leaders).toEqual(['a']);
    expect(a.e.leader()).toBe('a');
    expect(lease.spec).toEqual({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTime: '2026-11-23T13:20:00.000000Z',
      renewTime: '2026-11-23T13:20:00.000000Z',
      leaseTransitions: 0,
    });
    await clock.advanceAsync(2000);
    expect(lease.spec!.renewTime).toBe('2026-11-23T13:20:02.000000Z'); // renewed every retryPeriod
    expect(lease.spec!.acquireTime).toBe('2026-11-23T13:20:00.000000Z');
    await a.e.stop();
  });

  it('a second candidate does not acquire while the first renews', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    await clock.advanceAsync(0);
    const b = candidate('b', lease, clock);
    await run(clock, 120_000, [a, b]);
    expect(a.e.isLeader()).toBe(true);
    expect(b.e.isLeader()).toBe(false);
    expect(b.leaders).toEqual(['a']);
    expect(lease.spec!.holderIdentity).toBe('a');
    expect(lease.spec!.leaseTransitions).toBe(0);
    expect(lease.writes.every((w) => w.by === 'a')).toBe(true);
    expect(a.events).toEqual(['start']);
  });

  it('a standby takes over only after the lease duration once the leader stops renewing', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    await clock.advanceAsync(0);
    // b at the worst jitter: every attempt waits the full 1.2 × retry period (2.4 s).
    const b = candidate('b', lease, clock, { random: () => 1 });
    await run(clock, 5000, [a, b]);
    const lastRenew = Date.parse(lease.spec!.renewTime!);
    a.proc.kill(); // hung / SIGKILLed: no renewals, no release
    // The lease counts from when b saw the last renewal (client-go's observedTime), at most one
    // jittered retry period after it was written; b then acquires at its first attempt past expiry,
    // at most one more jittered retry period later.
    await run(clock, lastRenew + 15_000 - clock.now(), [a, b]);
    expect(b.e.isLeader()).toBe(false);
    await run(clock, 2 * 2_400 + 100, [a, b]);
    expect(b.e.isLeader()).toBe(true);
    expect(b.startedAt! - lastRenew).toBeGreaterThanOrEqual(15_000);
    expect(b.startedAt! - lastRenew).toBeLessThanOrEqual(15_000 + 2 * 2_400);
    expect(lease.spec!.holderIdentity).toBe('b');
    expect(lease.spec!.leaseTransitions).toBe(1);
    expect(lease.spec!.acquireTime).toBe(microTime(b.startedAt!));
    expect(b.leaders).toEqual(['a', 'b']);
  });

  it('does not trust the remote renewTime: a leader whose clock is an hour behind keeps the lease', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const skewed: Clock = { now: () => clock.now() - 3_600_000, setTimeout: (f, ms) => clock.setTimeout(f, ms), clearTimeout: (t) => clock.clearTimeout(t) };
    const a = candidate('a', lease, clock, { timeClock: skewed });
    await clock.advanceAsync(0);
    expect(lease.spec!.renewTime).toBe('2026-11-23T12:20:00.000000Z');
    const b = candidate('b', lease, clock);
    await run(clock, 60_000, [a, b]);
    expect(a.e.isLeader()).toBe(true);
    expect(b.e.isLeader()).toBe(false);
  });

  it('concurrent acquire: exactly one leader, the others get 409s', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    // All start together: every get() sees no lease, every create() races.
    const cs = ['a', 'b', 'c', 'd', 'e'].map((id) => candidate(id, lease, clock));
    await clock.advanceAsync(0);
    expect(cs.filter((c) => c.e.isLeader())).toHaveLength(1);
    expect(lease.conflicts).toBe(4);
    await run(clock, 30_000, cs);
    const leader = cs.find((c) => c.e.isLeader())!;
    expect(lease.spec!.holderIdentity).toBe(leader.id);

    // The leader releases; the standbys wake at the same instant (no jitter) and race on the update.
    const lease2 = new MemLease({ clock, ms: 10 });
    const random = () => 0;
    const mk = (id: string) =>
      new LeaderElector({ identity: id, store: lease2.view(id).store, clock, random, leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, onStartedLeading() {}, onStoppedLeading() {} });
    const first = mk('x');
    void first.run();
    await clock.advanceAsync(100);
    expect(first.isLeader()).toBe(true);
    const others = ['y', 'z', 'w'].map(mk);
    for (const o of others) void o.run();
    await clock.advanceAsync(100);
    const stopping = first.stop(); // the store answers on the fake clock
    await clock.advanceAsync(50);
    await stopping;
    expect(lease2.spec!.holderIdentity).toBe('');
    const before = lease2.conflicts;
    await clock.advanceAsync(2_000);
    expect(others.filter((o) => o.isLeader())).toHaveLength(1);
    expect(lease2.conflicts - before).toBe(2);
    expect(lease2.spec!.leaseTransitions).toBe(1);
    const stops = [...others, ...cs.map((c) => c.e)].map((o) => o.stop());
    await clock.advanceAsync(1_000);
    await Promise.all(stops);
  });

  it('a leader whose renewals fail for the renew deadline stops leading, once, before anyone takes over', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    await clock.advanceAsync(0);
    const b = candidate('b', lease, clock);
    await run(clock, 3000, [a, b]);
    const lastRenew = Date.parse(lease.spec!.renewTime!);
    a.view.failing = true; // a is cut off from the apiserver; b is not
    await run(clock, lastRenew + 9_900 - clock.now(), [a, b]);
    expect(a.e.isLeader()).toBe(true);
    await run(clock, 2_200, [a, b]);
    expect(a.e.isLeader()).toBe(false);
    expect(a.events).toEqual(['start', 'stop']);
    expect(a.stoppedAt! - lastRenew).toBeGreaterThanOrEqual(10_000);
    expect(a.stoppedAt! - lastRenew).toBeLessThanOrEqual(12_000);
    expect(a.finished).toBe(true); // run() resolved
    await run(clock, 20_000, [a, b]);
    expect(b.e.isLeader()).toBe(true);
    expect(b.startedAt!).toBeGreaterThan(a.stoppedAt!);
    a.view.failing = false;
    await run(clock, 20_000, [a, b]);
    expect(a.events).toEqual(['start', 'stop']); // never again
    expect(a.e.isLeader()).toBe(false);
  });

  it('a renewal that hangs does not keep a leader past the renew deadline', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    await clock.advanceAsync(0);
    a.view.hanging = true;
    await clock.advanceAsync(9_999);
    expect(a.e.isLeader()).toBe(true);
    await clock.advanceAsync(1);
    expect(a.e.isLeader()).toBe(false);
    expect(a.events).toEqual(['start', 'stop']);
    expect(a.stoppedAt).toBe(T0 + 10_000);
  });

  it('a leader that sees another holder on the lease steps down at once', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    await clock.advanceAsync(0);
    // Someone overwrote the lease (e.g. an operator forcing a handover).
    lease.spec = { ...lease.spec!, holderIdentity: 'intruder' };
    lease.rv++;
    await clock.advanceAsync(2_000);
    expect(a.e.isLeader()).toBe(false);
    expect(a.events).toEqual(['start', 'stop']);
    expect(a.stoppedAt).toBe(T0 + 2_000);
    expect(lease.spec.holderIdentity).toBe('intruder');
  });

  it('a leader renews by writing over the version it wrote last, without reading first (client-go fast path)', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    await clock.advanceAsync(0);
    const gets = lease.gets;
    const writes = lease.writes.length;
    await run(clock, 10_000, [a]);
    expect(lease.writes.length - writes).toBe(5); // one write per retry period
    expect(lease.gets).toBe(gets); // and no read
    expect(lease.conflicts).toBe(0);
    expect(lease.spec!.renewTime).toBe('2026-11-23T13:20:10.000000Z');
    expect(lease.spec!.acquireTime).toBe('2026-11-23T13:20:00.000000Z');
    expect(lease.spec!.leaseTransitions).toBe(0);
    await a.e.stop();
  });

  it('a fast-path renewal that conflicts reads the lease and renews when it still holds it', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    await clock.advanceAsync(0);
    // Another writer touched the object without taking it (its resourceVersion moved).
    lease.rv++;
    const gets = lease.gets;
    await clock.advanceAsync(2_000);
    expect(lease.conflicts).toBe(1);
    expect(lease.gets).toBe(gets + 1);
    expect(a.e.isLeader()).toBe(true);
    expect(lease.spec!.renewTime).toBe('2026-11-23T13:20:02.000000Z');
    await a.e.stop();
  });

  it('a clean stop releases the lease and a standby takes over within a retry period', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    await clock.advanceAsync(0);
    const b = candidate('b', lease, clock);
    await run(clock, 5000, [a, b]);
    const stopAt = clock.now();
    await a.e.stop();
    expect(a.e.isLeader()).toBe(false);
    expect(a.events).toEqual(['start']); // stop() is not "lost the lease"
    expect(a.finished).toBe(true);
    expect(lease.spec).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 });
    await run(clock, 2_500, [a, b]);
    expect(b.e.isLeader()).toBe(true);
    expect(b.startedAt! - stopAt).toBeLessThanOrEqual(2_400);
    expect(lease.spec).toMatchObject({ holderIdentity: 'b', leaseDurationSeconds: 15, leaseTransitions: 1 });
    await b.e.stop();
  });

  it('releaseOnCancel: false leaves the lease to expire', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock, { releaseOnCancel: false });
    await clock.advanceAsync(0);
    const b = candidate('b', lease, clock);
    await run(clock, 5000, [a, b]);
    const writes = lease.writes.length;
    await a.e.stop();
    expect(lease.writes.length).toBe(writes);
    expect(lease.spec!.holderIdentity).toBe('a');
    await run(clock, 10_000, [a, b]);
    expect(b.e.isLeader()).toBe(false);
    await run(clock, 10_000, [a, b]);
    expect(b.e.isLeader()).toBe(true);
  });

  it('a standby that stops writes nothing', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    await clock.advanceAsync(0);
    const b = candidate('b', lease, clock);
    await run(clock, 5000, [a, b]);
    await b.e.stop();
    expect(b.finished).toBe(true);
    expect(lease.writes.every((w) => w.by === 'a')).toBe(true);
    expect(lease.spec!.holderIdentity).toBe('a');
  });

  it('stop() racing with a renewal in flight still releases', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    await clock.advanceAsync(0);
    // Make the next renewal's get() wait on the clock, then stop in the middle of it.
    const slowGet = a.view.store.get;
    a.view.store.get = () => new Promise((r) => clock.setTimeout(() => r(slowGet()), 300));
    await clock.advanceAsync(2_100);
    const stopping = a.e.stop();
    await clock.advanceAsync(1_000);
    await stopping;
    expect(lease.spec!.holderIdentity).toBe('');
  });

  it('apiserver down while campaigning: keeps trying, acquires when it is back', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const a = candidate('a', lease, clock);
    a.view.failing = true;
    await clock.advanceAsync(30_000);
    expect(a.e.isLeader()).toBe(false);
    a.view.failing = false;
    await clock.advanceAsync(2_400);
    expect(a.e.isLeader()).toBe(true);
    expect(a.events).toEqual(['start']);
  });

  it('a throwing onStartedLeading does not stop the renewals', async () => {
    const clock = new FakeClock(T0);
    const lease = new MemLease();
    const e = new LeaderElector({
      identity: 'a',
      store: lease.view('a').store,
      clock,
      leaseDurationMs: 2_500, // written as 3 s: rounded up, never down
      renewDeadlineMs: 2_000,
      retryPeriodMs: 500,
      onStartedLeading: () => {
        throw new Error('bug in the caller');
      },
      onStoppedLeading() {},
    });
    const done = e.run();
    await clock.advanceAsync(10_000);
    expect(e.isLeader()).toBe(true);
    expect(lease.spec).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 3, renewTime: microTime(T0 + 10_000) });
    await e.stop();
    await done;
  });

  it('refuses inconsistent timings', () => {
    const store = new MemLease().view('x').store;
    const mk = (leaseDurationMs: number, renewDeadlineMs: number, retryPeriodMs: number) => () =>
      new LeaderElector({ identity: 'x', store, leaseDurationMs, renewDeadlineMs, retryPeriodMs, onStartedLeading() {}, onStoppedLeading() {} });
    expect(mk(5_000, 10_000, 1_000)).toThrow(/leaseDuration > renewDeadline > retryPeriod/);
    expect(mk(15_000, 10_000, 10_000)).toThrow(/leaseDuration > renewDeadline > retryPeriod/);
    expect(mk(900, 500, 100)).toThrow(/at least 1 s/);
    expect(mk(3_000, 2_000, 500)).not.toThrow();
  });

  it('microTime: RFC 3339 with microseconds', () => {
    expect(microTime(Date.parse('2026-11-23T13:20:00.123Z'))).toBe('2026-11-23T13:20:00.123000Z');
  });
});

