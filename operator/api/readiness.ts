/**
 * Whether a node's fabric is ready *for its current plan*, judged from its NodeFabric alone. Pure.
 *
 * The agent's Ready condition describes the plan it last synced: its observedGeneration names that
 * spec's generation. When the controller changes the plan (a peer added, a block allocated), the
 * spec's generation moves on and the Ready written for the old plan says nothing about the new one —
 * a node that was Ready with one session planned is not known to be ready once two are planned, until
 * its agent has synced the new spec. Readers (the lab's waits, `kubectl fabric status`) must not take a
 * stale Ready for a current one. BGP sessions are not in the spec (each agent derives them from the
 * BGPPeers): a BGPPeer change moves no generation, and the sessions the node counts are the ones its
 * agent reports in status.sessions.
 */
export interface ReadinessInput {
  metadata: { generation?: number };
  status?:
    | {
        observedGeneration?: number;
        sessionsEstablished?: number;
        sessionsTotal?: number;
        conditions?: ReadonlyArray<{ type: string; status: string; observedGeneration?: number; reason?: string; message?: string }>;
      }
    | undefined;
}

export interface Readiness {
  ready: boolean;
  /** Why not, for an operator: empty when ready. */
  reason: string;
}

/** Why the agent's Ready says nothing about the current plan (it was written for an older generation), or null. */
export function staleReady(nf: ReadinessInput): string | null {
  const gen = nf.metadata.generation ?? 0;
  const ready = nf.status?.conditions?.find((c) => c.type === 'Ready');
  const seen = ready?.observedGeneration ?? nf.status?.observedGeneration;
  // No generation recorded at all (not written by podfabric's agent, which always stamps it): nothing to judge.
  return ready && seen !== undefined && seen < gen ? `the agent has not synced the current plan yet (its Ready is for generation ${seen}, the plan is at ${gen})` : null;
}

export function fabricReadiness(nf: ReadinessInput): Readiness {
  const ready = nf.status?.conditions?.find((c) => c.type === 'Ready');
  if (!ready) return { ready: false, reason: 'the agent has not reported yet' };
  const stale = staleReady(nf);
  if (stale) return { ready: false, reason: stale };
  if (ready.status !== 'True') return { ready: false, reason: ready.message ?? ready.reason ?? 'not ready' };
  const total = nf.status?.sessionsTotal ?? 0;
  const established = nf.status?.sessionsEstablished ?? 0;
  if (established < total) return { ready: false, reason: `${established}/${total} BGP sessions established` };
  return { ready: true, reason: '' };
}
