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

export class PeerReconciler {
  constructor(private readonly s: ControllerState) {}

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
    let written: boolean;
    try {
      written = await s.status.writeIfChanged(BGPPeer, raw, conds, gen, { observedGeneration: gen, nodesSelected: selected.length, nodesEstablished: established });
    } catch (e) {
      throw carryEnqueue(e, enqueue);
    }
    if (written) {
      const v = conds.find((c) => c.type === 'Valid')!;
      if (v.status === 'False' && before?.find((b) => b.type === 'Valid')?.reason !== v.reason) s.events.emit(peerRef(raw), 'Warning', v.reason, v.message);
      const c = conds.find((x) => x.type === 'Conflict');
      if (c?.status === 'True' && before?.find((b) => b.type === 'Conflict')?.status !== 'True') s.events.emit(peerRef(raw), 'Warning', 'DuplicateAddress', c.message);
    }
    return { enqueue, ...(verdict.invalid.some((i) => i.reason.startsWith('Secret')) ? { requeueAfterMs: SECRET_RECHECK_MS } : {}) };
  }
}
