/** FabricConfig "default": load it (keeping the previous one when it is invalid) and say so in its status. */
import { FabricConfig } from '../api/kinds.js';
import type { ReconcileContext, ReconcileResult } from '../kube/workqueue.js';
import { carryEnqueue } from '../kube/workqueue.js';
import { effectiveFabricConfig } from '../api/fabricconfig.js';
import { stableStringify } from '../lib/stable.js';
import type { Logger } from '../lib/log.js';
import { configConditions } from './conditions.js';
import { configRef, type ControllerState } from './state.js';

export class ConfigReconciler {
  /** The config changed and the nodes have not been re-enqueued yet (survives a failed status write). */
  private fanout = false;

  constructor(private readonly s: ControllerState) {}

  /** Loads "default" (decoded on arrival) into the shared state; true when the spec changed. */
  load(log: Logger): boolean {
    const { spec, error } = effectiveFabricConfig(this.s.stores.configs.decoded('default'), this.s.config);
    if (error) {
      log.warn({ kind: 'FabricConfig', name: 'default', err: error }, 'unreadable FabricConfig; keeping the previous one');
      return false;
    }
    const changed = stableStringify(spec) !== stableStringify(this.s.config);
    this.s.config = spec;
    return changed;
  }

  async reconcile(ctx: ReconcileContext): Promise<ReconcileResult> {
    if (this.load(ctx.log)) this.fanout = true;
    const enqueue = this.fanout ? this.s.nodeKeys() : [];
    try {
      const raw = this.s.stores.configs.get('default');
      if (raw) {
        const d = this.s.stores.configs.decoded('default');
        const conds = configConditions(d && !d.ok ? d.error : undefined);
        if (await this.s.status.writeIfChanged(FabricConfig, raw, conds, raw.metadata.generation as number | undefined)) {
          const c = conds[0]!;
          this.s.events.emit(configRef(raw), c.status === 'True' ? 'Normal' : 'Warning', c.reason, c.message);
        }
      }
    } catch (e) {
      throw carryEnqueue(e, enqueue);
    } finally {
      this.fanout = false;
    }
    return { enqueue };
  }
}
