/**
 * The worker thread of leader-thread.ts: it campaigns for and renews the Lease with its own event loop,
 * its own V8 heap and its own client, so a leader whose main thread is busy (a burst of reconciles, a
 * long garbage collection) keeps renewing, as client-go's renew goroutine does.
 *
 * Losing the lease: the worker tells the main thread (which exits), and if the process is still alive
 * failStopMs later — the main thread is busy and has not read the message — it kills the whole process
 * with SIGKILL. That keeps the fail-stop promise: a former leader stops writing before
 * leaseDuration − renewDeadline has passed, the earliest a standby may take over.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LeaderElector } from './leader.js';
import { kubeLeaseStore } from './lease-store.js';
import { KubeRest, loadKubeConfig } from './rest.js';
import { lastWordsLog } from '../lib/log.js';
import type { FromLeaseThread, LeaseThreadConfig, ToLeaseThread } from './leader-thread.js';

const cfg = workerData as LeaseThreadConfig;
const port = parentPort!;
const send = (m: FromLeaseThread) => port.postMessage(m);

const rest = new KubeRest(loadKubeConfig(cfg.kubeconfig), { qps: 20, burst: 20, userAgent: cfg.userAgent, timeoutMs: cfg.requestTimeoutMs });
const elector = new LeaderElector({
  identity: cfg.identity,
  store: kubeLeaseStore(rest, cfg.namespace, cfg.leaseName),
  leaseDurationMs: cfg.leaseDurationMs,
  renewDeadlineMs: cfg.renewDeadlineMs,
  retryPeriodMs: cfg.retryPeriodMs,
  onStartedLeading: () => send({ t: 'started' }),
  onStoppedLeading: () => {
    send({ t: 'lost' });
    if (cfg.failStopMs > 0) {
      setTimeout(() => {
        lastWordsLog().fatal({ identity: cfg.identity, failStopMs: cfg.failStopMs }, 'lost the lease and the main thread has not exited: killing the process so that only the leader writes');
        process.kill(process.pid, 'SIGKILL');
      }, cfg.failStopMs);
    }
  },
  onNewLeader: (id) => send({ t: 'leader', id }),
});

port.on('message', (m: ToLeaseThread) => {
  if (m.t !== 'stop') return;
  void elector.stop().then(() => {
    send({ t: 'stopped' });
    rest.close();
    port.close();
  });
});

void elector.run();
