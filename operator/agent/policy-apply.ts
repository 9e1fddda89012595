/**
 * NetworkPolicy enforcement on this node: informers for Pods, Namespaces and NetworkPolicies, and a
 * reconciler with its own work queue key ("policy"), so a policy change never waits behind a BGP or
 * route sync. Each sync computes the desired table from the informer caches (pure,
 * operator/policy/desired.ts) and hands it to the PolicyEnforcer (one nft transaction + conntrack cut).
 *
 * Nothing is programmed until all three informers have synced: a table computed from a partial
 * cache would open holes. A policy that does not parse fails closed (its pods isolated both ways)
 * and is reported as a Warning Event; an nft failure leaves the previous table in place (nft -f is
 * atomic), is reported as a Warning Event and PolicyReady=False, and is retried with backoff.
 *
 * The report (counts + PolicyReady condition) is read by the agent's status path (sync.ts); when it
 * changes, `onReport` asks that path to write it.
 */
import type { ConditionInput } from '../api/conditions.js';
import { Informer, type KObj } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import { runWorkers, WorkQueue } from '../kube/workqueue.js';
import { realClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { lastCall } from '../lib/memo.js';
import { Gauge, Histogram, type Registry } from '../lib/metrics.js';
import { stableStringify } from '../lib/stable.js';
import type { SyncResult } from '../nftables/applier.js';
import type { EnforceResult } from '../nftables/enforcer.js';
import { desiredPolicyState, samePolicyInputs, type PolicyDesired } from '../policy/desired.js';
import { podInfoFromObject } from '../policy/model.js';
import type { Ruleset } from '../policy/objects.js';
import { slimPod } from './slim.js';
import { AGENT_RESYNC_MS } from './sync.js';

/** What the reconciler needs from the kernel side (PolicyEnforcer satisfies it). */
export interface PolicyKernel {
  enforce(rs: Ruleset): Promise<EnforceResult>;
  checkDrift(): Promise<string | null>;
  /**
   * When both are present the reconciler commits with `commit` and runs `cut` after it, off the sync
   * path (one cut at a time, again with the newest ruleset if commits happened meanwhile): a change
   * never waits for the previous change's conntrack cut.
   */
  commit?(rs: Ruleset): Promise<SyncResult>;
  cut?(current: () => Ruleset): Promise<{ cut: unknown[]; error?: string; ms: number }>;
}

export interface PolicyStatusReport {
  policies: number;
  invalid: number;
  localPods: number;
  isolatedIngress: number;
  isolatedEgress: number;
  objects: number;
}

export interface PolicyReport {
  status: PolicyStatusReport | undefined;
  condition: ConditionInput;
}

export const POLICY_LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function policyMetrics(r: Registry) {
  return {
    latency: new Histogram({
      name: 'podfabric_agent_policy_programming_seconds',
      help: 'From the first unprogrammed Pod/Namespace/NetworkPolicy change seen by the agent to the nft commit that includes it',
      buckets: POLICY_LATENCY_BUCKETS,
      registers: [r],
    }),
    objects: new Gauge({ name: 'podfabric_agent_policy_objects', help: 'Objects the policy reconciler sees or programs', labelNames: ['kind'], registers: [r] }),
    syncs: new Gauge({ name: 'podfabric_agent_policy_last_sync_statements', help: 'nft statements written by the last policy sync', registers: [r] }),
  };
}

export interface PolicyReconcilerDeps {
  nodeName: string;
  rest: KubeRest;
  kernel: PolicyKernel;
  registry: Registry;
  event: (type: 'Normal' | 'Warning', reason: string, message: string) => void;
  /** The report changed: write the status. */
  onReport: () => void;
  log: Logger;
  clock?: Clock;
  /** This node's pod CIDRs (its plan): unknown addresses in them are dropped. Call kick() when they change. */
  podCIDRs?: () => string[];
  /** Drift check and full recompute interval (default AGENT_RESYNC_MS). */
  resyncMs?: number;
}

/** The PolicyReady condition and status counts from the reconciler's state (pure). */
export function policyReport(s: { synced: boolean; error?: string; desired?: PolicyDesired }): PolicyReport {
  if (!s.synced) return { status: undefined, condition: { type: 'PolicyReady', status: 'False', reason: 'CachesNotSynced', message: 'waiting for the Pod, Namespace and NetworkPolicy caches; nothing programmed yet' } };
  const c = s.desired?.counts;
  const status = c ? { policies: c.policies, invalid: c.invalid, localPods: c.localPods, isolatedIngress: c.isolatedIngress, isolatedEgress: c.isolatedEgress, objects: c.objects } : undefined;
  if (s.error) return { status, condition: { type: 'PolicyReady', status: 'False', reason: 'ApplyFailed', message: `nftables: ${s.error}`.slice(0, 1024) } };
  if (!c) return { status, condition: { type: 'PolicyReady', status: 'False', reason: 'Pending', message: 'first policy sync not done yet' } };
  const bad = c.invalid ? `; ${c.invalid} invalid polic${c.invalid === 1 ? 'y' : 'ies'} fail closed (see Events)` : '';
  return {
    status,
    condition: { type: 'PolicyReady', status: 'True', reason: 'Programmed', message: `${c.policies} policies, ${c.localPods} local pods (${c.isolatedIngress} isolated for ingress, ${c.isolatedEgress} for egress) programmed${bad}` },
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;

// Only what changes the compiled table wakes the reconciler (pod status churn does not).
const podKey = (o: unknown) => stableStringify(podInfoFromObject(o));
const labelsKey = (o: KObj) => stableStringify(o.metadata.labels ?? {});
const specKey = (o: KObj) => stableStringify((o as { spec?: unknown }).spec ?? null);

export class PolicyReconciler {
  private readonly queue = new WorkQueue({ name: 'policy', baseDelayMs: 100, maxDelayMs: 10_000 });
  private readonly pods: Informer<KObj>;
  private readonly namespaces: Informer<KObj>;
  private readonly policies: Informer<KObj>;
  private readonly metrics;
  private readonly clock: Clock;
  private synced = false;
  private desired: PolicyDesired | undefined;
  /** The drift check and a kick with nothing changed reuse the last table (compiling is pure). */
  private readonly compile = lastCall(desiredPolicyState, samePolicyInputs);
  private error: string | undefined;
  private reported = '';
  private errorsReported = new Map<string, string>();
  /** When the oldest change not yet in the kernel was seen (ms), for the latency histogram. */
  private pendingSince: number | undefined;
  private workers: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The cut running off the sync path, whether another is owed, and the newest committed table. */
  private cutting: Promise<void> | undefined;
  private cutOwed = false;
  private committed: Ruleset | undefined;
  syncs = 0;

  constructor(private readonly d: PolicyReconcilerDeps) {
    this.clock = d.clock ?? realClock;
    this.metrics = policyMetrics(d.registry);
    const on = (key: (o: KObj) => string) => ({
      onAdd: () => this.changed(),
      onUpdate: (o: KObj, n: KObj) => {
        if (key(o) !== key(n)) this.changed();
      },
      onDelete: () => this.changed(),
    });
    // Every Pod of the cluster is cached on every node: only what the compiler reads is kept (slim.ts).
    this.pods = new Informer(d.rest, '/api/v1/pods', on(podKey), { name: 'pods', trim: slimPod });
    this.namespaces = new Informer(d.rest, '/api/v1/namespaces', on(labelsKey), { name: 'namespaces' });
    this.policies = new Informer(d.rest, '/apis/networking.k8s.io/v1/networkpolicies', on((o) => specKey(o) + labelsKey(o)), { name: 'networkpolicies' });
  }

  report(): PolicyReport {
    return policyReport({ synced: this.synced, ...(this.error ? { error: this.error } : {}), ...(this.desired ? { desired: this.desired } : {}) });
  }

  /** Starts the informers; programs nothing until all three have synced. Returns at once. */
  start(): void {
    this.pods.start();
    this.namespaces.start();
    this.policies.start();
    void Promise.all([this.pods.waitForSync(), this.namespaces.waitForSync(), this.policies.waitForSync()]).then(() => {
      if (this.stopped) return;
      this.synced = true;
      this.d.log.info({ pods: this.pods.size(), namespaces: this.namespaces.size(), policies: this.policies.size() }, 'policy caches synced; programming NetworkPolicy');
      this.workers = runWorkers(this.queue, 1, () => this.sync(), {
        component: 'agent-policy',
        log: this.d.log,
        onError: (_k, err) => this.d.log.warn({ err: (err as Error).message }, 'policy sync failed; retrying with backoff'),
        onDone: () => void this.syncs++,
      });
      this.changed();
      this.scheduleResync();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.queue.shutDown();
    this.pods.stop();
    this.namespaces.stop();
    this.policies.stop();
    await this.workers;
    await this.cutting;
  }

  /** Something outside the three informers changed (the node's pod CIDRs). */
  kick(): void {
    this.changed();
  }

  private changed(): void {
    if (this.stopped) return;
    this.pendingSince ??= this.clock.now();
    if (this.synced) this.queue.add('policy');
  }

  /** Periodically: compare the kernel's table with what was committed; on drift rewrite it. */
  private scheduleResync(): void {
    this.timer = setTimeout(async () => {
      if (this.stopped) return;
      const drift = await this.d.kernel.checkDrift().catch((e: Error) => `cannot list the table: ${e.message}`);
      if (drift) {
        this.d.event('Warning', 'PolicyTableDrift', `the policy table differs from what the agent committed (${drift}); rewriting it`.slice(0, 1000));
        this.pendingSince ??= this.clock.now();
      }
      this.queue.add('policy');
      this.scheduleResync();
    }, this.d.resyncMs ?? AGENT_RESYNC_MS);
  }

  private async sync(): Promise<void> {
    const since = this.pendingSince;
    this.pendingSince = undefined;
    const c0 = performance.now();
    const desired = this.compile({ policies: this.policies.list(), namespaces: this.namespaces.list(), pods: this.pods.list(), node: this.d.nodeName, podCIDRs: this.d.podCIDRs?.() ?? [] });
    const compileMs = performance.now() - c0;
    this.desired = desired;
    this.reportInvalid(desired.errors);
    let res: EnforceResult;
    const k = this.d.kernel;
    const split = !!(k.commit && k.cut);
    try {
      if (split) {
        const sync = await k.commit!(desired.ruleset);
        res = { sync, cut: [], ms: sync.ms };
      } else res = await k.enforce(desired.ruleset);
    } catch (e) {
      if (since !== undefined) this.pendingSince = Math.min(since, this.pendingSince ?? since);
      const msg = (e as Error).message;
      if (msg !== this.error) this.d.event('Warning', 'PolicyApplyFailed', `NetworkPolicy table not applied (previous table stays in place): ${msg}`.slice(0, 1000));
      this.error = msg;
      this.publish();
      throw e;
    }
    if (split) {
      this.committed = desired.ruleset;
      if (res.sync.statements > 0) this.cutAfterCommit();
    }
    if (this.error) this.d.event('Normal', 'PolicyApplied', 'NetworkPolicy table applied again');
    this.error = undefined;
    const sinceChangeMs = since === undefined ? undefined : this.clock.now() - since;
    if (sinceChangeMs !== undefined) this.metrics.latency.observe(sinceChangeMs / 1000);
    this.metrics.syncs.set(res.sync.statements);
    this.metrics.objects.set({ kind: 'pods' }, this.pods.size());
    this.metrics.objects.set({ kind: 'namespaces' }, this.namespaces.size());
    this.metrics.objects.set({ kind: 'networkpolicies' }, this.policies.size());
    this.metrics.objects.set({ kind: 'local_pods' }, desired.counts.localPods);
    this.metrics.objects.set({ kind: 'nft_objects' }, desired.counts.objects);
    if (res.cutError) this.d.event('Warning', 'PolicyConntrackFailed', `established flows not cut: ${res.cutError}`.slice(0, 1000));
    // The timings split one change's path in the agent (bench policy reads them): compile, nft commit,
    // the whole enforce (commit + conntrack cut), and first unprogrammed change seen → done.
    if (res.sync.statements > 0)
      this.d.log.info(
        { statements: res.sync.statements, cut: res.cut.length, ms: Math.round(res.ms), compileMs: round1(compileMs), nftMs: round1(res.sync.nftMs), sinceChangeMs: sinceChangeMs === undefined ? undefined : round1(sinceChangeMs) },
        'policy table programmed',
      );
    this.publish();
  }

  /** Established flows the committed table now denies are cut after the commit, one cut at a time. */
  private cutAfterCommit(): void {
    if (this.cutting) {
      this.cutOwed = true;
      return;
    }
    this.cutting = (async () => {
      do {
        this.cutOwed = false;
        const r = await this.d.kernel.cut!(() => this.committed!);
        if (r.error) this.d.event('Warning', 'PolicyConntrackFailed', `established flows not cut: ${r.error}`.slice(0, 1000));
        this.d.log.info({ cut: r.cut.length, ms: round1(r.ms) }, 'conntrack cut');
      } while (this.cutOwed && !this.stopped);
    })().finally(() => (this.cutting = undefined));
  }

  /** One Warning Event per invalid policy and error text. */
  private reportInvalid(errors: PolicyDesired['errors']): void {
    const now = new Map(errors.map((e) => [e.key, e.error]));
    for (const [key, error] of now) {
      if (this.errorsReported.get(key) !== error) this.d.event('Warning', 'InvalidNetworkPolicy', `NetworkPolicy ${key} cannot be enforced as written; its pods are isolated both ways: ${error}`.slice(0, 1000));
    }
    this.errorsReported = now;
  }

  private publish(): void {
    const sig = stableStringify(this.report());
    if (sig === this.reported) return;
    this.reported = sig;
    this.d.onReport();
  }
}
