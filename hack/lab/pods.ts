/**
 * Lab pods, played the way a kubelet and its container runtime would play them:
 *  start (addPod): the Pod object (namespace, labels, one container with named ports, spec.nodeName) is
 *  created; the sandbox gets its network namespace and CNI ADD with the node's conflist (lib/cni-runtime);
 *  the workload starts (pod-server.py: TCP and UDP on 80 and 81, answering namespace/name, and on 82
 *  "namespace/name PEER", the source address it sees); then
 *  status.podIPs, phase Running and Ready=True are written through the status subresource;
 *  stop (delPod): the Pod is deleted like `kubectl delete pod` does, and the lab kubelet (kubelet.ts)
 *  stops the workload, runs CNI DEL, removes the namespace and finishes the deletion.
 * connect() is the probe: from a pod to IP:port over TCP or UDP, returning who answered.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlreadyExists, isNotFound } from '../../operator/kube/rest.js';
import { cniAdd, cniDel } from './lib/cni-runtime.js';
import { startDaemon, stopPid, waitUntil } from './lib/daemon.js';
import { deleteNamespace, inNs } from './lib/netns.js';
import { conflistPath, labRest, NS, ROOT, saveState, STATE, type LabPod, type LabState } from './topology.js';

export interface PodObj {
  metadata: { name: string; namespace?: string; uid?: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status?: Record<string, unknown>;
}

/** Container ports of every lab pod, named like the pods of Kubernetes' network policy e2e tests. */
export const POD_PORTS = [80, 81].flatMap((port) => (['TCP', 'UDP'] as const).map((protocol) => ({ name: `serve-${port}-${protocol.toLowerCase()}`, containerPort: port, protocol })));

/** The pod's network namespace: namespaces hold no dots, so namespace.name is unambiguous. */
export const podNetns = (namespace: string, name: string) => `${NS}${namespace}.${name}`;
const podPidFile = (netns: string) => join(STATE, 'pods', `${netns}.pid`);
const podReadyFile = (netns: string) => join(STATE, 'pods', `${netns}.ready`);
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export function podObject(o: { name: string; namespace: string; node: string; labels?: Record<string, string> }): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: o.name, namespace: o.namespace, labels: o.labels ?? {} },
    spec: {
      nodeName: o.node,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'server', image: 'podfabric.io/lab-pod-server:py', ports: POD_PORTS }],
    },
  };
}

/** What a kubelet reports once the sandbox has its addresses and the container is running and ready. */
export function runningStatus(o: { hostIP: string; ips: string[]; at: Date }): Record<string, unknown> {
  const t = o.at.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const cond = (type: string) => ({ type, status: 'True', lastTransitionTime: t, lastProbeTime: null });
  return {
    phase: 'Running',
    hostIP: o.hostIP,
    hostIPs: [{ ip: o.hostIP }],
    podIP: o.ips[0],
    podIPs: o.ips.map((ip) => ({ ip })),
    startTime: t,
    conditions: ['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready', 'PodScheduled'].map(cond),
    containerStatuses: [{ name: 'server', ready: true, started: true, restartCount: 0, image: 'podfabric.io/lab-pod-server:py', imageID: '', containerID: 'lab://server', state: { running: { startedAt: t } } }],
  };
}

/**
 * Creates Pod `namespace/name` on `node` (the namespace too when missing), attaches it (CNI ADD), starts
 * its server and reports it Running and Ready. Returns the pod once its status is written.
 */
export async function addPod(s: LabState, node: string, name: string, opts: { namespace?: string; labels?: Record<string, string> } = {}): Promise<LabPod> {
  const n = s.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`no lab node ${node}`);
  if (!existsSync(conflistPath(node))) throw new Error(`node ${node} has no CNI configuration yet (see its NodeFabric status)`);
  const namespace = opts.namespace ?? 'default';
  const labels = opts.labels ?? {};
  const netns = podNetns(namespace, name);
  const rest = labRest(s);
  try {
    await rest.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }).catch((e) => (isAlreadyExists(e) ? undefined : Promise.reject(e)));
    await rest.request('POST', `/api/v1/namespaces/${namespace}/pods`, podObject({ name, namespace, node, labels }));
    let ips: string[];
    try {
      ips = await cniAdd(n.ns, netns, conflistPath(node), netns);
      await mkdir(join(STATE, 'pods'), { recursive: true });
      await rm(podReadyFile(netns), { force: true });
      await startDaemon(['ip', 'netns', 'exec', netns, PYTHON, join(ROOT, 'hack/lab/pod-server.py'), `${namespace}/${name}`, podReadyFile(netns)], {
        log: join(STATE, 'pods', `${netns}.log`),
        pidFile: podPidFile(netns),
      });
      await waitUntil(`${namespace}/${name} serving`, async () => existsSync(podReadyFile(netns)), 15_000, 20);
    } catch (e) {
      await stopPodSandbox(node, namespace, name).catch(() => undefined);
      await rest.request('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`, { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0 }).catch(() => undefined);
      throw e;
    }
    await rest.request('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, { status: runningStatus({ hostIP: n.ip4, ips, at: new Date() }) }, 'application/merge-patch+json');
    await waitProgrammed(n.ns, ips);
    const pod: LabPod = { name, namespace, labels, node, ns: netns, ips };
    s.pods = [...s.pods.filter((p) => p.ns !== netns), pod];
    await saveState(s);
    return pod;
  } finally {
    rest.close();
  }
}

/**
 * The node agent's policy table fails closed for pod addresses it does not know yet: wait until this
 * pod's addresses are in its known sets (a pod is usable once its Pod object, IPs and policies are
 * programmed). Nodes whose agent runs without enforcement (no table) are not waited on.
 */
async function waitProgrammed(nodeNs: string, ips: string[]): Promise<void> {
  await waitUntil(
    `pod ${ips.join(', ')} programmed in the node's policy table`,
    async () => {
      for (const ip of ips) {
        const set = ip.includes(':') ? 'known6' : 'known4';
        const r = await inNs(nodeNs, ['nft', 'get', 'element', 'inet', 'podfabric-policy', set, `{ ${ip} }`], { allowFail: true });
        if (r.code === 0) continue;
        const table = await inNs(nodeNs, ['nft', 'list', 'set', 'inet', 'podfabric-policy', set], { allowFail: true });
        if (table.code !== 0) continue; // no table or no set for this family: nothing fails closed here
        return false;
      }
      return true;
    },
    15_000,
    20,
  );
}

/** The kubelet's teardown of a pod's sandbox: workload stopped, CNI DEL, network namespace removed. Idempotent. */
export async function stopPodSandbox(node: string, namespace: string, name: string): Promise<void> {
  const netns = podNetns(namespace, name);
  await stopPid(podPidFile(netns), 'SIGTERM', 2000);
  await rm(podReadyFile(netns), { force: true });
  if (!existsSync(`/var/run/netns/${netns}`)) return;
  if (existsSync(conflistPath(node)) && existsSync(`/var/run/netns/${NS}${node}`)) await cniDel(`${NS}${node}`, netns, conflistPath(node), netns);
  else await deleteNamespace(netns);
}

/**
 * Deletes the Pod as `kubectl delete pod` does (graceful) and waits until the lab kubelet has torn its
 * sandbox down and finished the deletion.
 */
export async function delPod(s: LabState, node: string, name: string, opts: { namespace?: string; timeoutMs?: number } = {}): Promise<void> {
  const namespace = opts.namespace ?? 'default';
  const path = `/api/v1/namespaces/${namespace}/pods/${name}`;
  const rest = labRest(s);
  try {
    const gone = await rest.request('DELETE', path).then(
      () => false,
      (e) => (isNotFound(e) ? true : Promise.reject(e)),
    );
    if (gone) await stopPodSandbox(node, namespace, name);
    else await waitUntil(`pod ${namespace}/${name} deleted by the lab kubelet`, () => rest.get(path).then(() => false, (e) => isNotFound(e)), opts.timeoutMs ?? 30_000, 100);
  } finally {
    rest.close();
  }
  const netns = podNetns(namespace, name);
  s.pods = s.pods.filter((p) => p.ns !== netns);
  await saveState(s);
}

export type Proto = 'tcp' | 'udp';

/**
 * From pod `from`, connects to ip:port over TCP (reads what the server sends) or UDP (one datagram, waits
 * for the answer). Returns the answer (a lab pod answers "namespace/name"), or null on timeout/refusal.
 */
export async function connect(from: LabPod, ip: string, port: number, proto: Proto = 'tcp', timeoutMs = 1000): Promise<string | null> {
  const fam = ip.includes(':') ? 'AF_INET6' : 'AF_INET';
  const t = timeoutMs / 1000;
  const code =
    proto === 'tcp'
      ? `import socket,sys\ns=socket.socket(socket.${fam});s.settimeout(${t})\ntry:\n s.connect((sys.argv[1],int(sys.argv[2])));d=b''\n while True:\n  c=s.recv(256)\n  if not c: break\n  d+=c\n print(d.decode().strip())\nexcept OSError: sys.exit(1)`
      : `import socket,sys\ns=socket.socket(socket.${fam},socket.SOCK_DGRAM);s.settimeout(${t})\ntry:\n s.sendto(b'hello',(sys.argv[1],int(sys.argv[2])));print(s.recv(256).decode().strip())\nexcept OSError: sys.exit(1)`;
  const r = await inNs(from.ns, [PYTHON, '-c', code, ip, String(port)], { allowFail: true, timeoutMs: timeoutMs + 10_000 });
  return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/** k=v,k2=v2 → labels; refuses what the apiserver would refuse anyway, with a clearer message. */
export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').filter(Boolean)) {
    const m = /^([A-Za-z0-9][-A-Za-z0-9_./]*)=([-A-Za-z0-9_.]*)$/.exec(part.trim());
    if (!m) throw new Error(`bad label ${JSON.stringify(part)}: want key=value`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

/** `namespace/name` of a lab pod: what its server answers. */
export const podId = (p: LabPod) => `${p.namespace ?? 'default'}/${p.name}`;
