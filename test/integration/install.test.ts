/**
 * The install (dist/, and the chart with a Secret option) against the real kube-apiserver: the whole
 * install passes server-side validation and admission (dry run), the RBAC really grants what each
 * component needs and nothing more (`kubectl auth can-i` as each ServiceAccount), the admission
 * policy really stops an agent (a real pod-bound token) from writing another node's NodeFabric, and the
 * real controller and the real agent (pod-bound token; real gobgpd and FRR with an MD5 password read from
 * the Secret the chart grants) do their whole job under their ServiceAccounts without one forbidden request.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthInstall } from '../../cdk8s/chart.js';
import { POLICY_NAME } from '../../cdk8s/admission.js';
import { LEADER_FLOW_SCHEMA } from '../../cdk8s/priority.js';
import { DIST_DIR } from '../../hack/synth-check.js';
import { KubeRest, loadKubeConfig, type KubeError } from '../../operator/kube/rest.js';
import { applyObjects, cleanCluster, kubeconfigPath, kubectl, node, testRest, waitFor } from '../support/kube.js';
import { bgpNeighbors, startFrr, stopFrr, type FrrRouter } from '../../hack/lab/lib/frr.js';
import { gobgpSocket, startGobgpd, stopGobgpd } from '../../hack/lab/lib/gobgpd.js';
import { addAddress, addNamespace, addVeth, cleanupByPrefix } from '../../hack/lab/lib/netns.js';
import { API_PATH as API } from '../../operator/api/common.js';

const ROOT = join(import.meta.dirname, '..', '..');
const NS = 'podfabric-system';
const AGENT = `system:serviceaccount:${NS}:podfabric-agent`;
const CONTROLLER = `system:serviceaccount:${NS}:podfabric-controller`;
const SECRET = 'bgp-tor-password';
const RBAC_KINDS = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

type Obj = { kind: string; metadata: { name: string; namespace?: string } };
const docs = (yaml: string) => parseAllDocuments(yaml).map((d) => d.toJS() as Obj);
const toInput = (objs: Obj[]) => objs.map((o) => JSON.stringify(o)).join('\n');

/** `kubectl auth can-i VERB RESOURCE [-n NS]` as `user`: true for "yes". */
async function can(user: string, verb: string, resource: string, opts: { ns?: string; subresource?: string } = {}): Promise<boolean> {
  const r = await kubectl(['auth', 'can-i', verb, resource, `--as=${user}`, ...(opts.ns ? ['-n', opts.ns] : []), ...(opts.subresource ? [`--subresource=${opts.subresource}`] : [])], {
    allowFail: true,
  });
  const answer = r.stdout.trim();
  if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl auth can-i ${verb} ${resource}: ${r.stderr}`);
  return answer === 'yes';
}

const chartWithSecret = docs(synthInstall({ secretNames: [SECRET] }));
const rbac = chartWithSecret.filter((o) => RBAC_KINDS.has(o.kind));
const policy = chartWithSecret.filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy'));
const flowSchemas = chartWithSecret.filter((o) => o.kind === 'FlowSchema');
let tmp = '';

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pf-install-'));
  // Namespaced objects of a dry run need their namespace to exist for real.
  const ns = chartWithSecret.filter((o) => o.kind === 'Namespace');
  await kubectl(['apply', '--server-side', '--field-manager=podfabric-install-test', '-f', '-'], { input: toInput(ns) });
});

afterAll(async () => {
  for (const o of [...policy, ...rbac, ...flowSchemas]) {
    await kubectl(['delete', o.kind, o.metadata.name, ...(o.metadata.namespace ? ['-n', o.metadata.namespace] : []), '--ignore-not-found', '--wait=false'], { allowFail: true });
  }
  await kubectl(['delete', 'secret', SECRET, 'other-secret', '-n', NS, '--ignore-not-found'], { allowFail: true });
  await kubectl(['delete', 'secret', SECRET, '-n', 'kube-system', '--ignore-not-found'], { allowFail: true });
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('install: dist/ against the real apiserver', () => {
  it('passes server-side validation and admission (kubectl apply --server-side --dry-run=server -f dist/)', async () => {
    const r = await kubectl(['apply', '--server-side', '--force-conflicts', '--dry-run=server', '--field-manager=podfabric-install-test', '-f', DIST_DIR], { allowFail: true });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const text = await readFile(join(DIST_DIR, 'podfabric.k8s.yaml'), 'utf8');
    // Every object in dist/ was answered for (kubectl prints one line per object).
    expect(r.stdout.trim().split('\n')).toHaveLength(docs(text).length);
    expect(r.stdout).toContain('daemonset.apps/podfabric-agent serverside-applied (server dry run)');
    expect(r.stdout).toContain('fabricconfig.podfabric.io/default serverside-applied (server dry run)');
  });

  it('passes the CRDs CEL rules with pools and peers from options (dry run)', async () => {
    const withObjects = synthInstall({
      pools: [{ name: 'pf-install-pods', cidr: '10.244.0.0/16', blockSize: 26 }],
      peers: [{ name: 'pf-install-tor', address: '192.0.2.1', asn: 65101, nodeSelector: { matchLabels: { 'podfabric.io/rack': 'r1' } }, timers: { holdTime: 9, keepaliveInterval: 3 } }],
    });
    const objs = docs(withObjects).filter((o) => o.kind === 'IPPool' || o.kind === 'BGPPeer');
    expect(objs).toHaveLength(2);
    await kubectl(['apply', '--server-side', '--dry-run=server', '--field-manager=podfabric-install-test', '-f', '-'], { input: toInput(objs) });
  });
});

describe('install: RBAC as each ServiceAccount (kubectl auth can-i)', () => {
  beforeAll(async () => {
    await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=podfabric-install-test', '-f', '-'], { input: toInput(rbac) });
  });

  it('agent: patches nodefabrics/status and nothing else of nodefabrics; only reads l2segments', async () => {
    expect(await can(AGENT, 'patch', 'nodefabrics.podfabric.io', { subresource: 'status' })).toBe(true);
    for (const verb of ['create', 'update', 'patch', 'delete', 'deletecollection']) {
      expect(await can(AGENT, verb, 'nodefabrics.podfabric.io'), verb).toBe(false);
    }
    expect(await can(AGENT, 'update', 'nodefabrics.podfabric.io', { subresource: 'status' })).toBe(false);
    for (const verb of ['list', 'watch']) expect(await can(AGENT, verb, 'nodefabrics.podfabric.io'), verb).toBe(true);
    expect(await can(AGENT, 'get', 'fabricconfigs.podfabric.io/default')).toBe(true);
    expect(await can(AGENT, 'patch', 'fabricconfigs.podfabric.io')).toBe(false);
    // Its sessions come from the BGPPeers it watches (read only).
    for (const verb of ['list', 'watch']) expect(await can(AGENT, verb, 'bgppeers.podfabric.io'), verb).toBe(true);
    for (const verb of ['create', 'update', 'patch', 'delete']) expect(await can(AGENT, verb, 'bgppeers.podfabric.io'), verb).toBe(false);
    expect(await can(AGENT, 'patch', 'bgppeers.podfabric.io', { subresource: 'status' })).toBe(false);
    // Its host-gw routes: the L2Segments its NodeFabric names (read only; the controller writes them).
    for (const verb of ['get', 'list', 'watch']) expect(await can(AGENT, verb, 'l2segments.podfabric.io'), verb).toBe(true);
    for (const verb of ['create', 'update', 'patch', 'delete', 'deletecollection']) expect(await can(AGENT, verb, 'l2segments.podfabric.io'), verb).toBe(false);
  });

  it('agent: gets only the named Secret, lists none', async () => {
    expect(await can(AGENT, 'get', `secrets/${SECRET}`, { ns: NS })).toBe(true);
    expect(await can(AGENT, 'get', 'secrets/other-secret', { ns: NS })).toBe(false);
    expect(await can(AGENT, 'get', `secrets/${SECRET}`, { ns: 'kube-system' })).toBe(false);
    expect(await can(AGENT, 'list', 'secrets', { ns: NS })).toBe(false);
    expect(await can(AGENT, 'watch', 'secrets', { ns: NS })).toBe(false);
  });

  it('agent: never writes Nodes or Pods', async () => {
    for (const verb of ['patch', 'update', 'delete']) expect(await can(AGENT, verb, 'nodes'), verb).toBe(false);
    expect(await can(AGENT, 'patch', 'nodes', { subresource: 'status' })).toBe(false);
    expect(await can(AGENT, 'create', 'pods', { ns: NS })).toBe(false);
    expect(await can(AGENT, 'create', 'pods', { ns: 'default' })).toBe(false);
  });

  it('agent: records Events (its NodeFabric in "default", Services in theirs) and cannot delete them; reads what kube-proxy reads, writes none of it', async () => {
    expect(await can(AGENT, 'create', 'events', { ns: 'default' })).toBe(true);
    expect(await can(AGENT, 'patch', 'events', { ns: 'default' })).toBe(true);
    expect(await can(AGENT, 'create', 'events', { ns: 'web' })).toBe(true);
    expect(await can(AGENT, 'delete', 'events', { ns: 'default' })).toBe(false);
    for (const r of ['services', 'endpointslices.discovery.k8s.io', 'nodes', 'loadbalancerpools.podfabric.io']) {
      expect(await can(AGENT, 'watch', r), r).toBe(true);
      expect(await can(AGENT, 'patch', r), r).toBe(false);
    }
    expect(await can(AGENT, 'patch', 'services', { subresource: 'status' })).toBe(false);
  });

  it('controller: patches Nodes, writes NodeFabrics and statuses, reads Secrets only where allowed', async () => {
    expect(await can(CONTROLLER, 'patch', 'nodes')).toBe(true);
    expect(await can(CONTROLLER, 'delete', 'nodes')).toBe(false);
    expect(await can(CONTROLLER, 'update', 'nodes')).toBe(false);
    for (const verb of ['get', 'create', 'update', 'delete', 'list', 'watch']) expect(await can(CONTROLLER, verb, 'nodefabrics.podfabric.io'), verb).toBe(true);
    expect(await can(CONTROLLER, 'patch', 'nodefabrics.podfabric.io')).toBe(false);
    for (const verb of ['get', 'create', 'update', 'delete', 'list', 'watch']) expect(await can(CONTROLLER, verb, 'l2segments.podfabric.io'), verb).toBe(true);
    expect(await can(CONTROLLER, 'patch', 'l2segments.podfabric.io')).toBe(false);
    for (const r of ['nodefabrics', 'ippools', 'bgppeers', 'fabricconfigs']) {
      expect(await can(CONTROLLER, 'patch', `${r}.podfabric.io`, { subresource: 'status' }), r).toBe(true);
    }
    expect(await can(CONTROLLER, 'patch', 'ippools.podfabric.io')).toBe(true);
    expect(await can(CONTROLLER, 'delete', 'ippools.podfabric.io')).toBe(false);
    expect(await can(CONTROLLER, 'get', `secrets/${SECRET}`, { ns: NS })).toBe(true);
    expect(await can(CONTROLLER, 'get', `secrets/${SECRET}`, { ns: 'kube-system' })).toBe(false);
    expect(await can(CONTROLLER, 'list', 'secrets', { ns: NS })).toBe(false);
    expect(await can(CONTROLLER, 'create', 'pods', { ns: NS })).toBe(false);
  });

  it('controller: its own Lease in its namespace only; Events where its objects are', async () => {
    expect(await can(CONTROLLER, 'update', 'leases.coordination.k8s.io/podfabric-controller', { ns: NS })).toBe(true);
    expect(await can(CONTROLLER, 'get', 'leases.coordination.k8s.io/podfabric-controller', { ns: NS })).toBe(true);
    expect(await can(CONTROLLER, 'create', 'leases.coordination.k8s.io', { ns: NS })).toBe(true);
    expect(await can(CONTROLLER, 'update', 'leases.coordination.k8s.io/someone-else', { ns: NS })).toBe(false);
    expect(await can(CONTROLLER, 'update', 'leases.coordination.k8s.io/podfabric-controller', { ns: 'kube-system' })).toBe(false);
    expect(await can(CONTROLLER, 'create', 'leases.coordination.k8s.io', { ns: 'kube-system' })).toBe(false);
    expect(await can(CONTROLLER, 'create', 'events', { ns: 'default' })).toBe(true);
    expect(await can(CONTROLLER, 'patch', 'events', { ns: 'default' })).toBe(true);
    expect(await can(CONTROLLER, 'create', 'events', { ns: 'web' })).toBe(true); // Events on Services
    expect(await can(CONTROLLER, 'delete', 'events', { ns: 'default' })).toBe(false);
  });

  it('controller: LoadBalancer addresses: Service status only, pools and their status', async () => {
    expect(await can(CONTROLLER, 'patch', 'services', { subresource: 'status' })).toBe(true);
    for (const verb of ['create', 'patch', 'update', 'delete']) expect(await can(CONTROLLER, verb, 'services'), verb).toBe(false);
    expect(await can(CONTROLLER, 'watch', 'services')).toBe(true);
    expect(await can(CONTROLLER, 'patch', 'loadbalancerpools.podfabric.io')).toBe(true);
    expect(await can(CONTROLLER, 'patch', 'loadbalancerpools.podfabric.io', { subresource: 'status' })).toBe(true);
    expect(await can(CONTROLLER, 'delete', 'loadbalancerpools.podfabric.io')).toBe(false);
  });

  it('neither can use *', async () => {
    for (const sa of [AGENT, CONTROLLER]) {
      expect(await can(sa, '*', '*'), sa).toBe(false);
      expect(await can(sa, '*', 'nodefabrics.podfabric.io'), sa).toBe(false);
      expect(await can(sa, 'get', '*', { ns: NS }), sa).toBe(false);
    }
  });

  it('the Secret grants hold for real requests, not only can-i', async () => {
    for (const name of [SECRET, 'other-secret']) {
      await kubectl(['create', 'secret', 'generic', name, '-n', NS, '--from-literal=password=s3cret'], { allowFail: true });
    }
    const got = await kubectl(['get', 'secret', SECRET, '-n', NS, `--as=${AGENT}`, '-o', 'jsonpath={.data.password}']);
    expect(Buffer.from(got.stdout, 'base64').toString()).toBe('s3cret');
    const other = await kubectl(['get', 'secret', 'other-secret', '-n', NS, `--as=${AGENT}`], { allowFail: true });
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/forbidden/i);
  });
});

/** A kubeconfig for the test apiserver that authenticates with `token` (a real ServiceAccount token). */
async function tokenKubeconfig(token: string, file: string): Promise<string> {
  const kc = parse(await readFile(kubeconfigPath(), 'utf8')) as { users: Array<{ user: Record<string, unknown> }> };
  for (const u of kc.users) u.user = { token };
  const path = join(tmp, file);
  await writeFile(path, stringify(kc), { mode: 0o600 });
  return path;
}

/** A token of a chart ServiceAccount from the TokenRequest API, bound to `pod` when given (as kubelet does). */
async function saToken(sa: string, pod?: string): Promise<string> {
  const r = await kubectl(['create', 'token', sa, '-n', NS, '--duration=1h', ...(pod ? ['--bound-object-kind=Pod', `--bound-object-name=${pod}`] : [])]);
  return r.stdout.trim();
}

/** The API Priority and Fairness classification of a GET as `user`: the UIDs the apiserver answers with. */
async function apfOf(user: string, path: string): Promise<{ flowSchema?: string; priorityLevel?: string }> {
  const r = await kubectl(['get', '--raw', path, `--as=${user}`, '-v=8'], { allowFail: true });
  const header = (name: string) => new RegExp(`${name}: (\\S+)`, 'i').exec(r.stderr)?.[1];
  return { flowSchema: header('X-Kubernetes-Pf-Flowschema-Uid'), priorityLevel: header('X-Kubernetes-Pf-Prioritylevel-Uid') };
}

describe('install: API Priority and Fairness for the controller\'s lease', () => {
  it('the controller\'s lease requests go to the leader-election priority level; its other requests do not', async () => {
    expect(flowSchemas.map((o) => o.metadata.name)).toEqual([LEADER_FLOW_SCHEMA]);
    await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=podfabric-install-test', '-f', '-'], { input: toInput(flowSchemas) });
    const uid = async (kind: string, name: string) => (await kubectl(['get', kind, name, '-o', 'jsonpath={.metadata.uid}'])).stdout.trim();
    const ours = await uid('flowschema', LEADER_FLOW_SCHEMA);
    const leaderElection = await uid('prioritylevelconfiguration', 'leader-election');
    expect(ours).not.toBe('');
    expect(leaderElection).not.toBe('');
    // The apiserver's APF configuration follows the FlowSchema through its own informer: wait for it.
    const lease = await waitFor('the controller lease GET to be classified by podfabric-leader-election', async () => {
      const c = await apfOf(CONTROLLER, `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/podfabric-controller`);
      return c.flowSchema === ours ? c : undefined;
    }, 30_000, 250);
    expect(lease.priorityLevel).toBe(leaderElection);
    const other = await apfOf(CONTROLLER, `${API}/nodefabrics`);
    expect(other.flowSchema).toBeDefined();
    expect(other.flowSchema).not.toBe(ours);
    expect(other.priorityLevel).not.toBe(leaderElection);
    const agent = await apfOf(AGENT, `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/podfabric-controller`);
    expect(agent.flowSchema).not.toBe(ours);
  });
});

describe('install: the admission policy, with real pod-bound agent tokens', () => {
  const NODES = ['pf-install-n1', 'pf-install-n2'];
  const POD = 'pf-install-agent-n1';
  const DENIED = /podfabric agent may write only the NodeFabric/;
  /** The agent's own status write, exactly as operator/agent/agent.ts makes it (server-side apply of status). */
  const applyStatus = (rest: KubeRest, name: string) =>
    rest.apply(`${API}/nodefabrics/${name}/status`, { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name }, status: { routesInstalled: 1 } }, 'podfabric-agent');
  const failure = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as KubeError);
  let bound: KubeRest;
  let unbound: KubeRest;

  beforeAll(async () => {
    await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=podfabric-install-test', '-f', '-'], { input: toInput([...rbac, ...policy]) });
    await applyObjects([
      ...NODES.map((n, i) => node(n, `192.0.2.${10 + i}`)),
      ...NODES.map((name) => ({ apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name }, spec: {} })),
      // What the DaemonSet would create on node n1 (no kubelet here: it never runs).
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: POD, namespace: NS }, spec: { nodeName: NODES[0], serviceAccountName: 'podfabric-agent', containers: [{ name: 'agent', image: 'podfabric' }] } },
    ]);
    bound = new KubeRest(loadKubeConfig(await tokenKubeconfig(await saToken('podfabric-agent', POD), 'agent-bound.kubeconfig')), { timeoutMs: 10_000 });
    unbound = new KubeRest(loadKubeConfig(await tokenKubeconfig(await saToken('podfabric-agent'), 'agent-unbound.kubeconfig')), { timeoutMs: 10_000 });
  });

  afterAll(async () => {
    bound?.close();
    unbound?.close();
    await kubectl(['delete', 'pod', POD, '-n', NS, '--ignore-not-found', '--grace-period=0', '--force'], { allowFail: true });
  });

  it('lets the agent of node n1 do what the agent does: read its plan and config, write its own status', async () => {
    const list = await bound.get<{ items: Array<{ metadata: { name: string } }> }>(`${API}/nodefabrics?fieldSelector=${encodeURIComponent(`metadata.name=${NODES[0]}`)}`);
    expect(list.items.map((i) => i.metadata.name)).toEqual([NODES[0]]);
    await bound.get(`${API}/fabricconfigs?limit=500`);
    const fc = await failure(bound.get(`${API}/fabricconfigs/default`));
    expect(fc === null || fc.code === 404).toBe(true); // allowed; there is no FabricConfig in this test
    // The policy takes effect once the apiserver's admission informers have seen it: wait for a denial first.
    const denied = await waitFor(
      'the admission policy to deny the agent of n1 writing n2',
      async () => {
        const e = await failure(applyStatus(bound, NODES[1]!));
        if (e && DENIED.test(e.message)) return e;
        throw new Error(e ? e.message : 'the write was allowed');
      },
      30_000,
      250,
    );
    expect(denied.code).toBe(403);
    expect(denied.message).toContain(POLICY_NAME);
    const own = await applyStatus(bound, NODES[0]!);
    expect((own as { status: { routesInstalled: number } }).status.routesInstalled).toBe(1);
  });

  it('denies an agent token that is not bound to a pod on a node (no node-name extra)', async () => {
    const e = await failure(applyStatus(unbound, NODES[0]!));
    expect(e?.code).toBe(403);
    expect(e?.message).toMatch(DENIED);
  });

  it('leaves everyone else alone, and RBAC still stops the agent from writing the spec', async () => {
    await kubectl(['patch', 'nodefabrics.podfabric.io', NODES[1]!, '--subresource=status', '--type=merge', '-p', '{"status":{"routesInstalled":2}}']);
    const e = await failure(bound.apply(`${API}/nodefabrics/${NODES[0]}`, { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: NODES[0] }, spec: {} }, 'podfabric-agent'));
    expect(e?.code).toBe(403);
    expect(e?.message).toMatch(/cannot patch resource "nodefabrics"/);
  });
});

describe('install: the real controller under its ServiceAccount', () => {
  let child: ChildProcess | undefined;
  let log = '';
  const rest = testRest();

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    await cleanCluster(rest);
    rest.close();
  });

  it('allocates, mirrors podCIDRs, writes statuses, leads on its Lease and records Events, with no request forbidden', async () => {
    await cleanCluster(rest);
    await applyObjects([
      node('pf-install-ctl', '192.0.2.30'),
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'pf-install-pool' }, spec: { cidr: '10.250.0.0/16', blockSize: 24 } },
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'pf-install-tor' }, spec: { peerAddress: '192.0.2.1', peerASN: 65101, passwordSecretRef: { namespace: NS, name: SECRET } } },
    ]);
    const kubeconfig = await tokenKubeconfig(await saToken('podfabric-controller'), 'controller.kubeconfig');
    // The source as it is (tsx), so the test needs no build; the same flags as the Deployment's.
    child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'operator/main.ts'), 'controller', `--kubeconfig=${kubeconfig}`, '--namespace', NS, '--metrics-addr=127.0.0.1:0'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PODFABRIC_LOG_LEVEL: 'debug', POD_NAME: 'pf-install-controller' },
    });
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));

    type NF = { spec?: { podCIDRs?: string[] }; status?: { conditions?: Array<{ type: string; status: string }> } };
    const nf = await waitFor(
      'the controller to allocate a block to pf-install-ctl',
      async () => {
        const f = await rest.get<NF>(`${API}/nodefabrics/pf-install-ctl`).catch(() => null);
        return f?.spec?.podCIDRs?.length ? f : null;
      },
      60_000,
      250,
    );
    expect(nf.spec!.podCIDRs).toEqual(['10.250.0.0/24']);
    // No problem to report: the controller wrote none of its conditions (absent means fine).
    expect(nf.status?.conditions ?? []).toEqual([]);
    const n = await waitFor('Node.spec.podCIDRs', async () => (await rest.get<{ spec?: { podCIDRs?: string[] } }>('/api/v1/nodes/pf-install-ctl')).spec?.podCIDRs, 30_000, 250);
    expect(n).toEqual(['10.250.0.0/24']);
    const pool = await waitFor(
      'the pool status and finalizer',
      async () => {
        const p = await rest.get<{ metadata: { finalizers?: string[] }; status?: { blocksAllocated?: number } }>(`${API}/ippools/pf-install-pool`);
        return p.status?.blocksAllocated === 1 && p.metadata.finalizers?.includes('podfabric.io/blocks-in-use') ? p : null;
      },
      30_000,
      250,
    );
    expect(pool.status!.blocksAllocated).toBe(1);
    // The peer's Secret does not exist: the controller could look (allowed) and says so.
    const peer = await waitFor(
      'the peer status',
      async () => {
        const p = await rest.get<{ status?: { conditions?: Array<{ type: string; reason: string }> } }>(`${API}/bgppeers/pf-install-tor`);
        return p.status?.conditions?.find((c) => c.type === 'Valid');
      },
      30_000,
      250,
    );
    expect(['SecretMissing', 'Valid']).toContain(peer.reason);
    const lease = await rest.get<{ spec: { holderIdentity: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/podfabric-controller`);
    expect(lease.spec.holderIdentity).toMatch(/^pf-install-controller_/);
    const events = await waitFor(
      'an Allocated event in default',
      async () => {
        const l = await rest.get<{ items: Array<{ reason: string; source?: { component?: string } }> }>('/api/v1/namespaces/default/events');
        return l.items.find((e) => e.reason === 'Allocated' && e.source?.component === 'podfabric-controller');
      },
      30_000,
      250,
    );
    expect(events).toBeTruthy();
    expect(child.exitCode).toBeNull();
    expect(log).not.toMatch(/forbidden|\b403\b/i);
  });

  it('the real agent, with a pod-bound token of its ServiceAccount: reads its plan and the MD5 Secret, brings the session up, writes its own status and Events, nothing forbidden', async () => {
    // The machine: node namespace with the node IP on a veth to a ToR namespace running FRR (MD5 password
    // s3cret, the Secret the chart lets the agent read), and the node's gobgpd.
    const NODE_NS = 'pf-inst-n1';
    const TOR_NS = 'pf-inst-tor';
    const tor: FrrRouter = { name: TOR_NS, ns: TOR_NS, asn: 65101, routerId: '192.0.2.1', neighbors: [{ address: '192.0.2.30', remoteAs: 64512, password: 's3cret' }] };
    await cleanupByPrefix('pf-inst-');
    await addNamespace(NODE_NS);
    await addNamespace(TOR_NS);
    await addVeth(NODE_NS, 'eth0', TOR_NS, 'n1');
    await addAddress(NODE_NS, 'eth0', '192.0.2.30/24');
    await addAddress(TOR_NS, 'n1', '192.0.2.1/24');
    await startFrr(tor);
    await startGobgpd(NODE_NS, NODE_NS);
    const POD = 'pf-install-agent-ctl';
    let agent: ChildProcess | undefined;
    let agentLog = '';
    try {
      await kubectl(['create', 'secret', 'generic', SECRET, '-n', NS, '--from-literal=password=s3cret'], { allowFail: true });
      // Wake the controller's peer check (it looks at Secrets on peer changes and every 15 s).
      await kubectl(['annotate', 'bgppeer', 'pf-install-tor', `test/nudge=${Date.now()}`, '--overwrite']);
      await applyObjects([{ apiVersion: 'v1', kind: 'Pod', metadata: { name: POD, namespace: NS }, spec: { nodeName: 'pf-install-ctl', serviceAccountName: 'podfabric-agent', containers: [{ name: 'agent', image: 'podfabric' }] } }]);
      const kubeconfig = await tokenKubeconfig(await saToken('podfabric-agent', POD), 'agent.kubeconfig');
      agent = spawn(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'operator/main.ts'), 'agent', '--node=pf-install-ctl', `--kubeconfig=${kubeconfig}`, `--netns=${NODE_NS}`, `--gobgp-api=unix://${gobgpSocket(NODE_NS)}`, '--no-cni', '--metrics-addr=127.0.0.1:0'],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PODFABRIC_LOG_LEVEL: 'debug' } },
      );
      agent.stdout!.on('data', (d: Buffer) => (agentLog += d.toString()));
      agent.stderr!.on('data', (d: Buffer) => (agentLog += d.toString()));

      type NF = { metadata: { managedFields?: Array<{ manager: string; subresource?: string }> }; status?: { sessionsEstablished?: number; conditions?: Array<{ type: string; status: string }> } };
      const nf = await waitFor(
        'the agent to bring its MD5 session up and report it',
        async () => {
          const f = await rest.get<NF>(`${API}/nodefabrics/pf-install-ctl`);
          return f.status?.sessionsEstablished === 1 && f.status.conditions?.some((c) => c.type === 'BGPReady' && c.status === 'True') ? f : null;
        },
        60_000,
        250,
      );
      expect(nf.metadata.managedFields?.some((m) => m.manager === 'podfabric-agent' && m.subresource === 'status')).toBe(true);
      expect((await bgpNeighbors(TOR_NS)).get('192.0.2.30')?.state).toBe('Established');
      const ev = await waitFor(
        'the agent\'s SessionEstablished event',
        async () => {
          const l = await rest.get<{ items: Array<{ reason: string; involvedObject: { name: string }; source?: { component?: string } }> }>('/api/v1/namespaces/default/events');
          return l.items.find((e) => e.reason === 'SessionEstablished' && e.involvedObject.name === 'pf-install-ctl');
        },
        30_000,
        250,
      );
      expect(ev.source?.component).toBe('podfabric-agent');
      expect(agent.exitCode).toBeNull();
      expect(agentLog).not.toMatch(/forbidden|\b403\b/i);
      expect(agentLog).not.toContain('s3cret');
    } finally {
      if (agent && agent.exitCode === null) {
        const gone = new Promise((r) => agent!.once('exit', r));
        agent.kill('SIGTERM');
        await gone;
      }
      await kubectl(['delete', 'pod', POD, '-n', NS, '--ignore-not-found', '--grace-period=0', '--force'], { allowFail: true });
      await stopGobgpd(NODE_NS, 'SIGKILL');
      await stopFrr(TOR_NS, 'SIGKILL');
      await cleanupByPrefix('pf-inst-');
    }
  });
});
