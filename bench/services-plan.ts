/**
 * The pure Service-advertisement decisions at scale (no apiserver): what one controller reconcile and
 * one agent evaluation cost on a large cluster.
 *   - planLoadBalancers over BENCH_SERVICES (10,000) LoadBalancer Services, all new (a bulk create),
 *     then again once they all hold addresses (a new leader's first reconcile);
 *   - planNodeServices for one node of 5,000 over the same Services with 10 endpoints each (100,000
 *     endpoints, half the Services externalTrafficPolicy Local).
 * Floor, measured in the same run: reading the same raw objects into the model (serviceFromJson,
 * endpointSliceFromJson), which any implementation pays.
 */
import { LoadBalancerPool } from '../operator/api/services.js';
import { parseObject } from '../operator/api/kinds.js';
import { planLoadBalancers, planNodeServices } from '../operator/services/index.js';
import { endpointSliceFromJson, nodeFromJson, serviceFromJson } from '../operator/services/model.js';
import { mergeNodeRoutes, serviceContribution, type NodeContext } from '../operator/services/advertise.js';
import { poolFromSpec } from '../operator/services/pools.js';
import { resolveServicesConfig } from '../operator/api/services.js';
import { percentile, round } from './stats.js';

const N = Number(process.env.BENCH_SERVICES ?? 10_000);
const NODES = 5000;
const RUNS = 5;

function time(fn: () => void): number[] {
  const out: number[] = [];
  for (let k = 0; k < RUNS; k++) {
    const t = performance.now();
    fn();
    out.push(performance.now() - t);
  }
  return out;
}

export async function main() {
  const pools = [parseObject(LoadBalancerPool, { apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', metadata: { name: 'bench' }, spec: { cidrs: ['10.100.0.0/16'] } })];
  const raw = (i: number, ingress: string[] = []) => ({
    metadata: { name: `s${i}`, namespace: `ns${i % 50}`, creationTimestamp: new Date(1e12 + i * 1000).toISOString() },
    spec: { type: 'LoadBalancer', clusterIPs: ['10.96.0.1'], ipFamilies: ['IPv4'], ports: [{ port: 80, protocol: 'TCP' }], externalTrafficPolicy: i % 2 ? 'Local' : 'Cluster', selector: { app: `s${i}` } },
    status: { loadBalancer: { ingress: ingress.map((ip) => ({ ip })) } },
  });
  const fresh = Array.from({ length: N }, (_, i) => raw(i));
  const now = new Date();
  const first = planLoadBalancers({ config: undefined, pools, services: fresh, now });
  const ip = new Map(first.decisions.map((d) => [`${d.namespace}/${d.name}`, d.ingress]));
  const assigned = Array.from({ length: N }, (_, i) => raw(i, ip.get(`ns${i % 50}/s${i}`) ?? []));
  const slices = assigned.map((s, i) => ({
    metadata: { namespace: s.metadata.namespace, name: `${s.metadata.name}-1`, labels: { 'kubernetes.io/service-name': s.metadata.name } },
    addressType: 'IPv4',
    endpoints: Array.from({ length: 10 }, (_, k) => ({ addresses: ['10.244.0.1'], nodeName: `n${(i * 10 + k) % NODES}`, conditions: { ready: true } })),
  }));
  const node = { metadata: { name: 'n7' }, status: { addresses: [{ type: 'InternalIP', address: '172.20.0.7' }] } };

  const allocNew = time(() => planLoadBalancers({ config: undefined, pools, services: fresh, now }));
  const allocRestart = time(() => planLoadBalancers({ config: undefined, pools, services: assigned, now }));
  let routes = 0;
  const advertise = time(() => {
    routes = planNodeServices({ node, config: undefined, pools, services: assigned, endpointSlices: slices, now: Date.now() }).advertisements.length;
  });
  // The agent's incremental path: one Service's EndpointSlice changed → its contribution, then the merge.
  const ctx: NodeContext = { node: nodeFromJson(node), config: resolveServicesConfig(undefined), pools: pools.map((p) => poolFromSpec(p.metadata.name, p.spec)) };
  const parsedSvcs = assigned.map(serviceFromJson);
  const parsedSlices = slices.map(endpointSliceFromJson);
  const cache = parsedSvcs.map((svc, k) => serviceContribution(ctx, svc, [parsedSlices[k]!]));
  const incremental = time(() => {
    cache[1] = serviceContribution(ctx, parsedSvcs[1]!, [parsedSlices[1]!]);
    mergeNodeRoutes(ctx, cache, undefined, Date.now());
  });
  const floorSvc = time(() => assigned.forEach(serviceFromJson));
  const floorNode = time(() => {
    assigned.forEach(serviceFromJson);
    slices.forEach(endpointSliceFromJson);
  });
  const p50 = (xs: number[]) => round(percentile(xs, 50));
  const result = {
    services: N,
    endpoints: N * 10,
    allocateNewMsP50: p50(allocNew),
    allocateRestartMsP50: p50(allocRestart),
    allocateFloorMsP50: p50(floorSvc),
    nodeAdvertiseMsP50: p50(advertise),
    nodeAdvertiseFloorMsP50: p50(floorNode),
    nodeIncrementalMsP50: p50(incremental),
    nodeRoutes: routes,
    assigned: first.decisions.filter((d) => d.ingress.length).length,
  };
  console.log(`${N} LoadBalancer Services, one pool, ${RUNS} runs each (p50):`);
  console.log(`  controller, all new:             ${result.allocateNewMsP50} ms   (${result.assigned} assigned)`);
  console.log(`  controller, all assigned (leader restart): ${result.allocateRestartMsP50} ms`);
  console.log(`  floor: parsing the Services:     ${result.allocateFloorMsP50} ms`);
  console.log(`  agent, one node of ${NODES}, ${N * 10} endpoints: ${result.nodeAdvertiseMsP50} ms → ${routes} routes`);
  console.log(`  floor: parsing Services + EndpointSlices: ${result.nodeAdvertiseFloorMsP50} ms`);
  console.log(`  agent, incremental (one Service's endpoints changed, then merge): ${result.nodeIncrementalMsP50} ms`);
  return result;
}
