/**
 * A work queue with client-go / controller-runtime semantics:
 * - a key is queued at most once (dedupe), FIFO;
 * - a key being processed is never handed out again until done(); if it is added meanwhile it is
 *   marked dirty and queued once more after done() (so it runs again exactly once, never concurrently);
 * - addRateLimited: per-key exponential backoff (base·2^failures, capped at max) combined with a global
 *   token bucket over all rate-limited adds; the larger delay wins (client-go's
 *   DefaultControllerRateLimiter: 5 ms → 1000 s per item, 10 qps / burst 100 overall; the per-item cap
 *   here defaults to 60 s); forget() resets a key's failures;
 * - addAfter: delayed add; a key waiting with several delays is added at the earliest;
 * - shutDown(): get() answers undefined from then on (queued keys are dropped: the controller resyncs
 *   everything when it starts again), keys being processed finish normally, adds are ignored.
 */
import { log as rootLog, type Logger } from '../lib/log.js';
import { realClock, type Clock, type Timer } from '../lib/clock.js';
import { TokenBucket } from '../lib/ratelimit.js';

export interface WorkQueueOptions {
  clock?: Clock;
  /** First retry delay of addRateLimited (ms). Default 5. */
  baseDelayMs?: number;
  /** Cap of the per-key backoff (ms). Default 60 000. */
  maxDelayMs?: number;
  /** Overall rate of rate-limited adds across all keys (token bucket). Default 10. */
  qps?: number;
  /** Default 100. */
  burst?: number;
  name?: string;
}

export interface ReconcileResult {
  /** Reconcile this key again after this long (success; its failure count is reset). */
  requeueAfterMs?: number;
  /** Other keys this reconcile made stale, each after an optional delay (the runner enqueues them). */
  enqueue?: Array<{ key: string; afterMs?: number }>;
}

/**
 * Invalid input that retrying cannot fix: the reconciler has already written the condition that says
 * so. The runner logs it and forgets the key (no rate-limited retry); the next change re-enqueues it.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

/**
 * Attaches the keys a failed reconcile had already made stale (an index it updated before failing),
 * so the runner still enqueues them: the retry may no longer see the change that called for them.
 */
export function carryEnqueue(err: unknown, enqueue: ReconcileResult['enqueue']): unknown {
  if (enqueue?.length && err instanceof Error) Object.assign(err, { enqueue });
  return err;
}

/** What the runner hands each reconcile: a child logger naming the component, the key and this run. */
export interface ReconcileContext {
  log: Logger;
  /** Unique per reconcile run (also in every line of `log`). */
  reconcileId: string;
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
    if (!(this.base > 0) || !(this.max >= this.base)) throw new Error(`WorkQueue ${opts.name ?? ''}: need 0 < baseDelayMs <= maxDelayMs`);
    this.bucket = new TokenBucket({ qps: opts.qps ?? 10, burst: opts.burst ?? 100, clock: this.clock });
    this.name = opts.name ?? 'queue';
  }

  /** Queues key unless it is queued already; a key being processed is queued again after done(). */
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

  /** add(key) after ms (at once when ms <= 0). A key already waiting for an earlier time keeps it. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) return this.add(key);
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

  /** The delay addRateLimited uses now for this key; counts the failure and reserves a bucket token. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const backoff = Math.min(this.max, this.base * 2 ** Math.min(n, 50));
    return Math.max(backoff, this.bucket.reserve());
  }

  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.addAfter(key, this.when(key));
  }

  /** Resets the key's failure count (its next addRateLimited waits baseDelayMs again). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How many times the key was re-added rate-limited since it was last forgotten. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Keys queued and not handed out yet (not counting delayed or in-process keys). */
  len(): number {
    return this.queue.length - this.head;
  }

  /** Keys being processed (handed out by get(), done() not called yet). */
  inFlight(): number {
    return this.processing.size;
  }

  /** Keys waiting for addAfter / addRateLimited. */
  numDelayed(): number {
    return this.delayed.size;
  }

  /** The next key, waiting for one; undefined once the queue is shut down. Call done(key) after. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
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
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks the key processed; if it was added meanwhile, queues it again. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const d of this.delayed.values()) this.clock.clearTimeout(d.timer);
    this.delayed.clear();
    this.queue = [];
    this.head = 0;
    this.queued.clear();
    this.dirty.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }
}

export interface RunWorkersOptions {
  onError?(key: string, err: unknown): void;
  /** After every reconcile: its duration and outcome (for metrics). */
  onDone?(key: string, ms: number, outcome: 'ok' | 'error'): void;
  /** Parent of each reconcile's child logger (default the root logger). */
  log?: Logger;
  /** Names the component in every reconcile's log lines (e.g. 'controller', 'agent'). */
  component?: string;
  /** Measures durations (default the real clock). */
  clock?: Clock;
}

/**
 * Runs n workers until the queue shuts down; resolves once every worker has finished its last key.
 * A throw re-queues the key rate-limited; success forgets its failures (and re-adds it after
 * requeueAfterMs when asked). Distinct keys run concurrently; a key never runs twice at once.
 */
export async function runWorkers(
  q: WorkQueue,
  n: number,
  reconcile: (key: string, ctx: ReconcileContext) => Promise<ReconcileResult | void>,
  opts: RunWorkersOptions = {},
): Promise<void> {
  const clock = opts.clock ?? realClock;
  const parent = opts.log ?? rootLog;
  let runs = 0;
  const enqueueAll = (list: ReconcileResult['enqueue']) => {
    for (const e of Array.isArray(list) ? list : []) {
      if (e.afterMs) q.addAfter(e.key, e.afterMs);
      else q.add(e.key);
    }
  };
  const hook = (f: () => void) => {
    try {
      f();
    } catch {
      // a metrics or logging hook must not kill the worker
    }
  };
  const worker = async () => {
    for (;;) {
      const key = await q.get();
      if (key === undefined) return;
      const t0 = clock.now();
      const reconcileId = `${(++runs).toString(36)}-${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
      const ctx: ReconcileContext = { reconcileId, log: parent.child({ ...(opts.component ? { component: opts.component } : {}), key, reconcileId }) };
      try {
        const r = await reconcile(key, ctx);
        q.forget(key);
        if (r?.requeueAfterMs) q.addAfter(key, r.requeueAfterMs);
        enqueueAll(r?.enqueue);
        hook(() => opts.onDone?.(key, clock.now() - t0, 'ok'));
      } catch (e) {
        enqueueAll((e as { enqueue?: ReconcileResult['enqueue'] } | null)?.enqueue);
        if (e instanceof TerminalError) {
          hook(() => ctx.log.warn({ err: e.message }, 'reconcile failed on invalid input; not retrying until it changes'));
          q.forget(key);
        } else {
          hook(() => opts.onError?.(key, e));
          q.addRateLimited(key);
        }
        hook(() => opts.onDone?.(key, clock.now() - t0, 'error'));
      } finally {
        q.done(key);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.floor(n)) }, worker));
}

/** Calls enqueueAll every intervalMs (first after one interval) until the returned stop function is called. */
export function startResync(intervalMs: number, enqueueAll: () => void, clock: Clock = realClock): () => void {
  if (!(intervalMs > 0)) throw new Error('startResync: intervalMs must be > 0');
  let timer: Timer | undefined;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    try {
      enqueueAll();
    } finally {
      if (!stopped) timer = clock.setTimeout(tick, intervalMs);
    }
  };
  timer = clock.setTimeout(tick, intervalMs);
  return () => {
    stopped = true;
    if (timer) clock.clearTimeout(timer);
  };
}
