/**
 * The few fields of core/v1 Service, discovery/v1 EndpointSlice and core/v1 Node that Service
 * advertisement needs, read tolerantly from the apiserver's JSON (a malformed field is dropped, never
 * a crash). Pure: no I/O.
 */
import type { Condition } from '../api/common.js';
import { normalizeIP } from '../lib/ip.js';

export type IPFamilyName = 'IPv4' | 'IPv6';

export interface ServicePort {
  protocol: string;
  port: number;
}

export interface ServiceInfo {
  namespace: string;
  name: string;
  uid?: string;
  generation?: number;
  /** RFC 3339; orders Services (older first) for deterministic allocation. */
  creationTimestamp?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  type: string;
  loadBalancerClass?: string;
  /** Deprecated core field, honoured as a request when the annotation is absent. */
  loadBalancerIP?: string;
  clusterIPs: string[];
  externalIPs: string[];
  ipFamilies: IPFamilyName[];
  ipFamilyPolicy?: string;
  externalTrafficPolicy: 'Cluster' | 'Local';
  selector?: Record<string, string>;
  ports: ServicePort[];
  /** status.loadBalancer.ingress[].ip (canonical text). */
  ingressIPs: string[];
  conditions: Condition[];
}

export interface EndpointInfo {
  nodeName?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

export interface EndpointSliceInfo {
  namespace: string;
  /** Label kubernetes.io/service-name. */
  serviceName: string;
  addressType: string;
  endpoints: EndpointInfo[];
}

export interface NodeInfo {
  name: string;
  labels: Record<string, string>;
  unschedulable: boolean;
  /** InternalIPs (canonical), used as next hops. */
  addresses: string[];
}

export const serviceKey = (s: { namespace: string; name: string }): string => `${s.namespace}/${s.name}`;

type J = Record<string, unknown>;
const obj = (v: unknown): J => (v && typeof v === 'object' && !Array.isArray(v) ? (v as J) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const strMap = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(obj(v)).filter((e): e is [string, string] => typeof e[1] === 'string'));
const ips = (v: unknown): string[] => arr(v).map((x) => (typeof x === 'string' ? normalizeIP(x) : null)).filter((x): x is string => x !== null);

export function serviceFromJson(raw: unknown): ServiceInfo {
  const o = obj(raw);
  const md = obj(o.metadata);
  const spec = obj(o.spec);
  const status = obj(o.status);
  const clusterIPs = ips(arr(spec.clusterIPs).length ? spec.clusterIPs : [spec.clusterIP]);
  const fams = arr(spec.ipFamilies).filter((f): f is IPFamilyName => f === 'IPv4' || f === 'IPv6');
  return {
    namespace: str(md.namespace) ?? 'default',
    name: str(md.name) ?? '',
    ...(str(md.uid) ? { uid: str(md.uid) } : {}),
    ...(typeof md.generation === 'number' ? { generation: md.generation } : {}),
    ...(str(md.creationTimestamp) ? { creationTimestamp: str(md.creationTimestamp) } : {}),
    labels: strMap(md.labels),
    annotations: strMap(md.annotations),
    type: str(spec.type) ?? 'ClusterIP',
    ...(str(spec.loadBalancerClass) ? { loadBalancerClass: str(spec.loadBalancerClass) } : {}),
    ...(str(spec.loadBalancerIP) ? { loadBalancerIP: str(spec.loadBalancerIP) } : {}),
    clusterIPs,
    externalIPs: ips(spec.externalIPs),
    ipFamilies: fams.length ? fams : clusterIPs.length ? [...new Set(clusterIPs.map((ip): IPFamilyName => (ip.includes(':') ? 'IPv6' : 'IPv4')))] : ['IPv4'],
    ...(str(spec.ipFamilyPolicy) ? { ipFamilyPolicy: str(spec.ipFamilyPolicy) } : {}),
    externalTrafficPolicy: spec.externalTrafficPolicy === 'Local' ? 'Local' : 'Cluster',
    ...(spec.selector && typeof spec.selector === 'object' ? { selector: strMap(spec.selector) } : {}),
    ports: arr(spec.ports)
      .map(obj)
      .filter((p) => typeof p.port === 'number')
      .map((p) => ({ protocol: str(p.protocol) ?? 'TCP', port: p.port as number })),
    ingressIPs: ips(arr(obj(status.loadBalancer).ingress).map((i) => obj(i).ip)),
    conditions: arr(status.conditions).map(obj).filter((c) => typeof c.type === 'string') as unknown as Condition[],
  };
}

export function endpointSliceFromJson(raw: unknown): EndpointSliceInfo {
  const o = obj(raw);
  const md = obj(o.metadata);
  return {
    namespace: str(md.namespace) ?? 'default',
    serviceName: strMap(md.labels)['kubernetes.io/service-name'] ?? '',
    addressType: str(o.addressType) ?? 'IPv4',
    endpoints: arr(o.endpoints).map((e) => {
      const ep = obj(e);
      const c = obj(ep.conditions);
      // API: a nil ready means ready, a nil serving means "same as ready", a nil terminating means not.
      const terminating = c.terminating === true;
      const ready = c.ready !== false && !terminating;
      return {
        ...(str(ep.nodeName) ? { nodeName: str(ep.nodeName) } : {}),
        ready,
        serving: typeof c.serving === 'boolean' ? c.serving : ready,
        terminating,
      };
    }),
  };
}

export function nodeFromJson(raw: unknown): NodeInfo {
  const o = obj(raw);
  const md = obj(o.metadata);
  const spec = obj(o.spec);
  return {
    name: str(md.name) ?? '',
    labels: strMap(md.labels),
    unschedulable: spec.unschedulable === true,
    addresses: arr(obj(o.status).addresses)
      .map(obj)
      .filter((a) => a.type === 'InternalIP')
      .map((a) => (typeof a.address === 'string' ? normalizeIP(a.address) : null))
      .filter((x): x is string => x !== null),
  };
}

export const familyOf = (ip: string): IPFamilyName => (ip.includes(':') ? 'IPv6' : 'IPv4');

/**
 * The parse of each raw object, made once: informers replace an object on every change and never
 * change one in place, so an object's identity stands for its version. Every agent sync plans all
 * Services; parsing them again each time was most of its cost (README, "Who computes what").
 */
function parsedOnce<T>(parse: (raw: unknown) => T): (raw: unknown) => T {
  const memo = new WeakMap<object, T>();
  return (raw) => {
    if (typeof raw !== 'object' || raw === null) return parse(raw);
    let v = memo.get(raw);
    if (v === undefined) {
      v = parse(raw);
      memo.set(raw, v);
    }
    return v;
  };
}

export const serviceFromJsonOnce = parsedOnce(serviceFromJson);
export const endpointSliceFromJsonOnce = parsedOnce(endpointSliceFromJson);
