/**
 * LoadBalancerPool address arithmetic: which pool holds an address, whether a pool serves a Service,
 * the lowest free address (O(addresses in use), never a walk over an IPv6 range), and capacity.
 * Pure.
 */
import type { LabelSelector } from '../api/common.js';
import type { LoadBalancerPoolSpec } from '../api/services.js';
import { cidrContainsIP, cidrSize, cidrsOverlap, compareCidr, formatIP, lastAddress, parseCidr, parseIP, type Cidr, type Family } from '../lib/ip.js';
import { selectorMatches } from '../api/selector.js';
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

function lowerBound(arr: readonly bigint[], v: bigint): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The addresses in use (sorted per family) and the lowest free address of a pool, in O(log n) plus
 * the addresses skipped, amortised: a per-CIDR hint remembers where the last search stopped (every
 * address below it is in use or avoided), so handing out n addresses in a row costs O(n log n), not
 * O(n²). A release clears the hints.
 */
export class UsedAddresses {
  private sorted: Record<Family, bigint[]> = { 4: [], 6: [] };
  private hints = new Map<string, bigint>();

  has(ip: string): boolean {
    const p = parseIP(ip);
    if (!p) return false;
    const arr = this.sorted[p.family];
    const i = lowerBound(arr, p.value);
    return arr[i] === p.value;
  }
  add(ip: string): void {
    const p = parseIP(ip);
    if (!p) return;
    const arr = this.sorted[p.family];
    const i = lowerBound(arr, p.value);
    if (arr[i] !== p.value) arr.splice(i, 0, p.value);
  }
  remove(ip: string): void {
    const p = parseIP(ip);
    if (!p) return;
    const arr = this.sorted[p.family];
    const i = lowerBound(arr, p.value);
    if (arr[i] === p.value) arr.splice(i, 1);
    this.hints.clear();
  }
  /** Lowest address of `family` in the pool that is not in use and not avoided. */
  lowestFree(pool: PoolInfo, family: Family): string | null {
    const arr = this.sorted[family];
    for (const [k, c] of pool.cidrs.entries()) {
      if (c.family !== family) continue;
      const key = `${pool.name}\u0000${k}`;
      const last = lastAddress(c);
      let v = this.hints.get(key) ?? c.network;
      let i = lowerBound(arr, v);
      for (; v <= last; v++) {
        if (avoided(pool, family, v)) continue;
        while (i < arr.length && arr[i]! < v) i++;
        if (i < arr.length && arr[i] === v) continue;
        this.hints.set(key, v);
        return formatIP(family, v);
      }
      this.hints.set(key, last + 1n);
    }
    return null;
  }
}

/** Lowest address of `family` in the pool that is not in `used` (canonical text) and not avoided. */
export function lowestFree(pool: PoolInfo, family: Family, used: Iterable<string>): string | null {
  const u = new UsedAddresses();
  for (const ip of used) u.add(ip);
  return u.lowestFree(pool, family);
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
