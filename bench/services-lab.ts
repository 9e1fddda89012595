/**
 * What bench/services.ts and bench/services-drain.ts share on the lab: one clock (CLOCK_MONOTONIC in ms,
 * the clock of process.hrtime() and of the drain client's time.clock_gettime), a kernel-FIB monitor of a
 * router namespace (`ip monitor route`: the moment zebra installs or removes a route, not the BGP RIB),
 * the ToR's view of one prefix through vtysh, and the Service / pod-readiness writes.
 */
import { spawn } from 'node:child_process';
import { vtyshJson } from '../hack/lab/lib/frr.js';
import { waitUntil } from '../hack/lab/lib/daemon.js';
import { runningStatus } from '../hack/lab/pods.js';
import type { KubeRest } from '../operator/kube/rest.js';

/** ms on CLOCK_MONOTONIC. */
export const mono = () => Number(process.hrtime.bigint()) / 1e6;

export interface FibEvent {
  t: number;
  dst: string;
  deleted: boolean;
}

/** Every route change `ip monitor route` reports in `ns` (multipath continuation lines skipped), stamped on arrival. */
export function fibMonitor(ns: string) {
  const events: FibEvent[] = [];
  const p = spawn('ip', ['-n', ns, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let err = '';
  let stopped = false;
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // Rejects the moment the monitor dies (a wait on it fails at once, with its error, not after a timeout).
  const dead = new Promise<never>((_, reject) => p.on('exit', (code) => !stopped && reject(new Error(`ip -n ${ns} monitor route exited ${code}: ${err.trim().slice(-500)}`))));
  dead.catch(() => undefined);
  p.stdout.on('data', (d: Buffer) => {
    const t = mono();
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line || /^\s/.test(line)) continue;
      const deleted = line.startsWith('Deleted ');
      const first = (deleted ? line.slice(8) : line).split(' ')[0]!;
      events.push({ t, dst: first.includes('/') ? first : `${first}/32`, deleted });
    }
  });
  /** Resolves with the time of the first add (or delete) of dst at or after `after`. */
  const next = (dst: string, deleted: boolean, after: number, timeoutMs = 30_000) =>
    Promise.race([dead, waitUntil(`${ns}: ${dst} ${deleted ? 'removed from' : 'installed in'} the kernel FIB`, async () => events.find((e) => e.t >= after && e.dst === dst && e.deleted === deleted)?.t, timeoutMs, 2)]);
  const stop = () => {
    stopped = true;
    p.kill();
  };
  return { events, next, ready: new Promise<void>((r) => setTimeout(r, 300)), stop };
}

type RouteEntries = Record<string, Array<{ protocol?: string; installed?: boolean; nexthops?: Array<{ ip?: string; active?: boolean }> }>>;

/** The router's installed BGP next hops for prefix (zebra's FIB view; empty when none). */
export async function fibNextHops(router: string, prefix: string): Promise<string[]> {
  const r = await vtyshJson<RouteEntries>(router, `show ip route ${prefix} json`).catch(() => ({}) as RouteEntries);
  return (r[prefix] ?? []).filter((e) => e.installed && e.protocol === 'bgp').flatMap((e) => (e.nexthops ?? []).filter((n) => n.active).map((n) => n.ip!)).sort();
}

/** The BGP paths the router holds for prefix: neighbour address → communities. */
export async function bgpPaths(router: string, prefix: string): Promise<Map<string, string[]>> {
  const r = await vtyshJson<{ paths?: Array<{ community?: { string?: string }; peer?: { peerId?: string } }> }>(router, `show bgp ipv4 unicast ${prefix} json`).catch(() => ({ paths: [] }));
  return new Map((r.paths ?? []).map((p) => [p.peer?.peerId ?? '?', (p.community?.string ?? '').split(' ').filter(Boolean)]));
}

export const isGshut = (cs: string[] | undefined) => !!cs?.some((c) => c === 'graceful-shutdown' || c === '65535:0');

/** Creates a LoadBalancer Service (TCP 80, selector app=NAME) and waits for its address. */
export async function lbService(rest: KubeRest, namespace: string, name: string, policy: 'Local' | 'Cluster'): Promise<string> {
  await rest.request('POST', `/api/v1/namespaces/${namespace}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { type: 'LoadBalancer', externalTrafficPolicy: policy, selector: { app: name }, ports: [{ port: 80, protocol: 'TCP' }] },
  });
  return waitUntil(
    `${namespace}/${name} LoadBalancer address`,
    async () => (await rest.get<{ status?: { loadBalancer?: { ingress?: Array<{ ip?: string }> } } }>(`/api/v1/namespaces/${namespace}/services/${name}`)).status?.loadBalancer?.ingress?.[0]?.ip,
    60_000,
    50,
  );
}

/** Writes the pod's readiness as the kubelet does when its readiness probe flips (status subresource). */
export async function setPodReady(rest: KubeRest, pod: { namespace?: string; name: string; ips: string[] }, hostIP: string, ready: boolean): Promise<void> {
  const st = runningStatus({ hostIP, ips: pod.ips, at: new Date() }) as { conditions: Array<{ type: string; status: string }>; containerStatuses: Array<{ ready: boolean }> };
  if (!ready) {
    for (const c of st.conditions) if (c.type === 'Ready' || c.type === 'ContainersReady') c.status = 'False';
    for (const c of st.containerStatuses) c.ready = false;
  }
  await rest.request('PATCH', `/api/v1/namespaces/${pod.namespace ?? 'default'}/pods/${pod.name}/status`, { status: st }, 'application/merge-patch+json');
}

/** Patches the Node's spec.unschedulable (kubectl cordon / uncordon). */
export const setCordoned = (rest: KubeRest, node: string, on: boolean) => rest.request('PATCH', `/api/v1/nodes/${node}`, { spec: { unschedulable: on } }, 'application/merge-patch+json');
