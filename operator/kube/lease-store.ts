/**
 * The Lease that leader election (leader.ts) campaigns on, behind a small port: get, create, and an
 * update guarded by resourceVersion. The adapter here speaks plain REST through KubeRest.
 */
import { isConflict, isNotFound, type KubeRest } from './rest.js';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

/** A write lost the optimistic-concurrency race (HTTP 409: resourceVersion changed, or already exists). */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

export interface LeaseStore {
  /** The lease, or null if it does not exist. */
  get(): Promise<{ spec: LeaseSpec; resourceVersion: string } | null>;
  /** Creates the lease; returns its resourceVersion; ConflictError if it exists. */
  create(spec: LeaseSpec): Promise<string>;
  /** Replaces the spec if the lease is still at resourceVersion; returns the new one; ConflictError otherwise. */
  update(spec: LeaseSpec, resourceVersion: string): Promise<string>;
  /** For logs: namespace/name. */
  describe?(): string;
}

/** MicroTime: RFC 3339 with microseconds, e.g. 2026-11-23T13:20:00.123000Z. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/**
 * The Lease namespace/name on the apiserver, through a KubeRest (the project's throttled client). Give
 * leader election its own client, so renewals never queue behind the controller's request throttle.
 */
export function kubeLeaseStore(rest: KubeRest, namespace: string, name: string): LeaseStore {
  const describe = () => `${namespace}/${name}`;
  const base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const write = async (p: () => Promise<{ metadata: { resourceVersion: string } }>) => {
    try {
      return (await p()).metadata.resourceVersion;
    } catch (e) {
      if (isConflict(e)) throw new ConflictError(`lease ${describe()}: ${(e as Error).message}`);
      throw e;
    }
  };
  return {
    describe,
    async get() {
      try {
        const l = await rest.get<{ metadata: { resourceVersion: string }; spec?: LeaseSpec }>(`${base}/${encodeURIComponent(name)}`);
        return { spec: l.spec ?? {}, resourceVersion: l.metadata.resourceVersion };
      } catch (e) {
        if (isNotFound(e)) return null;
        throw e;
      }
    },
    create: (spec) => write(() => rest.request('POST', base, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec })),
    update: (spec, resourceVersion) =>
      write(() =>
        rest.request('PUT', `${base}/${encodeURIComponent(name)}`, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace, resourceVersion },
          spec,
        }),
      ),
  };
}
