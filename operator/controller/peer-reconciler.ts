/**
 * One BGPPeer: judge it (address, ASN, password Secret; pure validatePeer), remember the verdict for the
 * node plans, and report validity, address conflicts and how many selected nodes have it Established.
 */
import type { Condition } from '../api/common.js';
import { BGPPeer } from '../api/kinds.js';
import { isNotFound } from '../kube/rest.js';
import { carryEnqueue, type ReconcileContext, type ReconcileResult } from '../kube/workqueue.js';
import { validatePeer, type PeerVerdict } from '../plan/peers.js';
import { stableStringify } from '../lib/stable.js';
import { peerConditions } from './conditions.js';
import { peerRef, type ControllerState } from './state.js';

/** Secrets are not watched by the controller: an invalid Secret reference is looked at again after this. */
export const SECRET_RECHECK_MS = 15_000;

/**
 * A BGPPeer status change that only moves its counts (nodesSelected, nodesEstablished, and the Ready
 * message quoting them) is written at most this often per peer; a changed condition status or reason, or
 * a new generation, is written at once. Every agent watches every BGPPeer, so each write reaches every
 * node: while a 1,000-node cluster boots, writing each session's arrival sent every agent 61 BGPPeer
 * events (bench scale), and that grows with nodes².
 */
export const PEER_COUNTS_INTERVAL_MS = 30_000;

/** The part of a peer's status that is written at once when it changes: generation and each condition's status and reason. */
export function peerStatusKey(observedGeneration: number | undefined, conds: Array<{ type: string; status: string; reason: string }>): string {
  return stableStringify([observedGeneration ?? null, conds.map((c) => [c.type, c.status, c.reason]).sort()]);
}

/**
 * When to write a peer's status that differs from what the object shows (pure): now when `significant`
 * or no counts write happened within `intervalMs`; otherwise once the interval since the last write is over.
 */
export function peerStatusDue(f: { significant: boolean; lastWriteMs: number | undefined; nowMs: number; intervalMs: number }): { now: true } | { now: false; afterMs: number } {
  if (f.significant || f.lastWriteMs === undefined || f.nowMs - f.lastWriteMs >= f.intervalMs) return { now: true };
  return { now: false, afterMs: f.lastWriteMs + f.intervalMs - f.nowMs };
}

export class PeerReconciler {
  /** When this controller last wrote each peer's status (ms, `now`): counts-only changes wait for PEER_COUNTS_INTERVAL_MS. */
  private readonly lastWrite = new Map<string, number>();
  constructor(
    private readonly s: ControllerState,
    private readonly now: () => number = () => performance.now(),
    private readonly countsIntervalMs = PEER_COUNTS_INTERVAL_MS,
  ) {}

  private async secretState(ref: { namespace: string; name: string; key: string }): Promise<'ok' | 'missing' | 'no-key'> {
    try {
      const sec = await this.s.rest.get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${ref.namespace}/secrets/${ref.name}`);
      return sec.data && sec.data[ref.key] !== undefined ? 'ok' : 'no-key';
    } catch (e) {
      if (isNotFound(e)) return 'missing';
      throw e;
    }
  }

  /** Re-judges the peer and records the verdict; `changed` when node plans must be redone. */
  async validity(name: string): Promise<{ verdict: PeerVerdict | null; changed: boolean }> {
    const s = this.s;
    const raw = s.stores.peers.get(name);
    if (!raw) {
      s.peerVerdicts.delete(name);
      return { verdict: null, changed: false };
    }
    let verdict: PeerVerdict;
    const d = s.stores.peers.decoded(name);
    if (!d?.ok) {
      verdict = { invalid: [{ reason: 'Invalid', message: d?.error ?? 'not decoded' }] };
    } else {
      try {
        const p = d.value;
        const secret = p.spec.passwordSecretRef ? await this.secretState(p.spec.passwordSecretRef) : 'none';
        const poolCidrs = s.poolInfos().map((x) => ({ pool: x.name, cidr: x.cidr }));
        verdict = validatePeer({ name, spec: p.spec, creationTimestamp: p.metadata.creationTimestamp ?? '' }, { poolCidrs, secret });
      } catch (e) {
        verdict = { invalid: [{ reason: 'Invalid', message: (e as Error).message }] };
      }
    }
    const before = s.peerVerdicts.get(name);
    s.peerVerdicts.set(name, verdict);
    return { verdict, changed: stableStringify(before) !== stableStringify(verdict) };
  }

  async reconcile(name: string, _ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const s = this.s;
    const { verdict, changed } = await this.validity(name);
    const enqueue = s.ready && changed ? s.nodeKeys() : [];
    const raw = s.stores.peers.get(name);
    if (!raw || !verdict) {
      s.peerIndex.forgetPeer(name);
      this.lastWrite.delete(name);
      return { enqueue };
    }
    const selected = s.peerIndex.selectedBy(name);
    let established = 0;
    const address = String((raw.spec as { peerAddress?: string })?.peerAddress ?? '');
    for (const n of selected) {
      const st = (s.stores.fabrics.get(n)?.status?.sessions ?? []).find((x) => x.name === name || x.address === address);
      if (st?.state === 'Established') established++;
    }
    const gen = raw.metadata.generation as number | undefined;
    const conds = peerConditions({ verdict, selected: selected.length, established, conflicts: s.peerIndex.conflictsOf(name) });
    const before = raw.status?.conditions as Condition[] | undefined;
    const shown = raw.status as { observedGeneration?: number } | undefined;
    const extra = { observedGeneration: gen, nodesSelected: selected.length, nodesEstablished: established };
    const due = !s.status.differs(raw, conds, gen, extra) ? ({ now: true } as const) : peerStatusDue({
      significant: !shown || peerStatusKey(shown.observedGeneration, before ?? []) !== peerStatusKey(gen, conds),
      lastWriteMs: this.lastWrite.get(name),
      nowMs: this.now(),
      intervalMs: this.countsIntervalMs,
    });
    const secretRecheck = verdict.invalid.some((i) => i.reason.startsWith('Secret')) ? SECRET_RECHECK_MS : undefined;
    let written = false;
    try {
      if (due.now) written = await s.status.writeIfChanged(BGPPeer, raw, conds, gen, extra);
    } catch (e) {
      throw carryEnqueue(e, enqueue);
    }
    if (written) this.lastWrite.set(name, this.now());
    if (!due.now) {
      // Only the counts moved, and they were written less than the interval ago: written once it is over.
      const afterMs = Math.min(due.afterMs, secretRecheck ?? Infinity);
      return { enqueue, requeueAfterMs: Math.ceil(afterMs) };
    }
    if (written) {
      const v = conds.find((c) => c.type === 'Valid')!;
      if (v.status === 'False' && before?.find((b) => b.type === 'Valid')?.reason !== v.reason) s.events.emit(peerRef(raw), 'Warning', v.reason, v.message);
      const c = conds.find((x) => x.type === 'Conflict');
      if (c?.status === 'True' && before?.find((b) => b.type === 'Conflict')?.status !== 'True') s.events.emit(peerRef(raw), 'Warning', 'DuplicateAddress', c.message);
    }
    return { enqueue, ...(secretRecheck ? { requeueAfterMs: secretRecheck } : {}) };
  }
}
