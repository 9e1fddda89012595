/**
 * `podfabric controller`: leader election on a Lease; while leading, the FabricController runs.
 * Losing the lease ends the process (fail-stop), so a replica that is no longer leader never writes.
 * The lease is renewed from a worker thread (kube/leader-thread.ts), so a busy leader stays leader.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { KubeEventRecorder } from '../kube/events.js';
import { KubeRest, loadKubeConfig } from '../kube/rest.js';
import { LeaderThread } from '../kube/leader-thread.js';
import { log } from '../lib/log.js';
import { newRegistry, serveHealthAndMetrics } from '../lib/metrics.js';
import { parseDuration, parseListen } from '../lib/flags.js';
import { FabricController } from './controller.js';

export async function runController(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string', default: process.env.POD_NAMESPACE ?? 'podfabric-system' },
      'lease-name': { type: 'string', default: 'podfabric-controller' },
      // Unique per process: a restarted container keeps its pod name but must not inherit the old lease.
      identity: { type: 'string', default: `${process.env.POD_NAME ?? hostname()}_${randomUUID().slice(0, 8)}` },
      'metrics-addr': { type: 'string', default: ':9090' },
      qps: { type: 'string', default: '200' },
      burst: { type: 'string', default: '400' },
      workers: { type: 'string', default: '16' },
      'lease-duration': { type: 'string', default: '15s' },
      'renew-deadline': { type: 'string', default: '10s' },
      'retry-period': { type: 'string', default: '2s' },
      resync: { type: 'string', default: '5m' },
    },
  });
  const kc = loadKubeConfig(values.kubeconfig);
  const rest = new KubeRest(kc, { qps: Number(values.qps), burst: Number(values.burst), userAgent: 'podfabric-controller' });
  const registry = newRegistry('controller');
  const identity = values.identity!;
  const clog = log.child({ component: 'controller', identity });
  let controller: FabricController | undefined;
  let leading = false;

  const listen = parseListen(values['metrics-addr']!);
  const server = await serveHealthAndMetrics(
    registry,
    {
      healthz: () => ({ ok: true }),
      // A standby is ready (it is healthy and waiting); a leader once its caches are synced.
      readyz: () => (leading && !controller?.isReady() ? { ok: false, detail: 'leader: caches not synced yet' } : { ok: true }),
    },
    listen.host,
    listen.port,
  );
  clog.info({ port: server.port }, 'metrics and health endpoints listening');

  // The lease is renewed from its own thread with its own client: a leader whose main thread is
  // saturated keeps leading, and renewals never wait behind the controller's request throttle.
  const elector = new LeaderThread({
    kubeconfig: values.kubeconfig,
    namespace: values.namespace!,
    leaseName: values['lease-name']!,
    identity,
    userAgent: 'podfabric-controller-leader',
    leaseDurationMs: parseDuration(values['lease-duration']!),
    renewDeadlineMs: parseDuration(values['renew-deadline']!),
    retryPeriodMs: parseDuration(values['retry-period']!),
    onStartedLeading: () => {
      leading = true;
      clog.info('became leader; building caches');
      controller = new FabricController({
        rest,
        events: new KubeEventRecorder(rest, 'podfabric-controller', identity),
        registry,
        workers: Number(values.workers),
        resyncMs: parseDuration(values.resync!),
      });
      controller.start().catch((e: Error) => {
        clog.fatal({ err: e.message }, 'controller failed to start');
        process.exit(1);
      });
    },
    onStoppedLeading: () => {
      clog.fatal('lost the lease; exiting so that only the leader writes');
      process.exit(1);
    },
    onNewLeader: (id: string) => clog.info({ leader: id }, 'leader observed'),
  });

  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    clog.info({ signal: sig }, 'shutting down; releasing the lease');
    await controller?.stop().catch(() => undefined);
    await elector.stop().catch(() => undefined);
    await server.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await elector.run();
}
