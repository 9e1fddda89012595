/**
 * kubectl fabric policy: argument parsing, the world built from raw API objects, the per-flow verdicts
 * with the policy and rule named, and the text/JSON forms (pure, on plain objects).
 */
import { describe, expect, it } from 'vitest';
import { runFabric } from '../../operator/cli/fabric.js';
import { buildPolicyReport, parseEndpoint, parsePortSpec, PolicyQueryError, policyReportJson, renderPolicyReport, type PolicyObjects } from '../../operator/cli/policy-view.js';

const ns = (name: string, labels: Record<string, string> = {}) => ({ metadata: { name, labels: { ...labels, 'kubernetes.io/metadata.name': name } } });
const pod = (namespace: string, name: string, ips: string[], o: { node?: string; ports?: Array<{ name?: string; containerPort: number; protocol?: string }>; hostNetwork?: boolean; labels?: Record<string, string> } = {}) => ({
  metadata: { namespace, name, labels: o.labels ?? { pod: name } },
  spec: { nodeName: o.node ?? 'n1', ...(o.hostNetwork ? { hostNetwork: true } : {}), containers: [{ name: 'c', ports: o.ports ?? [] }] },
  status: { phase: 'Running', podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
});
const np = (namespace: string, name: string, spec: Record<string, unknown>) => ({ metadata: { namespace, name }, spec });
const SERVE = [
  { name: 'serve-80-tcp', containerPort: 80, protocol: 'TCP' },
  { name: 'serve-81-udp', containerPort: 81, protocol: 'UDP' },
];

function world(policies: unknown[]): PolicyObjects {
  return {
    policies,
    namespaces: [ns('x'), ns('y', { team: 'blue' })],
    pods: [
      pod('x', 'a', ['10.244.0.2', 'fd00:10:244::2'], { ports: SERVE }),
      pod('x', 'b', ['10.244.1.2', 'fd00:10:244:1::2'], { node: 'n2', ports: SERVE }),
      pod('y', 'a', ['10.244.1.3'], { node: 'n2' }),
      pod('kube-system', 'probe', ['172.20.1.11'], { node: 'n1', hostNetwork: true }),
    ],
    nodes: [{ metadata: { name: 'n1' }, status: { addresses: [{ type: 'InternalIP', address: '172.20.1.11' }] } }],
  };
}
const q = (src: string, dst: string, port?: string) => ({ src: parseEndpoint(src, 'SRC'), dst: parseEndpoint(dst, 'DST'), ...(port ? { port: parsePortSpec(port) } : {}) });
const report = (policies: unknown[], src: string, dst: string, port?: string) => buildPolicyReport(q(src, dst, port), world(policies));

describe('kubectl fabric policy: arguments', () => {
  it.each([
    ['x/a', { kind: 'pod', namespace: 'x', name: 'a' }],
    ['kube-system/coredns-5d78c9869d-abcde', { kind: 'pod', namespace: 'kube-system', name: 'coredns-5d78c9869d-abcde' }],
    ['10.244.0.2', { kind: 'ip', ip: '10.244.0.2' }],
    ['fd00:10:244:0::0002', { kind: 'ip', ip: 'fd00:10:244::2' }],
  ])('endpoint %s', (text, want) => expect(parseEndpoint(text, 'SRC')).toEqual(want));

  it.each(['x', 'x/a/b', 'X/a', '/a', '10.244.0.300', 'svc:x/a'])('bad endpoint %s', (text) => expect(() => parseEndpoint(text, 'DST')).toThrow(PolicyQueryError));

  it.each([
    ['80', { port: 80, protocol: 'TCP' }],
    ['53/udp', { port: 53, protocol: 'UDP' }],
    ['132/SCTP', { port: 132, protocol: 'SCTP' }],
    ['serve-80-tcp', { port: 'serve-80-tcp' }],
    ['dns/UDP', { port: 'dns', protocol: 'UDP' }],
  ])('port %s', (text, want) => expect(parsePortSpec(text)).toEqual(want));

  it.each(['0', '65536', '80/ICMP', '80/TCP/x', '', 'Serve', 'a-very-long-port-name'])('bad port %s', (text) => expect(() => parsePortSpec(text)).toThrow(PolicyQueryError));

  it('usage errors exit 2 before any apiserver is contacted', async () => {
    for (const argv of [['policy', 'x/a'], ['policy', 'x/a', 'nonsense'], ['policy', 'x/a', 'x/b', '--port', '80/ICMP'], ['policy', 'x/a', 'x/b', '-o', 'table'], ['status', '--port', '80']]) {
      let err = '';
      const code = await runFabric([...argv, '--kubeconfig=/nonexistent/kubeconfig'], { out: () => undefined, err: (s) => (err += s) });
      expect(code, argv.join(' ')).toBe(2);
      expect(err, argv.join(' ')).not.toContain('nonexistent');
    }
  });

  it('help', async () => {
    let out = '';
    expect(await runFabric(['policy', '--help'], { out: (s) => (out += s), err: () => undefined })).toBe(0);
    expect(out).toMatch(/^kubectl fabric policy SRC DST/);
    expect(out).toContain('--port PORT[/PROTO]');
  });
});

describe('kubectl fabric policy: verdicts', () => {
  const denyAll = np('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] });
  const fromBlue = np('x', 'allow-blue', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'blue' } } }], ports: [{ port: 'serve-80-tcp' }] }] });

  it('no policy: allowed, every declared port of the destination, in both families', () => {
    const r = report([], 'x/a', 'x/b');
    expect(r.allowed).toBe(true);
    expect(r.flows.map((f) => `${f.family} ${f.protocol}/${f.port}`)).toEqual(['4 TCP/80', '4 UDP/81', '6 TCP/80', '6 UDP/81']);
    expect(r.flows.every((f) => f.egress.verdict === 'not-isolated' && f.ingress.verdict === 'not-isolated')).toBe(true);
  });

  it('deny-all isolates: denied, the isolating policy named; one family when an IP is given', () => {
    const r = report([denyAll], 'x/a', '10.244.1.2', '80');
    expect(r.allowed).toBe(false);
    expect(r.flows).toHaveLength(1);
    expect(r.dst).toBe('x/b (10.244.1.2)');
    expect(r.flows[0]!.ingress).toMatchObject({ pod: 'x/b', verdict: 'denied', selectedBy: ['x/deny-all'], allowedBy: [] });
    expect(renderPolicyReport(r)).toBe(
      [
        'x/a -> x/b (10.244.1.2): DENIED (0/1 flows allowed; NetworkPolicies in the cluster: 1)',
        '',
        '10.244.0.2 -> 10.244.1.2 TCP/80: DENIED',
        'Egress   x/a',
        '  selected by: (none)',
        '  verdict:     ALLOWED (not isolated: no policy selects it)',
        'Ingress  x/b',
        '  selected by: x/deny-all',
        '  verdict:     DENIED: isolated by x/deny-all, and no ingress rule of them matches',
        '',
      ].join('\n'),
    );
  });

  it('allow from a namespace on a named port: the rule is named; the other port and other namespaces are denied', () => {
    const ok = report([denyAll, fromBlue], 'y/a', 'x/b', 'serve-80-tcp');
    expect(ok.allowed).toBe(true);
    expect(ok.flows.map((f) => `${f.protocol}/${f.port}`)).toEqual(['TCP/80']);
    expect(ok.flows[0]!.ingress.allowedBy).toEqual([{ policy: 'x/allow-blue', rule: 0 }]);
    expect(ok.flows[0]!.text).toContain('ALLOWED by x/allow-blue ingress[0]');
    const udp = report([denyAll, fromBlue], 'y/a', 'x/b', '81/UDP');
    expect(udp.allowed).toBe(false);
    expect(udp.flows[0]!.ingress.selectedBy).toEqual(['x/allow-blue', 'x/deny-all']);
    expect(report([denyAll, fromBlue], 'x/a', 'x/b', '80').allowed).toBe(false);
    // Default ports: one allowed, one denied → denied overall; JSON has no text.
    const both = report([denyAll, fromBlue], 'y/a', 'x/b');
    expect(both.flows.map((f) => f.allowed)).toEqual([true, false]);
    expect(both.allowed).toBe(false);
    expect(JSON.stringify(policyReportJson(both))).not.toContain('"text"');
  });

  it('egress with ipBlock except, per family, and to an address outside the pod network', () => {
    const egress = np('x', 'egress-cidr', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.244.0.0/16', except: ['10.244.1.3/32'] } }] }] });
    const r = report([egress], 'x/a', 'x/b', '80');
    expect(r.flows.map((f) => [f.family, f.allowed])).toEqual([[4, true], [6, false]]);
    expect(r.flows[0]!.egress.allowedBy).toEqual([{ policy: 'x/egress-cidr', rule: 0 }]);
    expect(report([egress], 'x/a', 'y/a', '80').flows[0]!.egress).toMatchObject({ verdict: 'denied', selectedBy: ['x/egress-cidr'] });
    expect(report([egress], 'x/a', '192.0.2.1').flows[0]).toMatchObject({ allowed: false, dst: '192.0.2.1', protocol: 'TCP', port: 80 });
  });

  it("traffic from the destination's node (a hostNetwork pod or the node's address) is always allowed", () => {
    for (const src of ['kube-system/probe', '172.20.1.11']) {
      const r = report([denyAll], src, 'x/a', '80');
      expect(r.allowed, src).toBe(true);
      expect(r.flows[0]).toMatchObject({ fromNode: true, ingress: { verdict: 'node' } });
    }
    expect(report([denyAll], 'kube-system/probe', 'x/b', '80').allowed).toBe(false); // another node's address is a peer like any
  });

  it('an invalid policy selecting a side isolates it and is reported', () => {
    const bad = np('x', 'broken', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ ipBlock: { cidr: 'not-a-cidr' } }] }] });
    const r = report([bad], 'x/a', 'x/b', '80');
    expect(r.allowed).toBe(false);
    expect(r.invalid).toEqual([{ policy: 'x/broken', error: expect.stringContaining('not a CIDR') }]);
    expect(renderPolicyReport(r)).toContain('! x/broken is invalid');
    expect(report([bad], 'x/b', 'y/a', '80').invalid).toHaveLength(1);
    expect(report([bad], 'y/a', 'x/a', '80').invalid).toEqual([]);
  });

  it('bad queries: unknown pod, a named port the destination lacks, no common family', () => {
    expect(() => report([], 'x/nope', 'x/b')).toThrow(/SRC pod x\/nope not found/);
    expect(() => report([], 'x/a', 'x/b', 'dns')).toThrow(/declares no container port/);
    expect(() => report([], 'x/a', '10.0.0.1', 'dns')).toThrow(/declares no container port/);
    expect(() => report([], 'y/a', 'fd00::1')).toThrow(/no address family in common/);
  });
});
