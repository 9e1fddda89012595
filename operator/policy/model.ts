/**
 * networking.k8s.io/v1 NetworkPolicy — the fields podfabric enforces — plus the views of Pods and
 * Namespaces the policy code needs. Pure. `parsePolicy` validates like the apiserver does for these
 * fields and applies the API's defaults:
 *   - policyTypes absent or empty → ["Ingress"], plus "Egress" when spec.egress has at least one rule
 *     (SetDefaults_NetworkPolicy: `len(Egress) != 0`; `egress: []` alone does NOT make an Egress policy);
 *   - a ports entry without protocol → TCP (SetDefaults_NetworkPolicyPort).
 */
import { z } from 'zod';
import { labelSelector, type LabelSelector } from '../api/common.js';
import { cidrContains, parseCidr, type Cidr } from '../lib/ip.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

const portSchema = z.object({
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
  port: z.union([z.number().int(), z.string().min(1)]).optional(),
  endPort: z.number().int().optional(),
});
const peerSchema = z.object({
  podSelector: labelSelector.nullish(),
  namespaceSelector: labelSelector.nullish(),
  ipBlock: z.object({ cidr: z.string(), except: z.array(z.string()).nullish() }).nullish(),
});
const ruleSchema = (peerKey: 'from' | 'to') =>
  z.object({ [peerKey]: z.array(peerSchema).nullish(), ports: z.array(portSchema).nullish() } as Record<string, z.ZodType>);

/** The NetworkPolicy object as read from the API (unknown fields are ignored). */
export const networkPolicySchema = z.object({
  metadata: z.object({ name: z.string().min(1), namespace: z.string().min(1), generation: z.number().optional() }),
  spec: z.object({
    podSelector: labelSelector.nullish(),
    policyTypes: z.array(z.enum(['Ingress', 'Egress'])).nullish(),
    ingress: z.array(ruleSchema('from')).nullish(),
    egress: z.array(ruleSchema('to')).nullish(),
  }),
});

export interface IPBlock {
  cidr: Cidr;
  except: Cidr[];
  /** As written, for explanations. */
  text: string;
}
export interface Peer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}
export interface PolicyPort {
  protocol: Protocol;
  /** Absent: every port of the protocol. A string is a named container port of the destination pod. */
  port?: number | string;
  endPort?: number;
}
export interface Rule {
  /** Empty: every peer (any address). */
  peers: Peer[];
  /** Empty: every port and protocol. */
  ports: PolicyPort[];
}
/** A validated, defaulted policy. `ingress`/`egress` is null when the policy is not of that type. */
export interface Policy {
  namespace: string;
  name: string;
  podSelector: LabelSelector;
  ingress: Rule[] | null;
  egress: Rule[] | null;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: Protocol;
}
/** What the policy code needs to know about a Pod. */
export interface PodInfo {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** status.podIPs (one per family). A pod without addresses is neither selected nor a peer. */
  ips: string[];
  nodeName?: string;
  /** Host-network pods use the node's addresses: never selected, never a peer. */
  hostNetwork?: boolean;
  ports?: ContainerPort[];
}
export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

export const policyKey = (p: { namespace: string; name: string }) => `${p.namespace}/${p.name}`;

/**
 * On error, `failClosed` (when the object's name, namespace and podSelector are readable) isolates the
 * pods the broken policy selects in both directions with no rule allowing anything: a policy the
 * agent cannot understand must not leave its pods open. The caller reports `error` (Event, condition).
 */
export type ParseResult = { ok: true; policy: Policy } | { ok: false; key: string; error: string; failClosed?: Policy };

function parseBlock(b: { cidr: string; except?: string[] | null }, where: string): IPBlock | string {
  const cidr = parseCidr(b.cidr, { strict: false });
  if (!cidr) return `${where}.ipBlock.cidr: ${JSON.stringify(b.cidr)} is not a CIDR`;
  const net: Cidr = cidr; // host bits cleared (the apiserver accepts them)
  const except: Cidr[] = [];
  for (const [i, e] of (b.except ?? []).entries()) {
    const c = parseCidr(e, { strict: false });
    if (!c) return `${where}.ipBlock.except[${i}]: ${JSON.stringify(e)} is not a CIDR`;
    if (!cidrContains(net, c) || c.prefixLength <= net.prefixLength)
      return `${where}.ipBlock.except[${i}]: ${e} must be strictly within ${b.cidr}`;
    except.push(c);
  }
  return { cidr: net, except, text: b.cidr + (except.length ? ` except ${(b.except ?? []).join(',')}` : '') };
}

function parsePort(p: z.infer<typeof portSchema>, where: string): PolicyPort | string {
  const out: PolicyPort = { protocol: p.protocol ?? 'TCP' };
  if (p.port !== undefined) {
    if (typeof p.port === 'number' && (p.port < 1 || p.port > 65535)) return `${where}.port: ${p.port} is not in 1-65535`;
    if (typeof p.port === 'string' && (p.port.length > 15 || !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(p.port) || !/[a-z]/.test(p.port)))
      return `${where}.port: ${JSON.stringify(p.port)} is not a valid port name`;
    out.port = p.port;
  }
  if (p.endPort !== undefined) {
    if (typeof out.port !== 'number') return `${where}.endPort: needs a numeric port`;
    if (p.endPort < out.port || p.endPort > 65535) return `${where}.endPort: must be >= port and <= 65535`;
    out.endPort = p.endPort;
  }
  return out;
}

function parseRules(rules: Array<Record<string, unknown>>, peerKey: 'from' | 'to', where: string): Rule[] | string {
  const out: Rule[] = [];
  for (const [i, r] of rules.entries()) {
    const rule: Rule = { peers: [], ports: [] };
    for (const [j, p] of ((r[peerKey] as Array<z.infer<typeof peerSchema>> | null | undefined) ?? []).entries()) {
      const at = `${where}[${i}].${peerKey}[${j}]`;
      const hasSel = p.podSelector != null || p.namespaceSelector != null;
      if (p.ipBlock != null) {
        if (hasSel) return `${at}: ipBlock cannot be combined with podSelector or namespaceSelector`;
        const b = parseBlock(p.ipBlock, at);
        if (typeof b === 'string') return b;
        rule.peers.push({ ipBlock: b });
      } else if (hasSel) {
        const peer: Peer = {};
        if (p.podSelector != null) peer.podSelector = p.podSelector;
        if (p.namespaceSelector != null) peer.namespaceSelector = p.namespaceSelector;
        rule.peers.push(peer);
      } else return `${at}: must specify podSelector, namespaceSelector or ipBlock`;
    }
    for (const [j, p] of ((r.ports as Array<z.infer<typeof portSchema>> | null | undefined) ?? []).entries()) {
      const port = parsePort(p, `${where}[${i}].ports[${j}]`);
      if (typeof port === 'string') return port;
      rule.ports.push(port);
    }
    out.push(rule);
  }
  return out;
}

/** Validates and defaults one NetworkPolicy object; a clear error, never a throw. */
export function parsePolicy(obj: unknown): ParseResult {
  const r = parseStrict(obj);
  if (r.ok) return r;
  const o = obj as { metadata?: { namespace?: unknown; name?: unknown }; spec?: { podSelector?: unknown } } | null;
  const sel = labelSelector.safeParse(o?.spec?.podSelector ?? {});
  const [ns, name] = [o?.metadata?.namespace, o?.metadata?.name];
  if (typeof ns === 'string' && ns && typeof name === 'string' && name && sel.success)
    return { ...r, failClosed: { namespace: ns, name, podSelector: sel.data, ingress: [], egress: [] } };
  return r;
}

function parseStrict(obj: unknown): ParseResult {
  const md = (obj as { metadata?: { namespace?: string; name?: string } } | null)?.metadata;
  const key = `${md?.namespace ?? '?'}/${md?.name ?? '?'}`;
  const r = networkPolicySchema.safeParse(obj);
  if (!r.success) return { ok: false, key, error: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
  const { metadata, spec } = r.data;
  let types = spec.policyTypes ?? [];
  if (types.length === 0) types = (spec.egress ?? []).length !== 0 ? ['Ingress', 'Egress'] : ['Ingress'];
  const ingress = types.includes('Ingress') ? parseRules((spec.ingress ?? []) as Array<Record<string, unknown>>, 'from', 'spec.ingress') : null;
  if (typeof ingress === 'string') return { ok: false, key, error: ingress };
  const egress = types.includes('Egress') ? parseRules((spec.egress ?? []) as Array<Record<string, unknown>>, 'to', 'spec.egress') : null;
  if (typeof egress === 'string') return { ok: false, key, error: egress };
  return { ok: true, policy: { namespace: metadata.namespace, name: metadata.name, podSelector: spec.podSelector ?? {}, ingress, egress } };
}

/** A core/v1 Pod object → PodInfo (pure; unknown shapes give an address-less pod, which is ignored). */
export function podInfoFromObject(o: unknown): PodInfo {
  const pod = (o ?? {}) as {
    metadata?: { namespace?: string; name?: string; labels?: Record<string, string> };
    spec?: { nodeName?: string; hostNetwork?: boolean; containers?: Array<{ ports?: Array<{ name?: string; containerPort?: number; protocol?: string }> }> };
    status?: { phase?: string; podIP?: string; podIPs?: Array<{ ip?: string }> };
  };
  const phase = pod.status?.phase;
  const done = phase === 'Succeeded' || phase === 'Failed';
  const ips = done ? [] : (pod.status?.podIPs?.map((x) => x.ip ?? '').filter(Boolean) ?? (pod.status?.podIP ? [pod.status.podIP] : []));
  const ports: ContainerPort[] = [];
  for (const c of pod.spec?.containers ?? [])
    for (const p of c.ports ?? [])
      if (typeof p.containerPort === 'number')
        ports.push({ ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort, protocol: (PROTOCOLS as string[]).includes(p.protocol ?? '') ? (p.protocol as Protocol) : 'TCP' });
  return {
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    labels: pod.metadata?.labels ?? {},
    ips,
    ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
    ...(pod.spec?.hostNetwork ? { hostNetwork: true } : {}),
    ports,
  };
}

/** Namespace labels, with the kubernetes.io/metadata.name label the apiserver always sets. */
export function namespaceInfo(name: string, labels: Record<string, string> = {}): NamespaceInfo {
  return { name, labels: { ...labels, 'kubernetes.io/metadata.name': name } };
}
