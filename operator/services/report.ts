/**
 * What the agent tells the world about its Service routes: Events (on the Services, on its NodeFabric)
 * from one evaluation to the next, and NodeFabric status.services. Pure.
 *
 * Events on a Service come only from routes of Local Services (a handful of nodes each: those with an
 * endpoint). A Cluster Service is advertised by every eligible node; one Event per node would be 5,000
 * Events per Service change, so those changes show in NodeFabric status and metrics instead.
 */
import type { NodeServicesStatus } from '../api/services.js';
import type { ServicePhase, ServiceRoute } from './advertise.js';

export interface RouteEvent {
  /** The Service (namespace/name) the Event is about. */
  service: string;
  type: 'Normal' | 'Warning';
  reason: 'Advertised' | 'Withdrawn';
  message: string;
}

export interface PhaseEvent {
  type: 'Normal' | 'Warning';
  reason: 'ServiceDrainStarted' | 'ServiceRoutesWithdrawn' | 'ServiceRoutesRestored' | 'ServiceRoutesExcluded';
  message: string;
}

const WHY_GONE: Record<ServicePhase, string> = {
  Active: 'no ready local endpoint',
  Draining: 'no ready local endpoint',
  Drained: 'node cordoned, drain delay over',
  Excluded: 'node excluded from Service advertisement',
};

export function routeEvents(node: string, prev: readonly ServiceRoute[], next: readonly ServiceRoute[], phase: ServicePhase): RouteEvent[] {
  const out: RouteEvent[] = [];
  const pairs = (rs: readonly ServiceRoute[]) => new Set(rs.filter((r) => r.local).flatMap((r) => r.services.map((s) => `${s}\u0000${r.prefix}`)));
  const before = pairs(prev);
  const after = pairs(next);
  for (const k of [...after].sort()) {
    if (before.has(k)) continue;
    const [service, prefix] = k.split('\u0000') as [string, string];
    out.push({ service, type: 'Normal', reason: 'Advertised', message: `node ${node} advertises ${prefix} (ready local endpoint)` });
  }
  for (const k of [...before].sort()) {
    if (after.has(k)) continue;
    const [service, prefix] = k.split('\u0000') as [string, string];
    out.push({ service, type: 'Normal', reason: 'Withdrawn', message: `node ${node} withdrew ${prefix} (${WHY_GONE[phase]})` });
  }
  return out;
}

/** Events on the node's NodeFabric when its Service phase changes. */
export function phaseEvent(prev: ServicePhase | undefined, next: ServicePhase, routes: number, withdrawDelaySeconds: number): PhaseEvent | null {
  if (prev === next) return null;
  switch (next) {
    case 'Draining':
      return { type: 'Normal', reason: 'ServiceDrainStarted', message: `node cordoned: ${routes} Service route(s) re-advertised with GRACEFUL_SHUTDOWN (65535:0), withdrawn in ${withdrawDelaySeconds}s` };
    case 'Drained':
      return { type: 'Normal', reason: 'ServiceRoutesWithdrawn', message: 'node cordoned: Service routes withdrawn (pod CIDRs still advertised)' };
    case 'Excluded':
      return { type: 'Normal', reason: 'ServiceRoutesExcluded', message: 'node may not advertise Services (label node.kubernetes.io/exclude-from-external-load-balancers or spec.services.nodeSelector)' };
    case 'Active':
      return prev === undefined ? null : { type: 'Normal', reason: 'ServiceRoutesRestored', message: `Service routes advertised again (${routes})` };
  }
}

export const MAX_STATUS_ROUTES = 4096;

/** NodeFabric status.services (routes capped at 4096; `advertised` is always the full count). */
export function servicesStatus(phase: ServicePhase, routes: readonly ServiceRoute[], cordonedSince?: number): NodeServicesStatus {
  return {
    phase,
    ...(cordonedSince !== undefined ? { drainingSince: new Date(cordonedSince).toISOString().replace(/\.\d{3}Z$/, 'Z') } : {}),
    advertised: routes.length,
    routes: routes.slice(0, MAX_STATUS_ROUTES).map((r) => ({
      prefix: r.prefix,
      class: r.class,
      services: r.services.slice(0, 64),
      ...(r.communities.length ? { communities: r.communities } : {}),
    })),
  };
}

/** status.services.drainingSince back to ms epoch (undefined when absent or unreadable). */
export function cordonedSinceFromStatus(s: NodeServicesStatus | undefined): number | undefined {
  const t = s?.drainingSince ? Date.parse(s.drainingSince) : NaN;
  return Number.isFinite(t) ? t : undefined;
}
