/**
 * A whole podfabric fabric on one machine, in network namespaces:
 *
 *                         pf-lab-spine (FRR AS 65000)
 *                        /                          \
 *     pf-lab-tor1 (FRR AS 65101)              pf-lab-tor2 (FRR AS 65102)        one L2 subnet per rack
 *      /          \                             /          \
 *  pf-lab-r1n1  pf-lab-r1n2                pf-lab-r2n1  pf-lab-r2n2              gobgpd + agent per node
 *   pods…        pods…                       pods…        pods…                  (CNI bridge + host-local)
 *
 * plus a real kube-apiserver and two `podfabric controller` replicas (leader + standby), all on 127.0.0.1.
 * Every namespace starts with "pf-lab-"; `down` (and every `up`) removes all of them and every process.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { table } from '../../operator/cli/table.js';
import { run } from '../../operator/lib/exec.js';
import { KubeRest, loadKubeConfig } from '../../operator/kube/rest.js';
import type { NodeFabricObj } from '../../operator/api/kinds.js';
import { fabricReadiness } from '../../operator/api/readiness.js';
import { cniAdd, cniDel } from './lib/cni-runtime.js';
import { alive, readPid, startDaemon, stopPid, waitUntil } from './lib/daemon.js';
import { addNeighbors, bgpNeighbors, renderFrrConfig, startFrr, stopFrr, vtyshJson, type FrrRouter } from './lib/frr.js';
import { gobgpSocket, startGobgpd, stopGobgpd } from './lib/gobgpd.js';
import { addAddress, addBridge, addNamespace, addVeth, cleanupByPrefix, deleteNamespace, inNs, ip, ping, setMaster } from './lib/netns.js';
import { API_PATH as API } from '../../operator/api/common.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const STATE = process.env.PODFABRIC_LAB_DIR ?? '/tmp/pf-lab';
export const NS = 'pf-lab-';

export interface LabOptions {
  racks: number;
  nodesPerRack: number;
  dualStack: boolean;
  podsPerNode: number;
  controllers: number;
}

export interface LabNode {
  name: string;
  rack: number;
  ns: string;
  ip4: string;
  ip6?: string;
}

export interface LabPod {
  name: string;
  node: string;
  ns: string;
  ips: string[];
}

export interface LabState {
  opts: LabOptions;
  kubeconfig: string;
  nodes: LabNode[];
  pods: LabPod[];
  controllers: string[];
}

export const DEFAULTS: LabOptions = { racks: 2, nodesPerRack: 2, dualStack: false, podsPerNode: 2, controllers: 2 };

const rackSubnet = (r: number) => `172.20.${r}`;
const tor = (r: number): FrrRouter & { ns: string } => ({ name: `pf-lab-tor${r}`, ns: `pf-lab-tor${r}`, asn: 65100 + r, routerId: `172.20.${r}.1`, neighbors: [] });
export const nodeName = (r: number, n: number) => `r${r}n${n}`;
export const nodeDir = (name: string) => join(STATE, 'nodes', name);
export const conflistPath = (name: string) => join(nodeDir(name), 'net.d', '10-podfabric.conflist');
const log = (msg: string) => process.stderr.write(`lab: ${msg}\n`);
/** Lab daemons always log (even when started from a test run, where the logger defaults to silent). */
const DAEMON_ENV = { ...process.env, PODFABRIC_LOG_LEVEL: process.env.PODFABRIC_LAB_LOG_LEVEL ?? 'info', VITEST: '' };

export function labNode(r: number, n: number, dual: boolean): LabNode {
  return { name: nodeName(r, n), rack: r, ns: `${NS}${nodeName(r, n)}`, ip4: `${rackSubnet(r)}.${10 + n}`, ...(dual ? { ip6: `fd00:20:${r}::${10 + n}` } : {}) };
}

export async function loadState(): Promise<LabState> {
  return JSON.parse(await readFile(join(STATE, 'lab.json'), 'utf8')) as LabState;
}

async function saveState(s: LabState): Promise<void> {
  await writeFile(join(STATE, 'lab.json'), JSON.stringify(s, null, 2));
}

export function labRest(s: LabState): KubeRest {
  return new KubeRest(loadKubeConfig(s.kubeconfig), { qps: 200, burst: 400, userAgent: 'podfabric-lab' });
}

export const kubectl = (s: { kubeconfig: string }, args: string[], input?: string) =>
  run(['kubectl', `--kubeconfig=${s.kubeconfig}`, ...args], { ...(input !== undefined ? { input } : {}), timeoutMs: 60_000 });

/** The manifests the lab applies: FabricConfig, IPPools, one BGPPeer per rack (and per family). */
export function manifests(o: LabOptions): unknown[] {
  const out: unknown[] = [
    { apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'default' }, spec: { asn: 64512, routerIdSource: 'NodeIPv4', routeProtocol: 201 } },
    { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'pods-v4' }, spec: { cidr: '10.244.0.0/16', blockSize: 24 } },
  ];
  if (o.dualStack) out.push({ apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'pods-v6' }, spec: { cidr: 'fd00:10:244::/56', blockSize: 64 } });
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
    metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'podfabric.io/rack': `r${n.rack}`, 'topology.kubernetes.io/zone': `rack${n.rack}` } },
    status: { addresses: [{ type: 'InternalIP', address: n.ip4 }, ...(n.ip6 ? [{ type: 'InternalIP', address: n.ip6 }] : []), { type: 'Hostname', address: n.name }] },
  };
}

/** Removes every namespace, process and file a lab run made. Tolerates any leftover state. */
export async function down(): Promise<void> {
  for (const f of ['controller-1', 'controller-2', 'controller-3']) {
    await stopPid(join(STATE, `${f}.pid`), 'SIGTERM', 3000);
    await stopPid(join(STATE, `${f}.child.pid`), 'SIGTERM', 3000);
  }
  const nodesDir = join(STATE, 'nodes');
  if (existsSync(nodesDir)) {
    for (const n of await readdir(nodesDir)) {
      await stopPid(join(nodesDir, n, 'agent.pid'), 'SIGKILL');
      await stopGobgpd(`${NS}${n}`, 'SIGKILL');
    }
  }
  const nss = (await ip(['netns', 'list'], { allowFail: true })).stdout;
  for (const m of nss.matchAll(/^(pf-lab-tor\d+|pf-lab-spine)\b/gm)) await stopFrr(m[1]!, 'SIGKILL');
  await cleanupByPrefix(NS);
  await run(['bash', join(ROOT, 'hack/apiserver/stop.sh'), join(STATE, 'apiserver')], { allowFail: true });
  await keepLogs();
  await rm(STATE, { recursive: true, force: true });
}

/** The last torn-down lab's logs (agents, controllers, apiserver) stay in `<STATE>-last/` for a post-mortem. */
async function keepLogs(): Promise<void> {
  if (!existsSync(STATE)) return;
  const last = `${STATE}-last`;
  await rm(last, { recursive: true, force: true });
  await cp(STATE, last, { recursive: true, filter: (src) => !src.includes('/data') && (src.endsWith('.log') || !/\.[a-z]+$/.test(src)) }).catch(() => undefined);
}

async function buildAll(): Promise<void> {
  log('checking system packages (hack/install-deps.sh)');
  await run(['bash', join(ROOT, 'hack/install-deps.sh')], { timeoutMs: 1_800_000 });
  log('building the operator (tsc)');
  await run(['npx', 'tsc', '-p', join(ROOT, 'tsconfig.json')], { timeoutMs: 300_000 });
}

async function startApiserver(): Promise<string> {
  const dir = join(STATE, 'apiserver');
  const r = await run(['bash', join(ROOT, 'hack/apiserver/start.sh'), dir, '--fresh'], { allowFail: true, timeoutMs: 1_800_000 });
  if (r.code !== 0) throw new Error(`kube-apiserver did not start:\n${r.stderr.slice(-3000)}`);
  const kubeconfig = join(dir, 'kubeconfig');
  await run(['kubectl', `--kubeconfig=${kubeconfig}`, 'apply', '--server-side', '-f', join(ROOT, 'crds')]);
  await run(['kubectl', `--kubeconfig=${kubeconfig}`, 'wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
  await run(['kubectl', `--kubeconfig=${kubeconfig}`, 'create', 'namespace', 'podfabric-system']);
  return kubeconfig;
}

/** ToR–spine link addresses: rack r's ToR is .1 / ::1, the spine .2 / ::2. */
const spineLink = (r: number) => ({ tor4: `172.31.${r}.1`, spine4: `172.31.${r}.2`, tor6: `fd00:31:${r}::1`, spine6: `fd00:31:${r}::2` });

function torRouter(r: number, nodes: LabNode[], dual: boolean): FrrRouter {
  const t = tor(r);
  const l = spineLink(r);
  t.neighbors = [
    { address: l.spine4, remoteAs: 65000, description: 'spine' },
    ...(dual ? [{ address: l.spine6, remoteAs: 65000, description: 'spine-v6' }] : []),
    ...nodes.filter((n) => n.rack === r).flatMap((n) => [{ address: n.ip4, remoteAs: 64512, description: n.name }, ...(n.ip6 ? [{ address: n.ip6, remoteAs: 64512, description: n.name }] : [])]),
  ];
  return t;
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

/** Builds a node's namespace, uplink, gobgpd and agent, registers its Node object. */
export async function addNode(s: LabState, n: LabNode, opts: { register?: boolean } = {}): Promise<void> {
  await mkdir(join(nodeDir(n.name), 'net.d'), { recursive: true });
  await addNamespace(n.ns);
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
  if (opts.register ?? true) await kubectl(s, ['apply', '-f', '-'], JSON.stringify(nodeObject(n)));
}

/** Deletes a node the way an operator would: Node object first, then the machine. */
export async function removeNode(s: LabState, name: string): Promise<void> {
  const n = s.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no lab node ${name}`);
  await kubectl(s, ['delete', 'node', name, '--wait=false']);
  for (const p of s.pods.filter((p) => p.node === name)) await cniDel(n.ns, p.ns, conflistPath(name)).catch(() => undefined);
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
    const routes = await vtyshJson<Record<string, Array<{ installed?: boolean; selected?: boolean }>>>(router, cmd).catch(() => ({}));
    for (const [prefix, entries] of Object.entries(routes)) if (entries.some((e) => e.installed)) out.add(prefix);
  }
  return out;
}

export async function addPod(s: LabState, node: string, name: string): Promise<LabPod> {
  const n = s.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`no lab node ${node}`);
  if (!existsSync(conflistPath(node))) throw new Error(`node ${node} has no CNI configuration yet (see its NodeFabric status)`);
  const ns = `${NS}${node}-${name}`;
  const ips = await cniAdd(n.ns, ns, conflistPath(node), ns);
  const pod = { name, node, ns, ips };
  s.pods = [...s.pods.filter((p) => p.ns !== ns), pod];
  await saveState(s);
  return pod;
}

export async function delPod(s: LabState, node: string, name: string): Promise<void> {
  const n = s.nodes.find((x) => x.name === node);
  const ns = `${NS}${node}-${name}`;
  if (n) await cniDel(n.ns, ns, conflistPath(node), ns);
  s.pods = s.pods.filter((p) => p.ns !== ns);
  await saveState(s);
}

export async function up(o: LabOptions = DEFAULTS, opts: { skipBuild?: boolean } = {}): Promise<LabState> {
  const t0 = Date.now();
  await down();
  if (!opts.skipBuild) await buildAll();
  await mkdir(STATE, { recursive: true });
  log('starting kube-apiserver (built from k8s.io/kubernetes; first build takes minutes)');
  const tApi = Date.now();
  const kubeconfig = await startApiserver();
  log(`apiserver ready in ${((Date.now() - tApi) / 1000).toFixed(1)} s`);
  const nodes: LabNode[] = [];
  for (let r = 1; r <= o.racks; r++) for (let n = 1; n <= o.nodesPerRack; n++) nodes.push(labNode(r, n, o.dualStack));
  const s: LabState = { opts: o, kubeconfig, nodes, pods: [], controllers: [] };
  await saveState(s);

  log(`building the fabric: spine, ${o.racks} ToRs, ${nodes.length} nodes`);
  await addNamespace(`${NS}spine`);
  const spine: FrrRouter = { name: `${NS}spine`, ns: `${NS}spine`, asn: 65000, routerId: '172.31.0.1', neighbors: [] };
  for (let r = 1; r <= o.racks; r++) {
    const t = tor(r);
    await addNamespace(t.ns);
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
  await startFrr(spine);
  for (let r = 1; r <= o.racks; r++) await startFrr(torRouter(r, nodes, o.dualStack));
  await writeFile(join(STATE, 'frr-spine.conf'), renderFrrConfig(spine));

  const manifestDir = join(STATE, 'manifests');
  await mkdir(manifestDir, { recursive: true });
  await writeFile(join(manifestDir, 'fabric.yaml'), manifests(o).map((m) => stringify(m)).join('---\n'));
  await kubectl(s, ['apply', '-f', manifestDir]);
  for (let i = 1; i <= o.controllers; i++) {
    await startController(s, i);
    s.controllers.push(`controller-${i}`);
  }
  await Promise.all(nodes.map((n) => addNode(s, n)));
  await saveState(s);
  log('waiting for every node: sessions established, routes installed, CNI configuration written');
  await waitNodesReady(s, nodes.map((n) => n.name), 120_000);
  log(`fabric ready in ${((Date.now() - t0) / 1000).toFixed(1)} s; creating pods`);
  for (const n of nodes) for (let p = 1; p <= o.podsPerNode; p++) await addPod(s, n.name, `p${p}`);
  log(`up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return s;
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

export interface StatusReport {
  nodes: Array<{ name: string; cidrs: string; sessions: string; routes: number; ready: string; reason: string }>;
  tors: Array<{ name: string; sessions: string; prefixes: number }>;
  pods: LabPod[];
  matrix: Array<{ from: string; to: string; ip: string; ok: boolean }>;
}

export async function status(s: LabState, opts: { pings?: boolean } = {}): Promise<StatusReport> {
  const rest = labRest(s);
  const nodes: StatusReport['nodes'] = [];
  try {
    for (const n of s.nodes) {
      const nf = await rest.get<NodeFabricObj>(`${API}/nodefabrics/${n.name}`).catch(() => null);
      const ready = (nf?.status?.conditions ?? []).find((c) => c.type === 'Ready');
      nodes.push({
        name: n.name,
        cidrs: (nf?.spec.podCIDRs ?? []).join(',') || '-',
        sessions: `${nf?.status?.sessionsEstablished ?? 0}/${nf?.spec.peers?.length ?? 0}`,
        routes: nf?.status?.routesInstalled ?? 0,
        ready: ready?.status ?? 'Unknown',
        reason: ready?.status === 'True' ? '' : (ready?.message ?? 'no status yet').slice(0, 80),
      });
    }
  } finally {
    rest.close();
  }
  const tors: StatusReport['tors'] = [];
  for (let r = 1; r <= s.opts.racks; r++) tors.push(await routerSummary(`${NS}tor${r}`));
  tors.push(await routerSummary(`${NS}spine`));
  const matrix: StatusReport['matrix'] = [];
  if (opts.pings ?? true) {
    const jobs: Array<Promise<void>> = [];
    for (const a of s.pods) {
      for (const b of s.pods) {
        if (a === b) continue;
        // Every address of the target: both families on a dual-stack lab.
        for (const ip of b.ips) jobs.push(ping(a.ns, ip, { timeoutS: 1 }).then((ok) => void matrix.push({ from: `${a.node}/${a.name}`, to: `${b.node}/${b.name}`, ip, ok })));
      }
    }
    await Promise.all(jobs);
  }
  return { nodes, tors, pods: s.pods, matrix };
}

async function routerSummary(name: string): Promise<StatusReport['tors'][number]> {
  try {
    const nb = await bgpNeighbors(name);
    const up = [...nb.values()].filter((p) => p.state === 'Established').length;
    const routes4 = await vtyshJson<Record<string, unknown>>(name, 'show ip route bgp json');
    const routes6 = await vtyshJson<Record<string, unknown>>(name, 'show ipv6 route bgp json').catch(() => ({}));
    return { name: name.replace(NS, ''), sessions: `${up}/${nb.size}`, prefixes: Object.keys(routes4).length + Object.keys(routes6).length };
  } catch {
    return { name: name.replace(NS, ''), sessions: 'down', prefixes: 0 };
  }
}

export function renderStatus(r: StatusReport): string {
  const out: string[] = [];
  out.push('NODES', table([['NODE', 'POD CIDRS', 'SESSIONS', 'ROUTES', 'READY', 'WHY NOT'], ...r.nodes.map((n) => [n.name, n.cidrs, n.sessions, String(n.routes), n.ready, n.reason])]));
  out.push('', 'ROUTERS', table([['ROUTER', 'SESSIONS', 'BGP PREFIXES IN FIB'], ...r.tors.map((t) => [t.name, t.sessions, String(t.prefixes)])]));
  if (r.pods.length) out.push('', 'PODS', table([['POD', 'NODE', 'IPS'], ...r.pods.map((p) => [p.name, p.node, p.ips.join(',')])]));
  if (r.matrix.length) {
    const names = r.pods.map((p) => `${p.node}/${p.name}`);
    const ok = (a: string, b: string) => {
      if (a === b) return '·';
      const pings = r.matrix.filter((m) => m.from === a && m.to === b);
      return pings.length && pings.every((m) => m.ok) ? '✓' : '✗';
    };
    out.push('', 'PING MATRIX (row pings column)', table([['', ...names.map((_, i) => String(i + 1))], ...names.map((a, i) => [`${i + 1} ${a}`, ...names.map((b) => ok(a, b))])]));
    const bad = r.matrix.filter((m) => !m.ok).length;
    out.push('', bad ? `${bad} of ${r.matrix.length} pings FAILED` : `all ${r.matrix.length} pod-to-pod pings OK`);
  }
  return out.join('\n');
}

/** The running controller replicas and their lease identities (read from their logs). */
export async function controllerPids(): Promise<Array<{ id: string; pid: number | null; alive: boolean }>> {
  const out = [];
  for (let i = 1; i <= 3; i++) {
    const pid = await readPid(join(STATE, `controller-${i}.child.pid`));
    if (!pid) continue;
    const logText = await readFile(join(STATE, `controller-${i}.log`), 'utf8').catch(() => '');
    const ids = [...logText.matchAll(/"identity":"([^"]+)"/g)].map((m) => m[1]!);
    out.push({ id: ids.at(-1) ?? '', pid, alive: alive(pid) });
  }
  return out;
}

export { inNs };
