/**
 * Pod CIDR allocation: which block each node gets. Pure and deterministic: no I/O, no clock.
 *
 * The index holds every claimed block (loaded from NodeFabric spec, the durable record, before anything
 * new is allocated). decide() proposes a node's allocations without changing anything; commit() records
 * them. Callers decide and commit without awaiting in between, so two decisions never race.
 *
 * Rules:
 * - one block per address family; a recorded block is kept even when its pool is later disabled,
 *   deleted-while-in-use or no longer selects the node (nothing that works is taken away);
 * - a Node.spec.podCIDRs entry inside a pool and not claimed by another node is adopted as is;
 * - otherwise the lowest free block of the first matching pool (pools ordered by name) that is enabled,
 *   not being deleted and not inside another pool (overlap: the nested region gets no new blocks).
 */
import {
  blockCount,
  blockIndex,
  cidrContains,
  cidrsOverlap,
  compareCidr,
  formatCidr,
  lastAddress,
  nthBlock,
  parseCidr,
  type Cidr,
  type Family,
} from '../lib/ip.js';
import { effectiveBlockSize } from '../api/rules.js';
import { selectorMatches } from '../api/selector.js';
import type { LabelSelector } from '../api/common.js';

export { DEFAULT_BLOCK_SIZE, effectiveBlockSize } from '../api/rules.js';
/** Largest adopted CIDR, in blocks, that we index (a /16 adopted into a /24-block pool would be 256). */
const MAX_ADOPTED_BLOCKS = 4096n;

export interface PoolInfo {
  name: string;
  cidr: string;
  blockSize?: number;
  nodeSelector?: LabelSelector;
  disabled: boolean;
  deleting: boolean;
}

export interface Allocation {
  cidr: string;
  pool: string;
}

export interface NodeInfo {
  name: string;
  labels: Record<string, string>;
  /** Node.spec.podCIDRs as set by someone else (or by our own mirror). */
  podCIDRs: string[];
}

export type ProblemReason = 'PoolExhausted' | 'PoolOverlapping' | 'NoMatchingPool' | 'PodCIDRConflict' | 'PodCIDROutsidePools';

export interface Problem {
  reason: ProblemReason;
  family?: Family;
  pools?: string[];
  message: string;
}

export interface Decision {
  /** Every block the node should have (kept + adopted + new), IPv4 first. */
  allocations: Allocation[];
  kept: Allocation[];
  adopted: Allocation[];
  allocated: Allocation[];
  problems: Problem[];
}

interface PoolState {
  info: PoolInfo;
  family: Family;
  cidr: Cidr;
  blockSize: number;
  total: number;
  /** block index → owner node */
  used: Map<bigint, string>;
  /** Ranges of this pool (as block-index intervals) that no new block may come from: nested pools. */
  excluded: Array<[bigint, bigint]>;
  /** Names of pools overlapping this one. */
  overlaps: string[];
  /** Lowest index that may be free. */
  hint: bigint;
}

export interface PoolStats {
  total: number;
  allocated: number;
  free: number;
  overlaps: string[];
  /** Unused blocks withheld because another pool overlaps them (free would be that much larger without the overlap). */
  shadowed: number;
  /** Nodes holding blocks from this pool (sorted, capped at 10 for messages). */
  holders: string[];
}

export function poolFamily(cidr: string): Family | null {
  return parseCidr(cidr)?.family ?? null;
}

export class Ipam {
  private pools = new Map<string, PoolState>();
  private claims = new Map<string, Allocation[]>();
  /** Claimed blocks that lie in no current pool (e.g. a pool force-deleted while in use): cidr → owner. */
  private orphans = new Map<string, { cidr: Cidr; owner: string }>();

  /** Replace the pool set; claims are re-indexed against the new pools. Invalid pools are skipped and returned. */
  setPools(pools: PoolInfo[]): string[] {
    const invalid: string[] = [];
    const next = new Map<string, PoolState>();
    for (const info of [...pools].sort((a, b) => a.name.localeCompare(b.name))) {
      const cidr = parseCidr(info.cidr);
      const blockSize = effectiveBlockSize(info);
      if (!cidr || blockSize < cidr.prefixLength || blockSize > (cidr.family === 4 ? 32 : 128)) {
        invalid.push(info.name);
        continue;
      }
      next.set(info.name, {
        info,
        family: cidr.family,
        cidr,
        blockSize,
        total: blockCount(cidr, blockSize),
        used: new Map(),
        excluded: [],
        overlaps: [],
        hint: 0n,
      });
    }
    const list = [...next.values()];
    for (const a of list) {
      for (const b of list) {
        if (a === b || !cidrsOverlap(a.cidr, b.cidr)) continue;
        a.overlaps.push(b.info.name);
        // CIDRs overlap only by nesting: the smaller one (or both, when equal) is the overlap region.
        if (cidrContains(b.cidr, a.cidr)) a.excluded.push([0n, BigInt(a.total) - 1n]);
        else a.excluded.push(indexRange(a, b.cidr));
      }
    }
    this.pools = next;
    this.orphans.clear();
    for (const [owner, allocs] of this.claims) for (const al of allocs) this.index(owner, al);
    return invalid;
  }

  poolNames(): string[] {
    return [...this.pools.keys()];
  }

  /**
   * Record allocations read from the durable record. Returns those that collide with a block another
   * node already holds (the caller keeps the first owner and re-allocates for the second).
   */
  load(owner: string, allocations: Allocation[]): Allocation[] {
    const conflicts: Allocation[] = [];
    const ok: Allocation[] = [];
    for (const al of allocations) {
      const other = this.ownerOf(al.cidr);
      if (other !== null && other !== owner) conflicts.push(al);
      else ok.push(al);
    }
    this.commit(owner, ok);
    return conflicts;
  }

  /** Who holds a block overlapping cidr (null when nobody). */
  ownerOf(cidrText: string): string | null {
    const c = parseCidr(cidrText);
    if (!c) return null;
    for (const p of this.pools.values()) {
      if (!cidrsOverlap(p.cidr, c)) continue;
      const [lo, hi] = indexRange(p, c);
      if (hi - lo > MAX_ADOPTED_BLOCKS) continue;
      for (let i = lo; i <= hi; i++) {
        const o = p.used.get(i);
        if (o !== undefined) return o;
      }
    }
    for (const o of this.orphans.values()) if (cidrsOverlap(o.cidr, c)) return o.owner;
    return null;
  }

  claimsOf(owner: string): Allocation[] {
    return this.claims.get(owner) ?? [];
  }

  owners(): string[] {
    return [...this.claims.keys()];
  }

  /** What the node should have. Changes nothing. */
  decide(node: NodeInfo): Decision {
    const kept = [...this.claimsOf(node.name)];
    const adopted: Allocation[] = [];
    const allocated: Allocation[] = [];
    const problems: Problem[] = [];
    const haveFamily = (f: Family) => [...kept, ...adopted, ...allocated].some((a) => poolFamily(a.cidr) === f);

    for (const family of [4, 6] as const) {
      const existing = node.podCIDRs.map((t) => parseCidr(t, { strict: false })).find((c): c is Cidr => c?.family === family);
      if (haveFamily(family)) {
        // Already holding a block: a pre-set podCIDRs entry it does not match stays a problem as long as it lasts.
        const held = kept.find((a) => poolFamily(a.cidr) === family)!;
        if (existing && formatCidr(existing) !== held.cidr) problems.push(this.unhonoured(node.name, existing, family));
        continue;
      }
      // Adoption of an existing Node.spec.podCIDRs entry.
      if (existing) {
        const text = formatCidr(existing);
        const home = [...this.pools.values()].find((p) => cidrContains(p.cidr, existing));
        const owner = this.ownerOf(text);
        if (home && (owner === null || owner === node.name)) {
          adopted.push({ cidr: text, pool: home.info.name });
          continue;
        }
        problems.push(this.unhonoured(node.name, existing, family));
      }
      const candidates = [...this.pools.values()].filter(
        (p) => p.family === family && selectorMatches(p.info.nodeSelector, node.labels),
      );
      if (candidates.length === 0) continue;
      const usable = candidates.filter((p) => !p.info.disabled && !p.info.deleting);
      let got: Allocation | null = null;
      for (const p of usable) {
        const idx = this.lowestFree(p);
        if (idx !== null) {
          got = { cidr: formatCidr(nthBlock(p.cidr, p.blockSize, idx)), pool: p.info.name };
          break;
        }
      }
      if (got) {
        allocated.push(got);
        continue;
      }
      const names = candidates.map((p) => p.info.name);
      if (usable.length === 0) {
        problems.push({
          reason: 'NoMatchingPool',
          family,
          pools: names,
          message: `every IPv${family} pool selecting this node is disabled or being deleted (${names.join(', ')})`,
        });
      } else if (usable.some((p) => this.excludedFreeCount(p) > 0)) {
        // Short of blocks only because another pool overlaps: say so, not "exhausted".
        const shadowing = [...new Set(usable.flatMap((p) => (this.excludedFreeCount(p) > 0 ? p.overlaps : [])))].sort();
        problems.push({
          reason: 'PoolOverlapping',
          family,
          pools: usable.map((p) => p.info.name),
          message: `no free /${usable[0]!.blockSize} block in IPv${family} pool(s) ${usable.map((p) => p.info.name).join(', ')} outside the range shared with IPPool(s) ${shadowing.join(', ')}; no new block comes from an overlap: remove the overlap`,
        });
      } else {
        problems.push({
          reason: 'PoolExhausted',
          family,
          pools: usable.map((p) => p.info.name),
          message: `no free /${usable[0]!.blockSize} block left in IPv${family} pool(s) ${usable.map((p) => p.info.name).join(', ')}`,
        });
      }
    }
    if (![...kept, ...adopted, ...allocated].length && !problems.some((p) => p.reason !== 'PodCIDROutsidePools')) {
      problems.push({ reason: 'NoMatchingPool', message: 'no IPPool selects this node' });
    }
    const allocations = [...kept, ...adopted, ...allocated].sort((a, b) => compareCidr(parseCidr(a.cidr)!, parseCidr(b.cidr)!));
    return { allocations, kept, adopted, allocated, problems };
  }

  /** Why a node's pre-set podCIDRs entry is not the block it routes (the same words on every reconcile). */
  private unhonoured(name: string, existing: Cidr, family: Family): Problem {
    const text = formatCidr(existing);
    const home = [...this.pools.values()].find((p) => cidrContains(p.cidr, existing));
    if (!home) return { reason: 'PodCIDROutsidePools', family, message: `Node.spec.podCIDRs ${text} is outside every IPPool; podfabric routes a block it allocates instead` };
    const owner = this.ownerOf(text);
    const by = owner !== null && owner !== name ? `is already held by node ${owner}; this node gets another block` : 'is not the block this node holds';
    return { reason: 'PodCIDRConflict', family, pools: [home.info.name], message: `Node.spec.podCIDRs ${text} ${by} (the Node object keeps the stale value)` };
  }

  /** Record that owner holds exactly these allocations (replacing what it held). */
  commit(owner: string, allocations: Allocation[]): void {
    // Unchanged (every reconcile of an allocated node): nothing to re-index. Re-indexing would lower the
    // pool's hint to this block and walk it forward over every block used after it, O(nodes) each time.
    const had = this.claims.get(owner);
    if (had && had.length === allocations.length && had.every((a, i) => a.cidr === allocations[i]!.cidr && a.pool === allocations[i]!.pool)) return;
    this.unindex(owner);
    if (allocations.length === 0) {
      this.claims.delete(owner);
      return;
    }
    this.claims.set(owner, [...allocations]);
    for (const al of allocations) this.index(owner, al);
  }

  release(owner: string): Allocation[] {
    const had = this.claimsOf(owner);
    this.unindex(owner);
    this.claims.delete(owner);
    return had;
  }

  stats(poolName: string): PoolStats | null {
    const p = this.pools.get(poolName);
    if (!p) return null;
    let allocated = 0;
    const holders = new Set<string>();
    for (const [owner, allocs] of this.claims) {
      for (const al of allocs) {
        if (al.pool !== poolName) continue;
        allocated++;
        holders.add(owner);
      }
    }
    const usedIdx = p.used.size;
    const shadowed = this.excludedFreeCount(p);
    return {
      total: p.total,
      allocated,
      free: Math.max(0, p.total - usedIdx - shadowed),
      overlaps: [...p.overlaps].sort(),
      shadowed,
      holders: [...holders].sort().slice(0, 10),
    };
  }

  private excludedFreeCount(p: PoolState): number {
    let n = 0n;
    for (const [lo, hi] of p.excluded) {
      let unused = hi - lo + 1n;
      for (const i of p.used.keys()) if (i >= lo && i <= hi) unused--;
      n += unused;
    }
    return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
  }

  private lowestFree(p: PoolState): bigint | null {
    const total = BigInt(p.total);
    let i = p.hint;
    while (i < total) {
      const ex = p.excluded.find(([lo, hi]) => i >= lo && i <= hi);
      if (ex) {
        i = ex[1] + 1n;
        continue;
      }
      if (!p.used.has(i)) return i;
      i++;
    }
    return null;
  }

  private index(owner: string, al: Allocation): void {
    const c = parseCidr(al.cidr);
    if (!c) return;
    let inPool = false;
    for (const p of this.pools.values()) {
      if (!cidrsOverlap(p.cidr, c)) continue;
      inPool = true;
      const [lo, hi] = indexRange(p, c);
      if (hi - lo >= MAX_ADOPTED_BLOCKS) continue;
      for (let i = lo; i <= hi; i++) p.used.set(i, owner);
      if (lo === p.hint) this.advanceHint(p);
    }
    if (!inPool) this.orphans.set(formatCidr(c), { cidr: c, owner });
  }

  private advanceHint(p: PoolState): void {
    while (p.used.has(p.hint)) p.hint++;
  }

  private unindex(owner: string): void {
    for (const al of this.claims.get(owner) ?? []) {
      const c = parseCidr(al.cidr);
      if (!c) continue;
      if (this.orphans.get(formatCidr(c))?.owner === owner) this.orphans.delete(formatCidr(c));
      for (const p of this.pools.values()) {
        if (!cidrsOverlap(p.cidr, c)) continue;
        const [lo, hi] = indexRange(p, c);
        if (hi - lo >= MAX_ADOPTED_BLOCKS) continue;
        for (let i = lo; i <= hi; i++) if (p.used.get(i) === owner) p.used.delete(i);
        if (lo < p.hint) p.hint = lo;
      }
    }
  }
}

/** Block-index interval of pool p covered by c (clipped to the pool). */
function indexRange(p: PoolState, c: Cidr): [bigint, bigint] {
  const start = c.network > p.cidr.network ? c.network : p.cidr.network;
  const endAddr = lastAddress(c) < lastAddress(p.cidr) ? lastAddress(c) : lastAddress(p.cidr);
  const lo = blockIndex(p.cidr, { family: p.family, network: start, prefixLength: p.blockSize });
  const hi = blockIndex(p.cidr, { family: p.family, network: endAddr, prefixLength: p.blockSize });
  return [lo, hi];
}
