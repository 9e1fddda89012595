/**
 * Service addresses over BGP: the LoadBalancerPool kind and FabricConfig `spec.services`.
 *
 * - LoadBalancerPool: addresses (IPv4 and/or IPv6 CIDRs) the controller hands to Services of type
 *   LoadBalancer, into status.loadBalancer.ingress. CIDRs may be added to a pool, never removed (an
 *   address in use would have to move): create a new pool and disable the old one.
 * - FabricConfig spec.services: which Service addresses the nodes advertise (the ClusterIP range as
 *   one aggregate from every node, ExternalIPs inside an allow-list, LoadBalancer addresses), the
 *   communities of each class, the loadBalancerClass served, and the drain delay of a cordoned node.
 */
import { z } from 'zod';
import { cel, cidr, conditions, labelSelector } from './common.js';
import { community } from './bgppeer.js';
import type { KindDef } from './kinds.js';

/** The loadBalancerClass podfabric serves unless FabricConfig says otherwise. */
export const DEFAULT_LB_CLASS = 'podfabric.io/bgp';
/** Requested addresses: comma-separated, at most one per family (e.g. "192.0.2.10,2001:db8::10"). */
export const LB_IPS_ANNOTATION = 'podfabric.io/load-balancer-ips';
/** Restrict a Service to one pool by name. */
export const LB_POOL_ANNOTATION = 'podfabric.io/load-balancer-pool';
/** Services carrying the same value may share an address (ports must not overlap; see README). */
export const LB_SHARING_ANNOTATION = 'podfabric.io/allow-shared-ip';
/** Held on every LoadBalancerPool while Services hold its addresses (deletion waits for them). */
export const LB_POOL_FINALIZER = 'podfabric.io/addresses-in-use';
/** The condition the controller sets on each Service it serves. */
export const LB_CONDITION = 'podfabric.io/LoadBalancerAddress';
/** RFC 8326 GRACEFUL_SHUTDOWN (GoBGP: planned-shut). */
export const GRACEFUL_SHUTDOWN = '65535:0';
/** Standard node label: the node never attracts Service traffic. */
export const EXCLUDE_LB_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

const communities = z.array(community).max(32);

const classConfig = (what: string) => ({
  advertise: z.boolean().optional(),
  communities: communities.optional().meta({ description: `Communities on the ${what} routes (e.g. 65000:300).` }),
});

export const servicesConfig = z
  .object({
    loadBalancerClass: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/)
      .optional()
      .meta({ description: `spec.loadBalancerClass served (a domain-prefixed name). Default ${DEFAULT_LB_CLASS}. Services of any other class are left alone.` }),
    handleUnclassed: z
      .boolean()
      .optional()
      .meta({ description: 'Also serve LoadBalancer Services with no loadBalancerClass (default true). Set false when another implementation is the default one.' }),
    nodeSelector: labelSelector.optional().meta({ description: 'Nodes that may advertise Service addresses (default all). Nodes labelled node.kubernetes.io/exclude-from-external-load-balancers never do.' }),
    clusterIP: cel(
      z.object({
        ...classConfig('ClusterIP aggregate'),
        cidrs: z.array(cidr).max(2).optional().meta({ description: "The cluster's service-cluster-ip-range(s), one per family, advertised as aggregates from every eligible node." }),
      }),
      [{ rule: '!(has(self.advertise) && self.advertise) || (has(self.cidrs) && size(self.cidrs) > 0)', message: 'advertising the ClusterIP range needs cidrs (the apiserver --service-cluster-ip-range)' }],
    )
      .optional()
      .meta({ description: 'ClusterIP range: off by default.' }),
    externalIPs: cel(
      z.object({
        ...classConfig('ExternalIP'),
        allowedCIDRs: z.array(cidr).max(32).optional().meta({ description: 'Only spec.externalIPs inside these ranges are advertised (anyone who can create a Service can set externalIPs).' }),
      }),
      [{ rule: '!(has(self.advertise) && self.advertise) || (has(self.allowedCIDRs) && size(self.allowedCIDRs) > 0)', message: 'advertising externalIPs needs allowedCIDRs' }],
    )
      .optional()
      .meta({ description: 'spec.externalIPs: off by default.' }),
    loadBalancer: z
      .object(classConfig('LoadBalancer address'))
      .optional()
      .meta({ description: 'Addresses from LoadBalancerPools in status.loadBalancer.ingress: advertised by default.' }),
    drain: z
      .object({
        enabled: z.boolean().optional().meta({ description: 'Cordoned nodes first mark their Service routes GRACEFUL_SHUTDOWN (65535:0), then withdraw them. Default true.' }),
        withdrawDelaySeconds: z.number().int().min(0).max(3600).optional().meta({ description: 'Seconds between the GRACEFUL_SHUTDOWN re-advertisement and the withdrawal. Default 30.' }),
      })
      .optional(),
  })
  .meta({ description: 'Service addresses over BGP.' });

export type ServicesConfigInput = z.infer<typeof servicesConfig>;

/** spec.services with every default applied: what the pure functions take. */
export interface ServicesConfig {
  loadBalancerClass: string;
  handleUnclassed: boolean;
  nodeSelector?: z.infer<typeof labelSelector>;
  clusterIP: { advertise: boolean; cidrs: string[]; communities: string[] };
  externalIPs: { advertise: boolean; allowedCIDRs: string[]; communities: string[] };
  loadBalancer: { advertise: boolean; communities: string[] };
  drain: { enabled: boolean; withdrawDelaySeconds: number };
}

export function resolveServicesConfig(s: ServicesConfigInput | undefined): ServicesConfig {
  return {
    loadBalancerClass: s?.loadBalancerClass ?? DEFAULT_LB_CLASS,
    handleUnclassed: s?.handleUnclassed ?? true,
    ...(s?.nodeSelector ? { nodeSelector: s.nodeSelector } : {}),
    clusterIP: { advertise: s?.clusterIP?.advertise ?? false, cidrs: s?.clusterIP?.cidrs ?? [], communities: s?.clusterIP?.communities ?? [] },
    externalIPs: {
      advertise: s?.externalIPs?.advertise ?? false,
      allowedCIDRs: s?.externalIPs?.allowedCIDRs ?? [],
      communities: s?.externalIPs?.communities ?? [],
    },
    loadBalancer: { advertise: s?.loadBalancer?.advertise ?? true, communities: s?.loadBalancer?.communities ?? [] },
    drain: { enabled: s?.drain?.enabled ?? true, withdrawDelaySeconds: s?.drain?.withdrawDelaySeconds ?? 30 },
  };
}

// ---------------------------------------------------------------- LoadBalancerPool

export const loadBalancerPoolSpec = z.object({
  cidrs: cel(z.array(cidr).min(1).max(16).meta({ 'x-kubernetes-list-type': 'set' }), [
    { rule: 'oldSelf.all(c, c in self)', message: 'cidrs may be added, never removed (addresses in use would move): create a new pool and disable this one' },
  ]).meta({ description: 'Addresses handed out, IPv4 and/or IPv6 CIDRs (e.g. 192.0.2.0/28, 2001:db8:lb::/120). Each address is advertised as a /32 or /128.' }),
  autoAssign: z.boolean().optional().meta({ description: 'Give addresses to Services that ask for none (default true). false: only Services requesting an address of this pool get one.' }),
  disabled: z.boolean().optional().meta({ description: 'No new addresses; assigned ones are kept.' }),
  avoidBuggyIPs: z.boolean().optional().meta({ description: 'Skip IPv4 addresses ending in .0 and .255 (some clients drop them).' }),
  serviceSelector: labelSelector.optional().meta({ description: 'Services (by their labels) this pool serves. Empty: all.' }),
  namespaces: z.array(z.string().min(1).max(63)).max(64).optional().meta({ description: 'Namespaces this pool serves. Empty: all.' }),
  communities: communities.optional().meta({ description: 'Extra communities on the routes of addresses from this pool.' }),
});

export const loadBalancerPoolStatus = z.object({
  observedGeneration: z.number().int().min(0).optional(),
  conditions: conditions.optional(),
  addressesTotal: z.number().int().min(0).optional().meta({ description: 'Addresses in the pool (saturates at 2^53-1).' }),
  addressesAssigned: z.number().int().min(0).optional(),
  addressesFree: z.number().int().min(0).optional(),
});

export type LoadBalancerPoolSpec = z.infer<typeof loadBalancerPoolSpec>;
export type LoadBalancerPoolStatus = z.infer<typeof loadBalancerPoolStatus>;

export const LoadBalancerPool = {
  kind: 'LoadBalancerPool',
  plural: 'loadbalancerpools',
  singular: 'loadbalancerpool',
  shortNames: ['pflbpool'],
  categories: ['podfabric'],
  description: 'Addresses the controller assigns to LoadBalancer Services (status.loadBalancer.ingress); the nodes advertise them over BGP.',
  spec: loadBalancerPoolSpec,
  status: loadBalancerPoolStatus,
  specRequired: true,
  printerColumns: [
    { name: 'CIDRs', type: 'string', jsonPath: '.spec.cidrs' },
    { name: 'Assigned', type: 'integer', jsonPath: '.status.addressesAssigned' },
    { name: 'Free', type: 'integer', jsonPath: '.status.addressesFree' },
    { name: 'Auto', type: 'boolean', jsonPath: '.spec.autoAssign', priority: 1 },
    { name: 'Disabled', type: 'boolean', jsonPath: '.spec.disabled' },
    { name: 'Exhausted', type: 'string', jsonPath: '.status.conditions[?(@.type=="Exhausted")].status' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
} satisfies KindDef;

// ---------------------------------------------------------------- NodeFabric status.services

// Written by the agent from validated input: no CEL here (4,096 routes x a rule each would exceed the
// apiserver's CEL cost budget), plain patterns only.
export const serviceRouteStatus = z.object({
  prefix: z.string().max(49).regex(/^[0-9a-fA-F:.]+\/[0-9]{1,3}$/),
  services: z.array(z.string().max(317)).max(64).meta({ description: 'namespace/name of the Services behind this prefix (ClusterIP aggregate: none).' }),
  class: z.enum(['ClusterIP', 'ExternalIP', 'LoadBalancer']),
  communities: z.array(z.string().max(11).regex(/^[0-9]{1,5}:[0-9]{1,5}$/)).max(33).optional(),
});

export const nodeServicesStatus = z.object({
  phase: z.enum(['Active', 'Draining', 'Drained', 'Excluded']).meta({ description: 'Draining: routes carry GRACEFUL_SHUTDOWN; Drained: withdrawn (cordoned); Excluded: the node may not advertise Services.' }),
  drainingSince: z.iso.datetime().optional().meta({ description: 'When the agent first saw the node cordoned (kept across agent restarts).' }),
  advertised: z.number().int().min(0),
  routes: z.array(serviceRouteStatus).max(4096).optional(),
});
export type NodeServicesStatus = z.infer<typeof nodeServicesStatus>;
