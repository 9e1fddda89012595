/** Lab nodes: namespace and uplink, gobgpd, agent, kube-proxy, Node object; adding to and removing from a running lab. */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { API_PATH as API } from '../../operator/api/common.js';
import type { NodeFabricObj } from '../../operator/api/kinds.js';
import { fabricReadiness } from '../../operator/api/readiness.js';
import { stopPid, waitUntil } from './lib/daemon.js';
import { addNeighbors, vtyshJson } from './lib/frr.js';
import { startGobgpd, stopGobgpd } from './lib/gobgpd.js';
import { addAddress, addNamespace, addVeth, deleteNamespace, ip, setMaster, setSysctls } from './lib/netns.js';
import { renewNodeLease } from './lease.js';
import { stopPodSandbox } from './pods.js';
import { startAgent, startKubeProxy, stopKubeProxy } from './processes.js';
import { conflistPath, kubectl, labNode, labRest, nodeDir, nodeObject, NS, rackSubnet, saveState, tor, type LabNode, type LabState } from './topology.js';

/** Builds a node's namespace, uplink, gobgpd, agent and kube-proxy, registers its Node object. */
export async function addNode(s: LabState, n: LabNode, opts: { register?: boolean } = {}): Promise<void> {
  await mkdir(join(nodeDir(n.name), 'net.d'), { recursive: true });
  await addNamespace(n.ns);
  // Bridged pod-to-pod packets go through netfilter as a kubelet host has them (kubeadm requires it):
  // a Service reply between two pods of one bridge must be un-NATed by the node's conntrack.
  await setSysctls(n.ns, { 'net.bridge.bridge-nf-call-iptables': 1, 'net.bridge.bridge-nf-call-ip6tables': 1 }).catch(() => undefined);
  const torNs = `${NS}tor${n.rack}`;
  const port = `n-${n.name}`;
  await addVeth(n.ns, 'eth0', torNs, port);
  await setMaster(torNs, port, 'br0');
  await addAddress(n.ns, 'eth0', `${n.ip4}/24`);
  await ip(['-n', n.ns, 'route', 'add', 'default', 'via', `${rackSubnet(n.rack)}.1`]);
  if (n.ip6) {
    await addAddress(n.ns, 'eth0', `${n.ip6}/64`);
    await ip(['-n', n.ns, '-6', 'route', 'add', 'default', 'via', `fd00:20:${n.rack}::1`]);
  }
  await startGobgpd(n.ns, n.ns);
  await startAgent(s, n);
  if (opts.register ?? true) {
    const registered = JSON.parse((await kubectl(s, ['apply', '-o', 'json', '-f', '-'], JSON.stringify(nodeObject(n)))).stdout) as { metadata: { uid: string } };
    // A kubelet's first heartbeat comes with its registration; the lab kubelet renews it from then on.
    const rest = labRest(s);
    await renewNodeLease(rest, n.name, registered.metadata.uid).finally(() => rest.close());
    // Like a kube-proxy DaemonSet pod landing on the new node: it waits for the Node's podCIDRs itself.
    await startKubeProxy(s, n);
  }
}

/** Deletes a node the way an operator would: Node object first, then the machine (its pods go with it). */
export async function removeNode(s: LabState, name: string): Promise<void> {
  const n = s.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no lab node ${name}`);
  await kubectl(s, ['delete', 'node', name, '--wait=false']);
  await stopKubeProxy(name);
  const rest = labRest(s);
  try {
    const pods = await rest.get<{ items: Array<{ metadata: { name: string; namespace: string } }> }>(`/api/v1/pods?fieldSelector=spec.nodeName%3D${name}`);
    for (const p of pods.items) {
      await stopPodSandbox(name, p.metadata.namespace, p.metadata.name).catch(() => undefined);
      // What the pod garbage collector does for pods of a deleted Node: a forced delete.
      await rest.request('DELETE', `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`, { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0 }).catch(() => undefined);
    }
  } finally {
    rest.close();
  }
  for (const p of s.pods.filter((p) => p.node === name)) await stopPodSandbox(name, p.namespace ?? 'default', p.name).catch(() => undefined);
  await stopPid(join(nodeDir(name), 'agent.pid'), 'SIGKILL');
  await stopGobgpd(n.ns, 'SIGKILL');
  await deleteNamespace(n.ns);
  s.nodes = s.nodes.filter((x) => x.name !== name);
  s.pods = s.pods.filter((p) => p.node !== name);
  await saveState(s);
}

/**
 * Waits for exactly what the lab's users (and its tests) rely on: every node Ready *for its current plan*
 * (its agent synced the spec at its current generation, every planned session established — a Ready
 * written for an older plan does not count), its CNI configuration written, and every node's pod CIDRs
 * in the FIB of every ToR and of the spine, in every family.
 */
export async function waitNodesReady(s: LabState, names: string[], timeoutMs = 60_000): Promise<void> {
  const rest = labRest(s);
  const end = Date.now() + timeoutMs;
  let prefixes: string[] = [];
  try {
    await waitUntil(
      `nodes ready for their current plan: ${names.join(', ')}`,
      async () => {
        const all: string[] = [];
        for (const name of names) {
          const nf = await rest.get<NodeFabricObj>(`${API}/nodefabrics/${name}`).catch(() => null);
          if (!nf || !fabricReadiness(nf).ready || !existsSync(conflistPath(name))) return false;
          all.push(...(nf.spec.podCIDRs ?? []));
        }
        prefixes = all;
        return true;
      },
      timeoutMs,
      100,
    );
  } finally {
    rest.close();
  }
  const routers = [...Array.from({ length: s.opts.racks }, (_, i) => `${NS}tor${i + 1}`), `${NS}spine`];
  await waitUntil(
    `every router's FIB holds the pod CIDRs ${prefixes.join(', ')}`,
    async () => {
      for (const r of routers) {
        const fib = await routerPrefixes(r);
        if (prefixes.some((p) => !fib.has(p))) return false;
      }
      return true;
    },
    Math.max(5_000, end - Date.now()),
    100,
  );
}

/** The BGP prefixes in a router's kernel FIB (both families). */
export async function routerPrefixes(router: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const cmd of ['show ip route bgp json', 'show ipv6 route bgp json']) {
    const routes = await vtyshJson<Record<string, Array<{ installed?: boolean }>>>(router, cmd).catch(() => ({}));
    for (const [prefix, entries] of Object.entries(routes)) if (entries.some((e) => e.installed)) out.add(prefix);
  }
  return out;
}

/** Adds a node to a running lab (ToR neighbour configured as an operator would), registers it. */
export async function growNode(s: LabState, rack: number): Promise<LabNode> {
  const used = s.nodes.filter((n) => n.rack === rack).map((n) => Number(n.name.split('n')[1]));
  const next = Math.max(0, ...used) + 1;
  const n = labNode(rack, next, s.opts.dualStack);
  await addNeighbors(tor(rack), [{ address: n.ip4, remoteAs: 64512, description: n.name }, ...(n.ip6 ? [{ address: n.ip6, remoteAs: 64512 }] : [])]);
  s.nodes.push(n);
  await saveState(s);
  await addNode(s, n);
  return n;
}
