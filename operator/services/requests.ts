/**
 * What a Service asks of the LoadBalancer allocator: whether podfabric serves it, which addresses it
 * requests, and with which Services it may share one. Pure.
 */
import { LB_IPS_ANNOTATION, LB_SHARING_ANNOTATION, type ServicesConfig } from '../api/services.js';
import { normalizeIP } from '../lib/ip.js';
import { stableStringify } from '../lib/stable.js';
import { familyOf, type IPFamilyName, type ServiceInfo } from './model.js';

/**
 * podfabric serves a Service when it is type LoadBalancer and its loadBalancerClass is the configured
 * one, or it has no class and handleUnclassed is on. Every other Service is left alone.
 */
export function classMatches(cfg: Pick<ServicesConfig, 'loadBalancerClass' | 'handleUnclassed'>, svc: ServiceInfo): boolean {
  return svc.loadBalancerClass === undefined ? cfg.handleUnclassed : svc.loadBalancerClass === cfg.loadBalancerClass;
}

export function served(cfg: Pick<ServicesConfig, 'loadBalancerClass' | 'handleUnclassed'>, svc: ServiceInfo): boolean {
  return svc.type === 'LoadBalancer' && classMatches(cfg, svc);
}

export type Requested = { ok: true; byFamily: Map<IPFamilyName, string> } | { ok: false; message: string };

/**
 * The addresses a Service requests: annotation podfabric.io/load-balancer-ips (comma-separated, at most
 * one per family), else spec.loadBalancerIP. Each must be of one of the Service's ipFamilies.
 */
export function requestedAddresses(svc: ServiceInfo): Requested {
  const text = svc.annotations[LB_IPS_ANNOTATION] ?? svc.loadBalancerIP;
  const byFamily = new Map<IPFamilyName, string>();
  if (text === undefined || text.trim() === '') return { ok: true, byFamily };
  const source = svc.annotations[LB_IPS_ANNOTATION] !== undefined ? `annotation ${LB_IPS_ANNOTATION}` : 'spec.loadBalancerIP';
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const ip = normalizeIP(part);
    if (!ip) return { ok: false, message: `${source}: "${part}" is not an IP address` };
    const fam = familyOf(ip);
    if (byFamily.has(fam)) return { ok: false, message: `${source}: more than one ${fam} address` };
    if (!svc.ipFamilies.includes(fam)) return { ok: false, message: `${source}: ${ip} is ${fam} but the Service's ipFamilies are ${svc.ipFamilies.join(',')}` };
    byFamily.set(fam, ip);
  }
  return { ok: true, byFamily };
}

/**
 * Two Services may share an address when both carry the same podfabric.io/allow-shared-ip value, no
 * protocol/port pair is used by both, and their traffic policies agree: both Cluster, or both Local
 * with the same non-empty pod selector (so the nodes advertising the address for one have endpoints of
 * the other too). Returns null when they may, else why not.
 */
export function sharingConflict(a: ServiceInfo, b: ServiceInfo): string | null {
  const ka = a.annotations[LB_SHARING_ANNOTATION];
  const kb = b.annotations[LB_SHARING_ANNOTATION];
  if (!ka || ka !== kb) return `${a.namespace}/${a.name} and ${b.namespace}/${b.name} do not carry the same ${LB_SHARING_ANNOTATION}`;
  const ports = new Set(a.ports.map((p) => `${p.protocol}/${p.port}`));
  const clash = b.ports.find((p) => ports.has(`${p.protocol}/${p.port}`));
  if (clash) return `both use ${clash.protocol} port ${clash.port}`;
  if (a.externalTrafficPolicy !== b.externalTrafficPolicy) return 'their externalTrafficPolicy differ';
  if (a.externalTrafficPolicy === 'Local') {
    const sa = stableStringify(a.selector ?? {});
    if (sa === '{}' || sa !== stableStringify(b.selector ?? {})) return 'externalTrafficPolicy Local needs the same pod selector on both';
  }
  return null;
}
