/**
 * Drain of a cordoned node's Service routes (RFC 8326), as a pure function of (node state, since when,
 * clock) → phase and next wake-up:
 *
 *   uncordoned                      → Active   (routes as usual)
 *   cordoned, < withdrawDelay ago   → Draining (same routes + GRACEFUL_SHUTDOWN 65535:0: the ToRs
 *                                                lower their preference, traffic moves to other nodes)
 *   cordoned, ≥ withdrawDelay ago   → Drained  (Service routes withdrawn)
 *   drain disabled and cordoned     → Drained at once
 *
 * Uncordoning restores Active at once. Pod CIDR routes never pass through here. `since` is when the
 * agent first saw the node cordoned; the agent keeps it in NodeFabric status.services.drainingSince so
 * a restarted agent resumes the same drain instead of starting it over (or skipping it).
 */
export type DrainPhase = 'Active' | 'Draining' | 'Drained';

export interface DrainInput {
  unschedulable: boolean;
  /** ms epoch the node was first seen cordoned; undefined: not seen before (now). */
  cordonedSince?: number;
  now: number;
  drain: { enabled: boolean; withdrawDelaySeconds: number };
}

export interface DrainState {
  phase: DrainPhase;
  /** To persist (status.services.drainingSince) while cordoned; undefined once uncordoned. */
  cordonedSince?: number;
  /** ms epoch at which to evaluate again (the Draining → Drained step); undefined: no timer needed. */
  nextWakeAt?: number;
}

export function drainState(i: DrainInput): DrainState {
  if (!i.unschedulable) return { phase: 'Active' };
  const since = i.cordonedSince ?? i.now;
  if (!i.drain.enabled) return { phase: 'Drained', cordonedSince: since };
  const until = since + i.drain.withdrawDelaySeconds * 1000;
  // A clock stepped backwards leaves since in the future: still Draining, bounded by `until`.
  if (i.now < until) return { phase: 'Draining', cordonedSince: since, nextWakeAt: until };
  return { phase: 'Drained', cordonedSince: since };
}
