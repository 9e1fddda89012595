/** The policy model (defaults, validation), the reference semantics' corners, explain, and the compiler's growth. */
import { describe, expect, it } from 'vitest';
import { compile } from '../../operator/policy/compile.js';
import { forwardVerdict } from '../../operator/policy/interpret.js';
import { namespaceInfo, parsePolicy, podInfoFromObject, type PodInfo, type Policy } from '../../operator/policy/model.js';
import { countObjects } from '../../operator/policy/objects.js';
import { blockRanges } from '../../operator/policy/ranges.js';
import { explain } from '../../operator/policy/semantics.js';
import { formatExplanation } from '../../operator/policy/format.js';
import { parseCidr } from '../../operator/lib/ip.js';

const obj = (spec: Record<string, unknown>, name = 'p', namespace = 'x') => ({ metadata: { name, namespace }, spec });
const parsed = (spec: Record<string, unknown>, name = 'p', ns = 'x'): Policy => {
  const r = parsePolicy(obj(spec, name, ns));
  if (!r.ok) throw new Error(r.error);
  return r.policy;
};

describe('parsePolicy: the API defaults', () => {
  it.each([
    ['no policyTypes, no rules', {}, true, false],
    ['no policyTypes, ingress only', { ingress: [{}] }, true, false],
    ['no policyTypes, egress: [] (empty: NOT an Egress policy)', { egress: [] }, true, false],
    ['no policyTypes, one egress rule', { egress: [{}] }, true, true],
    ['policyTypes: [] behaves as absent', { policyTypes: [], egress: [{}] }, true, true],
    ['explicit Egress only, ingress rules ignored', { policyTypes: ['Egress'], ingress: [{}] }, false, true],
  ])('%s', (_n, spec, ing, eg) => {
    const p = parsed({ podSelector: {}, ...spec });
    expect([p.ingress !== null, p.egress !== null]).toEqual([ing, eg]);
  });

  it('a port without protocol is TCP; a port-less entry keeps every port of its protocol', () => {
    const p = parsed({ ingress: [{ ports: [{ port: 80 }, { protocol: 'UDP' }, { port: 'http' }] }] });
    expect(p.ingress![0]!.ports).toEqual([{ protocol: 'TCP', port: 80 }, { protocol: 'UDP' }, { protocol: 'TCP', port: 'http' }]);
  });

  it.each([
    [{ ingress: [{ from: [{}] }] }, /must specify podSelector, namespaceSelector or ipBlock/],
    [{ ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] }, /cannot be combined/],
    [{ egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }], policyTypes: ['Egress'] }, /is not a CIDR/],
    [{ egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] } }] }] }, /strictly within/],
    [{ ingress: [{ ports: [{ port: 80, endPort: 70 }] }] }, /endPort: must be >= port/],
    [{ ingress: [{ ports: [{ port: 'http', endPort: 90 }] }] }, /endPort: needs a numeric port/],
    [{ ingress: [{ ports: [{ port: 70000 }] }] }, /not in 1-65535/],
    [{ ingress: [{ ports: [{ protocol: 'ICMP' }] }] }, /protocol/],
    [{ ingress: 'nope' }, /ingress/],
  ])('rejects %j with a clear error', (spec, msg) => {
    const r = parsePolicy(obj(spec as Record<string, unknown>));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(msg);
  });

  it('a broken policy fails closed: its pods are isolated both ways with no rule', () => {
    const r = parsePolicy(obj({ podSelector: { matchLabels: { app: 'a' } }, ingress: [{ ports: [{ port: 0 }] }] }));
    expect(r).toMatchObject({ ok: false, failClosed: { namespace: 'x', name: 'p', podSelector: { matchLabels: { app: 'a' } }, ingress: [], egress: [] } });
    expect(parsePolicy({ metadata: { name: 'p' }, spec: {} })).not.toHaveProperty('failClosed');
  });

  it('never throws on garbage', () => {
    for (const o of [null, 1, 'x', {}, { metadata: {} }, { metadata: { name: 'a', namespace: 'b' } }]) expect(parsePolicy(o).ok).toBe(false);
  });
});

describe('ipBlock ranges', () => {
  it('cuts except holes out of the CIDR', () => {
    const c = (s: string) => parseCidr(s, { strict: false })!;
    expect(blockRanges(c('10.0.0.0/24'), [c('10.0.0.16/28'), c('10.0.0.255/32')])).toEqual([
      ['10.0.0.0', '10.0.0.15'],
      ['10.0.0.32', '10.0.0.254'],
    ]);
    expect(blockRanges(c('fd00::/64'), [c('fd00::/65')])).toEqual([['fd00::8000:0:0:0', 'fd00::ffff:ffff:ffff:ffff']]);
  });
});

const mkPod = (ns: string, name: string, ip: string, labels: Record<string, string>, ports: PodInfo['ports'] = [], node = 'n1'): PodInfo => ({ namespace: ns, name, ips: [ip], labels, ports, nodeName: node });

describe('named ports resolve on the destination pod', () => {
  // One name, two numbers: "web" is 8080 on a1 and 9090 on a2.
  const pods = [
    mkPod('x', 'a1', '10.0.0.1', { app: 'a' }, [{ name: 'web', containerPort: 8080 }]),
    mkPod('x', 'a2', '10.0.0.2', { app: 'a' }, [{ name: 'web', containerPort: 9090 }]),
    mkPod('x', 'c', '10.0.0.3', { app: 'c' }, [], 'n2'),
  ];
  const world = { pods, namespaces: [namespaceInfo('x')] };
  const cases: Array<[string, Policy, string, string, number, boolean]> = [];
  const ing = parsed({ podSelector: { matchLabels: { app: 'a' } }, ingress: [{ ports: [{ port: 'web' }] }] });
  const egr = parsed({ podSelector: { matchLabels: { app: 'c' } }, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'web' }] }] });
  for (const [pol, src] of [[ing, '10.0.0.3'], [egr, '10.0.0.3']] as const)
    cases.push([`${pol === ing ? 'ingress' : 'egress'} a1:8080`, pol, src, '10.0.0.1', 8080, true], [`a1:9090`, pol, src, '10.0.0.1', 9090, false], [`a2:9090`, pol, src, '10.0.0.2', 9090, true], [`a2:8080`, pol, src, '10.0.0.2', 8080, false]);
  it.each(cases)('%s', (_n, pol, src, dst, port, want) => {
    const w = { ...world, policies: [pol] };
    expect(explain(w, { src, dst, protocol: 'TCP', port }).allowed).toBe(want);
    const pkt = { src, dst, proto: 'tcp' as const, dport: port };
    const both = ['n1', 'n2'].every((n) => forwardVerdict(compile({ ...w, node: n }), pkt).verdict === 'accept');
    expect(both).toBe(want);
  });
});

describe('explain', () => {
  const pods = [mkPod('x', 'a', '10.0.0.1', { pod: 'a' }), mkPod('y', 'b', '10.0.1.1', { pod: 'b' })];
  const deny = parsed({ podSelector: {} }, 'deny-all');
  const allowB = parsed({ podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } }], ports: [{ port: 80 }] }] }, 'allow-y');
  const world = { pods, namespaces: [namespaceInfo('x'), namespaceInfo('y')], policies: [deny, allowB] };
  it('names the selecting policies and the allowing rule', () => {
    const e = explain(world, { src: '10.0.1.1', dst: '10.0.0.1', protocol: 'TCP', port: 80 });
    expect(e).toMatchObject({ allowed: true, egress: { pod: 'y/b', verdict: 'not-isolated' }, ingress: { pod: 'x/a', selectedBy: ['x/allow-y', 'x/deny-all'], allowedBy: [{ policy: 'x/allow-y', rule: 0 }], verdict: 'allowed' } });
    expect(e.reason).toContain('allowed by x/allow-y ingress[0]');
  });
  it('says which policies isolate when nothing allows', () => {
    const e = explain(world, { src: '10.0.1.1', dst: '10.0.0.1', protocol: 'TCP', port: 81 });
    expect(e.allowed).toBe(false);
    expect(e.reason).toContain('DENIED — x/a is isolated by x/allow-y, x/deny-all');
  });
  it('traffic from the pod’s own node is allowed; addresses outside the pod network are not isolated', () => {
    expect(explain(world, { src: '192.168.0.1', dst: '10.0.0.1', protocol: 'TCP', port: 81, srcIsNode: true })).toMatchObject({ allowed: true, ingress: { verdict: 'node' } });
    expect(explain(world, { src: '10.0.0.1', dst: '8.8.8.8', protocol: 'UDP', port: 53 })).toMatchObject({ allowed: true, egress: { verdict: 'not-isolated' } });
  });
});

describe('podInfoFromObject', () => {
  it('reads addresses, node, ports; finished and address-less pods take no part', () => {
    const p = podInfoFromObject({
      metadata: { namespace: 'x', name: 'a', labels: { pod: 'a' } },
      spec: { nodeName: 'n1', containers: [{ ports: [{ name: 'web', containerPort: 80 }, { containerPort: 53, protocol: 'UDP' }] }] },
      status: { phase: 'Running', podIPs: [{ ip: '10.0.0.1' }, { ip: 'fd00::1' }] },
    });
    expect(p).toEqual({ namespace: 'x', name: 'a', labels: { pod: 'a' }, ips: ['10.0.0.1', 'fd00::1'], nodeName: 'n1', ports: [{ name: 'web', containerPort: 80, protocol: 'TCP' }, { containerPort: 53, protocol: 'UDP' }] });
    expect(podInfoFromObject({ status: { phase: 'Succeeded', podIPs: [{ ip: '10.0.0.1' }] } }).ips).toEqual([]);
    expect(podInfoFromObject(null).ips).toEqual([]);
  });
});

describe('a node compiles only what its own pods need', () => {
  it('a policy selecting no pod of the node has no chain and no set there', () => {
    const pods = [mkPod('x', 'a', '10.0.0.1', { app: 'a' }, [], 'n1'), mkPod('x', 'b', '10.0.0.2', { app: 'b' }, [], 'n2')];
    const pol = parsed({ podSelector: { matchLabels: { app: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'a' } } }] }] });
    const w = { pods, policies: [pol], namespaces: [namespaceInfo('x')] };
    const [n1, n2] = [compile({ ...w, node: 'n1' }), compile({ ...w, node: 'n2' })];
    expect([Object.keys(n1.chains).sort(), Object.keys(n1.sets)]).toEqual([['egress', 'ingress'], []]);
    expect(Object.keys(n2.chains).filter((c) => c.startsWith('pi-'))).toHaveLength(1);
    expect(Object.keys(n2.sets)).toHaveLength(1);
  });
});

describe('object count grows with pods + policies, not pods x policies', () => {
  // P policies, each selecting its own app and allowing from one other app; N pods over the apps.
  function world(P: number, N: number) {
    const apps = 50;
    const pods = Array.from({ length: N }, (_, i) => mkPod('ns', `p${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, { app: `a${i % apps}` }));
    const policies = Array.from({ length: P }, (_, i) =>
      parsed({ podSelector: { matchLabels: { app: `a${i % apps}` } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: `a${(i * 7 + 1) % apps}` } } }], ports: [{ port: 8000 + i }] }] }, `pol${i}`, 'ns'),
    );
    return countObjects(compile({ pods, policies, namespaces: [namespaceInfo('ns')], node: 'n1' })).total;
  }
  it('doubling pods or policies roughly doubles the objects; both together do not quadruple', () => {
    const base = world(200, 200);
    expect(world(200, 400) / base).toBeLessThan(2);
    expect(world(400, 200) / base).toBeLessThan(2);
    expect(world(400, 400) / base).toBeLessThan(2.2);
  });
});

describe('formatExplanation', () => {
  it('reads as a verdict per side', () => {
    const pods = [mkPod('x', 'a', '10.0.0.1', { pod: 'a' }), mkPod('y', 'b', '10.0.1.1', { pod: 'b' })];
    const world = { pods, namespaces: [namespaceInfo('x'), namespaceInfo('y')], policies: [parsed({ podSelector: {} }, 'deny-all')] };
    const flow = { src: '10.0.1.1', dst: '10.0.0.1', protocol: 'TCP' as const, port: 80 };
    expect(formatExplanation(flow, explain(world, flow))).toBe(
      [
        '10.0.1.1 -> 10.0.0.1 TCP/80: DENIED',
        'Egress   y/b',
        '  selected by: (none)',
        '  verdict:     ALLOWED (not isolated: no policy selects it)',
        'Ingress  x/a',
        '  selected by: x/deny-all',
        '  verdict:     DENIED: isolated by x/deny-all, and no ingress rule of them matches',
      ].join('\n'),
    );
  });
});
