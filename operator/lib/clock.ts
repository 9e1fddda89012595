/** Time behind an interface so queues, backoff and leader election can be tested with a fake clock. */
export type Timer = { id: number };

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(t: Timer): void;
}

class RealClock implements Clock {
  private timers = new Map<number, NodeJS.Timeout>();
  private seq = 0;
  now(): number {
    return Date.now();
  }
  setTimeout(fn: () => void, ms: number): Timer {
    const id = ++this.seq;
    const t = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.set(id, t);
    return { id };
  }
  clearTimeout(t: Timer): void {
    const h = this.timers.get(t.id);
    if (h) clearTimeout(h);
    this.timers.delete(t.id);
  }
}

export const realClock: Clock = new RealClock();

/** Manual clock: advance(ms) fires due timers in time order. */
export class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): Timer {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { id };
  }
  clearTimeout(t: Timer): void {
    this.timers.delete(t.id);
  }
  pending(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0]))) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}
