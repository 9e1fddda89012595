/**
 * LoadBalancer Services in the lab, end to end: the controller assigns an address from the lab's
 * default LoadBalancerPool; with externalTrafficPolicy Local only the nodes with a ready local endpoint
 * advertise the /32 (the ToR's FIB shows exactly them as ECMP next hops); endpoint gone → withdrawn;
 * cordon → GRACEFUL_SHUTDOWN on the path, withdrawn after the drain delay; uncordon restores.
 * Real connections from the outside client beyond the spine (ToR → node → kube-proxy → pod): lab-outside.test.ts.
 * Owns the pf-lab-* namespaces like the other lab files (run under the shared lock).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../hack/lab/lib/daemon.js';
import { vtyshJson } from '../../hack/lab/lib/frr.js';
import { addPod, delPod, down, kubectl, up, type LabState } from '../../hack/lab/lab.js';

let s: LabState;
let ip = '';
const TOR1 = 'pf-lab-tor1';
const R1N1 = '172.20.1.11';
const R1N2 = '172.20.1.12';

/** The ToR's installed next hops for the /32 (empty when it has no route). */
async function torNextHops(): Promise<string[]> {
  const r = await vtyshJson<Record<string, Array<{ installed?: boolean; protocol?: string; nexthops?: Array<{ ip?: string; active?: boolean }> }>>>(TOR1, `show ip route ${ip}/32 json`).catch(() => ({}));
  const entries = (r as Record<string, Array<{ installed?: boolean; protocol?: string; nexthops?: Array<{ ip?: string; active?: boolean }> }>>)[`${ip}/32`] ?? [];
  return entries.filter((e) => e.installed && e.protocol === 'bgp').flatMap((e) => (e.nexthops ?? []).filter((n) => n.active).map((n) => n.ip!)).sort();
}
const hopsAre = (want: string[]) => waitUntil(`${TOR1} next hops for ${ip}/32 = [${want.join(', ')}]`, async () => JSON.stringify(await torNextHops()) === JSON.stringify([...want].sort()), 60_000, 100);

/** Communities on the ToR's BGP paths for the /32 from a neighbour. */
async function communitiesFrom(peer: string): Promise<string[]> {
  const r = await vtyshJson<{ paths?: Array<{ community?: { string?: string }; peer?: { peerId?: string }; nexthops?: Array<{ ip?: string }> }> }>(TOR1, `show bgp ipv4 unicast ${ip}/32 json`).catch(() => ({ paths: [] }));
  const p = (r.paths ?? []).find((x) => x.peer?.peerId === peer || x.nexthops?.some((n) => n.ip === peer));
  return (p?.community?.string ?? '').split(' ').filter(Boolean);
}

beforeAll(async () => {
  s = await up({ racks: 2, nodesPerRack: 2, dualStack: false, podsPerNode: 0, controllers: 1 }, { skipBuild: true });
  await kubectl(s, ['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'default' }, spec: { services: { drain: { withdrawDelaySeconds: 3 } } } }));
  await addPod(s, 'r1n1', 'web-a', { namespace: 'lb', labels: { app: 'web' } });
  await kubectl(s, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'lb' }, spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', selector: { app: 'web' }, ports: [{ port: 80, protocol: 'TCP' }] } }));
});

afterAll(async () => {
  await down();
});

describe('lab: LoadBalancer Services over BGP', () => {
  it('gets an address from the lab pool; only the node with a ready local endpoint advertises it', async () => {
    await waitUntil('ingress assigned', async () => {
      ip = (await kubectl(s, ['-n', 'lb', 'get', 'svc', 'web', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'])).stdout.trim();
      return ip !== '';
    }, 60_000, 200);
    expect(ip).toMatch(/^198\.51\.100\.\d+$/);
    await hopsAre([R1N1]);
  });

  it('a second local endpoint on r1n2 → ECMP over both; the first gone → withdrawn from r1n1 at once', async () => {
    await addPod(s, 'r1n2', 'web-b', { namespace: 'lb', labels: { app: 'web' } });
    await hopsAre([R1N1, R1N2]);
    await delPod(s, 'r1n1', 'web-a', { namespace: 'lb' });
    await hopsAre([R1N2]);
  });

  it('cordon → GRACEFUL_SHUTDOWN, then withdrawn after the delay; uncordon restores', async () => {
    await kubectl(s, ['cordon', 'r1n2']);
    await waitUntil('graceful-shutdown community at the ToR', async () => (await communitiesFrom(R1N2)).some((c) => c === 'graceful-shutdown' || c === '65535:0'), 60_000, 100);
    await hopsAre([]);
    await kubectl(s, ['uncordon', 'r1n2']);
    await hopsAre([R1N2]);
    expect(await communitiesFrom(R1N2)).not.toContain('graceful-shutdown');
  });
});
