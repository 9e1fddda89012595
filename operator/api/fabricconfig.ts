import { z } from 'zod';
import { asn, cel, conditions } from './common.js';
import { servicesConfig } from './services.js';
import { labelKey } from './names.js';

// The kernel's route-protocol facts live with the route model (pure); the schema's CEL rule uses the same list.
import { RESERVED_ROUTE_PROTOCOLS } from '../routes/model.js';
export { RESERVED_ROUTE_PROTOCOLS };

export const DEFAULT_ROUTE_PROTOCOL = 201;
export const DEFAULT_GOBGP_SOCKET = '/run/podfabric/gobgp.sock';
export const DEFAULT_SEGMENT_LABEL = 'podfabric.io/l2-segment';
export const ASN_LABEL = 'podfabric.io/asn';
export const ROUTER_ID_ANNOTATION = 'podfabric.io/router-id';

export const fabricConfigSpec = z.object({
  asn: asn.default(64512).meta({ description: "The nodes' default local ASN. A node label podfabric.io/asn or a BGPPeer's localASN overrides it." }),
  routerIdSource: z
    .enum(['NodeIPv4', 'NodeNameHash'])
    .default('NodeIPv4')
    .meta({
      description:
        "How each node's BGP router ID is chosen: its IPv4 InternalIP, or a stable 32-bit hash of its name (IPv6-only clusters). The annotation podfabric.io/router-id on a Node overrides both.",
    }),
  hostRoutes: z
    .object({
      enabled: z.boolean().default(true).meta({ description: 'Install direct kernel routes to L2-adjacent nodes (host-gw).' }),
      detectL2: z
        .boolean()
        .default(true)
        .meta({ description: 'Treat nodes whose agents report the same uplink subnet as L2-adjacent.' }),
      segmentLabel: labelKey
        .default(DEFAULT_SEGMENT_LABEL)
        .meta({ description: 'Node label naming an L2 segment; nodes with equal values are adjacent, and the label overrides detection.' }),
    })
    .default({ enabled: true, detectL2: true, segmentLabel: DEFAULT_SEGMENT_LABEL }),
  routeProtocol: cel(z.number().int().min(1).max(255).default(DEFAULT_ROUTE_PROTOCOL), [
    {
      rule: `!(self in [${RESERVED_ROUTE_PROTOCOLS.join(', ')}])`,
      message: 'routeProtocol is reserved by the kernel or another routing daemon; pick e.g. 201',
    },
  ]).meta({ description: 'Kernel route protocol number the agents own: they touch only routes with this number.' }),
  gobgpSocket: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^(unix:\/\/)?\//)
    .default(DEFAULT_GOBGP_SOCKET)
    .meta({ description: "Path of gobgpd's API Unix socket on each node (shared with the sidecar)." }),
  cni: z
    .object({
      confDir: z.string().min(1).max(1024).default('/etc/cni/net.d'),
      bridge: z.string().min(1).max(15).default('cni0'),
      mtu: z
        .number()
        .int()
        .min(1280)
        .max(65535)
        .optional()
        .meta({ description: 'Pod interface MTU (default: the bridge plugin default, 1500). At least 1280, the IPv6 minimum, so one rule holds for any pool family.' }),
      waitForFabric: z
        .boolean()
        .default(true)
        .meta({ description: "Write the node's CNI configuration only once its BGP sessions are up and its routes are installed." }),
    })
    .default({ confDir: '/etc/cni/net.d', bridge: 'cni0', waitForFabric: true }),
  services: servicesConfig.optional(),
});

export const fabricConfigStatus = z.object({
  observedGeneration: z.number().int().min(0).optional(),
  conditions: conditions.optional(),
});

export type FabricConfigSpec = z.infer<typeof fabricConfigSpec>;

/**
 * The one FabricConfig reader (controller and agent): the spec of "default" as decoded on arrival,
 * the built-in defaults when there is none, and the previous spec (with the reason) when it is
 * unreadable, so a bad edit changes nothing.
 */
export function effectiveFabricConfig(
  decoded: { ok: true; value: { spec: FabricConfigSpec } } | { ok: false; error: string } | undefined,
  previous: FabricConfigSpec,
): { spec: FabricConfigSpec; error?: string } {
  if (!decoded) return { spec: fabricConfigSpec.parse({}) };
  return decoded.ok ? { spec: decoded.value.spec } : { spec: previous, error: decoded.error };
}
