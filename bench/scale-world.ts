/**
 * The world `npm run bench -- scale` builds on a fresh apiserver before any agent starts: N Nodes in
 * racks of RACK_SIZE (one /24 per rack, 172.16.RACK.0/24), one ToR BGPPeer per rack (TCP MD5 password
 * from one Secret), a FabricConfig, an IPPool, a LoadBalancerPool, and a small workload whose every
 * object each agent watches: Namespaces, Pods (running, with addresses), Services (some LoadBalancer),
 * their EndpointSlices, and NetworkPolicies.
 */
import { API_PATH, API_VERSION } from '../operator/api/common.js';
import type { KubeRest } from '../operator/kube/rest.js';

export const RACK_SIZE = 40;
export const PEER_NS = 'podfabric-system';

export interface WorldSize {
  nodes: number;
  namespaces: number;
  pods: number;
  services: number;
  loadBalancers: number;
  policies: number;
}

export const defaultWorld = (nodes: number): WorldSize => ({ nodes, namespaces: 10, pods: 300, services: 100, loadBalancers: 10, policies: 6 });

export const nodeName = (i: number) => `node-${String(i).padStart(5, '0')}`;
export const rackOf = (i: number) => Math.floor(i / RACK_SIZE);
export const nodeIP = (i: number) => `172.16.${rackOf(i)}.${(i % RACK_SIZE) + 1}`;
export const rackSubnet = (i: number) => `172.16.${rackOf(i)}.0/24`;
export const torAddress = (rack: number) => `172.16.${rack}.254`;
const podIP = (i: number) => `10.200.${Math.floor(i / 250)}.${(i % 250) + 1}`;

async function parallel<T>(items: T[], n: number, fn: (t: T, i: number) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) {
        const k = i++;
        await fn(items[k]!, k);
      }
    }),
  );
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Creates the world (50 writes in flight). */
export async function buildWorld(rest: KubeRest, w: WorldSize): Promise<void> {
  const post = (path: string, body: unknown) => rest.request('POST', path, body);
  await post(`${API_PATH}/fabricconfigs`, { apiVersion: API_VERSION, kind: 'FabricConfig', metadata: { name: 'default' }, spec: { asn: 64512, routerIdSource: 'NodeIPv4', routeProtocol: 201 } });
  await post(`${API_PATH}/ippools`, { apiVersion: API_VERSION, kind: 'IPPool', metadata: { name: 'pods' }, spec: { cidr: '10.0.0.0/9', blockSize: 24 } });
  await post(`${API_PATH}/loadbalancerpools`, { apiVersion: API_VERSION, kind: 'LoadBalancerPool', metadata: { name: 'public' }, spec: { cidrs: ['192.0.2.0/24'] } });
  await post(`/api/v1/namespaces/${PEER_NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tor-password' }, data: { password: Buffer.from('bench-md5').toString('base64') } });
  const racks = rackOf(w.nodes - 1) + 1;
  await parallel(range(racks), 50, (r) =>
    post(`${API_PATH}/bgppeers`, {
      apiVersion: API_VERSION,
      kind: 'BGPPeer',
      metadata: { name: `tor-r${r}` },
      spec: { peerAddress: torAddress(r), peerASN: 65000, nodeSelector: { matchLabels: { 'podfabric.io/rack': `r${r}` } }, passwordSecretRef: { namespace: PEER_NS, name: 'tor-password' } },
    }),
  );
  await parallel(range(w.nodes), 50, (i) =>
    post('/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: nodeName(i), labels: { 'podfabric.io/rack': `r${rackOf(i)}`, 'kubernetes.io/hostname': nodeName(i) } },
      status: { addresses: [{ type: 'InternalIP', address: nodeIP(i) }] },
    }),
  );
  const ns = (i: number) => `app-${i % w.namespaces}`;
  await parallel(range(w.namespaces), 10, (i) => post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns(i), labels: { team: `t${i % 3}` } } }));
  const apps = w.services;
  await parallel(range(w.pods), 50, async (i) => {
    const name = `pod-${i}`;
    await post(`/api/v1/namespaces/${ns(i)}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { app: `a${i % apps}`, tier: i % 3 ? 'web' : 'db' } },
      spec: { nodeName: nodeName((i * 7919) % w.nodes), containers: [{ name: 'app', image: 'registry.example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }] },
    });
    await rest.request('PATCH', `/api/v1/namespaces/${ns(i)}/pods/${name}/status`, { status: { phase: 'Running', podIP: podIP(i), podIPs: [{ ip: podIP(i) }] } }, 'application/merge-patch+json');
  });
  // Service s selects app a<s> in namespace app-<s % namespaces>: its pods are i ≡ s (mod services) there.
  await parallel(range(w.services), 20, async (s) => {
    const lb = s < w.loadBalancers;
    const name = `svc-${s}`;
    await post(`/api/v1/namespaces/${ns(s)}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name },
      spec: { selector: { app: `a${s}` }, ports: [{ name: 'http', port: 80, targetPort: 8080 }], ...(lb ? { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false } : {}) },
    });
    const pods = range(w.pods).filter((i) => i % apps === s && ns(i) === ns(s));
    await post(`/apis/discovery.k8s.io/v1/namespaces/${ns(s)}/endpointslices`, {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-1`, labels: { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': 'bench' } },
      addressType: 'IPv4',
      endpoints: pods.map((i) => ({ addresses: [podIP(i)], conditions: { ready: true, serving: true, terminating: false }, nodeName: nodeName((i * 7919) % w.nodes) })),
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
  });
  await parallel(range(w.policies), 10, (p) => {
    const spec =
      p % 3 === 0
        ? { podSelector: {}, policyTypes: ['Ingress'] } // default deny ingress
        : p % 3 === 1
          ? { podSelector: { matchLabels: { tier: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'web' } } }], ports: [{ port: 'http' }] }] }
          : {
              podSelector: { matchLabels: { tier: 'web' } },
              policyTypes: ['Ingress', 'Egress'],
              ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 't0' } } }] }],
              egress: [{ to: [{ ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.1.0/24'] } }, { podSelector: { matchLabels: { tier: 'db' } } }], ports: [{ port: 5432 }, { protocol: 'UDP', port: 53 }] }],
            };
    return post(`/apis/networking.k8s.io/v1/namespaces/${ns(p)}/networkpolicies`, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `pol-${p}` }, spec });
  });
}

export function describeWorld(w: WorldSize): string {
  const racks = rackOf(w.nodes - 1) + 1;
  return `${w.nodes} Nodes in ${racks} racks of ${RACK_SIZE} (one ToR BGPPeer per rack, MD5 password from one Secret), ${w.namespaces} Namespaces, ${w.pods} running Pods, ${w.services} Services (${w.loadBalancers} LoadBalancer from one LoadBalancerPool) with one EndpointSlice each, ${w.policies} NetworkPolicies, one FabricConfig`;
}
