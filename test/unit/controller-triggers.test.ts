/**
 * The FabricController's watch-driven triggers on a fake client: cross-object verdicts follow a change
 * of the other object at once, not the resync (issue #16).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { API_PATH } from '../../operator/api/common.js';
import { FabricController } from '../../operator/controller/controller.js';
import { MemoryEventSink } from '../../operator/kube/events.js';
import { newRegistry } from '../../operator/lib/metrics.js';
import { waitFor } from '../support/kube.js';
import { FakeRest } from '../support/fakes.js';

const meta = (name: string) => ({ name, uid: `uid-${name}`, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' });
let controller: FabricController | undefined;
afterEach(async () => controller?.stop());

function start(peers: Array<Record<string, unknown>>) {
  const rest = new FakeRest();
  for (const c of ['ippools', 'bgppeers', 'fabricconfigs', 'nodefabrics', 'loadbalancerpools', 'l2segments']) rest.set(`${API_PATH}/${c}`, []);
  rest.set('/api/v1/nodes', []);
  rest.set('/api/v1/services', []);
  rest.set(`${API_PATH}/bgppeers`, peers);
  controller = new FabricController({ rest: rest.asRest(), events: new MemoryEventSink(), registry: newRegistry('ctl-triggers', false), resyncMs: 3_600_000 });
  return { rest, started: controller.start() };
}

/** The Valid condition of the last status the controller wrote for a peer. */
const lastValid = (rest: FakeRest, name: string) =>
  (rest.calls.filter((c) => c.method === 'APPLY' && c.path === `${API_PATH}/bgppeers/${name}/status`).at(-1)?.body as any)?.status.conditions.find((c: any) => c.type === 'Valid');

describe('FabricController triggers (fake client)', () => {
  it('a pool created, then deleted, after a BGPPeer re-judges the peer at once (resync is an hour away)', async () => {
    const { rest, started } = start([{ apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: meta('tor'), spec: { peerAddress: '10.250.3.1', peerASN: 65002 } }]);
    await started;
    await waitFor('peer valid', async () => lastValid(rest, 'tor')?.status === 'True', 10_000, 10);
    const pool = { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: meta('late'), spec: { cidr: '10.250.0.0/16' } };
    rest.emit(`${API_PATH}/ippools`, 'ADDED', pool);
    await waitFor('AddressInPodCIDR', async () => lastValid(rest, 'tor')?.reason === 'AddressInPodCIDR', 10_000, 10);
    rest.emit(`${API_PATH}/ippools`, 'DELETED', pool);
    await waitFor('valid again', async () => lastValid(rest, 'tor')?.status === 'True', 10_000, 10);
    expect(lastValid(rest, 'tor')).toMatchObject({ reason: 'Valid' });
  });
});
