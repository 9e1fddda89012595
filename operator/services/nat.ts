/**
 * natOutgoing: the agent's own nftables table that masquerades pod traffic leaving the cluster. Pure
 * renderer: IPPools + the cluster's Service ranges → the desired table as plain data (sets, chains,
 * rule strings) that an nftables applier diffs and applies, plus its `nft -f` text.
 *
 *   table inet podfabric-nat
 *     set nat-sources-v4    pools with natOutgoing (interval set)
 *     set cluster-dests-v4  every pod pool, the ClusterIP range(s), the LoadBalancer pools
 *     chain postrouting  (type nat hook postrouting priority srcnat; policy accept)
 *       ip saddr @nat-sources-v4 ip daddr != @cluster-dests-v4 masquerade
 *     (same for IPv6 with ip6)
 *
 * Traffic between pods (destination in any pod pool) and to Services is never touched (kube-proxy has
 * already DNATed a ClusterIP to a pod address before postrouting; the Service ranges are excluded as
 * well for the traffic it does not DNAT). With no natOutgoing pool the table is empty of rules, and
 * `enabled` is false: the applier may then delete the table altogether.
 */
import { cidrContains, compareCidr, formatCidr, parseCidr, type Cidr, type Family } from '../lib/ip.js';

export const NAT_TABLE = 'podfabric-nat';

export interface NftSet {
  name: string;
  type: 'ipv4_addr' | 'ipv6_addr';
  flags: ['interval'];
  /** Canonical CIDRs, sorted, overlaps merged away (an nft interval set refuses overlapping elements). */
  elements: string[];
}

export interface NftChain {
  name: string;
  /** Base chain declaration, e.g. "type nat hook postrouting priority srcnat; policy accept;". */
  base?: string;
  rules: string[];
}

export interface NftTable {
  family: 'inet';
  name: string;
  sets: NftSet[];
  chains: NftChain[];
}

export interface NatInput {
  /** Every IPPool (cidr and natOutgoing); disabled pools still hold running pods, so they count too. */
  pools: ReadonlyArray<{ cidr: string; natOutgoing?: boolean }>;
  /** FabricConfig spec.services.clusterIP.cidrs (the service-cluster-ip-range). */
  serviceCIDRs: readonly string[];
  /** LoadBalancerPool CIDRs. */
  loadBalancerCIDRs: readonly string[];
}

export interface NatPlan {
  enabled: boolean;
  table: NftTable;
}

/** Drops CIDRs contained in another of the list; the rest sorted. */
function minimal(cidrs: Cidr[], family: Family): string[] {
  const fam = cidrs.filter((c) => c.family === family).sort((a, b) => a.prefixLength - b.prefixLength || compareCidr(a, b));
  const kept: Cidr[] = [];
  for (const c of fam) {
    if (!kept.some((k) => cidrContains(k, c))) kept.push(c);
  }
  return kept.sort(compareCidr).map(formatCidr);
}

const parse = (cs: readonly string[]) => cs.map((c) => parseCidr(c, { strict: false })).filter((c): c is Cidr => c !== null);

export function renderNatTable(i: NatInput): NatPlan {
  const sources = parse(i.pools.filter((p) => p.natOutgoing).map((p) => p.cidr));
  const dests = parse([...i.pools.map((p) => p.cidr), ...i.serviceCIDRs, ...i.loadBalancerCIDRs]);
  const sets: NftSet[] = [];
  const rules: string[] = [];
  for (const [family, v, type, match] of [
    [4, 'v4', 'ipv4_addr', 'ip'],
    [6, 'v6', 'ipv6_addr', 'ip6'],
  ] as const) {
    const src = minimal(sources, family);
    if (!src.length) continue;
    sets.push({ name: `nat-sources-${v}`, type, flags: ['interval'], elements: src });
    sets.push({ name: `cluster-dests-${v}`, type, flags: ['interval'], elements: minimal(dests, family) });
    rules.push(`${match} saddr @nat-sources-${v} ${match} daddr != @cluster-dests-${v} masquerade`);
  }
  return {
    enabled: rules.length > 0,
    table: {
      family: 'inet',
      name: NAT_TABLE,
      sets,
      chains: [{ name: 'postrouting', base: 'type nat hook postrouting priority srcnat; policy accept;', rules }],
    },
  };
}

/**
 * The table as one `nft -f` transaction that replaces it whole: create (no-op if present), delete,
 * define. Atomic: the kernel applies all or nothing, and no other table is touched.
 */
export function nftScript(t: NftTable): string {
  const lines = [`table ${t.family} ${t.name}`, `delete table ${t.family} ${t.name}`, `table ${t.family} ${t.name} {`];
  for (const s of t.sets) {
    lines.push(`\tset ${s.name} {`, `\t\ttype ${s.type}`, `\t\tflags ${s.flags.join(', ')}`);
    if (s.elements.length) lines.push(`\t\telements = { ${s.elements.join(', ')} }`);
    lines.push('\t}');
  }
  for (const c of t.chains) {
    lines.push(`\tchain ${c.name} {`);
    if (c.base) lines.push(`\t\t${c.base}`);
    for (const r of c.rules) lines.push(`\t\t${r}`);
    lines.push('\t}');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
