/**
 * fabricReadiness: a node is ready for its *current* plan only. The dual-stack lab race (#16): the lab
 * took a Ready written for an older plan (one session planned) for a Ready of the current plan (two
 * sessions planned), and its tests then found a planned session down. The ordering is forced here.
 */
import { describe, expect, it } from 'vitest';
import { fabricReadiness, type ReadinessInput } from '../../operator/api/readiness.js';

const ready = (gen: number, status = 'True') => ({ type: 'Ready', status, observedGeneration: gen, reason: status === 'True' ? 'Ready' : 'SessionsDown', message: status === 'True' ? 'ok' : '1/2 sessions established' });

describe('fabricReadiness', () => {
  const cases: Array<[string, ReadinessInput, boolean, RegExp | '']> = [
    ['no status yet', { metadata: { generation: 1 } }, false, /not reported/],
    [
      'Ready for the current plan, every session up',
      { metadata: { generation: 2 }, status: { observedGeneration: 2, sessionsEstablished: 2, sessionsTotal: 2, conditions: [ready(2)] } },
      true,
      '',
    ],
    [
      // The forced ordering: agent reports Ready for generation 1 (one block, one session up); then the
      // controller changes the plan (generation 2) before the agent has synced it.
      'Ready written for an older plan while the plan has moved on',
      { metadata: { generation: 2 }, status: { observedGeneration: 1, sessionsEstablished: 1, sessionsTotal: 1, conditions: [ready(1)] } },
      false,
      /generation 1, the plan is at 2/,
    ],
    [
      'Ready False for the current plan',
      { metadata: { generation: 3 }, status: { sessionsEstablished: 1, sessionsTotal: 2, conditions: [ready(3, 'False')] } },
      false,
      /1\/2 sessions/,
    ],
    [
      'Ready True but fewer sessions established than the agent has (inconsistent status)',
      { metadata: { generation: 3 }, status: { sessionsEstablished: 1, sessionsTotal: 2, conditions: [ready(3)] } },
      false,
      /1\/2 BGP sessions established/,
    ],
    [
      'condition without observedGeneration falls back to status.observedGeneration',
      { metadata: { generation: 4 }, status: { observedGeneration: 3, conditions: [{ type: 'Ready', status: 'True' }] } },
      false,
      /generation 3/,
    ],
    [
      'no generation recorded anywhere: Ready is taken as it is',
      { metadata: { generation: 4 }, status: { conditions: [{ type: 'Ready', status: 'True' }] } },
      true,
      '',
    ],
  ];
  for (const [name, nf, want, why] of cases) {
    it(name, () => {
      const r = fabricReadiness(nf);
      expect(r.ready).toBe(want);
      if (why) expect(r.reason).toMatch(why);
      else expect(r.reason).toBe('');
    });
  }
});
