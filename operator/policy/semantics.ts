/**
 * The Kubernetes NetworkPolicy semantics, written directly from the API documentation, as a pure
 * reference evaluator: the oracle the compiled nftables ruleset is checked against, and the engine
 * of `explain` (why a flow is allowed or denied). Not optimised: it scans every policy per question.
 *
 * A flow src → dst is allowed iff egress allows it at src AND ingress allows it at dst, where for a
 * side: if no policy of that type selects the pod (or the side is not a pod), it is not isolated;
 * otherwise at least one rule of one selecting policy must match the peer and the port.
 * Traffic from the destination pod's own node is always allowed (kubelet probes).
 */
import { cidrContainsIP, parseIP } from '../lib/ip.js';
import { selectorMatches } from '../api/selector.js';
import { policyKey, type NamespaceInfo, type Peer, type PodInfo, type Policy, type Protocol, type Rule } from './model.js';

export interface World {
  policies: Policy[];
  namespaces: NamespaceInfo[];
  pods: PodInfo[];
}
export interface Flow {
  src: string;
  dst: string;
  protocol: Protocol;
  port: number;
  /** The source is the destination pod's own node (host network): always allowed. */
  srcIsNode?: boolean;
}
export interface RuleRef {
  policy: string;
  /** Index into spec.ingress / spec.egress. */
  rule: number;
}
export interface SideExplanation {
  /** namespace/name of the pod at this side, or undefined for an address outside the pod network. */
  pod?: string;
  /** Policies of this direction selecting the pod (they isolate it). */
  selectedBy: string[];
  /** The rules that allow the flow (empty when denied or not isolated). */
  allowedBy: RuleRef[];
  verdict: 'not-isolated' | 'allowed' | 'denied' | 'node';
}
export interface Explanation {
  allowed: boolean;
  egress: SideExplanation;
  ingress: SideExplanation;
  /** One line a human can read. */
  reason: string;
}

/** A pod that takes part in policy: has addresses and is not host-network. */
export const eligible = (p: PodInfo) => !p.hostNetwork && p.ips.length > 0;

export function podByIP(pods: PodInfo[], ip: string): PodInfo | undefined {
  const want = parseIP(ip);
  if (!want) return undefined;
  return pods.find((p) => eligible(p) && p.ips.some((x) => parseIP(x)?.value === want.value && parseIP(x)?.family === want.family));
}

export function policySelects(pol: Policy, pod: PodInfo): boolean {
  return eligible(pod) && pod.namespace === pol.namespace && selectorMatches(pol.podSelector, pod.labels);
}

/** Does a peer (of a policy in namespace ns) match the address ip, which is `pod` when it is a pod's? */
export function peerMatches(peer: Peer, ns: string, ip: string, pod: PodInfo | undefined, namespaces: NamespaceInfo[]): boolean {
  if (peer.ipBlock) {
    const a = parseIP(ip);
    if (!a || !cidrContainsIP(peer.ipBlock.cidr, a.family, a.value)) return false;
    return !peer.ipBlock.except.some((e) => cidrContainsIP(e, a.family, a.value));
  }
  if (!pod) return false;
  if (peer.namespaceSelector) {
    const nsLabels = namespaces.find((n) => n.name === pod.namespace)?.labels ?? { 'kubernetes.io/metadata.name': pod.namespace };
    if (!selectorMatches(peer.namespaceSelector, nsLabels)) return false;
  } else if (pod.namespace !== ns) return false;
  return selectorMatches(peer.podSelector, pod.labels);
}

/** Does the rule's ports list admit (protocol, port) towards dstPod (named ports resolve on dstPod)? */
export function portsMatch(rule: Rule, protocol: Protocol, port: number, dstPod: PodInfo | undefined): boolean {
  if (rule.ports.length === 0) return true;
  return rule.ports.some((p) => {
    if (p.protocol !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === 'number') return port >= p.port && port <= (p.endPort ?? p.port);
    return (dstPod?.ports ?? []).some((c) => c.name === p.port && (c.protocol ?? 'TCP') === protocol && c.containerPort === port);
  });
}

function side(world: World, dir: 'ingress' | 'egress', flow: Flow, srcPod: PodInfo | undefined, dstPod: PodInfo | undefined): SideExplanation {
  const self = dir === 'ingress' ? dstPod : srcPod;
  const peerIP = dir === 'ingress' ? flow.src : flow.dst;
  const peerPod = dir === 'ingress' ? srcPod : dstPod;
  const base = self ? { pod: `${self.namespace}/${self.name}` } : {};
  if (!self) return { ...base, selectedBy: [], allowedBy: [], verdict: 'not-isolated' };
  const selecting = world.policies.filter((p) => p[dir] !== null && policySelects(p, self));
  const selectedBy = selecting.map(policyKey).sort();
  if (dir === 'ingress' && flow.srcIsNode) return { ...base, selectedBy, allowedBy: [], verdict: 'node' };
  if (selecting.length === 0) return { ...base, selectedBy, allowedBy: [], verdict: 'not-isolated' };
  const allowedBy: RuleRef[] = [];
  for (const pol of selecting)
    for (const [i, rule] of pol[dir]!.entries()) {
      const peerOk = rule.peers.length === 0 || rule.peers.some((pe) => peerMatches(pe, pol.namespace, peerIP, peerPod, world.namespaces));
      if (peerOk && portsMatch(rule, flow.protocol, flow.port, dstPod)) allowedBy.push({ policy: policyKey(pol), rule: i });
    }
  allowedBy.sort((a, b) => (a.policy === b.policy ? a.rule - b.rule : a.policy < b.policy ? -1 : 1));
  return { ...base, selectedBy, allowedBy, verdict: allowedBy.length ? 'allowed' : 'denied' };
}

function describe(dir: string, s: SideExplanation): string {
  switch (s.verdict) {
    case 'not-isolated':
      return `${dir}: ${s.pod ?? 'not a pod'} is not isolated for ${dir} (no policy selects it)`;
    case 'node':
      return `${dir}: traffic from the pod's own node is always allowed`;
    case 'allowed':
      return `${dir}: allowed by ${s.allowedBy.map((r) => `${r.policy} ${dir}[${r.rule}]`).join(', ')}`;
    case 'denied':
      return `${dir}: DENIED — ${s.pod} is isolated by ${s.selectedBy.join(', ')} and no ${dir} rule matches`;
  }
}

/** Why a flow is allowed or denied, per side. */
export function explain(world: World, flow: Flow): Explanation {
  const srcPod = flow.srcIsNode ? undefined : podByIP(world.pods, flow.src);
  const dstPod = podByIP(world.pods, flow.dst);
  const egress = side(world, 'egress', flow, srcPod, dstPod);
  const ingress = side(world, 'ingress', flow, srcPod, dstPod);
  const allowed = egress.verdict !== 'denied' && ingress.verdict !== 'denied';
  return { allowed, egress, ingress, reason: `${describe('egress', egress)}; ${describe('ingress', ingress)}` };
}

export const allows = (world: World, flow: Flow): boolean => explain(world, flow).allowed;
