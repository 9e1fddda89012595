/**
 * LoadBalancer addresses (issue #14): one key, "services", reconciled on any change of a Service, a
 * LoadBalancerPool or the FabricConfig. The decision is pure (services/index.ts planLoadBalancers);
 * this file owns the informers' hand-off, the writes and the Events:
 *   - server-side apply of the Service status (ingress + the podfabric.io/LoadBalancerAddress
 *     condition), only for the Services whose ingress or condition must change, i.e. only Services of
 *     the served class (other implementations' Services are never written);
 *   - Events on the Service (AddressAssigned, Conflict, Exhausted ... as decided);
 *   - LoadBalancerPool status (SSA, only when it changed) and its finalizer podfabric.io/addresses-in-use.
 * Allocation needs one writer: this runs only in the leading controller, after the caches synced.
 */
import { API_PATH as API } from '../api/common.js';
import { parseObject, type LoadBalancerPoolObj } from '../api/kinds.js';
import { LB_POOL_FINALIZER, LoadBalancerPool } from '../api/services.js';
import type { EventSink } from '../kube/events.js';
import { Informer, type KObj } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import type { ReconcileContext, ReconcileResult } from '../kube/workqueue.js';
import { stableStringify } from '../lib/stable.js';
import { planLoadBalancers } from '../services/index.js';
import type { FabricConfigSpec } from '../api/fabricconfig.js';
import { FIELD_MANAGER } from './state.js';

export const SERVICES_KEY = 'services';

type RawLbPool = LoadBalancerPoolObj & KObj;

/** What of a Service the allocation reads: a status write of ours that changes none of it is not a new input. */
const serviceInputs = (s: KObj) => stableStringify([s.metadata.annotations, s.metadata.labels, s.metadata.deletionTimestamp, s.spec, (s.status as { loadBalancer?: unknown; conditions?: unknown } | undefined)?.loadBalancer, (s.status as { conditions?: unknown } | undefined)?.conditions]);

export class ServiceReconciler {
  readonly services: Informer<KObj>;
  readonly lbPools: Informer<RawLbPool, LoadBalancerPoolObj>;

  constructor(
    private readonly rest: KubeRest,
    private readonly events: EventSink,
    private readonly config: () => FabricConfigSpec,
    enqueue: (key: string) => void,
  ) {
    const add = () => enqueue(SERVICES_KEY);
    this.services = new Informer<KObj>(rest, '/api/v1/services', { onAdd: add, onUpdate: (o, n) => serviceInputs(o) !== serviceInputs(n) && add(), onDelete: add }, { name: 'services' });
    this.lbPools = new Informer<RawLbPool, LoadBalancerPoolObj>(rest, `${API}/loadbalancerpools`, { onAdd: add, onUpdate: add, onDelete: add }, { decode: (o) => parseObject(LoadBalancerPool, o) });
  }

  get informers(): Array<{ start(): unknown; stop(): void; waitForSync(): Promise<void> }> {
    return [this.services, this.lbPools];
  }

  /** Pools that decode; an invalid one is reported in its status and gives no address. */
  private validPools(): LoadBalancerPoolObj[] {
    const out: LoadBalancerPoolObj[] = [];
    for (const p of this.lbPools.list()) {
      const d = this.lbPools.decoded(p.metadata.name!);
      if (d?.ok) out.push(d.value);
    }
    return out;
  }

  async reconcile(ctx: ReconcileContext): Promise<ReconcileResult | void> {
    const plan = planLoadBalancers({ config: this.config().services, pools: this.validPools(), services: this.services.list(), now: new Date() });
    let failed: Error | undefined;
    const attempt = async (what: string, f: () => Promise<unknown>) => {
      try {
        await f();
        return true;
      } catch (e) {
        ctx.log.warn({ what, err: (e as Error).message }, 'write failed');
        failed ??= e as Error;
        return false;
      }
    };
    for (const p of plan.servicePatches) {
      const path = `/api/v1/namespaces/${encodeURIComponent(p.namespace)}/services/${encodeURIComponent(p.name)}/status`;
      if (!(await attempt(`service ${p.namespace}/${p.name}`, () => this.rest.apply(path, p.body, FIELD_MANAGER)))) continue;
      const uid = this.services.get(`${p.namespace}/${p.name}`)?.metadata.uid;
      const ref = { apiVersion: 'v1', kind: 'Service', name: p.name, namespace: p.namespace, ...(uid ? { uid } : {}) };
      for (const e of p.events) this.events.emit(ref, e.type, e.reason, e.message);
    }
    for (const s of plan.poolStatuses) {
      const raw = this.lbPools.get(s.name);
      if (!raw) continue;
      const ref = { apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', name: s.name, ...(raw.metadata.uid ? { uid: raw.metadata.uid } : {}) };
      if (s.finalizer) {
        const list = (raw.metadata.finalizers ?? []) as string[];
        const finalizers = s.finalizer === 'add' ? [...list, LB_POOL_FINALIZER] : list.filter((f) => f !== LB_POOL_FINALIZER);
        const body = { metadata: { finalizers, resourceVersion: raw.metadata.resourceVersion } };
        const ok = await attempt(`pool ${s.name} finalizer`, () => this.rest.request('PATCH', `${API}/loadbalancerpools/${encodeURIComponent(s.name)}`, body, 'application/merge-patch+json'));
        if (ok && s.finalizer === 'remove') {
          this.events.emit(ref, 'Normal', 'Deleted', 'no Service holds an address of this pool: deletion may proceed');
          continue;
        }
      }
      if (!s.changed) continue;
      const body = { apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', metadata: { name: s.name }, status: s.status };
      if (!(await attempt(`pool ${s.name} status`, () => this.rest.apply(`${API}/loadbalancerpools/${encodeURIComponent(s.name)}/status`, body, FIELD_MANAGER)))) continue;
      for (const e of s.events) this.events.emit(ref, e.type, e.reason, e.message);
    }
    if (failed) throw failed;
  }
}
