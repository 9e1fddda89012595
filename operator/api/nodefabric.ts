import { z } from 'zod';
import { asn, cel, cidr, conditions, ipAddress, listMap } from './common.js';
import { nodeServicesStatus } from './services.js';
import { objectName, secretKeyRef } from './names.js';

/**
 * One BGP session of a node as its agent derives it from the BGPPeers (plan/peers.ts). Not stored in
 * the NodeFabric spec (a BGPPeer change would rewrite every selected node's record): the agent reports
 * what it has in status.sessions.
 */
export const plannedPeer = z.object({
  address: ipAddress,
  name: objectName.meta({ description: 'The BGPPeer this session comes from.' }),
  peerASN: asn,
  localASN: asn,
  holdTime: z.number().int().min(0).max(65535),
  keepaliveInterval: z.number().int().min(0).max(65535),
  connectRetry: z.number().int().min(1).max(65535),
  gracefulRestart: z.object({ enabled: z.boolean(), restartTime: z.number().int().min(1).max(4095) }).optional(),
  ebgpMultihop: z.number().int().min(1).max(255).optional(),
  passwordSecretRef: secretKeyRef.optional(),
});

export const advertisement = z.object({
  prefix: cidr,
  nextHop: ipAddress,
});

export const nodeFabricSpec = z.object({
  podCIDRs: z.array(cidr).max(2).optional().meta({ description: 'One block per address family.' }),
  allocations: listMap(z.array(z.object({ cidr, pool: objectName })).max(2), ['cidr'])
    .optional()
    .meta({ description: 'Which pool each block came from: the durable IPAM record.' }),
  nodeIPs: z.array(ipAddress).max(2).optional(),
  asn: asn.optional().meta({ description: "The node's ASN (FabricConfig asn or the node's podfabric.io/asn label); its agent derives the same value itself." }),
  routerId: cel(z.string().max(15), [{ rule: 'isIP(self) && ip(self).family() == 4', message: 'router ID must be a dotted quad' }])
    .optional()
    .meta({ description: "The node's BGP router ID; its agent derives the same value itself." }),
  advertisements: listMap(z.array(advertisement).max(8), ['prefix'])
    .optional()
    .meta({ description: "The node's pod CIDRs and their next hop. The agent attaches the communities of the BGPPeers it has sessions with." }),
  routing: z
    .object({
      l2Segment: z.string().max(200).optional().meta({ description: "The node's L2 segment (`label:<value>` or `subnet:<cidr>`)." }),
      segments: z
        .array(objectName)
        .max(2)
        .optional()
        .meta({ description: 'The L2Segment objects (one per address family) whose routes this node installs: its host-gw routes to the other members. Only membership is here, so a member coming or going rewrites no NodeFabric.' }),
    })
    .optional(),
});

export const sessionStatus = z.object({
  address: ipAddress,
  name: objectName.optional(),
  state: z.enum(['Unknown', 'Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established']),
  establishedSince: z.iso.datetime().optional(),
  prefixesSent: z.number().int().min(0).optional(),
  prefixesReceived: z.number().int().min(0).optional(),
  lastError: z.string().max(1024).optional(),
});

/**
 * Status liveness. The agent writes its NodeFabric status when something in it changed, and otherwise
 * once per heartbeat: every STATUS_HEARTBEAT_SECONDS, each interval jittered by ±STATUS_HEARTBEAT_JITTER
 * so thousands of agents do not write in the same second. Only a heartbeat moves lastSyncTime on an
 * idle node, so a status is stale (the agent is not running) once two heartbeats are missed.
 */
// 300 s, kubelet's nodeStatusReportFrequency: at 5,000 nodes a 60 s heartbeat was 83 status writes a
// second, each a server-side apply of the whole object: 62 % of the apiserver's CPU while 1,250 agents ran
// (bench scale, its CPU profile). The agent's liveness second by second is its pod's readiness (kubelet).
export const STATUS_HEARTBEAT_SECONDS = 300;
export const STATUS_HEARTBEAT_JITTER = 0.25;
export const STATUS_STALE_AFTER_SECONDS = Math.ceil(2 * STATUS_HEARTBEAT_SECONDS * (1 + STATUS_HEARTBEAT_JITTER));

/** status.routeProblems lists at most this many; status.routeProblemsTotal counts them all. */
export const MAX_ROUTE_PROBLEMS = 64;

export const nodeFabricStatus = z.object({
  observedGeneration: z.number().int().min(0).optional(),
  conditions: conditions.optional(),
  uplink: z.string().max(15).optional(),
  l2Subnets: z.array(cidr).max(2).optional().meta({ description: "The subnet(s) of the node IP on its uplink, as seen by the agent." }),
  sessions: listMap(z.array(sessionStatus).max(64), ['address']).optional(),
  sessionsEstablished: z.number().int().min(0).optional(),
  sessionsTotal: z.number().int().min(0).optional(),
  advertised: z.array(cidr).max(8).optional(),
  routesInstalled: z.number().int().min(0).optional().meta({ description: 'Host-gw routes with our protocol in the kernel.' }),
  routeProblems: z
    .array(
      z.object({
        destination: cidr.meta({ description: 'The route\'s destination (a neighbour node\'s pod CIDR).' }),
        plannedVia: ipAddress.optional().meta({ description: "The next hop the node's L2Segments plan; absent: a route of ours in the kernel that is not planned." }),
        installedVia: ipAddress.optional().meta({ description: 'The next hop in the kernel; absent: a planned route missing from the kernel.' }),
      }),
    )
    .max(MAX_ROUTE_PROBLEMS)
    .optional()
    .meta({
      description: `Where the kernel's routes of ours differ from the routes of the node's L2Segments (spec.routing.segments): a planned route missing from the kernel (no installedVia), a route of ours not planned (no plannedVia), or another next hop (both). At most ${MAX_ROUTE_PROBLEMS}, ordered by destination; absent when the node has exactly its plan (every planned route installed, nothing else).`,
    }),
  routeProblemsTotal: z
    .number()
    .int()
    .min(0)
    .optional()
    .meta({ description: `How many route problems there are (routeProblems lists the first ${MAX_ROUTE_PROBLEMS}); absent when there are none.` }),
  cni: z
    .object({
      written: z.boolean(),
      path: z.string().max(1024).optional(),
      reason: z.string().max(1024).optional(),
    })
    .optional(),
  policy: z
    .object({
      policies: z.number().int().min(0),
      invalid: z.number().int().min(0),
      localPods: z.number().int().min(0),
      isolatedIngress: z.number().int().min(0),
      isolatedEgress: z.number().int().min(0),
      objects: z.number().int().min(0),
    })
    .optional()
    .meta({ description: 'NetworkPolicy enforcement on this node (absent when the agent runs with --no-network-policy): policies compiled, invalid ones (they fail closed), local pods, local pod addresses isolated per direction, nftables objects in table inet podfabric-policy. See the PolicyReady condition.' }),
  lastSyncTime: z.iso
    .datetime()
    .optional()
    .meta({
      description: `When the agent last wrote this status: on every change, and otherwise every ${STATUS_HEARTBEAT_SECONDS} s (±${STATUS_HEARTBEAT_JITTER * 100} %). Older than ${STATUS_STALE_AFTER_SECONDS} s means the agent is not running.`,
    }),
  services: nodeServicesStatus.optional().meta({ description: 'Service prefixes this node advertises (see FabricConfig spec.services).' }),
});

export type PlannedPeer = z.infer<typeof plannedPeer>;
export type Advertisement = z.infer<typeof advertisement>;
export type NodeFabricSpec = z.infer<typeof nodeFabricSpec>;
export type NodeFabricStatus = z.infer<typeof nodeFabricStatus>;
export type SessionStatus = z.infer<typeof sessionStatus>;
export type RouteProblem = NonNullable<NodeFabricStatus['routeProblems']>[number];
