/**
 * Network-namespace primitives for the lab and the tests. Every namespace is named with the project
 * prefix "pf-"; cleanupByPrefix removes namespaces and kills every process inside them, so a killed
 * run's leftovers never get in the way.
 */
import { run } from '../../../operator/lib/exec.js';

export const PREFIX = 'pf-';

export const ip = (args: string[], opts: { allowFail?: boolean; input?: string } = {}) => run(['ip', ...args], opts);
export const inNs = (ns: string, cmd: string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}) =>
  run(['ip', 'netns', 'exec', ns, ...cmd], opts);
/** Runs a command inside the namespace (alias of inNs). */
export const execIn = inNs;

export async function listNamespaces(): Promise<string[]> {
  const r = await ip(['netns', 'list'], { allowFail: true });
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

/** Kill every process in the namespace, then delete it. Idempotent. */
export async function deleteNamespace(ns: string): Promise<void> {
  const pids = (await ip(['netns', 'pids', ns], { allowFail: true })).stdout.split('\n').filter(Boolean);
  if (pids.length) await run(['kill', '-9', ...pids], { allowFail: true });
  await ip(['netns', 'del', ns], { allowFail: true });
}

export async function cleanupByPrefix(prefix: string): Promise<string[]> {
  if (!prefix.startsWith(PREFIX)) throw new Error(`refusing to clean namespaces outside ${PREFIX}*`);
  const victims = (await listNamespaces()).filter((n) => n.startsWith(prefix));
  for (const ns of victims) await deleteNamespace(ns);
  return victims;
}

/** Sets sysctls inside the namespace, e.g. { 'net.ipv4.conf.all.send_redirects': 0 }. */
export async function setSysctls(ns: string, values: Record<string, string | number>): Promise<void> {
  const args = Object.entries(values).map(([k, v]) => `${k}=${v}`);
  if (args.length) await inNs(ns, ['sysctl', '-qw', ...args]);
}

export interface NamespaceOptions {
  /** IPv4 and IPv6 forwarding (default on: every lab namespace is a router or a node). */
  forwarding?: boolean;
  /**
   * ICMP redirects sent by this namespace (default: kernel default, on). A ToR whose nodes share one
   * subnet redirects them to each other; turn off to see that host routes are really used.
   */
  sendRedirects?: boolean;
}

/** A fresh namespace (an old one of the same name is removed first) with lo up and forwarding on. */
export async function addNamespace(ns: string, opts: NamespaceOptions = {}): Promise<void> {
  if (!ns.startsWith(PREFIX)) throw new Error(`namespace ${ns} must start with ${PREFIX}`);
  await deleteNamespace(ns);
  await ip(['netns', 'add', ns]);
  await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  const fwd = opts.forwarding ?? true ? 1 : 0;
  await setSysctls(ns, {
    'net.ipv4.ip_forward': fwd,
    'net.ipv6.conf.all.forwarding': fwd,
    // Lab addresses are unique by construction: no 1-2 s wait for duplicate address detection.
    'net.ipv6.conf.default.accept_dad': 0,
    'net.ipv6.conf.all.accept_dad': 0,
    ...(opts.sendRedirects === undefined
      ? {}
      : { 'net.ipv4.conf.all.send_redirects': opts.sendRedirects ? 1 : 0, 'net.ipv4.conf.default.send_redirects': opts.sendRedirects ? 1 : 0 }),
  });
}

/** A veth pair from nsA/ifA to nsB/ifB, both up. Interface names ≤ 15 characters. */
export async function addVeth(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
  for (const n of [ifA, ifB]) if (n.length > 15) throw new Error(`interface name too long: ${n}`);
  await ip(['-n', nsA, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
  await ip(['-n', nsA, 'link', 'set', ifA, 'up']);
  await ip(['-n', nsB, 'link', 'set', ifB, 'up']);
}

/**
 * A bridge; with `mac`, a fixed address. A Linux bridge without one takes the lowest MAC of its ports and
 * changes it when that port goes away: a gateway on it would change its MAC under its neighbours' ARP
 * caches (their packets to it are lost until ARP re-resolves). A real ToR's gateway MAC never moves.
 */
export async function addBridge(ns: string, name: string, mac?: string): Promise<void> {
  await ip(['-n', ns, 'link', 'add', name, ...(mac ? ['address', mac] : []), 'type', 'bridge']);
  await ip(['-n', ns, 'link', 'set', name, 'up']);
}

export async function setMaster(ns: string, dev: string, bridge: string): Promise<void> {
  await ip(['-n', ns, 'link', 'set', dev, 'master', bridge]);
}

export async function addAddress(ns: string, dev: string, cidr: string): Promise<void> {
  await ip(['-n', ns, 'addr', 'add', cidr, 'dev', dev, ...(cidr.includes(':') ? ['nodad'] : [])]);
}

export async function ping(ns: string, target: string, opts: { count?: number; timeoutS?: number; source?: string } = {}): Promise<boolean> {
  const r = await inNs(
    ns,
    ['ping', '-n', '-q', '-c', String(opts.count ?? 1), '-W', String(opts.timeoutS ?? 1), ...(opts.source ? ['-I', opts.source] : []), target],
    { allowFail: true },
  );
  return r.code === 0;
}

export interface RouteEntry {
  dst: string;
  gateway?: string;
  dev?: string;
  nexthops?: Array<{ gateway?: string; dev?: string }>;
}

/** Routes for exactly `prefix` in the namespace's main table, optionally of one protocol ("bgp", "201"). */
export async function routesFor(ns: string, prefix: string, opts: { proto?: string } = {}): Promise<RouteEntry[]> {
  const fam = prefix.includes(':') ? '-6' : '-4';
  const r = await ip(['-n', ns, '-j', fam, 'route', 'show', 'exact', prefix, ...(opts.proto ? ['proto', opts.proto] : [])], { allowFail: true });
  return r.code === 0 ? (JSON.parse(r.stdout || '[]') as RouteEntry[]) : [];
}

/** Gateways of a route (single or multipath). */
export const gatewaysOf = (r: RouteEntry): string[] => (r.nexthops?.length ? r.nexthops.map((n) => n.gateway ?? '') : [r.gateway ?? '']).filter(Boolean);

/** Routes of one protocol in a namespace (ip -j), e.g. "bgp" or "201". */
export async function routesByProto(ns: string, proto: string, family: '-4' | '-6' = '-4'): Promise<Array<{ dst: string; gateway?: string; dev?: string; nexthops?: unknown[] }>> {
  const r = await ip(['-n', ns, '-j', family, 'route', 'show', 'proto', proto], { allowFail: true });
  return JSON.parse(r.stdout || '[]');
}

export interface TcpMd5Counters {
  /** Segment without a signature where one was expected (we have a password, the peer sends none). */
  notFound: number;
  /** Signed segment where none was expected (the peer has a password, we have none). */
  unexpected: number;
  /** Signature present but wrong (both have passwords, they differ). */
  failure: number;
}

/**
 * The kernel's TCP MD5 drop counters of a namespace (/proc/net/netstat, TcpExt). A BGP speaker never
 * sees a password mismatch (the segments are dropped before TCP), but these counters do: they are the
 * only direct evidence of an MD5 mismatch.
 */
export async function tcpMd5Counters(ns: string): Promise<TcpMd5Counters> {
  const text = (await inNs(ns, ['cat', '/proc/net/netstat'])).stdout;
  const lines = text.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  const get = (k: string) => Number(values[names.indexOf(k)] ?? 0) || 0;
  return { notFound: get('TCPMD5NotFound'), unexpected: get('TCPMD5Unexpected'), failure: get('TCPMD5Failure') };
}
