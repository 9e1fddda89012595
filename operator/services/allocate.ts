/**
 * LoadBalancer address allocation: Services + LoadBalancerPools → each served Service's
 * status.loadBalancer.ingress, its condition and the Events to record. Pure and deterministic; the
 * record is the Services' own statuses, so a new leader rebuilds everything from one list.
 *
 * Rules (README "Service addresses over BGP"):
 * - Only Services podfabric serves (requests.ts `served`); a Service that stopped being type
 *   LoadBalancer gets its podfabric addresses released. Other classes are never touched.
 * - Existing addresses are claimed first, older Services first (creationTimestamp, then
 *   namespace/name), and never moved: not by a pool's selector, autoAssign or disabled change, nor when
 *   no pool holds the address any more (condition False, AddressOutsidePools: it is not advertised).
 *   One address per family; an address of a family the Service no longer has is released.
 * - Two Services holding one address without being allowed to share it: the older keeps it, the
 *   younger loses it (Warning AddressConflict) and gets another.
 * - A requested address (annotation podfabric.io/load-balancer-ips, else spec.loadBalancerIP) must lie
 *   in a pool that serves the Service and is not disabled, and be free or shareable. A changed request
 *   replaces the current address only once the requested one is obtained; until then the current one
 *   stays (condition False says why).
 * - Otherwise: share an address with a compatible Service of the same sharing key when one exists,
 *   else the lowest free address of the first pool (by name) that auto-assigns, is not disabled,
 *   serves the Service (annotation podfabric.io/load-balancer-pool restricts to one pool) and has the
 *   family. RequireDualStack gets both families or no new address.
 */
import type { ConditionInput } from '../api/conditions.js';
import { LB_CONDITION, LB_POOL_ANNOTATION, LB_SHARING_ANNOTATION, type ServicesConfig } from '../api/services.js';
import { parseIP, type Family } from '../lib/ip.js';
import { familyOf, serviceKey, type IPFamilyName, type ServiceInfo } from './model.js';
import { UsedAddresses, overlappingPools, poolCapacity, poolContains, poolHasFamily, poolOf, poolServes, type PoolInfo } from './pools.js';
import { classMatches, requestedAddresses, served, sharingConflict } from './requests.js';

export interface ServiceEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface ServiceDecision {
  namespace: string;
  name: string;
  uid?: string;
  generation?: number;
  /** The whole desired status.loadBalancer.ingress, as IPs, primary family first. */
  ingress: string[];
  /** ingress differs from the Service's current status: write status.loadBalancer. */
  ingressChanged: boolean;
  /** The podfabric.io/LoadBalancerAddress condition to set. */
  condition: ConditionInput;
  /** condition differs (status, reason or message) from the Service's current one. */
  conditionChanged: boolean;
  /** Address changes and conflicts always; other failures only when the condition changes (a resync repeats nothing). */
  events: ServiceEvent[];
}

export interface PoolUsage {
  name: string;
  total: number;
  assigned: number;
  free: number;
  /** No free address, or a Service that could only be served by this pool went without. */
  exhausted: boolean;
  overlapping: string[];
  /** namespace/name of the Services podfabric gave addresses of this pool (sorted): they hold its deletion. */
  holders: string[];
}

export interface AllocationInput {
  config: Pick<ServicesConfig, 'loadBalancerClass' | 'handleUnclassed'>;
  pools: readonly PoolInfo[];
  services: readonly ServiceInfo[];
}

export interface AllocationResult {
  /** One per Service podfabric serves or releases, in allocation order. Others are absent. */
  decisions: ServiceDecision[];
  pools: PoolUsage[];
}

const FAMILY: Record<IPFamilyName, Family> = { IPv4: 4, IPv6: 6 };

interface Problem {
  reason: string;
  message: string;
}

function compareIP(a: string, b: string): number {
  const x = parseIP(a)!;
  const y = parseIP(b)!;
  if (x.family !== y.family) return x.family - y.family;
  return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

function byAge(a: ServiceInfo, b: ServiceInfo): number {
  const ta = a.creationTimestamp ?? '';
  const tb = b.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return serviceKey(a).localeCompare(serviceKey(b));
}

/** Address → Services holding it, in claim order; the addresses in use; addresses per sharing key. */
class Claims {
  private owners = new Map<string, ServiceInfo[]>();
  /** Addresses in the status of Services of another implementation: never handed out, never shared. */
  private foreign = new Map<string, ServiceInfo>();
  private byKey = new Map<string, Set<string>>();
  readonly used = new UsedAddresses();

  addForeign(ip: string, svc: ServiceInfo): void {
    if (this.foreign.has(ip)) return;
    this.foreign.set(ip, svc);
    this.used.add(ip);
  }
  holders(ip: string): ServiceInfo[] {
    return this.owners.get(ip) ?? [];
  }
  add(ip: string, svc: ServiceInfo): void {
    this.owners.set(ip, [...this.holders(ip), svc]);
    this.used.add(ip);
    const k = svc.annotations[LB_SHARING_ANNOTATION];
    if (k) this.byKey.set(k, (this.byKey.get(k) ?? new Set()).add(ip));
  }
  remove(ip: string, svc: ServiceInfo): void {
    const rest = this.holders(ip).filter((s) => s !== svc);
    if (rest.length) this.owners.set(ip, rest);
    else {
      this.owners.delete(ip);
      if (!this.foreign.has(ip)) this.used.remove(ip);
    }
    const k = svc.annotations[LB_SHARING_ANNOTATION];
    if (k && !rest.some((s) => s.annotations[LB_SHARING_ANNOTATION] === k)) this.byKey.get(k)?.delete(ip);
  }
  /** Every address in use (podfabric's and foreign). */
  all(): string[] {
    return [...new Set([...this.owners.keys(), ...this.foreign.keys()])];
  }
  /** Addresses held by Services carrying this sharing key, lowest first. */
  sharedUnder(key: string | undefined): string[] {
    return key ? [...(this.byKey.get(key) ?? [])].sort(compareIP) : [];
  }
  /** Why svc may not take ip (null: free, or shareable with every holder). */
  blocker(ip: string, svc: ServiceInfo): string | null {
    const f = this.foreign.get(ip);
    if (f) return `${ip} is used by ${serviceKey(f)}, which another load-balancer implementation serves`;
    for (const h of this.holders(ip)) {
      if (h === svc) continue;
      const why = sharingConflict(svc, h);
      if (why) return `${ip} is assigned to ${serviceKey(h)} (${why})`;
    }
    return null;
  }
}

export function allocateLoadBalancerAddresses(input: AllocationInput): AllocationResult {
  const { config, pools } = input;
  const poolsByName = [...pools].sort((a, b) => a.name.localeCompare(b.name));
  const mine = input.services.filter((s) => served(config, s)).sort(byAge);
  const claims = new Claims();
  const chosen = new Map<ServiceInfo, Map<IPFamilyName, string>>();
  const problems = new Map<ServiceInfo, Problem[]>();
  const events = new Map<ServiceInfo, ServiceEvent[]>();
  const starved = new Set<string>();
  const problem = (s: ServiceInfo, reason: string, message: string) => problems.set(s, [...(problems.get(s) ?? []), { reason, message }]);
  const event = (s: ServiceInfo, e: ServiceEvent) => events.set(s, [...(events.get(s) ?? []), e]);

  for (const svc of input.services) {
    if (classMatches(config, svc)) continue;
    for (const ip of svc.ingressIPs) if (poolOf(pools, ip)) claims.addForeign(ip, svc);
  }

  // 1. Claim what the statuses already hold, oldest Service first.
  for (const svc of mine) {
    const have = new Map<IPFamilyName, string>();
    for (const ip of svc.ingressIPs) {
      const fam = familyOf(ip);
      if (!svc.ipFamilies.includes(fam) || have.has(fam)) continue; // released below (not in the desired ingress)
      if (poolOf(pools, ip)) {
        const why = claims.blocker(ip, svc);
        if (why) {
          event(svc, { type: 'Warning', reason: 'AddressConflict', message: `${why}; the older Service keeps it, this one gets another` });
          continue;
        }
        claims.add(ip, svc);
      }
      have.set(fam, ip);
    }
    chosen.set(svc, have);
  }

  // 2. Give every Service what it lacks (or what it newly requests), in the same order.
  for (const svc of mine) {
    const have = chosen.get(svc)!;
    const req = requestedAddresses(svc);
    if (!req.ok) problem(svc, 'InvalidRequest', req.message);
    const onlyPool = svc.annotations[LB_POOL_ANNOTATION];
    if (onlyPool !== undefined && !pools.some((p) => p.name === onlyPool)) problem(svc, 'PoolNotFound', `${LB_POOL_ANNOTATION}: no LoadBalancerPool named ${onlyPool}`);
    const tentative = new Map<IPFamilyName, string>();
    let failed = false;
    for (const fam of svc.ipFamilies) {
      const current = have.get(fam);
      const wanted = req.ok ? req.byFamily.get(fam) : undefined;
      if (current && (wanted === undefined || wanted === current)) continue;
      if (!current && !req.ok) {
        failed = true;
        continue;
      }
      const got = wanted !== undefined ? takeRequested(svc, wanted) : autoAssign(svc, fam, onlyPool);
      if (got) tentative.set(fam, got);
      else if (!current) failed = true;
    }
    if (failed && svc.ipFamilyPolicy === 'RequireDualStack') {
      if (tentative.size) problem(svc, 'DualStackIncomplete', 'RequireDualStack: no new address until every family can be served');
      continue;
    }
    for (const [fam, ip] of tentative) {
      const old = have.get(fam);
      if (old) claims.remove(old, svc);
      claims.add(ip, svc);
      have.set(fam, ip);
    }
  }

  function takeRequested(svc: ServiceInfo, ip: string): string | null {
    const pool = poolOf(pools, ip);
    if (!pool) return (problem(svc, 'AddressNotInPool', `requested ${ip} is in no LoadBalancerPool`), null);
    if (pool.disabled) return (problem(svc, 'PoolDisabled', `requested ${ip} is in pool ${pool.name}, which is disabled`), null);
    if (!poolServes(pool, svc)) return (problem(svc, 'PoolNotAllowed', `requested ${ip} is in pool ${pool.name}, which does not serve this Service (namespaces/serviceSelector)`), null);
    const why = claims.blocker(ip, svc);
    if (why) return (problem(svc, 'AddressInUse', `requested ${why}`), null);
    return ip;
  }

  function autoAssign(svc: ServiceInfo, fam: IPFamilyName, onlyPool: string | undefined): string | null {
    const f = FAMILY[fam];
    const candidates = poolsByName.filter(
      (p) => (onlyPool === undefined ? p.autoAssign : p.name === onlyPool) && !p.disabled && poolHasFamily(p, f) && poolServes(p, svc),
    );
    if (!candidates.length) {
      if (onlyPool === undefined || pools.some((p) => p.name === onlyPool)) {
        problem(svc, 'NoPool', `no enabled${onlyPool === undefined ? ', auto-assigning' : ''} LoadBalancerPool${onlyPool ? ` ${onlyPool}` : ''} with ${fam} addresses serves this Service`);
      }
      return null;
    }
    const shared = shareableAddress(svc, f, candidates);
    if (shared) return shared;
    for (const p of candidates) {
      const ip = claims.used.lowestFree(p, f);
      if (ip) return ip;
    }
    for (const p of candidates) starved.add(p.name);
    problem(svc, 'PoolExhausted', `no free ${fam} address in pool${candidates.length > 1 ? 's' : ''} ${candidates.map((p) => p.name).join(', ')}`);
    return null;
  }

  function shareableAddress(svc: ServiceInfo, f: Family, candidates: PoolInfo[]): string | null {
    const ips = claims.sharedUnder(svc.annotations[LB_SHARING_ANNOTATION]).filter((ip) => parseIP(ip)?.family === f && candidates.some((p) => poolContains(p, ip)));
    return ips.find((ip) => claims.holders(ip).every((h) => !sharingConflict(svc, h))) ?? null;
  }

  // 3. Decisions: served Services, then released ones (no longer type LoadBalancer).
  const decisions = mine.map((svc) => decide(svc, chosen.get(svc)!, problems.get(svc) ?? [], events.get(svc) ?? [], pools, claims));
  for (const svc of input.services) {
    if (served(config, svc) || !classMatches(config, svc)) continue;
    const ours = svc.ingressIPs.filter((ip) => poolOf(pools, ip));
    if (!ours.length && !svc.conditions.some((c) => c.type === LB_CONDITION)) continue;
    decisions.push(release(svc, ours));
  }

  const used = claims.all();
  const usage = poolsByName.map((p): PoolUsage => {
    const total = poolCapacity(p);
    const assigned = used.filter((ip) => poolContains(p, ip)).length;
    const free = Math.max(0, total - assigned);
    const holders = [...new Set(used.filter((ip) => poolContains(p, ip)).flatMap((ip) => claims.holders(ip).map(serviceKey)))].sort();
    return { name: p.name, total, assigned, free, exhausted: free === 0 || starved.has(p.name), overlapping: overlappingPools(p, pools), holders };
  });
  return { decisions, pools: usage };
}

function decide(svc: ServiceInfo, have: Map<IPFamilyName, string>, problems: Problem[], events: ServiceEvent[], pools: readonly PoolInfo[], claims: Claims): ServiceDecision {
  const ingress = svc.ipFamilies.map((f) => have.get(f)).filter((x): x is string => x !== undefined);
  const all = [...problems];
  const outside = ingress.filter((ip) => !poolOf(pools, ip));
  if (outside.length) all.push({ reason: 'AddressOutsidePools', message: `${outside.join(', ')} is in no LoadBalancerPool: kept, but not advertised` });
  const missing = svc.ipFamilies.filter((f) => !have.has(f));
  const describe = (ip: string) => {
    const pool = poolOf(pools, ip);
    const others = claims.holders(ip).filter((h) => h !== svc).map(serviceKey);
    return `${ip}${pool ? ` (pool ${pool.name})` : ''}${others.length ? ` shared with ${others.join(', ')}` : ''}`;
  };
  let condition: ConditionInput;
  if (!all.length && !missing.length) {
    condition = { type: LB_CONDITION, status: 'True', reason: 'Assigned', message: ingress.map(describe).join('; ') };
  } else {
    const first = all[0] ?? { reason: 'PoolExhausted', message: `no ${missing.join(', ')} address` };
    const kept = ingress.length ? ` Assigned: ${ingress.map(describe).join('; ')}.` : '';
    condition = { type: LB_CONDITION, status: 'False', reason: first.reason, message: `${all.map((p) => p.message).join('; ') || first.message}.${kept}` };
  }
  return finish(svc, ingress, condition, events);
}

function release(svc: ServiceInfo, ours: string[]): ServiceDecision {
  const ingress = svc.ingressIPs.filter((ip) => !ours.includes(ip));
  const condition: ConditionInput = { type: LB_CONDITION, status: 'False', reason: 'NotLoadBalancer', message: `type is ${svc.type}: no LoadBalancer address` };
  return finish(svc, ingress, condition, []);
}

function finish(svc: ServiceInfo, ingress: string[], condition: ConditionInput, events: ServiceEvent[]): ServiceDecision {
  const before = new Set(svc.ingressIPs);
  const after = new Set(ingress);
  const evs: ServiceEvent[] = [];
  for (const ip of ingress) if (!before.has(ip)) evs.push({ type: 'Normal', reason: 'AddressAssigned', message: `assigned ${ip}` });
  for (const ip of svc.ingressIPs) if (!after.has(ip)) evs.push({ type: 'Normal', reason: 'AddressReleased', message: `released ${ip}` });
  const prev = svc.conditions.find((c) => c.type === LB_CONDITION);
  const conditionChanged = !prev || prev.status !== condition.status || prev.reason !== condition.reason || prev.message !== condition.message;
  if (conditionChanged && condition.status === 'False' && condition.reason !== 'NotLoadBalancer') {
    evs.push({ type: 'Warning', reason: condition.reason, message: condition.message });
  }
  return {
    namespace: svc.namespace,
    name: svc.name,
    ...(svc.uid ? { uid: svc.uid } : {}),
    ...(svc.generation !== undefined ? { generation: svc.generation } : {}),
    ingress,
    ingressChanged: ingress.join(',') !== svc.ingressIPs.join(','),
    condition,
    conditionChanged,
    events: [...events, ...evs],
  };
}
