/**
 * List+watch cache for one resource (client-go reflector semantics): paginated list, watch from the list's
 * resourceVersion with bookmarks, relist on 410 Gone or any watch failure (with backoff), handlers for
 * add/update/delete. The store is the cache controllers read instead of calling the API.
 */
import { log } from '../lib/log.js';
import { KubeError, type KubeRest, type WatchEvent } from './rest.js';

/** The shortest watch the informer asks for; each lasts between this and twice this (client-go's minWatchTimeout). */
export const WATCH_TIMEOUT_S = 300;

export interface KObj {
  metadata: { name?: string; namespace?: string; resourceVersion?: string; uid?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

/** An object decoded (parsed and validated) once, when it arrived; or why it could not be. */
export type Decoded<D> = { ok: true; value: D } | { ok: false; error: string };

/**
 * What every informer does to an object on arrival: drops metadata.managedFields (server-side apply's
 * bookkeeping, often the largest part of a small object; nothing here reads it), as client-go's
 * TransformStripManagedFields does. Mutates and returns the freshly parsed object.
 */
export function stripManagedFields<T extends KObj>(o: T): T {
  if (o.metadata && 'managedFields' in o.metadata) delete o.metadata.managedFields;
  return o;
}

const keyOf = (o: KObj) => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name ?? '');

export class Informer<T extends KObj, D = T> {
  private store = new Map<string, T>();
  private typed = new Map<string, Decoded<D>>();
  private synced = false;
  private stopped = false;
  private syncWaiters: Array<() => void> = [];
  private current: { stop(): void } | undefined;
  private rv = '';
  relists = 0;

  constructor(
    private readonly rest: KubeRest,
    private readonly path: string,
    private readonly handlers: InformerHandlers<T> = {},
    private readonly opts: {
      pageSize?: number;
      name?: string;
      /** Decode and validate each object once, on arrival; read the result with decoded(). */
      decode?: (o: T) => D;
      /**
       * Trims each object on arrival, after managedFields are dropped, to what this informer's readers
       * use (client-go's SetTransform; handlers and the store then only ever see the trimmed object): less
       * memory per cached object.
       */
      trim?: (o: T) => T;
    } = {},
  ) {}

  private arrive(o: T): T {
    const t = stripManagedFields(o);
    return this.opts.trim ? this.opts.trim(t) : t;
  }

  private decodeInto(k: string, o: T): void {
    if (!this.opts.decode) return;
    try {
      this.typed.set(k, { ok: true, value: this.opts.decode(o) });
    } catch (e) {
      this.typed.set(k, { ok: false, error: (e as Error).message });
    }
  }

  start(): this {
    void this.loop();
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.current?.stop();
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((r) => this.syncWaiters.push(r));
  }

  get(name: string): T | undefined {
    return this.store.get(name);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  /** The object as decoded on arrival (needs the decode option), or undefined when absent. */
  decoded(name: string): Decoded<D> | undefined {
    return this.typed.get(name);
  }

  /** Every object that decoded cleanly. */
  listDecoded(): D[] {
    const out: D[] = [];
    for (const d of this.typed.values()) if (d.ok) out.push(d.value);
    return out;
  }

  size(): number {
    return this.store.size;
  }

  private async loop(): Promise<void> {
    let delay = 200;
    let gone = false;
    while (!this.stopped) {
      try {
        await this.relist(gone);
        delay = 200;
        for (;;) {
          if (this.stopped) return;
          await this.watchOnce();
        }
      } catch (e) {
        if (this.stopped) return;
        gone = e instanceof KubeError && e.code === 410;
        if (!gone) log.warn({ resource: this.opts.name ?? this.path, err: (e as Error).message }, 'list/watch failed; relisting');
        await new Promise((r) => setTimeout(r, gone ? 0 : delay));
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }

  /**
   * Lists as client-go's reflectors do. From the apiserver's watch cache, with no quorum read and no
   * wait for the cache to catch up with storage (which under load made each agent's start-up lists
   * take seconds): the first list at resourceVersion=0, a relist after a broken watch at "not older than
   * the last version seen". Only after the last version expired (410 Gone) does it read consistently
   * (paged from storage), so the cache never goes back in time.
   */
  private async relist(expired: boolean): Promise<void> {
    this.relists++;
    const fresh = new Map<string, T>();
    let cont = '';
    let rv = '';
    const cached = expired ? undefined : this.rv || '0';
    do {
      const sep = this.path.includes('?') ? '&' : '?';
      const q = cached !== undefined ? `resourceVersion=${cached}` : `limit=${this.opts.pageSize ?? 500}${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`;
      const page = await this.rest.get<{ metadata: { resourceVersion: string; continue?: string }; items: T[] }>(`${this.path}${sep}${q}`);
      for (const it of page.items) fresh.set(keyOf(it), this.arrive(it));
      rv = page.metadata.resourceVersion;
      cont = page.metadata.continue ?? '';
    } while (cont);
    const old = this.store;
    this.store = fresh;
    if (this.opts.decode) {
      const typed = new Map<string, Decoded<D>>();
      for (const [k, o] of fresh) {
        const prev = old.get(k);
        const had = this.typed.get(k);
        if (had && prev?.metadata.resourceVersion === o.metadata.resourceVersion) typed.set(k, had);
      }
      this.typed = typed;
      for (const [k, o] of fresh) if (!typed.has(k)) this.decodeInto(k, o);
    }
    this.rv = rv;
    for (const [k, o] of fresh) {
      const prev = old.get(k);
      if (!prev) this.handlers.onAdd?.(o);
      else if (prev.metadata.resourceVersion !== o.metadata.resourceVersion) this.handlers.onUpdate?.(prev, o);
    }
    for (const [k, o] of old) if (!fresh.has(k)) this.handlers.onDelete?.(o);
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private async watchOnce(): Promise<void> {
    const sep = this.path.includes('?') ? '&' : '?';
    // 5-10 minutes, as client-go's reflectors ask: each renewal is a request, and an agent holds 12
    // watches (at 240-360 s they cost 0.04 requests per agent per second, most of the idle budget).
    const w = this.rest.watch<T>(
      `${this.path}${sep}watch=1&allowWatchBookmarks=true&timeoutSeconds=${WATCH_TIMEOUT_S + Math.floor(Math.random() * WATCH_TIMEOUT_S)}&resourceVersion=${this.rv}`,
      (e: WatchEvent<T>) => this.onEvent(e),
    );
    this.current = w;
    await w.done;
  }

  private onEvent(e: WatchEvent<T>): void {
    if (e.type === 'ERROR') {
      const st = e.object as unknown as { code?: number; message?: string };
      throw new KubeError(st.code ?? 500, 'WatchError', st.message ?? 'watch error');
    }
    if (e.object.metadata?.resourceVersion) this.rv = e.object.metadata.resourceVersion;
    if (e.type === 'BOOKMARK') return;
    const o = this.arrive(e.object);
    const k = keyOf(o);
    const prev = this.store.get(k);
    if (e.type === 'DELETED') {
      this.store.delete(k);
      this.typed.delete(k);
      this.handlers.onDelete?.(prev ?? o);
    } else {
      this.store.set(k, o);
      this.decodeInto(k, o);
      if (prev) this.handlers.onUpdate?.(prev, o);
      else this.handlers.onAdd?.(o);
    }
  }
}
