/**
 * The route model, pure: what a host-gw route is, its canonical form and order, the diff that makes the
 * kernel hold exactly a desired set, and the checks a route must pass before it reaches ip.
 * The ip-driving parts are ip-batch.ts (writes), ip-reader.ts (reads), monitor.ts and table.ts.
 */
import { formatCidr, normalizeCidr, normalizeIP, parseCidr, parseIP } from '../lib/ip.js';

/** Route protocol numbers owned by others (iproute2's rt_protos and well-known daemons). */
export const RESERVED_ROUTE_PROTOCOLS = [0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 42, 99, 186, 187, 188, 189, 192];

export interface KernelRoute {
  /** Destination CIDR, v4 or v6, canonical (host bits clear, v6 compressed lowercase). */
  dst: string;
  via: string;
  dev: string;
}

export interface RouteError {
  route: KernelRoute;
  op: 'add' | 'del';
  error: string;
}

export interface RouteTable {
  /** Routes with our protocol, main table, both families. */
  list(): Promise<KernelRoute[]>;
  /** Deletes first, then adds (`replace`). Never throws for a bad route: it is reported in `errors`. */
  apply(add: KernelRoute[], del: KernelRoute[]): Promise<{ errors: RouteError[] }>;
  close(): void;
}

/** The ip-batch implementation, with what tests and metrics want to see of its child process. */
export interface IpRouteTable extends RouteTable {
  /** pid of the current `ip -batch` child (undefined before the first apply or after it died). */
  readonly pid: number | undefined;
  /** How many times a child was started. */
  readonly spawns: number;
}

export function validateProtocol(p: number): void {
  if (!Number.isInteger(p) || p < 1 || p > 255 || RESERVED_ROUTE_PROTOCOLS.includes(p)) {
    throw new Error(
      `route protocol ${p} is reserved or out of range (must be 1-255 and not one of ${RESERVED_ROUTE_PROTOCOLS.join(',')}: ` +
        'those belong to the kernel, static routes or other routing daemons); e.g. 201',
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// Pure part

export interface SortKey {
  dstOk: boolean;
  family: number;
  network: bigint;
  prefixLength: number;
  viaFamily: number;
  viaValue: bigint;
  route: KernelRoute;
}

/** Parses a route once: its sort key, and (with normalize) the canonical route it carries. */
export function prep(r: KernelRoute, normalize: boolean): SortKey {
  const c = parseCidr(r.dst);
  const v = parseIP(r.via);
  let route = r;
  if (normalize) {
    // Parses and canonical texts are remembered (lib/ip); a route already canonical is kept as it is.
    const dst = c ? normalizeCidr(r.dst)! : r.dst;
    const via = v ? normalizeIP(r.via)! : r.via;
    if (dst !== r.dst || via !== r.via) route = { dst, via, dev: r.dev };
  }
  return { dstOk: !!c, family: c?.family ?? 0, network: c?.network ?? 0n, prefixLength: c?.prefixLength ?? 0, viaFamily: v?.family ?? 99, viaValue: v?.value ?? 0n, route };
}

export function compareKeys(a: SortKey, b: SortKey): number {
  if (a.dstOk !== b.dstOk) return a.dstOk ? -1 : 1;
  if (a.dstOk) {
    if (a.family !== b.family) return a.family - b.family;
    if (a.network !== b.network) return a.network < b.network ? -1 : 1;
    if (a.prefixLength !== b.prefixLength) return a.prefixLength - b.prefixLength;
  } else if (a.route.dst !== b.route.dst) return a.route.dst < b.route.dst ? -1 : 1;
  if (a.viaFamily !== b.viaFamily) return a.viaFamily - b.viaFamily;
  if (a.viaValue !== b.viaValue) return a.viaValue < b.viaValue ? -1 : 1;
  if (a.route.via !== b.route.via) return a.route.via < b.route.via ? -1 : 1;
  return a.route.dev < b.route.dev ? -1 : a.route.dev > b.route.dev ? 1 : 0;
}

/**
 * Canonical form of a route. A destination with host bits set (10.0.0.1/24) or an invalid address is
 * NOT repaired: it is kept as written, so it shows up in `add` and `apply` reports it as an error,
 * instead of silently routing a block nobody asked for.
 */
export function normalizeRoute(r: KernelRoute): KernelRoute {
  return prep(r, true).route;
}

/** v4 before v6, then numerically by destination, then by next hop and device; unparsable ones last. */
export function compareRoutes(a: KernelRoute, b: KernelRoute): number {
  return compareKeys(prep(a, false), prep(b, false));
}

/** A sorted copy (compareRoutes order), parsing every route once. */
export function sortRoutes<T extends KernelRoute>(rs: readonly T[]): T[] {
  return rs
    .map((r) => prep(r, false))
    .sort(compareKeys)
    .map((k) => k.route as T);
}

const key = (r: KernelRoute) => `${r.dst}|${r.via}|${r.dev}`;

/**
 * What to add (= `replace`) and delete so the kernel holds exactly `desired`. Pure and deterministic:
 * both inputs are normalised and deduplicated, results sorted with compareRoutes. The kernel keeps
 * one route per destination (replace swaps a changed next hop in place, no delete), so when `desired`
 * names two next hops for one destination the first in compareRoutes order wins, whatever the input
 * order. Several observed routes to one destination: every one that is not the desired route goes.
 */
export function diffRoutes(desired: KernelRoute[], observed: KernelRoute[]): { add: KernelRoute[]; del: KernelRoute[] } {
  const want = new Map<string, SortKey>();
  for (const k of desired.map((r) => prep(r, true)).sort(compareKeys)) if (!want.has(k.route.dst)) want.set(k.route.dst, k);
  const have = new Map<string, Map<string, SortKey>>();
  for (const k of observed.map((r) => prep(r, true))) {
    const m = have.get(k.route.dst) ?? new Map<string, SortKey>();
    m.set(key(k.route), k);
    have.set(k.route.dst, m);
  }
  const add: SortKey[] = []; // built in sorted order
  const del: SortKey[] = [];
  for (const [dst, w] of want) {
    const cur = have.get(dst);
    const wk = key(w.route);
    if (!cur?.has(wk)) add.push(w);
    if (cur && cur.size > 1) for (const [k, c] of cur) if (k !== wk) del.push(c);
  }
  for (const [dst, cur] of have) if (!want.has(dst)) del.push(...cur.values());
  return { add: add.map((k) => k.route), del: del.sort(compareKeys).map((k) => k.route) };
}

const DEV_RE = /^[^\s/:"'\\#]{1,15}$/;

/**
 * The canonical route, or why it must not be sent to ip (ip would fail the line, or exit outright on
 * an unparsable address). Parses each address once (this runs for every route of a batch).
 */
export function checkRoute(r: KernelRoute): { route: KernelRoute; error?: undefined } | { route?: undefined; error: string } {
  const c = typeof r.dst === 'string' ? parseCidr(r.dst) : null;
  if (!c) {
    return parseCidr(r.dst, { strict: false }) ? { error: `invalid destination ${r.dst}: host bits set` } : { error: `invalid destination ${JSON.stringify(r.dst)}: not a CIDR` };
  }
  const via = typeof r.via === 'string' ? parseIP(r.via) : null;
  if (!via) return { error: `invalid next hop ${JSON.stringify(r.via)}` };
  if (via.family !== c.family) return { error: `next hop ${r.via} is IPv${via.family}, destination ${r.dst} is IPv${c.family}` };
  // Linux: 1-15 bytes, no '/', ':' or whitespace, not "." or ".."; and nothing ip's line parser treats specially.
  if (typeof r.dev !== 'string' || !DEV_RE.test(r.dev) || r.dev === '.' || r.dev === '..') return { error: `invalid device ${JSON.stringify(r.dev)}` };
  return { route: { dst: normalizeCidr(r.dst)!, via: normalizeIP(r.via)!, dev: r.dev } };
}

/** Why a route must not be sent to ip, or null when it is fine. */
export function invalidRoute(r: KernelRoute): string | null {
  return checkRoute(r).error ?? null;
}

/** `ip -j route show` entry → canonical CIDR ("default" and bare host addresses included). */
export function jsonDst(dst: string, family: 4 | 6): string | null {
  if (dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  const full = dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`;
  const c = parseCidr(full);
  return c ? formatCidr(c) : null;
}
