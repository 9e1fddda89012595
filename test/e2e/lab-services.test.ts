/**
 * The lab as a cluster, end to end: Pods that are Pod objects, kube-controller-manager's EndpointSlices,
 * kube-proxy (nftables) in every node namespace, Services reached over real TCP and UDP connections from
 * pods on every node and rack. The oracle is who answers: every lab pod answers "namespace/name".
 * Owns the pf-lab-* namespaces like lab.test.ts (files run one after the other).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../hack/lab/lib/daemon.js';
import { inNs } from '../../hack/lab/lib/netns.js';
import { addPod, connect, delPod, down, growNode, kubectl, kubeProxyPidFile, labRest, podId, startKubeProxy, STATE, stopKubeProxy, up, waitNodesReady, type LabPod, type LabState, type Proto } from '../../hack/lab/lab.js';
import { API_PATH as API } from '../../operator/api/common.js';
import type { NodeFabricObj } from '../../operator/api/kinds.js';

let s: LabState;
let conntrackMaxBefore: string;
const conntrackMax = () => readFile('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8').then((t) => t.trim());
const json = async <T>(args: string[]): Promise<T> => JSON.parse((await kubectl(s, [...args, '-o', 'json'])).stdout) as T;
const apply = (o: unknown) => kubectl(s, ['apply', '-f', '-'], JSON.stringify(o));

/** `tries` connections from a pod; the answers (null = no answer). */
async function answers(from: LabPod, ip: string, port: number, proto: Proto, tries: number): Promise<Array<string | null>> {
  const out: Array<string | null> = [];
  // 3 s: a SYN lost on a busy machine is resent after 1 s, which the default 1 s timeout would call "no answer".
  for (let i = 0; i < tries; i++) out.push(await connect(from, ip, port, proto, 3000));
  return out;
}

/** Connects until every one of `want` has answered at least once; fails on an answer outside `want`. */
async function reachesAll(from: LabPod, ip: string, port: number, proto: Proto, want: string[]): Promise<void> {
  const seen = new Set<string>();
  await waitUntil(`${podId(from)} → ${ip}:${port}/${proto} answered by ${want.join(', ')}`, async () => {
    const a = await connect(from, ip, port, proto);
    if (a !== null) {
      expect(want, `unexpected answer from ${ip}:${port}/${proto}`).toContain(a);
      seen.add(a);
    }
    return want.every((w) => seen.has(w));
  }, 60_000, 0);
}

const service = (name: string, namespace: string, selector: Record<string, string>, ports: unknown[], type = 'ClusterIP') => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace },
  spec: { type, selector, ports },
});

const clusterIP = async (ns: string, name: string) => (await json<{ spec: { clusterIP: string } }>(['-n', ns, 'get', 'svc', name])).spec.clusterIP;

let clients: LabPod[];
let web: LabPod[];

beforeAll(async () => {
  conntrackMaxBefore = await conntrackMax();
  s = await up({ racks: 2, nodesPerRack: 2, dualStack: false, podsPerNode: 0, controllers: 1 }, { skipBuild: true });
  // Servers in namespace x on two racks; one client per node in namespace y.
  web = [await addPod(s, 'r1n1', 'web-a', { namespace: 'x', labels: { app: 'web', pod: 'a' } }), await addPod(s, 'r2n2', 'web-b', { namespace: 'x', labels: { app: 'web', pod: 'b' } })];
  clients = [];
  for (const n of s.nodes) clients.push(await addPod(s, n.name, `client-${n.name}`, { namespace: 'y', labels: { pod: `client-${n.name}` } }));
}, 300_000);

afterAll(async () => {
  await down();
}, 120_000);

describe('the lab as a cluster', () => {
  it('pods are Pod objects: namespace, labels, named ports, node; Running and Ready with their CNI addresses', async () => {
    const p = await json<{
      metadata: { labels: Record<string, string> };
      spec: { nodeName: string; containers: Array<{ ports: Array<{ name: string; containerPort: number; protocol: string }> }> };
      status: { phase: string; podIPs: Array<{ ip: string }>; conditions: Array<{ type: string; status: string }> };
    }>(['-n', 'x', 'get', 'pod', 'web-a']);
    expect(p.metadata.labels).toEqual({ app: 'web', pod: 'a' });
    expect(p.spec.nodeName).toBe('r1n1');
    expect(p.spec.containers[0]!.ports.map((x) => `${x.name}=${x.containerPort}/${x.protocol}`).sort()).toEqual(['serve-80-tcp=80/TCP', 'serve-80-udp=80/UDP', 'serve-81-tcp=81/TCP', 'serve-81-udp=81/UDP']);
    expect(p.status.phase).toBe('Running');
    expect(p.status.podIPs.map((x) => x.ip)).toEqual(web[0]!.ips);
    expect(p.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    // Each pod serves TCP and UDP on 80 and 81, answering with its namespace/name.
    for (const port of [80, 81]) for (const proto of ['tcp', 'udp'] as const) expect(await connect(clients[3]!, web[0]!.ips[0]!, port, proto)).toBe('x/web-a');
  });

  it('Node Leases are renewed, and owned by their Nodes', async () => {
    const lease = () => json<{ spec: { renewTime: string }; metadata: { ownerReferences: Array<{ kind: string; name: string }> } }>(['-n', 'kube-node-lease', 'get', 'lease', 'r1n2']);
    const first = await lease();
    expect(first.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Node', name: 'r1n2' })]);
    await waitUntil('lease renewed', async () => (await lease()).spec.renewTime !== first.spec.renewTime, 30_000, 500);
  });

  it('kube-proxy runs in every node namespace, in nftables mode, and leaves the machine-wide conntrack limit alone', async () => {
    for (const n of s.nodes) {
      const tables = (await inNs(n.ns, ['nft', 'list', 'tables'])).stdout;
      expect(tables).toContain('table ip kube-proxy');
      const conf = await readFile(join(STATE, 'nodes', n.name, 'kube-proxy.yaml'), 'utf8');
      expect(conf).toContain(`hostnameOverride: ${n.name}`);
      expect(conf).toContain('detectLocalMode: NodeCIDR');
    }
    expect(await conntrackMax()).toBe(conntrackMaxBefore);
  });

  it('the kubernetes Service answers from a pod, with the certificate the root CA publisher put in its namespace', async () => {
    const eps = await json<{ endpoints: Array<{ addresses: string[] }> }>(['-n', 'default', 'get', 'endpointslice', 'kubernetes']);
    expect(eps.endpoints.flatMap((e) => e.addresses)).toEqual(['172.30.0.10']);
    const ca = await waitUntil('kube-root-ca.crt in y', async () => (await json<{ data: Record<string, string> }>(['-n', 'y', 'get', 'configmap', 'kube-root-ca.crt'])).data['ca.crt'], 30_000, 200);
    const caFile = join(STATE, 'test-ca.crt');
    await writeFile(caFile, ca);
    for (const c of [clients[0]!, clients[3]!]) {
      const r = await inNs(c.ns, ['curl', '-sS', '-m', '5', '--cacert', caFile, 'https://10.96.0.1:443/version'], { allowFail: true });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    }
  });

  it('a ClusterIP Service reaches its pods on both racks from a pod on every node, over TCP and UDP, through named target ports', async () => {
    await apply(service('web', 'x', { app: 'web' }, [
      { name: 'http', port: 80, targetPort: 'serve-80-tcp', protocol: 'TCP' },
      { name: 'dns-ish', port: 53, targetPort: 'serve-81-udp', protocol: 'UDP' },
    ]));
    const ip = await clusterIP('x', 'web');
    for (const c of clients) {
      await reachesAll(c, ip, 80, 'tcp', ['x/web-a', 'x/web-b']);
      await reachesAll(c, ip, 53, 'udp', ['x/web-a', 'x/web-b']);
    }
  });

  it('a NodePort Service answers on every node address, from pods on every node', async () => {
    await apply(service('web-np', 'x', { app: 'web' }, [{ port: 8080, targetPort: 80, protocol: 'TCP' }], 'NodePort'));
    const svc = await json<{ spec: { ports: Array<{ nodePort: number }> } }>(['-n', 'x', 'get', 'svc', 'web-np']);
    const nodePort = svc.spec.ports[0]!.nodePort;
    expect(nodePort).toBeGreaterThanOrEqual(30000);
    for (const c of clients) {
      for (const n of s.nodes) {
        const a = await waitUntil(`${podId(c)} → ${n.name} ${n.ip4}:${nodePort}`, () => connect(c, n.ip4, nodePort, 'tcp'), 60_000, 0);
        expect(['x/web-a', 'x/web-b']).toContain(a);
      }
    }
  });

  it('kubectl expose pod NAME --port P --target-port 80, then a connection to the ClusterIP works', async () => {
    await kubectl(s, ['-n', 'x', 'expose', 'pod', 'web-b', '--port', '8000', '--target-port', '80']);
    const ip = await clusterIP('x', 'web-b');
    for (const c of clients) expect(await waitUntil(`${podId(c)} → ${ip}:8000`, () => connect(c, ip, 8000, 'tcp'), 60_000, 0)).toBe('x/web-b');
  });

  it('contract with kube-proxy: a new node has Node.spec.podCIDRs before its agent reports ready, they equal its NodeFabric\'s and can never change', async () => {
    const rest = labRest(s);
    const name = 'r1n3';
    let cidrsRV = 0;
    let readyRV = 0;
    try {
      const rvOf = async (path: string) => (await rest.get<{ metadata: { resourceVersion: string } }>(path)).metadata.resourceVersion;
      const sel = `fieldSelector=metadata.name%3D${name}`;
      // One etcd behind the apiserver: resourceVersions of both kinds come from the same revision counter.
      const wNode = rest.watch<{ metadata: { resourceVersion: string }; spec?: { podCIDRs?: string[] } }>(`/api/v1/nodes?watch=1&${sel}&resourceVersion=${await rvOf('/api/v1/nodes')}`, (e) => {
        if (!cidrsRV && e.object.spec?.podCIDRs?.length) cidrsRV = Number(e.object.metadata.resourceVersion);
      });
      const wNf = rest.watch<NodeFabricObj>(`${API}/nodefabrics?watch=1&${sel}&resourceVersion=${await rvOf(`${API}/nodefabrics`)}`, (e) => {
        const ready = e.object.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
        if (!readyRV && ready) readyRV = Number(e.object.metadata.resourceVersion);
      });
      void wNode.done.catch(() => undefined);
      void wNf.done.catch(() => undefined);
      const n = await growNode(s, 1);
      expect(n.name).toBe(name);
      await waitNodesReady(s, [name], 90_000);
      await waitUntil('both seen', async () => cidrsRV > 0 && readyRV > 0, 30_000, 50);
      wNode.stop();
      wNf.stop();
      expect(cidrsRV).toBeLessThan(readyRV);
      const nodeObj = await rest.get<{ spec: { podCIDRs: string[] } }>(`/api/v1/nodes/${name}`);
      expect(nodeObj.spec.podCIDRs).toEqual((await rest.get<NodeFabricObj>(`${API}/nodefabrics/${name}`)).spec.podCIDRs);
      const change = await rest.request('PATCH', `/api/v1/nodes/${name}`, { spec: { podCIDR: '10.244.250.0/24', podCIDRs: ['10.244.250.0/24'] } }, 'application/merge-patch+json').then(
        () => 'accepted',
        (e: Error) => e.message,
      );
      expect(change).toMatch(/422.*podCIDR/);
    } finally {
      rest.close();
    }
    // The new node's kube-proxy got its podCIDRs and serves Services to the pods there.
    const p = await addPod(s, name, `client-${name}`, { namespace: 'y' });
    clients.push(p);
    const ip = await clusterIP('x', 'web');
    await reachesAll(p, ip, 80, 'tcp', ['x/web-a', 'x/web-b']);
  });

  it('an endpoint removed (pod no longer selected, then a pod deleted): traffic stops going to it', async () => {
    const extra = await addPod(s, 'r2n1', 'web-c', { namespace: 'x', labels: { app: 'web', pod: 'c' } });
    const ip = await clusterIP('x', 'web');
    await reachesAll(clients[0]!, ip, 80, 'tcp', ['x/web-a', 'x/web-b', 'x/web-c']);
    // web-c still serves, but no longer matches the selector: no new connection reaches it.
    await kubectl(s, ['-n', 'x', 'label', 'pod', 'web-c', 'app-']);
    await waitUntil('web-c out of the EndpointSlice', async () => {
      const l = await json<{ items: Array<{ endpoints?: Array<{ addresses: string[] }> }> }>(['-n', 'x', 'get', 'endpointslice', '-l', 'kubernetes.io/service-name=web']);
      return !l.items.flatMap((i) => i.endpoints ?? []).some((e) => e.addresses.includes(extra.ips[0]!));
    }, 30_000, 100);
    expect(await connect(clients[0]!, extra.ips[0]!, 80, 'tcp')).toBe('x/web-c'); // alive
    // Every node's kube-proxy programs its own rules: wait for each client's node, not one of them.
    for (const c of clients) await waitUntil(`${podId(c)}: kube-proxy dropped web-c`, async () => !(await answers(c, ip, 80, 'tcp', 10)).includes('x/web-c'), 30_000, 0);
    for (const c of clients) for (const a of await answers(c, ip, 80, 'tcp', 8)) expect(['x/web-a', 'x/web-b']).toContain(a);
    // A deleted pod: its sandbox goes (CNI DEL by the lab kubelet) and the Service keeps answering from the other.
    await delPod(s, 'r1n1', 'web-a', { namespace: 'x' });
    await waitUntil('web-a out of the EndpointSlice', async () => {
      const l = await json<{ items: Array<{ endpoints?: Array<{ addresses: string[] }> }> }>(['-n', 'x', 'get', 'endpointslice', '-l', 'kubernetes.io/service-name=web']);
      return !l.items.flatMap((i) => i.endpoints ?? []).some((e) => e.addresses.includes(web[0]!.ips[0]!));
    }, 30_000, 100);
    for (const c of clients) await waitUntil(`${podId(c)}: only web-b answers`, async () => (await answers(c, ip, 80, 'tcp', 6)).every((a) => a === 'x/web-b'), 30_000, 0);
    for (const c of clients) expect(await answers(c, ip, 80, 'tcp', 6)).toEqual(Array(6).fill('x/web-b'));
    expect((await inNs('pf-lab-r1n1', ['ip', 'netns', 'list'])).stdout).not.toContain('pf-lab-x.web-a');
  });

  it('kube-proxy never restarted: the podCIDRs it started with never changed', async () => {
    for (const n of s.nodes) {
      const pid = Number((await readFile(kubeProxyPidFile(n.name), 'utf8')).trim());
      expect(() => process.kill(pid, 0)).not.toThrow();
      const log = await readFile(join(STATE, 'nodes', n.name, 'kube-proxy.log'), 'utf8');
      expect(log).not.toMatch(/PodCIDRs? changed|Node .* deleted|Exiting/i);
    }
  });

  it("iptables mode is selectable: a node's kube-proxy restarted in iptables mode serves Services created after the switch", async () => {
    const n = s.nodes.find((x) => x.name === 'r2n1')!;
    const client = clients.find((c) => c.node === n.name)!;
    await stopKubeProxy(n.name);
    await startKubeProxy({ ...s, opts: { ...s.opts, proxyMode: 'iptables' } }, n);
    await waitUntil(`${n.name}: kube-proxy's iptables chains`, async () => (await inNs(n.ns, ['iptables-save', '-t', 'nat'])).stdout.includes(':KUBE-SERVICES'), 60_000, 200);
    // Only the iptables proxier can know this Service: the nftables one on this node is gone.
    await apply(service('web-ipt', 'x', { app: 'web' }, [{ port: 9090, targetPort: 'serve-80-tcp', protocol: 'TCP' }], 'NodePort'));
    const ip = await clusterIP('x', 'web-ipt');
    expect(await waitUntil(`${podId(client)} → ${ip}:9090`, () => connect(client, ip, 9090, 'tcp'), 60_000, 0)).toBe('x/web-b');
    const nodePort = (await json<{ spec: { ports: Array<{ nodePort: number }> } }>(['-n', 'x', 'get', 'svc', 'web-ipt'])).spec.ports[0]!.nodePort;
    expect(await waitUntil(`${podId(clients[0]!)} → ${n.ip4}:${nodePort}`, () => connect(clients[0]!, n.ip4, nodePort, 'tcp'), 60_000, 0)).toBe('x/web-b');
    expect((await inNs(n.ns, ['iptables-save', '-t', 'nat'])).stdout).toContain('x/web-ipt');
  });
});
