/**
 * One agent sync, as a pipeline: observe (the plan, the uplinks) → apply (BGP and host routes,
 * concurrently, each diffing desired against what gobgpd and the kernel have) → observe again (the
 * sessions) → gate the CNI configuration on the fabric working → report (conditions, Events, metrics,
 * and the status, written on a change or a heartbeat). Every side is behind an interface, so the whole
 * decision chain runs in unit tests with a fake BGP speaker, route table and clock.
 */
import type { Condition } from '../api/common.js';
import type { FabricConfigSpec } from '../api/fabricconfig.js';
import type { NodeFabricObj } from '../api/kinds.js';
import type { NodeFabricSpec } from '../api/nodefabric.js';
import type { NodePeers } from '../plan/peers.js';
import type { CniManager } from '../cni/manager.js';
import type { Router } from '../gobgp/speaker.js';
import type { Md5Counters } from '../host/netstat.js';
import { mergeConditions, type WithStatus } from '../kube/status.js';
import type { ReconcileResult } from '../kube/workqueue.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { Gauge, Histogram, RECONCILE_BUCKETS, type Registry } from '../lib/metrics.js';
import { diffRoutes } from '../routes/model.js';
import type { DirectRoute } from '../plan/segment.js';
import { BgpApplier, type BgpWant, type PasswordLookup } from './bgp-apply.js';
import type { NatSource } from './nat-apply.js';
import { buildReport, StatusHeartbeat } from './report.js';
import type { PolicyReport } from './policy-apply.js';
import { RoutesApplier, type RouteTables, type Uplink } from './routes-apply.js';
import type { ServiceRoutesSource } from './service-routes.js';
import { SessionTracker } from './sessions.js';
import { agentConditions } from './status.js';

/**
 * The agent's periodic full sync (routes, BGP, Services, NAT; the NetworkPolicy table's drift check):
 * a safety net, 90 s as Calico's route and iptables refresh. Changes arrive through watches — the
 * informers, the kernel's route monitor, gobgpd's peer watch — not through it. At 30 s the resyncs of
 * 3,250 simulated agents were ~30 % of their process's thread (bench scale, its CPU profile).
 */
export const AGENT_RESYNC_MS = 90_000;

export type AgentMetrics = ReturnType<typeof agentMetrics>;

export function agentMetrics(r: Registry) {
  return {
    sessionUp: new Gauge({ name: 'podfabric_agent_bgp_session_up', help: '1 when the BGP session is Established', labelNames: ['peer', 'peer_name'], registers: [r] }),
    sessionState: new Gauge({ name: 'podfabric_agent_bgp_session_state', help: '1 for the current state of each session', labelNames: ['peer', 'state'], registers: [r] }),
    prefixesSent: new Gauge({ name: 'podfabric_agent_bgp_prefixes_advertised', help: 'Prefixes sent to the peer', labelNames: ['peer'], registers: [r] }),
    prefixesRecv: new Gauge({ name: 'podfabric_agent_bgp_prefixes_received', help: 'Prefixes received from the peer', labelNames: ['peer'], registers: [r] }),
    routes: new Gauge({ name: 'podfabric_agent_routes_installed', help: 'Host-gw routes with our protocol in the kernel', registers: [r] }),
    reconcile: new Histogram({ name: 'podfabric_agent_reconcile_duration_seconds', help: 'Time for one agent sync', labelNames: ['result'], buckets: RECONCILE_BUCKETS, registers: [r] }),
    changes: new Gauge({ name: 'podfabric_agent_last_sync_changes', help: 'Changes applied by the last sync (routes + BGP)', registers: [r] }),
  };
}

export interface SyncDeps {
  router: Router;
  routes: RouteTables;
  detectUplink: (nodeIP: string) => Promise<Uplink | null>;
  md5Counters?: () => Promise<Md5Counters | null>;
  cni?: Pick<CniManager, 'reconcile'>;
  passwords: PasswordLookup;
  /** Applies the agent-owned status fields (server-side apply of the status subresource). */
  writeStatus: (status: Record<string, unknown>) => Promise<void>;
  event: (type: 'Normal' | 'Warning', reason: string, message: string) => void;
  /** A kernel deletion of one of our routes: sync again. */
  kick: () => void;
  metrics: AgentMetrics;
  clock: Clock;
  random?: () => number;
  bgpListenPort?: number;
  /** This node's Service routes (advertised next to the pod CIDRs; status.services). */
  services?: ServiceRoutesSource;
  /** NetworkPolicy enforcement's counts and PolicyReady condition (absent when enforcement is off). */
  policy?: () => PolicyReport;
  /** natOutgoing: the table inet podfabric-nat and the NATReady condition (absent when turned off). */
  nat?: NatSource;
}

const SESSION_STATES = ['Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established'];

/** What gobgpd should have: the derived sessions, and the NodeFabric's routes with their communities (none without one). */
function want(peers: NodePeers, spec: NodeFabricSpec | undefined): BgpWant {
  const communities = peers.communities;
  return {
    asn: peers.asn,
    routerId: peers.routerId,
    peers: peers.peers,
    advertisements: spec ? (spec.advertisements ?? []).map((a) => ({ prefix: a.prefix, nextHop: a.nextHop, communities })) : undefined,
  };
}

export class AgentSync {
  readonly sessions: SessionTracker;
  readonly heartbeat: StatusHeartbeat;
  private readonly bgp: BgpApplier;
  readonly routes: RoutesApplier;
  /** Ready: planned, every session established, every route in the kernel. */
  ready = false;
  /** Peer address → BGPPeer name, from the last plan (for Events). */
  peerNames = new Map<string, string>();
  fabricUid: string | undefined;
  private last = { routesOk: false, bgpOk: false, cniWritten: undefined as boolean | undefined, problems: '' };

  constructor(private readonly d: SyncDeps) {
    this.sessions = new SessionTracker(d.clock);
    this.heartbeat = new StatusHeartbeat(() => d.clock.now(), d.random);
    this.bgp = new BgpApplier(d.router, this.sessions, d.passwords, d.bgpListenPort);
    this.routes = new RoutesApplier(d.routes, {
      // Our own deletions show up here too; a sync with nothing to do costs one diff.
      deleted: () => d.kick(),
      changed: (message) => d.event('Normal', 'HostRoutesChanged', message),
    });
  }

  /**
   * `peers`: this node's sessions as the agent derives them (plan/peers.ts), undefined while its Node,
   * FabricConfig or the BGPPeers are not known (sessions stay as they are). `raw`: its NodeFabric (pod
   * CIDRs, advertisements, the L2Segments it belongs to), undefined until the controller has created
   * it: the sessions are configured anyway; routes, CNI and status wait for it. `direct`: the host
   * routes of the node's L2Segments (segments.ts), undefined while they are not known: the kernel's
   * routes are then left as they are, not reported as problems, and RoutesReady is Unknown.
   */
  async run(raw: NodeFabricObj | undefined, peers: NodePeers | undefined, direct: DirectRoute[] | undefined, config: FabricConfigSpec, log: Logger): Promise<ReconcileResult | void> {
    if (peers) this.peerNames = new Map(peers.peers.map((p) => [p.address, p.name]));
    if (!raw) {
      this.ready = false;
      if (!peers) return; // nothing known yet: gobgpd and the routes stay as they are
      // Sessions before the plan: a new node's peers are up while the controller allocates its block.
      const bgp = await this.bgp.apply(want(peers, undefined), [], log);
      if (bgp.bgpError) throw new Error(bgp.bgpError);
      return;
    }
    // --- observe: the plan
    const nf = raw;
    const spec = nf.spec;
    this.fabricUid = nf.metadata.uid;
    const planned = !!peers;
    const plannedPeers = peers?.peers ?? [];

    // --- apply: BGP, and (once the uplinks are known) host routes, concurrently
    const svc = this.d.services?.plan(config, nf.status?.services);
    const bgpDone = this.bgp.apply(peers && want(peers, spec), [...((nf.status?.advertised as string[] | undefined) ?? []), ...(svc?.lookup ?? [])], log, svc?.advertisements);
    bgpDone.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
    // Uplinks (one per family), reported for the controller's adjacency detection.
    const uplinks = new Map<4 | 6, Uplink>();
    const found = await Promise.all((spec.nodeIPs ?? []).map(async (ip) => [ip, await this.d.detectUplink(ip)] as const));
    for (const [ip, u] of found) if (u) uplinks.set(ip.includes(':') ? 6 : 4, u);
    const [bgp, rt, nat] = await Promise.all([bgpDone, this.routes.apply(direct, uplinks, config.routeProtocol, log), this.d.nat?.sync(config, log)]);
    const { bgpError, sessions, passwords } = bgp;
    const { routeErrors, desiredRoutes, installed } = rt;
    const after = diffRoutes(desiredRoutes, installed);
    this.d.metrics.routes.set(installed.length);
    this.d.metrics.changes.set(bgp.changes + rt.changes);

    // --- observe: the sessions (with MD5 evidence while one is down)
    const observed = await this.sessions.observe(plannedPeers, sessions, passwords, this.d.md5Counters);

    // --- CNI configuration (gated on the fabric really working, unless configured not to wait)
    const bgpOk = planned && !bgpError && plannedPeers.length > 0 && observed.every((s) => s.state === 'Established');
    const routesOk = !rt.held && after.add.length === 0 && routeErrors.length === 0;
    let cni: { written: boolean; reason?: string; path?: string } | undefined;
    if (this.d.cni) {
      cni = await this.d.cni.reconcile({
        podCIDRs: spec.podCIDRs ?? [],
        fabricReady: bgpOk && routesOk,
        notReadyReason: !bgpOk ? 'waiting for BGP sessions to be established' : !routesOk ? 'waiting for host routes to be installed' : '',
        config: config.cni,
      });
    }

    // --- report
    const policy = this.d.policy?.();
    const status = { ...buildReport({ generation: nf.metadata.generation ?? 0, spec, planned: direct, uplinks, observed, live: sessions, installed, ...(cni ? { cni } : {}), ...(policy?.status ? { policy: policy.status } : {}) }), ...(svc ? { services: svc.status } : {}) };
    const conds = agentConditions({
      planned,
      peersPlanned: plannedPeers.length,
      sessions: observed,
      routesWanted: desiredRoutes.length,
      ...(rt.held ? { routesUnknown: true } : {}),
      routesMissing: after.add.map((r) => r.dst),
      routeErrors,
      routeProblems: status.routeProblemsTotal ?? 0,
      uplinkFound: uplinks.size > 0,
      ...(bgpError ? { bgpError } : {}),
      ...(cni ? { cni } : {}),
    });
    this.ready = conds.find((c) => c.type === 'Ready')?.status === 'True';
    // PolicyReady is reported beside Ready, not in it: the node routes whether or not policy is programmed.
    if (policy) conds.push(policy.condition);
    if (nat) conds.push(nat);
    this.announce(log, { bgpOk, routesOk, cni, problems: [...(bgpError ? [bgpError] : []), ...routeErrors].join('; ') });
    for (const s of sessions) {
      const m = this.d.metrics;
      m.sessionUp.set({ peer: s.address, peer_name: this.peerNames.get(s.address) ?? '' }, s.state === 'Established' ? 1 : 0);
      for (const st of SESSION_STATES) m.sessionState.set({ peer: s.address, state: st }, s.state === st ? 1 : 0);
      m.prefixesSent.set({ peer: s.address }, s.prefixesSent);
      m.prefixesRecv.set({ peer: s.address }, s.prefixesReceived);
    }
    const now = new Date(this.d.clock.now());
    const { next } = mergeConditions(nf as unknown as WithStatus, conds, nf.metadata.generation, now);
    const sig = StatusHeartbeat.signature(nf.metadata.uid, status, next as Condition[]);
    const why = this.heartbeat.due(sig);
    if (why) {
      await this.d.writeStatus({ ...status, conditions: next, lastSyncTime: now.toISOString().replace(/\.\d{3}Z$/, 'Z') });
      this.heartbeat.written(sig);
      log.debug({ why }, 'status written');
    }
    // Come back when the next heartbeat is due, even if nothing else happens.
    return { requeueAfterMs: Math.max(1, this.heartbeat.untilDue()) };
  }

  /** Logs and Events for what changed since the last sync: readiness, CNI, apply failures. */
  private announce(log: Logger, x: { bgpOk: boolean; routesOk: boolean; cni: { written: boolean; reason?: string; path?: string } | undefined; problems: string }): void {
    const last = this.last;
    if (x.bgpOk !== last.bgpOk || x.routesOk !== last.routesOk) {
      log.info({ bgpReady: x.bgpOk, routesReady: x.routesOk }, 'readiness changed');
      last.bgpOk = x.bgpOk;
      last.routesOk = x.routesOk;
    }
    if (x.cni && x.cni.written !== last.cniWritten) {
      if (x.cni.written) this.d.event('Normal', 'CNIConfigWritten', `CNI configuration in place at ${x.cni.path ?? '?'}: sessions established and routes installed, pods can start`);
      else if (x.cni.reason) this.d.event('Normal', 'CNIConfigWaiting', `CNI configuration not written: ${x.cni.reason}`);
      last.cniWritten = x.cni.written;
    }
    if (x.problems && x.problems !== last.problems) this.d.event('Warning', 'ApplyFailed', x.problems.slice(0, 1000));
    last.problems = x.problems;
  }

  close(): void {
    this.routes.close();
  }
}
