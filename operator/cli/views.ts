/**
 * `kubectl fabric status` and `kubectl fabric node NAME`: pure builders from a FabricSnapshot to a
 * report (what `-o json` prints) and from a report to text tables. No I/O, no clock: `now` is given.
 */
import type { Condition } from '../api/common.js';
import type { BGPPeerObj, IPPoolObj, NodeFabricObj } from '../api/kinds.js';
import { effectiveBlockSize } from '../ipam/ipam.js';
import { blockCount, parseCidr } from '../lib/ip.js';
import {
  ageSeconds,
  byName,
  canonIP,
  canonPrefix,
  formatAge,
  naturalCompare,
  nodeReady,
  rackOf,
  sessionsOf,
  type ConditionStatus,
  type CoreNode,
  type FabricSnapshot,
  type SessionState,
} from './model.js';

export interface ViewOptions {
  now: Date;
  /** A node whose agent has not synced for longer than this is stale (the agent resyncs every 30 s). */
  staleAfterSeconds: number;
}

export const DEFAULT_STALE_AFTER_SECONDS = 120;

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

const conditionViews = (cs: Condition[] | undefined): ConditionView[] =>
  [...(cs ?? [])].sort((a, b) => naturalCompare(a.type, b.type)).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }));

/** Condition types where True is the bad state. */
const NEGATIVE = new Set(['Exhausted', 'Overlapping', 'Conflict']);

function conditionProblems(cs: ConditionView[], ignore: (c: ConditionView) => boolean = () => false): string[] {
  return cs
    .filter((c) => !ignore(c) && (NEGATIVE.has(c.type) ? c.status === 'True' : c.status !== 'True'))
    .map((c) => `${c.type}=${c.status} (${c.reason})${c.message ? `: ${c.message}` : ''}`);
}

/** Age of the agent's last sync and whether it is too old (no status at all is not "stale", it is missing). */
function syncState(st: NodeFabricObj['status'], o: ViewOptions): { age: number | null; stale: boolean; problem: string | null } {
  const age = ageSeconds(st?.lastSyncTime, o.now);
  const stale = !!st && (age === null || age > o.staleAfterSeconds);
  return { age, stale, problem: !stale ? null : age === null ? 'the agent never reported a sync time' : `status is stale: last sync ${formatAge(age)} ago` };
}

function nodeRow(name: string, node: CoreNode | undefined, nf: NodeFabricObj | undefined, o: ViewOptions): NodeRow {
  const ready = nodeReady(nf);
  const st = nf?.status;
  const sessions = nf ? sessionsOf(nf) : [];
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
    routesInstalled: st?.routesInstalled ?? st?.routes?.length ?? 0,
    routesPlanned: nf?.spec.directRoutes?.length ?? 0,
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

function peerRow(p: BGPPeerObj, nfs: NodeFabricObj[]): PeerRow {
  const addr = canonIP(p.spec.peerAddress);
  let planned = 0;
  let established = 0;
  for (const nf of nfs) {
    const s = sessionsOf(nf).find((x) => x.address === addr && (x.peerName === undefined || x.peerName === p.metadata.name));
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
  const blockSize = effectiveBlockSize({ name: p.metadata.name, cidr: p.spec.cidr, blockSize: p.spec.blockSize, disabled: p.spec.disabled, deleting: false });
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
  const nodes = names.map((n) => nodeRow(n, nodesByName.get(n), nfByName.get(n), o));
  const peers = [...s.peers].sort(byName).map((p) => peerRow(p, s.nodeFabrics));
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

/** Columns padded to the widest cell, two spaces apart, like kubectl get. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return rows.map((row) => row.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join('  ').trimEnd()).join('\n');
}

/** A titled table after a blank line; `empty` instead of a table without rows. */
function section(title: string, header: string[], rows: string[][], empty = '(none)'): string[] {
  return ['', title, rows.length === 0 ? empty : table([header, ...rows])];
}

const clip = (s: string, n: number): string => ([...s].length > n ? `${[...s].slice(0, n - 1).join('')}…` : s);
const yesNo = (b: boolean | null): string => (b === null ? '-' : b ? 'yes' : 'no');
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

// ---------------------------------------------------------------------------------------------
// node NAME

/** ok: plan and node agree; missing: planned, not on the node; extra: on the node, not planned; down: session not Established; mismatch: same key, other value. */
export type Verdict = 'ok' | 'missing' | 'extra' | 'down' | 'mismatch';

export interface SessionLine {
  address: string;
  peer: string;
  planned: boolean;
  state: SessionState | null;
  establishedSince: string | null;
  prefixesSent: number | null;
  prefixesReceived: number | null;
  lastError: string | null;
  verdict: Verdict;
}

export interface PrefixLine {
  prefix: string;
  nextHop: string | null;
  verdict: Verdict;
}

export interface RouteLine {
  destination: string;
  node: string | null;
  plannedVia: string | null;
  installedVia: string | null;
  reason: string | null;
  verdict: Verdict;
}

export interface NodeReport {
  name: string;
  found: { node: boolean; nodeFabric: boolean; status: boolean };
  podCIDRs: { plan: string[]; node: string[]; verdict: Verdict };
  rack: string;
  asn: number | null;
  routerId: string | null;
  lastSyncTime: string | null;
  syncAgeSeconds: number | null;
  stale: boolean;
  sessions: SessionLine[];
  advertisements: PrefixLine[];
  routes: RouteLine[];
  conditions: Array<ConditionView & { ok: boolean }>;
  cni: { written: boolean | null; path: string | null; reason: string | null; ok: boolean };
  /** Every discrepancy, one line each. Empty = the node has exactly its plan. */
  discrepancies: string[];
}

function diffKeys<T>(planned: Map<string, T>, observed: Map<string, T>): Array<{ key: string; plan?: T; seen?: T }> {
  const keys = [...new Set([...planned.keys(), ...observed.keys()])].sort(naturalCompare);
  return keys.map((key) => ({ key, ...(planned.has(key) ? { plan: planned.get(key) } : {}), ...(observed.has(key) ? { seen: observed.get(key) } : {}) }));
}

export function buildNodeReport(name: string, s: FabricSnapshot, o: ViewOptions): NodeReport {
  const node = s.nodes.find((n) => n.metadata.name === name);
  const nf = s.nodeFabrics.find((n) => n.metadata.name === name);
  const st = nf?.status;
  const d: string[] = [];
  if (!node) d.push(`no Node ${name}`);
  if (!nf) d.push(`no NodeFabric ${name}: the controller has not planned this node`);
  else if (!st) d.push('no status: the node agent has not reported yet');

  const sessions: SessionLine[] = (nf ? sessionsOf(nf) : []).map((x) => {
    const verdict: Verdict = !x.planned ? 'extra' : !x.observed ? 'missing' : x.state === 'Established' ? 'ok' : 'down';
    return {
      address: x.address,
      peer: x.peerName ?? '-',
      planned: x.planned,
      state: x.observed ? x.state : null,
      establishedSince: x.establishedSince ?? null,
      prefixesSent: x.prefixesSent ?? null,
      prefixesReceived: x.prefixesReceived ?? null,
      lastError: x.lastError ?? null,
      verdict,
    };
  });
  for (const x of sessions) {
    if (x.verdict === 'missing') d.push(`session to ${x.peer} ${x.address}: planned but the agent reports no session`);
    if (x.verdict === 'extra') d.push(`session to ${x.address}: on the node but not planned`);
    if (x.verdict === 'down') d.push(`session to ${x.peer} ${x.address}: ${x.state}${x.lastError ? ` (${x.lastError})` : ''}`);
  }

  const advertisements: PrefixLine[] = diffKeys(
    new Map((nf?.spec.advertisements ?? []).map((a) => [canonPrefix(a.prefix), a.nextHop])),
    new Map((st?.advertised ?? []).map((p) => [canonPrefix(p), ''])),
  ).map(({ key, plan, seen }) => ({ prefix: key, nextHop: plan ?? null, verdict: plan === undefined ? 'extra' : seen === undefined ? 'missing' : 'ok' }));
  for (const a of advertisements) if (a.verdict !== 'ok') d.push(`advertisement ${a.prefix}: ${a.verdict === 'missing' ? 'planned but not advertised' : 'advertised but not planned'}`);

  const planRoutes = new Map((nf?.spec.directRoutes ?? []).map((r) => [canonPrefix(r.destination), r]));
  const routes: RouteLine[] = diffKeys<{ via: string }>(planRoutes, new Map((st?.routes ?? []).map((r) => [canonPrefix(r.destination), r]))).map(({ key, plan, seen }) => {
    const p = planRoutes.get(key);
    const verdict: Verdict = !plan ? 'extra' : !seen ? 'missing' : canonIP(plan.via) === canonIP(seen.via) ? 'ok' : 'mismatch';
    return {
      destination: key,
      node: p?.node ?? null,
      plannedVia: plan ? canonIP(plan.via) : null,
      installedVia: seen ? canonIP(seen.via) : null,
      reason: p?.reason ?? null,
      verdict,
    };
  });
  for (const r of routes) {
    if (r.verdict === 'missing') d.push(`route ${r.destination} via ${r.plannedVia} (to ${r.node}): planned but not in the kernel`);
    if (r.verdict === 'extra') d.push(`route ${r.destination} via ${r.installedVia}: in the kernel but not planned`);
    if (r.verdict === 'mismatch') d.push(`route ${r.destination}: planned via ${r.plannedVia}, installed via ${r.installedVia}`);
  }

  // Every NodeFabric condition (agent's and controller's) is positive: anything but True is wrong.
  const conditions = conditionViews(st?.conditions).map((c) => ({ ...c, ok: c.status === 'True' }));
  for (const c of conditions) if (!c.ok) d.push(`condition ${c.type}=${c.status} (${c.reason}): ${c.message}`);

  const cni = { written: st?.cni ? st.cni.written : null, path: st?.cni?.path ?? null, reason: st?.cni?.reason ?? null, ok: st?.cni?.written === true };
  if (st && !cni.ok) d.push(`CNI configuration not written${cni.reason ? `: ${cni.reason}` : ''}`);

  const plan = (nf?.spec.podCIDRs ?? []).map(canonPrefix);
  const onNode = (node?.spec?.podCIDRs ?? (node?.spec?.podCIDR ? [node.spec.podCIDR] : [])).map(canonPrefix);
  const same = plan.length === onNode.length && plan.every((c, i) => c === onNode[i]);
  const podVerdict: Verdict = same ? 'ok' : plan.length === 0 ? 'extra' : onNode.length === 0 ? 'missing' : 'mismatch';
  if (nf && node && !same) d.push(`pod CIDRs: planned ${plan.join(',') || 'none'}, Node.spec.podCIDRs ${onNode.join(',') || 'none'}`);

  const { age, stale, problem: staleProblem } = syncState(st, o);
  if (staleProblem) d.push(staleProblem);

  return {
    name,
    found: { node: !!node, nodeFabric: !!nf, status: !!st },
    podCIDRs: { plan, node: onNode, verdict: podVerdict },
    rack: rackOf(node, nf),
    asn: nf?.spec.asn ?? null,
    routerId: nf?.spec.routerId ?? null,
    lastSyncTime: st?.lastSyncTime ?? null,
    syncAgeSeconds: age,
    stale,
    sessions,
    advertisements,
    routes,
    conditions,
    cni,
    discrepancies: d,
  };
}

const MARK: Record<Verdict, string> = { ok: 'ok', missing: '!! MISSING', extra: '!! EXTRA', down: '!! DOWN', mismatch: '!! MISMATCH' };

export function renderNodeReport(r: NodeReport, now: Date): string {
  const since = (t: string | null) => (t ? `${formatAge(ageSeconds(t, now))} ago` : '-');
  const num = (n: number | null) => (n === null ? '-' : String(n));
  const out: string[] = [
    `NODE ${r.name}  rack ${r.rack}  ASN ${r.asn ?? '-'}  router ID ${r.routerId ?? '-'}  last sync ${since(r.lastSyncTime)}${r.stale ? '  !! STALE' : ''}`,
    `POD CIDRS  plan ${r.podCIDRs.plan.join(',') || '-'}  Node.spec.podCIDRs ${r.podCIDRs.node.join(',') || '-'}  ${MARK[r.podCIDRs.verdict]}`,
    ...section(
      'SESSIONS (plan: spec.peers, node: status.sessions)',
      ['PEER', 'ADDRESS', 'PLANNED', 'STATE', 'SINCE', 'SENT', 'RECEIVED', 'LAST ERROR', ''],
      r.sessions.map((x) => [x.peer, x.address, x.planned ? 'yes' : 'no', x.state ?? '-', since(x.establishedSince), num(x.prefixesSent), num(x.prefixesReceived), clip(x.lastError ?? '-', 60), MARK[x.verdict]]),
      '(none planned, none seen)',
    ),
    ...section(
      'ADVERTISEMENTS (plan: spec.advertisements, node: status.advertised)',
      ['PREFIX', 'NEXT HOP', ''],
      r.advertisements.map((a) => [a.prefix, a.nextHop ?? '-', MARK[a.verdict]]),
    ),
    ...section(
      'DIRECT ROUTES (plan: spec.directRoutes, node: status.routes)',
      ['DESTINATION', 'TO NODE', 'PLANNED VIA', 'INSTALLED VIA', 'REASON', ''],
      r.routes.map((x) => [x.destination, x.node ?? '-', x.plannedVia ?? '-', x.installedVia ?? '-', x.reason ?? '-', MARK[x.verdict]]),
    ),
    ...section(
      'CONDITIONS',
      ['TYPE', 'STATUS', 'REASON', 'MESSAGE', ''],
      r.conditions.map((c) => [c.type, c.status, c.reason, clip(c.message, 100), c.ok ? 'ok' : '!! NOT TRUE']),
    ),
    '',
    `CNI  written ${yesNo(r.cni.written)}${r.cni.path ? `  ${r.cni.path}` : ''}${r.cni.reason ? `  (${r.cni.reason})` : ''}  ${r.cni.ok ? 'ok' : '!! NOT WRITTEN'}`,
    '',
    r.discrepancies.length === 0 ? 'NO DISCREPANCIES: the node has exactly its plan' : `DISCREPANCIES (${r.discrepancies.length})`,
    ...r.discrepancies.map((x) => `  ! ${clip(x, 300)}`),
  ];
  return `${out.join('\n')}\n`;
}
