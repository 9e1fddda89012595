import { realClock, type Clock, type Timer } from './clock.js';

/**
 * Client-side throttle for Kubernetes API requests. client-go's 5 QPS / burst 10 would take ~1000 s to
 * touch 5,000 nodes; Kubernetes runs its own controllers at 100 QPS in 5k-node tests.
 */
export const DEFAULT_QPS = 100;
export const DEFAULT_BURST = 200;

export interface TokenBucketOptions {
  /** Tokens added per second (> 0; Infinity = no limit). Default DEFAULT_QPS. */
  qps?: number;
  /** Tokens the bucket holds at most (>= 1); the bucket starts full. Default DEFAULT_BURST. */
  burst?: number;
  clock?: Clock;
}

/**
 * Token bucket: `qps` tokens per second, up to `burst` saved. take() waits for a token; waiters are
 * served first come, first served (a caller arriving later never overtakes one already waiting).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private waiters: Array<() => void> = [];
  private timer: Timer | undefined;
  private readonly clock: Clock;
  readonly qps: number;
  readonly burst: number;

  constructor(opts: TokenBucketOptions = {}) {
    const qps = opts.qps ?? DEFAULT_QPS;
    const burst = opts.burst ?? DEFAULT_BURST;
    if (!(qps > 0) || !(burst >= 1) || !Number.isFinite(burst)) throw new Error(`TokenBucket: qps must be > 0 and burst a finite number >= 1 (got qps=${qps}, burst=${burst})`);
    this.qps = qps;
    this.burst = burst;
    this.clock = opts.clock ?? realClock;
    this.tokens = burst;
    this.last = this.clock.now();
  }

  private get unlimited(): boolean {
    return this.qps === Infinity;
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.last); // a clock that steps back adds nothing
    this.last = now;
    if (this.unlimited) this.tokens = this.burst;
    else this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.qps) / 1000);
  }

  /** Tokens available now (may be negative after reserve()). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  /** Callers waiting in take(). */
  waiting(): number {
    return this.waiters.length;
  }

  /** Takes a token if one is available now and nobody is waiting; never waits. */
  tryTake(): boolean {
    this.refill();
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /**
   * Reserves a token now and returns how long (ms) the caller must wait before using it (0 when one
   * was available). The bucket may go into debt; later callers wait for the debt to be paid.
   */
  reserve(): number {
    this.refill();
    if (this.unlimited) return 0;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.qps);
  }

  /** Resolves when the caller may make its request. */
  take(): Promise<void> {
    if (this.tryTake()) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.timer || this.waiters.length === 0) return;
    this.refill();
    const wait = this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.qps);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.refill();
      while (this.waiters.length > 0 && this.tokens >= 1) {
        this.tokens -= 1;
        this.waiters.shift()!();
      }
      this.schedule();
    }, wait);
  }
}
