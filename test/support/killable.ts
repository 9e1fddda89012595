/**
 * A leader elector "killed" the way a SIGKILL or a hung process kills it, from the outside: after
 * kill(), its Lease requests never answer (even one already in flight) and its timers never fire, so
 * it renews nothing, releases nothing and calls nothing back, and isLeader() keeps its last answer.
 * This replaces a test hook the elector used to carry in production code.
 */
import type { LeaseStore } from '../../operator/kube/lease-store.js';
import { realClock, type Clock } from '../../operator/lib/clock.js';

export function killable(store: LeaseStore, clock: Clock = realClock) {
  let dead = false;
  const never = () => new Promise<never>(() => {});
  const guard = async <T>(call: () => Promise<T>): Promise<T> => {
    if (dead) return never();
    try {
      const v = await call();
      return dead ? never() : v;
    } catch (e) {
      if (dead) return never();
      throw e;
    }
  };
  return {
    store: {
      ...(store.describe ? { describe: () => store.describe!() } : {}),
      get: () => guard(() => store.get()),
      create: (spec) => guard(() => store.create(spec)),
      update: (spec, rv) => guard(() => store.update(spec, rv)),
    } satisfies LeaseStore,
    clock: {
      now: () => clock.now(),
      setTimeout: (fn: () => void, ms: number) => clock.setTimeout(() => void (dead || fn()), ms),
      clearTimeout: (t) => clock.clearTimeout(t),
    } satisfies Clock,
    kill(): void {
      dead = true;
    },
    get dead(): boolean {
      return dead;
    },
  };
}
