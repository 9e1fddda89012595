/**
 * LoadBalancer Services in the lab, end to end: the controller assigns an address from the lab's
 * default LoadBalancerPool; with externalTrafficPolicy Local only the nodes with a ready local endpoint
 * advertise the /32 (the ToR's FIB shows exactly them as ECMP next hops); endpoint gone → withdrawn;
 * cordon → GRACEFUL_SHUTDOWN on the path, withdrawn after the drain delay; uncordon restores. Along the
 * way: the agents' Advertised / Withdrawn Events on the Service (from exactly the nodes concerned) and
 * `kubectl fabric services` (advertising node, draining node, exit 1 once withdrawn with a ready endpoint).
 * Real connections from the outside client beyond the spine (ToR → node → kube-proxy → pod): lab-outside.test.ts.
 * Owns the pf-lab-* namespaces like the other lab files (run under the shared lock).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../hack/lab/lib/daemon.js';
import { vtyshJson } from '../../hack/lab/lib/frr.js';
import { addPod, delPod, down, kubectl, up, type LabState } from '../../hack/lab/lab.js';
import { runFabric } from '../../operator/cli/fabric.js';

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
/** The agents' route Events on the Service: "REASON host: message". */
async function routeEvents(): Promise<string[]> {
  const r = await kubectl(s, ['-n', 'lb', 'get', 'events', '--field-selector', 'involvedObject.kind=Service,involvedObject.name=web', '-o', 'json']);
  const items = (JSON.parse(r.stdout) as { items: Array<{ reason: string; message: string; source?: { component?: string; host?: string } }> }).items;
  return items.filter((e) => e.source?.component === 'podfabric-agent').map((e) => `${e.reason} ${e.source?.host}: ${e.message}`);
}
const eventSeen = (want: string) => waitUntil(`Event "${want}" on lb/web`, async () => (await routeEvents()).includes(want), 30_000, 200);

/** kubectl fabric services, in process: exit code and output. */
async function fabricServices(): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runFabric(['services', `--kubeconfig=${s.kubeconfig}`], { out: (x) => (out += x), err: (x) => (out += x) });
  return { code, out };
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
  await kubectl(s, ['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify({ apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'default' }, spec: { services: { drain: { withdrawDelaySeconds: 5 } } } }));
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
    // The agent of the node with the endpoint says so on the Service (Local Services only).
    await eventSeen(`Advertised r1n1: node r1n1 advertises ${ip}/32 (ready local endpoint)`);
    expect((await routeEvents()).filter((e) => !e.includes(' r1n1: '))).toEqual([]);
    const f = await waitUntil('kubectl fabric services: OK, r1n1 advertises', async () => {
      const r = await fabricServices();
      return r.code === 0 && new RegExp(`^lb/web +\\(none\\) +Local +${ip.replace(/\./g, '\\.')} +1 \\(r1n1\\) +- +LoadBalancerAddress=True \\(Assigned\\)$`, 'm').test(r.out) && r;
    }, 30_000, 500);
    expect(f.out).toMatch(/^SERVICES +1 shown, 1 of class podfabric\.io\/bgp: OK$/m);
  });

  it('a second local endpoint on r1n2 → ECMP over both; the first gone → withdrawn from r1n1 at once', async () => {
    await addPod(s, 'r1n2', 'web-b', { namespace: 'lb', labels: { app: 'web' } });
    await hopsAre([R1N1, R1N2]);
    await eventSeen(`Advertised r1n2: node r1n2 advertises ${ip}/32 (ready local endpoint)`);
    await delPod(s, 'r1n1', 'web-a', { namespace: 'lb' });
    await hopsAre([R1N2]);
    await eventSeen(`Withdrawn r1n1: node r1n1 withdrew ${ip}/32 (no ready local endpoint)`);
  });

  it('cordon → GRACEFUL_SHUTDOWN, then withdrawn after the delay; uncordon restores', async () => {
    await kubectl(s, ['cordon', 'r1n2']);
    await waitUntil('graceful-shutdown community at the ToR', async () => (await communitiesFrom(R1N2)).some((c) => c === 'graceful-shutdown' || c === '65535:0'), 60_000, 100);
    // Within the drain delay kubectl fabric services shows r1n2 under DRAINING, advertising normally nowhere.
    await waitUntil('kubectl fabric services: r1n2 draining', async () => new RegExp(`^lb/web +\\(none\\) +Local +${ip.replace(/\./g, '\\.')} +0 +1 \\(r1n2\\) `, 'm').test((await fabricServices()).out), 5_000, 100);
    await hopsAre([]);
    await eventSeen(`Withdrawn r1n2: node r1n2 withdrew ${ip}/32 (node cordoned, drain delay over)`);
    // Withdrawn with a ready endpoint: kubectl fabric services says so and exits 1.
    const drained = await waitUntil('kubectl fabric services flags the unadvertised address', async () => {
      const r = await fabricServices();
      return r.code === 1 && r;
    }, 30_000, 500);
    expect(drained.out).toContain(`!! lb/web: ${ip} advertised by no node though the Service has 1 ready endpoint(s)`);
    await kubectl(s, ['uncordon', 'r1n2']);
    await hopsAre([R1N2]);
    expect(await communitiesFrom(R1N2)).not.toContain('graceful-shutdown');
  });
});
