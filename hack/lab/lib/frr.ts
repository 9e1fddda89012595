/**
 * FRR routers (zebra + bgpd from Debian's frr) in lab namespaces. Each router has its own runtime
 * directory owned by user frr (FRR refuses to run as root) with its config, pid files, zserv socket and
 * vty sockets; vtysh talks to it through --vty_socket.
 */
import { chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../operator/lib/exec.js';
import { alive, readPid, stopPid, waitUntil } from './daemon.js';
import { inNs } from './netns.js';

export const FRR_ROOT = process.env.PODFABRIC_LAB_FRR_DIR ?? '/tmp/pf-lab-frr';

export interface FrrNeighbor {
  address: string;
  remoteAs: number | 'external' | 'internal';
  password?: string;
  /** keepalive/hold seconds (default 3/9: a lab wants fast detection) */
  timers?: [number, number];
  description?: string;
}

export interface FrrRouter {
  name: string;
  ns: string;
  asn: number;
  routerId: string;
  neighbors: FrrNeighbor[];
  /** Extra lines inside `router bgp` (e.g. network statements). */
  extra?: string[];
}

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
  for (const n of r.neighbors) {
    lines.push(` neighbor ${n.address} remote-as ${n.remoteAs}`);
    lines.push(` neighbor ${n.address} timers connect 1`);
    const [ka, hold] = n.timers ?? [3, 9];
    lines.push(` neighbor ${n.address} timers ${ka} ${hold}`);
    if (n.password) lines.push(` neighbor ${n.address} password ${n.password}`);
    if (n.description) lines.push(` neighbor ${n.address} description ${n.description}`);
  }
  for (const e of r.extra ?? []) lines.push(` ${e}`);
  lines.push(' address-family ipv4 unicast', '  maximum-paths 16');
  for (const n of v4) lines.push(`  neighbor ${n.address} activate`);
  lines.push(' exit-address-family', ' address-family ipv6 unicast', '  maximum-paths 16');
  for (const n of v6) lines.push(`  neighbor ${n.address} activate`);
  lines.push(' exit-address-family', '!', '');
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
  pfxRcd?: number;
  peerUptimeMsec?: number;
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
    cmds.push(`neighbor ${n.address} remote-as ${n.remoteAs}`, `neighbor ${n.address} timers connect 1`, `neighbor ${n.address} timers ${(n.timers ?? [3, 9]).join(' ')}`);
    if (n.password) cmds.push(`neighbor ${n.address} password ${n.password}`);
    cmds.push(`address-family ${n.address.includes(':') ? 'ipv6' : 'ipv4'} unicast`, `neighbor ${n.address} activate`, 'exit-address-family');
  }
  await vtysh(r.name, ...cmds);
}
