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

/** Parses `conntrack -L` text (default output format). Lines it does not understand are skipped. */
export function parseConntrack(text: string): CtFlow[] {
  const out: CtFlow[] = [];
  for (const line of text.split('\n')) {
    const proto = line.trim().split(/\s+/)[0];
    if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') continue;
    const all = (k: string) => [...line.matchAll(new RegExp(`(?:^|\\s)${k}=(\\S+)`, 'g'))].map((m) => m[1]!);
    const [src, replySrc] = all('src');
    const [dst] = all('dst');
    const [sport, replySport] = all('sport');
    const [dport] = all('dport');
    if (!src || !dst || !replySrc || !sport || !dport || !replySport) continue;
    const state = proto === 'tcp' ? line.trim().split(/\s+/)[3] : undefined;
    out.push({ ...(state ? { state } : {}), proto, family: src.includes(':') ? 6 : 4, src: normalizeIP(src) ?? src, dst: normalizeIP(dst) ?? dst, sport: +sport, dport: +dport, replySrc: normalizeIP(replySrc) ?? replySrc, replySport: +replySport });
  }
  return out;
}

const CLOSED = new Set(['TIME_WAIT', 'CLOSE']);

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
export async function cutDeniedFlows(ct: ConntrackRunner, rs: Ruleset, nodeAddresses: string[] = []): Promise<CtFlow[]> {
  const flows = [...parseConntrack(await ct.list(4)), ...parseConntrack(await ct.list(6))];
  const victims = deniedFlows(rs, flows, nodeAddresses);
  await Promise.all(victims.map((f) => ct.delete(f)));
  return victims;
}
