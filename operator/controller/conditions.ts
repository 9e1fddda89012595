/**
 * The controller's status conditions, as pure functions of what each reconciler decided (the agent's
 * are in agent/status.ts). Reconcilers gather, call these, and hand the result to the status writer.
 */
import type { ConditionInput } from '../api/conditions.js';
import type { Decision, PoolStats } from '../ipam/ipam.js';
import type { PeerVerdict } from '../plan/peers.js';
import type { PlanResult } from '../plan/plan.js';

/** FabricConfig "default": Ready when it parses; else Invalid and the previous configuration stays. */
export function configConditions(error: string | undefined): ConditionInput[] {
  return [
    error === undefined
      ? { type: 'Ready', status: 'True', reason: 'Applied', message: 'the controller uses this configuration' }
      : { type: 'Ready', status: 'False', reason: 'Invalid', message: `not applied, the previous configuration stays: ${error}` },
  ];
}

/** Problems that leave a node short of a block (events and pool re-checks follow them). */
export function blockingProblems(decision: Decision): Decision['problems'] {
  return decision.problems.filter((p) => p.reason === 'PoolExhausted' || p.reason === 'PoolOverlapping' || p.reason === 'NoMatchingPool');
}

/** Why a pre-set Node.spec.podCIDRs entry is not used (outside every pool, or held by another node). */
export function podCIDRProblems(decision: Decision): Decision['problems'] {
  return decision.problems.filter((p) => p.reason === 'PodCIDRConflict' || p.reason === 'PodCIDROutsidePools');
}

/** The controller-owned NodeFabric conditions: Allocated, PeersResolved and PodCIDRsHonoured. */
export function nodeConditions(decision: Decision, plan: PlanResult): ConditionInput[] {
  const conds: ConditionInput[] = [];
  const blocking = blockingProblems(decision);
  if (decision.allocations.length > 0) {
    const msg = decision.allocations.map((a) => `${a.cidr} from ${a.pool}`).join(', ');
    const extra = decision.problems.map((p) => p.message).join('; ');
    conds.push({ type: 'Allocated', status: 'True', reason: blocking.length ? 'Partial' : 'Allocated', message: extra ? `${msg}; ${extra}` : msg });
  } else {
    const p = blocking[0] ?? decision.problems[0];
    conds.push({ type: 'Allocated', status: 'False', reason: p?.reason ?? 'NoMatchingPool', message: p?.message ?? 'no IPPool selects this node' });
  }
  const peerIssues = [...plan.conflicts.map((c) => `BGPPeer ${c.peer} duplicates address ${c.address} of ${c.winner}, which is used`), ...plan.problems.map((p) => p.message)];
  conds.push(
    peerIssues.length
      ? { type: 'PeersResolved', status: 'False', reason: plan.conflicts.length ? 'PeerConflict' : plan.problems[0]!.reason, message: peerIssues.join('; ') }
      : { type: 'PeersResolved', status: 'True', reason: 'Resolved', message: `${plan.peers.length} peer(s)${plan.spec.routing?.segments?.length ? `; host routes from L2Segment ${plan.spec.routing.segments.join(', ')}` : ''}` },
  );
  // PeersResolved is computed from the same rule the agents use (plan/peers.ts) and only written while
  // False (nodeConditionsToWrite): the normal case of a BGPPeer change writes no NodeFabric status.
  // Always written (server-side apply drops a condition its manager stops sending), so it lasts as long as the conflict.
  const unhonoured = podCIDRProblems(decision);
  conds.push(
    unhonoured.length
      ? { type: 'PodCIDRsHonoured', status: 'False', reason: unhonoured[0]!.reason, message: unhonoured.map((p) => p.message).join('; ') }
      : { type: 'PodCIDRsHonoured', status: 'True', reason: 'Honoured', message: 'Node.spec.podCIDRs, if set, are the blocks this node routes' },
  );
  return conds;
}

/** The NodeFabric condition types the controller owns. */
export const NODE_CONDITION_TYPES = ['Allocated', 'PeersResolved', 'PodCIDRsHonoured'] as const;
const FINE: Record<string, string> = { Allocated: 'Allocated', PeersResolved: 'Resolved', PodCIDRsHonoured: 'Honoured' };

/** Whether a controller condition (written or not) says all is well; an absent one does. */
export function nodeConditionFine(c: { status: string; reason: string } | undefined, type: string): boolean {
  return !c || (c.status === 'True' && c.reason === FINE[type]);
}

/**
 * The controller conditions a NodeFabric carries: only those that say something is wrong. A healthy
 * node's record has none of them (absent means fine), so the happy path costs no status write: the
 * NodeFabric is created with its spec (a create drops status) and the agent writes the first status.
 */
export function nodeConditionsToWrite(conds: ConditionInput[]): ConditionInput[] {
  return conds.filter((c) => !nodeConditionFine(c, c.type));
}

export interface PoolFacts {
  stats: PoolStats | null;
  deleting: boolean;
  disabled: boolean;
  /** Nodes whose Allocated condition waits on this pool. */
  waiting: string[];
}

/** IPPool conditions (Overlapping, Exhausted, Ready) and the status counters beside them. */
export function poolConditions(f: PoolFacts, generation: number | undefined): { conditions: ConditionInput[]; extra: Record<string, unknown> } {
  const { stats } = f;
  if (!stats) {
    return { conditions: [{ type: 'Ready', status: 'False', reason: 'Invalid', message: 'blockSize does not fit the pool CIDR' }], extra: { observedGeneration: generation } };
  }
  const conds: ConditionInput[] = [];
  const waiting = f.waiting.length ? `; nodes waiting: ${f.waiting.slice(0, 10).join(', ')}` : '';
  conds.push(
    stats.overlaps.length
      ? { type: 'Overlapping', status: 'True', reason: 'Overlapping', message: `overlaps IPPool(s) ${stats.overlaps.join(', ')}: no new blocks come from the shared range` }
      : { type: 'Overlapping', status: 'False', reason: 'NoOverlap', message: 'no other pool overlaps this one' },
  );
  conds.push(
    stats.free === 0
      ? stats.shadowed > 0
        ? { type: 'Exhausted', status: 'True', reason: 'ShadowedByPool', message: `no free block outside the range shared with IPPool(s) ${stats.overlaps.join(', ')} (${stats.shadowed} block(s) there stay unused)${waiting}` }
        : { type: 'Exhausted', status: 'True', reason: 'NoFreeBlocks', message: `all usable blocks are allocated${waiting}` }
      : { type: 'Exhausted', status: 'False', reason: 'FreeBlocks', message: `${stats.free} block(s) free` },
  );
  if (f.deleting) {
    conds.push({
      type: 'Ready',
      status: 'False',
      reason: 'DeletionBlocked',
      message: `deletion waits until its ${stats.allocated} block(s) are released (held by ${stats.holders.join(', ')}${stats.allocated > stats.holders.length ? ', …' : ''}); delete or move those nodes`,
    });
  } else if (f.disabled) {
    conds.push({ type: 'Ready', status: 'False', reason: 'Disabled', message: `disabled: no new blocks; ${stats.allocated} existing block(s) kept` });
  } else {
    conds.push({ type: 'Ready', status: 'True', reason: 'Serving', message: `${stats.allocated}/${stats.total} blocks allocated` });
  }
  return { conditions: conds, extra: { blocksTotal: stats.total, blocksAllocated: stats.allocated, blocksFree: stats.free, observedGeneration: generation } };
}

export interface PeerFacts {
  verdict: PeerVerdict;
  selected: number;
  established: number;
  /** Nodes on which another BGPPeer with the same address wins, sorted. */
  conflicts: string[];
}

/** BGPPeer conditions: Valid, Conflict (when valid) and Ready. */
export function peerConditions(f: PeerFacts): ConditionInput[] {
  const { verdict, selected, established, conflicts } = f;
  if (verdict.invalid.length) {
    const msg = verdict.invalid.map((i) => i.message).join('; ');
    return [
      { type: 'Valid', status: 'False', reason: verdict.invalid[0]!.reason, message: msg },
      { type: 'Ready', status: 'False', reason: verdict.invalid[0]!.reason, message: `not configured on any node: ${msg}` },
    ];
  }
  return [
    { type: 'Valid', status: 'True', reason: 'Valid', message: 'address, ASN and password reference are usable' },
    conflicts.length
      ? { type: 'Conflict', status: 'True', reason: 'DuplicateAddress', message: `another BGPPeer with the same address wins on ${conflicts.length} node(s): ${conflicts.slice(0, 10).join(', ')}` }
      : { type: 'Conflict', status: 'False', reason: 'NoConflict', message: 'no other BGPPeer uses this address on the same nodes' },
    selected === 0
      ? { type: 'Ready', status: 'False', reason: 'NoNodes', message: 'no node is selected' }
      : established === selected
        ? { type: 'Ready', status: 'True', reason: 'Established', message: `established on all ${selected} selected node(s)` }
        : { type: 'Ready', status: 'False', reason: 'NotEstablished', message: `established on ${established} of ${selected} selected node(s)` },
  ];
}
