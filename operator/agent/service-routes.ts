/**
 * This node's Service routes (issue #14, README "Service addresses over BGP (design)"): the agent
 * computes them itself from its own Node, the Services, the EndpointSlices and the LoadBalancerPools
 * (the pure planNodeServices), and the sync adds them to what BgpApplier advertises. Any change of
 * those inputs kicks the agent's one "sync" key; the drain's withdraw time arms a timer that kicks it.
 *
 * Watch cost = kube-proxy's: the same label selector on Services and EndpointSlices (no headless
 * Services, no Services owned by another proxy). Route Events go on the Service (Local Services only,
 * decided in services/), the drain's phase Events on the NodeFabric.
 */
import { API_PATH as API } from '../api/common.js';
import { ROUTER_ID_ANNOTATION, type FabricConfigSpec } from '../api/fabricconfig.js';
import { parseObject, type LoadBalancerPoolObj } from '../api/kinds.js';
import { LoadBalancerPool, type NodeServicesStatus } from '../api/services.js';
import type { Advertisement } from '../gobgp/speaker.js';
import type { EventSink } from '../kube/events.js';
import { Informer, type KObj } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import type { Clock } from '../lib/clock.js';
import { stableStringify } from '../lib/stable.js';
import { planNodeServices, serviceRoutePrefixes, type NodeAdvertisements } from '../services/index.js';

/** kube-proxy's selector: Services (and their slices) that a node proxies. */
export const PROXIED = encodeURIComponent('!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name');

export interface ServiceRoutesPlan {
  /** Service routes to advertise next to the pod CIDRs. */
  advertisements: Advertisement[];
  /** Prefixes to look up in gobgpd (what the stored status says this node advertised: stale ones go). */
  lookup: string[];
  /** NodeFabric status.services. */
  status: NodeServicesStatus;
}

/** What the sync asks (a fake in unit tests). */
export interface ServiceRoutesSource {
  plan(config: FabricConfigSpec, stored: NodeServicesStatus | undefined): ServiceRoutesPlan | undefined;
}

export class ServiceRoutes implements ServiceRoutesSource {
  private readonly services: Informer<KObj>;
  private readonly slices: Informer<KObj>;
  private readonly node: Informer<KObj>;
  private readonly pools: Informer<LoadBalancerPoolObj & KObj, LoadBalancerPoolObj>;
  private previous: NodeAdvertisements | undefined;
  private wake: NodeJS.Timeout | undefined;
  private wakeAt: number | undefined;

  constructor(
    rest: KubeRest,
    private readonly nodeName: string,
    private readonly kick: () => void,
    private readonly clock: Clock,
    private readonly events?: { onService: EventSink; onFabric: (type: 'Normal' | 'Warning', reason: string, message: string) => void },
  ) {
    const on = { onAdd: () => kick(), onUpdate: () => kick(), onDelete: () => kick() };
    this.services = new Informer<KObj>(rest, `/api/v1/services?labelSelector=${PROXIED}`, on, { name: 'services' });
    this.slices = new Informer<KObj>(rest, `/apis/discovery.k8s.io/v1/endpointslices?labelSelector=${PROXIED}`, on, { name: 'endpointslices' });
    // Only what the plans read of the Node (cordon, labels, addresses; the router-id annotation for the
    // sessions, agent.ts): heartbeats change none of it. The agent's one Node watch serves both.
    const nodeInputs = (n: KObj) => stableStringify([n.metadata.labels, (n.metadata.annotations as Record<string, string> | undefined)?.[ROUTER_ID_ANNOTATION], n.spec, (n.status as { addresses?: unknown } | undefined)?.addresses]);
    this.node = new Informer<KObj>(rest, `/api/v1/nodes?fieldSelector=${encodeURIComponent(`metadata.name=${nodeName}`)}`, { onAdd: () => kick(), onUpdate: (o, n) => nodeInputs(o) !== nodeInputs(n) && kick(), onDelete: () => kick() }, { name: 'node' });
    this.pools = new Informer(rest, `${API}/loadbalancerpools`, on, { decode: (o) => parseObject(LoadBalancerPool, o) });
  }

  get informers(): Array<Informer<KObj> | Informer<LoadBalancerPoolObj & KObj, LoadBalancerPoolObj>> {
    return [this.services, this.slices, this.node, this.pools];
  }

  start(): Promise<void> {
    for (const i of this.informers) i.start();
    return Promise.all(this.informers.map((i) => i.waitForSync())).then(() => undefined);
  }

  stop(): void {
    if (this.wake) clearTimeout(this.wake);
    for (const i of this.informers) i.stop();
  }

  /** This node's Node object: undefined until the watch has synced, null when there is none. */
  nodeObject(): KObj | null | undefined {
    if (!this.node.hasSynced()) return undefined;
    return this.node.get(this.nodeName) ?? null;
  }

  /** The LoadBalancerPools that decode (natOutgoing leaves their addresses alone too); undefined until synced. */
  loadBalancerPools(): LoadBalancerPoolObj[] | undefined {
    if (!this.pools.hasSynced()) return undefined;
    const pools: LoadBalancerPoolObj[] = [];
    for (const p of this.pools.list()) {
      const d = this.pools.decoded(p.metadata.name!);
      if (d?.ok) pools.push(d.value);
    }
    return pools;
  }

  plan(config: FabricConfigSpec, stored: NodeServicesStatus | undefined): ServiceRoutesPlan | undefined {
    if (!this.informers.every((i) => i.hasSynced())) return undefined;
    const node = this.node.get(this.nodeName);
    if (!node) return undefined;
    const pools = this.loadBalancerPools()!;
    const now = this.clock.now();
    const r = planNodeServices({
      node,
      config: config.services,
      pools,
      services: this.services.list(),
      endpointSlices: this.slices.list(),
      ...(this.previous ? { previous: this.previous } : {}),
      ...(stored ? { previousStatus: stored } : {}),
      now,
    });
    this.previous = r.result;
    for (const e of r.serviceEvents) {
      const [namespace, name] = e.service.split('/') as [string, string];
      const uid = this.services.get(e.service)?.metadata.uid;
      this.events?.onService.emit({ apiVersion: 'v1', kind: 'Service', namespace, name, ...(uid ? { uid } : {}) }, e.type, e.reason, e.message);
    }
    if (r.phaseEvent) this.events?.onFabric(r.phaseEvent.type, r.phaseEvent.reason, r.phaseEvent.message);
    this.armWake(r.nextWakeAt, now);
    return { advertisements: r.advertisements.map((a) => ({ prefix: a.prefix, nextHop: a.nextHop, communities: [...a.communities] })), lookup: serviceRoutePrefixes(stored), status: r.status };
  }

  /** The drain's withdraw time: sync then, even if nothing else happens. */
  private armWake(at: number | undefined, now: number): void {
    if (at === this.wakeAt) return;
    if (this.wake) clearTimeout(this.wake);
    this.wake = undefined;
    this.wakeAt = at;
    if (at === undefined) return;
    this.wake = setTimeout(() => {
      this.wakeAt = undefined;
      this.kick();
    }, Math.max(0, at - now) + 5);
  }
}
