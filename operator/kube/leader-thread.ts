/**
 * Leader election on its own thread. The LeaderElector (leader.ts) runs in a worker (lease-worker.ts)
 * with its own event loop, heap and client: a leader whose main thread is saturated keeps renewing, so
 * it is not deposed for being busy — and a new leader's relist of every object, which would feed the
 * very saturation that cost the lease, is not triggered. client-go renews from its own goroutine for
 * the same reason.
 *
 * The main thread hears `started`, `leader` and `lost`. On `lost` onStoppedLeading runs (the caller
 * exits); if the main thread is too busy to run it, the worker kills the process failStopMs later.
 * A worker that dies for any other reason counts as lost: the main thread can no longer know it leads.
 */
import { Worker } from 'node:worker_threads';
import { log } from '../lib/log.js';
import { electionTimings } from './leader.js';

export interface LeaseThreadConfig {
  kubeconfig?: string | undefined;
  namespace: string;
  leaseName: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** After the lease is lost, the worker kills the process if it is still alive this much later; 0 never. */
  failStopMs: number;
  requestTimeoutMs: number;
  userAgent: string;
}

export type FromLeaseThread = { t: 'started' } | { t: 'lost' } | { t: 'leader'; id: string } | { t: 'stopped' };
export type ToLeaseThread = { t: 'stop' };

export interface LeaderThreadOptions extends Partial<Omit<LeaseThreadConfig, 'namespace' | 'leaseName' | 'identity'>> {
  namespace: string;
  leaseName: string;
  identity: string;
  onStartedLeading(): void;
  /** Called at most once; not called by stop(). */
  onStoppedLeading(): void;
  onNewLeader?(identity: string): void;
}

/** Half the margin between renew deadline and lease duration, at most 2 s. */
export function defaultFailStopMs(leaseDurationMs: number, renewDeadlineMs: number): number {
  return Math.max(1, Math.min(2000, Math.floor((leaseDurationMs - renewDeadlineMs) / 2)));
}

/**
 * The worker: the compiled lease-worker.js next to this file, or — run from source (tsx, vitest) — a
 * bootstrap that registers tsx in the worker and imports lease-worker.ts.
 */
function startWorker(cfg: LeaseThreadConfig): Worker {
  const opts = { workerData: cfg, resourceLimits: { maxOldGenerationSizeMb: 64 } };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./lease-worker.js', import.meta.url), opts);
  const entry = new URL('./lease-worker.ts', import.meta.url).href;
  return new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`, { ...opts, eval: true });
}

export class LeaderThread {
  private worker: Worker | undefined;
  private leading = false;
  private lastLeader = '';
  private ended = false;
  private done: Promise<void> | undefined;
  private finish: (() => void) | undefined;
  private stopped: Promise<void> | undefined;
  private readonly cfg: LeaseThreadConfig;

  constructor(private readonly o: LeaderThreadOptions) {
    // Checked here, not only in the worker: bad timings fail the caller at once.
    const t = electionTimings(o);
    this.cfg = {
      kubeconfig: o.kubeconfig,
      namespace: o.namespace,
      leaseName: o.leaseName,
      identity: o.identity,
      ...t,
      failStopMs: o.failStopMs ?? defaultFailStopMs(t.leaseDurationMs, t.renewDeadlineMs),
      requestTimeoutMs: o.requestTimeoutMs ?? 5_000,
      userAgent: o.userAgent ?? 'podfabric-leader',
    };
  }

  isLeader(): boolean {
    return this.leading;
  }

  leader(): string {
    return this.lastLeader;
  }

  /** Starts the worker; resolves when leadership is lost (after onStoppedLeading) or after stop(). */
  run(): Promise<void> {
    this.done ??= new Promise<void>((resolve) => {
      this.finish = resolve;
      const w = startWorker(this.cfg);
      this.worker = w;
      w.on('message', (m: FromLeaseThread) => this.onMessage(m));
      w.on('error', (e) => this.lose(`the lease thread failed: ${e.message}`));
      w.on('exit', (code) => this.lose(`the lease thread exited (code ${code})`));
    });
    return this.done;
  }

  private onMessage(m: FromLeaseThread): void {
    if (this.ended) return;
    switch (m.t) {
      case 'started':
        this.leading = true;
        this.call('onStartedLeading', () => this.o.onStartedLeading());
        break;
      case 'leader':
        this.lastLeader = m.id;
        this.call('onNewLeader', () => this.o.onNewLeader?.(m.id));
        break;
      case 'lost':
        this.lose('the lease was lost');
        break;
      case 'stopped':
        break;
    }
  }

  private lose(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    const wasLeading = this.leading;
    this.leading = false;
    log.error({ identity: this.cfg.identity, wasLeading }, `leader election ended: ${reason}`);
    this.call('onStoppedLeading', () => this.o.onStoppedLeading());
    void this.worker?.terminate();
    this.finish?.();
  }

  private call(name: string, f: () => void): void {
    try {
      f();
    } catch (e) {
      log.error({ identity: this.cfg.identity, err: (e as Error).message }, `${name} threw`);
    }
  }

  /** Stops campaigning; releases the lease if held (the worker waits for an attempt in flight first). */
  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    const w = this.worker;
    const wasEnded = this.ended;
    this.ended = true;
    this.leading = false;
    this.stopped = (async () => {
      if (w && !wasEnded) {
        const bye = new Promise<void>((resolve) => {
          w.on('message', (m: FromLeaseThread) => m.t === 'stopped' && resolve());
          w.once('exit', () => resolve());
        });
        w.postMessage({ t: 'stop' } satisfies ToLeaseThread);
        const limit = new Promise<void>((r) => setTimeout(r, this.cfg.renewDeadlineMs * 2).unref());
        await Promise.race([bye, limit]);
        await w.terminate();
      }
      this.finish?.();
    })();
    return this.stopped;
  }
}
