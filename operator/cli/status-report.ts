/**
 * `kubectl fabric status`: a pure builder from a FabricSnapshot to a report (what `-o json` prints) and
 * from a report to text tables. No I/O, no clock: `now` is given. `kubectl fabric node NAME` is node-report.ts.
 */
import type { Condition } from '../api/common.js';
import { STATUS_STALE_AFTER_SECONDS } from '../api/nodefabric.js';
import type { BGPPeerObj, IPPoolObj, NodeFabricObj } from '../api/kinds.js';
import { effectiveBlockSize } from '../api/rules.js';
import { blockCount, canonIP, parseCidr } from '../lib/ip.js';
import {
  ageSeconds,
  byName,
  formatAge,
  naturalCompare,
  nodeReady,
  rackOf,
  sessionsOf,
  type ConditionStatus,
  type CoreNode,
  type FabricSnapshot,
} from './model.js';
import { plannedRoutes } from './segments.js';
import { clip, section, yesNo } from './table.js';

export interface ViewOptions {
  now: Date;
  /** A node whose status was last written longer ago than this is stale (see STATUS_STALE_AFTER_SECONDS). */
  staleAfterSeconds: number;
}

/**
 * An idle agent writes its status only on its heartbeat (STATUS_HEARTBEAT_SECONDS, jittered), so a
 * status is stale once two heartbeats are missed, not after some multiple of the resync.
 */
export const DEFAULT_STALE_AFTER_SECONDS = STATUS_STALE_AFTER_SECONDS;

export interface ConditionView {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

// ---------------------------------------------------------------------------------------------
// status

export interface NodeRow {
  name: string;
  podCIDRs: string[];
  rack: string;
  sessionsEstablished: number;
  sessionsTotal: number;
  prefixesAdvertised: number;
  prefixesPlanned: number;
  routesInstalled: number;
  routesPlanned: number;
  cniWritten: boolean | null;
  ready: ConditionStatus;
  reason: string;
  message: string;
  lastSyncTime: string | null;
  syncAgeSeconds: number | null;
  stale: boolean;
  problems: string[];
}

export interface PeerRow {
  name: string;
  address: string;
  asn: number;
  nodesSelected: number;
  sessionsEstablished: number;
  conditions: ConditionView[];
  problems: string[];
}

export interface PoolRow {
  name: string;
  cidr: string;
  blockSize: number;
  blocksUsed: number;
  blocksTotal: number;
  utilizationPercent: number;
  disabled: boolean;
  conditions: ConditionView[];
  problems: string[];
}

export interface ConfigSummary {
  present: boolean;
  asn: number | null;
  routerIdSource: string | null;
  hostRoutes: string;
  routeProtocol: number | null;
  cni: string;
}

export interface StatusReport {
  generatedAt: string;
  ready: boolean;
  summary: { nodes: number; nodesReady: number; peers: number; pools: number; sessionsEstablished: number; sessionsTotal: number };
  nodes: NodeRow[];
  peers: PeerRow[];
  pools: PoolRow[];
  config: ConfigSummary;
  /** Everything that is not right, one line each ("node r1n2: Ready=False (BGPNotReady): ..."). */
  problems: string[];
}

export const conditionViews = (cs: Condition[] | undefined): ConditionView[] =>
  [...(cs ?? [])].sort((a, b) => naturalCompare(a.type, b.type)).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }));

/** Condition types where True is the bad state. */
const NEGATIVE = new Set(['Exhausted', 'Overlapping', 'Conflict']);

function conditionProblems(cs: ConditionView[], ignore: (c: ConditionView) => boolean = () => false): string[] {
  return cs
    .filter((c) => !ignore(c) && (NEGATIVE.has(c.type) ? c.status === 'True' : c.status !== 'True'))
    .map((c) => `${c.type}=${c.status} (${c.reason})${c.message ? `: ${c.message}` : ''}`);
}

/** Age of the agent's last sync and whether it is too old (no status at all is not "stale", it is missing). */
export function syncState(st: NodeFabricObj['status'], o: ViewOptions): { age: number | null; stale: boolean; problem: string | null } {
  const age = ageSeconds(st?.lastSyncTime, o.now);
  const stale = !!st && (age === null || age > o.staleAfterSeconds);
  return { age, stale, problem: !stale ? null : age === null ? 'the agent never reported a sync time' : `status is stale: last sync ${formatAge(age)} ago` };
}

function nodeRow(name: string, node: CoreNode | undefined, nf: NodeFabricObj | undefined, o: ViewOptions, snap: FabricSnapshot): NodeRow {
  const ready = nodeReady(nf);
  const st = nf?.status;
  const sessions = nf ? sessionsOf(nf, snap) : [];
  const { age, stale, problem: staleProblem } = syncState(st, o);
  const problems: string[] = [];
  if (!node) problems.push('no Node object (the NodeFabric is an orphan)');
  if (ready.status !== 'True') problems.push(`Ready=${ready.status} (${ready.reason}): ${ready.message}`);
  if (staleProblem) problems.push(staleProblem);
  return {
    name,
    podCIDRs: nf?.spec.podCIDRs ?? node?.spec?.podCIDRs ?? [],
    rack: rackOf(node, nf),
    sessionsEstablished: sessions.filter((s) => s.state === 'Established').length,
    sessionsTotal: sessions.length,
    prefixesAdvertised: st?.advertised?.length ?? 0,
    prefixesPlanned: nf?.spec.advertisements?.length ?? 0,
    routesInstalled: st?.routesInstalled ?? 0,
    routesPlanned: plannedRoutes(nf, snap).length,
    cniWritten: st?.cni ? st.cni.written : null,
    ready: ready.status,
    reason: ready.reason,
    message: ready.message,
    lastSyncTime: st?.lastSyncTime ?? null,
    syncAgeSeconds: age,
    stale,
    problems,
  };
}

function peerRow(p: BGPPeerObj, snap: FabricSnapshot): PeerRow {
  const addr = canonIP(p.spec.peerAddress);
  let planned = 0;
  let established = 0;
  for (const nf of snap.nodeFabrics) {
    const s = sessionsOf(nf, snap).find((x) => x.address === addr && (x.peerName === undefined || x.peerName === p.metadata.name));
    if (!s?.planned) continue;
    planned++;
    if (s.state === 'Established') established++;
  }
  const conditions = conditionViews(p.status?.conditions);
  const problems = conditionProblems(conditions);
  if (established < planned) problems.push(`${planned - established} of ${planned} planned session(s) not established`);
  return {
    name: p.metadata.name,
    address: addr,
    asn: p.spec.peerASN,
    nodesSelected: p.status?.nodesSelected ?? planned,
    sessionsEstablished: established,
    conditions,
    problems,
  };
}

function poolRow(p: IPPoolObj, nfs: NodeFabricObj[]): PoolRow {
  const blockSize = effectiveBlockSize({ cidr: p.spec.cidr, blockSize: p.spec.blockSize });
  const c = parseCidr(p.spec.cidr);
  const total = p.status?.blocksTotal ?? (c ? blockCount(c, blockSize) : 0);
  const used = p.status?.blocksAllocated ?? nfs.reduce((n, nf) => n + (nf.spec.allocations ?? []).filter((a) => a.pool === p.metadata.name).length, 0);
  const conditions = conditionViews(p.status?.conditions);
  return {
    name: p.metadata.name,
    cidr: p.spec.cidr,
    blockSize,
    blocksUsed: used,
    blocksTotal: total,
    utilizationPercent: total > 0 ? Math.round((used / total) * 1000) / 10 : 0,
    disabled: p.spec.disabled,
    conditions,
    // A disabled pool says Ready=False on purpose.
    problems: conditionProblems(conditions, (x) => x.type === 'Ready' && x.reason === 'Disabled'),
  };
}

function configSummary(s: FabricSnapshot): ConfigSummary {
  const c = s.config?.spec;
  if (!c) return { present: false, asn: null, routerIdSource: null, hostRoutes: '-', routeProtocol: null, cni: '-' };
  const hr = c.hostRoutes;
  return {
    present: true,
    asn: c.asn ?? null,
    routerIdSource: c.routerIdSource ?? null,
    hostRoutes: !hr ? '-' : hr.enabled ? `on (${hr.detectL2 ? 'detect L2' : 'no L2 detection'}, label ${hr.segmentLabel})` : 'off',
    routeProtocol: c.routeProtocol ?? null,
    cni: c.cni ? `${c.cni.confDir} bridge ${c.cni.bridge}${c.cni.mtu ? ` mtu ${c.cni.mtu}` : ''}${c.cni.waitForFabric ? ', waits for the fabric' : ''}` : '-',
  };
}

/** The whole fabric in one report; `ready` is false when any row has a problem. */
export function buildStatus(s: FabricSnapshot, o: ViewOptions): StatusReport {
  const nodesByName = new Map(s.nodes.map((n) => [n.metadata.name, n]));
  const nfByName = new Map(s.nodeFabrics.map((n) => [n.metadata.name, n]));
  const names = [...new Set([...nodesByName.keys(), ...nfByName.keys()])].sort(naturalCompare);
  const nodes = names.map((n) => nodeRow(n, nodesByName.get(n), nfByName.get(n), o, s));
  const peers = [...s.peers].sort(byName).map((p) => peerRow(p, s));
  const pools = [...s.pools].sort(byName).map((p) => poolRow(p, s.nodeFabrics));
  const problems = [
    ...nodes.flatMap((r) => r.problems.map((p) => `node ${r.name}: ${p}`)),
    ...peers.flatMap((r) => r.problems.map((p) => `bgppeer ${r.name}: ${p}`)),
    ...pools.flatMap((r) => r.problems.map((p) => `ippool ${r.name}: ${p}`)),
  ];
  if (pools.length === 0) problems.push('no IPPool: no node can get a pod CIDR');
  return {
    generatedAt: o.now.toISOString(),
    ready: problems.length === 0,
    summary: {
      nodes: nodes.length,
      nodesReady: nodes.filter((n) => n.ready === 'True' && !n.stale).length,
      peers: peers.length,
      pools: pools.length,
      sessionsEstablished: nodes.reduce((n, r) => n + r.sessionsEstablished, 0),
      sessionsTotal: nodes.reduce((n, r) => n + r.sessionsTotal, 0),
    },
    nodes,
    peers,
    pools,
    config: configSummary(s),
    problems,
  };
}

const condText = (cs: ConditionView[]): string =>
  cs.length === 0 ? '-' : cs.map((c) => `${c.type}=${c.status}${(NEGATIVE.has(c.type) ? c.status === 'True' : c.status !== 'True') ? `(${c.reason})` : ''}`).join(' ');

export function renderStatus(r: StatusReport): string {
  const s = r.summary;
  const out: string[] = [];
  out.push(
    `FABRIC  ${s.nodesReady}/${s.nodes} nodes ready, ${s.sessionsEstablished}/${s.sessionsTotal} sessions established, ${s.peers} BGP peer(s), ${s.pools} pool(s): ${r.ready ? 'READY' : 'NOT READY'}`,
    ...section(
      'NODES',
      ['NODE', 'POD CIDRS', 'RACK', 'SESSIONS', 'PREFIXES', 'ROUTES', 'CNI', 'READY', 'REASON', 'SYNCED'],
      r.nodes.map((n) => [
        n.name,
        n.podCIDRs.join(',') || '-',
        n.rack,
        `${n.sessionsEstablished}/${n.sessionsTotal}`,
        `${n.prefixesAdvertised}/${n.prefixesPlanned}`,
        `${n.routesInstalled}/${n.routesPlanned}`,
        yesNo(n.cniWritten),
        n.ready,
        n.ready === 'True' ? '' : n.reason,
        n.lastSyncTime === null ? '-' : `${formatAge(n.syncAgeSeconds)} ago${n.stale ? ' STALE' : ''}`,
      ]),
    ),
    ...section(
      'BGP PEERS',
      ['PEER', 'ADDRESS', 'ASN', 'NODES', 'ESTABLISHED', 'CONDITIONS'],
      r.peers.map((p) => [p.name, p.address, String(p.asn), String(p.nodesSelected), `${p.sessionsEstablished}/${p.nodesSelected}`, condText(p.conditions)]),
    ),
    ...section(
      'IP POOLS',
      ['POOL', 'CIDR', 'BLOCK', 'USED', 'UTIL', 'DISABLED', 'CONDITIONS'],
      r.pools.map((p) => [p.name, p.cidr, `/${p.blockSize}`, `${p.blocksUsed}/${p.blocksTotal}`, `${p.utilizationPercent.toFixed(1)}%`, yesNo(p.disabled), condText(p.conditions)]),
    ),
    ...section(
      'FABRIC CONFIG',
      ['ASN', 'ROUTER ID', 'HOST ROUTES', 'ROUTE PROTO', 'CNI'],
      r.config.present ? [[String(r.config.asn ?? '-'), r.config.routerIdSource ?? '-', r.config.hostRoutes, String(r.config.routeProtocol ?? '-'), r.config.cni]] : [],
      '(no FabricConfig "default": built-in defaults apply)',
    ),
  );
  if (r.problems.length) out.push('', `PROBLEMS (${r.problems.length})`, ...r.problems.map((p) => `  ! ${clip(p, 300)}`));
  return `${out.join('\n')}\n`;
}
