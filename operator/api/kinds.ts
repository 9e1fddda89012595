import { z } from 'zod';
import { API_VERSION, GROUP, VERSION, objectMeta, type CelRule, type ObjectMeta } from './common.js';
import { bgpPeerSpec, bgpPeerStatus } from './bgppeer.js';
import { fabricConfigSpec, fabricConfigStatus } from './fabricconfig.js';
import { ipPoolSpec, ipPoolStatus } from './ippool.js';
import { nodeFabricSpec, nodeFabricStatus } from './nodefabric.js';
import { LoadBalancerPool } from './services.js';
import { L2Segment } from './segment.js';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindDef<S extends z.ZodType = z.ZodType, T extends z.ZodType = z.ZodType> {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  description: string;
  spec: S;
  status: T;
  /** Extra rules on the whole object (may use self.metadata.name). */
  rootRules?: CelRule[];
  /** Whether spec is required. */
  specRequired: boolean;
  printerColumns: PrinterColumn[];
}

const ready = (name = 'Ready'): PrinterColumn => ({
  name,
  type: 'string',
  jsonPath: `.status.conditions[?(@.type=="${name}")].status`,
});
const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
const categories = ['podfabric'];

export const IPPool = {
  kind: 'IPPool',
  plural: 'ippools',
  singular: 'ippool',
  shortNames: ['pfpool'],
  categories,
  description: 'A range of pod addresses; the controller gives each selected node one block of blockSize from it.',
  spec: ipPoolSpec,
  status: ipPoolStatus,
  specRequired: true,
  printerColumns: [
    { name: 'CIDR', type: 'string', jsonPath: '.spec.cidr' },
    { name: 'Block', type: 'integer', jsonPath: '.spec.blockSize' },
    { name: 'Allocated', type: 'integer', jsonPath: '.status.blocksAllocated' },
    { name: 'Free', type: 'integer', jsonPath: '.status.blocksFree' },
    { name: 'Disabled', type: 'boolean', jsonPath: '.spec.disabled' },
    ready(),
    age,
  ],
} satisfies KindDef;

export const BGPPeer = {
  kind: 'BGPPeer',
  plural: 'bgppeers',
  singular: 'bgppeer',
  shortNames: ['pfpeer'],
  categories,
  description: 'A BGP router (usually the top-of-rack switch) that the selected nodes peer with.',
  spec: bgpPeerSpec,
  status: bgpPeerStatus,
  specRequired: true,
  printerColumns: [
    { name: 'Peer', type: 'string', jsonPath: '.spec.peerAddress' },
    { name: 'ASN', type: 'integer', jsonPath: '.spec.peerASN' },
    { name: 'Selected', type: 'integer', jsonPath: '.status.nodesSelected' },
    { name: 'Established', type: 'integer', jsonPath: '.status.nodesEstablished' },
    ready(),
    age,
  ],
} satisfies KindDef;

export const FabricConfig = {
  kind: 'FabricConfig',
  plural: 'fabricconfigs',
  singular: 'fabricconfig',
  shortNames: ['pfconfig'],
  categories,
  description: "Cluster-wide fabric settings. There is one, named 'default'.",
  spec: fabricConfigSpec,
  status: fabricConfigStatus,
  specRequired: false,
  // A root rule gets no field path from the apiserver ("<nil>"), so the message names it.
  rootRules: [{ rule: "self.metadata.name == 'default'", messageExpression: `'metadata.name: there is one FabricConfig and it must be named \\'default\\', not "' + self.metadata.name + '"'` }],
  printerColumns: [
    { name: 'ASN', type: 'integer', jsonPath: '.spec.asn' },
    { name: 'RouterID', type: 'string', jsonPath: '.spec.routerIdSource' },
    { name: 'RouteProto', type: 'integer', jsonPath: '.spec.routeProtocol' },
    age,
  ],
} satisfies KindDef;

export const NodeFabric = {
  kind: 'NodeFabric',
  plural: 'nodefabrics',
  singular: 'nodefabric',
  shortNames: ['nf'],
  categories,
  description: "One per Node (same name). spec: the node's desired fabric, written by the controller. status: what the node's agent really has.",
  spec: nodeFabricSpec,
  status: nodeFabricStatus,
  specRequired: false,
  printerColumns: [
    { name: 'CIDRs', type: 'string', jsonPath: '.spec.podCIDRs' },
    { name: 'Sessions', type: 'integer', jsonPath: '.status.sessionsEstablished', description: 'BGP sessions established' },
    { name: 'Peers', type: 'integer', jsonPath: '.status.sessionsTotal' },
    { name: 'Routes', type: 'integer', jsonPath: '.status.routesInstalled', description: 'Host-gw routes in the kernel' },
    { name: 'Segment', type: 'string', jsonPath: '.spec.routing.l2Segment', priority: 1 },
    ready(),
    age,
  ],
} satisfies KindDef;

export const ALL_KINDS = [IPPool, BGPPeer, FabricConfig, NodeFabric, LoadBalancerPool, L2Segment] as const;

/** A podfabric object as stored in the apiserver. */
export interface Obj<K extends KindDef> {
  apiVersion: typeof API_VERSION;
  kind: string;
  metadata: ObjectMeta;
  spec: z.output<K['spec']>;
  status?: z.output<K['status']>;
}

export type IPPoolObj = Obj<typeof IPPool>;
export type BGPPeerObj = Obj<typeof BGPPeer>;
export type FabricConfigObj = Obj<typeof FabricConfig>;
export type NodeFabricObj = Obj<typeof NodeFabric>;
export type LoadBalancerPoolObj = Obj<typeof LoadBalancerPool>;
export type L2SegmentObj = Obj<typeof L2Segment>;
export { L2Segment };

/** Every kind's envelope. Built once: zod compiles a schema on its first parse, and informers decode every object. */
const envelope = z.object({ apiVersion: z.string(), kind: z.string(), metadata: objectMeta, spec: z.unknown().optional(), status: z.unknown().optional() });

/** Parses an object read from the apiserver (applies zod defaults; throws a ZodError naming the bad field). */
export function parseObject<K extends KindDef>(def: K, raw: unknown): Obj<K> {
  const o = envelope.parse(raw);
  const spec = def.spec.parse(o.spec ?? {}) as z.output<K['spec']>;
  const status = o.status === undefined ? undefined : (def.status.safeParse(o.status).data as z.output<K['status']> | undefined);
  return { apiVersion: API_VERSION, kind: def.kind, metadata: o.metadata, spec, ...(status ? { status } : {}) };
}

export { API_VERSION, GROUP, VERSION };
