/**
 * The agent's natOutgoing: the pure decision (natAction, natCondition) as a table, and NatOutgoing
 * through its real IPPool watch on a fake apiserver with a fake nft: what is written to the kernel and
 * when (only on a change; nothing without a natOutgoing pool; the table deleted when turned off;
 * re-written when it vanished), and the NATReady condition the sync reports.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { API_PATH } from '../../operator/api/common.js';
import { fabricConfigSpec } from '../../operator/api/fabricconfig.js';
import { IPPool, parseObject, type LoadBalancerPoolObj } from '../../operator/api/kinds.js';
import { LoadBalancerPool } from '../../operator/api/services.js';
import { DRIFT_CHECK_MS, natAction, natCondition, ipPoolInformer, NatOutgoing, RETRY_MS, type NatCommitted } from '../../operator/agent/nat-apply.js';
import type { NftRunner } from '../../operator/nftables/applier.js';
import { FakeClock } from '../../operator/lib/clock.js';
import { log } from '../../operator/lib/log.js';
import { newRegistry } from '../../operator/lib/metrics.js';
import { planNat } from '../../operator/services/index.js';
import { nftScript } from '../../operator/services/nat.js';
import { FakeRest } from '../support/fakes.js';

const POOLS = `${API_PATH}/ippools`;
const pool = (name: string, cidr: string, natOutgoing?: boolean, status: Record<string, unknown> = {}) => ({ apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name }, spec: { cidr, ...(natOutgoing === undefined ? {} : { natOutgoing }) }, status });
const lb: LoadBalancerPoolObj = parseObject(LoadBalancerPool, { apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', metadata: { name: 'lb' }, spec: { cidrs: ['198.51.100.0/24'] } });
const config = fabricConfigSpec.parse({ services: { clusterIP: { cidrs: ['10.96.0.0/16'] } } });
const plan = (nat: boolean) => planNat({ ipPools: [parseObject(IPPool, pool('a', '10.244.0.0/16', nat))], config: config.services, lbPools: [lb] });

describe('natAction (pure)', () => {
  const on = plan(true);
  const script = nftScript(on.table);
  const cases: Array<[string, boolean, NatCommitted, boolean, string]> = [
    ['start, no natOutgoing pool → read first, write only if a table is there', false, { state: 'unknown' }, false, 'delete-if-present'],
    ['no pool, no table → nothing', false, { state: 'absent' }, false, 'none'],
    ['turned off → delete', false, { state: 'applied', script }, false, 'delete'],
    ['start with a natOutgoing pool → apply', true, { state: 'unknown' }, false, 'apply'],
    ['same table committed → nothing', true, { state: 'applied', script }, false, 'none'],
    ['same table, gone from the kernel → apply', true, { state: 'applied', script }, true, 'apply'],
    ['another table committed → apply', true, { state: 'applied', script: 'old' }, false, 'apply'],
    ['turned on → apply', true, { state: 'absent' }, false, 'apply'],
  ];
  it.each(cases)('%s', (_what, nat, committed, gone, want) => {
    const a = natAction(plan(nat), committed, gone);
    expect(a.kind).toBe(want);
    if (a.kind === 'apply') expect(a.script).toBe(script);
  });

  it('NATReady says what is masqueraded, or why nothing is', () => {
    expect(natCondition({ synced: false })).toMatchObject({ status: 'False', reason: 'CachesNotSynced' });
    expect(natCondition({ synced: true, want: plan(false) })).toMatchObject({ status: 'True', reason: 'NoNatOutgoingPool' });
    expect(natCondition({ synced: true, want: plan(true), error: 'Error: syntax error' })).toMatchObject({ status: 'False', reason: 'ApplyFailed', message: 'nftables: Error: syntax error' });
    const c = natCondition({ synced: true, want: plan(true) });
    expect(c).toMatchObject({ status: 'True', reason: 'Programmed' });
    expect(c.message).toContain('masquerading 10.244.0.0/16');
    expect(c.message).toContain('10.96.0.0/16');
    expect(c.message).toContain('198.51.100.0/24');
  });
});

class FakeNft implements NftRunner {
  table: string | null = null;
  applied: string[] = [];
  lists = 0;
  fail: Error | undefined;
  async apply(script: string) {
    if (this.fail) throw this.fail;
    this.applied.push(script);
    this.table = script.includes('delete table inet podfabric-nat\n') && !script.includes('{') ? null : script;
  }
  async list() {
    this.lists++;
    return this.table;
  }
}

const stops: Array<() => void> = [];
afterEach(() => {
  for (const s of stops.splice(0)) s();
});

async function rig(pools: Array<Record<string, unknown>>, opts: { leftover?: boolean } = {}) {
  const rest = new FakeRest();
  rest.set(POOLS, pools);
  const nft = new FakeNft();
  if (opts.leftover) nft.table = 'a table from an earlier run';
  const clock = new FakeClock(Date.parse('2026-12-04T20:00:00Z'));
  const events: string[] = [];
  let kicks = 0;
  let lbPools: LoadBalancerPoolObj[] | undefined = [lb];
  const registry = newRegistry('agent-nat-test', false);
  const informer = ipPoolInformer(rest.asRest(), () => kicks++);
  const nat = new NatOutgoing({ nft, pools: informer, lbPools: () => lbPools, kick: () => kicks++, clock, event: (_t, reason) => void events.push(reason), registry });
  const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values.map((v) => `${Object.values(v.labels).join(',')}=${v.value}`).sort();
  informer.start();
  await informer.waitForSync();
  stops.push(() => informer.stop());
  const waitKick = async (n: number) => {
    for (let i = 0; i < 2000 && kicks < n; i++) await new Promise((r) => setTimeout(r, 5)); // bounded wait on a loaded machine
    return kicks;
  };
  return { rest, nft, clock, events, nat, metric, sync: () => nat.sync(config, log), kicks: () => kicks, waitKick, unsyncLb: () => (lbPools = undefined) };
}

describe('NatOutgoing (agent side, fake nft)', () => {
  it('no natOutgoing pool: one read at start, never a write, NATReady True', async () => {
    const r = await rig([pool('a', '10.244.0.0/16')]);
    expect(await r.sync()).toMatchObject({ type: 'NATReady', status: 'True', reason: 'NoNatOutgoingPool' });
    await r.sync();
    await r.sync();
    expect(r.nft.applied).toEqual([]);
    expect(r.nft.lists).toBe(1);
    expect(r.events).toEqual([]);
  });

  it('a table left by an earlier run while no pool wants it is deleted, once', async () => {
    const r = await rig([pool('a', '10.244.0.0/16', false)], { leftover: true });
    await r.sync();
    await r.sync();
    expect(r.nft.applied).toEqual(['table inet podfabric-nat\ndelete table inet podfabric-nat\n']);
    expect(r.nft.table).toBeNull();
    expect(r.events).toEqual(['NATRemoved']);
  });

  it('natOutgoing turned on → one transaction; resyncs write nothing; pool status churn wakes nobody; turned off → table deleted', async () => {
    const r = await rig([pool('a', '10.244.0.0/16'), pool('b', '10.245.0.0/16')]);
    await r.sync();
    const k0 = r.kicks();
    r.rest.emit(POOLS, 'MODIFIED', pool('a', '10.244.0.0/16', true));
    expect(await r.waitKick(k0 + 1)).toBe(k0 + 1);
    expect(await r.sync()).toMatchObject({ status: 'True', reason: 'Programmed' });
    expect(r.nft.applied).toHaveLength(1);
    const script = r.nft.applied[0]!;
    expect(script).toMatch(/^table inet podfabric-nat\ndelete table inet podfabric-nat\ntable inet podfabric-nat \{/); // replaces only its own table
    expect(script).toContain('ip saddr @nat-sources-v4 ip daddr != @cluster-dests-v4 masquerade');
    expect(script).toMatch(/set nat-sources-v4 \{[^}]*elements = \{ 10\.244\.0\.0\/16 \}/);
    expect(script).toMatch(/set cluster-dests-v4 \{[^}]*elements = \{ 10\.96\.0\.0\/16, 10\.244\.0\.0\/16, 10\.245\.0\.0\/16, 198\.51\.100\.0\/24 \}/);
    expect(r.events).toEqual(['NATProgrammed']);
    expect(await r.metric('podfabric_agent_nat_outgoing_sources')).toEqual(['=1']);
    for (let i = 0; i < 3; i++) await r.sync();
    expect(r.nft.applied).toHaveLength(1);

    const k1 = r.kicks();
    r.rest.emit(POOLS, 'MODIFIED', pool('b', '10.245.0.0/16', undefined, { blocksAllocated: 3 }));
    await new Promise((res) => setTimeout(res, 20));
    expect(r.kicks()).toBe(k1);

    r.rest.emit(POOLS, 'MODIFIED', pool('a', '10.244.0.0/16', false));
    await r.waitKick(k1 + 1);
    expect(await r.sync()).toMatchObject({ status: 'True', reason: 'NoNatOutgoingPool' });
    expect(r.nft.applied.at(-1)).toBe('table inet podfabric-nat\ndelete table inet podfabric-nat\n');
    expect(r.nft.table).toBeNull();
    await r.sync();
    expect(r.nft.applied).toHaveLength(2);
    expect(await r.metric('podfabric_agent_nat_table_writes_total')).toEqual(['apply,ok=1', 'delete,ok=1']);
    expect(await r.metric('podfabric_agent_nat_outgoing_sources')).toEqual(['=0']);
  });

  it('a table deleted behind its back is written again at the next drift check, with a Warning', async () => {
    const r = await rig([pool('a', '10.244.0.0/16', true)]);
    await r.sync();
    r.nft.table = null;
    await r.sync();
    expect(r.nft.applied).toHaveLength(1); // not checked before the interval
    r.clock.advance(DRIFT_CHECK_MS);
    await r.sync();
    expect(r.nft.applied).toHaveLength(2);
    expect(r.nft.table).not.toBeNull();
    expect(r.events).toEqual(['NATProgrammed', 'NATTableDrift', 'NATProgrammed']);
  });

  it('nft failing → NATReady False with its error, a Warning once, a retry kick; the next success clears it', async () => {
    const r = await rig([pool('a', '10.244.0.0/16', true)]);
    r.nft.fail = new Error('Error: Could not process rule: No such file or directory');
    expect(await r.sync()).toMatchObject({ status: 'False', reason: 'ApplyFailed', message: expect.stringContaining('No such file') });
    await r.sync();
    expect(r.events).toEqual(['NATApplyFailed']);
    const k = r.kicks();
    r.clock.advance(RETRY_MS);
    expect(r.kicks()).toBe(k + 1);
    r.nft.fail = undefined;
    expect(await r.sync()).toMatchObject({ status: 'True', reason: 'Programmed' });
    expect(r.events).toEqual(['NATApplyFailed', 'NATProgrammed', 'NATApplied']);
  });

  it('decides nothing before the LoadBalancerPool cache has synced', async () => {
    const r = await rig([pool('a', '10.244.0.0/16', false)], { leftover: true });
    r.unsyncLb();
    expect(await r.sync()).toMatchObject({ status: 'False', reason: 'CachesNotSynced' });
    expect(r.nft.applied).toEqual([]);
    expect(r.nft.lists).toBe(0);
  });
});
