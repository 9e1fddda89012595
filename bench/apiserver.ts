/**
 * Bench helpers around a real kube-apiserver (hack/apiserver/start.sh, fresh data each time): start and
 * watch it, count its writes from its own metrics (apiserver_request_total by verb and resource), and
 * follow allocations through a watch (no polling lists of 5,000 objects, which would load the apiserver
 * being measured).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../operator/lib/exec.js';
import { waitUntil } from '../hack/lab/lib/daemon.js';
import { KubeRest, loadKubeConfig } from '../operator/kube/rest.js';
import { guard, onInterrupt, ROOT, watchPid, type Watched } from './child.js';

export interface BenchApiserver {
  dir: string;
  kubeconfig: string;
  /** Unthrottled admin client (the benchmark's own requests). */
  rest: KubeRest;
  watched: Watched;
  stop(): Promise<void>;
}

/** A fresh apiserver (new data dir, new port); with crds, podfabric's CRDs installed and established. */
export async function startBenchApiserver(label: string, opts: { crds: boolean }): Promise<BenchApiserver> {
  const dir = await mkdtemp(join(tmpdir(), `pf-bench-${label}-`));
  // BENCH_APISERVER_FLAGS: extra kube-apiserver flags for a look inside (e.g. --profiling=true for pprof).
  const extra = (process.env.BENCH_APISERVER_FLAGS ?? '').split(/\s+/).filter(Boolean);
  const start = await run(['bash', join(ROOT, 'hack/apiserver/start.sh'), dir, '--fresh', ...extra], { allowFail: true, timeoutMs: 1_800_000 });
  if (start.code !== 0) throw new Error(`kube-apiserver (${label}) did not start:\n${start.stderr.trim().split('\n').slice(-40).join('\n')}`);
  const kubeconfig = join(dir, 'kubeconfig');
  const pid = Number((await readFile(join(dir, 'pid'), 'utf8')).trim());
  const watched = watchPid(`kube-apiserver (${label})`, pid, join(dir, 'apiserver.log'));
  const stop = async () => {
    onInterrupt.delete(stop);
    await watched.stop();
    rest.close();
    await run(['bash', join(ROOT, 'hack/apiserver/stop.sh'), dir], { allowFail: true });
    // The store goes (gigabytes after a scale run); the logs stay for a look after the run.
    await rm(join(dir, 'data'), { recursive: true, force: true });
  };
  onInterrupt.add(stop);
  const rest = new KubeRest(loadKubeConfig(kubeconfig), { qps: 100_000, burst: 100_000, userAgent: 'podfabric-bench' });
  try {
    if (opts.crds) {
      const k = (args: string[]) => guard(run(['kubectl', `--kubeconfig=${kubeconfig}`, ...args], { timeoutMs: 120_000 }), [watched]);
      await k(['apply', '--server-side', '-f', join(ROOT, 'crds')]);
      await k(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
      await k(['create', 'namespace', 'podfabric-system']);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, kubeconfig, rest, watched, stop };
}

/** The apiserver's /metrics text, fetched directly (no kubectl process; up to 5 min on a loaded machine). */
function metricsText(kubeconfig: string): Promise<string> {
  return apiserverGet(kubeconfig, '/metrics', 300_000).then((b) => b.toString('utf8'));
}

/** GET a path of the apiserver as its admin (metrics, /debug/pprof with --profiling=true). */
export async function apiserverGet(kubeconfig: string, path: string, timeoutMs: number): Promise<Buffer> {
  const kc = loadKubeConfig(kubeconfig);
  const o: https.RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(o);
  const u = new URL(kc.getCurrentCluster()!.server);
  return new Promise<Buffer>((resolve, reject) => {
    const req = https.request({ ...o, hostname: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ((res.statusCode ?? 0) === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`GET ${path}: ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'APPLY', 'DELETE', 'DELETECOLLECTION']);
const READ_VERBS = new Set(['GET', 'LIST']);

/**
 * "resource[/subresource] VERB" → requests (writes, and GET/LIST reads; watches left out unless
 * asked for: a WATCH counts when it ends), from the apiserver's /metrics.
 */
export async function requestCounts(kubeconfig: string, opts: { watches?: boolean } = {}): Promise<Map<string, number>> {
  // An overloaded apiserver answers /metrics with 504 now and then: try a few times.
  let text = '';
  for (let i = 0; ; i++) {
    try {
      text = await metricsText(kubeconfig);
      break;
    } catch (e) {
      if (i >= 4) throw e;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    const verb = labels.verb ?? '';
    if (!labels.resource || !(WRITE_VERBS.has(verb) || READ_VERBS.has(verb) || (opts.watches && verb === 'WATCH'))) continue;
    const key = `${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''} ${labels.verb}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/**
 * "kind" → watch events the apiserver sent, and "kind bytes" → their encoded size, summed over every
 * watcher, from /metrics (apiserver_watch_events_total and apiserver_watch_events_sizes). What a
 * cluster-wide watch costs grows with the number of watchers: this is where it shows.
 */
export async function watchEventCounts(kubeconfig: string): Promise<Map<string, number>> {
  const text = await metricsText(kubeconfig);
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^apiserver_watch_events_(total|sizes_sum)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const kind = /resource="([^"]*)"/.exec(m[2]!)?.[1] ?? '?';
    const key = m[1] === 'total' ? kind : `${kind} bytes`;
    out.set(key, (out.get(key) ?? 0) + Number(m[3]));
  }
  return out;
}

/** after − before, keys with growth only. */
export function countDelta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of after) if (v - (before.get(k) ?? 0) > 0) d[k] = v - (before.get(k) ?? 0);
  return d;
}

interface Listed {
  metadata: { resourceVersion: string };
  items: Array<{ metadata: { name: string; resourceVersion?: string }; spec?: { podCIDRs?: string[] } }>;
}

/**
 * Follows `spec.podCIDRs` of every object of a collection (Nodes or NodeFabrics) through one watch
 * (resumed from the last resourceVersion if the apiserver closes it). `whenAll(names)` resolves at the
 * moment every named object has a block; `blocks()` is every block seen (duplicates show as fewer).
 */
export class BlockTracker {
  private readonly cidrs = new Map<string, string>();
  private rv = '';
  private stopped = false;
  private current: { stop(): void } | undefined;
  private waiters: Array<() => void> = [];
  failed: Error | undefined;

  constructor(
    private readonly rest: KubeRest,
    private readonly path: string,
  ) {}

  async start(): Promise<void> {
    // A fresh CRD's (or a just-emptied collection's) watch cache answers 429 "storage is (re)initializing" for a while.
    const l = await waitUntil(`list ${this.path}`, () => this.rest.get<Listed>(this.path), 120_000, 250);
    for (const i of l.items) this.see(i.metadata.name, i.spec?.podCIDRs);
    this.rv = l.metadata.resourceVersion;
    this.loop();
  }

  private see(name: string, podCIDRs: string[] | undefined): void {
    if (podCIDRs?.length && !this.cidrs.has(name)) {
      this.cidrs.set(name, podCIDRs.join(','));
      for (const w of this.waiters.splice(0)) w();
    }
  }

  private loop(): void {
    if (this.stopped) return;
    const w = this.rest.watch<Listed['items'][number] & { code?: number; message?: string }>(`${this.path}?watch=true&allowWatchBookmarks=true&resourceVersion=${this.rv}`, (e) => {
      if (e.type === 'ERROR') {
        this.failed = new Error(`watch ${this.path}: ${e.object.message ?? 'error'}`);
        for (const x of this.waiters.splice(0)) x();
        return;
      }
      if (e.object.metadata?.resourceVersion) this.rv = e.object.metadata.resourceVersion;
      if (e.type === 'ADDED' || e.type === 'MODIFIED') this.see(e.object.metadata.name, e.object.spec?.podCIDRs);
    });
    this.current = w;
    w.done.then(
      () => this.loop(),
      (err: Error) => {
        if (this.stopped) return;
        this.failed = err;
        for (const x of this.waiters.splice(0)) x();
      },
    );
  }

  count(names: string[]): number {
    return names.filter((n) => this.cidrs.has(n)).length;
  }

  blocks(names: string[]): Set<string> {
    return new Set(names.flatMap((n) => (this.cidrs.has(n) ? [this.cidrs.get(n)!] : [])));
  }

  /** Resolves with the time (performance.now) when every name has a block. */
  async whenAll(names: string[]): Promise<number> {
    for (;;) {
      if (this.failed) throw this.failed;
      if (this.count(names) === names.length) return performance.now();
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  stop(): void {
    this.stopped = true;
    this.current?.stop();
  }
}
