/**
 * kube-rs-style finalizer helper: one place that decides whether to add our finalizer, run the cleanup
 * and remove it, so a reconciler only says what "cleanup" and "may go" mean.
 */
import type { KObj } from './informer.js';
import type { KubeRest } from './rest.js';

export type FinalizerStep =
  /** Not being deleted and the finalizer is there: reconcile normally. */
  | 'apply'
  /** Being deleted and cleanup is still blocked: reconcile normally (report why). */
  | 'blocked'
  /** Being deleted, cleanup done, finalizer removed (or was never there): nothing more to do. */
  | 'released';

export interface FinalizerOptions {
  rest: KubeRest;
  /** The object's collection path, e.g. /apis/podfabric.io/v1alpha1/ippools. */
  collection: string;
  finalizer: string;
}

/**
 * Adds the finalizer to a live object that lacks it; on a deleting object removes it once
 * `mayRelease()` says so. The patch carries the resourceVersion read, so a stale cache gets a 409.
 */
export async function finalizer(obj: KObj & { metadata: { finalizers?: string[]; deletionTimestamp?: string } }, o: FinalizerOptions, mayRelease: () => boolean, onReleased?: () => void): Promise<FinalizerStep> {
  const list = obj.metadata.finalizers ?? [];
  const has = list.includes(o.finalizer);
  const patch = (finalizers: string[]) =>
    o.rest.request('PATCH', `${o.collection}/${encodeURIComponent(obj.metadata.name!)}`, { metadata: { finalizers, resourceVersion: obj.metadata.resourceVersion } }, 'application/merge-patch+json');
  if (obj.metadata.deletionTimestamp) {
    if (!mayRelease()) return 'blocked';
    if (has) {
      await patch(list.filter((f) => f !== o.finalizer));
      onReleased?.();
    }
    return 'released';
  }
  if (!has) await patch([...list, o.finalizer]);
  return 'apply';
}
