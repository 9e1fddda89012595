/**
 * The Normal `Allocated` Events, rate-limited so a burst of new nodes does not cost one Event write per
 * node (an Event is an apiserver write like any other: at 5,000 nodes it was a fifth of them).
 *
 * Per pool, in each window (10 s from the first allocation of the window), the first `perNodeBudget` (3)
 * allocations get their own Event on their NodeFabric, as before (`kubectl describe nodefabric` tells a
 * lone new node's story); the rest are counted and, when the window ends, reported in ONE Event on the
 * IPPool stating how many and naming the first few. Like client-go's event spam filter: per-object detail
 * while it is cheap, a summary under load. Warning Events are not affected (they are not sent here).
 */
import type { EventSink, ObjectRef } from '../kube/events.js';

export interface AllocationEventOptions {
  windowMs?: number;
  perNodeBudget?: number;
  /** Nodes named in a summary Event. */
  namesInSummary?: number;
  /** Timer (tests pass a manual one); the returned function cancels it. */
  schedule?: (fn: () => void, ms: number) => () => void;
}

interface Window {
  perNode: number;
  summarised: Array<{ node: string; cidr: string }>;
}

const realTimer = (fn: () => void, ms: number) => {
  const t = setTimeout(fn, ms);
  t.unref?.();
  return () => clearTimeout(t);
};

export class AllocationEvents {
  private readonly windowMs: number;
  private readonly budget: number;
  private readonly names: number;
  private readonly schedule: NonNullable<AllocationEventOptions['schedule']>;
  private windows = new Map<string, Window>();
  private cancel: (() => void) | undefined;

  constructor(
    private readonly events: EventSink,
    private readonly poolRef: (pool: string) => ObjectRef,
    opts: AllocationEventOptions = {},
  ) {
    this.windowMs = opts.windowMs ?? 10_000;
    this.budget = opts.perNodeBudget ?? 3;
    this.names = opts.namesInSummary ?? 10;
    this.schedule = opts.schedule ?? realTimer;
  }

  /** A block was allocated to a node: an Event on its NodeFabric now, or a line in the pool's summary. */
  allocated(fabric: ObjectRef, pool: string, cidr: string): void {
    let w = this.windows.get(pool);
    if (!w) {
      w = { perNode: 0, summarised: [] };
      this.windows.set(pool, w);
    }
    this.cancel ??= this.schedule(() => this.flush(), this.windowMs);
    if (w.perNode < this.budget) {
      w.perNode++;
      this.events.emit(fabric, 'Normal', 'Allocated', `allocated ${cidr} from IPPool ${pool} (lowest free block)`);
      return;
    }
    w.summarised.push({ node: fabric.name, cidr });
  }

  /** Ends the window: one summary Event per pool that went over its per-node budget. */
  flush(): void {
    this.cancel?.();
    this.cancel = undefined;
    const windows = this.windows;
    this.windows = new Map();
    for (const [pool, w] of windows) {
      const n = w.summarised.length;
      if (n === 0) continue;
      const shown = w.summarised.slice(0, this.names).map((a) => `${a.node} ${a.cidr}`).join(', ');
      const more = n > this.names ? `, and ${n - this.names} more` : '';
      this.events.emit(
        this.poolRef(pool),
        'Normal',
        'Allocated',
        `allocated ${n} more block(s) in ${this.windowMs / 1000} s beyond ${this.budget} with their own Event on their NodeFabric: ${shown}${more}`,
      );
    }
  }
}
