/**
 * A leader whose main thread is made busy, run as its own process by test/integration/leader-thread.test.ts:
 *   node --import tsx test/support/busy-leader.ts <thread|inline> <kubeconfig> <namespace> <lease> <identity> <blockMs>
 * Once it leads it blocks its main thread (a busy loop) for blockMs, prints one JSON line per event
 * ({"event":"started"|"unblocked"|"lost"}), then releases the lease and exits 0. Losing the lease exits 3.
 * Timings: lease 4 s, renew deadline 3 s, retry 500 ms (room for a loaded apiserver's answers).
 */
import { LeaderElector } from '../../operator/kube/leader.js';
import { LeaderThread } from '../../operator/kube/leader-thread.js';
import { kubeLeaseStore } from '../../operator/kube/lease-store.js';
import { KubeRest, loadKubeConfig } from '../../operator/kube/rest.js';

const [mode, kubeconfig, namespace, leaseName, identity, blockMs] = process.argv.slice(2) as [string, string, string, string, string, string];
const timings = { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 };
const say = (event: string, extra: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ event, ...extra })}\n`);

const callbacks = {
  onStartedLeading: () => {
    say('started');
    setTimeout(() => {
      const end = Date.now() + Number(blockMs);
      while (Date.now() < end) {
        /* the main thread is busy: no timer, no I/O callback runs here */
      }
      say('unblocked', { leading: elector.isLeader() });
      setTimeout(() => void elector.stop().then(() => process.exit(0)), 0);
    }, 0);
  },
  onStoppedLeading: () => {
    say('lost');
    process.exit(3);
  },
};

const elector =
  mode === 'thread'
    ? new LeaderThread({ kubeconfig, namespace, leaseName, identity, ...timings, ...callbacks })
    : new LeaderElector({ identity, store: kubeLeaseStore(new KubeRest(loadKubeConfig(kubeconfig), { timeoutMs: 1_000 }), namespace, leaseName), ...timings, ...callbacks });
void elector.run();
