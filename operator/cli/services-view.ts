/**
 * The SERVICE PREFIXES part of `kubectl fabric services` (services-report.ts adds the Services): every
 * Service prefix the nodes report in NodeFabric status.services, with who advertises it and who is
 * draining. Pure, from the NodeFabrics the CLI lists.
 */
import type { NodeFabricObj } from '../api/kinds.js';
import { naturalCompare } from './model.js';
import { table } from './table.js';

export interface ServicePrefixView {
  prefix: string;
  class: string;
  services: string[];
  /** Nodes advertising it normally. */
  active: string[];
  /** Nodes advertising it with GRACEFUL_SHUTDOWN (cordoned, within the drain delay). */
  draining: string[];
  communities: string[];
}

export interface NodePhaseView {
  node: string;
  phase: string;
  advertised: number;
  drainingSince?: string;
}

export interface ServicesView {
  prefixes: ServicePrefixView[];
  /** Nodes not in phase Active (Draining, Drained, Excluded). */
  notActive: NodePhaseView[];
  nodesReporting: number;
}

const GSHUT = '65535:0';

export function buildServicesView(nodeFabrics: readonly NodeFabricObj[]): ServicesView {
  const byPrefix = new Map<string, ServicePrefixView>();
  const notActive: NodePhaseView[] = [];
  let reporting = 0;
  for (const nf of nodeFabrics) {
    const st = nf.status?.services;
    if (!st) continue;
    reporting++;
    if (st.phase !== 'Active') notActive.push({ node: nf.metadata.name, phase: st.phase, advertised: st.advertised, ...(st.drainingSince ? { drainingSince: st.drainingSince } : {}) });
    for (const r of st.routes ?? []) {
      const v = byPrefix.get(r.prefix) ?? { prefix: r.prefix, class: r.class, services: [], active: [], draining: [], communities: [] };
      const cs = r.communities ?? [];
      (cs.includes(GSHUT) ? v.draining : v.active).push(nf.metadata.name);
      v.services = [...new Set([...v.services, ...r.services])].sort();
      v.communities = [...new Set([...v.communities, ...cs.filter((c) => c !== GSHUT)])].sort();
      byPrefix.set(r.prefix, v);
    }
  }
  const prefixes = [...byPrefix.values()]
    .map((v) => ({ ...v, active: v.active.sort(naturalCompare), draining: v.draining.sort(naturalCompare) }))
    .sort((a, b) => naturalCompare(a.prefix, b.prefix));
  return { prefixes, notActive: notActive.sort((a, b) => naturalCompare(a.node, b.node)), nodesReporting: reporting };
}

const list = (xs: string[], n = 3): string => (xs.length === 0 ? '-' : xs.length <= n ? xs.join(',') : `${xs.slice(0, n).join(',')} +${xs.length - n}`);

export function renderServicesView(v: ServicesView): string {
  const out: string[] = [];
  out.push('SERVICE PREFIXES');
  out.push(
    v.prefixes.length === 0
      ? '(none advertised)'
      : table([
          ['PREFIX', 'CLASS', 'SERVICES', 'NODES', 'DRAINING', 'COMMUNITIES'],
          ...v.prefixes.map((p) => [p.prefix, p.class, list(p.services, 2), `${p.active.length} (${list(p.active)})`, p.draining.length ? `${p.draining.length} (${list(p.draining)})` : '-', p.communities.join(' ') || '-']),
        ]),
  );
  if (v.notActive.length) {
    out.push('', 'NODES NOT ADVERTISING NORMALLY');
    out.push(table([['NODE', 'PHASE', 'ROUTES', 'CORDONED SINCE'], ...v.notActive.map((n) => [n.node, n.phase, String(n.advertised), n.drainingSince ?? '-'])]));
  }
  out.push('', `${v.nodesReporting} node(s) report Service routes`);
  return out.join('\n') + '\n';
}
