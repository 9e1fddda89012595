/**
 * A work queue with client-go / controller-runtime semantics:
 * - a key is queued at most once (dedupe);
 * - a key being processed is never handed out again until done(); if it is added meanwhile it is marked
 *   dirty and queued once more after done();
 * - addRateLimited: per-key exponential backoff (base·2^failures, capped) combined with a global token
 *   bucket (the larger delay wins); forget() resets a key's failures;
 * - addAfter: delayed add (the earliest pending time for a key wins).
 */
import { realClock, type Clock, type Timer } from './clock.js';
import { TokenBucket } from './ratelimit.js';

export interface WorkQueueOptions {
  clock?: Clock;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Overall rate of rate-limited re-adds. */
  qps?: number;
  burst?: number;
  name?: string;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export class WorkQueue {
  private queue: string[] = [];
  private head = 0;
  private queued = new Set<string>();
  private processing = new Set<string>();
  private dirty = new Set<string>();
  private failures = new Map<string, number>();
  private delayed = new Map<string, { at: number; timer: Timer }>();
  private waiters: Array<(k: string | undefined) => void> = [];
  private shuttingDown = false;
  private readonly clock: Clock;
  private readonly base: number;
  private readonly max: number;
  private readonly bucket: TokenBucket;
  readonly name: string;

  constructor(opts: WorkQueueOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.base = opts.baseDelayMs ?? 5;
    this.max = opts.maxDelayMs ?? 60_000;
    this.bucket = new TokenBucket({ qps: opts.qps ?? 10, burst: opts.burst ?? 100, clock: this.clock });
    this.name = opts.name ?? 'queue';
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.processing.add(key);
      waiter(key);
      return;
    }
    this.queued.add(key);
    this.queue.push(key);
  }

  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.now() + ms;
    const prev = this.delayed.get(key);
    if (prev && prev.at <= at) return;
    if (prev) this.clock.clearTimeout(prev.timer);
    const timer = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, timer });
  }

  /** The delay addRateLimited would use now for this key (and counts the failure). */
  private when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const backoff = Math.min(this.max, this.base * 2 ** Math.min(n, 30));
    return Math.max(backoff, this.bucket.reserve());
  }

  addRateLimited(key: string): void {
    this.addAfter(key, this.when(key));
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  len(): number {
    return this.queue.length - this.head;
  }

  get(): Promise<string | undefined> {
    if (this.head < this.queue.length) {
      const key = this.queue[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.queued.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const d of this.delayed.values()) this.clock.clearTimeout(d.timer);
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }
}

/**
 * Runs n workers until the queue shuts down. A throw re-queues the key rate-limited; success forgets
 * its failures (and re-adds it after requeueAfterMs when asked).
 */
export async function runWorkers(
  q: WorkQueue,
  n: number,
  reconcile: (key: string) => Promise<ReconcileResult | void>,
  opts: { onError?(key: string, err: unknown): void; onDone?(key: string, ms: number, outcome: 'ok' | 'error'): void; clock?: Clock } = {},
): Promise<void> {
  const clock = opts.clock ?? realClock;
  const worker = async () => {
    for (;;) {
      const key = await q.get();
      if (key === undefined) return;
      const t0 = clock.now();
      try {
        const r = await reconcile(key);
        q.forget(key);
        if (r?.requeueAfterMs) q.addAfter(key, r.requeueAfterMs);
        opts.onDone?.(key, clock.now() - t0, 'ok');
      } catch (e) {
        opts.onError?.(key, e);
        q.addRateLimited(key);
        opts.onDone?.(key, clock.now() - t0, 'error');
      } finally {
        q.done(key);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, n) }, worker));
}

/** Calls enqueueAll every intervalMs until the returned stop function is called. */
export function startResync(intervalMs: number, enqueueAll: () => void, clock: Clock = realClock): () => void {
  let timer: Timer | undefined;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    enqueueAll();
    timer = clock.setTimeout(tick, intervalMs);
  };
  timer = clock.setTimeout(tick, intervalMs);
  return () => {
    stopped = true;
    if (timer) clock.clearTimeout(timer);
  };
}
