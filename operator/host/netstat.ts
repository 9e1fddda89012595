/**
 * The kernel's TCP MD5 counters (/proc/net/netstat, per network namespace). A wrong BGP password makes
 * the kernel drop the router's segments before any application sees them, so neither BGP speaker logs
 * anything; these counters are the only witness:
 *   TCPMD5Failure    a segment carried a signature that did not verify (the passwords differ);
 *   TCPMD5NotFound   a password is set for the peer but its segment carried no signature;
 *   TCPMD5Unexpected a segment carried a signature but no password is set for that peer.
 */
import { readFile } from 'node:fs/promises';
import { run } from '../lib/exec.js';

export interface Md5Counters {
  failure: number;
  notFound: number;
  unexpected: number;
}

/** Pure: "TcpExt: A B …" header lines followed by "TcpExt: 1 2 …" value lines → "TcpExt.A" → 1. */
export function parseNetstat(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const lines = text.split('\n').filter((l) => l.includes(':'));
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const [hp, ...names] = lines[i]!.trim().split(/\s+/);
    const [vp, ...values] = lines[i + 1]!.trim().split(/\s+/);
    if (!hp || hp !== vp || names.length !== values.length) continue;
    const prefix = hp.replace(/:$/, '');
    names.forEach((n, j) => {
      const v = Number(values[j]);
      if (Number.isFinite(v)) out.set(`${prefix}.${n}`, v);
    });
  }
  return out;
}

/** The three MD5 counters, or null when this kernel does not report them. */
export function md5Counters(stats: Map<string, number>): Md5Counters | null {
  const get = (n: string) => stats.get(`TcpExt.${n}`);
  const failure = get('TCPMD5Failure');
  const notFound = get('TCPMD5NotFound');
  const unexpected = get('TCPMD5Unexpected');
  if (failure === undefined || notFound === undefined || unexpected === undefined) return null;
  return { failure, notFound, unexpected };
}

/** Counter growth from base to now (never negative: a namespace re-created resets its counters). */
export function md5Delta(base: Md5Counters, now: Md5Counters): Md5Counters {
  return { failure: Math.max(0, now.failure - base.failure), notFound: Math.max(0, now.notFound - base.notFound), unexpected: Math.max(0, now.unexpected - base.unexpected) };
}

/** Reads the counters of this network namespace, or of netns (lab and tests). */
export async function readMd5Counters(netns?: string): Promise<Md5Counters | null> {
  const text = netns ? (await run(['ip', 'netns', 'exec', netns, 'cat', '/proc/net/netstat'])).stdout : await readFile('/proc/net/netstat', 'utf8');
  return md5Counters(parseNetstat(text));
}
