/**
 * `kubectl fabric policy SRC DST [--port P[/PROTO]]`: why a flow is allowed or denied by NetworkPolicy.
 * Pure: from the objects the CLI listed (NetworkPolicies, Namespaces, Pods, Nodes) it builds the same
 * world the agents compile (policy/model.ts: a policy that does not parse isolates the pods it selects,
 * both ways) and asks the reference evaluator (policy/semantics.ts `explain`) per flow.
 *
 * SRC and DST: `NAMESPACE/POD` or an IP address (an IP a pod holds is that pod; any other address is
 * outside the pod network, which only ipBlock peers match). Services are not resolved: policies are
 * enforced after kube-proxy's DNAT, on the backend pod, so name the backend pod.
 * Families: a pod with two addresses is explained in every family both sides have (an ipBlock may
 * answer differently per family); give an IP to pin one.
 * Ports: --port N[/PROTO] (PROTO TCP by default) or NAME[/PROTO] (a named container port of the
 * destination pod); without --port, every port the destination pod declares, or TCP/80 when it
 * declares none (or is not a pod).
 */
import { normalizeIP, parseIP, type Family } from '../lib/ip.js';
import { namespaceInfo, parsePolicy, podInfoFromObject, PROTOCOLS, type PodInfo, type Policy, type Protocol } from '../policy/model.js';
import { explain, policySelects, type Explanation, type Flow } from '../policy/semantics.js';
import { formatExplanation } from '../policy/format.js';

export type Endpoint = { kind: 'pod'; namespace: string; name: string } | { kind: 'ip'; ip: string };
export interface PortSpec {
  port: number | string;
  /** Absent with a named port: the named container port's protocol. */
  protocol?: Protocol;
}

/** An argument the command cannot work with (exit 2). */
export class PolicyQueryError extends Error {}

export function parseEndpoint(text: string, what: 'SRC' | 'DST'): Endpoint {
  const ip = normalizeIP(text);
  if (ip) return { kind: 'ip', ip };
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(text);
  if (!m) throw new PolicyQueryError(`${what} ${JSON.stringify(text)}: want NAMESPACE/POD or an IP address`);
  return { kind: 'pod', namespace: m[1]!, name: m[3]! };
}

export function parsePortSpec(text: string): PortSpec {
  const [p, proto, extra] = text.split('/');
  if (extra !== undefined || !p) throw new PolicyQueryError(`--port ${JSON.stringify(text)}: want PORT[/PROTOCOL], e.g. 80/TCP, 53/UDP or serve-80-tcp`);
  let protocol: Protocol | undefined;
  if (proto !== undefined) {
    const up = proto.toUpperCase();
    if (!(PROTOCOLS as string[]).includes(up)) throw new PolicyQueryError(`--port ${JSON.stringify(text)}: protocol must be TCP, UDP or SCTP`);
    protocol = up as Protocol;
  }
  if (/^\d+$/.test(p)) {
    const n = Number(p);
    if (n < 1 || n > 65535) throw new PolicyQueryError(`--port ${JSON.stringify(text)}: port must be in 1-65535`);
    return { port: n, protocol: protocol ?? 'TCP' };
  }
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(p) || p.length > 15) throw new PolicyQueryError(`--port ${JSON.stringify(text)}: not a port number or a port name`);
  return { port: p, ...(protocol ? { protocol } : {}) };
}

/** What the command lists from the apiserver (raw objects). */
export interface PolicyObjects {
  policies: unknown[];
  namespaces: unknown[];
  pods: unknown[];
  nodes: Array<{ metadata: { name: string }; status?: { addresses?: Array<{ type?: string; address?: string }> } }>;
}

export interface FlowReport {
  family: Family;
  src: string;
  dst: string;
  protocol: Protocol;
  port: number;
  allowed: boolean;
  /** The flow starts on the destination pod's own node (always allowed). */
  fromNode: boolean;
  reason: string;
  egress: Explanation['egress'];
  ingress: Explanation['ingress'];
  text: string;
}

export interface PolicyReport {
  src: string;
  dst: string;
  /** Every flow shown is allowed. */
  allowed: boolean;
  flows: FlowReport[];
  /** Policies that do not parse and select one of the two pods: they isolate it both ways. */
  invalid: Array<{ policy: string; error: string }>;
  policies: number;
}

interface Side {
  label: string;
  pod?: PodInfo;
  ips: string[];
}

function resolve(ep: Endpoint, pods: PodInfo[], what: string): Side {
  if (ep.kind === 'ip') {
    const pod = pods.find((p) => !p.hostNetwork && p.ips.some((x) => normalizeIP(x) === ep.ip));
    return { label: pod ? `${pod.namespace}/${pod.name} (${ep.ip})` : ep.ip, ...(pod ? { pod } : {}), ips: [ep.ip] };
  }
  const key = `${ep.namespace}/${ep.name}`;
  const pod = pods.find((p) => p.namespace === ep.namespace && p.name === ep.name);
  if (!pod) throw new PolicyQueryError(`${what} pod ${key} not found`);
  if (pod.ips.length === 0) throw new PolicyQueryError(`${what} pod ${key} has no address (not running yet, or finished)`);
  return { label: key, pod, ips: pod.ips.map((x) => normalizeIP(x) ?? x) };
}

function ports(spec: PortSpec | undefined, dst: Side): Array<{ protocol: Protocol; port: number }> {
  const declared = dst.pod?.ports ?? [];
  if (spec && typeof spec.port === 'number') return [{ protocol: spec.protocol ?? 'TCP', port: spec.port }];
  if (spec) {
    const named = declared.filter((c) => c.name === spec.port && (!spec.protocol || (c.protocol ?? 'TCP') === spec.protocol));
    if (!dst.pod || named.length === 0) throw new PolicyQueryError(`--port ${spec.port}: the destination ${dst.label} declares no container port of that name${spec.protocol ? ` and protocol ${spec.protocol}` : ''}`);
    return named.map((c) => ({ protocol: c.protocol ?? 'TCP', port: c.containerPort }));
  }
  const seen = new Map<string, { protocol: Protocol; port: number }>();
  for (const c of declared) seen.set(`${c.protocol ?? 'TCP'}/${c.containerPort}`, { protocol: c.protocol ?? 'TCP', port: c.containerPort });
  const out = [...seen.values()].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
  return out.length ? out : [{ protocol: 'TCP', port: 80 }];
}

const family = (ip: string): Family => parseIP(ip)!.family;

/** Builds the explanation of every (family, port) flow from SRC to DST. Throws PolicyQueryError on a bad query. */
export function buildPolicyReport(q: { src: Endpoint; dst: Endpoint; port?: PortSpec }, objs: PolicyObjects): PolicyReport {
  const policies: Policy[] = [];
  const invalidAll: Array<{ policy: string; error: string; failClosed?: Policy }> = [];
  for (const o of objs.policies) {
    const r = parsePolicy(o);
    if (r.ok) policies.push(r.policy);
    else {
      invalidAll.push({ policy: r.key, error: r.error, ...(r.failClosed ? { failClosed: r.failClosed } : {}) });
      if (r.failClosed) policies.push(r.failClosed);
    }
  }
  const namespaces = objs.namespaces.map((n) => {
    const md = (n as { metadata?: { name?: string; labels?: Record<string, string> } } | null)?.metadata;
    return namespaceInfo(md?.name ?? '', md?.labels ?? {});
  });
  const pods = objs.pods.map(podInfoFromObject);
  const src = resolve(q.src, pods, 'SRC');
  const dst = resolve(q.dst, pods, 'DST');
  const families = ([4, 6] as const).filter((f) => src.ips.some((x) => family(x) === f) && dst.ips.some((x) => family(x) === f));
  if (families.length === 0) throw new PolicyQueryError(`${src.label} and ${dst.label} have no address family in common`);
  const dstNode = dst.pod?.nodeName;
  const nodeAddrs = new Set((objs.nodes.find((n) => n.metadata.name === dstNode)?.status?.addresses ?? []).map((a) => normalizeIP(a.address ?? '')).filter(Boolean));
  const world = { policies, namespaces, pods };
  const flows: FlowReport[] = [];
  for (const f of families)
    for (const p of ports(q.port, dst)) {
      const s = src.ips.find((x) => family(x) === f)!;
      const d = dst.ips.find((x) => family(x) === f)!;
      const fromNode = !!dstNode && ((src.pod?.hostNetwork === true && src.pod.nodeName === dstNode) || nodeAddrs.has(s));
      const flow: Flow = { src: s, dst: d, protocol: p.protocol, port: p.port, ...(fromNode ? { srcIsNode: true } : {}) };
      const e = explain(world, flow);
      flows.push({ family: f, src: s, dst: d, protocol: p.protocol, port: p.port, allowed: e.allowed, fromNode, reason: e.reason, egress: e.egress, ingress: e.ingress, text: formatExplanation(flow, e) });
    }
  const sides = [src.pod, dst.pod].filter((p): p is PodInfo => !!p);
  const invalid = invalidAll.filter((i) => i.failClosed && sides.some((p) => policySelects(i.failClosed!, p))).map(({ policy, error }) => ({ policy, error }));
  return { src: src.label, dst: dst.label, allowed: flows.every((x) => x.allowed), flows, invalid, policies: policies.length };
}

export function renderPolicyReport(r: PolicyReport): string {
  const out = [`${r.src} -> ${r.dst}: ${r.allowed ? 'ALLOWED' : 'DENIED'} (${r.flows.filter((f) => f.allowed).length}/${r.flows.length} flows allowed; NetworkPolicies in the cluster: ${r.policies})`];
  for (const f of r.flows) out.push('', f.text);
  for (const i of r.invalid) out.push('', `! ${i.policy} is invalid (${i.error}): it isolates the pods it selects in both directions, allowing nothing (fail closed)`);
  return out.join('\n') + '\n';
}

/** The JSON form (-o json): the report without the rendered text. */
export const policyReportJson = (r: PolicyReport) => ({ ...r, flows: r.flows.map(({ text: _text, ...f }) => f) });
