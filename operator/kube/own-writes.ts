/**
 * Writing an object whole, and seeing one's own writes before the informer does (client-go's mutation
 * cache). The controller writes its NodeFabrics and L2Segments this way: the spec replaced whole, so an
 * entry the plan dropped is gone whoever wrote it, and others' labels and annotations stay.
 */
import { stripManagedFields, type KObj } from './informer.js';
import { isAlreadyExists, isConflict, isNotFound, type KubeRest } from './rest.js';

/**
 * Whether `a` is a later version than `b`. resourceVersions are opaque by contract, but etcd3's are
 * integers and client-go's mutation cache compares them the same way; anything else counts as not newer
 * (the cache wins, and at worst a write is repeated, which apply makes harmless).
 */
export function newerResourceVersion(a: KObj, b: KObj): boolean {
  const [x, y] = [a.metadata.resourceVersion, b.metadata.resourceVersion];
  if (!x || !y || !/^\d+$/.test(x) || !/^\d+$/.test(y)) return false;
  return BigInt(x) > BigInt(y);
}

/**
 * Objects this process just wrote or deleted, until its informer's cache shows that write (or a later
 * one): a reconcile that runs before the watch echo sees its own write instead of a stale or missing
 * object, and does not write the same thing again.
 */
export class OwnWrites<T extends KObj> {
  /** null: deleted by us, while the cache may still hold it. */
  private readonly mine = new Map<string, T | null>();

  /** The newest version known: the cache's (`cached`), or this process's own write it has not shown yet. */
  get(name: string, cached: T | undefined): T | undefined {
    if (!this.mine.has(name)) return cached;
    const mine = this.mine.get(name)!;
    if (mine === null) {
      if (!cached) this.mine.delete(name);
      return undefined;
    }
    if (cached && !newerResourceVersion(mine, cached)) {
      this.mine.delete(name); // the cache caught up
      return cached;
    }
    return mine;
  }

  wrote(name: string, o: T): void {
    this.mine.set(name, o);
  }

  deleted(name: string): void {
    this.mine.set(name, null);
  }

  forget(name: string): void {
    this.mine.delete(name);
  }
}

/**
 * Writes the object whole: a new one with POST, a known one with PUT over its resourceVersion, `body`
 * building what is sent from the stored version (undefined: create). A 409 on POST (the cache has not
 * shown it yet) or on PUT (someone wrote since) reads the object once and PUTs again; a second 409
 * fails, for the reconcile to be retried. A 404 on PUT (deleted meanwhile) creates it. The answer comes
 * back without managedFields, as the informers keep objects.
 */
export async function writeWhole<T extends KObj>(rest: KubeRest, o: { collection: string; name: string; fieldManager: string; known: T | undefined; body: (stored: T | undefined) => unknown }): Promise<T> {
  const { collection, name } = o;
  const put = (stored: T) => rest.request<T>('PUT', `${collection}/${name}?fieldManager=${o.fieldManager}`, o.body(stored));
  const fresh = () => rest.get<T>(`${collection}/${name}`);
  const create = async () => {
    try {
      return await rest.request<T>('POST', `${collection}?fieldManager=${o.fieldManager}`, o.body(undefined));
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      return put(await fresh());
    }
  };
  if (!o.known) return stripManagedFields(await create());
  try {
    return stripManagedFields(await put(o.known));
  } catch (e) {
    if (isNotFound(e)) return stripManagedFields(await create());
    if (!isConflict(e)) throw e;
    return stripManagedFields(await put(await fresh()));
  }
}
