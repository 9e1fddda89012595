/**
 * The agent's decisions, end to end through one sync, with a fake BGP speaker, a fake route table and a
 * fake clock: what it programs, what it installs, what it reports, and when it writes its status.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { fabricConfigSpec } from '../../operator/api/fabricconfig.js';
import { STATUS_HEARTBEAT_JITTER, STATUS_HEARTBEAT_SECONDS, type NodeFabricSpec } from '../../operator/api/nodefabric.js';
import { heartbeatDelayMs } from '../../operator/agent/report.js';
import { agentMetrics, AgentSync } from '../../operator/agent/sync.js';
import { FakeClock } from '../../operator/lib/clock.js';
import { log } from '../../operator/lib/log.js';
import { newRegistry } from '../../operator/lib/metrics.js';
import { FakeRouteTable, FakeSpeaker } from '../support/fakes.js';
import type { NodePeers } from '../../operator/plan/peers.js';
import type { DirectRoute } from '../../operator/plan/segment.js';
import type { KernelRoute } from '../../operator/routes/model.js';
import { nodeFabric, nodePeers, plannedPeer } from '../support/objects.js';

const config = fabricConfigSpec.parse({});
const UPLINK = { dev: 'eth0', address: '10.0.1.11', subnet: '10.0.1.0/24' };

/** A route table whose kernel refuses to add the destinations in `refuse` (as for an unreachable gateway). */
class RefusingRouteTable extends FakeRouteTable {
  refuse = new Set<string>();
  override async apply(add: KernelRoute[], del: KernelRoute[]) {
    await super.apply(add.filter((a) => !this.refuse.has(a.dst)), del);
    return { errors: add.filter((a) => this.refuse.has(a.dst)).map((route) => ({ route, op: 'add' as const, error: 'Nexthop has invalid gateway' })) };
  }
}

function rig(opts: { uplink?: boolean; passwords?: Record<string, string> } = {}) {
  const clock = new FakeClock(1_000_000);
  const speaker = new FakeSpeaker();
  const table = new RefusingRouteTable();
  const writes: Array<Record<string, any>> = [];
  const events: string[] = [];
  const passwords = new Map(Object.entries(opts.passwords ?? {}));
  const sync = new AgentSync({
    router: speaker,
    routes: { open: () => table },
    detectUplink: async () => (opts.uplink === false ? null : UPLINK),
    passwords: (ref) => passwords.get(ref.name),
    writeStatus: async (s) => void writes.push(s),
    event: (_t, reason) => void events.push(reason),
    kick: () => undefined,
    metrics: agentMetrics(newRegistry('agent-test', false)),
    clock,
    random: () => 0.5, // no jitter: heartbeats exactly STATUS_HEARTBEAT_SECONDS apart
  });
  // direct: the routes of the node's L2Segments (null: not known yet).
  const run = (nf: ReturnType<typeof nodeFabric> | null = nodeFabric('n1'), peers: NodePeers | null = nodePeers(), direct: DirectRoute[] | null = []) =>
    sync.run(nf ?? undefined, peers ?? undefined, direct ?? undefined, config, log);
  return { clock, speaker, table, writes, events, passwords, sync, run };
}

const NEIGHBOUR: DirectRoute = { destination: '10.244.2.0/24', via: '10.0.1.12', node: 'n2' };

describe('agent sync: what it programs and installs (table)', () => {
  const cases: Array<{ name: string; spec: Partial<NodeFabricSpec>; direct?: DirectRoute[]; peers?: NodePeers | null; uplink?: boolean; expect: (r: ReturnType<typeof rig>) => void }> = [
    {
      name: 'a planned node: BGP started, peer added, its block advertised, the neighbour route installed, Ready',
      spec: {},
      direct: [NEIGHBOUR],
      expect: (r) => {
        expect(r.speaker.writes()).toEqual(['startBgp', 'addPeer', 'addAdvertisements']);
        expect(r.table.routes).toEqual([{ dst: '10.244.2.0/24', via: '10.0.1.12', dev: 'eth0' }]);
        expect(r.sync.ready).toBe(true);
        expect(r.writes[0]!.conditions.find((c: { type: string }) => c.type === 'Ready')).toMatchObject({ status: 'True' });
      },
    },
    {
      name: 'its Node not known yet (no sessions derived): gobgpd untouched, not Ready',
      spec: {},
      peers: null,
      expect: (r) => {
        expect(r.speaker.writes()).toEqual([]);
        expect(r.sync.ready).toBe(false);
      },
    },
    {
      name: 'no uplink for the route family: nothing installed, the error reported',
      spec: {},
      direct: [NEIGHBOUR],
      uplink: false,
      expect: (r) => {
        expect(r.table.routes).toEqual([]);
        expect(r.sync.ready).toBe(false);
        expect(r.events).toContain('ApplyFailed');
      },
    },
    {
      name: 'a peer whose Secret is not there yet is added without a password and reported so',
      spec: {},
      peers: nodePeers([plannedPeer('10.0.1.1', { passwordSecretRef: { namespace: 'ns', name: 'absent', key: 'password' } })]),
      expect: (r) => {
        expect(r.speaker.peers.get('10.0.1.1')!.password).toBeUndefined();
      },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = rig(c.uplink === undefined ? {} : { uplink: c.uplink });
      await r.run(nodeFabric('n1', c.spec), c.peers === undefined ? nodePeers() : c.peers, c.direct ?? []);
      c.expect(r);
    });
  }

  it('no NodeFabric yet: BGP started and the peer added, no advertisement, no status; then the block with the peers\' communities', async () => {
    const r = rig();
    await r.run(null, nodePeers([plannedPeer('10.0.1.1')], { communities: ['65000:1'] }));
    expect(r.speaker.writes()).toEqual(['startBgp', 'addPeer']);
    expect(r.writes).toEqual([]);
    expect(r.sync.ready).toBe(false);
    await r.run(nodeFabric('n1'), nodePeers([plannedPeer('10.0.1.1')], { communities: ['65000:1'] }));
    expect(r.speaker.writes()).toEqual(['startBgp', 'addPeer', 'addAdvertisements']);
    expect(r.speaker.adv.get('10.244.1.0/24')!.communities).toEqual(['65000:1']);
    expect(r.writes).toHaveLength(1);
  });

  it('neither Node nor NodeFabric known: nothing touched', async () => {
    const r = rig();
    await r.run(null, null);
    expect(r.speaker.calls).toEqual([]);
  });

  it('a second sync with nothing changed changes nothing (idempotent)', async () => {
    const r = rig();
    const nf = nodeFabric('n1');
    await r.run(nf, nodePeers(), [NEIGHBOUR]);
    const calls = r.speaker.calls.length;
    const applies = r.table.applies;
    await r.run(nf, nodePeers(), [NEIGHBOUR]);
    expect(r.speaker.calls.length).toBe(calls);
    expect(r.table.applies).toBe(applies);
  });

  it('a withdrawn neighbour route and peer are removed; the password comes from the lookup', async () => {
    const r = rig({ passwords: { 'bgp-tor': 's3cret' } });
    await r.run(nodeFabric('n1'), nodePeers([plannedPeer('10.0.1.1'), plannedPeer('10.0.1.2', { passwordSecretRef: { namespace: 'ns', name: 'bgp-tor', key: 'password' } })]), [NEIGHBOUR]);
    expect(r.speaker.peers.get('10.0.1.2')!.password).toBe('s3cret');
    await r.run(nodeFabric('n1'), nodePeers([plannedPeer('10.0.1.1')]), []);
    expect(r.table.routes).toEqual([]);
    expect([...r.speaker.peers.keys()]).toEqual(['10.0.1.1']);
    expect(r.speaker.writes()).toContain('deletePeer');
  });

  it('a changed password is re-applied to the peer (updatePeer), nothing else touched', async () => {
    const r = rig({ passwords: { 'bgp-tor': 'one' } });
    const nf = nodeFabric('n1');
    const peers = nodePeers([plannedPeer('10.0.1.2', { passwordSecretRef: { namespace: 'ns', name: 'bgp-tor', key: 'password' } })]);
    await r.run(nf, peers);
    r.speaker.calls = [];
    r.passwords.set('bgp-tor', 'two');
    await r.run(nf, peers);
    expect(r.speaker.writes()).toEqual(['updatePeer']);
    expect(r.speaker.peers.get('10.0.1.2')!.password).toBe('two');
  });

  it('status reports route differences, not every route: a refused route shows until the kernel takes it, then the field is gone', async () => {
    const r = rig();
    const routesReady = () => r.writes.at(-1)!.conditions.find((c: { type: string }) => c.type === 'RoutesReady');
    const other: DirectRoute = { destination: '10.244.3.0/24', via: '10.0.1.13', node: 'n3' };
    const nf = nodeFabric('n1');
    const direct = [NEIGHBOUR, other];
    r.table.routes.push({ dst: '10.244.9.0/24', via: '10.0.1.99', dev: 'eth0' }); // ours, not planned: removed
    r.table.refuse.add('10.244.3.0/24');
    await r.run(nf, nodePeers(), direct);
    expect(r.writes).toHaveLength(1);
    expect(r.writes[0]).toMatchObject({ routesInstalled: 1, routeProblems: [{ destination: '10.244.3.0/24', plannedVia: '10.0.1.13' }], routeProblemsTotal: 1 });
    expect(r.writes[0]).not.toHaveProperty('routes');
    expect(routesReady()).toMatchObject({ status: 'False', reason: 'KernelError' });
    expect(routesReady().message).toMatch(/^1 route\(s\) differ from the plan \(status\.routeProblems\): add 10\.244\.3\.0\/24 via 10\.0\.1\.13: Nexthop has invalid gateway/);
    // The kernel takes it now: written at once (the problems are in the write signature), without the field.
    r.table.refuse.clear();
    r.clock.advance(1000);
    await r.run(nf, nodePeers(), direct);
    expect(r.writes).toHaveLength(2);
    expect(r.writes[1]!.routesInstalled).toBe(2);
    expect(r.writes[1]).not.toHaveProperty('routeProblems');
    expect(r.writes[1]).not.toHaveProperty('routeProblemsTotal');
    expect(routesReady()).toMatchObject({ status: 'True', reason: 'Installed', message: '2 host route(s) installed' });
  });

  it('segments not known yet (a restart, caches listing): the kernel\'s routes are left exactly as they are and not reported as problems; once known, the delta is applied', async () => {
    const r = rig();
    const routesReady = () => r.writes.at(-1)!.conditions.find((c: { type: string }) => c.type === 'RoutesReady');
    const before = [
      { dst: '10.244.2.0/24', via: '10.0.1.12', dev: 'eth0' },
      { dst: '10.244.9.0/24', via: '10.0.1.99', dev: 'eth0' }, // no longer planned, but the plan is not known yet
    ];
    r.table.routes.push(...before);
    await r.run(nodeFabric('n1'), nodePeers(), null);
    expect(r.table.applies).toBe(0);
    expect(r.table.routes).toEqual(before);
    expect(r.writes[0]).toMatchObject({ routesInstalled: 2 });
    expect(r.writes[0]).not.toHaveProperty('routeProblems');
    expect(routesReady()).toMatchObject({ status: 'Unknown', reason: 'SegmentsNotKnown' });
    expect(routesReady().message).toMatch(/its 2 host route\(s\) in the kernel are left as they are/);
    expect(r.sync.ready).toBe(false);
    expect(r.speaker.writes()).toEqual(['startBgp', 'addPeer', 'addAdvertisements']); // BGP does not wait for the segments
    await r.run(nodeFabric('n1'), nodePeers(), [NEIGHBOUR]);
    expect(r.table.routes).toEqual([before[0]]);
    expect(routesReady()).toMatchObject({ status: 'True', reason: 'Installed' });
    expect(r.sync.ready).toBe(true);
  });

  it('a session down is reported with how long it has been down (fake clock)', async () => {
    const r = rig();
    r.speaker.states.set('10.0.1.1', 'Active');
    await r.run();
    r.clock.advance(40_000);
    await r.run();
    const s = r.writes.at(-1)!.sessions[0];
    expect(s).toMatchObject({ address: '10.0.1.1', state: 'Active' });
    expect(s.lastError).toMatch(/Active/);
    expect(r.sync.ready).toBe(false);
  });
});

describe('agent status heartbeat', () => {
  const HB = STATUS_HEARTBEAT_SECONDS * 1000;
  let r: ReturnType<typeof rig>;
  beforeEach(async () => {
    r = rig();
    await r.run();
    expect(r.writes).toHaveLength(1); // the first sync writes
  });

  it('no status write while idle between heartbeats, however often it syncs', async () => {
    for (let i = 0; i < 10; i++) {
      r.clock.advance(HB / 20);
      await r.run();
    }
    expect(r.writes).toHaveLength(1);
  });

  it('a heartbeat does arrive once the interval has passed, with a newer lastSyncTime', async () => {
    r.clock.advance(HB);
    await r.run();
    expect(r.writes).toHaveLength(2);
    expect(Date.parse(r.writes[1]!.lastSyncTime) - Date.parse(r.writes[0]!.lastSyncTime)).toBe(HB);
  });

  it('the sync asks to come back when the heartbeat is due (the heartbeat needs no other trigger)', async () => {
    r.clock.advance(HB / 4);
    const res = await r.run();
    expect(res).toEqual({ requeueAfterMs: HB - HB / 4 });
  });

  it('a change is written at once, not at the next heartbeat', async () => {
    r.clock.advance(1000);
    r.speaker.emit('10.0.1.1', 'Idle');
    await r.run();
    expect(r.writes).toHaveLength(2);
    expect(r.writes[1]!.sessions[0].state).toBe('Idle');
  });

  it('heartbeats are jittered within ±STATUS_HEARTBEAT_JITTER of the interval', () => {
    const lo = heartbeatDelayMs(() => 0);
    const hi = heartbeatDelayMs(() => 0.999999);
    expect(lo).toBe(Math.round(HB * (1 - STATUS_HEARTBEAT_JITTER)));
    expect(hi).toBeLessThanOrEqual(HB * (1 + STATUS_HEARTBEAT_JITTER));
    expect(hi).toBeGreaterThan(HB * (1 + STATUS_HEARTBEAT_JITTER) - 1);
    expect(heartbeatDelayMs(() => 0.5)).toBe(HB);
  });
});
