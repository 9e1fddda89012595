/**
 * `kubectl fabric services`: every LoadBalancer Service (any class) and every Service the nodes
 * advertise (ExternalIPs), with its addresses, class, traffic policy, the nodes advertising each address
 * (NodeFabric status.services, split into normal and draining), the drain state of the nodes, and the
 * Service's conditions. Pure: built from what the CLI listed.
 *
 * Problems (exit 1), only for Services of podfabric's class (spec.services.loadBalancerClass, or no
 * class while handleUnclassed):
 *  - a LoadBalancer Service with no address (the condition's reason and message say why);
 *  - an address that no node advertises (neither normally nor draining) while the Service has ready
 *    endpoints: traffic for it goes nowhere. With no ready endpoint, not advertising is right (Local:
 *    no node has one; Cluster: kube-proxy would reject), so that is not a problem. The ready endpoints
 *    are counted only for these candidates (`unadvertisedAddresses`), so the CLI reads the
 *    EndpointSlices of a few Services, not of the whole cluster.
 * Right after a change the agents may not have reported yet (their status follows within seconds):
 * a problem that persists is real.
 */
import type { Condition } from '../api/common.js';
import type { FabricConfigObj, NodeFabricObj } from '../api/kinds.js';
import { LB_CONDITION, resolveServicesConfig } from '../api/services.js';
import { serviceFromJson, serviceKey, type ServiceInfo } from '../services/model.js';
import { classMatches } from '../services/requests.js';
import { naturalCompare } from './model.js';
import { buildServicesView, renderServicesView, type ServicesView } from './services-view.js';
import { table } from './table.js';

export interface ServiceRow {
  service: string;
  type: string;
  /** spec.loadBalancerClass, or "" when none. */
  class: string;
  /** podfabric serves it (class matches). */
  ours: boolean;
  trafficPolicy: 'Cluster' | 'Local';
  /** status.loadBalancer.ingress IPs, then advertised externalIPs. */
  addresses: string[];
  /** Nodes advertising one of its addresses normally / with GRACEFUL_SHUTDOWN. */
  advertisedBy: string[];
  draining: string[];
  /** Ready endpoints, counted only when an address is advertised by no node (else undefined). */
  readyEndpoints?: number;
  conditions: Condition[];
  problems: string[];
}

export interface ServicesReport {
  loadBalancerClass: string;
  services: ServiceRow[];
  prefixes: ServicesView;
  problems: string[];
  ok: boolean;
}

const hostPrefix = (ip: string) => `${ip}/${ip.includes(':') ? 128 : 32}`;

/** Every Service the report shows: type LoadBalancer, or named by a route some node advertises. */
function shown(services: readonly unknown[], view: ServicesView): ServiceInfo[] {
  const named = new Set(view.prefixes.flatMap((p) => p.services));
  return services
    .map(serviceFromJson)
    .filter((s) => s.type === 'LoadBalancer' || named.has(serviceKey(s)))
    .sort((a, b) => naturalCompare(serviceKey(a), serviceKey(b)));
}

function addressesOf(s: ServiceInfo, view: ServicesView): string[] {
  const key = serviceKey(s);
  const routed = view.prefixes.filter((p) => p.class === 'ExternalIP' && p.services.includes(key)).map((p) => p.prefix.split('/')[0]!);
  return [...new Set([...s.ingressIPs, ...routed])];
}

const isOurs = (cfg: ReturnType<typeof resolveServicesConfig>, s: ServiceInfo) => s.type === 'LoadBalancer' && classMatches(cfg, s);

/** Services of our class with an address no node advertises: their ready endpoints decide whether that is a problem. */
export function unadvertisedAddresses(i: { services: readonly unknown[]; nodeFabrics: readonly NodeFabricObj[]; config?: FabricConfigObj | null }): Array<{ namespace: string; name: string }> {
  const cfg = resolveServicesConfig(i.config?.spec.services);
  const view = buildServicesView(i.nodeFabrics);
  const advertised = new Set(view.prefixes.map((p) => p.prefix));
  return shown(i.services, view)
    .filter((s) => isOurs(cfg, s) && s.ingressIPs.some((ip) => !advertised.has(hostPrefix(ip))))
    .map((s) => ({ namespace: s.namespace, name: s.name }));
}

export function buildServicesReport(i: {
  services: readonly unknown[];
  nodeFabrics: readonly NodeFabricObj[];
  config?: FabricConfigObj | null;
  /** namespace/name → ready endpoints, for the Services unadvertisedAddresses named. */
  readyEndpoints: ReadonlyMap<string, number>;
}): ServicesReport {
  const cfg = resolveServicesConfig(i.config?.spec.services);
  const view = buildServicesView(i.nodeFabrics);
  const byPrefix = new Map(view.prefixes.map((p) => [p.prefix, p]));
  const rows = shown(i.services, view).map((s): ServiceRow => {
    const key = serviceKey(s);
    const addresses = addressesOf(s, view);
    const routes = addresses.map((a) => byPrefix.get(hostPrefix(a)));
    const uniq = (xs: string[]) => [...new Set(xs)].sort(naturalCompare);
    const ours = isOurs(cfg, s);
    const ready = i.readyEndpoints.get(key);
    const problems: string[] = [];
    if (ours && s.ingressIPs.length === 0) {
      const c = s.conditions.find((x) => x.type === LB_CONDITION);
      problems.push(`${key}: no address${c ? ` (${c.reason}: ${c.message})` : ' (no podfabric condition yet: is the controller running?)'}`);
    }
    if (ours && ready !== undefined && ready > 0) {
      for (const [k, a] of addresses.entries()) if (!routes[k]) problems.push(`${key}: ${a} advertised by no node though the Service has ${ready} ready endpoint(s)`);
    }
    return {
      service: key,
      type: s.type,
      class: s.loadBalancerClass ?? '',
      ours,
      trafficPolicy: s.externalTrafficPolicy,
      addresses,
      advertisedBy: uniq(routes.flatMap((r) => r?.active ?? [])),
      draining: uniq(routes.flatMap((r) => r?.draining ?? [])),
      ...(ready !== undefined ? { readyEndpoints: ready } : {}),
      conditions: s.conditions.map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }) as Condition),
      problems,
    };
  });
  const problems = rows.flatMap((r) => r.problems);
  return { loadBalancerClass: cfg.loadBalancerClass, services: rows, prefixes: view, problems, ok: problems.length === 0 };
}

const list = (xs: string[], n = 3): string => (xs.length === 0 ? '-' : xs.length <= n ? xs.join(',') : `${xs.slice(0, n).join(',')} +${xs.length - n}`);
const cond = (c: Condition) => `${c.type.replace(/^podfabric\.io\//, '')}=${c.status}${c.reason ? ` (${c.reason})` : ''}`;

export function renderServicesReport(r: ServicesReport): string {
  const ours = r.services.filter((s) => s.ours).length;
  const out = [`SERVICES  ${r.services.length} shown, ${ours} of class ${r.loadBalancerClass}: ${r.ok ? 'OK' : `${r.problems.length} PROBLEM(S)`}`, ''];
  out.push(
    r.services.length === 0
      ? '(no LoadBalancer or advertised Service)'
      : table([
          ['SERVICE', 'CLASS', 'POLICY', 'ADDRESSES', 'NODES', 'DRAINING', 'CONDITIONS'],
          ...r.services.map((s) => [
            s.service,
            `${s.class || '(none)'}${s.type !== 'LoadBalancer' ? ` ${s.type}` : s.ours ? '' : ' (not ours)'}`,
            s.trafficPolicy,
            s.addresses.join(',') || '<none>',
            s.addresses.length ? `${s.advertisedBy.length}${s.advertisedBy.length ? ` (${list(s.advertisedBy)})` : ''}` : '-',
            s.draining.length ? `${s.draining.length} (${list(s.draining)})` : '-',
            s.conditions.map(cond).join(' ') || '-',
          ]),
        ]),
  );
  out.push('', renderServicesView(r.prefixes).trimEnd());
  if (r.problems.length) out.push('', 'PROBLEMS', ...r.problems.map((p) => `!! ${p}`));
  return out.join('\n') + '\n';
}
