// throwaway: apiserver RSS per extra named watch (not committed)
import { readFile } from 'node:fs/promises';
import { startBenchApiserver } from '../bench/apiserver.js';
import { apiserverGet } from '../bench/apiserver.js';
import { KubeRest, loadKubeConfig } from '../operator/kube/rest.js';
import { waitUntil } from '../hack/lab/lib/daemon.js';
const rss = async (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const api = await startBenchApiserver('watchmem', { crds: true });
const pid = api.watched.pid;
const opened = async (res: string) => { const t = (await apiserverGet(api.kubeconfig, '/metrics', 60_000)).toString(); let n = 0; for (const l of t.split('\n')) if (l.startsWith('apiserver_longrunning_requests{') && l.includes(`resource="${res}"`) && l.includes('verb="WATCH"')) n += Number(l.slice(l.lastIndexOf(' ') + 1)); return n; };
const kc = loadKubeConfig(api.kubeconfig);
const clients: KubeRest[] = [];
const settle = async () => { await new Promise((r) => setTimeout(r, 15000)); return rss(pid); };
console.log('base', await settle());
for (const [res, perClient] of [['nodefabrics', 10], ['l2segments', 10]] as const) {
  const path = `/apis/podfabric.io/v1alpha1/${res}`;
  const rv = (await api.rest.get<{ metadata: { resourceVersion: string } }>(path)).metadata.resourceVersion;
  const fresh = process.argv[2] === 'fresh';
  for (let i = 0; i < 5000; i++) {
    if (fresh || i % perClient === 0) { if (fresh ? i % perClient === 0 : true) {} }
    if (i % perClient === 0 && (fresh || res === 'nodefabrics')) clients.push(new KubeRest(kc, { qps: 1e5, burst: 1e5, http2: true }));
    const c = clients[Math.floor(i / perClient) % clients.length]!;
    const sel = encodeURIComponent(`metadata.name=w-${i}`);
    c.watch(`${path}?fieldSelector=${sel}&watch=true&allowWatchBookmarks=true&resourceVersion=${rv}`, () => {}).done.catch(() => {});
  }
  await waitUntil('open', async () => (await opened(res)) >= 5000 || undefined, 300_000, 1000);
  console.log(res, 'clients', clients.length, 'rss', await settle());
}
for (const c of clients) c.close();
await api.stop();
process.exit(0);
