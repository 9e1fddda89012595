/**
 * `kubectl fabric services` against the real kube-apiserver: Services written the way the controller
 * writes them (server-side apply of services/status: ingress + the podfabric.io/LoadBalancerAddress
 * condition), NodeFabric status.services the way agents write it, EndpointSlices the way
 * kube-controller-manager writes them; the real plugin runs as a subprocess (directly and as a kubectl
 * plugin). Exit 0 when every Service of our class has an address some node advertises; exit 1 for one
 * without an address, and for one whose address no node advertises while it has a ready endpoint.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_PATH as API } from '../../operator/api/common.js';
import type { NodeServicesStatus } from '../../operator/api/services.js';
import { run } from '../../operator/lib/exec.js';
import { repoRoot } from '../support/apiserver.js';
import { cleanCluster, ensureNamespace, testRest } from '../support/kube.js';

const AV = 'podfabric.io/v1alpha1';
const NS = 'kfs';
const rest = testRest();
const BIN = join(repoRoot, 'bin', 'kubectl-fabric.js');
let tmp: string;
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

const fabric = (args: string[], viaKubectl = false) =>
  viaKubectl
    ? run(['kubectl', 'fabric', ...args], { allowFail: true, timeoutMs: 60_000, env: { ...process.env, PATH: `${join(tmp, 'path')}:${process.env.PATH}` } })
    : run(['node', BIN, ...args], { allowFail: true, timeoutMs: 60_000 });

async function service(name: string, policy: 'Local' | 'Cluster', ip?: string, cls?: string): Promise<void> {
  await rest.request('POST', `/api/v1/namespaces/${NS}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name },
    spec: { type: 'LoadBalancer', externalTrafficPolicy: policy, ...(cls ? { loadBalancerClass: cls } : {}), selector: { app: name }, ports: [{ port: 80, protocol: 'TCP' }] },
  });
  if (cls) return;
  const condition = ip
    ? { type: 'podfabric.io/LoadBalancerAddress', status: 'True', reason: 'Assigned', message: `${ip} from pool lab-lb`, lastTransitionTime: now() }
    : { type: 'podfabric.io/LoadBalancerAddress', status: 'False', reason: 'PoolExhausted', message: 'pool lab-lb has no free IPv4 address', lastTransitionTime: now() };
  await rest.apply(
    `/api/v1/namespaces/${NS}/services/${name}/status`,
    { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS }, status: { loadBalancer: ip ? { ingress: [{ ip, ipMode: 'VIP' }] } : {}, conditions: [condition] } },
    'podfabric-controller',
  );
}

/** An EndpointSlice as kube-controller-manager writes it: one endpoint on a node. */
const slice = (svc: string, node: string, ready: boolean) =>
  rest.apply(
    `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices/${svc}-abcde`,
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${svc}-abcde`, namespace: NS, labels: { 'kubernetes.io/service-name': svc, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.0.5'], nodeName: node, conditions: { ready, serving: ready, terminating: false } }],
      ports: [{ port: 80, protocol: 'TCP' }],
    },
    'endpointslice-controller',
  );

async function nodeFabric(name: string, ip: string, services: NodeServicesStatus): Promise<void> {
  const spec = { podCIDRs: ['10.244.0.0/24'], allocations: [{ cidr: '10.244.0.0/24', pool: 'default' }], nodeIPs: [ip], asn: 64512, routerId: ip, advertisements: [], routing: { l2Segment: 'subnet:172.20.1.0/24' } };
  await rest.apply(`${API}/nodefabrics/${name}`, { apiVersion: AV, kind: 'NodeFabric', metadata: { name }, spec }, 'podfabric-controller');
  await rest.apply(`${API}/nodefabrics/${name}/status`, { apiVersion: AV, kind: 'NodeFabric', metadata: { name }, status: { services, lastSyncTime: now() } }, 'podfabric-agent');
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pf-kubectl-fabric-services-'));
  await mkdir(join(tmp, 'path'));
  await symlink(BIN, join(tmp, 'path', 'kubectl-fabric'));
  const out = join(repoRoot, 'build', 'operator', 'cli', 'fabric.js');
  const srcDir = join(repoRoot, 'operator', 'cli');
  const newest = Math.max(...(await readdir(srcDir)).map((f) => statSync(join(srcDir, f)).mtimeMs));
  if (!existsSync(out) || statSync(out).mtimeMs < newest) await run(['npx', 'tsc', '-p', join(repoRoot, 'tsconfig.json')], { allowFail: true, timeoutMs: 300_000 });
  await cleanCluster(rest);
  await ensureNamespace(NS);
  await service('web', 'Cluster', '198.51.100.1');
  await service('local', 'Local', '198.51.100.2');
  await service('other', 'Cluster', undefined, 'example.com/other');
  await slice('local', 'r1n1', true);
  const lb = (prefix: string, svc: string, communities?: string[]) => ({ prefix, class: 'LoadBalancer' as const, services: [`${NS}/${svc}`], ...(communities ? { communities } : {}) });
  await nodeFabric('r1n1', '172.20.1.11', { phase: 'Active', advertised: 2, routes: [lb('198.51.100.1/32', 'web'), lb('198.51.100.2/32', 'local')] });
  await nodeFabric('r1n2', '172.20.1.12', { phase: 'Draining', drainingSince: now(), advertised: 1, routes: [lb('198.51.100.1/32', 'web', ['65535:0'])] });
});

afterAll(async () => {
  for (const s of ['web', 'local', 'other', 'pending']) await rest.request('DELETE', `/api/v1/namespaces/${NS}/services/${s}`).catch(() => undefined);
  await rest.request('DELETE', `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices/local-abcde`).catch(() => undefined);
  await cleanCluster(rest);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('kubectl fabric services (real apiserver, real plugin process)', () => {
  it('every Service of our class advertised: exit 0, addresses, nodes, drain, conditions; the other class shown, not judged', async () => {
    const h = await fabric(['services', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^kubectl fabric services/);
    const r = await fabric(['services']);
    expect(r.stderr).toBe('');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^SERVICES +3 shown, 2 of class podfabric\.io\/bgp: OK$/m);
    expect(r.stdout).toMatch(/^kfs\/local +\(none\) +Local +198\.51\.100\.2 +1 \(r1n1\) +- +LoadBalancerAddress=True \(Assigned\)$/m);
    expect(r.stdout).toMatch(/^kfs\/other +example\.com\/other \(not ours\) +Cluster +<none> +- +- +-$/m);
    expect(r.stdout).toMatch(/^kfs\/web +\(none\) +Cluster +198\.51\.100\.1 +1 \(r1n1\) +1 \(r1n2\) +LoadBalancerAddress=True \(Assigned\)$/m);
    expect(r.stdout).toMatch(/^r1n2 +Draining +1 +\d{4}-/m);
    const k = await fabric(['services', '-o', 'json'], true);
    expect(k.code, k.stderr).toBe(0);
    const j = JSON.parse(k.stdout);
    expect(j.ok).toBe(true);
    expect(j.services.find((s: { service: string }) => s.service === 'kfs/web')).toMatchObject({ ours: true, trafficPolicy: 'Cluster', addresses: ['198.51.100.1'], advertisedBy: ['r1n1'], draining: ['r1n2'] });
  });

  it('an address no node advertises while a ready endpoint exists, or no address: exit 1 naming it; no ready endpoint: exit 0', async () => {
    await nodeFabric('r1n1', '172.20.1.11', { phase: 'Active', advertised: 1, routes: [{ prefix: '198.51.100.1/32', class: 'LoadBalancer', services: [`${NS}/web`] }] });
    let r = await fabric(['services']);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toContain('!! kfs/local: 198.51.100.2 advertised by no node though the Service has 1 ready endpoint(s)');
    await slice('local', 'r1n1', false);
    r = await fabric(['services']);
    expect(r.code, r.stdout).toBe(0);
    await service('pending', 'Cluster');
    r = await fabric(['services', '-o', 'json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems).toEqual(['kfs/pending: no address (PoolExhausted: pool lab-lb has no free IPv4 address)']);
  });
});
