/**
 * The lab kubelet: the parts of a kubelet that must keep running after `npm run lab -- up` returns.
 *  - Node Leases (kube-node-lease/<node>, owned by the Node) renewed every 10 s for each Node whose lab
 *    namespace exists, as a kubelet's heartbeat;
 *  - Pod deletion: a Pod on a lab node that gets a deletionTimestamp (kubectl delete pod, the namespace
 *    controller, the garbage collector) has its sandbox torn down (workload stopped, CNI DEL, namespace
 *    removed), then is deleted for good (grace period 0, uid precondition), as a kubelet does.
 * Pods are started by the lab's pod library (pods.ts), which plays the kubelet's start half.
 * usage: node --import tsx hack/lab/kubelet.ts KUBECONFIG
 */
import { existsSync } from 'node:fs';
import { isNotFound, KubeRest, loadKubeConfig } from '../../operator/kube/rest.js';
import { renewNodeLease } from './lease.js';
import { stopPodSandbox, type PodObj } from './pods.js';
import { NS } from './topology.js';

const kubeconfig = process.argv[2];
if (!kubeconfig) {
  console.error('usage: kubelet.ts KUBECONFIG');
  process.exit(2);
}
const rest = new KubeRest(loadKubeConfig(kubeconfig), { qps: 50, burst: 100, userAgent: 'podfabric-lab-kubelet' });
const say = (msg: string, extra: Record<string, unknown> = {}) => console.log(JSON.stringify({ time: new Date().toISOString(), msg, ...extra }));
const isLabNode = (node: string | undefined) => !!node && existsSync(`/var/run/netns/${NS}${node}`);

async function renewLeases(): Promise<void> {
  const nodes = await rest.get<{ items: Array<{ metadata: { name: string; uid: string } }> }>('/api/v1/nodes');
  await Promise.all(nodes.items.filter((n) => isLabNode(n.metadata.name)).map((n) => renewNodeLease(rest, n.metadata.name, n.metadata.uid)));
}

const finishing = new Set<string>();
/** Uids whose deletion this process finished: later events for them (the final update) need nothing. */
const finished = new Set<string>();

async function finishDeletion(p: PodObj): Promise<void> {
  const key = p.metadata.uid!;
  if (finishing.has(key) || finished.has(key)) return;
  finishing.add(key);
  try {
    await stopPodSandbox(p.spec.nodeName!, p.metadata.namespace!, p.metadata.name);
    await rest
      .request('DELETE', `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`, { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: p.metadata.uid } })
      .catch((e) => (isNotFound(e) ? undefined : Promise.reject(e)));
    finished.add(key);
    if (finished.size > 10_000) finished.clear();
    say('pod deleted', { pod: `${p.metadata.namespace}/${p.metadata.name}`, node: p.spec.nodeName });
  } catch (e) {
    say('pod deletion failed (retried on the next event or resync)', { pod: `${p.metadata.namespace}/${p.metadata.name}`, error: (e as Error).message });
  } finally {
    finishing.delete(key);
  }
}

const onPod = (p: PodObj) => {
  if (p.metadata.deletionTimestamp && isLabNode(p.spec.nodeName)) void finishDeletion(p);
};

async function watchPods(): Promise<never> {
  for (;;) {
    try {
      const list = await rest.get<{ metadata: { resourceVersion: string }; items: PodObj[] }>('/api/v1/pods');
      list.items.forEach(onPod);
      const w = rest.watch<PodObj>(`/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=${list.metadata.resourceVersion}&timeoutSeconds=300`, (e) => {
        if (e.type === 'ADDED' || e.type === 'MODIFIED') onPod(e.object);
      });
      await w.done;
    } catch (e) {
      say('pod watch failed; relisting', { error: (e as Error).message });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

setInterval(() => void renewLeases().catch((e: Error) => say('lease renewal failed', { error: e.message })), 10_000);
void renewLeases().catch((e: Error) => say('lease renewal failed', { error: e.message }));
say('lab kubelet started');
void watchPods();
