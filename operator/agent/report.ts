/**
 * Report: the NodeFabric status the agent observed, built purely, and the heartbeat that decides when
 * it is written. A status is written when it differs from the last one this process wrote (conditions
 * compared without their transition times), or when the heartbeat is due; never in between. Each next
 * heartbeat is STATUS_HEARTBEAT_SECONDS away, jittered by ±STATUS_HEARTBEAT_JITTER.
 */
import type { Condition } from '../api/common.js';
import { MAX_ROUTE_PROBLEMS, STATUS_HEARTBEAT_JITTER, STATUS_HEARTBEAT_SECONDS, type NodeFabricSpec, type NodeFabricStatus, type RouteProblem } from '../api/nodefabric.js';
import type { PeerStatus } from '../gobgp/speaker.js';
import { canonIP, canonPrefix, compareCidr, parseCidr } from '../lib/ip.js';
import { stableStringify } from '../lib/stable.js';
import type { KernelRoute } from '../routes/model.js';
import type { Uplink } from './routes-apply.js';
import { sessionHint, type ObservedSession } from './status.js';

export interface ReportInput {
  generation: number;
  spec: NodeFabricSpec;
  /** The node's planned direct routes (from its L2Segments); undefined while unknown: no routeProblems then. */
  planned: ReadonlyArray<{ destination: string; via: string }> | undefined;
  uplinks: Map<4 | 6, Uplink>;
  observed: ObservedSession[];
  /** The sessions gobgpd listed this sync (counters and establishedAt). */
  live: PeerStatus[];
  installed: KernelRoute[];
  cni?: { written: boolean; reason?: string; path?: string };
  policy?: NodeFabricStatus['policy'];
}

/** By destination: v4 before v6, numerically; unparsable ones last, by text. */
function byDestination(a: RouteProblem, b: RouteProblem): number {
  const ca = parseCidr(a.destination);
  const cb = parseCidr(b.destination);
  if (ca && cb) return compareCidr(ca, cb);
  if (ca || cb) return ca ? -1 : 1;
  return a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0;
}

/**
 * Where the kernel's routes of ours differ from the planned direct routes, compared by destination and
 * next hop in canonical form: a planned route missing (no installedVia), a route not planned (no
 * plannedVia), another next hop (both; when the kernel holds several, the first in text order that
 * is not the planned one). Sorted by destination, the first `max` of them, and how many in all.
 */
export function routeProblems(
  planned: ReadonlyArray<{ destination: string; via: string }>,
  installed: readonly KernelRoute[],
  max = MAX_ROUTE_PROBLEMS,
): { problems: RouteProblem[]; total: number } {
  const want = new Map<string, string>();
  for (const r of planned) {
    const d = canonPrefix(r.destination);
    if (!want.has(d)) want.set(d, canonIP(r.via));
  }
  const have = new Map<string, Set<string>>();
  for (const r of installed) {
    const d = canonPrefix(r.dst);
    have.set(d, (have.get(d) ?? new Set()).add(canonIP(r.via)));
  }
  const out: RouteProblem[] = [];
  for (const [destination, plannedVia] of want) {
    const vias = have.get(destination);
    const other = vias && [...vias].filter((v) => v !== plannedVia).sort()[0];
    if (!vias) out.push({ destination, plannedVia });
    else if (other) out.push({ destination, plannedVia, installedVia: other });
  }
  for (const [destination, vias] of have) if (!want.has(destination)) out.push({ destination, installedVia: [...vias].sort()[0]! });
  return { problems: out.sort(byDestination).slice(0, max), total: out.length };
}

const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The agent-owned status fields (conditions and lastSyncTime are added when written). */
export function buildReport(i: ReportInput): NodeFabricStatus {
  const up = i.uplinks.get(4) ?? i.uplinks.get(6);
  const rp = i.planned ? routeProblems(i.planned, i.installed) : { problems: [], total: 0 };
  return {
    observedGeneration: i.generation,
    ...(up ? { uplink: up.dev } : {}),
    l2Subnets: [i.uplinks.get(4)?.subnet, i.uplinks.get(6)?.subnet].filter((x): x is string => !!x),
    sessions: i.observed.map((s) => {
      const live = i.live.find((x) => x.address === s.address);
      return {
        address: s.address,
        ...(s.name ? { name: s.name } : {}),
        state: (s.state as 'Unknown') ?? 'Unknown',
        ...(live?.establishedAt && s.state === 'Established' ? { establishedSince: rfc3339(live.establishedAt) } : {}),
        prefixesSent: live?.prefixesSent ?? 0,
        prefixesReceived: live?.prefixesReceived ?? 0,
        ...(s.state !== 'Established' ? { lastError: sessionHint(s).slice(0, 1024) } : {}),
      };
    }),
    sessionsEstablished: i.observed.filter((s) => s.state === 'Established').length,
    sessionsTotal: i.observed.length,
    advertised: (i.spec.advertisements ?? []).map((a) => a.prefix),
    routesInstalled: i.installed.length,
    ...(rp.total ? { routeProblems: rp.problems, routeProblemsTotal: rp.total } : {}),
    ...(i.cni ? { cni: i.cni } : {}),
    ...(i.policy ? { policy: i.policy } : {}),
  };
}

/** The next heartbeat interval in ms: the documented interval, jittered by ±jitter (random in [0,1)). */
export function heartbeatDelayMs(random: () => number, seconds = STATUS_HEARTBEAT_SECONDS, jitter = STATUS_HEARTBEAT_JITTER): number {
  return Math.round(seconds * 1000 * (1 + jitter * (2 * random() - 1)));
}

/** When to write the status: on a change, or when the heartbeat is due. */
export class StatusHeartbeat {
  private lastSig = '';
  private dueAt = 0;

  constructor(
    private readonly now: () => number,
    private readonly random: () => number = Math.random,
    private readonly seconds = STATUS_HEARTBEAT_SECONDS,
  ) {}

  /** The signature of what would be written (object identity, status, conditions without times). */
  static signature(uid: string | undefined, status: NodeFabricStatus, conditions: Condition[]): string {
    return stableStringify({ uid, status, conditions: conditions.map(({ lastTransitionTime: _t, ...c }) => c) });
  }

  /** Why a write is due now ('changed' | 'heartbeat'), or null. */
  due(sig: string): 'changed' | 'heartbeat' | null {
    if (sig !== this.lastSig) return 'changed';
    return this.now() >= this.dueAt ? 'heartbeat' : null;
  }

  /** Records a successful write; returns ms until the next heartbeat. */
  written(sig: string): number {
    this.lastSig = sig;
    const delay = heartbeatDelayMs(this.random, this.seconds);
    this.dueAt = this.now() + delay;
    return delay;
  }

  /** ms until the next heartbeat is due (0 when overdue). */
  untilDue(): number {
    return Math.max(0, this.dueAt - this.now());
  }
}
