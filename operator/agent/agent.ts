/**
 * The node agent: makes this node's GoBGP sidecar and kernel match its NodeFabric plan, and reports
 * what the node really has in NodeFabric status.
 *
 * One key ("sync"), level-triggered: NodeFabric/FabricConfig changes, peer state changes, a gobgpd
 * restart and a periodic resync all enqueue it; each sync diffs desired against observed (read back
 * from gobgpd and the kernel) and changes only the delta. Shutdown leaves gobgpd and the routes as they
 * are, so an agent restart withdraws nothing and removes no route.
 */
import { API_PATH as API, API_VERSION } from '../api/common.js';
import { fabricConfigSpec, type FabricConfigSpec } from '../api/fabricconfig.js';
import { FabricConfig, NodeFabric, parseObject, type NodeFabricObj } from '../api/kinds.js';
import type { NodeFabricSpec, NodeFabricStatus, PlannedPeer } from '../api/nodefabric.js';
import type { Condition } from '../api/common.js';
import { sameConditions, setConditions } from '../api/conditions.js';
import { parseCidr } from '../lib/ip.js';
import { log } from '../lib/log.js';
import { Gauge, Histogram, RECONCILE_BUCKETS, type Registry } from '../lib/metrics.js';
import { stableStringify } from '../lib/stable.js';
import { runWorkers, WorkQueue } from '../kube/workqueue.js';
import { Informer, type KObj } from '../kube/informer.js';
import type { EventSink } from '../kube/events.js';
import { isNotFound, type KubeRest } from '../kube/rest.js';
import { diffBgp } from './bgp-diff.js';
import type { CniManager } from '../cni/manager.js';
import { md5Delta, type Md5Counters } from '../host/netstat.js';
import type { Advertisement, PeerConfig, PeerStatus, Router } from '../gobgp/speaker.js';
import { diffRoutes, type KernelRoute, type RouteTable } from '../routes/model.js';
import { agentConditions, sessionHint, type ObservedSession } from './status.js';

export const AGENT_FIELD_MANAGER = 'podfabric-agent';

export interface Uplink {
  dev: string;
  address: string;
  subnet: string;
}

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
  resyncMs?: number;
}

/** The value of a settled promise, or its error thrown. */
function settled<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

export class NodeAgent {
  private readonly queue = new WorkQueue({ name: 'agent', baseDelayMs: 100, maxDelayMs: 10_000 });
  private fabric!: Informer<NodeFabricObj & KObj>;
  private configs!: Informer<KObj>;
  private config: FabricConfigSpec = fabricConfigSpec.parse({});
  private routeTable: RouteTable | undefined;
  private routeProto = -1;
  private stopWatch: (() => void) | undefined;
  private stopRouteWatch: (() => void) | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private workers: Promise<void> | undefined;
  private stopped = false;
  private secretCache = new Map<string, { rv: string; value: string }>();
  /** When each session was last seen leaving Established (or configured). */
  private downSince = new Map<string, number>();
  private peerStates = new Map<string, PeerStatus>();
  private lastStatus = '';
  private lastReady = false;
  private lastRoutesOk = false;
  private lastBgpOk = false;
  /** This process has programmed gobgpd before: finding it unconfigured again means gobgpd restarted. */
  private programmedBgp = false;
  /** Prefixes this node may have originated in gobgpd (looked up each sync to find stale ones). */
  private originated = new Set<string>();
  /** MD5 counters when a session was first seen down (cleared once all are Established). */
  private md5Base: Md5Counters | undefined;
  private lastCniWritten: boolean | undefined;
  private lastProblems = '';
  /** Peer address → BGPPeer name, from the last plan (for Events). */
  private peerNames = new Map<string, string>();
  private fabricUid: string | undefined;
  syncs = 0;
  private readonly m;

  constructor(private readonly d: AgentDeps) {
    const r = d.registry;
    this.m = {
      sessionUp: new Gauge({ name: 'podfabric_agent_bgp_session_up', help: '1 when the BGP session is Established', labelNames: ['peer', 'peer_name'], registers: [r] }),
      sessionState: new Gauge({ name: 'podfabric_agent_bgp_session_state', help: '1 for the current state of each session', labelNames: ['peer', 'state'], registers: [r] }),
      prefixesSent: new Gauge({ name: 'podfabric_agent_bgp_prefixes_advertised', help: 'Prefixes sent to the peer', labelNames: ['peer'], registers: [r] }),
      prefixesRecv: new Gauge({ name: 'podfabric_agent_bgp_prefixes_received', help: 'Prefixes received from the peer', labelNames: ['peer'], registers: [r] }),
      routes: new Gauge({ name: 'podfabric_agent_routes_installed', help: 'Host-gw routes with our protocol in the kernel', registers: [r] }),
      reconcile: new Histogram({ name: 'podfabric_agent_reconcile_duration_seconds', help: 'Time for one agent sync', labelNames: ['result'], buckets: RECONCILE_BUCKETS, registers: [r] }),
      changes: new Gauge({ name: 'podfabric_agent_last_sync_changes', help: 'Changes applied by the last sync (routes + BGP)', registers: [r] }),
    };
  }

  /** Ready: planned, every session established, every route in the kernel. */
  isReady(): boolean {
    return this.lastReady;
  }

  isHealthy(): boolean {
    return !this.stopped;
  }

  async start(): Promise<void> {
    const name = this.d.nodeName;
    this.fabric = new Informer(this.d.rest, `${API}/nodefabrics?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`, {
      onAdd: () => this.kick(),
      onUpdate: (o, n) => {
        if (stableStringify(o.spec) !== stableStringify(n.spec) || o.metadata.generation !== n.metadata.generation) this.kick();
      },
      onDelete: () => this.kick(),
    });
    this.configs = new Informer<KObj>(this.d.rest, `${API}/fabricconfigs`, { onAdd: () => this.kick(), onUpdate: () => this.kick(), onDelete: () => this.kick() });
    this.fabric.start();
    this.configs.start();
    await Promise.all([this.fabric.waitForSync(), this.configs.waitForSync()]);
    log.info({ kind: 'NodeFabric', name, planned: !!this.fabric.get(name) }, 'caches synced; watching this node\'s plan');
    this.watchRouter();
    this.workers = runWorkers(this.queue, 1, () => this.sync(), {
      onError: (_k, err) => log.warn({ kind: 'NodeFabric', name, err: (err as Error).message }, 'agent sync failed; retrying with backoff'),
    });
    const resync = () => {
      if (this.stopped) return;
      this.kick();
      this.resyncTimer = setTimeout(resync, this.d.resyncMs ?? 30_000);
    };
    this.resyncTimer = setTimeout(resync, this.d.resyncMs ?? 30_000);
    this.kick();
  }

  /** Leaves gobgpd and the kernel as they are. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.stopWatch?.();
    this.stopRouteWatch?.();
    this.queue.shutDown();
    this.fabric?.stop();
    this.configs?.stop();
    await this.workers;
    this.routeTable?.close();
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
        const prev = this.peerStates.get(s.address);
        this.peerStates.set(s.address, s);
        if (s.state === 'Established') this.downSince.delete(s.address);
        else if (prev?.state === 'Established' || !this.downSince.has(s.address)) this.downSince.set(s.address, Date.now());
        if (prev?.state !== s.state) {
          log.info({ node: this.d.nodeName, peer: s.address, from: prev?.state ?? 'Unknown', to: s.state }, 'BGP session state changed');
          const peer = `${this.peerNames.get(s.address) ?? 'peer'} (${s.address})`;
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
    this.d.events?.emit({ apiVersion: API_VERSION, kind: 'NodeFabric', name: this.d.nodeName, ...(this.fabricUid ? { uid: this.fabricUid } : {}) }, type, reason, message);
  }

  private loadConfig(): void {
    const raw = this.configs.get('default');
    try {
      this.config = raw ? parseObject(FabricConfig, raw).spec : fabricConfigSpec.parse({});
    } catch (e) {
      log.warn({ kind: 'FabricConfig', name: 'default', err: (e as Error).message }, 'unreadable FabricConfig; keeping the previous one');
    }
  }

  private table(): RouteTable {
    if (!this.routeTable || this.routeProto !== this.config.routeProtocol) {
      this.routeTable?.close();
      this.routeTable = this.d.routes(this.config.routeProtocol);
      this.routeProto = this.config.routeProtocol;
      this.stopRouteWatch?.();
      this.stopRouteWatch = this.d.watchRouteDeletions?.(this.routeProto, (line) => {
        // Our own deletions show up here too; a sync with nothing to do costs one diff.
        log.debug({ node: this.d.nodeName, line }, 'kernel deleted one of our routes; re-syncing');
        this.kick();
      });
    }
    return this.routeTable;
  }

  private async password(ref: NonNullable<PlannedPeer['passwordSecretRef']>): Promise<string | undefined> {
    const path = `/api/v1/namespaces/${ref.namespace}/secrets/${ref.name}`;
    try {
      const s = await this.d.rest.get<{ metadata: { resourceVersion: string }; data?: Record<string, string> }>(path);
      const v = s.data?.[ref.key];
      if (v === undefined) return undefined;
      const value = Buffer.from(v, 'base64').toString('utf8');
      this.secretCache.set(path, { rv: s.metadata.resourceVersion, value });
      return value;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      // API unreachable: keep using what we had, so a control-plane outage changes nothing.
      return this.secretCache.get(path)?.value;
    }
  }

  private async sync(): Promise<void> {
    const t0 = process.hrtime.bigint();
    let result = 'ok';
    try {
      await this.syncOnce();
    } catch (e) {
      result = 'error';
      throw e;
    } finally {
      this.syncs++;
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      this.m.reconcile.observe({ result }, seconds);
      log.debug({ node: this.d.nodeName, result, ms: Math.round(seconds * 1000) }, 'synced');
    }
  }

  private async syncOnce(): Promise<void> {
    this.loadConfig();
    const raw = this.fabric.get(this.d.nodeName);
    if (!raw) {
      this.lastReady = false;
      return; // nothing to do until the controller plans this node; routes and sessions stay as they are
    }
    const nf = parseObject(NodeFabric, raw);
    const spec = nf.spec;
    this.fabricUid = nf.metadata.uid;
    this.peerNames = new Map((spec.peers ?? []).map((p) => [p.address, p.name]));
    const planned = !!(spec.asn && spec.routerId);

    // --- BGP, and (once the uplinks are known) host routes: independent, applied concurrently
    const plannedPeers = spec.peers ?? [];
    const bgpDone = this.applyBgp(spec, planned, (nf.status?.advertised as string[] | undefined) ?? []);
    bgpDone.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
    // Uplinks (one per family), reported for the controller's adjacency detection.
    const uplinks = new Map<4 | 6, Uplink>();
    const found = await Promise.all((spec.nodeIPs ?? []).map(async (ip) => [ip, await this.d.detectUplink(ip)] as const));
    for (const [ip, u] of found) if (u) uplinks.set(ip.includes(':') ? 6 : 4, u);
    const [bgp, rt] = await Promise.all([bgpDone, this.applyRoutes(spec, uplinks)]);
    const { bgpError, sessions, passwords } = bgp;
    const { routeErrors, desiredRoutes, installed } = rt;
    const changes = bgp.changes + rt.changes;
    const after = diffRoutes(desiredRoutes, installed);
    this.m.routes.set(installed.length);
    this.m.changes.set(changes);

    // --- MD5 evidence: counter growth since a session went down
    // Each planned session as gobgpd listed it this sync, else as its watch last reported it.
    const seen = new Map(plannedPeers.map((p) => [p.address, sessions.find((x) => x.address === p.address) ?? this.peerStates.get(p.address)]));
    const anyDown = plannedPeers.some((p) => seen.get(p.address)?.state !== 'Established');
    let md5: Md5Counters | undefined;
    if (anyDown && this.d.md5Counters) {
      const now = await this.d.md5Counters().catch(() => null);
      if (now) {
        this.md5Base ??= now;
        md5 = md5Delta(this.md5Base, now);
      }
    } else if (!anyDown) {
      this.md5Base = undefined;
    }

    // --- CNI configuration (gated on the fabric really working, unless configured not to wait)
    const observedSessions: ObservedSession[] = plannedPeers.map((p) => {
      const s = seen.get(p.address);
      const down = this.downSince.get(p.address);
      return {
        address: p.address,
        name: p.name,
        state: s?.state ?? 'Unknown',
        ...(down !== undefined ? { downForMs: Date.now() - down } : {}),
        ...(s?.lastError ? { lastError: s.lastError } : {}),
        passwordSet: passwords.get(p.address) ?? false,
        connectRetry: p.connectRetry,
        ...(md5 ? { md5 } : {}),
      };
    });
    const bgpOk = planned && !bgpError && plannedPeers.length > 0 && observedSessions.every((s) => s.state === 'Established');
    const routesOk = after.add.length === 0 && routeErrors.length === 0;
    let cni: { written: boolean; reason?: string; path?: string } | undefined;
    if (this.d.cni) {
      cni = await this.d.cni.reconcile({
        podCIDRs: spec.podCIDRs ?? [],
        fabricReady: bgpOk && routesOk,
        notReadyReason: !bgpOk ? 'waiting for BGP sessions to be established' : !routesOk ? 'waiting for host routes to be installed' : '',
        config: this.config.cni,
      });
    }

    // --- status
    const conds = agentConditions({
      planned,
      peersPlanned: plannedPeers.length,
      sessions: observedSessions,
      routesWanted: desiredRoutes.length,
      routesMissing: after.add.map((r) => r.dst),
      routeErrors,
      uplinkFound: uplinks.size > 0,
      ...(bgpError ? { bgpError } : {}),
      ...(cni ? { cni } : {}),
    });
    this.lastReady = conds.find((c) => c.type === 'Ready')?.status === 'True';
    if (bgpOk !== this.lastBgpOk || routesOk !== this.lastRoutesOk) {
      log.info({ node: this.d.nodeName, bgpReady: bgpOk, routesReady: routesOk }, 'readiness changed');
      this.lastBgpOk = bgpOk;
      this.lastRoutesOk = routesOk;
    }
    if (cni && cni.written !== this.lastCniWritten) {
      if (cni.written) this.event('Normal', 'CNIConfigWritten', `CNI configuration in place at ${cni.path ?? '?'}: sessions established and routes installed, pods can start`);
      else if (cni.reason) this.event('Normal', 'CNIConfigWaiting', `CNI configuration not written: ${cni.reason}`);
      this.lastCniWritten = cni.written;
    }
    const problems = [...(bgpError ? [bgpError] : []), ...routeErrors].join('; ');
    if (problems && problems !== this.lastProblems) this.event('Warning', 'ApplyFailed', problems.slice(0, 1000));
    this.lastProblems = problems;
    for (const s of sessions) {
      const peerName = this.peerNames.get(s.address) ?? '';
      this.m.sessionUp.set({ peer: s.address, peer_name: peerName }, s.state === 'Established' ? 1 : 0);
      for (const st of ['Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established']) this.m.sessionState.set({ peer: s.address, state: st }, s.state === st ? 1 : 0);
      this.m.prefixesSent.set({ peer: s.address }, s.prefixesSent);
      this.m.prefixesRecv.set({ peer: s.address }, s.prefixesReceived);
    }
    const status: NodeFabricStatus = {
      observedGeneration: nf.metadata.generation ?? 0,
      ...(uplinks.get(4) ?? uplinks.get(6) ? { uplink: (uplinks.get(4) ?? uplinks.get(6))!.dev } : {}),
      l2Subnets: [uplinks.get(4)?.subnet, uplinks.get(6)?.subnet].filter((x): x is string => !!x),
      sessions: observedSessions.map((s) => {
        const live = sessions.find((x) => x.address === s.address);
        return {
          address: s.address,
          ...(s.name ? { name: s.name } : {}),
          state: (s.state as 'Unknown') ?? 'Unknown',
          ...(live?.establishedAt && s.state === 'Established' ? { establishedSince: live.establishedAt.toISOString().replace(/\.\d{3}Z$/, 'Z') } : {}),
          prefixesSent: live?.prefixesSent ?? 0,
          prefixesReceived: live?.prefixesReceived ?? 0,
          ...(s.state !== 'Established' ? { lastError: sessionHint(s).slice(0, 1024) } : {}),
        };
      }),
      sessionsEstablished: observedSessions.filter((s) => s.state === 'Established').length,
      sessionsTotal: observedSessions.length,
      advertised: (spec.advertisements ?? []).map((a) => a.prefix),
      routesInstalled: installed.length,
      routes: installed.slice(0, 2048).map((r) => ({ destination: r.dst, via: r.via })),
      ...(cni ? { cni } : {}),
    };
    await this.writeStatus(nf, status, conds);
  }

  /** gobgpd: global, peers and advertisements diffed against what it has; then the sessions it reports. */
  private async applyBgp(spec: NodeFabricSpec, planned: boolean, previouslyAdvertised: string[]): Promise<{ changes: number; bgpError?: string; sessions: PeerStatus[]; passwords: Map<string, boolean> }> {
    let changes = 0;
    let bgpError: string | undefined;
    const plannedPeers = spec.peers ?? [];
    const passwords = new Map<string, boolean>();
    if (planned) {
      try {
        const peers: PeerConfig[] = [];
        for (const p of plannedPeers) {
          const password = p.passwordSecretRef ? await this.password(p.passwordSecretRef) : undefined;
          passwords.set(p.address, !!password);
          peers.push({
            address: p.address,
            peerAsn: p.peerASN,
            ...(p.localASN !== spec.asn ? { localAsn: p.localASN } : {}),
            ...(password ? { password } : {}),
            holdTime: p.holdTime,
            keepaliveInterval: p.keepaliveInterval,
            connectRetry: p.connectRetry,
            ...(p.gracefulRestart ? { gracefulRestart: p.gracefulRestart } : {}),
            ...(p.ebgpMultihop ? { ebgpMultihop: p.ebgpMultihop } : {}),
            description: p.name,
          });
        }
        const advertisements: Advertisement[] = (spec.advertisements ?? []).map((a) => ({ prefix: a.prefix, nextHop: a.nextHop, communities: a.communities ?? [] }));
        // Three independent reads at once; peers and paths count only when BGP is running.
        // Only the prefixes this node may have originated: what it wants, what its status last said it
        // advertised (survives an agent restart) and what this process added.
        for (const p of [...previouslyAdvertised, ...advertisements.map((a) => a.prefix)]) this.originated.add(p);
        const lookup = [...this.originated];
        const [g, lp, la] = await Promise.allSettled([this.d.router.getGlobal(), this.d.router.listPeers(), this.d.router.listAdvertisements(lookup)]);
        const global = settled(g);
        const observedPeers = global ? settled(lp).map((p) => p.config) : [];
        const observedAdv = global ? settled(la) : [];
        const desiredGlobal = { asn: spec.asn!, routerId: spec.routerId!, listenPort: this.d.bgpListenPort ?? 179 };
        const diff = diffBgp({ global: desiredGlobal, peers, advertisements }, { global, peers: observedPeers, advertisements: observedAdv });
        if (diff.restartNeeded) {
          log.warn({ node: this.d.nodeName, reason: diff.restartNeeded }, 'BGP global settings changed: restarting BGP');
          await this.d.router.stopBgp();
          await this.d.router.startBgp(desiredGlobal);
          for (const p of peers) await this.d.router.addPeer(p);
          if (advertisements.length) await this.d.router.addAdvertisements(advertisements);
          changes += 1 + peers.length + advertisements.length;
        } else {
          // gobgpd restarted under us (sidecar crash) while the kernel kept forwarding: graceful-restart
          // peers get the Restart State bit, so the routers keep this node's routes meanwhile.
          const restarting = !!diff.startBgp && this.programmedBgp;
          if (diff.startBgp) {
            log.info({ node: this.d.nodeName, asn: desiredGlobal.asn, routerId: desiredGlobal.routerId, restarting }, 'starting BGP (gobgpd was unconfigured)');
            await this.d.router.startBgp(diff.startBgp);
            changes++;
          }
          for (const a of diff.deletePeers) {
            await this.d.router.deletePeer(a);
            this.downSince.delete(a);
            this.peerStates.delete(a);
          }
          for (const p of diff.addPeers) {
            await this.d.router.addPeer(p, restarting ? { restarting: true } : undefined);
            this.downSince.set(p.address, Date.now());
          }
          for (const p of diff.updatePeers) await this.d.router.updatePeer(p);
          if (diff.deleteAdvertisements.length) await this.d.router.deleteAdvertisements(diff.deleteAdvertisements);
          if (diff.addAdvertisements.length) await this.d.router.addAdvertisements(diff.addAdvertisements);
          for (const a of diff.deleteAdvertisements) this.originated.delete(a.prefix);
          changes += diff.deletePeers.length + diff.addPeers.length + diff.updatePeers.length + diff.deleteAdvertisements.length + diff.addAdvertisements.length;
          if (changes) {
            log.info(
              {
                node: this.d.nodeName,
                addPeers: diff.addPeers.map((p) => p.address),
                updatePeers: diff.updatePeers.map((p) => p.address),
                deletePeers: diff.deletePeers,
                advertise: diff.addAdvertisements.map((a) => a.prefix),
                withdraw: diff.deleteAdvertisements.map((a) => a.prefix),
              },
              'BGP changes applied',
            );
          }
        }
        this.programmedBgp = true;
      } catch (e) {
        bgpError = `gobgpd: ${(e as Error).message}`;
      }
    }
    let sessions: PeerStatus[] = [];
    if (!bgpError && planned) {
      try {
        sessions = (await this.d.router.listPeers()).map((p) => p.status);
      } catch (e) {
        bgpError = `gobgpd: ${(e as Error).message}`;
      }
    }
    for (const s of sessions) {
      if (s.state === 'Established') this.downSince.delete(s.address);
      else if (!this.downSince.has(s.address)) this.downSince.set(s.address, Date.now());
    }

    return { changes, ...(bgpError ? { bgpError } : {}), sessions, passwords };
  }

  /** Host-gw routes (our protocol only) diffed against the kernel. */
  private async applyRoutes(spec: NodeFabricSpec, uplinks: Map<4 | 6, Uplink>): Promise<{ changes: number; routeErrors: string[]; desiredRoutes: KernelRoute[]; installed: KernelRoute[] }> {
    let changes = 0;
    const routeErrors: string[] = [];
    const desiredRoutes: KernelRoute[] = [];
    for (const r of spec.directRoutes ?? []) {
      const fam = parseCidr(r.destination)?.family;
      const up = fam ? uplinks.get(fam) : undefined;
      if (!up) {
        routeErrors.push(`${r.destination}: no IPv${fam} uplink`);
        continue;
      }
      desiredRoutes.push({ dst: r.destination, via: r.via, dev: up.dev });
    }
    const table = this.table();
    let installed = await table.list();
    const rd = diffRoutes(desiredRoutes, installed);
    if (rd.add.length || rd.del.length) {
      const res = await table.apply(rd.add, rd.del);
      for (const e of res.errors) routeErrors.push(`${e.op} ${e.route.dst} via ${e.route.via}: ${e.error}`);
      changes += rd.add.length + rd.del.length;
      log.info({ node: this.d.nodeName, add: rd.add.map((r) => `${r.dst} via ${r.via}`), del: rd.del.map((r) => `${r.dst} via ${r.via}`), errors: res.errors.length }, 'host routes changed');
      const list = (rs: KernelRoute[]) => rs.slice(0, 5).map((r) => `${r.dst} via ${r.via}`).join(', ') + (rs.length > 5 ? `, … (${rs.length})` : '');
      this.event('Normal', 'HostRoutesChanged', [rd.add.length ? `added ${list(rd.add)}` : '', rd.del.length ? `removed ${list(rd.del)}` : ''].filter(Boolean).join('; '));
      installed = await table.list();
    }
    return { changes, routeErrors, desiredRoutes, installed };
  }

  private async writeStatus(nf: NodeFabricObj, status: NodeFabricStatus, conds: ReturnType<typeof agentConditions>): Promise<void> {
    const types = new Set(conds.map((c) => c.type));
    const existing = ((nf.status?.conditions ?? []) as Condition[]).filter((c) => types.has(c.type));
    const next = setConditions(existing, conds, nf.metadata.generation, new Date());
    const sig = stableStringify({ ...status, conditions: next.map(({ lastTransitionTime: _t, ...c }) => c) });
    const current = { ...(nf.status ?? {}) } as Record<string, unknown>;
    delete current.conditions;
    delete current.lastSyncTime;
    const sameOnServer =
      sameConditions(existing, next) && stableStringify(Object.fromEntries(Object.entries(current))) === stableStringify(status);
    if (sig === this.lastStatus && sameOnServer) return;
    await this.d.rest.apply(
      `${API}/nodefabrics/${this.d.nodeName}/status`,
      { apiVersion: API_VERSION, kind: 'NodeFabric', metadata: { name: this.d.nodeName }, status: { ...status, conditions: next, lastSyncTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') } },
      AGENT_FIELD_MANAGER,
    );
    this.lastStatus = sig;
  }
}
