/**
 * List+watch cache for one resource (client-go reflector semantics): paginated list, watch from the list's
 * resourceVersion with bookmarks, handlers for add/update/delete. The store is the cache controllers read
 * instead of calling the API. A broken watch (stream error, reset or destroyed connection, a 5xx/429, an
 * ERROR event) is reopened, after a backoff, from the last resourceVersion seen, keeping the store: the
 * server replays what changed meanwhile, deletes included. Only 410 Gone (that version left the server's
 * history) relists, consistently; so do REWATCH_LIMIT failed re-watches in a row (from the watch cache).
 * A relist moves the whole collection, and thousands of agents relisting after an apiserver restart or a
 * burst of dead connections is a storm that feeds itself.
 */
import { log } from '../lib/log.js';
import { KubeError, type KubeRest, type WatchEvent } from './rest.js';

/** The shortest watch the informer asks for; each lasts between this and twice this (client-go's minWatchTimeout). */
export const WATCH_TIMEOUT_S = 300;

/** Failed re-watches in a row after which the informer relists instead (a safety valve). */
export const REWATCH_LIMIT = 5;

/** A watch that delivered an event or stayed open this long was healthy: the backoff starts over. */
export const HEALTHY_WATCH_MS = 5_000;

/**
 * A watch the server ends this soon with no event counts as a failure (client-go's "very short watch"):
 * a session closed without an error ends its streams as if the server had, and a server that closes
 * every watch at once must meet the backoff, not a tight loop.
 */
export const SHORT_WATCH_MS = 1_000;

/** Backoff between attempts after a failure: doubles from firstMs up to maxMs (each wait jittered up to twice), reset by a healthy watch. */
export const BACKOFF = { firstMs: 200, maxMs: 10_000 };

/** What the informer does next: watch from its last resourceVersion, list from the watch cache, or list consistently. */
export type NextStep = 'watch' | 'list' | 'list-consistent';

/** True when the error says the resourceVersion asked for has left the server's history (410 Gone). */
export function isExpired(e: unknown): boolean {
  if (e instanceof KubeError && (e.code === 410 || e.reason === 'Expired' || e.reason === 'Gone')) return true;
  return e instanceof Error && /too old resource version/i.test(e.message);
}

/**
 * After a watch failed (failedInARow counts it and the failed watches right before it, since the last
 * healthy watch or list): 410 Gone relists consistently; anything else re-watches from the last version
 * seen, until REWATCH_LIMIT re-watches in a row have failed, which relists from the watch cache.
 */
export function afterWatchFailure(error: unknown, failedInARow: number): NextStep {
  if (isExpired(error)) return 'list-consistent';
  return failedInARow > REWATCH_LIMIT ? 'list' : 'watch';
}

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
  /** Events (bookmarks included) received by watches: tells a healthy watch from a failing one. */
  private received = 0;
  /** Lists made, the first included (each moves the whole collection). */
  relists = 0;
  /** Watches reopened from the last resourceVersion after a failure, instead of a relist. */
  rewatches = 0;

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
      /** Backoff after failures (default BACKOFF); tests shorten it. */
      backoff?: { firstMs: number; maxMs: number };
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
    const { firstMs, maxMs } = this.opts.backoff ?? BACKOFF;
    let delay = firstMs;
    let next: NextStep = 'list';
    let failed = 0;
    const backoff = async (ms: number) => {
      // Jittered up to twice the delay (client-go's jitter 1.0): after an apiserver restart thousands of
      // agents must not come back in step.
      await new Promise((r) => setTimeout(r, ms * (1 + Math.random())));
      delay = Math.min(delay * 2, maxMs);
    };
    while (!this.stopped) {
      if (next !== 'watch') {
        try {
          await this.relist(next === 'list-consistent');
          next = 'watch';
          failed = 0;
        } catch (e) {
          if (this.stopped) return;
          if (isExpired(e)) next = 'list-consistent';
          log.warn({ resource: this.opts.name ?? this.path, err: (e as Error).message }, 'list failed; listing again');
          await backoff(delay);
          continue;
        }
      }
      const seen = this.received;
      const opened = Date.now();
      let error: unknown;
      try {
        await this.watchOnce();
      } catch (e) {
        error = e ?? new Error('watch failed');
      }
      if (this.stopped) return;
      const lasted = Date.now() - opened;
      const events = this.received > seen;
      if (events || lasted >= HEALTHY_WATCH_MS) {
        delay = firstMs;
        failed = 0;
      }
      // The server ended it (timeoutSeconds): watch again from rv, at once.
      if (error === undefined && (events || lasted >= SHORT_WATCH_MS)) continue;
      error ??= new Error(`very short watch: ended after ${lasted} ms with no event`);
      failed++;
      next = afterWatchFailure(error, failed);
      if (next !== 'list-consistent') {
        const then = next === 'watch' ? 'watching again from the last version' : `relisting after ${REWATCH_LIMIT} failed re-watches`;
        log.warn({ resource: this.opts.name ?? this.path, err: (error as Error).message }, `watch failed; ${then}`);
      }
      // The first 410 after a healthy watch relists at once; 410s in a row back off like other failures.
      await backoff(next === 'list-consistent' && delay === firstMs ? 0 : delay);
      if (next === 'watch' && !this.stopped) this.rewatches++;
    }
  }

  /**
   * Lists as client-go's reflectors do. From the apiserver's watch cache, with no quorum read and no
   * wait for the cache to catch up with storage (which under load made each agent's start-up lists
   * take seconds): the first list at resourceVersion=0, a relist after REWATCH_LIMIT failed re-watches
   * at "not older than the last version seen". Only after the last version expired (410 Gone) does it read consistently
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
    this.received++;
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
