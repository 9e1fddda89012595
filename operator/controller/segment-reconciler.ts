/**
 * One L2 segment key ("segment:<key>"): write the segment's L2Segment objects (one per family with a
 * route; plan/segment.ts decides what each holds) when they differ from what is stored, and delete the
 * ones the segment no longer has. Node reconciles enqueue their segments' keys (old and new) when a node
 * joins, leaves or changes its addresses or blocks. A change is written at once, unless the segment was
 * written less than SEGMENT_MIN_INTERVAL_MS ago: then once that interval is over, with every change
 * made meanwhile (a rack's members arriving together are a few writes, not one per member).
 * Only this reconciler writes L2Segments, always whole (kube/own-writes.ts writeWhole).
 */
import { API_PATH as API } from '../api/common.js';
import type { L2SegmentSpec } from '../api/segment.js';
import { isNotFound } from '../kube/rest.js';
import { OwnWrites, writeWhole } from '../kube/own-writes.js';
import type { ReconcileContext, ReconcileResult } from '../kube/workqueue.js';
import { stableStringify } from '../lib/stable.js';
import type { PlanNode } from '../plan/plan.js';
import { planSegment } from '../plan/segment.js';
import { FIELD_MANAGER, type ControllerState, type RawSegment } from './state.js';

const PATH = `${API}/l2segments`;
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'podfabric' };

export const segmentQueueKey = (key: string) => `segment:${key}`;

/** A segment's objects are written at most once per this interval (the first change at once). */
export const SEGMENT_MIN_INTERVAL_MS = 250;

export class SegmentReconciler {
  /** Objects this controller just wrote or deleted, until the cache shows it (as ControllerState.fabric). */
  private readonly written = new OwnWrites<RawSegment>();
  /** When each segment key was last written (monotonic ms), for SEGMENT_MIN_INTERVAL_MS. */
  private readonly lastWrite = new Map<string, number>();

  constructor(
    private readonly s: ControllerState,
    /** The plan's view of a member node (NodeReconciler.planNode with its claims), undefined if gone. */
    private readonly member: (name: string) => PlanNode | undefined,
    private readonly now: () => number = () => performance.now(),
  ) {}

  private current(name: string): RawSegment | undefined {
    return this.written.get(name, this.s.stores.segments.get(name));
  }

  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    const s = this.s;
    const members: PlanNode[] = [];
    for (const m of s.segments.membersOf(key)) {
      const p = this.member(m);
      if (p) members.push(p);
    }
    const wanted = new Set<string>();
    let deferMs = 0;
    let wroteNow = false;
    for (const family of [4, 6] as const) {
      const plan = planSegment(family, key, members, s.config);
      const cur = this.current(plan.name);
      if (!plan.spec) {
        if (cur && cur.spec?.key === key) await this.remove(cur, ctx);
        continue;
      }
      wanted.add(plan.name);
      if (cur && stableStringify(cur.spec) === stableStringify(plan.spec)) continue;
      const since = this.now() - (this.lastWrite.get(key) ?? -Infinity);
      if (since < SEGMENT_MIN_INTERVAL_MS) {
        deferMs = Math.max(deferMs, Math.ceil(SEGMENT_MIN_INTERVAL_MS - since));
        continue;
      }
      const wrote = await this.write(plan.name, plan.spec, cur);
      const ref = { apiVersion: 'podfabric.io/v1alpha1', kind: 'L2Segment', name: plan.name, ...(wrote.metadata.uid ? { uid: wrote.metadata.uid } : {}) };
      if (plan.problem && cur?.spec?.omitted !== plan.spec.omitted) s.events.emit(ref, 'Warning', plan.problem.reason, plan.problem.message);
      ctx.log.debug({ kind: 'L2Segment', name: plan.name, routes: plan.spec.routes.length }, cur ? 'segment routes changed' : 'segment created');
      wroteNow = true;
    }
    if (wroteNow) this.lastWrite.set(key, this.now());
    else if (!wanted.size) this.lastWrite.delete(key);
    // Objects of this key under another name (written by hand, or by an older naming): ours are only these.
    for (const o of s.stores.segments.list()) {
      if (o.spec?.key === key && !wanted.has(o.metadata.name!) && o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'podfabric' && this.current(o.metadata.name!)) await this.remove(o, ctx);
    }
    return deferMs ? { requeueAfterMs: deferMs } : {};
  }

  private async remove(o: RawSegment, ctx: ReconcileContext): Promise<void> {
    const name = o.metadata.name!;
    try {
      await this.s.rest.request('DELETE', `${PATH}/${name}`, { kind: 'DeleteOptions', apiVersion: 'v1', ...(o.metadata.uid ? { preconditions: { uid: o.metadata.uid } } : {}) });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    this.written.deleted(name);
    ctx.log.debug({ kind: 'L2Segment', name }, 'segment deleted: no routes left');
  }

  private async write(name: string, spec: L2SegmentSpec, known: RawSegment | undefined): Promise<RawSegment> {
    const out = await writeWhole<RawSegment>(this.s.rest, {
      collection: PATH,
      name,
      fieldManager: FIELD_MANAGER,
      known,
      body: (stored) => ({
        apiVersion: 'podfabric.io/v1alpha1',
        kind: 'L2Segment',
        metadata: stored ? { ...stored.metadata, labels: { ...stored.metadata.labels, ...MANAGED_BY } } : { name, labels: MANAGED_BY },
        spec,
      }),
    });
    this.written.wrote(name, out);
    return out;
  }
}
