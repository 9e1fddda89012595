/**
 * The node agent: makes this node's GoBGP sidecar and kernel match its plan, and reports what the node
 * really has in NodeFabric status. Its BGP sessions it derives itself (plan/peers.ts, the rule the
 * controller reports with) from its own Node, FabricConfig, the BGPPeers, the IPPools and its peers'
 * password Secrets: a BGPPeer change reaches every agent through its own watch, with no NodeFabric
 * write, and a new node's sessions do not wait for the controller. Pod CIDRs and advertisements come
 * from the NodeFabric the controller writes; the host-gw routes from the L2Segments that NodeFabric
 * names (segments.ts: one watch per named object, and while one has not listed yet the kernel's routes
 * stay as they are).
 *
 * One key ("sync"), level-triggered: NodeFabric/FabricConfig/BGPPeer/IPPool/Node changes, a watched
 * L2Segment or password Secret changing, peer state changes, a gobgpd restart, the status heartbeat and a periodic resync all
 * enqueue it; each sync (sync.ts) diffs desired against observed (read back from gobgpd and the kernel)
 * and changes only the delta. Shutdown leaves gobgpd and the routes as they are, so an agent restart
 * withdraws nothing and removes no route.
 */
import { API_PATH as API, API_VERSION } from '../api/common.js';
import { effectiveFabricConfig, fabricConfigSpec, type FabricConfigSpec } from '../api/fabricconfig.js';
import { BGPPeer, FabricConfig, NodeFabric, parseObject, type BGPPeerObj, type FabricConfigObj, type IPPoolObj, type NodeFabricObj } from '../api/kinds.js';
import type { CniManager } from '../cni/manager.js';
import type { Router } from '../gobgp/speaker.js';
import type { Md5Counters } from '../host/netstat.js';
import type { EventSink } from '../kube/events.js';
import { Informer, type KObj } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import { StatusWriter } from '../kube/status.js';
import { runWorkers, WorkQueue, type ReconcileContext, type ReconcileResult } from '../kube/workqueue.js';
import { realClock, type Clock } from '../lib/clock.js';
import { log } from '../lib/log.js';
import type { Registry } from '../lib/metrics.js';
import { stableStringify } from '../lib/stable.js';
import type { RouteTable } from '../routes/model.js';
import type { NftRunner } from '../nftables/applier.js';
import { ipPoolInformer, NatOutgoing } from './nat-apply.js';
import { planNodePeers, secretRefsFor, type NodePeers, type PeerInfo, type PeerNode } from '../plan/peers.js';
import { nodeIPs } from '../plan/plan.js';
import { PolicyReconciler, type PolicyKernel } from './policy-apply.js';
import type { Uplink } from './routes-apply.js';
import { SecretWatcher } from './secrets.js';
import { SegmentRoutes, type DirectRoute } from './segments.js';
import { withoutStatus } from './slim.js';
import { ServiceRoutes } from './service-routes.js';
import { AGENT_RESYNC_MS, agentMetrics, AgentSync } from './sync.js';

export type { Uplink } from './routes-apply.js';

export const AGENT_FIELD_MANAGER = 'podfabric-agent';

export interface AgentDeps {
  nodeName: string;
  rest: KubeRest;
  router: Router;
  /** Opened with the configured route protocol (the agent re-creates it if FabricConfig changes it). */
  routes: (protocol: number) => RouteTable;
  /** Reports kernel deletions of our routes (optional): the agent re-syncs at once. Returns a stop function. */
  watchRouteDeletions?: (protocol: number, onDeleted: (line: string) => void) => () => void;
  detectUplink: (nodeIP: string) => Promise<Uplink | null>;
  /** The node's TCP MD5 counters (turn "auth failure suspected" into proof); optional. */
  md5Counters?: () => Promise<Md5Counters | null>;
  registry: Registry;
  cni?: CniManager;
  /** Events on the node's NodeFabric for what the agent did (sessions, CNI configuration, route failures). */
  events?: EventSink;
  bgpListenPort?: number;
  /** The periodic full sync (default AGENT_RESYNC_MS); changes arrive through watches, not through it. */
  resyncMs?: number;
  clock?: Clock;
  /** NetworkPolicy enforcement in the node's netns (PolicyEnforcer); absent = enforcement off. */
  policy?: PolicyKernel;
  /** natOutgoing: nft in the node's netns for table inet podfabric-nat; absent = never touched. */
  nat?: NftRunner;
}

export class NodeAgent {
  private readonly queue = new WorkQueue({ name: 'agent', baseDelayMs: 100, maxDelayMs: 10_000 });
  private readonly fabric: Informer<NodeFabricObj & KObj, NodeFabricObj>;
  private readonly configs: Informer<KObj, FabricConfigObj>;
  /** Every BGPPeer (cluster-scoped, a handful of objects): the sessions are derived from them here. */
  private readonly peers: Informer<BGPPeerObj & KObj, BGPPeerObj>;
  /** The one IPPool cache: natOutgoing and the peers' AddressInPodCIDR check. */
  private readonly pools: Informer<IPPoolObj & KObj, IPPoolObj>;
  private readonly secrets: SecretWatcher;
  /** The L2Segments this node's NodeFabric names (spec.routing.segments): its host-gw routes. */
  private readonly segments: SegmentRoutes;
  private readonly serviceRoutes: ServiceRoutes;
  private readonly pipeline: AgentSync;
  private readonly metrics;
  private readonly policy: PolicyReconciler | undefined;
  private readonly nat: NatOutgoing | undefined;
  private config: FabricConfigSpec = fabricConfigSpec.parse({});
  private stopWatch: (() => void) | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private workers: Promise<void> | undefined;
  private stopped = false;
  syncs = 0;

  constructor(private readonly d: AgentDeps) {
    const name = d.nodeName;
    this.metrics = agentMetrics(d.registry);
    this.fabric = new Informer(
      d.rest,
      `${API}/nodefabrics?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`,
      {
        onAdd: () => {
          this.kick();
          this.policy?.kick();
        },
        onUpdate: (o, n) => {
          if (stableStringify(o.spec) !== stableStringify(n.spec) || o.metadata.generation !== n.metadata.generation) this.kick();
          if (stableStringify(o.spec?.podCIDRs ?? []) !== stableStringify(n.spec?.podCIDRs ?? [])) this.policy?.kick();
        },
        onDelete: () => this.kick(),
      },
      { decode: (o) => parseObject(NodeFabric, o) },
    );
    this.configs = new Informer(d.rest, `${API}/fabricconfigs`, { onAdd: () => this.kick(), onUpdate: () => this.kick(), onDelete: () => this.kick() }, { decode: (o) => parseObject(FabricConfig, o) });
    this.peers = new Informer(
      d.rest,
      `${API}/bgppeers`,
      { onAdd: () => this.kick(), onUpdate: (o, n) => stableStringify([o.spec, o.metadata.creationTimestamp]) !== stableStringify([n.spec, n.metadata.creationTimestamp]) && this.kick(), onDelete: () => this.kick() },
      // Status (the controller's counts and conditions) is not read here: every agent caches every BGPPeer.
      { decode: (o) => parseObject(BGPPeer, o), trim: withoutStatus },
    );
    this.pools = ipPoolInformer(d.rest, () => this.kick());
    this.secrets = new SecretWatcher(d.rest, () => this.kick());
    this.segments = new SegmentRoutes(d.rest, () => this.kick());
    const status = new StatusWriter(d.rest, AGENT_FIELD_MANAGER);
    this.serviceRoutes = new ServiceRoutes(d.rest, name, () => this.kick(), d.clock ?? realClock, d.events ? { onService: d.events, onFabric: (t, r, m) => this.event(t, r, m) } : undefined);
    if (d.policy) {
      this.policy = new PolicyReconciler({
        nodeName: name,
        rest: d.rest,
        kernel: d.policy,
        registry: d.registry,
        event: (type, reason, message) => this.event(type, reason, message),
        onReport: () => this.kick(),
        podCIDRs: () => {
          const nf = this.fabric.decoded(name);
          return nf?.ok ? (nf.value.spec.podCIDRs ?? []) : [];
        },
        log: log.child({ node: name, component: 'policy' }),
        ...(d.clock ? { clock: d.clock } : {}),
        ...(d.resyncMs ? { resyncMs: d.resyncMs } : {}),
      });
    }
    const routes = this.serviceRoutes;
    this.nat = d.nat
      ? new NatOutgoing({ nft: d.nat, pools: this.pools, lbPools: () => routes.loadBalancerPools(), kick: () => this.kick(), clock: d.clock ?? realClock, event: (t, r, m) => this.event(t, r, m), registry: d.registry })
      : undefined;
    const policy = this.policy;
    this.pipeline = new AgentSync({
      router: d.router,
      routes: { open: d.routes, ...(d.watchRouteDeletions ? { watchDeletions: d.watchRouteDeletions } : {}) },
      detectUplink: d.detectUplink,
      ...(d.md5Counters ? { md5Counters: d.md5Counters } : {}),
      ...(d.cni ? { cni: d.cni } : {}),
      passwords: (ref) => this.secrets.password(ref),
      writeStatus: (s) => status.write(NodeFabric, name, s),
      event: (type, reason, message) => this.event(type, reason, message),
      kick: () => this.kick(),
      metrics: this.metrics,
      clock: d.clock ?? realClock,
      ...(d.bgpListenPort !== undefined ? { bgpListenPort: d.bgpListenPort } : {}),
      services: this.serviceRoutes,
      ...(policy ? { policy: () => policy.report() } : {}),
      ...(this.nat ? { nat: this.nat } : {}),
    });
  }

  /** Ready: planned, every session established, every route in the kernel. */
  isReady(): boolean {
    return this.pipeline.ready;
  }

  isHealthy(): boolean {
    return !this.stopped;
  }

  /** The node's own addresses (from its plan): flows they originate never cross the forward hook. */
  nodeAddresses(): string[] {
    const d = this.fabric.decoded(this.d.nodeName);
    return d?.ok ? (d.value.spec.nodeIPs ?? []) : [];
  }

  async start(): Promise<void> {
    const name = this.d.nodeName;
    for (const i of [this.fabric, this.configs, this.peers, this.pools]) i.start();
    // Open the channel to gobgpd while the caches sync (the reads the first sync makes, answers unused):
    // a new node's first plan then finds it connected instead of paying the connection set-up.
    void Promise.allSettled([this.d.router.getGlobal(), this.d.router.listPeers()]);
    // The BGPPeer cache must be complete before the first BGP apply: a partial one would delete sessions.
    await Promise.all([this.fabric.waitForSync(), this.configs.waitForSync(), this.peers.waitForSync(), this.pools.waitForSync(), this.serviceRoutes.start()]);
    // Its segments are known once its NodeFabric is: wait (briefly) for them too, so the first sync
    // installs the routes instead of holding the kernel's until a second one.
    const nf = this.fabric.decoded(name);
    if (nf?.ok) {
      this.segments.want(nf.value.spec.routing?.segments ?? []);
      await this.segments.waitForSync();
    }
    log.info({ kind: 'NodeFabric', name, planned: !!this.fabric.get(name), segments: this.segments.names() }, 'caches synced; watching this node\'s plan');
    // Its own queue and informers: a policy change never waits behind BGP or routes. Started once the
    // plan is known, so the first table already fails closed for unknown addresses in the pod CIDRs.
    this.policy?.start();
    this.watchRouter();
    this.workers = runWorkers(this.queue, 1, (_key, ctx) => this.sync(ctx), {
      component: 'agent',
      log: log.child({ node: name }),
      onError: (_k, err) => log.warn({ kind: 'NodeFabric', name, err: (err as Error).message }, 'agent sync failed; retrying with backoff'),
      onDone: (_k, ms, outcome) => {
        this.syncs++;
        this.metrics.reconcile.observe({ result: outcome }, ms / 1000);
        log.debug({ node: name, result: outcome, ms: Math.round(ms) }, 'synced');
      },
    });
    const resync = () => {
      if (this.stopped) return;
      this.kick();
      this.resyncTimer = setTimeout(resync, this.d.resyncMs ?? AGENT_RESYNC_MS);
    };
    this.resyncTimer = setTimeout(resync, this.d.resyncMs ?? AGENT_RESYNC_MS);
    this.kick();
  }

  /** Leaves gobgpd and the kernel as they are. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.stopWatch?.();
    this.queue.shutDown();
    await this.policy?.stop();
    for (const i of [this.fabric, this.configs, this.peers, this.pools]) i.stop();
    this.secrets.stop();
    this.segments.stop();
    this.serviceRoutes.stop();
    this.nat?.stop();
    await this.workers;
    this.pipeline.close();
    this.d.router.close();
  }

  kick(): void {
    if (!this.stopped) this.queue.add('sync');
  }

  /**
   * Peer state stream. When it breaks (gobgpd died or restarted), probe the API every 200 ms and
   * re-sync the moment it answers: a restarted gobgpd is unconfigured and must be re-programmed at once,
   * not when the sync backoff next fires.
   */
  private watchRouter(): void {
    if (this.stopped) return;
    let broken = false;
    this.stopWatch = this.d.router.watchPeers(
      (s) => {
        const prev = this.pipeline.sessions.watched(s);
        if (prev?.state !== s.state) {
          log.info({ node: this.d.nodeName, peer: s.address, from: prev?.state ?? 'Unknown', to: s.state }, 'BGP session state changed');
          const peer = `${this.pipeline.peerNames.get(s.address) ?? 'peer'} (${s.address})`;
          if (s.state === 'Established') this.event('Normal', 'SessionEstablished', `BGP session with ${peer} established`);
          else if (prev?.state === 'Established') this.event('Warning', 'SessionDown', `BGP session with ${peer} left Established, now ${s.state}${s.lastError ? `: ${s.lastError}` : ''}`);
          this.kick();
        }
      },
      (err) => {
        if (broken || this.stopped) return;
        broken = true;
        log.warn({ node: this.d.nodeName, err: err.message }, 'gobgpd watch stream failed; re-syncing as soon as its API answers');
        this.stopWatch?.();
        const probe = () => {
          if (this.stopped) return;
          this.d.router.getGlobal().then(
            () => {
              this.queue.forget('sync');
              this.kick();
              this.watchRouter();
            },
            () => setTimeout(probe, 200),
          );
        };
        setTimeout(probe, 100);
      },
    );
  }

  private event(type: 'Normal' | 'Warning', reason: string, message: string): void {
    const uid = this.pipeline.fabricUid;
    this.d.events?.emit({ apiVersion: API_VERSION, kind: 'NodeFabric', name: this.d.nodeName, ...(uid ? { uid } : {}) }, type, reason, message);
  }

  private loadConfig(ctx: ReconcileContext): void {
    const { spec, error } = effectiveFabricConfig(this.configs.decoded('default'), this.config);
    if (error) ctx.log.warn({ kind: 'FabricConfig', name: 'default', err: error }, 'unreadable FabricConfig; keeping the previous one');
    this.config = spec;
  }

  private async sync(ctx: ReconcileContext): Promise<ReconcileResult | void> {
    this.loadConfig(ctx);
    const d = this.fabric.decoded(this.d.nodeName);
    if (d && !d.ok) throw new Error(`NodeFabric ${this.d.nodeName}: ${d.error}`);
    return this.pipeline.run(d?.value, await this.sessions(ctx), d ? this.directRoutes(d.value.spec.routing, ctx) : undefined, this.config, ctx.log);
  }

  /**
   * The host routes of the segments the NodeFabric names now (watches follow the names), or undefined
   * while one is not known: a new watch still listing, or an unreadable object (logged).
   */
  private directRoutes(routing: NodeFabricObj['spec']['routing'], ctx: ReconcileContext): DirectRoute[] | undefined {
    // A segment key without segment names is a plan from a controller older than L2Segments (during an
    // upgrade, the agents may roll first): its routes are not known here, so the kernel's are kept.
    if (routing?.l2Segment && !routing.segments?.length) {
      ctx.log.debug({ kind: 'NodeFabric', l2Segment: routing.l2Segment }, 'plan names no L2Segment (an older controller); keeping the host routes in the kernel as they are');
      return undefined;
    }
    const names = routing?.segments ?? [];
    this.segments.want(names);
    const dec = this.segments.decision(this.d.nodeName);
    if (dec.unreadable.length) ctx.log.warn({ kind: 'L2Segment', unreadable: dec.unreadable }, 'unreadable L2Segment; keeping the host routes in the kernel as they are');
    else if (dec.waiting.length) ctx.log.debug({ kind: 'L2Segment', waiting: dec.waiting }, 'L2Segments not listed yet; keeping the host routes in the kernel as they are');
    return dec.routes;
  }

  /**
   * This node's sessions (plan/peers.ts), or undefined while its Node is not known (not listed yet, or
   * deleted): then gobgpd keeps what it has. The password Secrets of the peers selecting the node are
   * watched first (a change re-syncs), so their state is known before the peers are judged.
   */
  private async sessions(ctx: ReconcileContext): Promise<NodePeers | undefined> {
    const node = this.d.nodeName;
    const obj = this.serviceRoutes.nodeObject();
    if (!obj) return undefined;
    const meta = obj.metadata as { labels?: Record<string, string>; annotations?: Record<string, string> };
    const me: PeerNode = { name: node, labels: meta.labels ?? {}, annotations: meta.annotations ?? {}, ips: nodeIPs((obj.status as { addresses?: Array<{ type: string; address: string }> } | undefined)?.addresses) };
    const peers: PeerInfo[] = [];
    for (const p of this.peers.list()) {
      const dp = this.peers.decoded(p.metadata.name!);
      if (dp?.ok) peers.push({ name: dp.value.metadata.name, spec: dp.value.spec, creationTimestamp: dp.value.metadata.creationTimestamp ?? '' });
      // an undecodable BGPPeer is reported on itself by the controller
    }
    await this.secrets.want(secretRefsFor(me, peers));
    const poolCidrs = this.pools.listDecoded().map((p) => ({ pool: p.metadata.name, cidr: p.spec.cidr }));
    const plan = planNodePeers(me, { config: this.config, peers, poolCidrs, secret: (r) => this.secrets.state(r) });
    if (plan.invalid.length) ctx.log.debug({ invalid: plan.invalid.map((i) => `${i.peer}: ${i.reasons.map((r) => r.reason).join(',')}`) }, 'BGPPeers selecting this node left out');
    return plan;
  }
}
