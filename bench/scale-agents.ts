/**
 * Simulated agents for `npm run bench -- scale`: each one is the real NodeAgent (operator/agent/agent.ts)
 * with its own KubeRest (its own connections, token bucket and user agent, as `podfabric agent` builds
 * it), its real informers, status writer, Event recorder, Service routes and NetworkPolicy reconciler;
 * only the node's side is fake: the BGP speaker and route table of test/support/fakes.ts, an uplink, and
 * a PolicyKernel that accepts every ruleset. The speaker reports when the agent's sync programs a peer,
 * which is how the benchmark sees a plan arrive inside an agent.
 */
import type { KubeConfigLike } from '../operator/kube/kubeconfig.js';
import { NodeAgent } from '../operator/agent/agent.js';
import type { PolicyKernel } from '../operator/agent/policy-apply.js';
import type { PeerConfig } from '../operator/gobgp/speaker.js';
import { KubeEventRecorder } from '../operator/kube/events.js';
import { KubeRest, type WatchEvent } from '../operator/kube/rest.js';
import { newRegistry } from '../operator/lib/metrics.js';
import { FakeRouteTable, FakeSpeaker } from '../test/support/fakes.js';
import { nodeName, rackSubnet } from './scale-world.js';

/** Requests the simulated agents sent, counted in their client (watches apart). */
export const clientCounts = { requests: 0, watches: 0 };

/** KubeRest counting what it sends (the agent's own client class; nothing else changed). */
class CountingRest extends KubeRest {
  override request<T = unknown>(...a: Parameters<KubeRest['request']>): Promise<T> {
    clientCounts.requests++;
    return super.request<T>(...a);
  }
  override watch<T>(path: string, onEvent: (e: WatchEvent<T>) => void) {
    clientCounts.watches++;
    return super.watch<T>(path, onEvent);
  }
}

/** The fake speaker, telling the benchmark each peer the agent's sync adds or updates. */
class ReportingSpeaker extends FakeSpeaker {
  constructor(private readonly onPeer: (p: PeerConfig) => void) {
    super();
  }
  override async addPeer(p: PeerConfig, opts?: { restarting?: boolean }) {
    await super.addPeer(p, opts);
    this.calls.length = 0; // nothing reads the call log here; keep the simulation's memory flat
    this.onPeer(p);
  }
  override async updatePeer(p: PeerConfig) {
    await super.updatePeer(p);
    this.calls.length = 0;
    this.onPeer(p);
  }
}

const acceptAll: PolicyKernel = {
  enforce: async () => ({ sync: { text: '', statements: 0, elements: 0, rules: 0, full: false, ms: 0, diffMs: 0, nftMs: 0 }, cut: [], ms: 0 }),
  checkDrift: async () => null,
};

export interface SimAgent {
  index: number;
  name: string;
  agent: NodeAgent;
  speaker: FakeSpeaker;
}

export interface FleetOptions {
  kc: KubeConfigLike;
  /** One HTTP/2 connection per agent (as runAgent), or HTTP/1.1 with a connection per watch (the old client). */
  http2: boolean;
  /** Called (with the node index) each time an agent's sync adds or updates a BGP peer. */
  onPeer: (index: number, p: PeerConfig) => void;
}

/** One simulated node agent, as `podfabric agent` wires it (runAgent), minus gobgpd, the kernel and CNI. */
export function simAgent(i: number, o: FleetOptions): SimAgent {
  const name = nodeName(i);
  // Same client settings as runAgent: QPS 20, burst 40, user agent podfabric-agent/NODE, HTTP/2 (unless --http1).
  const rest = new CountingRest(o.kc, { qps: 20, burst: 40, userAgent: `podfabric-agent/${name}`, http2: o.http2 });
  const speaker = new ReportingSpeaker((p) => o.onPeer(i, p));
  const agent = new NodeAgent({
    nodeName: name,
    rest,
    router: speaker,
    routes: () => new FakeRouteTable(),
    detectUplink: async (ip) => ({ dev: 'eth0', address: ip, subnet: rackSubnet(i) }),
    // The process's default metrics (GC observers, event-loop monitor) belong to the process, not to each agent.
    registry: newRegistry('agent', false),
    events: new KubeEventRecorder(rest, 'podfabric-agent', name),
    policy: acceptAll,
  });
  return { index: i, name, agent, speaker };
}

/** Starts the agents `inFlight` at a time (as nodes booting); resolves when every one has synced its caches. */
export async function startFleet(agents: SimAgent[], inFlight: number, progress: (started: number) => void): Promise<void> {
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < agents.length) {
        const a = agents[next++]!;
        await a.agent.start();
        if (++done % 250 === 0) progress(done);
      }
    }),
  );
}
