/**
 * The agent's Service routes through the real wiring: ServiceRoutes' watches on a fake apiserver
 * (FakeRest: Node, Services, EndpointSlices, LoadBalancerPools) → AgentSync → BgpApplier → a fake
 * BGP speaker, with a fake clock. What reaches gobgpd next to the pod CIDR, and what the status says.
 */
import { describe, expect, it } from 'vitest';
import { API_PATH } from '../../operator/api/common.js';
import { fabricConfigSpec } from '../../operator/api/fabricconfig.js';
import { GRACEFUL_SHUTDOWN } from '../../operator/api/services.js';
import { ServiceRoutes } from '../../operator/agent/service-routes.js';
import { agentMetrics, AgentSync } from '../../operator/agent/sync.js';
import { FakeClock } from '../../operator/lib/clock.js';
import { log } from '../../operator/lib/log.js';
import { newRegistry } from '../../operator/lib/metrics.js';
import { FakeRest, FakeRouteTable, FakeSpeaker } from '../support/fakes.js';
import { nodeFabric, nodePeers } from '../support/objects.js';

const SVC = '/api/v1/services';
const SLICES = '/apis/discovery.k8s.io/v1/endpointslices';
const NODES = '/api/v1/nodes';
const config = fabricConfigSpec.parse({ services: { drain: { withdrawDelaySeconds: 10 } } });
const node = (unschedulable = false, labels: Record<string, string> = {}) => ({ metadata: { name: 'n1', labels }, spec: { unschedulable }, status: { addresses: [{ type: 'InternalIP', address: '10.0.1.11' }] } });
const service = { metadata: { name: 'a', namespace: 'web', uid: 'u-a', creationTimestamp: '2026-12-04T16:00:00Z' }, spec: { type: 'LoadBalancer', clusterIP: '10.96.0.10', ipFamilies: ['IPv4'], ports: [{ port: 80, protocol: 'TCP' }], externalTrafficPolicy: 'Local', selector: { app: 'a' } }, status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } };
const slice = (ready: boolean) => ({ metadata: { namespace: 'web', name: 'a-1', labels: { 'kubernetes.io/service-name': 'a' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.0.5'], nodeName: 'n1', conditions: { ready } }] });

async function rig() {
  const rest = new FakeRest();
  rest.set(NODES, [node()]);
  rest.set(SVC, [service]);
  rest.set(SLICES, [slice(true)]);
  rest.set(`${API_PATH}/loadbalancerpools`, [{ apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', metadata: { name: 'lb' }, spec: { cidrs: ['192.0.2.0/28'] } }]);
  const clock = new FakeClock(Date.parse('2026-12-04T17:00:00Z'));
  const speaker = new FakeSpeaker();
  const serviceEvents: string[] = [];
  const fabricEvents: string[] = [];
  let kicks = 0;
  const routes = new ServiceRoutes(rest.asRest(), 'n1', () => kicks++, clock, { onService: { emit: (ref, _t, reason) => void serviceEvents.push(`${ref.namespace}/${ref.name} ${reason}`) }, onFabric: (_t, reason) => void fabricEvents.push(reason) });
  await routes.start();
  const writes: Array<Record<string, any>> = [];
  const sync = new AgentSync({
    router: speaker,
    routes: { open: () => new FakeRouteTable() },
    detectUplink: async () => ({ dev: 'eth0', address: '10.0.1.11', subnet: '10.0.1.0/24' }),
    passwords: () => undefined,
    writeStatus: async (s) => void writes.push(s),
    event: () => undefined,
    kick: () => undefined,
    metrics: agentMetrics(newRegistry('agent-svc-test', false)),
    clock,
    random: () => 0.5,
    services: routes,
  });
  let nf = nodeFabric('n1');
  const run = async () => {
    await sync.run(nf, nodePeers(), [], config, log);
    // The next sync sees what this one wrote (as the informer would).
    nf = { ...nf, status: { ...(nf.status ?? {}), ...writes.at(-1) } } as typeof nf;
  };
  const adv = (p: string) => speaker.adv.get(p);
  const waitKick = async (n: number) => {
    for (let i = 0; i < 100 && kicks < n; i++) await new Promise((r) => setTimeout(r, 5));
  };
  return { rest, clock, speaker, writes, run, adv, routes, serviceEvents, fabricEvents, kicks: () => kicks, waitKick };
}

describe('agent: Service routes advertised next to the pod CIDR', () => {
  it('Local with a ready local endpoint → /32 via the node; endpoint not ready → withdrawn at once; status and Events follow', async () => {
    const r = await rig();
    await r.run();
    expect(r.adv('192.0.2.1/32')).toMatchObject({ prefix: '192.0.2.1/32', nextHop: '10.0.1.11' });
    expect([...r.speaker.adv.keys()]).toContain('10.244.1.0/24'); // the pod CIDR is still there
    expect(r.writes.at(-1)!.services).toMatchObject({ phase: 'Active', advertised: 1, routes: [expect.objectContaining({ prefix: '192.0.2.1/32' })] });

    const before = r.kicks();
    r.rest.emit(SLICES, 'MODIFIED', slice(false));
    await r.waitKick(before + 1);
    expect(r.kicks()).toBeGreaterThan(before); // the slice change wakes the agent
    await r.run();
    expect(r.adv('192.0.2.1/32')).toBeUndefined();
    expect(r.adv('10.244.1.0/24')).toBeDefined();
    expect(r.writes.at(-1)!.services).toMatchObject({ phase: 'Active', advertised: 0 });
    expect(r.serviceEvents).toEqual(['web/a Withdrawn']);
    r.routes.stop();
  });

  it('cordon → GRACEFUL_SHUTDOWN on the Service route (pod CIDR untouched), withdrawn after the delay; uncordon restores', async () => {
    const r = await rig();
    await r.run();
    r.rest.emit(NODES, 'MODIFIED', node(true));
    await r.waitKick(1);
    await r.run();
    expect(r.adv('192.0.2.1/32')!.communities).toContain(GRACEFUL_SHUTDOWN);
    expect(r.adv('10.244.1.0/24')!.communities).not.toContain(GRACEFUL_SHUTDOWN);
    expect(r.writes.at(-1)!.services.phase).toBe('Draining');
    expect(r.fabricEvents).toEqual(['ServiceDrainStarted']);
    r.clock.advance(10_001);
    await r.run();
    expect(r.adv('192.0.2.1/32')).toBeUndefined();
    expect(r.writes.at(-1)!.services.phase).toBe('Drained');
    r.rest.emit(NODES, 'MODIFIED', node(false));
    await r.waitKick(2);
    await r.run();
    expect(r.adv('192.0.2.1/32')!.communities).not.toContain(GRACEFUL_SHUTDOWN);
    expect(r.writes.at(-1)!.services.phase).toBe('Active');
    r.routes.stop();
  });

  it('a node labelled exclude-from-external-load-balancers advertises no Service route', async () => {
    const r = await rig();
    await r.run();
    r.rest.emit(NODES, 'MODIFIED', node(false, { 'node.kubernetes.io/exclude-from-external-load-balancers': '' }));
    await r.waitKick(1);
    await r.run();
    expect(r.adv('192.0.2.1/32')).toBeUndefined();
    expect(r.writes.at(-1)!.services.phase).toBe('Excluded');
    r.routes.stop();
  });
});
