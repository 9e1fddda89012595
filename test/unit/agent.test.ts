/**
 * The NodeAgent around its sync, on a fake apiserver (FakeRest), a fake BGP speaker and a fake route
 * table: which requests it makes and when it writes. These failed before the status heartbeat and the
 * Secret watch: an idle agent rewrote its status on every sync, and it GOT every password Secret on
 * every sync without noticing when one changed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { API_PATH } from '../../operator/api/common.js';
import { NodeAgent } from '../../operator/agent/agent.js';
import { newRegistry } from '../../operator/lib/metrics.js';
import { FakeRouteTable, FakeSpeaker } from '../support/fakes.js';
import { GatedRest } from '../support/gated-rest.js';
import { bgpPeer, coreNode, nodeFabric } from '../support/objects.js';

const SECRETS = '/api/v1/namespaces/net/secrets';
const b64 = (s: string) => Buffer.from(s).toString('base64');

async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let agent: NodeAgent | undefined;
afterEach(async () => {
  await agent?.stop();
  agent = undefined;
});

const PEERS = `${API_PATH}/bgppeers`;
const FABRICS = `${API_PATH}/nodefabrics`;

const SEGMENTS = `${API_PATH}/l2segments`;

function start(peers = [bgpPeer('tor', '10.0.1.1')], fabrics = [nodeFabric('n1')], table = new FakeRouteTable()) {
  const rest = new GatedRest();
  rest.set(FABRICS, fabrics);
  rest.set(`${API_PATH}/fabricconfigs`, []);
  rest.set(PEERS, peers);
  rest.set(`${API_PATH}/ippools`, []);
  rest.set('/api/v1/nodes', [coreNode('n1', '10.0.1.11')]);
  // Service routes' watches (agent/service-routes.ts): nothing to advertise here.
  for (const c of ['/api/v1/services', '/apis/discovery.k8s.io/v1/endpointslices', `${API_PATH}/loadbalancerpools`]) rest.set(c, []);
  rest.set(SECRETS, [{ metadata: { name: 'bgp-tor', namespace: 'net' }, data: { password: b64('one') } }]);
  rest.set(SEGMENTS, [segment('v4-a', ['n1', 'n2']), segment('v4-b', ['n1', 'n3'])]);
  const speaker = new FakeSpeaker();
  const a = new NodeAgent({
    nodeName: 'n1',
    rest: rest.asRest(),
    router: speaker,
    routes: () => table,
    detectUplink: async () => ({ dev: 'eth0', address: '10.0.1.11', subnet: '10.0.1.0/24' }),
    registry: newRegistry('agent-unit', false),
    resyncMs: 3_600_000,
  });
  agent = a;
  const statusWrites = () => rest.count('APPLY', /\/nodefabrics\/n1\/status$/);
  const lastStatus = () => rest.calls.filter((c) => c.method === 'APPLY' && /\/nodefabrics\/n1\/status$/.test(c.path)).at(-1)?.body as { status: { conditions: Array<{ type: string; status: string; reason: string }> } } | undefined;
  const routesReady = () => lastStatus()?.status.conditions.find((c) => c.type === 'RoutesReady');
  return { rest, speaker, agent: a, statusWrites, routesReady };
}

/** An L2Segment holding the pod CIDR 10.244.<k>.0/24 via 10.0.1.<10+k> of each member n<k>. */
function segment(name: string, members: string[]): Record<string, any> {
  const routes = members.map((m) => ({ destination: `10.244.${m.slice(1)}.0/24`, via: `10.0.1.${10 + Number(m.slice(1))}`, node: m }));
  return { apiVersion: 'podfabric.io/v1alpha1', kind: 'L2Segment', metadata: { name }, spec: { key: `label:${name}`, family: 4, reason: 'SegmentLabel', routes } };
}
const inSegment = (name: string) => nodeFabric('n1', { routing: { l2Segment: `label:${name}`, segments: [name] } });

describe('NodeAgent on a fake apiserver', () => {
  it('an idle node writes its status once, not on every sync', async () => {
    const { agent: a, statusWrites } = start();
    await a.start();
    await until('first status', () => statusWrites() >= 1);
    for (let i = 0; i < 5; i++) {
      const before = a.syncs;
      a.kick();
      await until(`sync ${i}`, () => a.syncs > before);
    }
    expect(statusWrites()).toBe(1);
  });

  it('reads password Secrets through a watch of only the named Secret, never a GET per sync', async () => {
    const ref = { namespace: 'net', name: 'bgp-tor', key: 'password' };
    const { rest, speaker, agent: a } = start([bgpPeer('tor2', '10.0.1.2', { passwordSecretRef: ref })]);
    await a.start();
    await until('peer programmed with its password', () => speaker.peers.get('10.0.1.2')?.password === 'one');
    for (let i = 0; i < 3; i++) {
      const before = a.syncs;
      a.kick();
      await until(`sync ${i}`, () => a.syncs > before);
    }
    expect(rest.count('GET', /\/secrets\/bgp-tor$/)).toBe(0);
    // One list and one watch, both narrowed to that name.
    expect(rest.calls.filter((c) => c.path.startsWith(SECRETS)).map((c) => `${c.method} ${decodeURIComponent(c.path.replace(/&.*$/, ''))}`)).toEqual([
      `GET ${SECRETS}?fieldSelector=metadata.name=bgp-tor`,
      `WATCH ${SECRETS}?fieldSelector=metadata.name=bgp-tor`,
    ]);
  });

  it('re-applies the peer when its password Secret changes', async () => {
    const ref = { namespace: 'net', name: 'bgp-tor', key: 'password' };
    const { rest, speaker, agent: a } = start([bgpPeer('tor2', '10.0.1.2', { passwordSecretRef: ref })]);
    await a.start();
    await until('peer programmed', () => speaker.peers.get('10.0.1.2')?.password === 'one');
    rest.emit(SECRETS, 'MODIFIED', { metadata: { name: 'bgp-tor', namespace: 'net' }, data: { password: b64('two') } });
    await until('new password applied', () => speaker.peers.get('10.0.1.2')?.password === 'two');
    expect(speaker.writes()).toContain('updatePeer');
  });

  it('adds its peers before any NodeFabric exists (Node + FabricConfig + BGPPeer only); status waits for the NodeFabric', async () => {
    const { rest, speaker, agent: a, statusWrites } = start([bgpPeer('tor', '10.0.1.1', { communities: ['65000:7'] })], []);
    await a.start();
    await until('peer added without a NodeFabric', () => speaker.peers.has('10.0.1.1'));
    expect(speaker.global).toMatchObject({ asn: 64512, routerId: '10.0.1.11' });
    expect(speaker.adv.size).toBe(0);
    expect(statusWrites()).toBe(0);
    // The controller's record arrives: its block is advertised with the peer's communities, status written.
    rest.emit(FABRICS, 'ADDED', nodeFabric('n1'));
    await until('block advertised', () => speaker.adv.has('10.244.1.0/24'));
    expect(speaker.adv.get('10.244.1.0/24')!.communities).toEqual(['65000:7']);
    await until('status written', () => statusWrites() >= 1);
  });

  it('follows BGPPeer changes itself: add, update and delete reach gobgpd without any NodeFabric change', async () => {
    const { rest, speaker, agent: a } = start([bgpPeer('tor', '10.0.1.1')]);
    await a.start();
    await until('first peer', () => speaker.peers.has('10.0.1.1'));
    rest.emit(PEERS, 'ADDED', bgpPeer('spine', '10.0.9.1', { peerASN: 65200 }));
    await until('spine added', () => speaker.peers.get('10.0.9.1')?.peerAsn === 65200);
    rest.emit(PEERS, 'MODIFIED', bgpPeer('spine', '10.0.9.1', { peerASN: 65201 }));
    await until('spine updated', () => speaker.peers.get('10.0.9.1')?.peerAsn === 65201);
    rest.emit(PEERS, 'MODIFIED', bgpPeer('tor', '10.0.1.1', { nodeSelector: { matchLabels: { rack: 'r9' } } }));
    await until('tor no longer selects n1', () => !speaker.peers.has('10.0.1.1'));
    rest.emit(PEERS, 'DELETED', bgpPeer('spine', '10.0.9.1'));
    await until('spine deleted', () => speaker.peers.size === 0);
    expect(rest.count('APPLY', /\/nodefabrics\/n1$/)).toBe(0);
  });

  it('leaves its sessions alone while its Node is gone, and drops a peer whose Secret does not exist', async () => {
    const ref = { namespace: 'net', name: 'absent', key: 'password' };
    const { rest, speaker, agent: a } = start([bgpPeer('tor', '10.0.1.1'), bgpPeer('tor2', '10.0.1.2', { passwordSecretRef: ref })]);
    await a.start();
    await until('tor added', () => speaker.peers.has('10.0.1.1'));
    expect(speaker.peers.has('10.0.1.2')).toBe(false); // SecretMissing: the same rule as the controller's Valid=False
    rest.emit('/api/v1/nodes', 'DELETED', coreNode('n1', '10.0.1.11'));
    rest.emit(PEERS, 'DELETED', bgpPeer('tor', '10.0.1.1'));
    const before = a.syncs;
    await until('synced after the deletes', () => a.syncs >= before + 1);
    a.kick();
    await until('one more sync', () => a.syncs >= before + 2);
    expect(speaker.peers.has('10.0.1.1')).toBe(true);
  });

  it('installs the routes of the L2Segments its NodeFabric names, watching only those; while a newly named one has not listed, the kernel keeps its routes', async () => {
    const table = new FakeRouteTable();
    const { rest, agent: a, routesReady } = start(undefined, [inSegment('v4-a')], table);
    await a.start();
    await until('the segment\'s route (not its own)', () => table.routes.map((r) => r.dst).join() === '10.244.2.0/24');
    expect(rest.calls.filter((c) => c.path.startsWith(SEGMENTS)).map((c) => `${c.method} ${decodeURIComponent(c.path.replace(/&.*$/, ''))}`)).toEqual([
      `GET ${SEGMENTS}?fieldSelector=metadata.name=v4-a`,
      `WATCH ${SEGMENTS}?fieldSelector=metadata.name=v4-a`,
    ]);
    await until('RoutesReady', () => routesReady()?.status === 'True');
    // A member joins: one write of the segment, none of this node's NodeFabric.
    rest.emit(SEGMENTS, 'MODIFIED', segment('v4-a', ['n1', 'n2', 'n4']));
    await until('the new member\'s route', () => table.routes.length === 2);
    // The node moves to segment v4-b, whose list has not answered yet: nothing is removed meanwhile.
    rest.hold((p) => p.startsWith(SEGMENTS));
    rest.emit(FABRICS, 'MODIFIED', inSegment('v4-b'));
    await until('RoutesReady Unknown', () => routesReady()?.status === 'Unknown');
    expect(routesReady()).toMatchObject({ reason: 'SegmentsNotKnown' });
    expect(table.routes.map((r) => r.dst).sort()).toEqual(['10.244.2.0/24', '10.244.4.0/24']);
    rest.release();
    await until('v4-b\'s routes replace v4-a\'s', () => table.routes.map((r) => r.dst).join() === '10.244.3.0/24');
    await until('RoutesReady again', () => routesReady()?.status === 'True');
  });

  it('a plan from a controller older than L2Segments (a segment key, no segment names): the kernel keeps its routes until a plan names them', async () => {
    const table = new FakeRouteTable();
    const { rest, agent: a, routesReady } = start(undefined, [nodeFabric('n1', { routing: { l2Segment: 'subnet:10.0.1.0/24' } })], table);
    await table.apply([{ dst: '10.244.9.0/24', via: '10.0.1.19', dev: 'eth0' }], []);
    await a.start();
    await until('RoutesReady Unknown', () => routesReady()?.status === 'Unknown');
    expect(table.routes.map((r) => r.dst)).toEqual(['10.244.9.0/24']);
    expect(rest.calls.filter((c) => c.path.startsWith(SEGMENTS))).toEqual([]);
    rest.emit(FABRICS, 'MODIFIED', inSegment('v4-a'));
    await until('the segment\'s routes replace the old one', () => table.routes.map((r) => r.dst).join() === '10.244.2.0/24');
  });
});
