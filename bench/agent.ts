/**
 * The node agent at scale (`npm run bench -- agent [--routes N] [--prefixes N]`, default 10,000 each):
 * host routes from a plan through the agent's route code vs `ip -batch` (bench/agent-routes.ts), a no-op
 * resync's kernel writes, and advertised prefixes into gobgpd until an FRR peer holds them all vs a raw
 * AddPathStream (bench/agent-paths.ts). Peers and floors measured in the same run.
 * Creates namespaces pf-bench-rt, pf-bench-node, pf-bench-tor: run it under the shared netns lock.
 */
import { log } from '../operator/lib/log.js';
import { benchPaths } from './agent-paths.js';
import { benchRoutes } from './agent-routes.js';
import { buildOperator, installDeps, numberArg } from './child.js';
import { round } from './stats.js';

export async function main(args: string[] = []) {
  const routes = numberArg(args, 'routes', 10_000);
  const prefixes = numberArg(args, 'prefixes', 10_000);
  // The agent logs every route and prefix it changes at info; 10,000 of them would bury the figures.
  log.level = 'warn';
  await installDeps();
  await buildOperator(); // the benchmark runs the sources, but a broken tree must not be measured
  const r = await benchRoutes(routes);
  console.log(`agent: ${routes} host routes from a plan, agent sync (list, diff, ip -batch, list): ${round(r.agentMs)} ms; floor ip -batch of the same routes: ${round(r.ipBatchMs)} ms; routesRatio ${r.routesRatio} (target >= 0.5)`);
  console.log(`agent:   the same via 50 shared next hops (the agent's own share shows): agent ${round(r.sharedAgentMs)} ms, ip -batch ${round(r.sharedIpBatchMs)} ms; ratio ${r.sharedRoutesRatio}`);
  console.log(`agent: no-op resync of ${routes} routes: ${round(r.noopResyncMs)} ms, ${r.noopKernelWrites} kernel route events (ip monitor), ${r.noopTableBatches} batches sent by the route table`);
  const p = await benchPaths(prefixes);
  console.log(`agent: ${prefixes} prefixes until the FRR peer holds them all: agent BGP sync ${round(p.agentSyncMs)} ms, GoBGP client alone ${round(p.clientMs)} ms; floor raw AddPathStream ${round(p.rawMs)} ms; pathsRatio ${p.pathsRatio} (target >= 0.5), client alone ${p.clientPathsRatio}`);
  return {
    bench: 'agent',
    routes,
    routesAgentMs: round(r.agentMs),
    routesIpBatchMs: round(r.ipBatchMs),
    routesRatio: r.routesRatio,
    routesSharedNextHopsAgentMs: round(r.sharedAgentMs),
    routesSharedNextHopsIpBatchMs: round(r.sharedIpBatchMs),
    routesSharedNextHopsRatio: r.sharedRoutesRatio,
    noopKernelWrites: r.noopKernelWrites,
    noopTableBatches: r.noopTableBatches,
    noopResyncMs: round(r.noopResyncMs),
    prefixes,
    pathsAgentSyncMs: round(p.agentSyncMs),
    pathsClientMs: round(p.clientMs),
    pathsRawAddPathStreamMs: round(p.rawMs),
    pathsRatio: p.pathsRatio,
    clientPathsRatio: p.clientPathsRatio,
    targets: { routesRatio: '>= 0.5', noopKernelWrites: '0', pathsRatio: '>= 0.5' },
  };
}
