/**
 * IPv4/IPv6 address and CIDR arithmetic on bigints. Pure.
 * Canonical text forms: IPv4 dotted quad; IPv6 RFC 5952 (lowercase, longest zero run compressed).
 *
 * The parsers and normalisers remember their answers (bounded, lib/memo): an agent parses the same few
 * hundred addresses on every sync (its routes, sessions, Services, policy peers), and parsing on bigints
 * allocates. What they return is shared and must not be mutated (nothing here or in a caller does).
 */
import { memo } from './memo.js';

/** Distinct address and prefix texts remembered per parser before the memo starts over. */
const PARSE_MEMO_MAX = 50_000;

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** Network address (host bits cleared). */
  network: bigint;
  prefixLength: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function familyBits(f: Family): number {
  return BITS[f];
}

function parseIPv4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseIPv6(s: string): bigint | null {
  if (s.includes('%')) return null; // zones are not addresses we route
  let head = s;
  let tailV4: bigint | null = null;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tailV4 = parseIPv4(s.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = s.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = head.split('::');
  if (dbl.length > 2) return null;
  const parseGroups = (t: string): number[] | null => {
    if (t === '') return [];
    const gs = t.split(':');
    const out: number[] = [];
    for (const g of gs) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = parseGroups(dbl[0] ?? '');
  const right = dbl.length === 2 ? parseGroups(dbl[1] ?? '') : [];
  if (!left || !right) return null;
  let groups: number[];
  if (dbl.length === 2) {
    const fill = 8 - left.length - right.length;
    if (fill < 1) return null;
    groups = [...left, ...new Array<number>(fill).fill(0), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return null;
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (tailV4 !== null) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

/** Parses an IP address; returns null when it is not one. */
export function parseIP(s: string): { family: Family; value: bigint } | null {
  return typeof s === 'string' ? parseIPOnce(s) : null;
}

const parseIPOnce = memo((s: string): { family: Family; value: bigint } | null => {
  if (s.includes(':')) {
    const v = parseIPv6(s);
    return v === null ? null : { family: 6, value: v };
  }
  const v = parseIPv4(s);
  return v === null ? null : { family: 4, value: v };
}, PARSE_MEMO_MAX);

export function isIP(s: string): boolean {
  return parseIP(s) !== null;
}

export function formatIP(family: Family, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((sh) => ((value >> sh) & 0xffn).toString()).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // longest run of >= 2 zero groups, first one wins on ties (RFC 5952)
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of an IP address, or null when invalid. */
export function normalizeIP(s: string): string | null {
  return typeof s === 'string' ? normalizeIPOnce(s) : null;
}

const normalizeIPOnce = memo((s: string): string | null => {
  const p = parseIP(s);
  return p ? formatIP(p.family, p.value) : null;
}, PARSE_MEMO_MAX);

function mask(family: Family, prefixLength: number): bigint {
  const bits = BigInt(BITS[family]);
  const host = bits - BigInt(prefixLength);
  return ((1n << bits) - 1n) ^ ((1n << host) - 1n);
}

/**
 * Parses "addr/len". With strict (default), host bits must be zero.
 * Returns null when invalid.
 */
export function parseCidr(s: string, opts: { strict?: boolean } = {}): Cidr | null {
  if (typeof s !== 'string') return null;
  return (opts.strict ?? true) ? parseCidrStrict(s) : parseCidrLoose(s);
}

const parseCidrStrict = memo((s: string) => parseCidrText(s, true), PARSE_MEMO_MAX);
const parseCidrLoose = memo((s: string) => parseCidrText(s, false), PARSE_MEMO_MAX);

function parseCidrText(s: string, strict: boolean): Cidr | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const ip = parseIP(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return null;
  const prefixLength = Number(lenText);
  if (prefixLength > BITS[ip.family]) return null;
  const network = ip.value & mask(ip.family, prefixLength);
  if (strict && network !== ip.value) return null;
  return { family: ip.family, network, prefixLength };
}

export function formatCidr(c: Cidr): string {
  return `${formatIP(c.family, c.network)}/${c.prefixLength}`;
}

/** Canonical text of a CIDR (host bits must be zero), or null when invalid. */
export function normalizeCidr(s: string): string | null {
  return typeof s === 'string' ? normalizeCidrOnce(s) : null;
}

const normalizeCidrOnce = memo((s: string): string | null => {
  const c = parseCidr(s);
  return c ? formatCidr(c) : null;
}, PARSE_MEMO_MAX);

/** normalizeIP / normalizeCidr, or the text as given when it does not parse (for comparing what others wrote). */
export const canonIP = (s: string): string => normalizeIP(s) ?? s;
export const canonPrefix = (s: string): string => normalizeCidr(s) ?? s;

export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(BITS[c.family] - c.prefixLength);
}

export function lastAddress(c: Cidr): bigint {
  return c.network + cidrSize(c) - 1n;
}

export function cidrContainsIP(c: Cidr, family: Family, value: bigint): boolean {
  return c.family === family && value >= c.network && value <= lastAddress(c);
}

/** outer contains inner entirely (same family). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    inner.prefixLength >= outer.prefixLength &&
    inner.network >= outer.network &&
    lastAddress(inner) <= lastAddress(outer)
  );
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.network <= lastAddress(b) && b.network <= lastAddress(a);
}

/** Number of blocks of length blockLen in c (saturates at Number.MAX_SAFE_INTEGER). */
export function blockCount(c: Cidr, blockLen: number): number {
  if (blockLen < c.prefixLength || blockLen > BITS[c.family]) return 0;
  const n = 1n << BigInt(blockLen - c.prefixLength);
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** The index-th block of length blockLen inside c. */
export function nthBlock(c: Cidr, blockLen: number, index: bigint): Cidr {
  const step = 1n << BigInt(BITS[c.family] - blockLen);
  return { family: c.family, network: c.network + step * index, prefixLength: blockLen };
}

/** Index of block b inside c (b must have blockLen and be inside c). */
export function blockIndex(c: Cidr, b: Cidr): bigint {
  const step = 1n << BigInt(BITS[c.family] - b.prefixLength);
  return (b.network - c.network) / step;
}

/** First usable host address (network + 1): the pod gateway on the node's bridge. */
export function gatewayOf(c: Cidr): string {
  return formatIP(c.family, c.network + 1n);
}

export function compareCidr(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.prefixLength - b.prefixLength;
}
