/** Time behind an interface so queues, token buckets and leader election can be tested with a fake clock. */
export type Timer = { readonly id: number };

export interface Clock {
  /** Milliseconds (epoch for the real clock). */
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
    }, Math.max(0, ms));
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

/** Lets every pending promise continuation run (one macrotask turn drains the microtask queue). */
export function flushPromises(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/**
 * Manual clock for unit tests. advance(ms) fires the timers that fall due, in time order (ties in
 * creation order), each at its own instant; a timer set by a callback fires in the same advance()
 * when it falls due before the end.
 *
 * advanceAsync(ms) does the same but lets promise continuations run after every timer, so async
 * code (`await store.get()` after a sleep) sets its next timer at the right virtual instant.
 */
export class FakeClock implements Clock {
  private t: number;
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
  /** Steps the time to ms without firing timers (a wall-clock step, e.g. backwards). */
  setNow(ms: number): void {
    this.t = ms;
  }
  /** Number of timers not fired nor cleared yet. */
  pending(): number {
    return this.timers.size;
  }

  private nextDue(end: number): [number, { at: number; fn: () => void }] | undefined {
    let next: [number, { at: number; fn: () => void }] | undefined;
    for (const e of this.timers) {
      if (e[1].at > end) continue;
      if (!next || e[1].at < next[1].at || (e[1].at === next[1].at && e[0] < next[0])) next = e;
    }
    return next;
  }

  advance(ms: number): void {
    const end = this.t + Math.max(0, ms);
    for (let next = this.nextDue(end); next; next = this.nextDue(end)) {
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }

  async advanceAsync(ms: number): Promise<void> {
    const end = this.t + Math.max(0, ms);
    await flushPromises();
    for (let next = this.nextDue(end); next; next = this.nextDue(end)) {
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await flushPromises();
    }
    this.t = end;
    await flushPromises();
  }
}
