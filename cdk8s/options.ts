/**
 * The chart's options: one zod schema is the typed interface, the defaults and the validation of a
 * values file (unknown keys are rejected, so a typo fails synth instead of being ignored).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { bgpPeerSpec } from '../operator/api/bgppeer.js';
import { labelSelector } from '../operator/api/common.js';
import { fabricConfigSpec } from '../operator/api/fabricconfig.js';

/** package.json's version: the operator image tag and the app.kubernetes.io/version label. */
export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The operator image (built by ./Dockerfile, default target). */
export const IMAGE_REPOSITORY = 'ghcr.io/podfabric/podfabric';

/**
 * The gobgpd sidecar image: Debian bookworm's gobgpd 3.10.0 (the version every test here runs against),
 * built by ./Dockerfile `--target gobgpd`. Keep it on GoBGP v3: v4 has a different gRPC API (package
 * `api`, typed NLRI messages) that the agent does not speak.
 */
export const GOBGP_IMAGE = 'ghcr.io/podfabric/gobgpd:3.10.0';

/** gobgpd's API socket, shared by the agent and the sidecar through an emptyDir at its directory. */
export const GOBGP_SOCKET_DIR = '/run/gobgp';
export const GOBGP_SOCKET = `${GOBGP_SOCKET_DIR}/gobgp.sock`;

const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a DNS label (lower case, digits, -)');
const dnsName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a DNS subdomain name');
const quantity = z.string().regex(/^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/, 'must be a Kubernetes quantity such as 100m or 128Mi');

const resources = z
  .object({
    requests: z.object({ cpu: quantity, memory: quantity }).strict(),
    limits: z.object({ cpu: quantity, memory: quantity }).strict(),
  })
  .strict();
export type Resources = z.infer<typeof resources>;

const pool = z
  .object({
    name: dnsName,
    cidr: z.string(),
    blockSize: z.number().int().optional(),
    nodeSelector: labelSelector.optional(),
    disabled: z.boolean().optional(),
  })
  .strict();

const peer = z
  .object({
    name: dnsName,
    address: z.string(),
    asn: z.number().int(),
    localASN: z.number().int().optional(),
    nodeSelector: labelSelector.optional(),
    /** namespace defaults to the install namespace; the agent may read exactly this Secret. */
    passwordSecretRef: z.object({ name: dnsName, key: z.string().optional(), namespace: dnsLabel.optional() }).strict().optional(),
    timers: bgpPeerSpec.shape.timers.optional(),
    gracefulRestart: bgpPeerSpec.shape.gracefulRestart,
    ebgpMultihop: z.number().int().optional(),
    communities: z.array(z.string()).optional(),
  })
  .strict();

export const chartOptions = z
  .object({
    /** Namespace of the controller, the agents, their ServiceAccounts, the Lease and (by default) the BGP password Secrets. */
    namespace: dnsLabel.default('podfabric-system'),
    image: z.string().min(1).default(`${IMAGE_REPOSITORY}:${VERSION}`),
    gobgpImage: z.string().min(1).default(GOBGP_IMAGE),
    /** FabricConfig spec.asn: the nodes' default local ASN. */
    nodeASN: z.number().int().min(1).max(4294967295).default(64512),
    /** The other FabricConfig spec fields (routerIdSource, hostRoutes, routeProtocol, cni.bridge/mtu/waitForFabric); cni.confDir comes from cniConfDir. */
    fabricConfig: fabricConfigSpec.omit({ asn: true, gobgpSocket: true }).strict().default(fabricConfigSpec.omit({ asn: true, gobgpSocket: true }).parse({})),
    pools: z.array(pool).default([]),
    peers: z.array(peer).default([]),
    /** Secrets in `namespace` the agents may get (besides those named by `peers`). No list, no watch. */
    secretNames: z.array(dnsName).default([]),
    /**
     * Extra namespaces where the controller may get Secrets (it checks that each BGPPeer's password Secret
     * exists). The install namespace and the namespaces of `peers`' Secrets are always included.
     */
    secretNamespaces: z.array(dnsLabel).default([]),
    controllerReplicas: z.number().int().min(1).max(5).default(2),
    leaseName: dnsName.default('podfabric-controller'),
    /** Host directories: where the agent writes the node's conflist, and where the CNI plugins are. */
    cniConfDir: z.string().regex(/^\//).default('/etc/cni/net.d'),
    cniBinDir: z.string().regex(/^\//).default('/opt/cni/bin'),
    /** A ValidatingAdmissionPolicy that lets each agent write only its own node's NodeFabric (Kubernetes >= 1.32). */
    nodeNamePolicy: z.boolean().default(true),
    /** A ValidatingAdmissionPolicy in Warn mode that flags doubtful IPPools (Kubernetes >= 1.30). */
    poolWarnings: z.boolean().default(true),
    resources: z
      .object({
        controller: resources.default({ requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } }),
        agent: resources.default({ requests: { cpu: '20m', memory: '96Mi' }, limits: { cpu: '500m', memory: '256Mi' } }),
        gobgpd: resources.default({ requests: { cpu: '20m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } }),
      })
      .strict()
      .default({
        controller: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
        agent: { requests: { cpu: '20m', memory: '96Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
        gobgpd: { requests: { cpu: '20m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
      }),
  })
  .strict();

/** What a caller (or a values file) gives: every key optional. */
export type ChartOptions = z.input<typeof chartOptions>;
/** The options with every default filled in. */
export type ResolvedOptions = z.output<typeof chartOptions>;
export type PoolOption = z.output<typeof pool>;
export type PeerOption = z.output<typeof peer>;

/** Fills in defaults; throws an Error naming each bad option. */
export function resolveOptions(input: ChartOptions = {}): ResolvedOptions {
  const r = chartOptions.safeParse(input);
  if (!r.success) throw new Error(`podfabric chart: bad options:\n${z.prettifyError(r.error)}`);
  return r.data;
}

/** Options from a YAML or JSON values file (PODFABRIC_VALUES), or none. */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ChartOptions {
  const file = env.PODFABRIC_VALUES;
  if (!file) return {};
  return (parse(readFileSync(file, 'utf8')) ?? {}) as ChartOptions;
}
