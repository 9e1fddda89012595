import { describe, expect, it } from 'vitest';
import { agentStatus } from '../../bench/status-writes.js';
import { fabric } from '../../bench/ipam-writes.js';
import { nodeFabricStatus } from '../../operator/api/nodefabric.js';

// The status-writes benchmark must send what an agent sends: a status the schema accepts, only the
// agent's condition types, and a real change every round (a session comes or goes).
describe('status-writes benchmark body', () => {
  const obj = (k: number) => {
    const f = fabric('t-00001', 1, k);
    return { ...f, metadata: { ...f.metadata, generation: 3 }, status: { conditions: [{ type: 'Allocated', status: 'False' as const, reason: 'NoMatchingPool', message: 'x', lastTransitionTime: '2026-12-05T00:00:00Z', observedGeneration: 3 }] } };
  };
  const now = new Date('2026-12-05T08:00:00Z');

  it.each([0, 40])('with %i direct routes: accepted by the NodeFabric status schema, all routes installed', (k) => {
    const s = agentStatus(obj(k), 0, now);
    expect(nodeFabricStatus.safeParse(s).success).toBe(true);
    expect(s).toMatchObject({ observedGeneration: 3, routesInstalled: k, sessionsEstablished: 2, lastSyncTime: '2026-12-05T08:00:00Z' });
    expect(s).not.toHaveProperty('routeProblems');
  });

  it("carries only the agent's condition types (never the controller's Allocated), and alternates 2 and 1 sessions", () => {
    const even = agentStatus(obj(0), 2, now);
    const odd = agentStatus(obj(0), 3, now);
    const types = (s: Record<string, unknown>) => (s.conditions as Array<{ type: string }>).map((c) => c.type);
    expect(types(even).sort()).toEqual(['BGPReady', 'CNIReady', 'Ready', 'RoutesReady']);
    expect(types(even)).not.toContain('Allocated');
    expect([even.sessionsTotal, odd.sessionsTotal]).toEqual([2, 1]);
    expect((even.conditions as Array<{ message: string }>)[0]!.message).not.toBe((odd.conditions as Array<{ message: string }>)[0]!.message);
  });
});
