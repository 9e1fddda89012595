/** Node Leases, the kubelet's heartbeat (kept apart so the lab kubelet loads little). */
import type { KubeRest } from '../../operator/kube/rest.js';

const microTime = () => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/** A kubelet's heartbeat: the Node's Lease in kube-node-lease (owned by the Node, so it goes with it). */
export async function renewNodeLease(rest: KubeRest, node: string, uid: string): Promise<void> {
  await rest.apply(
    `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${node}`,
    {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: node, namespace: 'kube-node-lease', ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node, uid }] },
      spec: { holderIdentity: node, leaseDurationSeconds: 40, renewTime: microTime() },
    },
    'podfabric-lab-kubelet',
  );
}
