/**
 * What the agent runs per policy sync (I/O): apply the desired table in one transaction, then cut the
 * established flows it now denies. Errors from nft propagate (the applier then rewrites the whole table
 * next time); a conntrack failure is returned, never thrown, since the rules are already in place.
 */
import type { Ruleset } from '../policy/objects.js';
import { PolicyTableApplier, type NftRunner, type SyncResult } from './applier.js';
import { cutDeniedFlows, type ConntrackRunner, type CtFlow } from './conntrack.js';

export interface EnforceResult {
  sync: SyncResult;
  cut: CtFlow[];
  cutError?: string;
  /** Sync + cut. */
  ms: number;
}

export class PolicyEnforcer {
  /** The table's applier (one per table: a second one would diff against a state it did not write). */
  readonly applier: PolicyTableApplier;
  constructor(
    nft: NftRunner,
    private readonly conntrack: ConntrackRunner,
    /** The node's own addresses: flows from them are never cut (they never cross the forward hook). */
    private readonly nodeAddresses: () => string[],
  ) {
    this.applier = new PolicyTableApplier(nft);
  }

  async enforce(rs: Ruleset): Promise<EnforceResult> {
    const t0 = performance.now();
    const sync = await this.applier.sync(rs);
    // Nothing written: nothing tightened (the applied rules are the same as before).
    if (sync.statements === 0) return { sync, cut: [], ms: performance.now() - t0 };
    try {
      const cut = await cutDeniedFlows(this.conntrack, rs, this.nodeAddresses());
      return { sync, cut, ms: performance.now() - t0 };
    } catch (e) {
      return { sync, cut: [], cutError: (e as Error).message, ms: performance.now() - t0 };
    }
  }

  /** Only the nft transaction; the agent asks for the cut separately (`cut`), off its sync path. */
  commit(rs: Ruleset): Promise<SyncResult> {
    return this.applier.sync(rs);
  }

  /** Cuts the live flows that `current()` (read after listing: the newest committed ruleset) denies. */
  async cut(current: () => Ruleset): Promise<{ cut: CtFlow[]; error?: string; ms: number }> {
    const t0 = performance.now();
    try {
      return { cut: await cutDeniedFlows(this.conntrack, current, this.nodeAddresses()), ms: performance.now() - t0 };
    } catch (e) {
      return { cut: [], error: (e as Error).message, ms: performance.now() - t0 };
    }
  }

  /** Periodic check: on drift (reason returned), the next enforce rewrites the whole table. */
  checkDrift(): Promise<string | null> {
    return this.applier.checkDrift();
  }

  /** Forget the record: the next enforce rewrites the table whole. */
  reset(): void {
    this.applier.reset();
  }
}
