/**
 * The entry points the controller and the agent call (README "Service addresses over BGP (design)").
 * Everything here is pure: the callers own the informers, the work queue, the writes and the clock.
 *
 * Controller (leader only), one key "services" reconciled on any change of a Service, a
 * LoadBalancerPool or FabricConfig, after those informers have synced:
 *
 *   const r = planLoadBalancers({ config: fabricConfig.spec.services, pools, services, now });
 *   for (const p of r.servicePatches) SSA p.body on /api/v1/namespaces/{ns}/services/{name}/status
 *                                     (fieldManager podfabric-controller, force), then emit p.events;
 *   for (const p of r.poolStatuses)  SSA status of LoadBalancerPool p.name (skip when p.changed false);
 *                                     p.finalizer 'add'/'remove': merge-patch metadata.finalizers.
 *
 * Agent (every node), on any change of its Node, Services, EndpointSlices, LoadBalancerPools or
 * FabricConfig, and at result.nextWakeAt:
 *
 *   const r = planNodeServices({ node, config, pools, services, endpointSlices, previous, previousStatus, now });
 *   desired advertisements = pod CIDR advertisements (NodeFabric spec) ++ r.advertisements
 *     → diffBgp as today (also look up serviceRoutePrefixes(previousStatus) in listAdvertisements);
 *   NodeFabric status.services = r.status; Events: r.serviceEvents on the Services, r.phaseEvent on
 *   the NodeFabric; keep r.advertisements as `previous` for the next call; arm a timer at r.nextWakeAt.
 *
 *   const nat = planNat({ ipPools, config, lbPools });  → apply nat.table (nftables applier) when
 *   nat.enabled, else delete table inet podfabric-nat if present.
 */
import type { Condition } from '../api/common.js';
import type { IPPoolObj, LoadBalancerPoolObj } from '../api/kinds.js';
import { LB_POOL_FINALIZER, resolveServicesConfig, type NodeServicesStatus, type ServicesConfigInput } from '../api/services.js';
import { setConditions, type ConditionInput } from '../api/conditions.js';
import { stableStringify } from '../lib/stable.js';
import { allocateLoadBalancerAddresses, type PoolUsage, type ServiceDecision, type ServiceEvent } from './allocate.js';
import { nodeServiceAdvertisements, type NodeAdvertisements } from './advertise.js';
import { endpointSliceFromJsonOnce, nodeFromJson, serviceFromJson, serviceFromJsonOnce } from './model.js';
import { renderNatTable, type NatPlan } from './nat.js';
import { poolFromSpec } from './pools.js';
import { cordonedSinceFromStatus, phaseEvent, routeEvents, servicesStatus, type PhaseEvent, type RouteEvent } from './report.js';

export interface ServicePatch {
  namespace: string;
  name: string;
  /** Server-side apply body for the Service's status subresource: owns ingress and one condition. */
  body: {
    apiVersion: 'v1';
    kind: 'Service';
    metadata: { name: string; namespace: string };
    status: { loadBalancer: { ingress: Array<{ ip: string; ipMode: 'VIP' }> }; conditions: Condition[] };
  };
  events: ServiceEvent[];
}

export interface PoolStatusPatch {
  name: string;
  status: { observedGeneration?: number; addressesTotal: number; addressesAssigned: number; addressesFree: number; conditions: Condition[] };
  /** False when the stored status already says the same (no write needed). */
  changed: boolean;
  /** Finalizer podfabric.io/addresses-in-use to add (pool without it) or remove (deleted pool, no holder left). */
  finalizer: 'add' | 'remove' | null;
  events: Array<{ type: 'Normal' | 'Warning'; reason: string; message: string }>;
}

export interface LoadBalancerPlan {
  decisions: ServiceDecision[];
  /** Only the Services whose ingress or condition must be written. */
  servicePatches: ServicePatch[];
  poolStatuses: PoolStatusPatch[];
}

export function planLoadBalancers(i: { config: ServicesConfigInput | undefined; pools: readonly LoadBalancerPoolObj[]; services: readonly unknown[]; now: Date }): LoadBalancerPlan {
  const config = resolveServicesConfig(i.config);
  // A pool being deleted gives no new address (its finalizer holds it while Services keep theirs).
  const pools = i.pools.map((p) => ({ ...poolFromSpec(p.metadata.name, p.spec), ...(p.metadata.deletionTimestamp ? { disabled: true } : {}) }));
  const services = i.services.map(serviceFromJson).filter((s) => s.name !== '');
  const r = allocateLoadBalancerAddresses({ config, pools, services });
  const byKey = new Map(services.map((s) => [`${s.namespace}/${s.name}`, s]));
  const servicePatches = r.decisions
    .filter((d) => d.ingressChanged || d.conditionChanged)
    .map((d): ServicePatch => {
      const svc = byKey.get(`${d.namespace}/${d.name}`)!;
      const conditions = setConditions(svc.conditions.filter((c) => c.type === d.condition.type), [d.condition], d.generation, i.now);
      return {
        namespace: d.namespace,
        name: d.name,
        body: { apiVersion: 'v1', kind: 'Service', metadata: { name: d.name, namespace: d.namespace }, status: { loadBalancer: { ingress: d.ingress.map((ip) => ({ ip, ipMode: 'VIP' as const })) }, conditions } },
        events: d.events,
      };
    });
  return { decisions: r.decisions, servicePatches, poolStatuses: r.pools.map((u) => poolStatus(u, i.pools.find((p) => p.metadata.name === u.name)!, i.now)) };
}

/** Conditions equal ignoring lastTransitionTime and key order (a parsed status orders keys by schema). */
function sameConditionsAnyOrder(a: Condition[] | undefined, b: Condition[]): boolean {
  const strip = (cs: Condition[]) => stableStringify(cs.map(({ lastTransitionTime: _t, ...rest }) => rest).sort((x, y) => x.type.localeCompare(y.type)));
  return strip(a ?? []) === strip(b);
}

function poolStatus(u: PoolUsage, obj: LoadBalancerPoolObj, now: Date): PoolStatusPatch {
  const deleting = !!obj.metadata.deletionTimestamp;
  const held = (obj.metadata.finalizers ?? []).includes(LB_POOL_FINALIZER);
  const names = `${u.holders.slice(0, 10).join(', ')}${u.holders.length > 10 ? ` and ${u.holders.length - 10} more` : ''}`;
  const ready: ConditionInput = deleting
    ? u.holders.length
      ? { type: 'Ready', status: 'False', reason: 'DeletionBlocked', message: `${u.holders.length} Service(s) hold addresses of this pool: ${names}; delete them or change their type` }
      : { type: 'Ready', status: 'False', reason: 'Deleting', message: 'no Service holds an address of this pool' }
    : obj.spec.disabled
      ? { type: 'Ready', status: 'False', reason: 'Disabled', message: 'no new addresses; assigned ones are kept' }
      : { type: 'Ready', status: 'True', reason: 'Serving', message: `${u.free} of ${u.total} addresses free` };
  const updates: ConditionInput[] = [
    ready,
    u.exhausted
      ? { type: 'Exhausted', status: 'True', reason: 'NoFreeAddress', message: `${u.assigned} of ${u.total} addresses assigned; a Service went without` }
      : { type: 'Exhausted', status: 'False', reason: 'FreeAddresses', message: `${u.free} free` },
    u.overlapping.length
      ? { type: 'Overlapping', status: 'True', reason: 'SharedRange', message: `shares addresses with ${u.overlapping.join(', ')}: each address still goes to one Service` }
      : { type: 'Overlapping', status: 'False', reason: 'Disjoint', message: 'no other pool holds these addresses' },
  ];
  const conditions = setConditions(obj.status?.conditions, updates, obj.metadata.generation, now);
  const status = {
    ...(obj.metadata.generation !== undefined ? { observedGeneration: obj.metadata.generation } : {}),
    addressesTotal: u.total,
    addressesAssigned: u.assigned,
    addressesFree: u.free,
    conditions,
  };
  const old = obj.status;
  const changed =
    !old || old.addressesTotal !== u.total || old.addressesAssigned !== u.assigned || old.addressesFree !== u.free || old.observedGeneration !== status.observedGeneration || !sameConditionsAnyOrder(old.conditions, conditions);
  const wasExhausted = old?.conditions?.find((c) => c.type === 'Exhausted')?.status === 'True';
  const events = u.exhausted && !wasExhausted ? [{ type: 'Warning' as const, reason: 'PoolExhausted', message: updates[1]!.message }] : [];
  const finalizer = !deleting && !held ? 'add' : deleting && held && !u.holders.length ? 'remove' : null;
  return { name: u.name, status, changed, events, finalizer };
}

export interface NodeServicesPlan {
  /** Service routes in the Router's Advertisement shape: add them to the pod CIDR advertisements. */
  advertisements: NodeAdvertisements['advertisements'];
  /** For NodeFabric status.services. */
  status: NodeServicesStatus;
  /** Keep for the next call (Events are diffs against it). */
  result: NodeAdvertisements;
  nextWakeAt?: number;
  serviceEvents: RouteEvent[];
  phaseEvent: PhaseEvent | null;
}

export function planNodeServices(i: {
  node: unknown;
  config: ServicesConfigInput | undefined;
  pools: readonly LoadBalancerPoolObj[];
  services: readonly unknown[];
  endpointSlices: readonly unknown[];
  /** The previous call's result in this process; undefined after a (re)start: no route Events then. */
  previous?: NodeAdvertisements;
  /** The NodeFabric's status.services as stored (drain start survives agent restarts). */
  previousStatus?: NodeServicesStatus;
  now: number;
}): NodeServicesPlan {
  const node = nodeFromJson(i.node);
  const config = resolveServicesConfig(i.config);
  // This process's own record first: status.services.drainingSince is whole seconds, so re-reading it on
  // every sync would withdraw up to 1 s before the delay is over (measured by npm run bench -- services).
  const cordonedSince = i.previous?.cordonedSince ?? cordonedSinceFromStatus(i.previousStatus);
  const result = nodeServiceAdvertisements({
    node,
    config,
    pools: i.pools.map((p) => poolFromSpec(p.metadata.name, p.spec)),
    services: i.services.map(serviceFromJsonOnce),
    endpointSlices: i.endpointSlices.map(endpointSliceFromJsonOnce),
    ...(cordonedSince !== undefined ? { cordonedSince } : {}),
    now: i.now,
  });
  return {
    advertisements: result.advertisements,
    status: servicesStatus(result.phase, result.routes, result.cordonedSince),
    result,
    ...(result.nextWakeAt !== undefined ? { nextWakeAt: result.nextWakeAt } : {}),
    serviceEvents: i.previous ? routeEvents(node.name, i.previous.routes, result.routes, result.phase) : [],
    phaseEvent: phaseEvent(i.previous?.phase ?? i.previousStatus?.phase, result.phase, result.routes.length, config.drain.withdrawDelaySeconds),
  };
}

/** Prefixes the node may have advertised for Services (look them up in gobgpd besides the wanted ones). */
export function serviceRoutePrefixes(s: NodeServicesStatus | undefined): string[] {
  return (s?.routes ?? []).map((r) => r.prefix);
}

export function planNat(i: { ipPools: readonly IPPoolObj[]; config: ServicesConfigInput | undefined; lbPools: readonly LoadBalancerPoolObj[] }): NatPlan {
  return renderNatTable({
    pools: i.ipPools.map((p) => ({ cidr: p.spec.cidr, natOutgoing: p.spec.natOutgoing ?? false })),
    serviceCIDRs: resolveServicesConfig(i.config).clusterIP.cidrs,
    loadBalancerCIDRs: i.lbPools.flatMap((p) => p.spec.cidrs),
  });
}

export type { NodeAdvertisements } from './advertise.js';
