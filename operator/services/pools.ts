/**
 * LoadBalancerPool address arithmetic: which pool holds an address, whether a pool serves a Service,
 * the lowest free address (O(addresses in use), never a walk over an IPv6 range), and capacity.
 * Pure.
 */
import type { LabelSelector } from '../api/common.js';
import type { LoadBalancerPoolSpec } from '../api/services.js';
import { cidrContainsIP, cidrSize, cidrsOverlap, compareCidr, formatIP, lastAddress, parseCidr, parseIP, type Cidr, type Family } from '../lib/ip.js';
import { selectorMatches } from '../lib/selector.js';
import type { ServiceInfo } from './model.js';

export interface PoolInfo {
  name: string;
  /** Parsed, sorted; unparsable entries dropped. */
  cidrs: Cidr[];
  autoAssign: boolean;
  disabled: boolean;
  avoidBuggyIPs: boolean;
  serviceSelector?: LabelSelector;
  namespaces: string[];
  communities: string[];
}

export function poolFromSpec(name: string, spec: LoadBalancerPoolSpec): PoolInfo {
  return {
    name,
    cidrs: spec.cidrs
      .map((c) => parseCidr(c, { strict: false }))
      .filter((c): c is Cidr => c !== null)
      .sort(compareCidr),
    autoAssign: spec.autoAssign ?? true,
    disabled: spec.disabled ?? false,
    avoidBuggyIPs: spec.avoidBuggyIPs ?? false,
    ...(spec.serviceSelector ? { serviceSelector: spec.serviceSelector } : {}),
    namespaces: spec.namespaces ?? [],
    communities: spec.communities ?? [],
  };
}

/** Whether the pool may give addresses to this Service (namespaces and label selector). */
export function poolServes(pool: PoolInfo, svc: ServiceInfo): boolean {
  if (pool.namespaces.length && !pool.namespaces.includes(svc.namespace)) return false;
  return selectorMatches(pool.serviceSelector, svc.labels);
}

function avoided(pool: PoolInfo, family: Family, v: bigint): boolean {
  if (!pool.avoidBuggyIPs || family !== 4) return false;
  const last = v & 0xffn;
  return last === 0n || last === 255n;
}

export function poolContains(pool: PoolInfo, ip: string): boolean {
  const p = parseIP(ip);
  return !!p && pool.cidrs.some((c) => cidrContainsIP(c, p.family, p.value));
}

export function poolHasFamily(pool: PoolInfo, family: Family): boolean {
  return pool.cidrs.some((c) => c.family === family);
}

/** The first pool (by name) holding the address, or undefined. */
export function poolOf(pools: readonly PoolInfo[], ip: string): PoolInfo | undefined {
  return pools.find((p) => poolContains(p, ip));
}

/** Lowest address of `family` in the pool that is not in `used` (canonical text) and not avoided. */
export function lowestFree(pool: PoolInfo, family: Family, used: ReadonlySet<string>): string | null {
  const usedVals: bigint[] = [];
  for (const u of used) {
    const p = parseIP(u);
    if (p && p.family === family) usedVals.push(p.value);
  }
  usedVals.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const c of pool.cidrs) {
    if (c.family !== family) continue;
    const last = lastAddress(c);
    let i = 0;
    for (let v = c.network; v <= last; v++) {
      if (avoided(pool, family, v)) continue;
      while (i < usedVals.length && usedVals[i]! < v) i++;
      if (i < usedVals.length && usedVals[i] === v) continue;
      return formatIP(family, v);
    }
  }
  return null;
}

/** Addresses of a CIDR skipped by avoidBuggyIPs (IPv4 .0 and .255). */
function avoidedCount(pool: PoolInfo, c: Cidr): bigint {
  if (!pool.avoidBuggyIPs || c.family !== 4) return 0n;
  if (c.prefixLength <= 24) return cidrSize(c) / 128n;
  return (avoided(pool, 4, c.network) ? 1n : 0n) + (avoided(pool, 4, lastAddress(c)) ? 1n : 0n);
}

/** Usable addresses in the pool (overlapping CIDRs inside one pool counted once per CIDR), saturating. */
export function poolCapacity(pool: PoolInfo): number {
  let n = 0n;
  for (const c of pool.cidrs) n += cidrSize(c) - avoidedCount(pool, c);
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** Names of the other pools sharing addresses with this one. */
export function overlappingPools(pool: PoolInfo, pools: readonly PoolInfo[]): string[] {
  return pools
    .filter((o) => o.name !== pool.name && o.cidrs.some((a) => pool.cidrs.some((b) => cidrsOverlap(a, b))))
    .map((o) => o.name)
    .sort();
}
