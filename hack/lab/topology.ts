/**
 * The lab's shape and state: names and addresses of racks, ToRs, nodes and the control-plane namespace,
 * the manifests it applies, the Node objects it registers, and lab.json (what `up` built).
 *
 *                    pf-lab-cp (apiserver relay 172.30.0.10, the `kubernetes` Service's endpoint)
 *                         |
 *                    pf-lab-spine (FRR AS 65000)
 *                   /                           \
 *     pf-lab-tor1 (FRR AS 65101)          pf-lab-tor2 (FRR AS 65102)       one L2 subnet per rack
 *      /          \                        /          \
 *  pf-lab-r1n1  pf-lab-r1n2          pf-lab-r2n1  pf-lab-r2n2             gobgpd + agent + kube-proxy per node
 *   pods…        pods…                 pods…        pods…                  (CNI bridge + host-local)
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../operator/lib/exec.js';
import { KubeRest, loadKubeConfig } from '../../operator/kube/rest.js';
import type { FrrRouter } from './lib/frr.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const STATE = process.env.PODFABRIC_LAB_DIR ?? '/tmp/pf-lab';
export const NS = 'pf-lab-';

export type ProxyMode = 'nftables' | 'iptables';

export interface LabOptions {
  racks: number;
  nodesPerRack: number;
  dualStack: boolean;
  podsPerNode: number;
  controllers: number;
  /** kube-proxy's backend (default nftables). */
  proxyMode?: ProxyMode;
}

export interface LabNode {
  name: string;
  rack: number;
  ns: string;
  ip4: string;
  ip6?: string;
}

export interface LabPod {
  /** The Pod object's name. */
  name: string;
  /** Its Kubernetes namespace (default "default"). */
  namespace?: string;
  labels?: Record<string, string>;
  node: string;
  /** The pod's network namespace. */
  ns: string;
  ips: string[];
}

export interface LabState {
  opts: LabOptions;
  kubeconfig: string;
  /** kubeconfig for components inside the fabric (kube-proxy): the apiserver through the control-plane address. */
  fabricKubeconfig?: string;
  nodes: LabNode[];
  pods: LabPod[];
  controllers: string[];
}

export const DEFAULTS: LabOptions = { racks: 2, nodesPerRack: 2, dualStack: false, podsPerNode: 2, controllers: 2, proxyMode: 'nftables' };

/** The control-plane namespace hangs off the spine: its address is what the apiserver advertises. */
export const CP = { ns: `${NS}cp`, ip: '172.30.0.10', spineIp: '172.30.0.1', prefix: 24 };
export const SERVICE_CIDR = '10.96.0.0/16';
/** The IPv6 Service range of a dual-stack lab (the apiserver gets both; IPv4 stays primary). */
export const SERVICE_CIDR_V6 = 'fd00:10:96::/112';

export const rackSubnet = (r: number) => `172.20.${r}`;
export const tor = (r: number): FrrRouter & { ns: string } => ({ name: `pf-lab-tor${r}`, ns: `pf-lab-tor${r}`, asn: 65100 + r, routerId: `172.20.${r}.1`, neighbors: [], redistributeConnected: true });
export const nodeName = (r: number, n: number) => `r${r}n${n}`;
export const nodeDir = (name: string) => join(STATE, 'nodes', name);
export const conflistPath = (name: string) => join(nodeDir(name), 'net.d', '10-podfabric.conflist');
export const log = (msg: string) => process.stderr.write(`lab: ${msg}\n`);
/** Lab daemons always log (even when started from a test run, where the logger defaults to silent). */
export const DAEMON_ENV = { ...process.env, PODFABRIC_LOG_LEVEL: process.env.PODFABRIC_LAB_LOG_LEVEL ?? 'info', VITEST: '' };

export function labNode(r: number, n: number, dual: boolean): LabNode {
  return { name: nodeName(r, n), rack: r, ns: `${NS}${nodeName(r, n)}`, ip4: `${rackSubnet(r)}.${10 + n}`, ...(dual ? { ip6: `fd00:20:${r}::${10 + n}` } : {}) };
}

export async function loadState(): Promise<LabState> {
  return JSON.parse(await readFile(join(STATE, 'lab.json'), 'utf8')) as LabState;
}

export async function saveState(s: LabState): Promise<void> {
  await writeFile(join(STATE, 'lab.json'), JSON.stringify(s, null, 2));
}

export function labRest(s: LabState): KubeRest {
  return new KubeRest(loadKubeConfig(s.kubeconfig), { qps: 200, burst: 400, userAgent: 'podfabric-lab' });
}

export const kubectl = (s: { kubeconfig: string }, args: string[], input?: string) =>
  run(['kubectl', `--kubeconfig=${s.kubeconfig}`, ...args], { ...(input !== undefined ? { input } : {}), timeoutMs: 60_000 });

export const LAB_LB_CIDR_V4 = '198.51.100.0/24';
export const LAB_LB_CIDR_V6 = 'fd00:198:51:100::/120';

/** The manifests the lab applies: FabricConfig, IPPools, the default LoadBalancerPool, one BGPPeer per rack (and per family). */
export function manifests(o: LabOptions): unknown[] {
  const out: unknown[] = [
    { apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'default' }, spec: { asn: 64512, routerIdSource: 'NodeIPv4', routeProtocol: 201 } },
    { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'pods-v4' }, spec: { cidr: '10.244.0.0/16', blockSize: 24 } },
  ];
  if (o.dualStack) out.push({ apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'pods-v6' }, spec: { cidr: 'fd00:10:244::/56', blockSize: 64 } });
  // LoadBalancer addresses (issue #14): outside every cluster range (TEST-NET-2), advertised by the nodes' agents.
  out.push({ apiVersion: 'podfabric.io/v1alpha1', kind: 'LoadBalancerPool', metadata: { name: 'lab-lb' }, spec: { cidrs: [LAB_LB_CIDR_V4, ...(o.dualStack ? [LAB_LB_CIDR_V6] : [])] } });
  for (let r = 1; r <= o.racks; r++) {
    const timers = { holdTime: 9, keepaliveInterval: 3, connectRetry: 1 };
    const sel = { matchLabels: { 'podfabric.io/rack': `r${r}` } };
    out.push({ apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: { name: `tor-r${r}` }, spec: { peerAddress: `${rackSubnet(r)}.1`, peerASN: 65100 + r, nodeSelector: sel, timers } });
    if (o.dualStack) {
      out.push({ apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: { name: `tor-r${r}-v6` }, spec: { peerAddress: `fd00:20:${r}::1`, peerASN: 65100 + r, nodeSelector: sel, timers } });
    }
  }
  return out;
}

export function nodeObject(n: LabNode): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'podfabric.io/rack': `r${n.rack}`, 'topology.kubernetes.io/zone': `rack${n.rack}` } },
    status: { addresses: [{ type: 'InternalIP', address: n.ip4 }, ...(n.ip6 ? [{ type: 'InternalIP', address: n.ip6 }] : []), { type: 'Hostname', address: n.name }] },
  };
}

/** ToR–spine link addresses: rack r's ToR is .1 / ::1, the spine .2 / ::2. */
export const spineLink = (r: number) => ({ tor4: `172.31.${r}.1`, spine4: `172.31.${r}.2`, tor6: `fd00:31:${r}::1`, spine6: `fd00:31:${r}::2` });

export function torRouter(r: number, nodes: LabNode[], dual: boolean): FrrRouter {
  const t = tor(r);
  const l = spineLink(r);
  t.neighbors = [
    { address: l.spine4, remoteAs: 65000, description: 'spine' },
    ...(dual ? [{ address: l.spine6, remoteAs: 65000, description: 'spine-v6' }] : []),
    ...nodes.filter((n) => n.rack === r).flatMap((n) => [{ address: n.ip4, remoteAs: 64512, description: n.name }, ...(n.ip6 ? [{ address: n.ip6, remoteAs: 64512, description: n.name }] : [])]),
  ];
  return t;
}
