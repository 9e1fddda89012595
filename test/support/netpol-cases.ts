/**
 * The 48 cases of Kubernetes' own NetworkPolicy e2e suite (test/e2e/network/netpol/network_policy.go,
 * catalogued in /work/shared/design/netpol-cases.md) as the project's own data: the pods each case
 * needs, the ports it probes, the policies (as API objects), label changes, and the expected
 * reachability. Loopback (from == to) is not probed, like upstream.
 *
 * World: namespaces x, y, z (label kubernetes.io/metadata.name only); pods carry `pod: <name>`; every
 * pod serves 80 and 81 on TCP, UDP and SCTP with named ports `serve-<port>-<proto>`.
 * Expectations: `all` is the default for every pair, then each [from, to, allowed] entry in order
 * overrides the matching pairs ('x/a', 'x/*', '*').
 */
import { namespaceInfo, parsePolicy, PROTOCOLS, type ContainerPort, type NamespaceInfo, type PodInfo, type Policy, type Protocol } from '../../operator/policy/model.js';

export interface Probe {
  proto: Protocol;
  port: number;
}
export interface Expect {
  all: boolean;
  set?: Array<[string, string, boolean]>;
}
export interface Ctx {
  /** The address of a pod in the family under test. */
  ip(pod: string): string;
  family: 4 | 6;
}
export interface Step {
  policies(ctx: Ctx): unknown[];
  /** Extra labels, cumulative over steps. */
  nsLabels?: Record<string, Record<string, string>>;
  podLabels?: Record<string, Record<string, string>>;
  /** One expectation for every probe, or one per "PROTO/port". */
  expect: Expect | Record<string, Expect>;
}
export interface NetpolCase {
  id: number;
  name: string;
  pods: string[];
  probes: Probe[];
  steps: Step[];
}

type Sel = { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> };
type Port = { protocol?: Protocol; port?: number | string; endPort?: number };
type Peer = { podSelector?: Sel; namespaceSelector?: Sel; ipBlock?: { cidr: string; except?: string[] } };

const NS_NAME = 'kubernetes.io/metadata.name';
const pod = (v: string): Sel => ({ matchLabels: { pod: v } });
const nsName = (v: string): Sel => ({ matchLabels: { [NS_NAME]: v } });
const expr = (key: string, operator: string, values?: string[]): Sel => ({ matchExpressions: [{ key, operator, values: values ?? [] }] });
const all: Sel = {};

/** A policy like upstream's helpers build: policyTypes set explicitly from the rules given. */
function np(name: string, ns: string, podSelector: Sel, o: { ingress?: Array<{ from?: Peer[]; ports?: Port[] }>; egress?: Array<{ to?: Peer[]; ports?: Port[] }> }) {
  const policyTypes = [...(o.ingress ? ['Ingress'] : []), ...(o.egress ? ['Egress'] : [])];
  return { metadata: { name, namespace: ns }, spec: { podSelector, policyTypes, ...o } };
}
const denyIngress = (ns = 'x') => np('deny-ingress', ns, all, { ingress: [] });
const toA = (ns: string, from: Peer[], ports?: Port[]) => np('allow-to-a', ns, pod('a'), { ingress: [{ from, ...(ports ? { ports } : {}) }] });

const ok = (set: Array<[string, string, boolean]> = []): Expect => ({ all: true, set });
const TCP80: Probe[] = [{ proto: 'TCP', port: 80 }];
const TCP81: Probe[] = [{ proto: 'TCP', port: 81 }];
const TCP8081: Probe[] = [...TCP80, ...TCP81];
const P5 = ['x/a', 'x/b', 'y/a', 'y/b', 'z/a'];
const one = (policies: Step['policies'], expect: Step['expect']): Step[] => [{ policies, expect }];

/** Cases 31/32: a port-80-only policy, then an allow-all policy of the same direction added (probed on 81). */
function precedence(id: number, dir: 'ingress' | 'egress'): NetpolCase {
  const p80 = np(`${dir}-80`, 'x', all, { [dir]: [{ ports: [{ port: 80 }] }] });
  return {
    id,
    name: `${dir} allow-all takes precedence`,
    pods: ['x/a', 'y/a'],
    probes: TCP81,
    steps: [
      { policies: () => [p80], expect: ok([dir === 'ingress' ? ['*', 'x/*', false] : ['x/*', '*', false]]) },
      { policies: () => [p80, np('allow-all', 'x', all, { [dir]: [{}] })], expect: ok() },
    ],
  };
}

function protoCases(base: number, proto: Protocol): NetpolCase[] {
  const lc = proto.toLowerCase();
  return [
    { id: base, name: `${lc}: default-deny-ingress`, pods: ['x/a', 'x/b', 'y/a', 'y/b'], probes: [{ proto, port: 80 }], steps: one(() => [denyIngress()], ok([['*', 'x/*', false]])) },
    {
      id: base + 1,
      name: `${lc}: enforce policy based on Ports`,
      pods: ['x/a', 'x/b', 'y/a', 'z/a'],
      probes: [{ proto, port: 81 }],
      steps: one(() => [toA('x', [{ namespaceSelector: nsName('y') }], [{ port: 81, protocol: proto }])], ok([['*', 'x/a', false], ['y/*', 'x/a', true]])),
    },
    {
      id: base + 2,
      name: `${lc}: only from a pod in a different namespace (pod + namespace selector)`,
      pods: ['x/a', 'x/b', 'y/a'],
      probes: [{ proto, port: 80 }],
      steps: one(() => [toA('x', [{ namespaceSelector: nsName('y'), podSelector: pod('a') }])], ok([['*', 'x/a', false], ['y/a', 'x/a', true]])),
    },
  ];
}

export const CASES: NetpolCase[] = [
  { id: 1, name: "default-deny-ingress", pods: ['x/a', 'x/b', 'y/a', 'y/b'], probes: TCP80, steps: one(() => [denyIngress()], ok([['*', 'x/*', false]])) },
  {
    id: 2,
    name: 'default-deny-all',
    pods: ['x/a', 'x/b', 'y/a'],
    probes: TCP80,
    steps: one(() => [np('deny-all', 'x', all, { ingress: [], egress: [] })], ok([['*', 'x/*', false], ['x/*', '*', false]])),
  },
  { id: 3, name: 'from pods in server namespace by podSelector', pods: ['x/a', 'x/b', 'x/c', 'y/a'], probes: TCP80, steps: one(() => [toA('x', [{ podSelector: pod('b') }])], ok([['*', 'x/a', false], ['x/b', 'x/a', true]])) },
  {
    id: 4,
    name: 'allow ingress traffic for a target',
    pods: ['x/a', 'x/b', 'y/a'],
    probes: TCP80,
    steps: one(() => [denyIngress(), toA('x', [{ podSelector: all, namespaceSelector: all }])], ok([['*', 'x/b', false]])),
  },
  { id: 5, name: 'from pods in all namespaces', pods: ['x/a', 'x/b', 'y/a', 'z/a'], probes: TCP80, steps: one(() => [toA('x', [{ namespaceSelector: all }])], ok()) },
  { id: 6, name: 'only from a different namespace by namespaceSelector', pods: ['x/a', 'x/b', 'y/a', 'z/a'], probes: TCP80, steps: one(() => [toA('x', [{ namespaceSelector: nsName('y') }])], ok([['*', 'x/a', false], ['y/*', 'x/a', true]])) },
  { id: 7, name: 'podSelector with matchExpressions', pods: ['x/a', 'x/b', 'y/a'], probes: TCP80, steps: one(() => [toA('x', [{ podSelector: expr('pod', 'In', ['b']) }])], ok([['*', 'x/a', false], ['x/b', 'x/a', true]])) },
  { id: 8, name: 'namespaceSelector with matchExpressions', pods: ['x/a', 'x/b', 'y/a', 'z/a'], probes: TCP80, steps: one(() => [toA('x', [{ namespaceSelector: expr(NS_NAME, 'In', ['y']) }])], ok([['*', 'x/a', false], ['y/*', 'x/a', true]])) },
  {
    id: 9,
    name: 'podSelector OR namespaceSelector (two peers)',
    pods: ['x/a', 'x/b', 'x/c', 'y/a'],
    probes: TCP80,
    steps: one(() => [toA('x', [{ namespaceSelector: expr(NS_NAME, 'NotIn', ['x']) }, { podSelector: pod('b') }])], ok([['x/c', 'x/a', false]])),
  },
  {
    id: 10,
    name: 'podSelector AND namespaceSelector (one peer)',
    pods: ['x/a', 'x/b', 'y/a', 'y/b', 'z/b'],
    probes: TCP80,
    steps: one(() => [toA('x', [{ namespaceSelector: expr(NS_NAME, 'NotIn', ['x']), podSelector: pod('b') }])], ok([['*', 'x/a', false], ['y/b', 'x/a', true], ['z/b', 'x/a', true]])),
  },
  {
    id: 11,
    name: 'multiple podSelectors and namespaceSelectors',
    pods: ['x/a', 'x/b', 'y/a', 'y/b', 'y/c'],
    probes: TCP80,
    steps: one(() => [toA('x', [{ namespaceSelector: expr(NS_NAME, 'NotIn', ['x']), podSelector: expr('pod', 'In', ['b', 'c']) }])], ok([['*', 'x/a', false], ['y/b', 'x/a', true], ['y/c', 'x/a', true]])),
  },
  { id: 12, name: 'any of several podSelectors', pods: ['x/a', 'x/b', 'x/c'], probes: TCP80, steps: one(() => [toA('x', [{ podSelector: pod('b') }, { podSelector: pod('c') }])], ok([['*', 'x/a', false], ['x/b', 'x/a', true], ['x/c', 'x/a', true]])) },
  { id: 13, name: 'only from a pod in a different namespace (pod + ns selector)', pods: P5, probes: TCP80, steps: one(() => [toA('x', [{ namespaceSelector: nsName('y'), podSelector: pod('a') }])], ok([['*', 'x/a', false], ['y/a', 'x/a', true]])) },
  { id: 14, name: 'policy based on Ports', pods: P5, probes: TCP81, steps: one(() => [toA('x', [{ namespaceSelector: nsName('y') }], [{ port: 81, protocol: 'TCP' }])], ok([['*', 'x/a', false], ['y/*', 'x/a', true]])) },
  {
    id: 15,
    name: 'multiple stacked policies with overlapping podSelectors',
    pods: P5,
    probes: TCP8081,
    steps: [
      {
        policies: () => [toA('x', [{ namespaceSelector: nsName('y') }], [{ port: 81, protocol: 'TCP' }])],
        expect: { 'TCP/81': ok([['*', 'x/a', false], ['y/*', 'x/a', true]]), 'TCP/80': ok([['*', 'x/a', false]]) },
      },
      {
        policies: () => [
          toA('x', [{ namespaceSelector: nsName('y') }], [{ port: 81, protocol: 'TCP' }]),
          { ...toA('x', [{ namespaceSelector: nsName('y') }], [{ port: 80, protocol: 'TCP' }]), metadata: { name: 'allow-to-a-80', namespace: 'x' } },
        ],
        expect: ok([['*', 'x/a', false], ['y/*', 'x/a', true]]),
      },
    ],
  },
  { id: 16, name: 'allow-all policy', pods: ['x/a', 'x/b', 'y/a'], probes: TCP8081, steps: one(() => [np('allow-all', 'x', all, { ingress: [{}] })], ok()) },
  {
    id: 17,
    name: 'ingress on one named port',
    pods: ['x/a', 'x/b', 'y/a'],
    probes: TCP8081,
    steps: one(() => [np('named-81', 'x', all, { ingress: [{ ports: [{ port: 'serve-81-tcp' }] }] })], { 'TCP/81': ok(), 'TCP/80': ok([['*', 'x/*', false]]) }),
  },
  {
    id: 18,
    name: 'ingress from namespace on one named port',
    pods: ['x/a', 'x/b', 'y/a', 'z/a'],
    probes: TCP8081,
    steps: one(() => [toA('x', [{ namespaceSelector: nsName('y') }], [{ port: 'serve-80-tcp', protocol: 'TCP' }])], {
      'TCP/80': ok([['*', 'x/a', false], ['y/*', 'x/a', true]]),
      'TCP/81': ok([['*', 'x/a', false]]),
    }),
  },
  {
    id: 19,
    name: 'egress on one named port',
    pods: ['x/a', 'y/a'],
    probes: TCP8081,
    steps: one(() => [np('named-egress', 'x', all, { egress: [{ ports: [{ port: 'serve-80-tcp' }] }] })], { 'TCP/80': ok(), 'TCP/81': ok([['x/*', '*', false]]) }),
  },
  {
    id: 20,
    name: 'updated policy',
    pods: ['x/a', 'y/a'],
    probes: TCP81,
    steps: [
      { policies: () => [np('p', 'x', all, { ingress: [{}] })], expect: ok() },
      { policies: () => [np('p', 'x', all, { ingress: [] })], expect: ok([['*', 'x/*', false]]) },
    ],
  },
  {
    id: 21,
    name: 'ingress from updated namespace',
    pods: ['x/a', 'y/a'],
    probes: TCP80,
    steps: [
      { policies: () => [toA('x', [{ namespaceSelector: { matchLabels: { ns2: 'updated' } } }])], expect: ok([['*', 'x/a', false]]) },
      { policies: () => [toA('x', [{ namespaceSelector: { matchLabels: { ns2: 'updated' } } }])], nsLabels: { y: { ns2: 'updated' } }, expect: ok() },
    ],
  },
  {
    id: 22,
    name: 'ingress from updated pod',
    pods: ['x/a', 'x/b'],
    probes: TCP80,
    steps: [
      { policies: () => [toA('x', [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }])], expect: ok([['*', 'x/a', false]]) },
      { policies: () => [toA('x', [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }])], podLabels: { 'x/b': { pod2: 'updated' } }, expect: ok() },
    ],
  },
  { id: 23, name: 'deny ingress from other namespaces', pods: ['x/a', 'x/b', 'y/a', 'z/a'], probes: TCP80, steps: one(() => [np('same-ns', 'x', all, { ingress: [{ from: [{ podSelector: all }] }] })], ok([['y/*', 'x/*', false], ['z/*', 'x/*', false]])) },
  {
    id: 24,
    name: 'deny ingress to updated pod',
    pods: ['x/a', 'y/a'],
    probes: TCP80,
    steps: [
      { policies: () => [np('isolate', 'x', { matchLabels: { target: 'isolated' } }, { ingress: [] })], expect: ok() },
      { policies: () => [np('isolate', 'x', { matchLabels: { target: 'isolated' } }, { ingress: [] })], podLabels: { 'x/a': { target: 'isolated' } }, expect: ok([['*', 'x/a', false]]) },
    ],
  },
  { id: 25, name: 'deny egress by podSelector', pods: ['x/a', 'x/b', 'y/a'], probes: TCP80, steps: one(() => [np('deny-egress-a', 'x', pod('a'), { egress: [] })], ok([['x/a', '*', false]])) },
  { id: 26, name: 'deny egress from all pods in a namespace', pods: ['x/a', 'x/b', 'y/a'], probes: TCP80, steps: one(() => [np('deny-egress', 'x', all, { egress: [] })], ok([['x/*', '*', false]])) },
  {
    id: 27,
    name: 'Ingress and Egress together',
    pods: ['x/a', 'x/b', 'x/c', 'y/a'],
    probes: TCP8081,
    steps: one(() => [np('both', 'x', pod('a'), { ingress: [{ from: [{ podSelector: pod('b') }] }], egress: [{ ports: [{ port: 80 }] }] })], {
      'TCP/80': ok([['*', 'x/a', false], ['x/b', 'x/a', true]]),
      'TCP/81': ok([['*', 'x/a', false], ['x/b', 'x/a', true], ['x/a', '*', false]]),
    }),
  },
  {
    id: 28,
    name: 'egress denied on the client side even if the server allows it',
    pods: ['x/a', 'y/a', 'y/b'],
    probes: TCP80,
    steps: one(
      () => [
        np('egress-x-a', 'x', pod('a'), { egress: [{ to: [{ namespaceSelector: nsName('y'), podSelector: pod('a') }] }] }),
        np('ingress-y-a', 'y', pod('a'), { ingress: [{ from: [{ namespaceSelector: nsName('x'), podSelector: pod('a') }] }] }),
        np('ingress-y-b', 'y', pod('b'), { ingress: [{ from: [{ namespaceSelector: nsName('x'), podSelector: pod('a') }] }] }),
      ],
      ok([['x/a', '*', false], ['*', 'y/a', false], ['*', 'y/b', false], ['x/a', 'y/a', true]]),
    ),
  },
  { id: 29, name: 'egress to a server in another namespace by pod + ns selector', pods: ['x/a', 'y/a', 'y/b'], probes: TCP80, steps: one(() => [np('e', 'x', pod('a'), { egress: [{ to: [{ namespaceSelector: nsName('y'), podSelector: pod('a') }] }] })], ok([['x/a', '*', false], ['x/a', 'y/a', true]])) },
  {
    id: 30,
    name: 'any port on a specific protocol',
    pods: ['x/a', 'y/a'],
    probes: [{ proto: 'TCP', port: 80 }, { proto: 'UDP', port: 80 }],
    steps: one(() => [np('tcp-only', 'x', pod('a'), { ingress: [{ ports: [{ protocol: 'TCP' }] }] })], { 'TCP/80': ok(), 'UDP/80': ok([['*', 'x/a', false]]) }),
  },
  precedence(31, 'ingress'),
  precedence(32, 'egress'),
  {
    id: 33,
    name: 'stop enforcing after delete',
    pods: ['x/a', 'y/a'],
    probes: TCP80,
    steps: [
      { policies: () => [np('deny-all', 'x', all, { ingress: [], egress: [] })], expect: ok([['*', 'x/*', false], ['x/*', '*', false]]) },
      { policies: () => [], expect: ok() },
    ],
  },
  { id: 34, name: 'egress to a server in a CIDR block', pods: ['x/a', 'y/a', 'y/b'], probes: TCP80, steps: one((c) => [np('cidr', 'x', pod('a'), { egress: [{ to: [{ ipBlock: { cidr: host(c, 'y/b') } }] }] })], ok([['x/a', '*', false], ['x/a', 'y/b', true]])) },
  {
    id: 35,
    name: 'except clause of a CIDR block',
    pods: ['x/a', 'x/b', 'x/c'],
    probes: TCP80,
    steps: one((c) => [np('cidr', 'x', pod('a'), { egress: [{ to: [{ ipBlock: { cidr: wide(c, 'x/b'), except: [host(c, 'x/b')] } }] }] })], ok([['x/a', 'x/b', false]])),
  },
  {
    id: 36,
    name: 'an IP in both CIDR and except of different updates',
    pods: ['x/a', 'x/b', 'x/c'],
    probes: TCP80,
    steps: [
      { policies: (c) => [np('cidr', 'x', pod('a'), { egress: [{ to: [{ ipBlock: { cidr: wide(c, 'x/b'), except: [host(c, 'x/b')] } }] }] })], expect: ok([['x/a', 'x/b', false]]) },
      { policies: (c) => [np('cidr', 'x', pod('a'), { egress: [{ to: [{ ipBlock: { cidr: host(c, 'x/b') } }] }] })], expect: ok([['x/a', '*', false], ['x/a', 'x/b', true]]) },
    ],
  },
  {
    id: 37,
    name: 'ingress and egress controlled independently',
    pods: ['x/a', 'x/b', 'y/a'],
    probes: TCP80,
    steps: [
      { policies: () => [np('egress-all', 'x', pod('a'), { egress: [{}] })], expect: ok() },
      { policies: () => [np('egress-all', 'x', pod('a'), { egress: [{}] }), np('deny-in', 'x', pod('a'), { ingress: [] })], expect: ok([['*', 'x/a', false]]) },
    ],
  },
  { id: 38, name: "SCTP is not TCP (default deny + SCTP 81)", pods: ['x/a', 'y/a'], probes: TCP81, steps: one(() => [denyIngress(), np('sctp', 'x', pod('a'), { ingress: [{ ports: [{ protocol: 'SCTP', port: 81 }] }] })], ok([['*', 'x/*', false]])) },
  { id: 39, name: 'a policy allowing SCTP isolates', pods: ['x/a', 'y/a'], probes: TCP81, steps: one(() => [np('sctp', 'x', pod('a'), { ingress: [{ ports: [{ protocol: 'SCTP', port: 80 }] }] })], ok([['*', 'x/a', false]])) },
  { id: 40, name: 'UDP-only policy does not allow TCP', pods: ['x/a', 'y/a'], probes: TCP81, steps: one(() => [np('udp', 'x', pod('a'), { ingress: [{ ports: [{ protocol: 'UDP', port: 81 }] }] })], ok([['*', 'x/a', false]])) },
  { id: 41, name: 'namespaceSelector matchLabels on the default ns label', pods: ['x/a', 'x/b', 'y/a', 'z/a'], probes: TCP80, steps: one(() => [toA('x', [{ namespaceSelector: nsName('y') }])], ok([['*', 'x/a', false], ['y/*', 'x/a', true]])) },
  {
    id: 42,
    name: 'namespaceSelector matchExpressions on the default ns label (egress)',
    pods: ['x/a', 'x/b', 'y/a', 'z/a'],
    probes: TCP80,
    steps: one(() => [np('e', 'x', pod('a'), { egress: [{ to: [{ namespaceSelector: expr(NS_NAME, 'NotIn', ['y']) }] }] })], ok([['x/a', 'y/*', false]])),
  },
  ...protoCases(43, 'UDP'),
  ...protoCases(46, 'SCTP'),
];

/** The pod's address as a host CIDR (/32 or /128). */
function host(c: Ctx, p: string): string {
  return `${c.ip(p)}/${c.family === 4 ? 32 : 128}`;
}
/** A wide CIDR around the pod's address (upstream: /4 in IPv4), host bits left in as upstream does. */
function wide(c: Ctx, p: string): string {
  return `${c.ip(p)}/${c.family === 4 ? 4 : 12}`;
}

/** Does pattern ('x/a', 'x/*', '*') match pod 'ns/name'? */
export const podPattern = (pat: string, p: string) => pat === '*' || pat === p || (pat.endsWith('/*') && p.startsWith(pat.slice(0, -1)));

export function expected(e: Expect, from: string, to: string): boolean {
  let v = e.all;
  for (const [f, t, a] of e.set ?? []) if (podPattern(f, from) && podPattern(t, to)) v = a;
  return v;
}

export function expectFor(step: Step, probe: Probe): Expect {
  const e = step.expect;
  return 'all' in e && typeof e.all === 'boolean' ? (e as Expect) : (e as Record<string, Expect>)[`${probe.proto}/${probe.port}`]!;
}

export interface CaseWorld {
  policies: Policy[];
  namespaces: NamespaceInfo[];
  pods: PodInfo[];
}

/** Every pod serves 80 and 81 on TCP, UDP and SCTP under the upstream port names. */
export const SERVE_PORTS: ContainerPort[] = [80, 81].flatMap((port) => PROTOCOLS.map((protocol) => ({ name: `serve-${port}-${protocol.toLowerCase()}`, containerPort: port, protocol })));

/** The world of a case at a step: labels accumulated over steps 0..stepIndex, policies parsed (throws on a bad one). */
export function caseWorld(c: NetpolCase, stepIndex: number, addrs: (pod: string) => string[], nodeOf: (pod: string) => string, family: 4 | 6): CaseWorld {
  const nsLabels: Record<string, Record<string, string>> = {};
  const podLabels: Record<string, Record<string, string>> = {};
  for (const s of c.steps.slice(0, stepIndex + 1)) {
    for (const [k, v] of Object.entries(s.nsLabels ?? {})) nsLabels[k] = { ...nsLabels[k], ...v };
    for (const [k, v] of Object.entries(s.podLabels ?? {})) podLabels[k] = { ...podLabels[k], ...v };
  }
  const ctx: Ctx = { family, ip: (p) => addrs(p).find((a) => a.includes(':') === (family === 6))! };
  const policies = c.steps[stepIndex]!.policies(ctx).map((o) => {
    const r = parsePolicy(o);
    if (!r.ok) throw new Error(`case ${c.id}: ${r.key}: ${r.error}`);
    return r.policy;
  });
  return {
    policies,
    namespaces: ['x', 'y', 'z'].map((n) => namespaceInfo(n, nsLabels[n])),
    pods: c.pods.map((p) => {
      const [namespace, name] = p.split('/') as [string, string];
      return { namespace, name, labels: { pod: name, ...podLabels[p] }, ips: addrs(p), nodeName: nodeOf(p), ports: SERVE_PORTS };
    }),
  };
}
