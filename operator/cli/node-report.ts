/**
 * `kubectl fabric node NAME`: plan against reality for one node, a pure builder from a FabricSnapshot to
 * a report and from a report to text. No I/O, no clock: `now` is given.
 */
import type { NodeFabricObj } from '../api/kinds.js';
import { canonIP, canonPrefix, compareCidr, parseCidr } from '../lib/ip.js';
import { formatAge, naturalCompare, rackOf, sessionsOf, ageSeconds, type FabricSnapshot, type SessionState } from './model.js';
import { plannedRoutes, segmentViews, type PlannedRoute, type SegmentView } from './segments.js';
import { conditionViews, syncState, type ConditionView, type ViewOptions } from './status-report.js';
import { clip, section, yesNo } from './table.js';


/**
 * ok: plan and node agree; missing: planned, not on the node; extra: on the node, not planned; down: session not Established; mismatch: same key, other value;
 * unlisted: a planned route the node's report cannot vouch for (it lists only the first routeProblems and this one sorts after them).
 */
export type Verdict = 'ok' | 'missing' | 'extra' | 'down' | 'mismatch' | 'unlisted';

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
  /** The L2Segment the planned route comes from (null: not planned). */
  segment: string | null;
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
  /** The status was written for an older spec generation than the NodeFabric's (null when current). */
  planLag: { status: number; plan: number } | null;
  sessions: SessionLine[];
  advertisements: PrefixLine[];
  /** The L2Segments the NodeFabric names (spec.routing.segments): where its planned routes come from. */
  segments: SegmentView[];
  routes: RouteLine[];
  conditions: Array<ConditionView & { ok: boolean }>;
  cni: { written: boolean | null; path: string | null; reason: string | null; ok: boolean };
  /** Every discrepancy, one line each. Empty = the node has exactly its plan. */
  discrepancies: string[];
}

/**
 * The DIRECT ROUTES lines: the planned routes (every route of the node's L2Segments but its own,
 * segments.ts plannedRoutes) against status.routeProblems (the agent reports only the routes that differ from its plan). A planned route with no problem is installed via its planned next
 * hop, unless the status lists fewer problems than routeProblemsTotal and the route sorts after the last
 * one listed ('unlisted'). Before the agent reports routes at all, every planned route is 'missing'.
 */
export function routeLines(planned: PlannedRoute[], st: NodeFabricObj['status']): { routes: RouteLine[]; problems: string[] } {
  const plan = new Map(planned.map((r) => [canonPrefix(r.destination), r]));
  const reported = st?.routesInstalled !== undefined;
  const listed = st?.routeProblems ?? [];
  const seen = new Map(listed.map((p) => [canonPrefix(p.destination), p.installedVia === undefined ? null : canonIP(p.installedVia)]));
  const unlisted = Math.max(0, (st?.routeProblemsTotal ?? listed.length) - listed.length);
  const last = unlisted ? parseCidr(canonPrefix(listed[listed.length - 1]?.destination ?? '')) : null;
  const beyondList = (key: string) => {
    const c = parseCidr(key);
    return unlisted > 0 && (!last || !c || compareCidr(c, last) > 0);
  };
  const routes: RouteLine[] = [];
  for (const key of [...new Set([...plan.keys(), ...seen.keys()])].sort(naturalCompare)) {
    const p = plan.get(key);
    const plannedVia = p ? canonIP(p.via) : null;
    // A problem listed for a route no longer planned and not in the kernel is about an older plan: nothing to show.
    const installedVia = seen.has(key) ? seen.get(key)! : !reported || !p || beyondList(key) ? null : plannedVia;
    if (!p && installedVia === null) continue;
    const verdict: Verdict = !p ? 'extra' : installedVia === null ? (seen.has(key) || !reported ? 'missing' : 'unlisted') : installedVia === plannedVia ? 'ok' : 'mismatch';
    routes.push({ destination: key, node: p?.node ?? null, plannedVia, installedVia, segment: p?.segment ?? null, reason: p?.reason ?? null, verdict });
  }
  const problems: string[] = [];
  for (const r of routes) {
    if (r.verdict === 'missing') problems.push(`route ${r.destination} via ${r.plannedVia} (to ${r.node}): planned but not in the kernel`);
    if (r.verdict === 'extra') problems.push(`route ${r.destination} via ${r.installedVia}: in the kernel but not planned`);
    if (r.verdict === 'mismatch') problems.push(`route ${r.destination}: planned via ${r.plannedVia}, installed via ${r.installedVia}`);
  }
  if (unlisted) problems.push(`${unlisted} more route problem(s) than status.routeProblems lists (it holds the first ${listed.length}): see 'ip route show proto <routeProtocol>' on the node`);
  return { routes, problems };
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

  const sessions: SessionLine[] = (nf ? sessionsOf(nf, s) : []).map((x) => {
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

  const gen = nf?.metadata.generation;
  const planLag = gen !== undefined && st?.observedGeneration !== undefined && st.observedGeneration < gen ? { status: st.observedGeneration, plan: gen } : null;
  if (planLag) d.push(`status is for plan generation ${planLag.status}, the plan is at ${planLag.plan}: the agent has not reported on the latest plan yet (its routes are judged against the older one)`);
  const segments = segmentViews(nf, s);
  for (const g of segments) {
    if (g.expected) d.push(`L2Segment ${g.name} not found: the node has a pod CIDR and an IP of IPv${g.family}, so the segment holds at least its own route (the controller has not written it)`);
  }
  const { routes, problems: routeDiscrepancies } = routeLines(plannedRoutes(nf, s), st);
  d.push(...routeDiscrepancies);

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
    planLag,
    sessions,
    advertisements,
    segments,
    routes,
    conditions,
    cni,
    discrepancies: d,
  };
}

const MARK: Record<Verdict, string> = { ok: 'ok', missing: '!! MISSING', extra: '!! EXTRA', down: '!! DOWN', mismatch: '!! MISMATCH', unlisted: '?? NOT LISTED' };

export function renderNodeReport(r: NodeReport, now: Date): string {
  const since = (t: string | null) => (t ? `${formatAge(ageSeconds(t, now))} ago` : '-');
  const num = (n: number | null) => (n === null ? '-' : String(n));
  const out: string[] = [
    `NODE ${r.name}  rack ${r.rack}  ASN ${r.asn ?? '-'}  router ID ${r.routerId ?? '-'}  last sync ${since(r.lastSyncTime)}${r.stale ? '  !! STALE' : ''}${r.planLag ? `  !! OLDER PLAN (status generation ${r.planLag.status}, plan ${r.planLag.plan})` : ''}`,
    `POD CIDRS  plan ${r.podCIDRs.plan.join(',') || '-'}  Node.spec.podCIDRs ${r.podCIDRs.node.join(',') || '-'}  ${MARK[r.podCIDRs.verdict]}`,
    ...section(
      'SESSIONS (plan: the BGPPeers selecting the node, node: status.sessions)',
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
      'L2 SEGMENTS (spec.routing.segments: the L2Segments whose routes the node installs, all but its own)',
      ['NAME', 'KEY', 'FAMILY', 'REASON', 'ROUTES', 'OMITTED', ''],
      r.segments.map((g) => [
        g.name,
        g.key ?? '-',
        g.family === null ? '-' : `IPv${g.family}`,
        g.reason ?? '-',
        g.routes === null ? '-' : String(g.routes),
        String(g.omitted),
        g.found ? 'ok' : g.expected ? '!! MISSING' : 'not found (no routes)',
      ]),
      '(none: the node is on no L2 segment)',
    ),
    ...section(
      'DIRECT ROUTES (plan: its L2Segments\' routes, node: status.routeProblems)',
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