/**
 * One IPPool: keep the finalizer while blocks are in use (a deleting pool goes once none is), and
 * report usage, overlap and exhaustion in its status, with Events when a problem appears.
 */
import { API_PATH as API, type Condition } from '../api/common.js';
import { IPPool } from '../api/kinds.js';
import { finalizer } from '../kube/finalizer.js';
import { TerminalError, type ReconcileContext, type ReconcileResult } from '../kube/workqueue.js';
import { poolConditions } from './conditions.js';
import { poolRef, POOL_FINALIZER, type ControllerState, type RawFabric } from './state.js';

/** The pools (among `pools`) a NodeFabric's Allocated=False condition says the node waits on. */
export function poolsWaitedOn(f: RawFabric | undefined, pools: string[]): string[] {
  const c = (f?.status?.conditions as Condition[] | undefined)?.find((x) => x.type === 'Allocated');
  if (!c || c.status !== 'False') return [];
  const words = new Set(c.message.split(/[\s,();:]+/));
  return pools.filter((p) => words.has(p));
}

export class PoolReconciler {
  constructor(private readonly s: ControllerState) {}

  /** Nodes (still present) whose Allocated condition is False and names this pool. */
  nodesWaitingOn(pool: string): string[] {
    const out: string[] = [];
    for (const f of this.s.stores.fabrics.list()) {
      if (!this.s.stores.nodes.get(f.metadata.name!)) continue; // a deleted node waits for nothing
      if (poolsWaitedOn(f, [pool]).length) out.push(f.metadata.name!);
    }
    return out.sort();
  }

  async reconcile(name: string, _ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const s = this.s;
    const raw = s.stores.pools.get(name);
    if (!raw) return;
    const d = s.stores.pools.decoded(name);
    if (!d?.ok) {
      const message = d?.error ?? 'not decoded';
      await s.status.writeIfChanged(IPPool, raw, [{ type: 'Ready', status: 'False', reason: 'Invalid', message }], raw.metadata.generation as number);
      throw new TerminalError(`IPPool ${name}: ${message}`);
    }
    const pool = d.value;
    const stats = s.ipam.stats(name);
    const step = await finalizer(
      raw as typeof raw & { metadata: { finalizers?: string[]; deletionTimestamp?: string } },
      { rest: s.rest, collection: `${API}/ippools`, finalizer: POOL_FINALIZER },
      () => !stats || stats.allocated === 0,
      () => s.events.emit(poolRef(raw), 'Normal', 'Deleted', 'no blocks in use: deletion may proceed'),
    );
    if (step === 'released') return;
    if (stats) {
      s.metrics.poolTotal.set({ pool: name }, stats.total);
      s.metrics.poolAllocated.set({ pool: name }, stats.allocated);
      s.metrics.poolUtil.set({ pool: name }, stats.total ? stats.allocated / stats.total : 0);
    }
    const gen = pool.metadata.generation;
    const { conditions, extra } = poolConditions(
      { stats, deleting: !!pool.metadata.deletionTimestamp, disabled: pool.spec.disabled, waiting: stats ? this.nodesWaitingOn(name) : [] },
      gen,
    );
    const before = raw.status?.conditions as Condition[] | undefined;
    if (await s.status.writeIfChanged(IPPool, raw, conditions, gen, extra)) {
      for (const c of conditions) {
        const prev = before?.find((b) => b.type === c.type);
        const turnedOn = c.status === 'True' && prev?.status !== 'True';
        if (c.type === 'Overlapping' && turnedOn) s.events.emit(poolRef(raw), 'Warning', 'Overlapping', c.message);
        if (c.type === 'Exhausted' && turnedOn) s.events.emit(poolRef(raw), 'Warning', 'Exhausted', c.message);
        if (c.type === 'Ready' && c.reason === 'DeletionBlocked' && prev?.reason !== 'DeletionBlocked') s.events.emit(poolRef(raw), 'Warning', 'DeletionBlocked', c.message);
      }
    }
  }
}
