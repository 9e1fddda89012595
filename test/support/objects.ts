/** Small builders of API objects for unit tests. */
import type { NodeFabricObj } from '../../operator/api/kinds.js';
import type { NodeFabricSpec, PlannedPeer } from '../../operator/api/nodefabric.js';

export function plannedPeer(address: string, extra: Partial<PlannedPeer> = {}): PlannedPeer {
  return { address, name: `tor-${address}`, peerASN: 65101, localASN: 64512, holdTime: 90, keepaliveInterval: 30, connectRetry: 5, ...extra };
}

/** A planned node: ASN, router ID, one IPv4 block advertised from its node IP, the given peers and direct routes. */
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
      peers: [plannedPeer('10.0.1.1')],
      advertisements: [{ prefix: '10.244.1.0/24', nextHop: '10.0.1.11' }],
      directRoutes: [],
      ...spec,
    },
  } as NodeFabricObj;
}
