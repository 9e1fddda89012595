/**
 * A LeaseStore on client-node's CoordinationV1Api: the second adapter, used by the leader integration
 * test to show the elector behaves the same on both clients.
 */
import { ApiException, CoordinationV1Api, KubeConfig, V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import { ConflictError, microTime, type LeaseSpec, type LeaseStore } from '../../operator/kube/lease-store.js';

const str = (v: unknown): string | null => (v == null ? null : v instanceof Date ? microTime(v.getTime()) : String(v));

function specOf(s: V1Lease['spec'] | undefined): LeaseSpec {
  if (!s) return {};
  const out: LeaseSpec = {};
  if (s.holderIdentity !== undefined) out.holderIdentity = s.holderIdentity;
  if (s.leaseDurationSeconds !== undefined) out.leaseDurationSeconds = s.leaseDurationSeconds;
  if (s.acquireTime !== undefined) out.acquireTime = str(s.acquireTime);
  if (s.renewTime !== undefined) out.renewTime = str(s.renewTime);
  if (s.leaseTransitions !== undefined) out.leaseTransitions = s.leaseTransitions;
  return out;
}

/** Our LeaseSpec in client-node's types (MicroTime fields as V1MicroTime, which serializes with microseconds). */
function toV1Spec(s: LeaseSpec): NonNullable<V1Lease['spec']> {
  const mt = (v: string | null | undefined) => (v ? new V1MicroTime(v) : undefined);
  const out: NonNullable<V1Lease['spec']> = {};
  if (s.holderIdentity != null) out.holderIdentity = s.holderIdentity;
  if (s.leaseDurationSeconds != null) out.leaseDurationSeconds = s.leaseDurationSeconds;
  const acquire = mt(s.acquireTime);
  if (acquire) out.acquireTime = acquire;
  const renew = mt(s.renewTime);
  if (renew) out.renewTime = renew;
  if (s.leaseTransitions != null) out.leaseTransitions = s.leaseTransitions;
  return out;
}

export function clientNodeLeaseStore(client: KubeConfig, namespace: string, name: string): LeaseStore {
  const describe = () => `${namespace}/${name}`;
  const api = client.makeApiClient(CoordinationV1Api);
  const code = (e: unknown) => (e instanceof ApiException ? (e as ApiException<unknown>).code : undefined);
  const rvOf = (l: V1Lease) => {
    const rv = l.metadata?.resourceVersion;
    if (!rv) throw new Error(`lease ${describe()}: no resourceVersion in the answer`);
    return rv;
  };
  const write = async (p: () => Promise<V1Lease>) => {
    try {
      return rvOf(await p());
    } catch (e) {
      if (code(e) === 409) throw new ConflictError(`lease ${describe()}: ${(e as Error).message}`);
      throw e;
    }
  };
  return {
    describe,
    async get() {
      try {
        const l = await api.readNamespacedLease({ name, namespace });
        return { spec: specOf(l.spec), resourceVersion: rvOf(l) };
      } catch (e) {
        if (code(e) === 404) return null;
        throw e;
      }
    },
    create: (spec) =>
      write(() => api.createNamespacedLease({ namespace, body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: toV1Spec(spec) } })),
    update: (spec, resourceVersion) =>
      write(() =>
        api.replaceNamespacedLease({
          name,
          namespace,
          body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace, resourceVersion }, spec: toV1Spec(spec) },
        }),
      ),
  };
}
