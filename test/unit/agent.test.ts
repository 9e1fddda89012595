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
import { FakeRest, FakeRouteTable, FakeSpeaker } from '../support/fakes.js';
import { nodeFabric, plannedPeer } from '../support/objects.js';

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

function start(peers = [plannedPeer('10.0.1.1')]) {
  const rest = new FakeRest();
  rest.set(`${API_PATH}/nodefabrics`, [nodeFabric('n1', { peers })]);
  rest.set(`${API_PATH}/fabricconfigs`, []);
  // Service routes' watches (agent/service-routes.ts): nothing to advertise here.
  for (const c of ['/api/v1/services', '/apis/discovery.k8s.io/v1/endpointslices', '/api/v1/nodes', `${API_PATH}/loadbalancerpools`]) rest.set(c, []);
  rest.set(SECRETS, [{ metadata: { name: 'bgp-tor', namespace: 'net' }, data: { password: b64('one') } }]);
  const speaker = new FakeSpeaker();
  const a = new NodeAgent({
    nodeName: 'n1',
    rest: rest.asRest(),
    router: speaker,
    routes: () => new FakeRouteTable(),
    detectUplink: async () => ({ dev: 'eth0', address: '10.0.1.11', subnet: '10.0.1.0/24' }),
    registry: newRegistry('agent-unit', false),
    resyncMs: 3_600_000,
  });
  agent = a;
  const statusWrites = () => rest.count('APPLY', /\/nodefabrics\/n1\/status$/);
  return { rest, speaker, agent: a, statusWrites };
}

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
    const { rest, speaker, agent: a } = start([plannedPeer('10.0.1.2', { passwordSecretRef: ref })]);
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
    const { rest, speaker, agent: a } = start([plannedPeer('10.0.1.2', { passwordSecretRef: ref })]);
    await a.start();
    await until('peer programmed', () => speaker.peers.get('10.0.1.2')?.password === 'one');
    rest.emit(SECRETS, 'MODIFIED', { metadata: { name: 'bgp-tor', namespace: 'net' }, data: { password: b64('two') } });
    await until('new password applied', () => speaker.peers.get('10.0.1.2')?.password === 'two');
    expect(speaker.writes()).toContain('updatePeer');
  });
});
