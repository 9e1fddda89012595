/**
 * FRR routers (zebra + bgpd from Debian's frr) in lab namespaces. Each router has its own runtime
 * directory owned by user frr (FRR refuses to run as root) with its config, pid files, zserv socket and
 * vty sockets; vtysh talks to it through --vty_socket.
 */
import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../operator/lib/exec.js';
import { alive, readPid, stopPid, waitUntil } from './daemon.js';
import { gatewaysOf, inNs, routesFor } from './netns.js';

export const FRR_ROOT = process.env.PODFABRIC_LAB_FRR_DIR ?? '/tmp/pf-lab-frr';

export interface FrrNeighbor {
  address: string;
  remoteAs: number | 'external' | 'internal';
  password?: string;
  /** keepalive/hold seconds (default 3/9: a lab wants fast detection) */
  timers?: [number, number];
  description?: string;
  /**
   * Wait for the node to dial (default false). FRR dialling the nodes with `timers connect 1` brings
   * sessions up fastest (0.02-1 s after config, vs 5-9 s for GoBGP's first dial), so the ToR is active.
   */
  passive?: boolean;
  /** Seconds between FRR's connection attempts (default 1). */
  connectRetry?: number;
  ebgpMultihop?: number;
}

export interface FrrRouter {
  name: string;
  ns: string;
  asn: number;
  routerId: string;
  neighbors: FrrNeighbor[];
  /** Extra lines inside `router bgp` (e.g. network statements). */
  extra?: string[];
  /** `redistribute connected` in both address families (default off). */
  redistributeConnected?: boolean;
  /** ECMP width (default 16). */
  maximumPaths?: number;
}

function neighborLines(n: FrrNeighbor, indent: string): string[] {
  const [ka, hold] = n.timers ?? [3, 9];
  const out = [
    `neighbor ${n.address} remote-as ${n.remoteAs}`,
    `neighbor ${n.address} timers connect ${n.connectRetry ?? 1}`,
    `neighbor ${n.address} timers ${ka} ${hold}`,
  ];
  if (n.password) out.push(`neighbor ${n.address} password ${n.password}`);
  if (n.description) out.push(`neighbor ${n.address} description ${n.description}`);
  if (n.passive) out.push(`neighbor ${n.address} passive`);
  if (n.ebgpMultihop) out.push(`neighbor ${n.address} ebgp-multihop ${n.ebgpMultihop}`);
  return out.map((l) => indent + l);
}

/**
 * A ToR: eBGP, `no bgp ebgp-requires-policy` (FRR 8 drops everything from eBGP peers without a policy
 * otherwise), multipath across ASNs, each neighbour activated in the address family of its address.
 */
export function renderFrrConfig(r: FrrRouter): string {
  const v4 = r.neighbors.filter((n) => !n.address.includes(':'));
  const v6 = r.neighbors.filter((n) => n.address.includes(':'));
  const lines = [
    'frr defaults datacenter',
    `hostname ${r.name}`,
    'log stdout informational',
    '!',
    `router bgp ${r.asn}`,
    ` bgp router-id ${r.routerId}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp default ipv4-unicast',
    ' bgp bestpath as-path multipath-relax',
  ];
  for (const n of r.neighbors) lines.push(...neighborLines(n, ' '));
  for (const e of r.extra ?? []) lines.push(` ${e}`);
  const af = (name: string, ns: FrrNeighbor[]) => {
    lines.push(` address-family ${name} unicast`, `  maximum-paths ${r.maximumPaths ?? 16}`);
    if (r.redistributeConnected) lines.push('  redistribute connected');
    for (const n of ns) lines.push(`  neighbor ${n.address} activate`);
    lines.push(' exit-address-family');
  };
  af('ipv4', v4);
  af('ipv6', v6);
  lines.push('!', '');
  return lines.join('\n');
}

export const frrDir = (name: string) => join(FRR_ROOT, name);

async function frrIds(): Promise<{ uid: number; gid: number }> {
  const u = await run(['id', '-u', 'frr']);
  const g = await run(['id', '-g', 'frr']);
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Starts zebra + bgpd for the router (any previous instance of that name is killed first). */
export async function startFrr(r: FrrRouter, opts: { config?: string } = {}): Promise<void> {
  const dir = frrDir(r.name);
  await stopFrr(r.name, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'frr.conf'), opts.config ?? renderFrrConfig(r));
  await writeFile(join(dir, 'ns'), r.ns);
  const { uid, gid } = await frrIds();
  await chown(FRR_ROOT, uid, gid).catch(() => undefined);
  await chown(dir, uid, gid);
  await chown(join(dir, 'frr.conf'), uid, gid);
  await launch(r.name, r.ns);
}

async function launch(name: string, ns: string): Promise<void> {
  const dir = frrDir(name);
  const common = ['-d', '-f', join(dir, 'frr.conf'), '-z', join(dir, 'zserv.api'), '--vty_socket', dir, '-P', '0'];
  await inNs(ns, ['/usr/lib/frr/zebra', ...common, '-i', join(dir, 'zebra.pid')], { timeoutMs: 20_000 });
  await inNs(ns, ['/usr/lib/frr/bgpd', ...common, '-i', join(dir, 'bgpd.pid')], { timeoutMs: 20_000 });
  await waitUntil(`${name} vty`, async () => (await vtysh(name, 'show bgp summary json').catch(() => null)) !== null, 15_000);
}

/** Restart a stopped or killed router with its existing config. */
export async function restartFrr(name: string, ns: string): Promise<void> {
  await stopFrr(name, 'SIGKILL');
  await launch(name, ns);
}

/** SIGTERM: zebra removes its routes at once. SIGKILL: stale routes stay until a restarted zebra sweeps them. */
export async function stopFrr(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const dir = frrDir(name);
  await stopPid(join(dir, 'bgpd.pid'), signal);
  await stopPid(join(dir, 'zebra.pid'), signal);
}

export async function frrRunning(name: string): Promise<boolean> {
  return alive(await readPid(join(frrDir(name), 'bgpd.pid')));
}

export async function vtysh(name: string, ...commands: string[]): Promise<string> {
  const r = await run(['vtysh', '--vty_socket', frrDir(name), ...commands.flatMap((c) => ['-c', c])], { timeoutMs: 15_000 });
  return r.stdout;
}

export async function vtyshJson<T = unknown>(name: string, command: string): Promise<T> {
  return JSON.parse(await vtysh(name, command)) as T;
}

export interface FrrPeerSummary {
  state: string;
  remoteAs?: number;
  pfxRcd?: number;
  pfxSnt?: number;
  peerUptimeMsec?: number;
  peerUptimeEstablishedEpoch?: number;
  connectionsEstablished?: number;
  connectionsDropped?: number;
}

/** Neighbour address → state, for both families. */
export async function bgpNeighbors(name: string): Promise<Map<string, FrrPeerSummary>> {
  const out = new Map<string, FrrPeerSummary>();
  const j = await vtyshJson<Record<string, { peers?: Record<string, FrrPeerSummary> }>>(name, 'show bgp summary json');
  for (const af of Object.values(j)) for (const [addr, p] of Object.entries(af.peers ?? {})) out.set(addr, p);
  return out;
}

/** Adds neighbours to a running router through vtysh (as an operator would). */
export async function addNeighbors(r: FrrRouter, neighbors: FrrNeighbor[]): Promise<void> {
  const cmds = ['configure terminal', `router bgp ${r.asn}`];
  for (const n of neighbors) {
    cmds.push(...neighborLines(n, ''));
    cmds.push(`address-family ${n.address.includes(':') ? 'ipv6' : 'ipv4'} unicast`, `neighbor ${n.address} activate`, 'exit-address-family');
  }
  await vtysh(r.name, ...cmds);
}

/** Removes neighbours from a running router. */
export async function removeNeighbors(r: FrrRouter, addresses: string[]): Promise<void> {
  await vtysh(r.name, 'configure terminal', `router bgp ${r.asn}`, ...addresses.map((a) => `no neighbor ${a}`));
}

/** Changes (or with undefined removes) a neighbour's MD5 password on a running router. */
export async function setNeighborPassword(r: FrrRouter, address: string, password: string | undefined): Promise<void> {
  await vtysh(r.name, 'configure terminal', `router bgp ${r.asn}`, password ? `neighbor ${address} password ${password}` : `no neighbor ${address} password`);
}

/** SIGKILL: routes stay in the kernel until a restarted zebra sweeps them. */
export const killFrr = (name: string) => stopFrr(name, 'SIGKILL');

/** Waits until FRR reports the session with `address` Established; returns its summary entry. */
export async function waitEstablished(name: string, address: string, timeoutMs = 30_000): Promise<FrrPeerSummary> {
  return waitUntil(
    `${name}: session with ${address} Established`,
    async () => {
      const p = (await bgpNeighbors(name)).get(address);
      return p?.state === 'Established' ? p : null;
    },
    timeoutMs,
    50,
  );
}

/** Prefixes FRR accepted from `address` (summary pfxRcd), 0 when the neighbour is unknown. */
export async function prefixesReceived(name: string, address: string): Promise<number> {
  return (await bgpNeighbors(name)).get(address)?.pfxRcd ?? 0;
}

/** `show ip route json` / `show ipv6 route json` (optionally for one prefix): prefix → entries. */
export async function showRoutes(name: string, family: 4 | 6 = 4, prefix?: string): Promise<Record<string, Array<{ protocol?: string; selected?: boolean; installed?: boolean; nexthops?: Array<{ ip?: string; active?: boolean }> }>>> {
  return vtyshJson(name, `show ${family === 4 ? 'ip' : 'ipv6'} route${prefix ? ` ${prefix}` : ''} json`);
}

/**
 * Waits until the kernel FIB of `ns` has `prefix` with proto bgp (zebra installed it), optionally via
 * the given gateway(s); returns the gateways.
 */
export async function waitFibRoute(ns: string, prefix: string, opts: { via?: string | string[]; timeoutMs?: number } = {}): Promise<string[]> {
  const want = opts.via === undefined ? undefined : [opts.via].flat().sort();
  return waitUntil(
    `${ns}: ${prefix} proto bgp${want ? ` via ${want.join(',')}` : ''} in the kernel FIB`,
    async () => {
      const routes = await routesFor(ns, prefix, { proto: 'bgp' });
      if (!routes.length) return null;
      const gws = routes.flatMap(gatewaysOf).sort();
      if (want && gws.join(',') !== want.join(',')) return null;
      return gws.length ? gws : ['(no gateway)'];
    },
    opts.timeoutMs ?? 30_000,
    20,
  );
}

/** Waits until `prefix` has no proto bgp route in the kernel FIB of `ns`. */
export async function waitNoFibRoute(ns: string, prefix: string, timeoutMs = 30_000): Promise<void> {
  await waitUntil(`${ns}: ${prefix} gone from the kernel FIB`, async () => (await routesFor(ns, prefix, { proto: 'bgp' })).length === 0, timeoutMs, 20);
}
