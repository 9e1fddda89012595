/**
 * The policy compiler (pure): (policies, namespaces, every pod, this node's name) → the desired
 * nftables objects of one private table. Layout (see README "NetworkPolicy (design)"):
 *
 *   chain egress  (hook forward, priority 0)  ct established,related accept; IPv6 ND accept; ip saddr vmap @egress4; ip6 …
 *   chain ingress (hook forward, priority 1)  ct established,related accept; IPv6 ND accept; ip daddr vmap @ingress4; ip6 …
 *   map egress4/ingress4/egress6/ingress6      local pod address → jump g{e,i}-<hash of its policy list>
 *   chain gi-… / ge-…                          jump p{i,e}-<policy> for each policy selecting the pod; drop
 *   chain pi-<policy> / pe-<policy>            one rule per (rule, peer, port group): … accept
 *   set pp4-… / pp6-…                          addresses of the pods a selector peer matches (shared by
 *                                              every rule with the same peer)
 *   set tn4-… / tn6-…                          addr . proto . port: named ports resolved per destination pod
 *
 * Only policies selecting at least one local pod are compiled.
 * Objects grow with pods + policies: each local pod is one map element per family and direction,
 * each peer-matched pod one set element per distinct peer, each policy a fixed number of rules; a
 * group chain exists per distinct list of policies selecting a local pod.
 */
import { createHash } from 'node:crypto';
import { normalizeIP, parseCidr, parseIP } from '../lib/ip.js';
import { selectorMatches } from '../api/selector.js';
import { memo } from '../lib/memo.js';
import { stableStringify } from '../lib/stable.js';
import { policyKey, type NamespaceInfo, type Peer, type PodInfo, type Policy, type PolicyPort, type Rule as PolicyRule } from './model.js';
import type { Chain, Family, L4, Match, NftMap, NftSet, Rule, Ruleset } from './objects.js';
import { blockRanges } from './ranges.js';
import { eligible, peerMatches, policySelects } from './semantics.js';

export const DEFAULT_TABLE = 'podfabric-policy';
export const EGRESS_PRIORITY = 0;
export const INGRESS_PRIORITY = 1;

export interface CompileInput {
  policies: Policy[];
  namespaces: NamespaceInfo[];
  /** Every pod of the cluster (peers); those with nodeName === node are enforced here. */
  pods: PodInfo[];
  node: string;
  table?: string;
  /**
   * This node's pod CIDRs. When given, the table fails closed for addresses it does not know yet:
   * traffic from or to an address inside them that is not a local pod's (the agent has not seen the
   * Pod with that IP yet) is dropped, so a new pod's isolation is in place before its first packet.
   */
  podCIDRs?: string[];
}

// Memos (pure: same input, same output) so that a recompile after one change costs little.
const h = memo((s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12));
// Addresses: lib/ip remembers its parses and canonical texts.
const famOf = (ip: string): Family => parseIP(ip)?.family ?? 4;
const norm = (ip: string): string => normalizeIP(ip) ?? ip;
const peerKeys = new WeakMap<Peer, string>();

/** A set a policy's rules reference; its elements come from the pods of each compile. */
type SetReq =
  | { kind: 'peer'; name: string; family: Family; peer: Peer; ns: string }
  | { kind: 'tuple'; name: string; family: Family; dir: 'ingress' | 'egress'; rule: PolicyRule; named: PolicyPort[]; pol: Policy };
const plans = new WeakMap<Policy, { fams: string; chains: Chain[]; reqs: SetReq[] }>();
const l4 = (p: string) => p.toLowerCase() as L4;

class Index {
  readonly byNs = new Map<string, PodInfo[]>();
  readonly nsLabels = new Map<string, Record<string, string>>();
  readonly families: Family[];
  constructor(
    readonly pods: PodInfo[],
    readonly namespaces: NamespaceInfo[],
  ) {
    const fams = new Set<Family>();
    for (const p of pods) {
      if (!eligible(p)) continue;
      (this.byNs.get(p.namespace) ?? this.byNs.set(p.namespace, []).get(p.namespace)!).push(p);
      for (const ip of p.ips) fams.add(famOf(ip));
    }
    for (const n of namespaces) this.nsLabels.set(n.name, n.labels);
    this.families = fams.size ? ([...fams].sort() as Family[]) : [4];
  }
  /** The pods a selector peer of a policy in namespace ns matches. */
  peerPods(peer: Peer, ns: string): PodInfo[] {
    const nss = peer.namespaceSelector
      ? [...this.byNs.keys()].filter((n) => selectorMatches(peer.namespaceSelector, this.nsLabels.get(n) ?? { 'kubernetes.io/metadata.name': n }))
      : [ns];
    return nss.flatMap((n) => (this.byNs.get(n) ?? []).filter((p) => selectorMatches(peer.podSelector, p.labels)));
  }
}

export function compile(input: CompileInput): Ruleset {
  const table = input.table ?? DEFAULT_TABLE;
  const ix = new Index(input.pods, input.namespaces);
  const localByNs = new Map<string, PodInfo[]>();
  for (const p of input.pods) if (eligible(p) && p.nodeName === input.node) (localByNs.get(p.namespace) ?? localByNs.set(p.namespace, []).get(p.namespace)!).push(p);
  const sets: Record<string, NftSet> = {};
  const chains: Record<string, Chain> = {};
  const addSet = (name: string, kind: NftSet['kind'], family: Family, elements: Iterable<string>) =>
    (sets[name] ??= { name, kind, family, elements: [...new Set(elements)].sort() });

  /** Named set of the addresses a selector peer matches, shared by every rule with the same peer. */
  const peerSet = (peer: Peer, ns: string, family: Family, reqs: SetReq[]): string => {
    // A peer object belongs to one policy, hence one namespace: its key can be remembered.
    let key = peerKeys.get(peer);
    if (!key) peerKeys.set(peer, (key = h(stableStringify({ ns: peer.namespaceSelector ? undefined : ns, n: peer.namespaceSelector, p: peer.podSelector ?? {} }))));
    const name = `pp${family}-${key}`;
    reqs.push({ kind: 'peer', name, family, peer, ns });
    return name;
  };

  /** Fills a set a policy's rules reference, from this compile's pods. */
  const materialize = (req: SetReq, selectedLocal: PodInfo[]) => {
    if (sets[req.name]) return;
    if (req.kind === 'peer') {
      const ips = ix.peerPods(req.peer, req.ns).flatMap((p) => p.ips.filter((ip) => famOf(ip) === req.family));
      addSet(req.name, 'addr', req.family, ips.map(norm));
      return;
    }
    const { family, named, rule, pol } = req;
    const els: string[] = [];
    const resolve = (pod: PodInfo, ip: string) => {
      for (const np of named)
        for (const c of pod.ports ?? [])
          if (c.name === np.port && (c.protocol ?? 'TCP') === np.protocol) els.push(`${norm(ip)} . ${l4(np.protocol)} . ${c.containerPort}`);
    };
    if (req.dir === 'ingress') {
      // The destination is the selected local pod: its own port names.
      for (const pod of selectedLocal) for (const ip of pod.ips) if (famOf(ip) === family) resolve(pod, ip);
    } else {
      // The destination is the peer: every pod address the rule's peers match, with its own port names.
      for (const pod of ix.byNs.values())
        for (const p of pod)
          for (const ip of p.ips)
            if (famOf(ip) === family && (rule.peers.length === 0 || rule.peers.some((pe) => peerMatches(pe, pol.namespace, ip, p, input.namespaces)))) resolve(p, ip);
    }
    addSet(req.name, 'tuple', family, els);
  };

  const ruleStatements = (pol: Policy, dir: 'ingress' | 'egress', idx: number, rule: PolicyRule, reqs: SetReq[]): Rule[] => {
    const addrDir = dir === 'ingress' ? 'saddr' : 'daddr';
    // Peer alternatives: each a list of matches with the family it pins (undefined: any family).
    type Alt = { family?: Family; match: Match[] };
    const peers: Alt[] = [];
    if (rule.peers.length === 0) peers.push({ match: [] });
    for (const peer of rule.peers) {
      if (peer.ipBlock) {
        const family = peer.ipBlock.cidr.family as Family;
        peers.push({ family, match: [{ m: 'ranges', dir: addrDir, family, ranges: blockRanges(peer.ipBlock.cidr, peer.ipBlock.except) }] });
      } else for (const family of ix.families) peers.push({ family, match: [{ m: 'set', dir: addrDir, family, set: peerSet(peer, pol.namespace, family, reqs) }] });
    }
    // Port alternatives.
    const ports: Alt[] = [];
    if (rule.ports.length === 0) ports.push({ match: [] });
    const numeric = new Map<L4, Array<[number, number]> | 'all'>();
    for (const p of rule.ports) {
      if (typeof p.port === 'string') continue;
      const cur = numeric.get(l4(p.protocol));
      if (p.port === undefined) numeric.set(l4(p.protocol), 'all');
      else if (cur !== 'all') numeric.set(l4(p.protocol), [...(cur ?? []), [p.port, p.endPort ?? p.port]]);
    }
    for (const [proto, r] of [...numeric].sort()) ports.push({ match: [{ m: 'proto', proto }, ...(r === 'all' ? [] : [{ m: 'dport' as const, ranges: r.sort((a, b) => a[0] - b[0]) }])] });
    const named = rule.ports.filter((p) => typeof p.port === 'string');
    const out: Rule[] = [];
    for (const pe of peers) for (const po of ports) if (!(pe.family && po.family && pe.family !== po.family)) out.push({ match: [...pe.match, ...po.match], verdict: 'accept' });
    if (named.length === 0) return out;
    for (const family of ix.families) {
      const name = `tn${family}-${h(policyKey(pol))}-${dir[0]}${idx}`;
      const tuple: Match = { m: 'tuple', family, set: name };
      reqs.push({ kind: 'tuple', name, family, dir, rule, named, pol });
      // Ingress: peers matched on the source, the port on the selected pod. Egress: the tuple set
      // already holds only the peers' addresses.
      if (dir === 'ingress') {
        for (const pe of peers) if (!pe.family || pe.family === family) out.push({ match: [...pe.match, tuple], verdict: 'accept' });
      } else out.push({ match: [tuple], verdict: 'accept' });
    }
    return out;
  };

  // Policy chains, and which policies each local pod is selected by.
  const selected = { ingress: new Map<PodInfo, string[]>(), egress: new Map<PodInfo, string[]>() };
  const byKey = input.policies.map((p) => [policyKey(p), p] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  for (const [, pol] of byKey) {
    const selectedLocal = (localByNs.get(pol.namespace) ?? []).filter((p) => policySelects(pol, p));
    // A policy that selects no pod of this node needs nothing here (no chain, no peer set): a node's
    // objects follow its own pods and the policies that select them, not the whole cluster's.
    if (selectedLocal.length === 0) continue;
    // A policy's chains depend only on the policy and the address families: reuse them (and so let
    // the delta see unchanged chains by identity); the sets they reference are refilled every time.
    const fams = ix.families.join();
    let plan = plans.get(pol);
    if (!plan || plan.fams !== fams) {
      const reqs: SetReq[] = [];
      const cs: Chain[] = [];
      for (const dir of ['ingress', 'egress'] as const) {
        const rules = pol[dir];
        if (!rules) continue;
        const name = `p${dir[0]}-${h(policyKey(pol))}`;
        cs.push({ name, rules: rules.flatMap((r, i) => ruleStatements(pol, dir, i, r, reqs)) });
      }
      plans.set(pol, (plan = { fams, chains: cs, reqs }));
    }
    for (const req of plan.reqs) materialize(req, selectedLocal);
    for (const c of plan.chains) {
      chains[c.name] = c;
      const dir = c.name.startsWith('pi-') ? 'ingress' : 'egress';
      for (const pod of selectedLocal) (selected[dir].get(pod) ?? selected[dir].set(pod, []).get(pod)!).push(c.name);
    }
  }

  // Dispatch: local pod address → group chain (one per distinct list of selecting policies).
  const maps: Record<string, NftMap> = {};
  for (const dir of ['egress', 'ingress'] as const)
    for (const family of [4, 6] as const) maps[`${dir}${family}`] = { name: `${dir}${family}`, family, elements: {} };
  for (const dir of ['ingress', 'egress'] as const)
    for (const [pod, pols] of selected[dir]) {
      const group = `g${dir[0]}-${h(pols.join(','))}`;
      chains[group] ??= { name: group, rules: [...pols.map((p): Rule => ({ match: [], verdict: { jump: p } })), { match: [], verdict: 'drop' }] };
      for (const ip of pod.ips) maps[`${dir}${famOf(ip)}`]!.elements[norm(ip)] = group;
    }

  // Fail closed for unknown addresses in this node's pod CIDRs: known local pods accept, the rest drop.
  const unknown: Record<'saddr' | 'daddr', Rule[]> = { saddr: [], daddr: [] };
  for (const c of input.podCIDRs ?? []) {
    const cidr = parseCidr(c);
    if (!cidr) continue;
    const family = cidr.family as Family;
    const known = `known${family}`;
    if (!sets[known]) {
      const ips = [...localByNs.values()].flat().flatMap((p) => p.ips.filter((ip) => famOf(ip) === family).map(norm));
      sets[known] = { name: known, kind: 'addr', family, elements: [...new Set(ips)].sort() };
      for (const dir of ['saddr', 'daddr'] as const) unknown[dir].push({ match: [{ m: 'set', dir, family, set: known }], verdict: 'accept' });
    }
    for (const dir of ['saddr', 'daddr'] as const) unknown[dir].push({ match: [{ m: 'ranges', dir, family, ranges: blockRanges(cidr, []) }], verdict: 'drop' });
  }
  const base = (dir: 'egress' | 'ingress', priority: number): Chain => {
    const addr = dir === 'egress' ? 'saddr' : 'daddr';
    return {
      name: dir,
      hook: { hook: 'forward', priority },
      rules: [
        { match: [{ m: 'ct' }], verdict: 'accept' },
        { match: [{ m: 'nd' }], verdict: 'accept' },
        ...([4, 6] as const).map((family): Rule => ({ match: [{ m: 'vmap', dir: addr, family, map: `${dir}${family}` }] })),
        // known accepts must precede every CIDR drop (a dual-stack node has one CIDR per family).
        ...unknown[addr].filter((r) => r.verdict === 'accept'),
        ...unknown[addr].filter((r) => r.verdict === 'drop'),
      ],
    };
  };
  chains.egress = base('egress', EGRESS_PRIORITY);
  chains.ingress = base('ingress', INGRESS_PRIORITY);
  return { table, sets, maps, chains };
}
