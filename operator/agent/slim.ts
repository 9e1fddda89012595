/**
 * What the agent's caches keep of each object (Informer `trim`; every informer already drops
 * metadata.managedFields, kube/informer.ts stripManagedFields): of a Pod only what the NetworkPolicy compiler reads (policy/model.ts podInfoFromObject) — every agent caches
 * every Pod of the cluster, so this is the agent's memory at scale; of a BGPPeer no status (withoutStatus:
 * every agent caches every BGPPeer, and the controller's counts are not what sessions are derived from).
 */
import type { KObj } from '../kube/informer.js';

interface PodLike extends KObj {
  spec?: { nodeName?: string; hostNetwork?: boolean; containers?: Array<{ ports?: Array<{ name?: string; containerPort?: number; protocol?: string }> }> };
  status?: { phase?: string; podIP?: string; podIPs?: Array<{ ip?: string }> };
}

/** A Pod cut to its identity, labels, node, host networking, container ports, phase and addresses. */
export function slimPod(o: KObj): KObj {
  const p = o as PodLike;
  const m = p.metadata;
  const ports = (p.spec?.containers ?? []).map((c) => ({ ports: (c.ports ?? []).map((x) => ({ name: x.name, containerPort: x.containerPort, protocol: x.protocol })) }));
  return {
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, ...(m.labels ? { labels: m.labels } : {}) },
    spec: { ...(p.spec?.nodeName ? { nodeName: p.spec.nodeName } : {}), ...(p.spec?.hostNetwork ? { hostNetwork: true } : {}), containers: ports },
    status: { phase: p.status?.phase, podIP: p.status?.podIP, ...(p.status?.podIPs ? { podIPs: p.status.podIPs.map((x) => ({ ip: x.ip })) } : {}) },
  };
}

/** The object without its status (an informer trim: the freshly parsed object is the informer's own). */
export function withoutStatus<T extends KObj>(o: T): T {
  delete o.status;
  return o;
}
