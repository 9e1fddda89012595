import { describe, expect, it } from 'vitest';
import { FakeClock, flushPromises } from '../../operator/lib/clock.js';
import { runWorkers, startResync, WorkQueue } from '../../operator/kube/workqueue.js';

/** A promise resolved from outside. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Advances the fake clock 1 ms at a time until the queue has a key; returns the ms waited. */
function waitForKey(q: WorkQueue, clock: FakeClock, limit = 1_000_000): number {
  let waited = 0;
  while (q.len() === 0) {
    if (waited >= limit) throw new Error('no key');
    clock.advance(1);
    waited++;
  }
  return waited;
}

describe('FakeClock', () => {
  it('fires due timers in time order (ties in creation order), each at its own instant', () => {
    const clock = new FakeClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push(`b@${clock.now()}`), 20);
    clock.setTimeout(() => fired.push(`a@${clock.now()}`), 10);
    clock.setTimeout(() => fired.push(`c@${clock.now()}`), 20);
    const x = clock.setTimeout(() => fired.push('cleared'), 5);
    clock.clearTimeout(x);
    clock.setTimeout(() => {
      fired.push(`d@${clock.now()}`);
      clock.setTimeout(() => fired.push(`e@${clock.now()}`), 5); // due before the end: fires in this advance
      clock.setTimeout(() => fired.push('late'), 100);
    }, 15);
    clock.advance(30);
    expect(fired).toEqual(['a@1010', 'd@1015', 'b@1020', 'c@1020', 'e@1020']);
    expect(clock.now()).toBe(1030);
    expect(clock.pending()).toBe(1);
  });

  it('advanceAsync lets promise continuations run between timers', async () => {
    const clock = new FakeClock();
    const seen: number[] = [];
    const sleep = (ms: number) => new Promise<void>((r) => clock.setTimeout(r, ms));
    void (async () => {
      for (let i = 0; i < 3; i++) {
        await sleep(100);
        seen.push(clock.now());
      }
    })();
    await clock.advanceAsync(1000);
    expect(seen).toEqual([100, 200, 300]);
  });
});

describe('WorkQueue', () => {
  it('dedupes keys, FIFO', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('c');
    q.add('b');
    expect(q.len()).toBe(3);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(await q.get()).toBe('c');
    expect(q.len()).toBe(0);
    expect(q.inFlight()).toBe(3);
  });

  it('a key being processed is not handed out again; re-added meanwhile, it comes back once after done()', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add('a');
    const k = await q.get();
    expect(k).toBe('a');
    q.add('a');
    q.add('a');
    expect(q.len()).toBe(0);
    // Another worker asking now must not get 'a'.
    let second: string | undefined | null = null;
    void q.get().then((x) => (second = x));
    await flushPromises();
    expect(second).toBeNull();
    q.done('a');
    await flushPromises();
    expect(second).toBe('a');
    q.done('a');
    expect(q.len()).toBe(0);
    expect(q.inFlight()).toBe(0);
  });

  it('a waiting get() receives the next add at once', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const p = q.get();
    q.add('x');
    expect(await p).toBe('x');
    q.add('x'); // being processed → dirty
    expect(q.len()).toBe(0);
    q.done('x');
    expect(q.len()).toBe(1);
  });

  it('per-key exponential backoff doubles and caps; forget() resets it', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 10, maxDelayMs: 100, qps: 1e9, burst: 1e9 });
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      q.addRateLimited('k');
      delays.push(waitForKey(q, clock));
      q.done((await q.get())!);
    }
    expect(delays).toEqual([10, 20, 40, 80, 100, 100, 100]);
    expect(q.numRequeues('k')).toBe(7);
    q.forget('k');
    expect(q.numRequeues('k')).toBe(0);
    q.addRateLimited('k');
    expect(waitForKey(q, clock)).toBe(10);
  });

  it('backoff is per key', () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 10, maxDelayMs: 10_000, qps: 1e9, burst: 1e9 });
    expect(q.when('a')).toBe(10);
    expect(q.when('a')).toBe(20);
    expect(q.when('a')).toBe(40);
    expect(q.when('b')).toBe(10);
    q.forget('a');
    expect(q.when('a')).toBe(10);
    expect(q.when('b')).toBe(20);
  });

  it('defaults: 5 ms base, capped at 60 s', () => {
    const q = new WorkQueue({ clock: new FakeClock(), qps: 1e9, burst: 1e9 });
    const d: number[] = [];
    for (let i = 0; i < 20; i++) d.push(q.when('k'));
    expect(d.slice(0, 4)).toEqual([5, 10, 20, 40]);
    expect(d.at(-1)).toBe(60_000);
  });

  it('the global token bucket limits rate-limited adds across keys', () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 1, qps: 10, burst: 2 });
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.addRateLimited(k);
    clock.advance(1); // burst: two at once (after the 1 ms per-key backoff)
    expect(q.len()).toBe(2);
    clock.advance(98);
    expect(q.len()).toBe(2);
    clock.advance(1); // then one per 100 ms
    expect(q.len()).toBe(3);
    clock.advance(100);
    expect(q.len()).toBe(4);
    clock.advance(100);
    expect(q.len()).toBe(5);
  });

  it('the larger of backoff and bucket delay wins', () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 500, qps: 10, burst: 1 });
    expect(q.when('a')).toBe(500); // bucket would allow it at once
    expect(q.when('b')).toBe(500); // bucket: 100 ms
    expect(q.when('c')).toBe(500); // bucket: 200 ms
    for (let i = 0; i < 10; i++) q.when(`x${i}`); // bucket debt: 1.2 s
    expect(q.when('d')).toBe(1300);
  });

  it('addAfter: keys come in time order; a key keeps its earliest time', () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.addAfter('late', 300);
    q.addAfter('x', 100);
    q.addAfter('x', 50);
    q.addAfter('x', 500);
    q.addAfter('early', 10);
    clock.advance(9);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
    clock.advance(39);
    expect(q.len()).toBe(1);
    clock.advance(1);
    expect(q.len()).toBe(2);
    clock.advance(1000);
    expect(q.len()).toBe(3); // 'x' only once
    return (async () => {
      expect([await q.get(), await q.get(), await q.get()]).toEqual(['early', 'x', 'late']);
      expect(q.numDelayed()).toBe(0);
    })();
  });

  it('addAfter(<= 0) adds at once', () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.addAfter('a', 0);
    q.addAfter('b', -5);
    expect(q.len()).toBe(2);
  });

  it('shutDown unblocks every waiting get(), drops queued and delayed keys, ignores adds', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    const waiting = [q.get(), q.get()];
    q.shutDown();
    expect(await Promise.all(waiting)).toEqual([undefined, undefined]);

    const q2 = new WorkQueue({ clock });
    q2.add('a');
    q2.addAfter('b', 10);
    q2.shutDown();
    expect(await q2.get()).toBeUndefined();
    q2.add('c');
    q2.addRateLimited('d');
    clock.advance(1000);
    expect(q2.len()).toBe(0);
    expect(await q2.get()).toBeUndefined();
    expect(clock.pending()).toBe(0);
  });
});

describe('runWorkers', () => {
  it('n > 1 workers process distinct keys concurrently', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const gates = new Map<string, ReturnType<typeof deferred<void>>>();
    let running = 0;
    let maxRunning = 0;
    const workers = runWorkers(q, 3, async (key) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      const g = deferred();
      gates.set(key, g);
      await g.promise;
      running--;
    });
    for (const k of ['a', 'b', 'c', 'd']) q.add(k);
    await flushPromises();
    expect(running).toBe(3);
    expect([...gates.keys()]).toEqual(['a', 'b', 'c']);
    gates.get('b')!.resolve();
    await flushPromises();
    expect([...gates.keys()]).toEqual(['a', 'b', 'c', 'd']);
    for (const g of gates.values()) g.resolve();
    await flushPromises();
    expect(running).toBe(0);
    expect(maxRunning).toBe(3);
    q.shutDown();
    await workers;
  });

  it('a key re-added while it runs never runs concurrently with itself, and runs again exactly once', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const runs: string[] = [];
    const active = new Set<string>();
    let overlap = false;
    const gate = deferred();
    let first = true;
    const workers = runWorkers(q, 4, async (key) => {
      if (active.has(key)) overlap = true;
      active.add(key);
      runs.push(key);
      if (first) {
        first = false;
        await gate.promise;
      }
      active.delete(key);
    });
    q.add('a');
    await flushPromises();
    expect(runs).toEqual(['a']);
    // Re-added three times while running, with three idle workers.
    q.add('a');
    q.add('a');
    q.add('a');
    await flushPromises();
    expect(runs).toEqual(['a']);
    gate.resolve();
    await flushPromises();
    await flushPromises();
    expect(runs).toEqual(['a', 'a']);
    expect(overlap).toBe(false);
    q.shutDown();
    await workers;
  });

  it('a throw re-queues with backoff; success forgets; requeueAfterMs re-adds; hooks see outcomes', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 100, qps: 1e9, burst: 1e9 });
    let failuresLeft = 2;
    const runsAt: number[] = [];
    const outcomes: string[] = [];
    const errors: string[] = [];
    let requeued = false;
    const workers = runWorkers(
      q,
      2,
      async () => {
        runsAt.push(clock.now());
        if (failuresLeft-- > 0) throw new Error('boom');
        if (!requeued) {
          requeued = true;
          return { requeueAfterMs: 1000 };
        }
      },
      { clock, onError: (k, e) => errors.push(`${k}:${(e as Error).message}`), onDone: (k, _ms, outcome) => outcomes.push(`${k}:${outcome}`) },
    );
    q.add('k');
    await clock.advanceAsync(0);
    expect(runsAt).toEqual([0]);
    expect(q.numRequeues('k')).toBe(1);
    await clock.advanceAsync(100);
    expect(runsAt).toEqual([0, 100]);
    expect(q.numRequeues('k')).toBe(2);
    await clock.advanceAsync(200); // second failure: 200 ms
    expect(runsAt).toEqual([0, 100, 300]);
    expect(q.numRequeues('k')).toBe(0); // success forgot the failures
    await clock.advanceAsync(1000); // requeueAfterMs
    expect(runsAt).toEqual([0, 100, 300, 1300]);
    await clock.advanceAsync(10_000);
    expect(runsAt).toHaveLength(4);
    expect(errors).toEqual(['k:boom', 'k:boom']);
    expect(outcomes).toEqual(['k:error', 'k:error', 'k:ok', 'k:ok']);
    q.shutDown();
    await workers;
  });

  it('resolves once the queue shuts down and the keys in flight finish', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const gate = deferred();
    let finished = false;
    const workers = runWorkers(q, 2, async () => {
      await gate.promise;
      finished = true;
    }).then(() => 'done');
    q.add('a');
    q.add('b');
    q.add('c');
    await flushPromises();
    q.shutDown();
    const r = await Promise.race([workers, flushPromises().then(() => 'pending')]);
    expect(r).toBe('pending');
    gate.resolve();
    expect(await workers).toBe('done');
    expect(finished).toBe(true);
  });

  it('a hook that throws does not kill the worker', async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const seen: string[] = [];
    const workers = runWorkers(
      q,
      1,
      async (k) => {
        seen.push(k);
      },
      {
        onDone: () => {
          throw new Error('metrics broke');
        },
      },
    );
    q.add('a');
    await flushPromises();
    q.add('b');
    await flushPromises();
    expect(seen).toEqual(['a', 'b']);
    q.shutDown();
    await workers;
  });
});

describe('startResync', () => {
  it('enqueues everything on its interval until stopped', () => {
    const clock = new FakeClock();
    let n = 0;
    const stop = startResync(1000, () => n++, clock);
    clock.advance(999);
    expect(n).toBe(0);
    clock.advance(2501);
    expect(n).toBe(3);
    stop();
    clock.advance(5000);
    expect(n).toBe(3);
    expect(clock.pending()).toBe(0);
  });

  it('keeps going if enqueueAll throws once', () => {
    const clock = new FakeClock();
    let n = 0;
    const stop = startResync(
      100,
      () => {
        if (n++ === 0) throw new Error('informer not ready');
      },
      clock,
    );
    expect(() => clock.advance(100)).toThrow(/informer not ready/);
    clock.advance(200);
    expect(n).toBe(3);
    stop();
  });
});
