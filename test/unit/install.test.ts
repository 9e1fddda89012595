/**
 * The install chart (cdk8s/), synthesized in-process: least-privilege RBAC, locked-down pods, CRDs that
 * keep their CEL rules, no namespace on cluster-scoped objects, bad options failing synth, and the
 * committed dist/ being what the chart produces now.
 */
import { App } from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CHART_ID, PodfabricChart, synthInstall } from '../../cdk8s/chart.js';
import type { ChartOptions } from '../../cdk8s/options.js';
import { buildCrd } from '../../operator/api/crd.js';
import { ALL_KINDS } from '../../operator/api/kinds.js';
import { distProblems } from '../../hack/synth-check.js';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

function synth(options: ChartOptions = {}): Obj[] {
  const app = new App({ outdir: 'dist' });
  return new PodfabricChart(app, CHART_ID, options).toJson() as Obj[];
}

const objs = synth();
const find = (kind: string, name: string, namespace?: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name && (namespace === undefined || x.metadata.namespace === namespace));
  if (!o) throw new Error(`no ${kind} ${namespace ?? ''}/${name}`);
  return o;
};

/** Every rule granted to a ServiceAccount, through any (Cluster)RoleBinding, with the binding's namespace. */
function rulesOf(all: Obj[], sa: string): Array<Rule & { namespace?: string }> {
  const out: Array<Rule & { namespace?: string }> = [];
  for (const b of all.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')) {
    if (!b.subjects.some((s: { kind: string; name: string }) => s.kind === 'ServiceAccount' && s.name === sa)) continue;
    const role = all.find((o) => o.kind === b.roleRef.kind && o.metadata.name === b.roleRef.name && o.metadata.namespace === b.metadata.namespace);
    if (!role) throw new Error(`binding ${b.metadata.name} refers to a missing ${b.roleRef.kind}`);
    for (const r of role.rules as Rule[]) out.push({ ...r, ...(b.kind === 'RoleBinding' ? { namespace: b.metadata.namespace } : {}) });
  }
  return out;
}
const grants = (rules: Rule[], resource: string, verb: string) => rules.filter((r) => r.resources.includes(resource) && r.verbs.includes(verb));
const WRITE = ['create', 'update', 'patch', 'delete', 'deletecollection'];

const CLUSTER_SCOPED = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'IPPool', 'BGPPeer', 'FabricConfig', 'NodeFabric', 'FlowSchema']);

describe('install chart: RBAC', () => {
  it('has no wildcard verbs, resources or API groups in any Role or ClusterRole', () => {
    const roles = objs.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole');
    expect(roles.length).toBeGreaterThan(3);
    for (const r of roles) {
      for (const rule of r.rules as Rule[]) {
        expect(rule.verbs, r.metadata.name).not.toContain('*');
        expect(rule.resources, r.metadata.name).not.toContain('*');
        expect(rule.apiGroups, r.metadata.name).not.toContain('*');
        expect(rule.resources.some((x) => x.includes('*')), r.metadata.name).toBe(false);
      }
    }
  });

  it('gives the agent only nodefabrics/status patch, Events, reads, and the named Secrets', () => {
    const rules = rulesOf(objs, 'podfabric-agent');
    for (const v of WRITE) expect(grants(rules, 'nodefabrics', v), v).toEqual([]);
    expect(grants(rules, 'nodefabrics/status', 'patch')).toHaveLength(1);
    expect(grants(rules, 'nodefabrics/status', 'update')).toEqual([]);
    // Its own Node (cordon, exclusion label) is read through a field-selected watch; never written.
    for (const v of [...WRITE, 'get']) expect(grants(rules, 'nodes', v), v).toEqual([]);
    expect(grants(rules, 'nodes', 'watch')).toHaveLength(1);
    // Service routes: what kube-proxy reads, plus the pools; nothing written.
    for (const res of ['services', 'endpointslices', 'loadbalancerpools']) {
      expect(grants(rules, res, 'watch'), res).toHaveLength(1);
      for (const v of WRITE) expect(grants(rules, res, v), `${res} ${v}`).toEqual([]);
    }
    // natOutgoing: the pools, read only (list/watch, no get by name, no write, not their status).
    for (const v of ['list', 'watch']) expect(grants(rules, 'ippools', v), `ippools ${v}`).toHaveLength(1);
    for (const v of [...WRITE, 'get']) expect(grants(rules, 'ippools', v), `ippools ${v}`).toEqual([]);
    // Its BGP sessions: it derives them from the BGPPeers itself (plan/peers.ts); read only.
    for (const v of ['list', 'watch']) expect(grants(rules, 'bgppeers', v), `bgppeers ${v}`).toHaveLength(1);
    for (const v of WRITE) expect(grants(rules, 'bgppeers', v), `bgppeers ${v}`).toEqual([]);
    expect(rules.some((r) => r.resources.some((x) => ['leases', 'ippools/status', 'bgppeers/status', 'services/status', 'l2segments/status'].includes(x)))).toBe(false);
    // Its host-gw routes: the L2Segments its NodeFabric names, read only (the controller writes them).
    for (const v of ['get', 'list', 'watch']) expect(grants(rules, 'l2segments', v), `l2segments ${v}`).toHaveLength(1);
    for (const v of WRITE) expect(grants(rules, 'l2segments', v), `l2segments ${v}`).toEqual([]);
    // NetworkPolicy enforcement: list/watch pods, namespaces, networkpolicies; never get one by name, never write.
    for (const res of ['pods', 'namespaces', 'networkpolicies']) {
      for (const v of ['list', 'watch']) expect(grants(rules, res, v), `${res} ${v}`).toHaveLength(1);
      for (const v of [...WRITE, 'get']) expect(grants(rules, res, v), `${res} ${v}`).toEqual([]);
    }
    // Events about its NodeFabric and the Services it advertises (any namespace): create/patch only.
    const events = rules.filter((r) => r.resources.includes('events'));
    expect(events.map((r) => [r.namespace, [...r.verbs].sort()])).toEqual([[undefined, ['create', 'patch']]]);
    // Default install: no Secrets named, so no Secret access at all.
    expect(rules.filter((r) => r.resources.includes('secrets'))).toEqual([]);
  });

  it('lets the agent read exactly the named Secrets (resourceNames, namespaced Role; list/watch only by name)', () => {
    const all = synth({
      secretNames: ['bgp-extra'],
      peers: [
        { name: 'tor-a', address: '192.0.2.1', asn: 65001, passwordSecretRef: { name: 'bgp-tor-a' } },
        { name: 'tor-b', address: '192.0.2.2', asn: 65002, passwordSecretRef: { name: 'bgp-tor-b', namespace: 'network', key: 'md5' } },
      ],
    });
    const secretRules = rulesOf(all, 'podfabric-agent').filter((r) => r.resources.includes('secrets'));
    expect(secretRules).toEqual([
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'], resourceNames: ['bgp-tor-b'], namespace: 'network' },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'], resourceNames: ['bgp-extra', 'bgp-tor-a'], namespace: 'podfabric-system' },
    ]);
    // The controller may check Secrets in the install namespace and in the peers' namespaces, get only.
    const ctl = rulesOf(all, 'podfabric-controller').filter((r) => r.resources.includes('secrets'));
    expect(ctl.map((r) => r.namespace).sort()).toEqual(['network', 'podfabric-system']);
    for (const r of ctl) expect(r.verbs).toEqual(['get']);
    const peer = all.find((o) => o.kind === 'BGPPeer' && o.metadata.name === 'tor-b')!;
    expect(peer.spec.passwordSecretRef).toEqual({ namespace: 'network', name: 'bgp-tor-b', key: 'md5' });
  });

  it('gives the controller what its code calls, Leases only in its namespace, Events where its objects are', () => {
    const rules = rulesOf(objs, 'podfabric-controller');
    expect(grants(rules, 'nodes', 'patch')).toHaveLength(1);
    expect(grants(rules, 'nodes', 'update')).toEqual([]);
    expect(grants(rules, 'nodes', 'delete')).toEqual([]);
    for (const v of ['get', 'create', 'update', 'delete', 'list', 'watch']) expect(grants(rules, 'nodefabrics', v), v).toHaveLength(1);
    expect(grants(rules, 'nodefabrics', 'patch')).toEqual([]); // the spec is written whole (POST, PUT), never patched
    for (const v of ['get', 'create', 'update', 'delete', 'list', 'watch']) expect(grants(rules, 'l2segments', v), `l2segments ${v}`).toHaveLength(1);
    expect(grants(rules, 'l2segments', 'patch')).toEqual([]); // written whole (POST, PUT), never patched
    expect(rules.some((r) => r.resources.includes('l2segments/status'))).toBe(false);
    for (const s of ['nodefabrics/status', 'ippools/status', 'bgppeers/status', 'fabricconfigs/status']) expect(grants(rules, s, 'patch'), s).toHaveLength(1);
    expect(grants(rules, 'ippools', 'patch')).toHaveLength(1);
    for (const v of WRITE) expect(grants(rules, 'bgppeers', v), v).toEqual([]);
    const leases = rules.filter((r) => r.resources.includes('leases'));
    expect(leases.length).toBeGreaterThan(0);
    for (const r of leases) expect(r.namespace).toBe('podfabric-system');
    expect(leases.find((r) => r.verbs.includes('update'))?.resourceNames).toEqual(['podfabric-controller']);
    // Events on Services live in the Services' namespaces: create/patch cluster-wide, nothing more.
    const events = rules.filter((x) => x.resources.includes('events'));
    expect(events.map((r) => [r.namespace, [...r.verbs].sort()])).toEqual([[undefined, ['create', 'patch']]]);
    // LoadBalancer addresses: read Services, write only their status; pools, their status and finalizer.
    expect(grants(rules, 'services', 'watch')).toHaveLength(1);
    for (const v of WRITE) expect(grants(rules, 'services', v), v).toEqual([]);
    expect(grants(rules, 'services/status', 'patch')).toHaveLength(1);
    expect(grants(rules, 'services/status', 'update')).toEqual([]);
    expect(grants(rules, 'loadbalancerpools', 'patch')).toHaveLength(1);
    expect(grants(rules, 'loadbalancerpools/status', 'patch')).toHaveLength(1);
    for (const v of ['create', 'delete']) expect(grants(rules, 'loadbalancerpools', v), v).toEqual([]);
    for (const r of rules.filter((x) => x.resources.includes('secrets'))) {
      expect(r.verbs).toEqual(['get']);
      expect(r.namespace).toBe('podfabric-system');
    }
    expect(rules.some((r) => r.resources.includes('pods'))).toBe(false);
  });
});

describe('install chart: workloads', () => {
  it('runs the agent unprivileged with NET_ADMIN only, gobgpd with NET_BIND_SERVICE only', () => {
    const ds = find('DaemonSet', 'podfabric-agent', 'podfabric-system');
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(pod.serviceAccountName).toBe('podfabric-agent');
    const byName = Object.fromEntries(pod.containers.map((c: { name: string }) => [c.name, c]));
    const agent = byName.agent;
    expect(agent.securityContext.privileged).toBe(false);
    expect(agent.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(agent.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(agent.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_ADMIN'] });
    expect(agent.args.slice(0, 5)).toEqual(['agent', '--node', '$(NODE_NAME)', '--gobgp-api', 'unix:///run/gobgp/gobgp.sock']);
    expect(agent.readinessProbe.httpGet).toEqual({ host: '127.0.0.1', path: '/readyz', port: 9091 });
    expect(agent.livenessProbe.httpGet).toEqual({ host: '127.0.0.1', path: '/healthz', port: 9091 });
    const gobgpd = byName.gobgpd;
    expect(gobgpd.securityContext.privileged).toBe(false);
    expect(gobgpd.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_BIND_SERVICE'] });
    const cmd = gobgpd.command.join(' ');
    expect(cmd).toContain('--api-hosts=unix:///run/gobgp/gobgp.sock');
    expect(cmd).toContain('--pprof-disable');
    // Every --api-hosts entry is a Unix socket: never a TCP API.
    for (const m of cmd.matchAll(/--api-hosts[= ](\S+)/g)) for (const h of m[1]!.split(',')) expect(h).toMatch(/^unix:\/\//);
    expect(gobgpd.image).toMatch(/:3\.\d+\.\d+$/);
    for (const c of [agent, gobgpd]) {
      expect(c.volumeMounts).toContainEqual({ name: 'gobgp-socket', mountPath: '/run/gobgp' });
      expect(c.resources.requests && c.resources.limits).toBeTruthy();
      expect(c.imagePullPolicy).toBe('IfNotPresent');
    }
  });

  it('runs 2 non-root controller replicas with a read-only root and probes on :9090', () => {
    const d = find('Deployment', 'podfabric-controller', 'podfabric-system');
    expect(d.spec.replicas).toBe(2);
    const pod = d.spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBe(65532);
    expect(pod.automountServiceAccountToken).toBe(true);
    const c = pod.containers[0];
    expect(c.args).toEqual(['controller', '--namespace', 'podfabric-system', '--lease-name', 'podfabric-controller', '--metrics-addr', ':9090']);
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext.capabilities.add).toBeUndefined();
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 9090 });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 9090 });
    expect(c.env.find((e: { name: string }) => e.name === 'POD_NAME').valueFrom.fieldRef.fieldPath).toBe('metadata.name');
    expect(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
    expect(find('PodDisruptionBudget', 'podfabric-controller', 'podfabric-system').spec.maxUnavailable).toBe(1);
    expect(synth({ controllerReplicas: 3 }).find((o) => o.kind === 'Deployment')!.spec.replicas).toBe(3);
  });
});

describe('install chart: objects', () => {
  it('emits the CRDs exactly as the generator builds them (CEL rules kept), labels added', () => {
    const crds = objs.filter((o) => o.kind === 'CustomResourceDefinition');
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(ALL_KINDS.map((k) => `${k.plural}.podfabric.io`).sort());
    for (const def of ALL_KINDS) {
      const got = crds.find((c) => c.metadata.name === `${def.plural}.podfabric.io`)!;
      const want = buildCrd(def) as Obj;
      expect(got.spec).toEqual(want.spec);
      expect(got.metadata.labels).toMatchObject(want.metadata.labels!);
    }
    const text = JSON.stringify(crds);
    expect(text).toContain('x-kubernetes-validations');
    expect(text).toContain('x-kubernetes-list-type');
    const fc = crds.find((c) => c.metadata.name === 'fabricconfigs.podfabric.io')!;
    expect(fc.spec.versions[0].schema.openAPIV3Schema['x-kubernetes-validations'][0].rule).toBe("self.metadata.name == 'default'");
  });

  it('puts no namespace on cluster-scoped objects, and one on every namespaced object', () => {
    const all = synth({
      pools: [{ name: 'pods', cidr: '10.244.0.0/16' }],
      peers: [{ name: 'tor', address: '192.0.2.1', asn: 65001 }],
      secretNames: ['s'],
    });
    for (const o of all) {
      if (CLUSTER_SCOPED.has(o.kind)) expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBeUndefined();
      else expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBeTruthy();
    }
    expect(all.filter((o) => o.kind === 'IPPool' || o.kind === 'BGPPeer')).toHaveLength(2);
  });

  it('labels every object', () => {
    for (const o of objs) {
      expect(o.metadata.labels, `${o.kind} ${o.metadata.name}`).toMatchObject({
        'app.kubernetes.io/name': 'podfabric',
        'app.kubernetes.io/part-of': 'podfabric',
        'app.kubernetes.io/version': expect.any(String),
        'app.kubernetes.io/component': expect.any(String),
      });
    }
  });

  it('writes a FabricConfig "default" matching the DaemonSet (socket, ASN, CNI directory)', () => {
    const fc = find('FabricConfig', 'default');
    expect(fc.spec.asn).toBe(64512);
    expect(fc.spec.gobgpSocket).toBe('/run/gobgp/gobgp.sock');
    expect(fc.spec.cni.confDir).toBe('/etc/cni/net.d');
    expect(synth({ nodeASN: 65010, fabricConfig: { routeProtocol: 202 } }).find((o) => o.kind === 'FabricConfig')!.spec).toMatchObject({ asn: 65010, routeProtocol: 202 });
  });

  it.each<[string, ChartOptions, RegExp]>([
    ['a /33 pool', { pools: [{ name: 'p', cidr: '10.0.0.0/33' }] }, /IPPool p: spec\.cidr: .*not a CIDR/],
    ['host bits', { pools: [{ name: 'p', cidr: '10.0.0.1/16' }] }, /host bits/],
    ['a block shorter than the pool', { pools: [{ name: 'p', cidr: '10.0.0.0/16', blockSize: 8 }] }, /shorter than the pool prefix/],
    ['a block size beyond 128', { pools: [{ name: 'p', cidr: 'fd00::/48', blockSize: 129 }] }, /IPPool p: spec\.blockSize/],
    ['a peer ASN of 0', { peers: [{ name: 't', address: '192.0.2.1', asn: 0 }] }, /BGPPeer t: spec\.peerASN/],
    ['a peer that is not an IP', { peers: [{ name: 't', address: 'tor1', asn: 65001 }] }, /BGPPeer t: .*not an IP address/],
    ['a peer inside a pool', { pools: [{ name: 'p', cidr: '10.0.0.0/8' }], peers: [{ name: 't', address: '10.1.1.1', asn: 65001 }] }, /inside pod IPPool p/],
    ['a bad keepalive', { peers: [{ name: 't', address: '192.0.2.1', asn: 65001, timers: { holdTime: 9, keepaliveInterval: 5 } }] }, /third of holdTime/],
    ['a reserved route protocol', { fabricConfig: { routeProtocol: 186 } }, /routeProtocol: 186 is reserved/],
    ['an unknown option', { pool: [] } as unknown as ChartOptions, /bad options[\s\S]*pool/],
    ['a bad namespace', { namespace: 'Podfabric_System' }, /bad options[\s\S]*namespace/],
    ['two pools with one name', { pools: [{ name: 'p', cidr: '10.0.0.0/16' }, { name: 'p', cidr: '10.1.0.0/16' }] }, /two IPPools are named p/],
  ])('fails synth on %s', (_what, options, message) => {
    expect(() => synth(options)).toThrow(message);
  });

  it('emits the admission policy that ties agent writes to the node name, only when enabled', () => {
    const vap = find('ValidatingAdmissionPolicy', 'podfabric-agent-own-nodefabric');
    expect(vap.spec.matchConditions[0].expression).toContain('system:serviceaccount:podfabric-system:podfabric-agent');
    expect(vap.spec.validations[0].expression).toContain("request.userInfo.extra['authentication.kubernetes.io/node-name'][0] == request.name");
    expect(find('ValidatingAdmissionPolicyBinding', 'podfabric-agent-own-nodefabric').spec.validationActions).toEqual(['Deny']);
    const policies = (o: ChartOptions) => synth(o).filter((x) => x.kind.startsWith('ValidatingAdmissionPolicy')).map((x) => x.metadata.name);
    expect(policies({ nodeNamePolicy: false })).not.toContain('podfabric-agent-own-nodefabric');
  });

  it('emits the IPPool warning policy in Warn mode (never Deny, failure ignored), only when enabled', () => {
    const vap = find('ValidatingAdmissionPolicy', 'podfabric-ippool-warnings');
    expect(vap.spec.failurePolicy).toBe('Ignore');
    expect(vap.spec.matchConstraints.resourceRules[0].resources).toEqual(['ippools']);
    expect(vap.spec.validations.length).toBeGreaterThanOrEqual(4);
    expect(find('ValidatingAdmissionPolicyBinding', 'podfabric-ippool-warnings').spec.validationActions).toEqual(['Warn']);
    expect(synth({ poolWarnings: false, nodeNamePolicy: false }).some((o) => o.kind.startsWith('ValidatingAdmissionPolicy'))).toBe(false);
  });
});

describe('dist/ (the committed install)', () => {
  it('equals a fresh synth with default options', async () => {
    expect(await distProblems()).toEqual([]);
  });

  it('is the same text the in-process synth gives, parseable as YAML with no errors', () => {
    const docs = parseAllDocuments(synthInstall());
    expect(docs.flatMap((d) => d.errors)).toEqual([]);
    expect(docs.map((d) => d.toJS().kind)).toEqual(objs.map((o) => o.kind));
  });
});
