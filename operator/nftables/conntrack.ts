/**
 * Cutting established flows a tightened policy now denies. Established/related packets are accepted
 * before any policy rule, so a flow admitted under the old policy would live on; after each sync the
 * agent lists the node's conntrack entries, runs each flow's first packet through the NEW ruleset
 * (the pure interpreter) and deletes exactly the entries it would drop. A flow the node itself
 * originated never crosses the forward hook and is skipped. Parsing and selection are pure; the
 * conntrack binary is behind `ConntrackRunner`.
 */
import { run } from '../lib/exec.js';
import { normalizeIP } from '../lib/ip.js';
import { forwardVerdict } from '../policy/interpret.js';
import type { L4, Ruleset } from '../policy/objects.js';

export interface CtFlow {
  proto: L4;
  family: 4 | 6;
  /** Original direction, as conntrack knows the entry. */
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** Reply source and port: the post-DNAT destination (a Service backend). */
  replySrc: string;
  replySport: number;
  /** TCP state (ESTABLISHED, TIME_WAIT, ...); undefined for UDP. */
  state?: string;
}

/**
 * Parses `conntrack -L` text (default output format). Lines it does not understand are skipped.
 * One split per line and no regular expressions: a node's table may hold tens of thousands of
 * entries, and this runs after every policy sync (8,000 lines took 0.6-0.8 s with a RegExp per
 * field and an address parse per field, delaying the next sync by as much).
 */
export function parseConntrack(text: string, opts: { skipClosed?: boolean } = {}): CtFlow[] {
  const out: CtFlow[] = [];
  // Few distinct addresses, many flows: normalise each address once.
  const seen = new Map<string, string>();
  const norm = (ip: string) => {
    let n = seen.get(ip);
    if (n === undefined) seen.set(ip, (n = normalizeIP(ip) ?? ip));
    return n;
  };
  for (const line of text.split('\n')) {
    if (opts.skipClosed && CLOSED_LINE.test(line)) continue;
    const tokens = line.trim().split(/\s+/);
    const proto = tokens[0];
    if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') continue;
    // Each key appears once per direction: original first, reply second.
    const f: Record<string, string[]> = { src: [], dst: [], sport: [], dport: [] };
    for (const t of tokens) {
      const eq = t.indexOf('=');
      if (eq > 0) f[t.slice(0, eq)]?.push(t.slice(eq + 1));
    }
    const [src, replySrc] = f.src!;
    const [dst] = f.dst!;
    const [sport, replySport] = f.sport!;
    const [dport] = f.dport!;
    if (!src || !dst || !replySrc || !sport || !dport || !replySport) continue;
    const state = proto === 'tcp' ? tokens[3] : undefined;
    out.push({ ...(state ? { state } : {}), proto, family: src.includes(':') ? 6 : 4, src: norm(src), dst: norm(dst), sport: +sport, dport: +dport, replySrc: norm(replySrc), replySport: +replySport });
  }
  return out;
}

const CLOSED = new Set(['TIME_WAIT', 'CLOSE']);
/** A closed TCP entry (`tcp 6 TIMEOUT CLOSE …`), skipped before parsing when only live flows matter. */
const CLOSED_LINE = /^\s*tcp\s+\d+\s+\d+\s+(?:TIME_WAIT|CLOSE)\s/;

/** The live flows whose first packet the ruleset would now drop (skipping flows from the node's own addresses and closed TCP). */
export function deniedFlows(rs: Ruleset, flows: CtFlow[], nodeAddresses: string[] = []): CtFlow[] {
  const skip = new Set(nodeAddresses.map((a) => normalizeIP(a) ?? a));
  return flows.filter((f) => !skip.has(f.src) && !CLOSED.has(f.state ?? '') && forwardVerdict(rs, { src: f.src, dst: f.replySrc, proto: f.proto, dport: f.replySport }).verdict === 'drop');
}

export interface ConntrackRunner {
  list(family: 4 | 6): Promise<string>;
  /** Deletes one entry by its original tuple. */
  delete(f: CtFlow): Promise<void>;
}

export function conntrackRunner(opts: { netns?: string } = {}): ConntrackRunner {
  const pre = opts.netns ? ['ip', 'netns', 'exec', opts.netns] : [];
  return {
    async list(family) {
      return (await run([...pre, 'conntrack', '-L', '-f', family === 4 ? 'ipv4' : 'ipv6'], { allowFail: true })).stdout;
    },
    async delete(f) {
      // exit 1 means "0 entries deleted" (already gone): fine
      await run([...pre, 'conntrack', '-D', '-f', f.family === 4 ? 'ipv4' : 'ipv6', '-p', f.proto, '-s', f.src, '-d', f.dst, '--sport', String(f.sport), '--dport', String(f.dport)], { allowFail: true });
    },
  };
}

/** Lists, selects and deletes the flows `rs` denies; returns what it cut. */
export async function cutDeniedFlows(ct: ConntrackRunner, rs: Ruleset | (() => Ruleset), nodeAddresses: string[] = []): Promise<CtFlow[]> {
  const flows = [...parseConntrack(await ct.list(4), { skipClosed: true }), ...parseConntrack(await ct.list(6), { skipClosed: true })];
  // A getter is read after listing: flows are judged by the newest committed ruleset.
  const victims = deniedFlows(typeof rs === 'function' ? rs() : rs, flows, nodeAddresses);
  await Promise.all(victims.map((f) => ct.delete(f)));
  return victims;
}
