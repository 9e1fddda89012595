/**
 * A whole podfabric cluster on one machine, in network namespaces (see topology.ts for the picture):
 * a real kube-apiserver (advertising the control-plane address, endpoint reconciler on), a real
 * kube-controller-manager, two `podfabric controller` replicas (leader + standby), an FRR spine and ToRs,
 * and per node gobgpd, the podfabric agent and kube-proxy; pods are Pod objects the lab plays the
 * kubelet for (pods.ts, kubelet.ts). Every namespace starts with "pf-lab-"; `down` (and every `up`)
 * removes all of them and every process.
 *
 * This module builds and tears down the whole; topology, processes, nodes, pods and status hold the parts
 * and are re-exported here.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { pidsWithArg, stopPid, stopPids } from './lib/daemon.js';
import { renderFrrConfig, startFrr, stopFrr, type FrrRouter } from './lib/frr.js';
import { stopGobgpd } from './lib/gobgpd.js';
import { addAddress, addBridge, addNamespace, addVeth, cleanupByPrefix, ip, setSysctls } from './lib/netns.js';
import { addNode, waitNodesReady } from './nodes.js';
import { addOutside } from './outside.js';
import { addPod } from './pods.js';
import { harnessBinary, startApiserver, startController, startKcm, startKubelet, startRelays, stopControlPlane, stopKubeProxy, writeFabricKubeconfig } from './processes.js';
import { CP, DEFAULTS, kubectl, labNode, log, manifests, NS, rackSubnet, ROOT, saveState, spineLink, STATE, tor, torRouter, type LabNode, type LabOptions, type LabState } from './topology.js';

export * from './topology.js';
export { addNode, growNode, removeNode, waitNodesReady } from './nodes.js';
export { addPod, connect, delPod, podId, podNetns, type Proto } from './pods.js';
export { startAgent, startController, startKubeProxy, stopKubeProxy, kubeProxyLog, kubeProxyPidFile } from './processes.js';
export { controllerPids, renderStatus, status, type StatusReport } from './status.js';
export { inNs } from './lib/netns.js';
export { addOutside, OUTSIDE, outsideClient, parsePeerAnswer, PEER_PORT } from './outside.js';

/** Routers spread flows, not just address pairs, over ECMP next hops (as real ToRs hash on the 5-tuple). */
const ECMP_BY_FLOW = { 'net.ipv4.fib_multipath_hash_policy': 1, 'net.ipv6.fib_multipath_hash_policy': 1 };

/** Removes every namespace, process and file a lab run made. Tolerates any leftover state. */
export async function down(): Promise<void> {
  const nodesDir = join(STATE, 'nodes');
  if (existsSync(nodesDir)) {
    for (const n of await readdir(nodesDir)) {
      await stopKubeProxy(n);
      await stopPid(join(nodesDir, n, 'agent.pid'), 'SIGKILL');
      await stopGobgpd(`${NS}${n}`, 'SIGKILL');
    }
  }
  await stopControlPlane();
  // Daemons whose pid files went missing (a killed run; a state directory removed by another run).
  await stopPids(await pidsWithArg(`${STATE}/`));
  const nss = (await ip(['netns', 'list'], { allowFail: true })).stdout;
  for (const m of nss.matchAll(/^(pf-lab-tor\d+|pf-lab-spine)\s/gm)) await stopFrr(m[1]!, 'SIGKILL');
  await cleanupByPrefix(NS); // pods' servers die with their namespaces
  await keepLogs();
  await rm(STATE, { recursive: true, force: true });
}

/** The last torn-down lab's logs (agents, controllers, apiserver, kube-proxy) stay in `<STATE>-last/` for a post-mortem. */
async function keepLogs(): Promise<void> {
  if (!existsSync(STATE)) return;
  const last = `${STATE}-last`;
  await rm(last, { recursive: true, force: true });
  await cp(STATE, last, { recursive: true, filter: (src) => !src.includes('/data') && (src.endsWith('.log') || !/\.[a-z]+$/.test(src)) }).catch(() => undefined);
}

/** Runs a build step with its stderr (progress lines) passed through to ours; rejects on failure. */
function step(cmd: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd.join(' ')} exited ${code}`))));
  });
}

async function buildAll(): Promise<void> {
  // All three at once: on a fresh machine apt waits on the network and disk while Go compiles the
  // Kubernetes harness (the long step, ~6 min cold on 2 cores), so the first `lab up` stays near the build.
  log('checking system packages (hack/install-deps.sh), building the operator (tsc) and the Kubernetes harness (hack/apiserver/build.sh: cached, or minutes with progress lines)');
  await Promise.all([
    step(['bash', join(ROOT, 'hack/install-deps.sh')]),
    step(['npx', 'tsc', '-p', join(ROOT, 'tsconfig.json')]),
    step(['bash', join(ROOT, 'hack/apiserver/build.sh')]),
  ]);
}

/** Spine, ToRs (one bridge = one rack subnet each) and the control-plane namespace hanging off the spine. */
async function buildFabric(o: LabOptions, nodes: LabNode[]): Promise<void> {
  await addNamespace(`${NS}spine`);
  await setSysctls(`${NS}spine`, ECMP_BY_FLOW);
  const spine: FrrRouter = { name: `${NS}spine`, ns: `${NS}spine`, asn: 65000, routerId: '172.31.0.1', neighbors: [], redistributeConnected: true };
  for (let r = 1; r <= o.racks; r++) {
    const t = tor(r);
    await addNamespace(t.ns);
    await setSysctls(t.ns, ECMP_BY_FLOW);
    await addBridge(t.ns, 'br0', `02:50:46:00:${r.toString(16).padStart(2, '0')}:01`); // fixed gateway MAC, like a real ToR
    await addAddress(t.ns, 'br0', `${rackSubnet(r)}.1/24`);
    if (o.dualStack) await addAddress(t.ns, 'br0', `fd00:20:${r}::1/64`);
    await addVeth(t.ns, 'up0', spine.ns, `t${r}`);
    const l = spineLink(r);
    await addAddress(t.ns, 'up0', `${l.tor4}/24`);
    await addAddress(spine.ns, `t${r}`, `${l.spine4}/24`);
    spine.neighbors.push({ address: l.tor4, remoteAs: 65100 + r, description: `tor${r}` });
    if (o.dualStack) {
      // IPv6 pod prefixes cross the spine over their own IPv6 sessions.
      await addAddress(t.ns, 'up0', `${l.tor6}/64`);
      await addAddress(spine.ns, `t${r}`, `${l.spine6}/64`);
      spine.neighbors.push({ address: l.tor6, remoteAs: 65100 + r, description: `tor${r}-v6` });
    }
  }
  // The control plane's address: a host behind the spine (the spine and ToRs announce their connected subnets).
  await addNamespace(CP.ns);
  await addVeth(CP.ns, 'eth0', spine.ns, 'cp');
  await addAddress(CP.ns, 'eth0', `${CP.ip}/${CP.prefix}`);
  await addAddress(spine.ns, 'cp', `${CP.spineIp}/${CP.prefix}`);
  await ip(['-n', CP.ns, 'route', 'add', 'default', 'via', CP.spineIp]);
  // A client outside the cluster, beyond the spine (outside.ts).
  await addOutside(spine.ns, o.dualStack);
  await Promise.all([startFrr(spine), ...Array.from({ length: o.racks }, (_, i) => startFrr(torRouter(i + 1, nodes, o.dualStack)))]);
  await writeFile(join(STATE, 'frr-spine.conf'), renderFrrConfig(spine));
}

export async function up(o: LabOptions = DEFAULTS, opts: { skipBuild?: boolean } = {}): Promise<LabState> {
  const t0 = Date.now();
  const since = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  await down();
  if (!opts.skipBuild) await buildAll();
  else await harnessBinary();
  await mkdir(STATE, { recursive: true });
  const nodes: LabNode[] = [];
  for (let r = 1; r <= o.racks; r++) for (let n = 1; n <= o.nodesPerRack; n++) nodes.push(labNode(r, n, o.dualStack));
  log(`starting kube-apiserver; building the fabric: spine, ${o.racks} ToRs, control-plane namespace`);
  const [api] = await Promise.all([startApiserver(o.dualStack), buildFabric(o, nodes)]);
  log(`apiserver and fabric ready at ${since()}`);
  const s: LabState = { opts: { ...DEFAULTS, ...o }, kubeconfig: api.kubeconfig, nodes, pods: [], controllers: [] };
  await startRelays(api.port);
  s.fabricKubeconfig = await writeFabricKubeconfig(api.kubeconfig, api.port);
  await saveState(s);
  await kubectl(s, ['apply', '--server-side', '-f', join(ROOT, 'crds')]);
  await kubectl(s, ['create', 'namespace', 'podfabric-system']);
  await kubectl(s, ['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  log('starting kube-controller-manager, the lab kubelet and the podfabric controllers');
  await startKcm(s);
  await startKubelet(s);
  const manifestDir = join(STATE, 'manifests');
  await mkdir(manifestDir, { recursive: true });
  await writeFile(join(manifestDir, 'fabric.yaml'), manifests(o).map((m) => stringify(m)).join('---\n'));
  await kubectl(s, ['apply', '-f', manifestDir]);
  for (let i = 1; i <= o.controllers; i++) {
    await startController(s, i);
    s.controllers.push(`controller-${i}`);
  }
  log(`starting ${nodes.length} nodes (gobgpd, agent, kube-proxy)`);
  await Promise.all(nodes.map((n) => addNode(s, n)));
  await saveState(s);
  log('waiting for every node: sessions established, routes installed, CNI configuration written');
  await waitNodesReady(s, nodes.map((n) => n.name), 120_000);
  log(`fabric ready at ${since()}; creating pods`);
  await Promise.all(nodes.map(async (n) => {
    for (let p = 1; p <= o.podsPerNode; p++) await addPod(s, n.name, `${n.name}-p${p}`, { labels: { pod: `${n.name}-p${p}`, app: 'lab' } });
  }));
  await saveState(s);
  log(`up in ${since()}`);
  return s;
}
