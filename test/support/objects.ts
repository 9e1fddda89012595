/** Small builders of API objects for unit tests. */
import type { NodeFabricObj } from '../../operator/api/kinds.js';
import type { NodeFabricSpec, PlannedPeer } from '../../operator/api/nodefabric.js';
import type { NodePeers } from '../../operator/plan/peers.js';

export function plannedPeer(address: string, extra: Partial<PlannedPeer> = {}): PlannedPeer {
  return { address, name: `tor-${address}`, peerASN: 65101, localASN: 64512, holdTime: 90, keepaliveInterval: 30, connectRetry: 5, ...extra };
}

/** A node's sessions as its agent derives them (plan/peers.ts): ASN 64512, router ID 10.0.1.11, one ToR by default. */
export function nodePeers(peers: PlannedPeer[] = [plannedPeer('10.0.1.1')], extra: Partial<NodePeers> = {}): NodePeers {
  return { asn: 64512, routerId: '10.0.1.11', peers, communities: [], conflicts: [], invalid: [], ...extra };
}

/** A planned node: ASN, router ID, one IPv4 block advertised from its node IP, the given direct routes. */
export function nodeFabric(name: string, spec: Partial<NodeFabricSpec> = {}, generation = 1): NodeFabricObj {
  return {
    apiVersion: 'podfabric.io/v1alpha1',
    kind: 'NodeFabric',
    metadata: { name, uid: `uid-${name}`, generation },
    spec: {
      podCIDRs: ['10.244.1.0/24'],
      nodeIPs: ['10.0.1.11'],
      asn: 64512,
      routerId: '10.0.1.11',
      advertisements: [{ prefix: '10.244.1.0/24', nextHop: '10.0.1.11' }],
      ...spec,
    },
  } as NodeFabricObj;
}

/** A BGPPeer as the apiserver serves it (spec: peerAddress, peerASN 65101, plus `spec`). */
export function bgpPeer(name: string, peerAddress: string, spec: Record<string, unknown> = {}, creationTimestamp = '2026-01-01T00:00:00Z'): Record<string, any> {
  return { apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: { name, creationTimestamp, generation: 1 }, spec: { peerAddress, peerASN: 65101, ...spec } };
}

/** A core/v1 Node with an InternalIP (and labels). */
export function coreNode(name: string, ip: string, labels: Record<string, string> = {}): Record<string, any> {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels }, status: { addresses: [{ type: 'InternalIP', address: ip }] } };
}
