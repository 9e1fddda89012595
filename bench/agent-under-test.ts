/**
 * The agent's own sync steps, driven one at a time with the real route table and GoBGP client: the
 * RoutesApplier and BgpApplier that NodeAgent's sync pipeline runs (operator/agent/), not copies. No
 * apiserver: these steps never talk to it; the plan is handed in.
 */
import { BgpApplier, type BgpWant } from '../operator/agent/bgp-apply.js';
import { RoutesApplier, type RoutesOutcome, type Uplink } from '../operator/agent/routes-apply.js';
import { SessionTracker } from '../operator/agent/sessions.js';
import type { DirectRoute } from '../operator/plan/segment.js';
import type { Router } from '../operator/gobgp/speaker.js';
import type { RouteTable } from '../operator/routes/model.js';
import { log } from '../operator/lib/log.js';
import { realClock } from '../operator/lib/clock.js';

export interface AgentUnderTest {
  /** The node's direct routes (what its L2Segments hold for it), applied as the agent's sync does. */
  applyRoutes(direct: DirectRoute[], uplinks: Map<4 | 6, Uplink>): Promise<RoutesOutcome>;
  applyBgp(want: BgpWant, previouslyAdvertised: string[]): Promise<{ changes: number; bgpError?: string }>;
  stop(): Promise<void>;
}

const unusedRouter = new Proxy({} as Router, {
  get: (_t, p) => (p === 'close' ? () => undefined : () => Promise.reject(new Error(`bench: router.${String(p)} not wired`))),
});

export function agentUnderTest(d: { routes?: (protocol: number) => RouteTable; router?: Router }): AgentUnderTest {
  const routes = new RoutesApplier(
    { open: d.routes ?? (() => { throw new Error('bench: routes not wired'); }) },
    { deleted: () => undefined, changed: () => undefined },
  );
  const bgp = new BgpApplier(d.router ?? unusedRouter, new SessionTracker(realClock), () => undefined);
  return {
    applyRoutes: (direct, uplinks) => routes.apply(direct, uplinks, 201, log),
    applyBgp: (want, prev) => bgp.apply(want, prev, log),
    stop: async () => routes.close?.(),
  };
}
