/**
 * The real NodeAgent, driven one step at a time: its route and BGP halves of a sync (applyRoutes,
 * applyBgp — private methods, called as they are, not copied) with the real route table and GoBGP
 * client, but no apiserver (those halves never talk to it; the plan is handed in).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { NodeAgent, type AgentDeps, type Uplink } from '../operator/agent/agent.js';
import type { NodeFabricSpec } from '../operator/api/nodefabric.js';
import type { Router } from '../operator/agent/router.js';
import type { KernelRoute, RouteTable } from '../operator/agent/routes.js';
import { KubeRest } from '../operator/kube/rest.js';
import { newRegistry } from '../operator/lib/metrics.js';

export interface AgentUnderTest {
  applyRoutes(spec: NodeFabricSpec, uplinks: Map<4 | 6, Uplink>): Promise<{ changes: number; routeErrors: string[]; desiredRoutes: KernelRoute[]; installed: KernelRoute[] }>;
  applyBgp(spec: NodeFabricSpec, planned: boolean, previouslyAdvertised: string[]): Promise<{ changes: number; bgpError?: string }>;
  stop(): Promise<void>;
}

const unusedRouter = new Proxy({} as Router, {
  get: (_t, p) => (p === 'close' ? () => undefined : () => Promise.reject(new Error(`bench: router.${String(p)} not wired`))),
});

export function agentUnderTest(d: { routes?: (protocol: number) => RouteTable; router?: Router }): AgentUnderTest {
  const kc = new KubeConfig();
  // Never contacted: the halves measured here do not talk to the apiserver.
  kc.loadFromOptions({ clusters: [{ name: 'none', server: 'https://127.0.0.1:1' }], users: [{ name: 'none' }], contexts: [{ name: 'none', cluster: 'none', user: 'none' }], currentContext: 'none' });
  const deps: AgentDeps = {
    nodeName: 'bench',
    rest: new KubeRest(kc),
    router: d.router ?? unusedRouter,
    routes: d.routes ?? (() => { throw new Error('bench: routes not wired'); }),
    detectUplink: async () => null,
    registry: newRegistry('agent', false),
  };
  const agent = new NodeAgent(deps) as unknown as AgentUnderTest & { stop(): Promise<void> };
  for (const m of ['applyRoutes', 'applyBgp'] as const) {
    if (typeof agent[m] !== 'function') throw new Error(`bench: NodeAgent has no ${m}() any more: update bench/agent-under-test.ts to the agent's sync steps`);
  }
  return {
    applyRoutes: (spec, uplinks) => agent.applyRoutes(spec, uplinks),
    applyBgp: (spec, planned, prev) => agent.applyBgp(spec, planned, prev),
    stop: () => agent.stop(),
  };
}
