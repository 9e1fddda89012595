/**
 * natOutgoing on this node (issue #14, README "Pods reaching the outside: natOutgoing"): the agent
 * renders the table `inet podfabric-nat` from the IPPools (natOutgoing), the Service ranges and the
 * LoadBalancerPools (services/nat.ts, pure) and keeps the kernel equal to it:
 *
 *   - some pool has natOutgoing → one `nft -f` transaction that replaces only this table, written only
 *     when the rendered script differs from the one last committed (a resync with nothing new writes
 *     nothing);
 *   - no pool has it → no table: deleted once if present (natOutgoing turned off, also while the agent
 *     was down), otherwise nothing is written at all;
 *   - every DRIFT_CHECK_MS the kernel is asked whether the committed table is still there (one
 *     `nft list table`); gone → written again, with a Warning Event.
 *
 * Nothing is decided before the IPPool and LoadBalancerPool caches have synced (a partial cache would
 * delete a table that should stay). An nft failure leaves the previous table in place (`nft -f` is
 * atomic) and is reported as NATReady=False + a Warning Event; the next sync retries.
 */
import { API_PATH as API } from '../api/common.js';
import type { ConditionInput } from '../api/conditions.js';
import type { FabricConfigSpec } from '../api/fabricconfig.js';
import { IPPool, parseObject, type IPPoolObj, type LoadBalancerPoolObj } from '../api/kinds.js';
import { Informer, type KObj } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import type { Clock, Timer } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { Counter, Gauge, type Registry } from '../lib/metrics.js';
import { stableStringify } from '../lib/stable.js';
import type { NftRunner } from '../nftables/applier.js';
import { planNat } from '../services/index.js';
import { NAT_TABLE, nftScript, type NatPlan } from '../services/nat.js';

export const DRIFT_CHECK_MS = 60_000;
export const RETRY_MS = 5_000;

/** What this applier last committed: not known yet (start), no table, or this script. */
export type NatCommitted = { state: 'unknown' } | { state: 'absent' } | { state: 'applied'; script: string };

export type NatAction = { kind: 'apply'; script: string } | { kind: 'delete-if-present' } | { kind: 'delete' } | { kind: 'none' };

/** What to do to the kernel (pure). `tableGone`: a drift check found the committed table missing. */
export function natAction(want: NatPlan, committed: NatCommitted, tableGone = false): NatAction {
  if (want.enabled) {
    const script = nftScript(want.table);
    return committed.state === 'applied' && committed.script === script && !tableGone ? { kind: 'none' } : { kind: 'apply', script };
  }
  if (committed.state === 'unknown') return { kind: 'delete-if-present' }; // a read first: nothing written when there is none
  if (committed.state === 'applied') return { kind: 'delete' };
  return { kind: 'none' };
}

/** The CIDRs of one kind of set in the rendered table (nat-sources-* or cluster-dests-*), both families. */
const setElements = (want: NatPlan, prefix: string) => want.table.sets.filter((x) => x.name.startsWith(prefix)).flatMap((x) => x.elements);

/** NATReady (pure). */
export function natCondition(s: { synced: boolean; error?: string; want?: NatPlan }): ConditionInput {
  if (!s.synced) return { type: 'NATReady', status: 'False', reason: 'CachesNotSynced', message: 'waiting for the IPPool and LoadBalancerPool caches; table inet podfabric-nat not touched yet' };
  if (s.error) return { type: 'NATReady', status: 'False', reason: 'ApplyFailed', message: `nftables: ${s.error}`.slice(0, 1024) };
  if (!s.want?.enabled) return { type: 'NATReady', status: 'True', reason: 'NoNatOutgoingPool', message: 'no IPPool has natOutgoing: pods reach the outside with their own addresses (no table inet podfabric-nat)' };
  const sources = setElements(s.want, 'nat-sources-').join(', ');
  return { type: 'NATReady', status: 'True', reason: 'Programmed', message: `masquerading ${sources} to the node's address for destinations outside ${setElements(s.want, 'cluster-dests-').join(', ')} (table inet ${NAT_TABLE})`.slice(0, 1024) };
}

export function natMetrics(r: Registry) {
  return {
    sources: new Gauge({ name: 'podfabric_agent_nat_outgoing_sources', help: 'Pod CIDRs masqueraded by table inet podfabric-nat (0: no table)', registers: [r] }),
    writes: new Counter({ name: 'podfabric_agent_nat_table_writes_total', help: 'nft transactions on table inet podfabric-nat', labelNames: ['op', 'result'], registers: [r] }),
  };
}

/** What the sync asks (a fake in unit tests). */
export interface NatSource {
  sync(config: FabricConfigSpec, log: Logger): Promise<ConditionInput>;
}

/**
 * The agent's IPPool cache. Only cidr and natOutgoing matter (the two readers: natOutgoing, and the
 * peers' AddressInPodCIDR check): capacity updates of the pool status wake nobody.
 */
export function ipPoolInformer(rest: KubeRest, kick: () => void): Informer<IPPoolObj & KObj, IPPoolObj> {
  const key = (p: KObj) => {
    const spec = (p as { spec?: { cidr?: unknown; natOutgoing?: unknown } }).spec;
    return stableStringify([spec?.cidr, spec?.natOutgoing]);
  };
  return new Informer(rest, `${API}/ippools`, { onAdd: () => kick(), onUpdate: (o, n) => key(o) !== key(n) && kick(), onDelete: () => kick() }, { decode: (o) => parseObject(IPPool, o) });
}

export class NatOutgoing implements NatSource {
  private readonly pools: Informer<IPPoolObj & KObj, IPPoolObj>;
  private committed: NatCommitted = { state: 'unknown' };
  private checkedAt = 0;
  private error: string | undefined;
  private retry: Timer | undefined;
  private readonly metrics: ReturnType<typeof natMetrics> | undefined;

  constructor(
    private readonly d: {
      nft: NftRunner;
      /** The agent's one IPPool cache (also read for the peers' validity); its changes kick the agent. */
      pools: Informer<IPPoolObj & KObj, IPPoolObj>;
      /** The LoadBalancerPools (the Service routes' cache); undefined until it has synced. */
      lbPools: () => LoadBalancerPoolObj[] | undefined;
      kick: () => void;
      clock: Clock;
      event: (type: 'Normal' | 'Warning', reason: string, message: string) => void;
      registry?: Registry;
    },
  ) {
    this.metrics = d.registry ? natMetrics(d.registry) : undefined;
    this.pools = d.pools;
  }

  stop(): void {
    if (this.retry) this.d.clock.clearTimeout(this.retry);
  }

  async sync(config: FabricConfigSpec, log: Logger): Promise<ConditionInput> {
    const lbPools = this.d.lbPools();
    if (!this.pools.hasSynced() || !lbPools) return natCondition({ synced: false });
    const want = planNat({ ipPools: this.pools.listDecoded(), config: config.services, lbPools });
    let op = 'check';
    try {
      const now = this.d.clock.now();
      let gone = false;
      if (this.committed.state === 'applied' && now - this.checkedAt >= DRIFT_CHECK_MS) {
        gone = (await this.d.nft.list(NAT_TABLE)) === null;
        this.checkedAt = now;
        if (gone) this.d.event('Warning', 'NATTableDrift', `table inet ${NAT_TABLE} was removed behind the agent's back; writing it again`);
      }
      const action = natAction(want, this.committed, gone);
      op = action.kind === 'apply' ? 'apply' : 'delete';
      if (action.kind === 'apply') {
        await this.d.nft.apply(action.script);
        this.metrics?.writes.inc({ op, result: 'ok' });
        this.committed = { state: 'applied', script: action.script };
        this.checkedAt = now;
        const c = natCondition({ synced: true, want });
        log.info({ table: NAT_TABLE }, 'natOutgoing table programmed');
        this.d.event('Normal', 'NATProgrammed', c.message);
      } else if (action.kind === 'delete' || action.kind === 'delete-if-present') {
        const present = action.kind === 'delete' || (await this.d.nft.list(NAT_TABLE)) !== null;
        if (present) {
          await this.d.nft.apply(`table inet ${NAT_TABLE}\ndelete table inet ${NAT_TABLE}\n`);
          this.metrics?.writes.inc({ op, result: 'ok' });
          log.info({ table: NAT_TABLE }, 'natOutgoing table removed');
          this.d.event('Normal', 'NATRemoved', `no IPPool has natOutgoing any more: table inet ${NAT_TABLE} removed, pods reach the outside with their own addresses`);
        }
        this.committed = { state: 'absent' };
      }
      this.metrics?.sources.set(this.committed.state === 'applied' ? setElements(want, 'nat-sources-').length : 0);
      if (this.error) this.d.event('Normal', 'NATApplied', `table inet ${NAT_TABLE} in line with the IPPools again`);
      this.error = undefined;
    } catch (e) {
      this.metrics?.writes.inc({ op, result: 'error' });
      const msg = (e as Error).message;
      if (msg !== this.error) this.d.event('Warning', 'NATApplyFailed', `table inet ${NAT_TABLE} not changed (the previous one stays in place): ${msg}`.slice(0, 1000));
      this.error = msg;
      this.committed = { state: 'unknown' };
      log.warn({ table: NAT_TABLE, err: msg }, 'natOutgoing table not applied; retrying');
      this.retry ??= this.d.clock.setTimeout(() => {
        this.retry = undefined;
        this.d.kick();
      }, RETRY_MS);
    }
    return natCondition({ synced: true, want, ...(this.error ? { error: this.error } : {}) });
  }
}
