/**
 * The Service drain against real gobgpd and a real FRR ToR: two nodes advertise one LoadBalancer
 * address (externalTrafficPolicy Cluster) and the ToR spreads it over both (ECMP). Node n1 is
 * cordoned: planNodeServices adds GRACEFUL_SHUTDOWN, the agent's own path (diffBgp → the GoBGP
 * Router) re-advertises it, and FRR must lower n1's path to local-preference 0 and forward only to n2;
 * after the delay the route is withdrawn; uncordoning restores ECMP. Pod CIDRs stay throughout.
 *
 *   pf-svd-n1 (gobgpd AS 65001) eth0 10.251.1.11 ── v-n1 10.251.1.1 ┐
 *                                                                    ├ pf-svd-tor (FRR AS 65100, maximum-paths)
 *   pf-svd-n2 (gobgpd AS 65002) eth0 10.251.2.12 ── v-n2 10.251.2.1 ┘
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffBgp } from '../../operator/agent/bgp-diff.js';
import { createGoBgpRouter } from '../../operator/gobgp/client.js';
import type { Advertisement, PeerConfig, Router } from '../../operator/gobgp/speaker.js';
import { LoadBalancerPool, type ServicesConfigInput } from '../../operator/api/services.js';
import { parseObject } from '../../operator/api/kinds.js';
import { planNodeServices, type NodeAdvertisements } from '../../operator/services/index.js';
import { waitUntil } from '../../hack/lab/lib/daemon.js';
import { frrDir, startFrr, stopFrr, vtyshJson, waitEstablished, waitFibRoute, type FrrRouter } from '../../hack/lab/lib/frr.js';
import { gobgpDir, startGobgpd, stopGobgpd } from '../../hack/lab/lib/gobgpd.js';
import { addAddress, addNamespace, addVeth, cleanupByPrefix } from '../../hack/lab/lib/netns.js';

const TOR = 'pf-svd-tor';
const VIP = '192.0.2.1/32';
const nodes = [
  { name: 'pf-svd-n1', asn: 65001, ip: '10.251.1.11', gw: '10.251.1.1', dev: 'v-n1', podCIDR: '10.244.1.0/24' },
  { name: 'pf-svd-n2', asn: 65002, ip: '10.251.2.12', gw: '10.251.2.1', dev: 'v-n2', podCIDR: '10.244.2.0/24' },
];
const tor: FrrRouter = { name: TOR, ns: TOR, asn: 65100, routerId: '10.251.0.1', neighbors: nodes.map((n) => ({ address: n.ip, remoteAs: n.asn })) };
const config: ServicesConfigInput = { drain: { withdrawDelaySeconds: 30 }, loadBalancer: { communities: ['65100:10'] } };
const pools = [parseObject(LoadBalancerPool, { apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', metadata: { name: 'lb' }, spec: { cidrs: ['192.0.2.0/28'] } })];
const services = [
  {
    metadata: { name: 'web', namespace: 'shop' },
    spec: { type: 'LoadBalancer', clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], externalTrafficPolicy: 'Cluster', ports: [{ port: 80, protocol: 'TCP' }] },
    status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } },
  },
];
const slices = [{ metadata: { namespace: 'shop', name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.2.5'], nodeName: 'pf-svd-n2', conditions: { ready: true } }] }];

const routers = new Map<string, Router>();
const previous = new Map<string, NodeAdvertisements>();

/** What the agent does each sync: pod CIDR + Service advertisements → diffBgp → the Router. */
async function sync(n: (typeof nodes)[number], unschedulable: boolean, now: number, cordonedSince?: number) {
  const node = { metadata: { name: n.name }, spec: { unschedulable }, status: { addresses: [{ type: 'InternalIP', address: n.ip }] } };
  const plan = planNodeServices({
    node,
    config,
    pools,
    services,
    endpointSlices: slices,
    ...(previous.has(n.name) ? { previous: previous.get(n.name)! } : {}),
    ...(cordonedSince !== undefined ? { previousStatus: { phase: 'Draining' as const, advertised: 1, drainingSince: new Date(cordonedSince).toISOString().replace(/\.\d{3}Z$/, 'Z') } } : {}),
    now,
  });
  previous.set(n.name, plan.result);
  const r = routers.get(n.name)!;
  const peer: PeerConfig = { address: n.gw, peerAsn: 65100, holdTime: 9, keepaliveInterval: 3, connectRetry: 1 };
  const advertisements: Advertisement[] = [{ prefix: n.podCIDR, nextHop: n.ip, communities: [] }, ...plan.advertisements];
  const observed = { global: await r.getGlobal(), peers: (await r.listPeers()).map((p) => p.config), advertisements: await r.listAdvertisements() };
  const d = diffBgp({ global: { asn: n.asn, routerId: n.ip, listenPort: -1 }, peers: [peer], advertisements }, observed);
  if (d.startBgp) await r.startBgp(d.startBgp);
  for (const p of d.addPeers) await r.addPeer(p);
  if (d.addAdvertisements.length) await r.addAdvertisements(d.addAdvertisements);
  if (d.deleteAdvertisements.length) await r.deleteAdvertisements(d.deleteAdvertisements);
  return plan;
}

interface FrrPath {
  nexthops?: Array<{ ip?: string }>;
  locPrf?: number;
  community?: { string?: string };
}
const vipPaths = async () => ((await vtyshJson<{ paths?: FrrPath[] }>(TOR, `show bgp ipv4 unicast ${VIP} json`)).paths ?? []).map((p) => ({ via: p.nexthops?.[0]?.ip ?? '', locPrf: p.locPrf ?? 100, community: p.community?.string ?? '' })).sort((a, b) => a.via.localeCompare(b.via));

async function cleanup() {
  for (const r of routers.values()) r.close();
  await stopFrr(TOR, 'SIGKILL');
  for (const n of nodes) await stopGobgpd(n.name, 'SIGKILL');
  await cleanupByPrefix('pf-svd-');
}

beforeAll(async () => {
  await cleanup();
  await addNamespace(TOR);
  for (const n of nodes) {
    await addNamespace(n.name);
    await addVeth(n.name, 'eth0', TOR, n.dev);
    await addAddress(n.name, 'eth0', `${n.ip}/24`);
    await addAddress(TOR, n.dev, `${n.gw}/24`);
  }
  await startFrr(tor);
  for (const n of nodes) routers.set(n.name, createGoBgpRouter(await startGobgpd(n.name, n.name)));
});

afterAll(async () => {
  await cleanup();
  await rm(frrDir(TOR), { recursive: true, force: true });
  for (const n of nodes) await rm(gobgpDir(n.name), { recursive: true, force: true });
});

describe('drain of Service routes through gobgpd to FRR', () => {
  it('cordon → GRACEFUL_SHUTDOWN lowers the node to local-preference 0 at the ToR → withdraw after the delay → uncordon restores ECMP; pod CIDRs stay', async () => {
    const t0 = Date.parse('2026-12-04T17:00:00Z');
    for (const n of nodes) await sync(n, false, t0);
    for (const n of nodes) await waitEstablished(TOR, n.ip);
    await waitFibRoute(TOR, VIP, { via: ['10.251.1.11', '10.251.2.12'] });
    expect(await vipPaths()).toEqual([
      { via: '10.251.1.11', locPrf: 100, community: '65100:10' },
      { via: '10.251.2.12', locPrf: 100, community: '65100:10' },
    ]);

    const draining = await sync(nodes[0]!, true, t0 + 1000);
    expect(draining).toMatchObject({ status: { phase: 'Draining' }, nextWakeAt: t0 + 31_000, phaseEvent: { reason: 'ServiceDrainStarted' } });
    await waitFibRoute(TOR, VIP, { via: '10.251.2.12' });
    const paths = await waitUntil('n1 path with graceful-shutdown at the ToR', async () => {
      const p = await vipPaths();
      return p.find((x) => x.via === '10.251.1.11')?.community.includes('graceful-shutdown') ? p : null;
    });
    expect(paths).toEqual([
      { via: '10.251.1.11', locPrf: 0, community: '65100:10 graceful-shutdown' },
      { via: '10.251.2.12', locPrf: 100, community: '65100:10' },
    ]);

    const drained = await sync(nodes[0]!, true, t0 + 31_000, t0 + 1000);
    expect(drained).toMatchObject({ advertisements: [], status: { phase: 'Drained' }, phaseEvent: { reason: 'ServiceRoutesWithdrawn' } });
    await waitUntil('n1 path withdrawn at the ToR', async () => ((await vipPaths()).length === 1 ? true : null));
    expect(await vipPaths()).toEqual([{ via: '10.251.2.12', locPrf: 100, community: '65100:10' }]);
    await waitFibRoute(TOR, '10.244.1.0/24', { via: '10.251.1.11' }); // the pod CIDR never left

    const back = await sync(nodes[0]!, false, t0 + 40_000);
    expect(back.phaseEvent?.reason).toBe('ServiceRoutesRestored');
    await waitFibRoute(TOR, VIP, { via: ['10.251.1.11', '10.251.2.12'] });
  });
});
