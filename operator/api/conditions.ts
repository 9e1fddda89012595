import type { Condition } from './common.js';

export interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/**
 * metav1.Condition semantics: lastTransitionTime changes only when status changes; observedGeneration
 * is stamped on every condition. Conditions of other types are kept (they may belong to another writer).
 */
export function setConditions(existing: Condition[] | undefined, updates: ConditionInput[], generation: number | undefined, now: Date): Condition[] {
  const out = new Map<string, Condition>();
  for (const c of existing ?? []) out.set(c.type, c);
  for (const u of updates) {
    const prev = out.get(u.type);
    out.set(u.type, {
      type: u.type,
      status: u.status,
      reason: u.reason,
      message: u.message.slice(0, 32768),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime: prev && prev.status === u.status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    });
  }
  return [...out.values()].sort((a, b) => a.type.localeCompare(b.type));
}

/** Conditions equal ignoring lastTransitionTime (so an unchanged status is not rewritten). */
export function sameConditions(a: Condition[] | undefined, b: Condition[] | undefined): boolean {
  const strip = (cs: Condition[] | undefined) =>
    JSON.stringify((cs ?? []).map(({ lastTransitionTime: _t, ...rest }) => rest).sort((x, y) => x.type.localeCompare(y.type)));
  return strip(a) === strip(b);
}

export function findCondition(cs: Condition[] | undefined, type: string): Condition | undefined {
  return cs?.find((c) => c.type === type);
}
