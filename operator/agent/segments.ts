/**
 * The node's host-gw routes, from the L2Segments its NodeFabric names (spec.routing.segments, at most
 * one per address family). One list+watch per named object (`fieldSelector=metadata.name=NAME`, as the
 * agent's own NodeFabric watch), started and stopped as the named set changes; a segment's add, delete
 * or spec change kicks the agent, and so does a new watch's first list (an absent object fires no add).
 *
 * The routes are unknown while any named segment's watch has not listed yet, or one of them does not
 * decode: the agent then leaves the kernel's routes exactly as they are. An agent restart, or a node
 * moving to another segment, must never withdraw routes because a cache is still empty. A named
 * segment that does not exist (once listed) holds no routes: the controller creates one only when the
 * segment has a route.
 */
import { L2Segment, parseObject, type L2SegmentObj } from '../api/kinds.js';
import { Informer, type Decoded, type KObj } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import { API_PATH as API } from '../api/common.js';
import { stableStringify } from '../lib/stable.js';
import { directRoutesFrom, type DirectRoute } from '../plan/segment.js';

export type { DirectRoute };

/** How long start() waits for the first segments' lists before the first sync goes on without them. */
export const SEGMENT_SYNC_WAIT_MS = 5_000;

/** What the agent knows of one named segment: not listed yet, or listed (the object absent, decoded, or not decodable). */
export type SegmentView = { listed: false } | { listed: true; object: Decoded<L2SegmentObj> | undefined };

export interface SegmentRoutesDecision {
  /** The routes to install (every route of the segments but this node's own); undefined: unknown, keep the kernel's. */
  routes: DirectRoute[] | undefined;
  /** Named segments whose watch has not listed yet. */
  waiting: string[];
  /** Named segments whose object does not decode (`name: error`). */
  unreadable: string[];
}

/** Pure: the routes node `self` installs from its named segments' views, or undefined while any is unknown. */
export function decideSegmentRoutes(self: string, views: ReadonlyArray<readonly [name: string, view: SegmentView]>): SegmentRoutesDecision {
  const waiting: string[] = [];
  const unreadable: string[] = [];
  const specs: L2SegmentObj['spec'][] = [];
  for (const [name, v] of views) {
    if (!v.listed) waiting.push(name);
    else if (v.object && !v.object.ok) unreadable.push(`${name}: ${v.object.error}`);
    else if (v.object?.ok) specs.push(v.object.value.spec);
  }
  const routes = waiting.length || unreadable.length ? undefined : directRoutesFrom(self, specs);
  return { routes, waiting, unreadable };
}

type SegmentInformer = Informer<L2SegmentObj & KObj, L2SegmentObj>;

export class SegmentRoutes {
  private readonly watches = new Map<string, SegmentInformer>();

  constructor(
    private readonly rest: KubeRest,
    /** A named segment changed, appeared, went away, or its watch listed for the first time. */
    private readonly onChange: () => void,
  ) {}

  /** Watches exactly these L2Segments: starts the new names' watches, stops the ones no longer named. */
  want(names: readonly string[]): void {
    const wanted = new Set(names);
    for (const [name, inf] of this.watches) {
      if (wanted.has(name)) continue;
      inf.stop();
      this.watches.delete(name);
    }
    for (const name of wanted) {
      if (this.watches.has(name)) continue;
      const inf: SegmentInformer = new Informer(
        this.rest,
        `${API}/l2segments?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`,
        {
          onAdd: () => this.onChange(),
          onUpdate: (o, n) => stableStringify(o.spec) !== stableStringify(n.spec) && this.onChange(),
          onDelete: () => this.onChange(),
        },
        { name: `l2segment ${name}`, decode: (o) => parseObject(L2Segment, o) },
      );
      this.watches.set(name, inf.start());
      // An absent segment fires no add: its first list must still wake the agent, whose routes are now known.
      void inf.waitForSync().then(() => this.watches.get(name) === inf && this.onChange());
    }
  }

  /** The names watched now. */
  names(): string[] {
    return [...this.watches.keys()];
  }

  /** Resolves when every watched segment has listed, or after timeoutMs. */
  async waitForSync(timeoutMs = SEGMENT_SYNC_WAIT_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all([...this.watches.values()].map((i) => i.waitForSync()));
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** The routes node `self` installs, and what keeps them unknown. */
  decision(self: string): SegmentRoutesDecision {
    const views = [...this.watches].map(([name, inf]) => [name, inf.hasSynced() ? { listed: true as const, object: inf.decoded(name) } : { listed: false as const }] as const);
    return decideSegmentRoutes(self, views);
  }

  /** The routes node `self` installs; undefined while any watched segment is unknown (keep the kernel's routes). */
  routes(self: string): DirectRoute[] | undefined {
    return this.decision(self).routes;
  }

  stop(): void {
    for (const inf of this.watches.values()) inf.stop();
    this.watches.clear();
  }
}
