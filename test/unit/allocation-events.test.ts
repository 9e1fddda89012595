/**
 * AllocationEvents: per-node `Allocated` Events while few, one summary per pool when a burst goes over
 * the budget (the Event writes at 5,000 nodes were a fifth of the controller's writes).
 */
import { describe, expect, it } from 'vitest';
import { AllocationEvents } from '../../operator/controller/allocation-events.js';
import { MemoryEventSink } from '../../operator/kube/events.js';

function rig(budget: number) {
  const events = new MemoryEventSink();
  const timers: Array<() => void> = [];
  const a = new AllocationEvents(events, (pool) => ({ apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', name: pool }), {
    perNodeBudget: budget,
    namesInSummary: 2,
    schedule: (fn) => {
      timers.push(fn);
      return () => timers.splice(timers.indexOf(fn), 1);
    },
  });
  const nf = (name: string) => ({ apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', name });
  return { events, timers, a, nf };
}

describe('AllocationEvents', () => {
  it.each([
    { what: 'within the budget: one Event per node, no summary', n: 2, perNode: 2, summary: undefined },
    { what: 'over the budget: the rest in one pool Event with the count', n: 5, perNode: 2, summary: /^allocated 3 more block\(s\) in 10 s .*: n2 10\.0\.2\.0\/24, n3 10\.0\.3\.0\/24, and 1 more$/ },
  ])('$what', ({ n, perNode, summary }) => {
    const r = rig(2);
    for (let i = 0; i < n; i++) r.a.allocated(r.nf(`n${i}`), 'v4', `10.0.${i}.0/24`);
    expect(r.events.events.map((e) => `${e.ref.kind} ${e.ref.name}`)).toEqual(Array.from({ length: perNode }, (_, i) => `NodeFabric n${i}`));
    expect(r.timers).toHaveLength(1);
    r.timers[0]!();
    const pool = r.events.events.filter((e) => e.ref.kind === 'IPPool');
    if (!summary) expect(pool).toEqual([]);
    else {
      expect(pool).toHaveLength(1);
      expect(pool[0]).toMatchObject({ type: 'Normal', reason: 'Allocated', ref: { name: 'v4' } });
      expect(pool[0]!.message).toMatch(summary);
    }
  });

  it('a new window after the flush gets its per-node budget back; pools are counted apart', () => {
    const r = rig(1);
    r.a.allocated(r.nf('a'), 'v4', '10.0.0.0/24');
    r.a.allocated(r.nf('b'), 'v6', 'fd00::/64');
    r.a.allocated(r.nf('c'), 'v4', '10.0.1.0/24');
    expect(r.events.events.map((e) => e.ref.name)).toEqual(['a', 'b']);
    r.a.flush();
    expect(r.timers).toHaveLength(0);
    expect(r.events.events.map((e) => e.ref.name)).toEqual(['a', 'b', 'v4']);
    r.a.allocated(r.nf('d'), 'v4', '10.0.2.0/24');
    expect(r.events.events.at(-1)!.ref.name).toBe('d');
  });
});
