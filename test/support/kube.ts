/** Helpers for integration tests against the real kube-apiserver started by test/setup/global.ts. */
import { run } from '../../operator/lib/exec.js';
import { KubeRest, loadKubeConfig, isNotFound } from '../../operator/kube/rest.js';
import { API_PATH as API } from '../../operator/api/common.js';

export function kubeconfigPath(): string {
  const p = process.env.PODFABRIC_TEST_KUBECONFIG ?? process.env.KUBECONFIG;
  if (!p) throw new Error('no KUBECONFIG: integration tests run under test/setup/global.ts');
  return p;
}

export function testRest(opts: { qps?: number; burst?: number } = {}): KubeRest {
  return new KubeRest(loadKubeConfig(kubeconfigPath()), { qps: opts.qps ?? 500, burst: opts.burst ?? 1000, userAgent: 'podfabric-test' });
}

/** kubectl against the test apiserver; rejects on failure unless allowFail. */
export async function kubectl(args: string[], opts: { input?: string; allowFail?: boolean } = {}) {
  return run(['kubectl', `--kubeconfig=${kubeconfigPath()}`, ...args], { ...opts, timeoutMs: 60_000 });
}

export async function applyObjects(objs: unknown[], opts: { allowFail?: boolean } = {}) {
  return kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], { input: objs.map((o) => JSON.stringify(o)).join('\n'), ...opts });
}

/** Polls until truthy (bounded): the same helper the lab uses. */
export { waitUntil as waitFor } from '../../hack/lab/lib/daemon.js';

export function node(name: string, ip: string | string[], labels: Record<string, string> = {}, podCIDRs?: string[]) {
  const ips = Array.isArray(ip) ? ip : [ip];
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
    ...(podCIDRs ? { spec: { podCIDR: podCIDRs[0], podCIDRs } } : {}),
    status: { addresses: [...ips.map((a) => ({ type: 'InternalIP', address: a })), { type: 'Hostname', address: name }] },
  };
}

export async function createNodes(rest: KubeRest, nodes: ReturnType<typeof node>[]): Promise<void> {
  await Promise.all(nodes.map((n) => rest.request('POST', '/api/v1/nodes', n)));
}


/** Deletes every podfabric object, Node and podfabric Lease (finalizers stripped): leaves the apiserver clean for the next file. */
export async function cleanCluster(rest: KubeRest): Promise<void> {
  for (const plural of ['ippools', 'bgppeers', 'nodefabrics', 'l2segments', 'fabricconfigs']) {
    const list = await rest.get<{ items: Array<{ metadata: { name: string; finalizers?: string[] } }> }>(`${API}/${plural}`).catch(() => ({ items: [] }));
    await Promise.all(
      list.items.map(async (o) => {
        if (o.metadata.finalizers?.length) {
          await rest.request('PATCH', `${API}/${plural}/${o.metadata.name}`, { metadata: { finalizers: null } }, 'application/merge-patch+json').catch(() => undefined);
        }
        await rest.request('DELETE', `${API}/${plural}/${o.metadata.name}`).catch((e) => (isNotFound(e) ? undefined : Promise.reject(e)));
      }),
    );
  }
  const nodes = await rest.get<{ items: Array<{ metadata: { name: string } }> }>('/api/v1/nodes');
  await Promise.all(nodes.items.map((n) => rest.request('DELETE', `/api/v1/nodes/${n.metadata.name}`).catch(() => undefined)));
  await rest.request('DELETE', '/apis/coordination.k8s.io/v1/namespaces/podfabric-system/leases/podfabric-controller').catch(() => undefined);
}

export async function ensureNamespace(name: string): Promise<void> {
  await kubectl(['create', 'namespace', name], { allowFail: true });
}

export interface Listed<T> {
  items: T[];
}
