/**
 * Which Service prefixes one node advertises, and with which communities. Pure; the agent calls it on
 * every change of its Node, the Services, the EndpointSlices, the pools or FabricConfig, and at
 * `nextWakeAt`.
 *
 * - Eligible node: matches spec.services.nodeSelector and has no node.kubernetes.io/exclude-from-
 *   external-load-balancers label (phase Excluded: no Service route at all, at once).
 * - ClusterIP range (when enabled): each configured CIDR as one aggregate, from every eligible node.
 * - LoadBalancer addresses (Services podfabric serves, addresses inside a LoadBalancerPool) and
 *   ExternalIPs (inside allowedCIDRs), each as a /32 or /128:
 *   - externalTrafficPolicy Local: only while this node holds a ready endpoint of the Service in that
 *     family (EndpointSlice conditions: ready and not terminating). The last one going → withdrawn.
 *   - Cluster: from every eligible node while the Service has a ready endpoint anywhere in that family
 *     (no ready endpoint: kube-proxy would reject the traffic, so the address is not attracted).
 *   - Services kube-proxy does not serve (label service.kubernetes.io/service-proxy-name, headless)
 *     are skipped.
 * - Communities: the class's, plus the pool's (LoadBalancer), plus 65535:0 while Draining
 *   (drain.ts). Drained: every Service route withdrawn. Pod CIDRs are not handled here.
 * Output is sorted by prefix; a prefix wanted by several Services is one route (communities merged).
 */
import { EXCLUDE_LB_LABEL, GRACEFUL_SHUTDOWN, type ServicesConfig } from '../api/services.js';
import { cidrContainsIP, compareCidr, formatCidr, parseCidr, parseIP, type Cidr } from '../lib/ip.js';
import { selectorMatches } from '../api/selector.js';
import { drainState, type DrainPhase } from './drain.js';
import { familyOf, serviceKey, type EndpointSliceInfo, type IPFamilyName, type NodeInfo, type ServiceInfo } from './model.js';
import { poolOf, type PoolInfo } from './pools.js';
import { served } from './requests.js';

export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';

export type ServiceClass = 'ClusterIP' | 'ExternalIP' | 'LoadBalancer';
export type ServicePhase = DrainPhase | 'Excluded';

export interface NodeAdvertisementInput {
  node: NodeInfo;
  config: ServicesConfig;
  pools: readonly PoolInfo[];
  services: readonly ServiceInfo[];
  endpointSlices: readonly EndpointSliceInfo[];
  /** From NodeFabric status.services.drainingSince (ms epoch), when the agent saw the cordon before. */
  cordonedSince?: number;
  now: number;
}

export interface ServiceRoute {
  prefix: string;
  class: ServiceClass;
  nextHop: string;
  communities: string[];
  /** namespace/name, sorted (none for the ClusterIP aggregate). */
  services: string[];
  /** Advertised because of a ready local endpoint (a Local Service): its changes are worth an Event. */
  local: boolean;
}

export interface NodeAdvertisements {
  phase: ServicePhase;
  cordonedSince?: number;
  nextWakeAt?: number;
  routes: ServiceRoute[];
  /** The same routes in the agent Router's Advertisement shape, to merge with the pod CIDR advertisements. */
  advertisements: Array<{ prefix: string; nextHop: string; communities: string[] }>;
}

/** Deduplicated, sorted numerically ("65000:100" < "65535:0"); inputs are schema-validated ASN:VALUE. */
export function sortCommunities(cs: readonly string[]): string[] {
  const num = (c: string) => {
    const [a, b] = c.split(':').map(Number);
    return a! * 65536 + b!;
  };
  return [...new Set(cs)].sort((a, b) => num(a) - num(b));
}

const sliceKey = (ns: string, svc: string, fam: string) => `${ns}/${svc}/${fam}`;

/** Ready endpoints per Service and family: how many in all, and on which nodes. */
function indexEndpoints(slices: readonly EndpointSliceInfo[]): Map<string, { ready: number; nodes: Set<string> }> {
  const out = new Map<string, { ready: number; nodes: Set<string> }>();
  for (const s of slices) {
    if (!s.serviceName || (s.addressType !== 'IPv4' && s.addressType !== 'IPv6')) continue;
    const k = sliceKey(s.namespace, s.serviceName, s.addressType);
    const e = out.get(k) ?? { ready: 0, nodes: new Set<string>() };
    for (const ep of s.endpoints) {
      if (!ep.ready || ep.terminating) continue;
      e.ready++;
      if (ep.nodeName) e.nodes.add(ep.nodeName);
    }
    out.set(k, e);
  }
  return out;
}

function nextHopFor(node: NodeInfo, fam: IPFamilyName): string | undefined {
  return node.addresses.find((a) => familyOf(a) === fam);
}

export function nodeEligible(node: NodeInfo, config: ServicesConfig): boolean {
  return !(EXCLUDE_LB_LABEL in node.labels) && selectorMatches(config.nodeSelector, node.labels);
}

/** What one evaluation needs besides the Services: the node, the resolved config and the pools. */
export interface NodeContext {
  node: NodeInfo;
  config: ServicesConfig;
  pools: readonly PoolInfo[];
}

/** One Service's (or the ClusterIP range's) routes on this node, before merging and the drain. */
export type Contribution = ServiceRoute[];

function route(node: NodeInfo, prefix: string, cls: ServiceClass, communities: string[], svc: ServiceInfo | null, local: boolean): ServiceRoute[] {
  const nh = nextHopFor(node, parseCidr(prefix)!.family === 4 ? 'IPv4' : 'IPv6');
  return nh ? [{ prefix, class: cls, nextHop: nh, communities, services: svc ? [serviceKey(svc)] : [], local }] : [];
}

/** The ClusterIP aggregate(s), when enabled. */
export function clusterIPContribution(ctx: NodeContext): Contribution {
  const { node, config } = ctx;
  if (!config.clusterIP.advertise) return [];
  return config.clusterIP.cidrs.flatMap((c) => {
    const p = parseCidr(c, { strict: false });
    return p ? route(node, formatCidr(p), 'ClusterIP', config.clusterIP.communities, null, false) : [];
  });
}

/**
 * One Service's routes on this node from its own EndpointSlices only. The agent may keep these per
 * Service key and recompute just the Service an event is about (O(its endpoints)), then merge.
 */
export function serviceContribution(ctx: NodeContext, svc: ServiceInfo, slices: readonly EndpointSliceInfo[]): Contribution {
  const { node, config } = ctx;
  if (SERVICE_PROXY_NAME_LABEL in svc.labels || svc.clusterIPs.length === 0) return [];
  const wanted: Array<{ ip: string; cls: ServiceClass; communities: string[] }> = [];
  if (config.loadBalancer.advertise && served(config, svc)) {
    for (const ip of svc.ingressIPs) {
      const pool = poolOf(ctx.pools, ip);
      if (pool) wanted.push({ ip, cls: 'LoadBalancer', communities: [...config.loadBalancer.communities, ...pool.communities] });
    }
  }
  if (config.externalIPs.advertise && svc.externalIPs.length) {
    const allowed = config.externalIPs.allowedCIDRs.map((c) => parseCidr(c, { strict: false })).filter((c): c is Cidr => c !== null);
    for (const ip of svc.externalIPs) {
      const p = parseIP(ip)!;
      if (allowed.some((c) => cidrContainsIP(c, p.family, p.value))) wanted.push({ ip, cls: 'ExternalIP', communities: config.externalIPs.communities });
    }
  }
  if (!wanted.length) return [];
  const ready = indexEndpoints(slices.filter((sl) => sl.namespace === svc.namespace && sl.serviceName === svc.name));
  const local = svc.externalTrafficPolicy === 'Local';
  return wanted.flatMap((w) => {
    const fam = familyOf(w.ip);
    const eps = ready.get(sliceKey(svc.namespace, svc.name, fam));
    const ok = local ? !!eps?.nodes.has(node.name) : (eps?.ready ?? 0) > 0;
    return ok ? route(node, `${w.ip}/${fam === 'IPv4' ? 32 : 128}`, w.cls, w.communities, svc, local) : [];
  });
}

/**
 * Merges contributions (one route per prefix: communities and Services united, LoadBalancer class
 * first) and applies eligibility and the drain phase. O(routes).
 */
export function mergeNodeRoutes(ctx: NodeContext, contributions: Iterable<Contribution>, cordonedSince: number | undefined, now: number): NodeAdvertisements {
  const { node, config } = ctx;
  if (!nodeEligible(node, config)) return { phase: 'Excluded', routes: [], advertisements: [] };
  const drain = drainState({ unschedulable: node.unschedulable, now, drain: config.drain, ...(cordonedSince !== undefined ? { cordonedSince } : {}) });
  const base = { phase: drain.phase, ...(drain.cordonedSince !== undefined ? { cordonedSince: drain.cordonedSince } : {}), ...(drain.nextWakeAt !== undefined ? { nextWakeAt: drain.nextWakeAt } : {}) };
  if (drain.phase === 'Drained') return { ...base, routes: [], advertisements: [] };
  const routes = new Map<string, ServiceRoute>();
  for (const c of contributions) {
    for (const r of c) {
      const cur = routes.get(r.prefix);
      routes.set(
        r.prefix,
        cur
          ? {
              ...cur,
              class: cur.class === 'LoadBalancer' ? cur.class : r.class,
              communities: [...cur.communities, ...r.communities],
              services: [...cur.services, ...r.services],
              local: cur.local || r.local,
            }
          : r,
      );
    }
  }
  const out = [...routes.values()]
    .map((r) => ({
      ...r,
      communities: sortCommunities(drain.phase === 'Draining' ? [...r.communities, GRACEFUL_SHUTDOWN] : r.communities),
      services: [...new Set(r.services)].sort(),
    }))
    .sort((a, b) => compareCidr(parseCidr(a.prefix)!, parseCidr(b.prefix)!));
  return { ...base, routes: out, advertisements: out.map((r) => ({ prefix: r.prefix, nextHop: r.nextHop, communities: r.communities })) };
}

/** The whole evaluation at once (what mergeNodeRoutes over every contribution gives). */
export function nodeServiceAdvertisements(i: NodeAdvertisementInput): NodeAdvertisements {
  const ctx: NodeContext = { node: i.node, config: i.config, pools: i.pools };
  if (!nodeEligible(i.node, i.config)) return { phase: 'Excluded', routes: [], advertisements: [] };
  const bySvc = new Map<string, EndpointSliceInfo[]>();
  for (const sl of i.endpointSlices) {
    const k = `${sl.namespace}/${sl.serviceName}`;
    const list = bySvc.get(k);
    if (list) list.push(sl);
    else bySvc.set(k, [sl]);
  }
  const contributions = [clusterIPContribution(ctx), ...i.services.map((svc) => serviceContribution(ctx, svc, bySvc.get(serviceKey(svc)) ?? []))];
  return mergeNodeRoutes(ctx, contributions, i.cordonedSince, i.now);
}
