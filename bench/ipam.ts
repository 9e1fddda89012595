/**
 * 5,000 Node objects created against the real apiserver while one `podfabric controller` (default
 * QPS/burst) allocates: seconds until every node has a block, allocations per second, controller peak RSS.
 * Floor, measured in the same run on the same apiserver: creating 5,000 bare NodeFabric objects directly
 * at the same concurrency (the apiserver's own write rate for the records the controller must write).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeRest, loadKubeConfig } from '../operator/kube/rest.js';
import { run } from '../operator/lib/exec.js';
import { round } from './stats.js';

const N = Number(process.env.BENCH_NODES ?? 5000);
const root = join(import.meta.dirname, '..');

async function parallel<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

async function peakRss(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmHWM:\s+(\d+) kB/.exec(s)?.[1] ?? 0) / 1024;
}

export async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'pf-bench-ipam-'));
  const start = await run(['bash', join(root, 'hack/apiserver/start.sh'), dir, '--fresh'], { allowFail: true, timeoutMs: 1_800_000 });
  if (start.code !== 0) throw new Error(start.stderr);
  const kubeconfig = join(dir, 'kubeconfig');
  const k = (args: string[]) => run(['kubectl', `--kubeconfig=${kubeconfig}`, ...args], { timeoutMs: 120_000 });
  try {
    await k(['apply', '--server-side', '-f', join(root, 'crds')]);
    await k(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
    await k(['create', 'namespace', 'podfabric-system']);
    const rest = new KubeRest(loadKubeConfig(kubeconfig), { qps: 5000, burst: 5000 });

    // Floor: the apiserver writing N NodeFabric records directly, 50 at a time.
    const names = Array.from({ length: N }, (_, i) => `bench-${String(i).padStart(5, '0')}`);
    let t = Date.now();
    await parallel(names, 50, (n) => rest.request('POST', '/apis/podfabric.io/v1alpha1/nodefabrics', { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: `floor-${n}` }, spec: { podCIDRs: ['10.0.0.0/24'] } }));
    const floorS = (Date.now() - t) / 1000;
    await rest.request('DELETE', '/apis/podfabric.io/v1alpha1/nodefabrics'); // one DeleteCollection
    for (;;) {
      const left = await rest.get<{ items: unknown[] }>('/apis/podfabric.io/v1alpha1/nodefabrics?limit=1');
      if (!left.items.length) break;
      await new Promise((r) => setTimeout(r, 500));
    }

    await rest.request('POST', '/apis/podfabric.io/v1alpha1/ippools', { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'bench' }, spec: { cidr: '10.0.0.0/8', blockSize: 24 } });
    const ctl = spawn(process.execPath, [join(root, 'bin/podfabric.js'), 'controller', `--kubeconfig=${kubeconfig}`, '--metrics-addr=127.0.0.1:0'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 3000));
    t = Date.now();
    await parallel(names, 50, (n) =>
      rest.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: n }, status: { addresses: [{ type: 'InternalIP', address: `172.16.${Math.floor(Number(n.slice(6)) / 250)}.${(Number(n.slice(6)) % 250) + 1}` }] } }),
    );
    const createdS = (Date.now() - t) / 1000;
    let rss = 0;
    let done = 0;
    for (;;) {
      rss = Math.max(rss, await peakRss(ctl.pid!));
      const list = await rest.get<{ items: Array<{ spec?: { podCIDRs?: string[] } }> }>('/apis/podfabric.io/v1alpha1/nodefabrics');
      done = list.items.filter((i) => i.spec?.podCIDRs?.length).length;
      const blocks = new Set(list.items.flatMap((i) => i.spec?.podCIDRs ?? []));
      if (done >= N) {
        if (blocks.size !== N) throw new Error(`duplicate blocks: ${N - blocks.size}`);
        break;
      }
      if ((Date.now() - t) / 1000 > 900) throw new Error(`only ${done}/${N} allocated after 900 s`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const allS = (Date.now() - t) / 1000;
    rss = Math.max(rss, await peakRss(ctl.pid!));
    ctl.kill('SIGTERM');
    const out = {
      bench: 'ipam',
      nodes: N,
      seconds_until_all_have_blocks: round(allS),
      allocations_per_second: round(N / allS),
      node_create_seconds: round(createdS),
      controller_peak_rss_mb: round(rss),
      controller_qps: 200,
      floor_apiserver_write_nodefabrics_seconds: round(floorS),
      floor_writes_per_second: round(N / floorS),
    };
    console.log(`ipam: ${N} nodes created in ${out.node_create_seconds} s; all had blocks after ${out.seconds_until_all_have_blocks} s (${out.allocations_per_second} allocations/s)`);
    console.log(`ipam: controller peak RSS ${out.controller_peak_rss_mb} MB (client QPS 200, burst 400: the defaults)`);
    console.log(`ipam: floor — the same apiserver creates ${N} NodeFabric records in ${out.floor_apiserver_write_nodefabrics_seconds} s (${out.floor_writes_per_second}/s at 50 in flight)`);
    rest.close();
    return out;
  } finally {
    await run(['bash', join(root, 'hack/apiserver/stop.sh'), dir], { allowFail: true });
  }
}
