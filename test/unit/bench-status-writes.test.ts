import { describe, expect, it } from 'vitest';
import { agentStatus, RACK_ROUTES } from '../../bench/status-writes.js';
import { fabric } from '../../bench/ipam-writes.js';
import { nodeFabricStatus } from '../../operator/api/nodefabric.js';

// The status-writes benchmark must send what an agent sends: a status the schema accepts, only the
// agent's condition types, and a real change every round (a session comes or goes).
describe('status-writes benchmark body', () => {
  const obj = () => {
    const f = fabric('t-00001', 1);
    return { ...f, metadata: { ...f.metadata, generation: 3 }, status: { conditions: [{ type: 'Allocated', status: 'False' as const, reason: 'NoMatchingPool', message: 'x', lastTransitionTime: '2026-12-05T00:00:00Z', observedGeneration: 3 }] } };
  };
  const now = new Date('2026-12-05T08:00:00Z');

  it('accepted by the NodeFabric status schema, the rack\'s routes all installed', () => {
    const s = agentStatus(obj(), 0, now);
    expect(nodeFabricStatus.safeParse(s).success).toBe(true);
    expect(s).toMatchObject({ observedGeneration: 3, routesInstalled: RACK_ROUTES, sessionsEstablished: 2, lastSyncTime: '2026-12-05T08:00:00Z' });
    expect(s).not.toHaveProperty('routeProblems');
  });

  it('the object is the NodeFabric as the controller writes it now: its segment named, no host routes in the spec', () => {
    const f = fabric('t-00001', 1);
    expect(f.spec.routing).toEqual({ l2Segment: 'subnet:172.16.0.0/16', segments: [expect.stringMatching(/^v4-subnet-172-16-0-0-16-[0-9a-f]{8}$/)] });
    expect(f.spec).not.toHaveProperty('directRoutes');
    expect(fabric('t-00001', 1, true).spec.routing.segments).not.toEqual(f.spec.routing.segments);
  });

  it("carries only the agent's condition types (never the controller's Allocated), and alternates 2 and 1 sessions", () => {
    const even = agentStatus(obj(), 2, now);
    const odd = agentStatus(obj(), 3, now);
    const types = (s: Record<string, unknown>) => (s.conditions as Array<{ type: string }>).map((c) => c.type);
    expect(types(even).sort()).toEqual(['BGPReady', 'CNIReady', 'Ready', 'RoutesReady']);
    expect(types(even)).not.toContain('Allocated');
    expect([even.sessionsTotal, odd.sessionsTotal]).toEqual([2, 1]);
    expect((even.conditions as Array<{ message: string }>)[0]!.message).not.toBe((odd.conditions as Array<{ message: string }>)[0]!.message);
  });
});
