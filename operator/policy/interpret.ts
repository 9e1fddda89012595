/**
 * A small interpreter of the compiled objects (pure): what the forward hook of one node does with
 * the FIRST packet of a flow (conntrack state new). Base chains run in priority order; `accept`
 * ends a base chain and the packet moves on to the next one, `drop` is final, a chain that runs
 * out of rules returns to its caller, and a base chain that runs out applies its policy (accept).
 * Used by the tests to check the compiler against the reference semantics, and by the conntrack
 * cutter to find established flows a new ruleset would deny.
 */
import { normalizeIP, parseIP } from '../lib/ip.js';
import type { L4, Match, Ruleset } from './objects.js';

export interface Packet {
  src: string;
  dst: string;
  proto: L4;
  dport: number;
}

interface Pkt extends Packet {
  family: 4 | 6;
  srcV: bigint;
  dstV: bigint;
}

function inRanges(ranges: Array<[string, string]>, family: 4 | 6, v: bigint): boolean {
  return ranges.some(([a, b]) => {
    const pa = parseIP(a);
    const pb = parseIP(b);
    return !!pa && !!pb && pa.family === family && v >= pa.value && v <= pb.value;
  });
}

const setCache = new WeakMap<string[], Set<string>>();
function has(elements: string[] | undefined, key: string): boolean {
  if (!elements) return false;
  let s = setCache.get(elements);
  if (!s) setCache.set(elements, (s = new Set(elements)));
  return s.has(key);
}

function matches(rs: Ruleset, m: Match, p: Pkt): boolean | { jump: string } | 'nomap' {
  switch (m.m) {
    case 'ct':
    case 'nd':
      return false; // a first packet of a TCP/UDP/SCTP flow
    case 'set':
      return m.family === p.family && has(rs.sets[m.set]?.elements, m.dir === 'saddr' ? p.src : p.dst);
    case 'ranges':
      return m.family === p.family && inRanges(m.ranges, p.family, m.dir === 'saddr' ? p.srcV : p.dstV);
    case 'proto':
      return m.proto === p.proto;
    case 'dport':
      return m.ranges.some(([a, b]) => p.dport >= a && p.dport <= b);
    case 'tuple':
      return m.family === p.family && has(rs.sets[m.set]?.elements, `${p.dst} . ${p.proto} . ${p.dport}`);
    case 'vmap': {
      if (m.family !== p.family) return 'nomap';
      const chain = rs.maps[m.map]?.elements[m.dir === 'saddr' ? p.src : p.dst];
      return chain ? { jump: chain } : 'nomap';
    }
  }
}

/** Runs a chain: 'accept' | 'drop' | 'return' (fell off the end). */
function runChain(rs: Ruleset, name: string, p: Pkt, depth: number, trace: string[]): 'accept' | 'drop' | 'return' {
  if (depth > 16) throw new Error(`chain depth exceeded at ${name}`);
  const chain = rs.chains[name];
  if (!chain) throw new Error(`no chain ${name}`);
  for (const [i, rule] of chain.rules.entries()) {
    let jumpTo: string | undefined;
    let ok = true;
    for (const m of rule.match) {
      const r = matches(rs, m, p);
      if (r === false || r === 'nomap') {
        ok = false;
        break;
      }
      if (typeof r === 'object') jumpTo = r.jump;
    }
    if (!ok) continue;
    const v = jumpTo ? { jump: jumpTo } : rule.verdict;
    if (!v) continue;
    if (typeof v === 'object') {
      const sub = runChain(rs, v.jump, p, depth + 1, trace);
      if (sub !== 'return') {
        trace.push(`${name}[${i}]`);
        return sub;
      }
      continue;
    }
    trace.push(`${name}[${i}]`);
    return v;
  }
  return 'return';
}

/** The forward-hook verdict of one node's ruleset for the first packet of a flow, and the rules that decided. */
export function forwardVerdict(rs: Ruleset, pkt: Packet): { verdict: 'accept' | 'drop'; trace: string[] } {
  const s = parseIP(pkt.src);
  const d = parseIP(pkt.dst);
  if (!s || !d || s.family !== d.family) throw new Error(`bad packet ${pkt.src} -> ${pkt.dst}`);
  const p: Pkt = { ...pkt, src: normalizeIP(pkt.src)!, dst: normalizeIP(pkt.dst)!, family: s.family, srcV: s.value, dstV: d.value };
  const bases = Object.values(rs.chains)
    .filter((c) => c.hook?.hook === 'forward')
    .sort((a, b) => a.hook!.priority - b.hook!.priority);
  const trace: string[] = [];
  for (const b of bases) if (runChain(rs, b.name, p, 0, trace) === 'drop') return { verdict: 'drop', trace };
  return { verdict: 'accept', trace };
}
