/**
 * Fakes for unit tests: a BGP speaker that holds what it was told, a route table that holds routes,
 * and a KubeRest that serves lists and watches from memory and records every write. They model only
 * what the code under test relies on; the integration tests keep the real parts honest.
 */
import type { Advertisement, BgpGlobalConfig, PeerConfig, PeerStatus, Router } from '../../operator/gobgp/speaker.js';
import type { KubeRest, WatchEvent } from '../../operator/kube/rest.js';
import { KubeError } from '../../operator/kube/rest.js';
import { diffRoutes, type KernelRoute, type RouteError, type RouteTable } from '../../operator/routes/model.js';

export type SpeakerCall = { op: string; arg?: unknown };

export class FakeSpeaker implements Router {
  global: BgpGlobalConfig | null = null;
  peers = new Map<string, PeerConfig>();
  adv = new Map<string, Advertisement>();
  /** State each peer reports (default Established). */
  states = new Map<string, PeerStatus['state']>();
  calls: SpeakerCall[] = [];
  private watchers: Array<(s: PeerStatus) => void> = [];

  private status(address: string): PeerStatus {
    return { address, state: this.states.get(address) ?? 'Established', prefixesSent: 1, prefixesReceived: 0 } as PeerStatus;
  }
  async getGlobal() {
    return this.global;
  }
  async startBgp(cfg: BgpGlobalConfig) {
    this.calls.push({ op: 'startBgp', arg: cfg });
    this.global = cfg;
  }
  async stopBgp() {
    this.calls.push({ op: 'stopBgp' });
    this.global = null;
    this.peers.clear();
    this.adv.clear();
  }
  async listPeers() {
    return [...this.peers.values()].map((config) => ({ config, status: this.status(config.address) }));
  }
  async addPeer(p: PeerConfig, opts?: { restarting?: boolean }) {
    this.calls.push({ op: 'addPeer', arg: { ...p, ...(opts?.restarting ? { restarting: true } : {}) } });
    this.peers.set(p.address, p);
  }
  async updatePeer(p: PeerConfig) {
    this.calls.push({ op: 'updatePeer', arg: p });
    this.peers.set(p.address, p);
  }
  async deletePeer(address: string) {
    this.calls.push({ op: 'deletePeer', arg: address });
    this.peers.delete(address);
  }
  async listAdvertisements(prefixes?: string[]) {
    return [...this.adv.values()].filter((a) => !prefixes || prefixes.includes(a.prefix));
  }
  async addAdvertisements(a: Advertisement[]) {
    this.calls.push({ op: 'addAdvertisements', arg: a.map((x) => x.prefix) });
    for (const x of a) this.adv.set(x.prefix, x);
  }
  async deleteAdvertisements(a: Advertisement[]) {
    this.calls.push({ op: 'deleteAdvertisements', arg: a.map((x) => x.prefix) });
    for (const x of a) this.adv.delete(x.prefix);
  }
  watchPeers(onChange: (s: PeerStatus) => void) {
    this.watchers.push(onChange);
    return () => (this.watchers = this.watchers.filter((w) => w !== onChange));
  }
  /** Reports a peer state change on the watch stream. */
  emit(address: string, state: PeerStatus['state']): void {
    this.states.set(address, state);
    for (const w of this.watchers) w(this.status(address));
  }
  close() {}
  /** Calls other than reads since the last reset. */
  writes(): string[] {
    return this.calls.map((c) => c.op);
  }
}

export class FakeRouteTable implements RouteTable {
  routes: KernelRoute[] = [];
  applies = 0;
  async list() {
    return [...this.routes];
  }
  async apply(add: KernelRoute[], del: KernelRoute[]): Promise<{ errors: RouteError[] }> {
    this.applies++;
    const keep = this.routes.filter((r) => !del.some((d) => d.dst === r.dst && d.via === r.via));
    this.routes = [...keep.filter((r) => !add.some((a) => a.dst === r.dst)), ...add];
    return { errors: [] };
  }
  close() {}
  /** What the table would still change to hold `desired`. */
  pending(desired: KernelRoute[]) {
    return diffRoutes(desired, this.routes);
  }
}

export interface RestCall {
  method: string;
  path: string;
  body?: unknown;
}

/**
 * A KubeRest in memory: `objects` by collection path (e.g. /api/v1/namespaces/ns/secrets) serve lists
 * (fieldSelector metadata.name honoured) and single GETs; watches get events from `emit`. Every call is
 * recorded in `calls`; writes (apply, request) just answer with what they were given.
 */
export class FakeRest {
  calls: RestCall[] = [];
  objects = new Map<string, Array<Record<string, any>>>();
  private rv = 1;
  private watches: Array<{ collection: string; name: string | undefined; onEvent: (e: WatchEvent<any>) => void; stopped: boolean }> = [];
  failApply: Error | undefined;
  /** An error for a request (method, path) to answer with instead of succeeding; undefined lets it pass. */
  failRequest: ((method: string, path: string) => Error | undefined) | undefined;

  private static split(path: string): { collection: string; name: string | undefined; query: URLSearchParams } {
    const [p, q] = path.split('?');
    const query = new URLSearchParams(q ?? '');
    const fs = query.get('fieldSelector');
    const name = fs?.startsWith('metadata.name=') ? fs.slice('metadata.name='.length) : undefined;
    return { collection: p!, name, query };
  }

  set(collection: string, items: Array<Record<string, any>>): void {
    this.objects.set(collection, items.map((o) => ({ ...o, metadata: { resourceVersion: String(this.rv++), ...o.metadata } })));
  }

  async get<T>(path: string): Promise<T> {
    this.calls.push({ method: 'GET', path });
    const { collection, name } = FakeRest.split(path);
    if (this.objects.has(collection)) {
      const items = this.objects.get(collection)!.filter((o) => !name || o.metadata.name === name);
      return { metadata: { resourceVersion: String(this.rv) }, items } as T;
    }
    const slash = collection.lastIndexOf('/');
    const one = this.objects.get(collection.slice(0, slash))?.find((o) => o.metadata.name === collection.slice(slash + 1));
    if (one) return one as T;
    throw new KubeError(404, 'NotFound', `${path} not found`);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    this.calls.push({ method, path, body });
    const err = this.failRequest?.(method, path);
    if (err) throw err;
    return (body ?? {}) as T;
  }

  async apply<T>(path: string, obj: unknown): Promise<T> {
    this.calls.push({ method: 'APPLY', path, body: obj });
    if (this.failApply) throw this.failApply;
    return obj as T;
  }

  watch<T>(path: string, onEvent: (e: WatchEvent<T>) => void): { done: Promise<void>; stop(): void } {
    this.calls.push({ method: 'WATCH', path });
    const { collection, name } = FakeRest.split(path);
    const w = { collection, name, onEvent: onEvent as (e: WatchEvent<any>) => void, stopped: false };
    this.watches.push(w);
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    return {
      done,
      stop: () => {
        w.stopped = true;
        finish();
      },
    };
  }

  /** Changes an object and tells the watches that see it. */
  emit(collection: string, type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: Record<string, any>): void {
    const o = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv++) } };
    const list = (this.objects.get(collection) ?? []).filter((x) => x.metadata.name !== o.metadata.name);
    this.objects.set(collection, type === 'DELETED' ? list : [...list, o]);
    for (const w of this.watches) if (!w.stopped && w.collection === collection && (!w.name || w.name === o.metadata.name)) w.onEvent({ type, object: o });
  }

  /** Calls matching method and a path test. */
  count(method: string, path: RegExp): number {
    return this.calls.filter((c) => c.method === method && path.test(c.path)).length;
  }

  asRest(): KubeRest {
    return this as unknown as KubeRest;
  }
}

/** A read-only store (what an Informer offers reconcilers) over a map, decoding on put like the informer. */
export class MapStore<T extends { metadata: { name?: string } }, D = T> {
  private readonly items = new Map<string, T>();
  private readonly typed = new Map<string, { ok: true; value: D } | { ok: false; error: string }>();
  constructor(private readonly decode?: (o: T) => D) {}
  put(...objs: T[]): this {
    for (const o of objs) {
      const k = o.metadata.name!;
      this.items.set(k, o);
      if (this.decode) {
        try {
          this.typed.set(k, { ok: true, value: this.decode(o) });
        } catch (e) {
          this.typed.set(k, { ok: false, error: (e as Error).message });
        }
      }
    }
    return this;
  }
  delete(name: string): void {
    this.items.delete(name);
    this.typed.delete(name);
  }
  get(name: string) {
    return this.items.get(name);
  }
  list() {
    return [...this.items.values()];
  }
  size() {
    return this.items.size;
  }
  decoded(name: string) {
    return this.typed.get(name);
  }
}
