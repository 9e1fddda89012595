import { realClock, type Clock } from './clock.js';

/** Token bucket: `qps` tokens per second, up to `burst` saved. take() waits for a token (FIFO). */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private waiters: Array<() => void> = [];
  private timer: ReturnType<Clock['setTimeout']> | undefined;
  private readonly clock: Clock;
  readonly qps: number;
  readonly burst: number;

  constructor(opts: { qps: number; burst: number; clock?: Clock }) {
    if (!(opts.qps > 0) || !(opts.burst >= 1)) throw new Error('TokenBucket: qps must be > 0 and burst >= 1');
    this.qps = opts.qps;
    this.burst = opts.burst;
    this.clock = opts.clock ?? realClock;
    this.tokens = opts.burst;
    this.last = this.clock.now();
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.qps) / 1000);
    this.last = now;
  }

  /** Takes a token now if one is available (no waiting). */
  tryTake(): boolean {
    this.refill();
    if (this.waiters.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** How long until a token would be available, in ms (0 when one is). Reserves it. */
  reserve(): number {
    this.refill();
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.qps);
  }

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
      while (this.waiters.length && this.tokens >= 1) {
        this.tokens -= 1;
        this.waiters.shift()!();
      }
      this.schedule();
    }, wait);
  }
}
