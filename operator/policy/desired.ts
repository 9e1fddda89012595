/**
 * The one call the agent makes per policy sync (pure): raw API objects in (NetworkPolicies,
 * Namespaces, Pods as the informers hold them), the desired table out, with the policies that failed
 * to parse (to report as Events; each fails closed) and counts for status and metrics.
 */
import { normalizeIP } from '../lib/ip.js';
import { sameElements } from '../lib/memo.js';
import { compile, DEFAULT_TABLE } from './compile.js';
import { namespaceInfo, parsePolicy, podInfoFromObject, type PodInfo, type Policy } from './model.js';
import { countObjects, type Ruleset } from './objects.js';

export interface PolicyInputs {
  /** networking.k8s.io/v1 NetworkPolicy objects. */
  policies: unknown[];
  /** core/v1 Namespace objects. */
  namespaces: unknown[];
  /** core/v1 Pod objects of the whole cluster (peers); those with spec.nodeName === node are enforced. */
  pods: unknown[];
  node: string;
  table?: string;
  /** This node's pod CIDRs: addresses in them that no known local pod holds are dropped (fail closed). */
  podCIDRs?: string[];
}

export interface PolicyDesired {
  ruleset: Ruleset;
  errors: Array<{ key: string; error: string }>;
  counts: { policies: number; invalid: number; localPods: number; isolatedIngress: number; isolatedEgress: number; objects: number };
}

// Informer caches hand out the same object until it changes: parse each object once.
const parsedPolicies = new WeakMap<object, ReturnType<typeof parsePolicy>>();
const parsedPods = new WeakMap<object, PodInfo>();
const once = <T>(cache: WeakMap<object, T>, o: unknown, fn: (o: unknown) => T): T => {
  if (typeof o !== 'object' || o === null) return fn(o);
  let v = cache.get(o);
  if (v === undefined) cache.set(o, (v = fn(o)));
  return v;
};

export function desiredPolicyState(inp: PolicyInputs): PolicyDesired {
  const policies: Policy[] = [];
  const errors: PolicyDesired['errors'] = [];
  for (const o of inp.policies) {
    const r = once(parsedPolicies, o, parsePolicy);
    if (r.ok) policies.push(r.policy);
    else {
      errors.push({ key: r.key, error: r.error });
      if (r.failClosed) policies.push(r.failClosed);
    }
  }
  const namespaces = inp.namespaces.map((n) => {
    const md = (n as { metadata?: { name?: string; labels?: Record<string, string> } } | null)?.metadata;
    return namespaceInfo(md?.name ?? '', md?.labels ?? {});
  });
  const pods = inp.pods.map((o) => once(parsedPods, o, podInfoFromObject));
  const ruleset = compile({ policies, namespaces, pods, node: inp.node, table: inp.table ?? DEFAULT_TABLE, ...(inp.podCIDRs ? { podCIDRs: inp.podCIDRs } : {}) });
  const local = pods.filter((p) => p.nodeName === inp.node && p.ips.length > 0 && !p.hostNetwork).length;
  const mapSize = (n: string) => Object.keys(ruleset.maps[n]?.elements ?? {}).length;
  return {
    ruleset,
    errors,
    counts: {
      policies: policies.length,
      invalid: errors.length,
      localPods: local,
      isolatedIngress: mapSize('ingress4') + mapSize('ingress6'),
      isolatedEgress: mapSize('egress4') + mapSize('egress6'),
      objects: countObjects(ruleset).total,
    },
  };
}

/**
 * Would desiredPolicyState answer the same (it is pure)? The same objects in the same order — informer
 * caches hand out an object until it changes — the same node and pod CIDRs. The agent's periodic drift
 * check then reuses its last table instead of compiling it again.
 */
export function samePolicyInputs(a: PolicyInputs, b: PolicyInputs): boolean {
  return (
    a.node === b.node &&
    a.table === b.table &&
    sameElements(a.podCIDRs ?? [], b.podCIDRs ?? []) &&
    sameElements(a.policies, b.policies) &&
    sameElements(a.namespaces, b.namespaces) &&
    sameElements(a.pods, b.pods)
  );
}

/** Is this local pod address's isolation in the ruleset (the map entries that send it to its policies)? */
export function isolationOf(rs: Ruleset, address: string): { ingress?: string; egress?: string } {
  const ip = normalizeIP(address) ?? address;
  const fam = ip.includes(':') ? 6 : 4;
  const ingress = rs.maps[`ingress${fam}`]?.elements[ip];
  const egress = rs.maps[`egress${fam}`]?.elements[ip];
  return { ...(ingress ? { ingress } : {}), ...(egress ? { egress } : {}) };
}
