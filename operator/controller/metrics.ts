/** The controller's Prometheus metrics (queue, reconcile timing, IPAM). */
import { Counter, Gauge, Histogram, RECONCILE_BUCKETS, type Registry } from '../lib/metrics.js';

export type ControllerMetrics = ReturnType<typeof controllerMetrics>;

export function controllerMetrics(r: Registry, queueLen: () => number, nodesWithoutBlock: () => number | undefined) {
  return {
    depth: new Gauge({
      name: 'podfabric_controller_queue_depth',
      help: 'Keys waiting in the work queue',
      registers: [r],
      collect() {
        this.set(queueLen());
      },
    }),
    reconcile: new Histogram({
      name: 'podfabric_controller_reconcile_duration_seconds',
      help: 'Time to reconcile one key',
      labelNames: ['kind', 'result'],
      buckets: RECONCILE_BUCKETS,
      registers: [r],
    }),
    allocations: new Counter({ name: 'podfabric_ipam_allocations_total', help: 'Blocks allocated or adopted', labelNames: ['pool', 'how'], registers: [r] }),
    releases: new Counter({ name: 'podfabric_ipam_releases_total', help: 'Blocks released', labelNames: ['pool'], registers: [r] }),
    poolTotal: new Gauge({ name: 'podfabric_ipam_pool_blocks', help: 'Blocks in a pool', labelNames: ['pool'], registers: [r] }),
    poolAllocated: new Gauge({ name: 'podfabric_ipam_pool_blocks_allocated', help: 'Blocks allocated from a pool', labelNames: ['pool'], registers: [r] }),
    poolUtil: new Gauge({ name: 'podfabric_ipam_pool_utilization_ratio', help: 'Allocated / total blocks', labelNames: ['pool'], registers: [r] }),
    leader: new Gauge({ name: 'podfabric_controller_leader', help: '1 while this replica leads and runs', registers: [r] }),
    nodesWithoutBlock: new Gauge({
      name: 'podfabric_ipam_nodes_without_block',
      help: 'Nodes no pool could serve',
      registers: [r],
      // Computed at scrape time, not on every reconcile (that would be O(nodes) per node).
      collect() {
        const n = nodesWithoutBlock();
        if (n !== undefined) this.set(n);
      },
    }),
  };
}
