import { describe, expect, it } from 'vitest';
import { FakeClock, flushPromises } from '../../operator/lib/clock.js';
import { DEFAULT_BURST, DEFAULT_QPS, TokenBucket } from '../../operator/lib/ratelimit.js';

/** Starts n take() calls; returns the array the order of grants is recorded in. */
function takeMany(b: TokenBucket, n: number): number[] {
  const granted: number[] = [];
  for (let i = 0; i < n; i++) void b.take().then(() => granted.push(i));
  return granted;
}

describe('TokenBucket', () => {
  it('allows a burst at once, then qps', async () => {
    const clock = new FakeClock();
    const b = new TokenBucket({ qps: 10, burst: 3, clock });
    const got = takeMany(b, 7);
    await flushPromises();
    expect(got).toHaveLength(3);
    await clock.advanceAsync(99);
    expect(got).toHaveLength(3);
    await clock.advanceAsync(1);
    expect(got).toHaveLength(4);
    await clock.advanceAsync(300);
    expect(got).toHaveLength(7);
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6]); // first come, first served
    expect(b.waiting()).toBe(0);
  });

  it('sustained rate over a long run equals qps (plus the burst)', async () => {
    const clock = new FakeClock();
    const b = new TokenBucket({ qps: 50, burst: 5, clock });
    const got = takeMany(b, 1000);
    await clock.advanceAsync(10_000);
    expect(got).toHaveLength(5 + 500);
  });

  it('refills while idle, but never above burst', async () => {
    const clock = new FakeClock();
    const b = new TokenBucket({ qps: 100, burst: 4, clock });
    for (let i = 0; i < 4; i++) expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(false);
    clock.advance(20); // 2 tokens
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(false);
    clock.advance(60_000);
    expect(b.available()).toBe(4);
  });

  it('a late caller does not overtake a waiting one', async () => {
    const clock = new FakeClock();
    const b = new TokenBucket({ qps: 1, burst: 1, clock });
    const order: string[] = [];
    void b.take().then(() => order.push('first'));
    void b.take().then(() => order.push('second'));
    await flushPromises();
    expect(order).toEqual(['first']);
    await clock.advanceAsync(500);
    expect(b.tryTake()).toBe(false); // half a token; and 'second' waits
    void b.take().then(() => order.push('third'));
    await clock.advanceAsync(500);
    expect(order).toEqual(['first', 'second']);
    await clock.advanceAsync(1000);
    expect(order).toEqual(['first', 'second', 'third']);
  });

  it('reserve() goes into debt and reports the wait', () => {
    const clock = new FakeClock();
    const b = new TokenBucket({ qps: 10, burst: 2, clock });
    expect([b.reserve(), b.reserve(), b.reserve(), b.reserve()]).toEqual([0, 0, 100, 200]);
    clock.advance(200);
    expect(b.reserve()).toBe(100);
  });

  it('a clock stepping back adds no tokens', () => {
    const clock = new FakeClock(10_000);
    const b = new TokenBucket({ qps: 10, burst: 1, clock });
    expect(b.tryTake()).toBe(true);
    clock.setNow(5_000);
    expect(b.tryTake()).toBe(false);
  });

  it('qps Infinity never waits', async () => {
    const clock = new FakeClock();
    const b = new TokenBucket({ qps: Infinity, burst: 1, clock });
    const got = takeMany(b, 100);
    await flushPromises();
    expect(got).toHaveLength(100);
    expect(b.reserve()).toBe(0);
  });

  it('defaults to 100 qps / burst 200 (client-go\'s 5/10 is far too low at scale)', async () => {
    expect([DEFAULT_QPS, DEFAULT_BURST]).toEqual([100, 200]);
    const clock = new FakeClock();
    const b = new TokenBucket({ clock });
    expect([b.qps, b.burst]).toEqual([100, 200]);
    const got = takeMany(b, 400);
    await flushPromises();
    expect(got).toHaveLength(200);
    await clock.advanceAsync(1000);
    expect(got).toHaveLength(300);
  });

  it('rejects nonsense settings', () => {
    expect(() => new TokenBucket({ qps: 0, burst: 1 })).toThrow();
    expect(() => new TokenBucket({ qps: -1, burst: 1 })).toThrow();
    expect(() => new TokenBucket({ qps: 1, burst: 0.5 })).toThrow();
    expect(() => new TokenBucket({ qps: Number.NaN, burst: 1 })).toThrow();
    expect(() => new TokenBucket({ qps: 1, burst: Infinity })).toThrow();
  });

  it('works with the real clock', async () => {
    const b = new TokenBucket({ qps: 100, burst: 1 });
    const t0 = Date.now();
    await b.take();
    await b.take();
    await b.take();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
  });
});
