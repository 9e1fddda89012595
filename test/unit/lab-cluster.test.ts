/** The lab's cluster pieces that are pure: kube-proxy's configuration, KCM's command line, Pod objects and status, labels. */
import { describe, expect, it } from 'vitest';
import { KCM_CONTROLLERS, kcmArgs, kubeProxyConfig, LAB_APISERVER_FLAGS, labApiserverFlags } from '../../hack/lab/processes.js';
import { parseLabels, podNetns, podObject, runningStatus } from '../../hack/lab/pods.js';

describe('kube-proxy configuration', () => {
  it.each(['nftables', 'iptables'] as const)('%s: hostname = Node name, local traffic from the node CIDRs, machine-wide conntrack left alone', (mode) => {
    const c = kubeProxyConfig({ node: 'r1n1', kubeconfig: '/k', mode }) as Record<string, any>;
    expect(c).toMatchObject({ kind: 'KubeProxyConfiguration', mode, hostnameOverride: 'r1n1', detectLocalMode: 'NodeCIDR', clientConnection: { kubeconfig: '/k' } });
    expect(c.conntrack).toMatchObject({ maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' });
    expect(c.conntrack.tcpBeLiberal).toBe(mode === 'nftables');
    expect(c.metricsBindAddress).toMatch(/^127\.0\.0\.1:/);
  });
});

describe('kube-controller-manager command line', () => {
  it('runs the controllers a kubelet-less cluster needs and none that would fight podfabric or evict pods', () => {
    const a = kcmArgs('/bin/k', '/kc', '/api', '/w');
    expect(a.slice(0, 2)).toEqual(['/bin/k', 'controller-manager']);
    const ctrl = a.find((x) => x.startsWith('--controllers='))!.slice('--controllers='.length).split(',');
    expect(ctrl).toEqual(KCM_CONTROLLERS);
    for (const want of ['endpointslice-controller', 'endpointslice-mirroring-controller', 'garbage-collector-controller', 'namespace-controller', 'serviceaccount-controller', 'serviceaccount-token-controller', 'root-ca-certificate-publisher-controller']) {
      expect(ctrl).toContain(want);
    }
    for (const never of ['*', 'node-lifecycle-controller', 'taint-eviction-controller', 'node-ipam-controller', 'pod-garbage-collector-controller']) expect(ctrl).not.toContain(never);
    expect(a).toContain('--root-ca-file=/api/certs/apiserver.crt');
    expect(a).toContain('--leader-elect=false');
  });

  it("the lab's apiserver advertises a non-loopback address with its endpoint reconciler on", () => {
    expect(LAB_APISERVER_FLAGS).toContain('--endpoint-reconciler-type=lease');
    expect(LAB_APISERVER_FLAGS.find((f) => f.startsWith('--advertise-address='))).not.toMatch(/=127\./);
  });

  it("a dual-stack lab's apiserver serves an IPv4 and an IPv6 Service range (IPv4 primary); a single-stack lab keeps start.sh's", () => {
    expect(labApiserverFlags(true).filter((f) => f.startsWith('--service-cluster-ip-range='))).toEqual(['--service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/112']);
    expect(labApiserverFlags(false)).toEqual(LAB_APISERVER_FLAGS);
  });
});

describe('lab Pod objects', () => {
  it('carry namespace, labels, node and the four named ports of the netpol e2e pods', () => {
    const p = podObject({ name: 'a', namespace: 'x', node: 'r1n1', labels: { pod: 'a' } }) as Record<string, any>;
    expect(p.metadata).toEqual({ name: 'a', namespace: 'x', labels: { pod: 'a' } });
    expect(p.spec.nodeName).toBe('r1n1');
    expect(p.spec.containers[0].ports).toEqual([
      { name: 'serve-80-tcp', containerPort: 80, protocol: 'TCP' },
      { name: 'serve-80-udp', containerPort: 80, protocol: 'UDP' },
      { name: 'serve-81-tcp', containerPort: 81, protocol: 'TCP' },
      { name: 'serve-81-udp', containerPort: 81, protocol: 'UDP' },
    ]);
  });

  it('report Running, Ready and every CNI address (first = podIP)', () => {
    const s = runningStatus({ hostIP: '172.20.1.11', ips: ['10.244.0.2', 'fd00::2'], at: new Date('2026-01-01T00:00:00.123Z') }) as Record<string, any>;
    expect(s).toMatchObject({ phase: 'Running', podIP: '10.244.0.2', podIPs: [{ ip: '10.244.0.2' }, { ip: 'fd00::2' }], hostIP: '172.20.1.11', startTime: '2026-01-01T00:00:00Z' });
    expect(s.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
    expect(s.containerStatuses[0]).toMatchObject({ ready: true, started: true });
  });

  it('get a network namespace name that no other namespace/name pair shares', () => {
    expect(podNetns('a-b', 'c')).not.toBe(podNetns('a', 'b-c'));
    expect(podNetns('x', 'web')).toBe('pf-lab-x.web');
  });
});

describe('--labels', () => {
  it.each([
    ['', {}],
    ['app=web', { app: 'web' }],
    ['app=web,tier=a', { app: 'web', tier: 'a' }],
    ['example.com/role=db,empty=', { 'example.com/role': 'db', empty: '' }],
  ])('%j', (text, want) => expect(parseLabels(text)).toEqual(want));

  it.each(['app', 'app=a b', '=x', 'a=b=c'])('refuses %j', (text) => expect(() => parseLabels(text)).toThrow(/bad label/));
});

describe('lab manifests', () => {
  it('include a default LoadBalancerPool that the apiserver schema accepts, outside the pod pools', async () => {
    const { manifests, LAB_LB_CIDR_V4, LAB_LB_CIDR_V6 } = await import('../../hack/lab/topology.js');
    const { parseObject } = await import('../../operator/api/kinds.js');
    const { LoadBalancerPool } = await import('../../operator/api/services.js');
    for (const dualStack of [false, true]) {
      const objs = manifests({ racks: 2, nodesPerRack: 2, dualStack, podsPerNode: 1, controllers: 1 }) as Array<{ kind: string }>;
      const pools = objs.filter((o) => o.kind === 'LoadBalancerPool');
      expect(pools).toHaveLength(1);
      const pool = parseObject(LoadBalancerPool, pools[0]);
      expect(pool.spec.cidrs).toEqual(dualStack ? [LAB_LB_CIDR_V4, LAB_LB_CIDR_V6] : [LAB_LB_CIDR_V4]);
      expect(LAB_LB_CIDR_V4.startsWith('10.')).toBe(false); // not inside the pod (10.244/16) or Service (10.96/12) ranges
    }
  });
});

describe('the outside client', () => {
  it('lives outside every cluster, Service, LoadBalancer and lab link range, in both families', async () => {
    const { OUTSIDE, outsideClient } = await import('../../hack/lab/outside.js');
    const { CP, LAB_LB_CIDR_V4, LAB_LB_CIDR_V6, SERVICE_CIDR } = await import('../../hack/lab/topology.js');
    const { cidrContainsIP, parseCidr, parseIP } = await import('../../operator/lib/ip.js');
    const taken = ['10.244.0.0/16', 'fd00:10:244::/56', SERVICE_CIDR, LAB_LB_CIDR_V4, LAB_LB_CIDR_V6, '172.20.0.0/16', 'fd00:20::/32', '172.31.0.0/16', 'fd00:31::/32', `${CP.ip}/${CP.prefix}`];
    for (const a of [OUTSIDE.ip4, OUTSIDE.ip6, OUTSIDE.spine4, OUTSIDE.spine6]) {
      const ip = parseIP(a)!;
      for (const c of taken) expect(cidrContainsIP(parseCidr(c, { strict: false })!, ip.family, ip.value), `${a} in ${c}`).toBe(false);
    }
    expect(outsideClient(false).ips).toEqual([OUTSIDE.ip4]);
    expect(outsideClient(true).ips).toEqual([OUTSIDE.ip4, OUTSIDE.ip6]);
    expect(outsideClient(true).ns).toBe('pf-lab-ext');
  });

  it("reads the pod server's peer answers (port 82) and nothing else", async () => {
    const { parsePeerAnswer } = await import('../../hack/lab/outside.js');
    expect(parsePeerAnswer('x/web-a 203.0.113.10')).toEqual({ who: 'x/web-a', peer: '203.0.113.10' });
    expect(parsePeerAnswer('lab/outside fd00:10:244:1::2')).toEqual({ who: 'lab/outside', peer: 'fd00:10:244:1::2' });
    for (const a of ['x/web-a', '', null, 'a b c']) expect(parsePeerAnswer(a)).toBeNull();
  });
});
