/**
 * The desired nftables objects of the policy table, as data (pure): named sets, verdict maps,
 * chains of structured rules. `renderRule` and friends turn them into `nft -f` syntax; the
 * interpreter (interpret.ts) evaluates the same data, so the compiler can be table-tested without a
 * kernel, and the real kernel checks the rendering (test/integration/netpol.test.ts).
 *
 * No rule carries an interval set when it can be helped: nft fetches the elements of every interval
 * set of the table (one netlink dump each) before it adds or deletes any set element, so ~400
 * anonymous `{ a-b, c-d }` sets of ipBlock rules made every label change pay ~20 ms before its
 * first byte (`npm run bench -- policy`). Several ranges are written as their hull minus the gaps
 * (`ip saddr a-d ip saddr != b-c`), which needs no set; only more than MAX_GAPS gaps fall back to
 * an interval set (the kernel allows 128 expressions per rule).
 */
import { formatIP, parseIP } from '../lib/ip.js';
export type Family = 4 | 6;
export type L4 = 'tcp' | 'udp' | 'sctp';
export type Dir = 'saddr' | 'daddr';

export type Match =
  /** ct state established,related (never matches a first packet). */
  | { m: 'ct' }
  /** IPv6 neighbour/router discovery (unicast NUD probes would otherwise hit the policy and break replies). */
  | { m: 'nd' }
  /** ip/ip6 saddr|daddr @set */
  | { m: 'set'; dir: Dir; family: Family; set: string }
  /** ip/ip6 saddr|daddr { a-b, c } — an anonymous interval set (ipBlock minus except). */
  | { m: 'ranges'; dir: Dir; family: Family; ranges: Array<[string, string]> }
  /** meta l4proto P */
  | { m: 'proto'; proto: L4 }
  /** th dport { a-b, c } */
  | { m: 'dport'; ranges: Array<[number, number]> }
  /** ip/ip6 daddr . meta l4proto . th dport @set (named ports resolved per destination pod) */
  | { m: 'tuple'; family: Family; set: string }
  /** ip/ip6 saddr|daddr vmap @map */
  | { m: 'vmap'; dir: Dir; family: Family; map: string };

export type Verdict = 'accept' | 'drop' | { jump: string };
export interface Rule {
  match: Match[];
  /** Absent for a vmap rule (the map gives the verdict). */
  verdict?: Verdict;
}
export interface Chain {
  name: string;
  /** Base chains only. */
  hook?: { hook: 'forward'; priority: number };
  rules: Rule[];
}
export interface NftSet {
  name: string;
  kind: 'addr' | 'tuple';
  family: Family;
  /** Canonical, sorted: "10.0.0.1" or "10.0.0.1 . tcp . 80". */
  elements: string[];
}
export interface NftMap {
  name: string;
  family: Family;
  /** address → chain to jump to. */
  elements: Record<string, string>;
}
export interface Ruleset {
  table: string;
  sets: Record<string, NftSet>;
  maps: Record<string, NftMap>;
  chains: Record<string, Chain>;
}

const ipk = (f: Family) => (f === 4 ? 'ip' : 'ip6');
const anon = (items: string[]) => (items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`);
export const MAX_GAPS = 16;

/** Inclusive ranges, sorted and merged (touching ranges joined). */
export function mergeRanges(ranges: Array<[bigint, bigint]>): Array<[bigint, bigint]> {
  const out: Array<[bigint, bigint]> = [];
  for (const [a, b] of [...ranges].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1n) last[1] = b > last[1] ? b : last[1];
    else out.push([a, b]);
  }
  return out;
}

/**
 * `KEY { … }` for a union of ranges, without an interval set when possible: one value or range as
 * is, single values only as a plain anonymous set, otherwise the hull and one `!=` per gap.
 */
function renderUnion(key: string, ranges: Array<[bigint, bigint]>, fmt: (v: bigint) => string): string {
  const m = mergeRanges(ranges);
  const item = ([a, b]: [bigint, bigint]) => (a === b ? fmt(a) : `${fmt(a)}-${fmt(b)}`);
  if (m.length === 1 || m.every(([a, b]) => a === b) || m.length - 1 > MAX_GAPS) return `${key} ${anon(m.map(item))}`;
  const gaps = m.slice(1).map(([a], i): [bigint, bigint] => [m[i]![1] + 1n, a - 1n]);
  return [`${key} ${item([m[0]![0], m[m.length - 1]![1]])}`, ...gaps.map((g) => `${key} != ${item(g)}`)].join(' ');
}

const addrValue = (s: string) => parseIP(s)?.value ?? 0n;

export function renderMatch(x: Match): string {
  switch (x.m) {
    case 'ct':
      return 'ct state established,related';
    case 'nd':
      return 'icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert }';
    case 'set':
      return `${ipk(x.family)} ${x.dir} @${x.set}`;
    case 'ranges':
      return renderUnion(
        `${ipk(x.family)} ${x.dir}`,
        x.ranges.map(([a, b]) => [addrValue(a), addrValue(b)]),
        (v) => formatIP(x.family, v),
      );
    case 'proto':
      return `meta l4proto ${x.proto}`;
    case 'dport':
      return renderUnion('th dport', x.ranges.map(([a, b]) => [BigInt(a), BigInt(b)]), String);
    case 'tuple':
      return `${ipk(x.family)} daddr . meta l4proto . th dport @${x.set}`;
    case 'vmap':
      return `${ipk(x.family)} ${x.dir} vmap @${x.map}`;
  }
}

export const renderVerdict = (v: Verdict) => (typeof v === 'string' ? v : `jump ${v.jump}`);

export function renderRule(r: Rule): string {
  return [...r.match.map(renderMatch), ...(r.verdict ? [renderVerdict(r.verdict)] : [])].join(' ');
}

export function setType(s: NftSet): string {
  const addr = s.family === 4 ? 'ipv4_addr' : 'ipv6_addr';
  return s.kind === 'addr' ? addr : `${addr} . inet_proto . inet_service`;
}
export const mapType = (m: NftMap) => `${m.family === 4 ? 'ipv4_addr' : 'ipv6_addr'} : verdict`;
export const mapElement = (addr: string, chain: string) => `${addr} : jump ${chain}`;

export const chainSpec = (c: Chain) => (c.hook ? ` { type filter hook ${c.hook.hook} priority ${c.hook.priority}; policy accept; }` : '');

/** Every object of a ruleset, counted the way `nft list` shows them. */
export function countObjects(rs: Ruleset): { sets: number; maps: number; chains: number; rules: number; elements: number; total: number } {
  const sets = Object.keys(rs.sets).length;
  const maps = Object.keys(rs.maps).length;
  const chains = Object.keys(rs.chains).length;
  const rules = Object.values(rs.chains).reduce((n, c) => n + c.rules.length, 0);
  const elements =
    Object.values(rs.sets).reduce((n, s) => n + s.elements.length, 0) + Object.values(rs.maps).reduce((n, m) => n + Object.keys(m.elements).length, 0);
  return { sets, maps, chains, rules, elements, total: sets + maps + chains + rules + elements };
}
