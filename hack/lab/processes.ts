/**
 * The lab's long-running processes, each a daemon with a pid file under STATE:
 *  - kube-apiserver (hack/apiserver/start.sh) on the root namespace's 127.0.0.1, advertising CP.ip with
 *    its endpoint reconciler on, so the `kubernetes` Service's endpoint is an address pods can reach;
 *  - two socat relays carrying CP.ip:port (inside pf-lab-cp) over a Unix socket to 127.0.0.1:port;
 *  - kube-controller-manager (same harness binary) with the controllers a cluster without kubelets needs;
 *  - the podfabric controller replicas and one agent per node;
 *  - one kube-proxy per node, inside the node's namespace;
 *  - the lab kubelet (hack/lab/kubelet.ts): Node Leases, Pod deletion (CNI DEL).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '../../operator/lib/exec.js';
import { startDaemon, stopPid } from './lib/daemon.js';
import { gobgpSocket } from './lib/gobgpd.js';
import { CP, DAEMON_ENV, nodeDir, ROOT, SERVICE_CIDR, SERVICE_CIDR_V6, STATE, type LabNode, type LabState, type ProxyMode } from './topology.js';

export const APISERVER_DIR = join(STATE, 'apiserver');
const RELAY_SOCK = join(STATE, 'apiserver.sock');

/** The harness binary (kube-apiserver, kube-controller-manager, kube-proxy); builds it when missing. */
export async function harnessBinary(): Promise<string> {
  const r = await run(['bash', join(ROOT, 'hack/apiserver/build.sh')], { timeoutMs: 1_800_000 });
  return r.stdout.trim().split('\n').at(-1)!;
}

/**
 * The lab's apiserver flags on top of start.sh's: advertise the control-plane address and let the lease
 * endpoint reconciler publish it as the `kubernetes` Service's endpoint.
 */
export const LAB_APISERVER_FLAGS = [`--advertise-address=${CP.ip}`, '--endpoint-reconciler-type=lease'];

/**
 * A dual-stack lab's apiserver serves both Service families (start.sh's own range is IPv4 only; the
 * later flag wins), so `ipFamilyPolicy: RequireDualStack` Services get a ClusterIP per family.
 */
export const labApiserverFlags = (dualStack: boolean) => [...LAB_APISERVER_FLAGS, ...(dualStack ? [`--service-cluster-ip-range=${SERVICE_CIDR},${SERVICE_CIDR_V6}`] : [])];

export async function startApiserver(dualStack = false): Promise<{ kubeconfig: string; port: number }> {
  const r = await run(['bash', join(ROOT, 'hack/apiserver/start.sh'), APISERVER_DIR, '--fresh', ...labApiserverFlags(dualStack)], { allowFail: true, timeoutMs: 1_800_000 });
  if (r.code !== 0) throw new Error(`kube-apiserver did not start:\n${r.stderr.slice(-3000)}`);
  const port = Number((await readFile(join(APISERVER_DIR, 'port'), 'utf8')).trim());
  return { kubeconfig: join(APISERVER_DIR, 'kubeconfig'), port };
}

/** Relays CP.ip:port (in the control-plane namespace) to the apiserver on the root namespace's loopback. */
export async function startRelays(port: number): Promise<void> {
  await startDaemon(['socat', `UNIX-LISTEN:${RELAY_SOCK},fork,unlink-early,mode=600`, `TCP:127.0.0.1:${port}`], { log: join(STATE, 'relay-root.log'), pidFile: join(STATE, 'relay-root.pid') });
  await startDaemon(['ip', 'netns', 'exec', CP.ns, 'socat', `TCP-LISTEN:${port},bind=${CP.ip},fork,reuseaddr`, `UNIX-CONNECT:${RELAY_SOCK}`], {
    log: join(STATE, 'relay-cp.log'),
    pidFile: join(STATE, 'relay-cp.pid'),
  });
}

/** A copy of the admin kubeconfig whose server is the control-plane address (for processes inside the fabric). */
export async function writeFabricKubeconfig(kubeconfig: string, port: number): Promise<string> {
  const text = await readFile(kubeconfig, 'utf8');
  const out = join(STATE, 'kubeconfig-fabric');
  await writeFile(out, text.replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://${CP.ip}:${port}`), { mode: 0o600 });
  return out;
}

/**
 * The controllers a cluster without kubelets needs. Not node-lifecycle and taint-eviction (no kubelet
 * posts node status: every Node would turn Unknown and its pods be evicted), not node-ipam (podfabric
 * owns IPAM), not pod-garbage-collector (the lab's Pods are on Nodes it made).
 */
export const KCM_CONTROLLERS = [
  'endpointslice-controller',
  'endpointslice-mirroring-controller',
  'endpoints-controller',
  'garbage-collector-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
];

/** kube-controller-manager's command line for an apiserver started by start.sh in apiserverDir. */
export function kcmArgs(bin: string, kubeconfig: string, apiserverDir: string, workDir: string, controllers = KCM_CONTROLLERS): string[] {
  return [
    bin,
    'controller-manager',
    `--kubeconfig=${kubeconfig}`,
    '--secure-port=0',
    '--leader-elect=false',
    `--controllers=${controllers.join(',')}`,
    `--root-ca-file=${join(apiserverDir, 'certs', 'apiserver.crt')}`,
    `--service-account-private-key-file=${join(apiserverDir, 'sa.key')}`,
    `--flex-volume-plugin-dir=${join(workDir, 'flex')}`,
    '--kube-api-qps=50',
    '--kube-api-burst=100',
    '--v=1',
  ];
}

export async function startKcm(s: LabState): Promise<void> {
  const dir = join(STATE, 'kcm');
  await mkdir(dir, { recursive: true });
  await startDaemon(kcmArgs(await harnessBinary(), s.kubeconfig, APISERVER_DIR, dir), { log: join(STATE, 'kcm.log'), pidFile: join(STATE, 'kcm.pid') });
}

/**
 * kube-proxy's configuration for a lab node. Conntrack: maxPerCore 0 and min 0 leave nf_conntrack_max
 * (global to the machine, read-only outside the root namespace) alone; the timeouts it may set are per
 * network namespace, and 0 leaves them at the kernel's values too. Local traffic = the Node's podCIDRs.
 */
export function kubeProxyConfig(o: { node: string; kubeconfig: string; mode: ProxyMode }): Record<string, unknown> {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: o.kubeconfig, qps: 5, burst: 10 },
    hostnameOverride: o.node,
    mode: o.mode,
    detectLocalMode: 'NodeCIDR',
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s', tcpBeLiberal: o.mode === 'nftables', udpTimeout: '0s', udpStreamTimeout: '0s' },
    metricsBindAddress: '127.0.0.1:10249',
    healthzBindAddress: '127.0.0.1:10256',
    nodePortAddresses: ['primary'],
    syncPeriod: '30s',
    minSyncPeriod: '0s',
  };
}

export const kubeProxyPidFile = (node: string) => join(nodeDir(node), 'kube-proxy.pid');
export const kubeProxyLog = (node: string) => join(nodeDir(node), 'kube-proxy.log');

export async function startKubeProxy(s: LabState, n: LabNode): Promise<void> {
  const dir = nodeDir(n.name);
  const conf = join(dir, 'kube-proxy.yaml');
  await writeFile(conf, stringify(kubeProxyConfig({ node: n.name, kubeconfig: s.fabricKubeconfig ?? s.kubeconfig, mode: s.opts.proxyMode ?? 'nftables' })));
  await startDaemon(['ip', 'netns', 'exec', n.ns, await harnessBinary(), 'proxy', `--config=${conf}`, '--v=1'], { log: kubeProxyLog(n.name), pidFile: kubeProxyPidFile(n.name) });
}

export const stopKubeProxy = (node: string) => stopPid(kubeProxyPidFile(node), 'SIGTERM', 3000);

/** The lab kubelet: renews every lab Node's Lease, finishes Pod deletions (CNI DEL, then the final delete). */
export async function startKubelet(s: LabState): Promise<void> {
  await startDaemon([process.execPath, '--import', 'tsx', join(ROOT, 'hack/lab/kubelet.ts'), s.kubeconfig], {
    log: join(STATE, 'kubelet.log'),
    pidFile: join(STATE, 'kubelet.pid'),
    env: DAEMON_ENV,
    cwd: ROOT,
  });
}

/**
 * A controller replica under a restart-always supervisor (what the Deployment's kubelet does): a
 * replica that loses its lease exits by design and comes back as a standby.
 */
export async function startController(s: LabState, i: number): Promise<void> {
  const child = join(STATE, `controller-${i}.child.pid`);
  const cmd = [process.execPath, join(ROOT, 'bin/podfabric.js'), 'controller', `--kubeconfig=${s.kubeconfig}`, '--metrics-addr=127.0.0.1:0', '--lease-duration=6s', '--renew-deadline=4s', '--retry-period=1s'];
  await startDaemon(['bash', '-c', `trap 'kill $(cat ${child}) 2>/dev/null; exit 0' TERM; while :; do "$@" & echo $! > ${child}; wait $!; sleep 1; done`, 'supervise', ...cmd], {
    log: join(STATE, `controller-${i}.log`),
    pidFile: join(STATE, `controller-${i}.pid`),
    env: DAEMON_ENV,
  });
}

export async function startAgent(s: LabState, n: LabNode): Promise<void> {
  const dir = nodeDir(n.name);
  await startDaemon(
    [
      process.execPath,
      join(ROOT, 'bin/podfabric.js'),
      'agent',
      `--node=${n.name}`,
      `--netns=${n.ns}`,
      `--kubeconfig=${s.kubeconfig}`,
      `--gobgp-api=unix://${gobgpSocket(n.ns)}`,
      '--metrics-addr=127.0.0.1:0',
      `--cni-conf-dir=${join(dir, 'net.d')}`,
      `--cni-data-dir=${join(dir, 'ipam')}`,
      '--resync=10s',
    ],
    { log: join(dir, 'agent.log'), pidFile: join(dir, 'agent.pid'), env: DAEMON_ENV },
  );
}

/** Stops the control-plane processes (not the per-node ones): used by `down`. */
export async function stopControlPlane(): Promise<void> {
  for (const f of ['controller-1', 'controller-2', 'controller-3']) {
    await stopPid(join(STATE, `${f}.pid`), 'SIGTERM', 3000);
    await stopPid(join(STATE, `${f}.child.pid`), 'SIGTERM', 3000);
  }
  for (const f of ['kubelet', 'kcm', 'relay-root', 'relay-cp']) await stopPid(join(STATE, `${f}.pid`), 'SIGTERM', 3000);
  await run(['bash', join(ROOT, 'hack/apiserver/stop.sh'), APISERVER_DIR], { allowFail: true });
}

export { SERVICE_CIDR };
