import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../operator/lib/clock.js';
import { TokenBucket } from '../../operator/lib/ratelimit.js';
import { runWorkers, startResync, WorkQueue } from '../../operator/lib/workqueue.js';

const flush = () => new Promise((r) => setImmediate(r));

describe('WorkQueue', () => {
  it('dedupes keys', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands out a key being processed; re-adds it once after done()', async () => {
    const q = new WorkQueue();
    q.add('a');
    const k = await q.get();
    q.add('a');
    q.add('a');
    expect(q.len()).toBe(0);
    q.done(k!);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('a');
    q.done('a');
    expect(q.len()).toBe(0);
  });

  it('per-key exponential backoff doubles, caps, and forget() resets it', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 10, maxDelayMs: 50, qps: 1e6, burst: 1e6 });
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      q.addRateLimited('k');
      let waited = 0;
      while (q.len() === 0) {
        clock.advance(1);
        waited++;
      }
      delays.push(waited);
      q.done((await q.get())!);
    }
    expect(delays).toEqual([10, 20, 40, 50, 50]);
    expect(q.numRequeues('k')).toBe(5);
    q.forget('k');
    expect(q.numRequeues('k')).toBe(0);
  });

  it('the global bucket limits re-adds across keys', () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, baseDelayMs: 1, qps: 10, burst: 2 });
    for (const k of ['a', 'b', 'c', 'd']) q.addRateLimited(k);
    clock.advance(1);
    expect(q.len()).toBe(2);
    clock.advance(100);
    expect(q.len()).toBe(3);
    clock.advance(100);
    expect(q.len()).toBe(4);
  });

  it('addAfter keeps the earliest time for a key', () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.addAfter('x', 100);
    q.addAfter('x', 50);
    q.addAfter('x', 500);
    clock.advance(49);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
  });

  it('shutDown unblocks waiting get()', async () => {
    const q = new WorkQueue();
    const p = q.get();
    q.shutDown();
    expect(await p).toBeUndefined();
  });

  it('runWorkers: distinct keys run concurrently, a key never overlaps itself, failures retry', async () => {
    const q = new WorkQueue({ baseDelayMs: 1 });
    let running = 0;
    let maxRunning = 0;
    const active = new Set<string>();
    let overlap = false;
    const runs: string[] = [];
    let failOnce = true;
    const done = runWorkers(q, 4, async (key) => {
      if (active.has(key)) overlap = true;
      active.add(key);
      running++;
      maxRunning = Math.max(maxRunning, running);
      runs.push(key);
      await new Promise((r) => setTimeout(r, 20));
      if (key === 'a') q.add('a');
      running--;
      active.delete(key);
      if (key === 'b' && failOnce) {
        failOnce = false;
        throw new Error('boom');
      }
    });
    for (const k of ['a', 'b', 'c', 'd']) q.add(k);
    await new Promise((r) => setTimeout(r, 30));
    expect(maxRunning).toBe(4);
    // 'a' re-adds itself every run; stop the queue after a few rounds.
    await new Promise((r) => setTimeout(r, 100));
    q.shutDown();
    await done;
    expect(overlap).toBe(false);
    expect(runs.filter((k) => k === 'a').length).toBeGreaterThan(2);
    expect(runs.filter((k) => k === 'b')).toHaveLength(2);
    expect(runs.filter((k) => k === 'c')).toHaveLength(1);
  });

  it('startResync enqueues everything on its interval until stopped', async () => {
    const clock = new FakeClock();
    let n = 0;
    const stop = startResync(1000, () => n++, clock);
    clock.advance(3500);
    expect(n).toBe(3);
    stop();
    clock.advance(5000);
    expect(n).toBe(3);
    await flush();
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then qps', async () => {
    const clock = new FakeClock();
    const b = new TokenBucket({ qps: 10, burst: 3, clock });
    let got = 0;
    for (let i = 0; i < 6; i++) void b.take().then(() => got++);
    await flush();
    expect(got).toBe(3);
    clock.advance(100);
    await flush();
    expect(got).toBe(4);
    clock.advance(200);
    await flush();
    expect(got).toBe(6);
  });

  it('rejects nonsense settings', () => {
    expect(() => new TokenBucket({ qps: 0, burst: 1 })).toThrow();
  });
});
