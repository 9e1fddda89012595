/**
 * The lab's outside client (pf-lab-ext, 203.0.113.10, beyond the spine) against the cluster, with real
 * TCP connections (issue #14):
 *   - LoadBalancer Services reached through the fabric: outside → spine → ToR (ECMP) → node → kube-proxy
 *     → pod. Cluster: every node advertises, every connection is answered, endpoints on more than one
 *     node answer. Local: only nodes with a ready local endpoint advertise, both answer, and the pod
 *     sees the client's own address; the endpoint gone → its node's route withdrawn, and connections
 *     then go only to the node that still has one.
 *   - natOutgoing programmed by the agents: a pod reaching the outside is seen with its own address;
 *     with natOutgoing on its IPPool, with its node's; pod-to-pod and pod-to-Service traffic keeps pod
 *     addresses; turned off, the table is gone and the pod address is seen again.
 * The oracle is the lab pod server's port 82, which answers "namespace/name PEER".
 * Owns the pf-lab-* namespaces like the other lab files (run under the shared lock).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../hack/lab/lib/daemon.js';
import { gatewaysOf, inNs, routesFor } from '../../hack/lab/lib/netns.js';
import { addPod, connect, delPod, down, kubectl, OUTSIDE, outsideClient, parsePeerAnswer, PEER_PORT, up, type LabPod, type LabState } from '../../hack/lab/lab.js';

let s: LabState;
const NODE_IP: Record<string, string> = { r1n1: '172.20.1.11', r1n2: '172.20.1.12', r2n1: '172.20.2.11', r2n2: '172.20.2.12' };
const SPINE = 'pf-lab-spine';
const outside = outsideClient(false);
let cluster: LabPod[];
let local: LabPod[];
let client: LabPod;

/** `n` TCP connections, one after the other, from a namespace; each answer (null: refused or timed out). */
async function burst(ns: string, ip: string, port: number, n: number): Promise<Array<string | null>> {
  const code = [
    'import socket,sys,json',
    'out=[]',
    'for i in range(int(sys.argv[3])):',
    '  try:',
    '    s=socket.create_connection((sys.argv[1],int(sys.argv[2])),1);s.settimeout(1);d=b""',
    '    while True:',
    '      c=s.recv(256)',
    '      if not c: break',
    '      d+=c',
    '    s.close();out.append(d.decode().strip() or None)',
    '  except OSError: out.append(None)',
    'print(json.dumps(out))',
  ].join('\n');
  const r = await inNs(ns, ['python3', '-c', code, ip, String(port), String(n)], { timeoutMs: n * 3000 + 10_000 });
  return JSON.parse(r.stdout) as Array<string | null>;
}

/**
 * Waits until a burst of connections is answered in full by exactly `who` (every node's kube-proxy has
 * the address, every advertised path leads to an endpoint), so that the asserted burst after it measures
 * the steady state, not kube-proxy catching up.
 */
const servedBy = (ip: string, who: string[]) =>
  waitUntil(`outside → ${ip}:80 answered by ${who.join(', ')} on every connection`, async () => {
    const a = (await burst(OUTSIDE.ns, ip, 80, 16)).map((x) => x?.split(' ')[0] ?? null);
    return a.every((x) => x !== null) && JSON.stringify([...new Set(a)].sort()) === JSON.stringify([...who].sort());
  }, 60_000, 100);

/** The kernel's next hops for ip/32 in a router namespace (BGP routes), sorted. */
const nextHops = async (router: string, ip: string) => (await routesFor(router, `${ip}/32`, { proto: 'bgp' })).flatMap(gatewaysOf).sort();
const hopsAre = (router: string, ip: string, want: string[]) =>
  waitUntil(`${router} next hops for ${ip}/32 = [${want.join(', ')}]`, async () => JSON.stringify(await nextHops(router, ip)) === JSON.stringify([...want].sort()), 60_000, 100);

const lbService = (name: string, policy: 'Cluster' | 'Local', app: string, targetPort: number) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'out' },
  spec: { type: 'LoadBalancer', externalTrafficPolicy: policy, selector: { app }, ports: [{ name: 'tcp', port: 80, targetPort, protocol: 'TCP' }] },
});

async function ingressOf(name: string): Promise<string> {
  return waitUntil(`${name} gets a LoadBalancer address`, async () => (await kubectl(s, ['-n', 'out', 'get', 'svc', name, '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'])).stdout.trim(), 60_000, 200);
}

/** What the outside server sees as the source of a connection from `from`. */
async function seenOutside(from: LabPod): Promise<string | undefined> {
  return parsePeerAnswer(await connect(from, OUTSIDE.ip4, PEER_PORT, 'tcp', 2000))?.peer;
}

const setNatOutgoing = (on: boolean) => kubectl(s, ['patch', 'ippool', 'pods-v4', '--type', 'merge', '-p', JSON.stringify({ spec: { natOutgoing: on } })]);
const natTableIn = async (node: string) => (await inNs(`pf-lab-${node}`, ['nft', 'list', 'tables'])).stdout.includes('inet podfabric-nat');
async function natReady(node: string): Promise<{ status?: string; reason?: string; message?: string } | undefined> {
  const nf = JSON.parse((await kubectl(s, ['get', 'nodefabric', node, '-o', 'json'])).stdout) as { status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> } };
  return nf.status?.conditions?.find((c) => c.type === 'NATReady');
}
const everyNodeNat = (reason: string) =>
  waitUntil(`NATReady reason ${reason} on every node`, async () => (await Promise.all(Object.keys(NODE_IP).map(natReady))).every((c) => c?.status === 'True' && c.reason === reason), 60_000, 200);

beforeAll(async () => {
  s = await up({ racks: 2, nodesPerRack: 2, dualStack: false, podsPerNode: 0, controllers: 1 }, { skipBuild: true });
  cluster = [await addPod(s, 'r1n1', 'c-1', { namespace: 'out', labels: { app: 'cweb' } }), await addPod(s, 'r2n2', 'c-2', { namespace: 'out', labels: { app: 'cweb' } })];
  local = [await addPod(s, 'r1n1', 'l-1', { namespace: 'out', labels: { app: 'lweb' } }), await addPod(s, 'r1n2', 'l-2', { namespace: 'out', labels: { app: 'lweb' } })];
  client = await addPod(s, 'r2n1', 'client', { namespace: 'out', labels: { app: 'client' } });
  await kubectl(s, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [lbService('cweb', 'Cluster', 'cweb', 80), lbService('lweb', 'Local', 'lweb', PEER_PORT)] }));
});

afterAll(async () => {
  await down();
});

describe('lab: the outside client reaches LoadBalancer Services through the fabric', () => {
  it('the outside client and the pods reach each other across the spine, with their own addresses', async () => {
    // The ToRs learn the client's subnet from the spine (a connected route it redistributes).
    const a = await waitUntil('outside → pod c-1', () => connect(outside, cluster[0]!.ips[0]!, PEER_PORT), 60_000, 100);
    expect(parsePeerAnswer(a)).toEqual({ who: 'out/c-1', peer: OUTSIDE.ip4 });
    expect(await seenOutside(client)).toBe(client.ips[0]);
  });

  it('Cluster: every node advertises (ECMP at the spine and both ToRs); every connection is answered, by endpoints on both nodes', async () => {
    const ip = await ingressOf('cweb');
    expect(ip).toMatch(/^198\.51\.100\.\d+$/);
    await hopsAre(SPINE, ip, ['172.31.1.1', '172.31.2.1']);
    await hopsAre('pf-lab-tor1', ip, [NODE_IP.r1n1!, NODE_IP.r1n2!]);
    await hopsAre('pf-lab-tor2', ip, [NODE_IP.r2n1!, NODE_IP.r2n2!]);
    await servedBy(ip, ['out/c-1', 'out/c-2']);
    const answers = await burst(OUTSIDE.ns, ip, 80, 40);
    expect(answers.filter((a) => a === null)).toHaveLength(0);
    for (const a of answers) expect(['out/c-1', 'out/c-2']).toContain(a);
    expect(new Set(answers)).toEqual(new Set(['out/c-1', 'out/c-2']));
  });

  it('Local: only the nodes with a ready endpoint advertise; both answer and see the client itself; endpoint gone → withdrawn, the other node serves every connection', async () => {
    const ip = await ingressOf('lweb');
    await hopsAre('pf-lab-tor1', ip, [NODE_IP.r1n1!, NODE_IP.r1n2!]);
    await hopsAre(SPINE, ip, ['172.31.1.1']);
    expect(await nextHops('pf-lab-tor2', ip)).toEqual(['172.31.2.2']); // rack 2 has no endpoint: only the path back up to the spine
    await servedBy(ip, ['out/l-1', 'out/l-2']);
    const answers = (await burst(OUTSIDE.ns, ip, 80, 40)).map(parsePeerAnswer);
    expect(answers.filter((a) => a === null)).toHaveLength(0);
    expect(new Set(answers.map((a) => a!.who))).toEqual(new Set(['out/l-1', 'out/l-2'])); // the ToR spreads flows over both nodes
    expect(new Set(answers.map((a) => a!.peer))).toEqual(new Set([OUTSIDE.ip4])); // no SNAT: the pod sees the client

    await delPod(s, 'r1n1', 'l-1', { namespace: 'out' });
    await hopsAre('pf-lab-tor1', ip, [NODE_IP.r1n2!]);
    const after = (await burst(OUTSIDE.ns, ip, 80, 30)).map(parsePeerAnswer);
    expect(after).toEqual(Array.from({ length: 30 }, () => ({ who: 'out/l-2', peer: OUTSIDE.ip4 })));
  });
});

describe('lab: natOutgoing programmed by the agents', () => {
  it('off (the default): no table on any node, NATReady NoNatOutgoingPool, the outside sees the pod address', async () => {
    await everyNodeNat('NoNatOutgoingPool');
    for (const n of Object.keys(NODE_IP)) expect(await natTableIn(n), n).toBe(false);
    expect(await seenOutside(client)).toBe(client.ips[0]);
  });

  it("on: the outside sees the node's address; pod to pod, pod to Service and outside to pod keep their addresses", async () => {
    await setNatOutgoing(true);
    await waitUntil("the outside sees the client's node", async () => (await seenOutside(client)) === NODE_IP.r2n1, 60_000, 100);
    await everyNodeNat('Programmed');
    for (const n of Object.keys(NODE_IP)) expect(await natTableIn(n), n).toBe(true);
    const table = (await inNs('pf-lab-r2n1', ['nft', 'list', 'table', 'inet', 'podfabric-nat'])).stdout;
    expect(table).toContain('ip saddr @nat-sources-v4 ip daddr != @cluster-dests-v4 masquerade');
    // pod → pod in another rack, pod → ClusterIP (kube-proxy DNATs to a pod): the server sees the pod
    expect(parsePeerAnswer(await connect(client, cluster[0]!.ips[0]!, PEER_PORT))).toEqual({ who: 'out/c-1', peer: client.ips[0] });
    const lwebClusterIP = (await kubectl(s, ['-n', 'out', 'get', 'svc', 'lweb', '-o', 'jsonpath={.spec.clusterIP}'])).stdout.trim();
    expect(parsePeerAnswer(await connect(client, lwebClusterIP, 80))).toEqual({ who: 'out/l-2', peer: client.ips[0] });
    // connections from the outside are not touched (NAT decides on a flow's first packet only)
    expect(parsePeerAnswer(await connect(outside, client.ips[0]!, PEER_PORT))).toEqual({ who: 'out/client', peer: OUTSIDE.ip4 });
  });

  it('off again: the table is deleted on every node and the outside sees the pod address', async () => {
    await setNatOutgoing(false);
    await waitUntil('the outside sees the pod address again', async () => (await seenOutside(client)) === client.ips[0], 60_000, 100);
    await everyNodeNat('NoNatOutgoingPool');
    for (const n of Object.keys(NODE_IP)) expect(await natTableIn(n), n).toBe(false);
  });
});
