/**
 * kubectl fabric: the pure builders (status report and exit code, node report discrepancies, SVG map),
 * table-tested on plain fixture objects.
 */
import { describe, expect, it } from 'vitest';
import type { Condition } from '../../operator/api/common.js';
import type { BGPPeerObj, IPPoolObj, L2SegmentObj, NodeFabricObj } from '../../operator/api/kinds.js';
import { segmentObjectName, type SegmentRoute } from '../../operator/api/segment.js';
import type { NodeFabricSpec, NodeFabricStatus, SessionStatus } from '../../operator/api/nodefabric.js';
import { RACK_LABEL, formatAge, naturalCompare, type CoreNode, type FabricSnapshot } from '../../operator/cli/model.js';
import { READY_COLORS, SESSION_COLORS, buildMapModel, layoutMap, renderMap, xmlEscape, type Box } from '../../operator/cli/map.js';
import { buildNodeReport, renderNodeReport } from '../../operator/cli/node-report.js';
import { DEFAULT_STALE_AFTER_SECONDS, buildStatus, renderStatus } from '../../operator/cli/status-report.js';
import { STATUS_HEARTBEAT_JITTER, STATUS_HEARTBEAT_SECONDS } from '../../operator/api/nodefabric.js';
import { table } from '../../operator/cli/table.js';
import { runFabric } from '../../operator/cli/fabric.js';

const NOW = new Date('2025-06-01T12:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const opts = { now: NOW, staleAfterSeconds: 120 };
const cond = (type: string, status: Condition['status'], reason = status === 'True' ? 'OK' : 'NotOK', message = ''): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: ago(600),
});

function coreNode(name: string, podCIDRs: string[] = [], labels: Record<string, string> = {}): CoreNode {
  return { metadata: { name, labels }, spec: podCIDRs.length ? { podCIDR: podCIDRs[0], podCIDRs } : {} };
}

interface NodeFix {
  name: string;
  cidr: string;
  ip: string;
  tor: { name: string; address: string };
  neighbours?: Array<{ name: string; cidr: string; ip: string }>;
  segment?: string;
}

/** A NodeFabric whose status matches its plan exactly (Ready), then callers break what they test. */
function healthyNF(f: NodeFix): NodeFabricObj {
  const spec: NodeFabricSpec = {
    podCIDRs: [f.cidr],
    allocations: [{ cidr: f.cidr, pool: 'default' }],
    nodeIPs: [f.ip],
    asn: 64512,
    routerId: f.ip,
    advertisements: [{ prefix: f.cidr, nextHop: f.ip }],
    routing: { l2Segment: f.segment ?? '172.20.1.0/24', segments: [segmentObjectName(4, `subnet:${f.segment ?? '172.20.1.0/24'}`)] },
  };
  const status: NodeFabricStatus = {
    conditions: ['Allocated', 'BGPReady', 'CNIReady', 'PeersResolved', 'Ready', 'RoutesReady'].map((t) => cond(t, 'True')),
    l2Subnets: [f.segment ?? '172.20.1.0/24'],
    sessions: [{ address: f.tor.address, name: f.tor.name, state: 'Established', establishedSince: ago(3600), prefixesSent: 1, prefixesReceived: 3 }],
    sessionsEstablished: 1,
    sessionsTotal: 1,
    advertised: [f.cidr],
    routesInstalled: f.neighbours?.length ?? 0,
    cni: { written: true, path: '/etc/cni/net.d/10-podfabric.conflist' },
    lastSyncTime: ago(10),
  };
  return { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: f.name, generation: 1 }, spec, status };
}

/** The L2Segment the controller writes for a segment key: every member's pod CIDR via its IP, sorted. */
function segmentObj(key: string, routes: SegmentRoute[], family: 4 | 6 = 4, omitted?: number): L2SegmentObj {
  return {
    apiVersion: 'podfabric.io/v1alpha1',
    kind: 'L2Segment',
    metadata: { name: segmentObjectName(family, key) },
    spec: {
      key,
      family,
      reason: key.startsWith('label:') ? 'SegmentLabel' : 'SameSubnet',
      routes: [...routes].sort((a, b) => (a.destination < b.destination ? -1 : 1)),
      ...(omitted ? { omitted } : {}),
    },
  };
}

/** The node now names one new L2Segment only (its routes as given, any family): what a test plans for it. */
function useSegment(s: FabricSnapshot, nf: NodeFabricObj, key: string, routes: SegmentRoute[], family: 4 | 6 = 4): L2SegmentObj {
  const o = segmentObj(key, routes, family);
  s.segments.push(o);
  nf.spec.routing = { ...nf.spec.routing, segments: [o.metadata.name] };
  return o;
}

/** The rack segments of these nodes (keyed by each one's subnet), as the controller writes them. */
function rackSegments(n: Array<{ name: string; cidr: string; ip: string; segment?: string }>): L2SegmentObj[] {
  const racks = new Map<string, SegmentRoute[]>();
  for (const f of n) {
    const key = `subnet:${f.segment ?? '172.20.1.0/24'}`;
    racks.set(key, [...(racks.get(key) ?? []), { destination: f.cidr, via: f.ip, node: f.name }]);
  }
  return [...racks].map(([key, routes]) => segmentObj(key, routes));
}

/** A ToR peer selecting the nodes labelled tor=<name> (coreNode's labels in fabric()). */
const peer = (name: string, address: string, conditions: Condition[] = [], nodesSelected?: number): BGPPeerObj => ({
  apiVersion: 'podfabric.io/v1alpha1',
  kind: 'BGPPeer',
  metadata: { name },
  spec: { peerAddress: address, peerASN: 65101, nodeSelector: { matchLabels: { tor: name } }, timers: { holdTime: 90, keepaliveInterval: 30, connectRetry: 5 } },
  status: { conditions, ...(nodesSelected !== undefined ? { nodesSelected } : {}) },
});

const pool = (name: string, cidr: string, extra: Partial<IPPoolObj['spec']> = {}, status?: IPPoolObj['status']): IPPoolObj => ({
  apiVersion: 'podfabric.io/v1alpha1',
  kind: 'IPPool',
  metadata: { name },
  spec: { cidr, disabled: false, ...extra },
  ...(status ? { status } : {}),
});

/** Two racks of two nodes, all healthy. */
function fabric(): FabricSnapshot {
  const tor1 = { name: 'tor1', address: '172.20.1.1' };
  const tor2 = { name: 'tor2', address: '172.20.2.1' };
  const n = [
    { name: 'r1n1', cidr: '10.244.0.0/24', ip: '172.20.1.11', tor: tor1 },
    { name: 'r1n2', cidr: '10.244.1.0/24', ip: '172.20.1.12', tor: tor1 },
    { name: 'r2n1', cidr: '10.244.2.0/24', ip: '172.20.2.11', tor: tor2, segment: '172.20.2.0/24' },
    { name: 'r2n2', cidr: '10.244.3.0/24', ip: '172.20.2.12', tor: tor2, segment: '172.20.2.0/24' },
  ];
  const nf = n.map((f, i) => healthyNF({ ...f, neighbours: [n[i ^ 1]!] }));
  return {
    nodes: n.map((f) => coreNode(f.name, [f.cidr], { tor: f.tor.name })),
    nodeFabrics: nf,
    segments: rackSegments(n),
    peers: [peer('tor1', tor1.address, [cond('Ready', 'True'), cond('Valid', 'True'), cond('Conflict', 'False')], 2), peer('tor2', tor2.address, [], 2)],
    pools: [pool('default', '10.244.0.0/16', {}, { blocksTotal: 256, blocksAllocated: 4, blocksFree: 252, conditions: [cond('Ready', 'True')] })],
    config: {
      apiVersion: 'podfabric.io/v1alpha1',
      kind: 'FabricConfig',
      metadata: { name: 'default' },
      spec: {
        asn: 64512,
        routerIdSource: 'NodeIPv4',
        hostRoutes: { enabled: true, detectL2: true, segmentLabel: 'podfabric.io/l2-segment' },
        routeProtocol: 201,
        gobgpSocket: '/run/podfabric/gobgp.sock',
        cni: { confDir: '/etc/cni/net.d', bridge: 'cni0', waitForFabric: true },
      },
    },
  };
}

const nfOf = (s: FabricSnapshot, name: string) => s.nodeFabrics.find((n) => n.metadata.name === name)!;
const setReady = (nf: NodeFabricObj, status: Condition['status'], reason: string, message: string) => {
  nf.status!.conditions = nf.status!.conditions!.map((c) => (c.type === 'Ready' ? cond('Ready', status, reason, message) : c));
};

describe('helpers', () => {
  it.each([
    [0, '0s'],
    [59, '59s'],
    [60, '1m'],
    [150, '2m30s'],
    [900, '15m'],
    [3 * 3600, '3h'],
    [3 * 86400, '3d'],
    [null, '-'],
  ])('formatAge(%s) = %s', (s, want) => expect(formatAge(s)).toBe(want));

  it('sorts names naturally and deterministically', () => {
    expect(['r1n10', 'r1n2', 'r10n1', 'r2n1', 'a'].sort(naturalCompare)).toEqual(['a', 'r1n2', 'r1n10', 'r2n1', 'r10n1']);
  });

  it('pads tables to the widest cell', () => {
    expect(table([['A', 'BB'], ['ccc', 'd']])).toBe('A    BB\nccc  d');
  });
});

describe('status', () => {
  type Case = { name: string; mutate: (s: FabricSnapshot) => void; ready: boolean; problem?: RegExp; check?: (r: ReturnType<typeof buildStatus>) => void };
  const cases: Case[] = [
    {
      name: 'all healthy',
      mutate: () => undefined,
      ready: true,
      check: (r) => {
        expect(r.nodes.map((n) => n.name)).toEqual(['r1n1', 'r1n2', 'r2n1', 'r2n2']);
        expect(r.nodes[0]).toMatchObject({ podCIDRs: ['10.244.0.0/24'], rack: '172.20.1.0/24', sessionsEstablished: 1, sessionsTotal: 1, prefixesAdvertised: 1, routesInstalled: 1, routesPlanned: 1, cniWritten: true, ready: 'True', syncAgeSeconds: 10, stale: false });
        expect(r.peers[0]).toMatchObject({ name: 'tor1', address: '172.20.1.1', asn: 65101, nodesSelected: 2, sessionsEstablished: 2, problems: [] });
        expect(r.pools[0]).toMatchObject({ name: 'default', blockSize: 24, blocksUsed: 4, blocksTotal: 256, utilizationPercent: 1.6, disabled: false });
        expect(r.summary).toEqual({ nodes: 4, nodesReady: 4, peers: 2, pools: 1, sessionsEstablished: 4, sessionsTotal: 4 });
      },
    },
    {
      name: 'a node not Ready',
      mutate: (s) => {
        const nf = nfOf(s, 'r1n2');
        setReady(nf, 'False', 'BGPNotReady', '0/1 sessions established');
        nf.status!.sessions![0]!.state = 'Active';
      },
      ready: false,
      problem: /node r1n2: Ready=False \(BGPNotReady\)/,
      check: (r) => {
        expect(r.nodes[1]).toMatchObject({ ready: 'False', reason: 'BGPNotReady', sessionsEstablished: 0 });
        expect(r.peers[0]!.sessionsEstablished).toBe(1);
        expect(r.problems).toContain('bgppeer tor1: 1 of 2 planned session(s) not established');
      },
    },
    {
      name: 'a NodeFabric without status',
      mutate: (s) => void delete nfOf(s, 'r2n1').status,
      ready: false,
      problem: /node r2n1: Ready=Unknown \(NoStatus\)/,
      check: (r) => expect(r.nodes[2]).toMatchObject({ ready: 'Unknown', cniWritten: null, lastSyncTime: null, stale: false }),
    },
    {
      name: 'a stale agent (Ready but last sync 10 minutes ago)',
      mutate: (s) => void (nfOf(s, 'r2n2').status!.lastSyncTime = ago(600)),
      ready: false,
      problem: /node r2n2: status is stale: last sync 10m ago/,
      check: (r) => {
        expect(r.nodes[3]).toMatchObject({ ready: 'True', stale: true, syncAgeSeconds: 600 });
        expect(r.summary.nodesReady).toBe(3);
      },
    },
    {
      name: 'a Node without NodeFabric',
      mutate: (s) => void s.nodes.push(coreNode('r3n1')),
      ready: false,
      problem: /node r3n1: Ready=Unknown \(NoNodeFabric\)/,
    },
    {
      name: 'an exhausted pool',
      mutate: (s) => void (s.pools[0]!.status!.conditions = [cond('Ready', 'True'), cond('Exhausted', 'True', 'NoFreeBlocks', 'all usable blocks are allocated')]),
      ready: false,
      problem: /ippool default: Exhausted=True \(NoFreeBlocks\)/,
    },
    {
      name: 'a disabled pool is not a problem',
      mutate: (s) =>
        void s.pools.push(pool('old', '10.10.0.0/16', { disabled: true, blockSize: 26 }, { conditions: [cond('Ready', 'False', 'Disabled', 'disabled: no new blocks')] })),
      ready: true,
      check: (r) => expect(r.pools.find((p) => p.name === 'old')).toMatchObject({ disabled: true, blockSize: 26, blocksTotal: 1024, blocksUsed: 0, problems: [] }),
    },
    {
      name: 'a peer in conflict',
      mutate: (s) => void (s.peers[1]!.status!.conditions = [cond('Conflict', 'True', 'DuplicateAddress', 'another BGPPeer wins')]),
      ready: false,
      problem: /bgppeer tor2: Conflict=True \(DuplicateAddress\)/,
    },
    { name: 'no pools', mutate: (s) => void (s.pools = []), ready: false, problem: /no IPPool/ },
    {
      name: "routes planned are the node's L2Segments' routes but its own (none when its segment is not written)",
      mutate: (s) => void (s.segments = s.segments.filter((o) => o.spec.key !== 'subnet:172.20.2.0/24')),
      ready: true,
      check: (r) => expect(r.nodes.map((n) => [n.name, n.routesInstalled, n.routesPlanned])).toEqual([['r1n1', 1, 1], ['r1n2', 1, 1], ['r2n1', 1, 0], ['r2n2', 1, 0]]),
    },
    {
      // The agent's Ready describes the plan it synced; the controller has since changed the plan.
      name: 'a Ready written for an older plan (the spec moved on to generation 3)',
      mutate: (s) => {
        const nf = s.nodeFabrics[0]!;
        nf.metadata.generation = 3;
        for (const c of nf.status!.conditions!) c.observedGeneration = 2;
      },
      ready: false,
      problem: /r1n1.*PlanNotSynced.*generation 2, the plan is at 3/,
    },
  ];
  it.each(cases)('$name', ({ mutate, ready, problem, check }) => {
    const s = fabric();
    mutate(s);
    const r = buildStatus(s, opts);
    expect(r.ready).toBe(ready);
    if (ready) expect(r.problems).toEqual([]);
    if (problem) expect(r.problems.some((p) => problem.test(p))).toBe(true);
    check?.(r);
    const text = renderStatus(r);
    expect(text).toContain(ready ? ': READY' : ': NOT READY');
    if (!ready) expect(text).toMatch(/^PROBLEMS \(\d+\)$/m);
  });

  it('renders one row per node, peer and pool', () => {
    const text = renderStatus(buildStatus(fabric(), opts));
    expect(text).toMatch(/^r1n1 +10\.244\.0\.0\/24 +172\.20\.1\.0\/24 +1\/1 +1\/1 +1\/1 +yes +True +10s ago$/m);
    expect(text).toMatch(/^tor1 +172\.20\.1\.1 +65101 +2 +2\/2 +Conflict=False Ready=True Valid=True$/m);
    expect(text).toMatch(/^default +10\.244\.0\.0\/16 +\/24 +4\/256 +1\.6% +no +Ready=True$/m);
    expect(text).toMatch(/^64512 +NodeIPv4 +on \(detect L2, label podfabric\.io\/l2-segment\) +201/m);
  });

  it('uses the rack label before the segment', () => {
    const s = fabric();
    s.nodes[0]!.metadata.labels = { [RACK_LABEL]: 'rack-a' };
    expect(buildStatus(s, opts).nodes[0]!.rack).toBe('rack-a');
  });
});

describe('node report', () => {
  const RACK1 = segmentObjectName(4, 'subnet:172.20.1.0/24');
  type Case = { name: string; mutate: (nf: NodeFabricObj, s: FabricSnapshot) => void; discrepancy?: RegExp; check?: (r: ReturnType<typeof buildNodeReport>) => void };
  const cases: Case[] = [
    { name: 'exactly the plan', mutate: () => undefined },
    {
      name: 'a missing route',
      mutate: (nf) => {
        nf.status!.routeProblems = [{ destination: '10.244.1.0/24', plannedVia: '172.20.1.12' }];
        nf.status!.routeProblemsTotal = 1;
        nf.status!.routesInstalled = 0;
      },
      discrepancy: /^route 10\.244\.1\.0\/24 via 172\.20\.1\.12 \(to r1n2\): planned but not in the kernel$/,
      check: (r) => expect(r.routes).toEqual([{ destination: '10.244.1.0/24', node: 'r1n2', plannedVia: '172.20.1.12', installedVia: null, segment: RACK1, reason: 'SameSubnet', verdict: 'missing' }]),
    },
    {
      name: 'an extra route',
      mutate: (nf) => void (nf.status!.routeProblems = [{ destination: '10.244.9.0/24', installedVia: '172.20.1.99' }]),
      discrepancy: /^route 10\.244\.9\.0\/24 via 172\.20\.1\.99: in the kernel but not planned$/,
      check: (r) => expect(r.routes.map((x) => [x.destination, x.installedVia, x.verdict])).toEqual([['10.244.1.0/24', '172.20.1.12', 'ok'], ['10.244.9.0/24', '172.20.1.99', 'extra']]),
    },
    {
      name: 'a route via the wrong neighbour',
      mutate: (nf) => void (nf.status!.routeProblems = [{ destination: '10.244.1.0/24', plannedVia: '172.20.1.12', installedVia: '172.20.1.13' }]),
      discrepancy: /planned via 172\.20\.1\.12, installed via 172\.20\.1\.13/,
      check: (r) => expect(r.routes).toEqual([{ destination: '10.244.1.0/24', node: 'r1n2', plannedVia: '172.20.1.12', installedVia: '172.20.1.13', segment: RACK1, reason: 'SameSubnet', verdict: 'mismatch' }]),
    },
    {
      name: 'no route reported yet (status without routesInstalled): every planned route is missing',
      mutate: (nf) => void delete nf.status!.routesInstalled,
      discrepancy: /^route 10\.244\.1\.0\/24 via 172\.20\.1\.12 \(to r1n2\): planned but not in the kernel$/,
      check: (r) => expect(r.routes.map((x) => [x.installedVia, x.verdict])).toEqual([[null, 'missing']]),
    },
    {
      name: 'more problems than listed: planned routes after the last one listed are not vouched for',
      mutate: (nf, s) => {
        const others = ['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24'].map((destination, i) => ({ destination, via: `172.20.1.${12 + i}`, node: `n${i}` }));
        useSegment(s, nf, 'label:big', [{ destination: '10.244.0.0/24', via: '172.20.1.11', node: 'r1n1' }, ...others]);
        nf.status!.routeProblems = [{ destination: '10.244.2.0/24', plannedVia: '172.20.1.13' }];
        nf.status!.routeProblemsTotal = 2;
      },
      discrepancy: /^1 more route problem\(s\) than status\.routeProblems lists \(it holds the first 1\)/,
      check: (r) => {
        expect(r.routes.map((x) => [x.destination, x.installedVia, x.verdict])).toEqual([
          ['10.244.1.0/24', '172.20.1.12', 'ok'],
          ['10.244.2.0/24', null, 'missing'],
          ['10.244.3.0/24', null, 'unlisted'],
        ]);
        expect(renderNodeReport(r, NOW)).toMatch(/^10\.244\.3\.0\/24 +n2 +172\.20\.1\.14 +- +SegmentLabel +\?\? NOT LISTED$/m);
      },
    },
    {
      name: 'a problem left from an older plan (route neither planned nor installed) shows nothing',
      mutate: (nf) => void (nf.status!.routeProblems = [{ destination: '10.244.8.0/24', plannedVia: '172.20.1.98' }]),
      check: (r) => expect(r.routes.map((x) => x.destination)).toEqual(['10.244.1.0/24']),
    },
    {
      name: 'a status for an older plan generation',
      mutate: (nf) => {
        nf.metadata.generation = 3;
        nf.status!.observedGeneration = 2;
      },
      discrepancy: /^status is for plan generation 2, the plan is at 3: the agent has not reported on the latest plan yet/,
    },
    {
      name: 'a session down',
      mutate: (nf) => {
        const s = nf.status!.sessions![0]! as SessionStatus;
        s.state = 'Active';
        s.lastError = 'hold timer expired';
        delete s.establishedSince;
      },
      discrepancy: /^session to tor1 172\.20\.1\.1: Active \(hold timer expired\)$/,
      check: (r) => expect(r.sessions[0]).toMatchObject({ state: 'Active', verdict: 'down', lastError: 'hold timer expired' }),
    },
    {
      name: 'a planned session the agent does not report',
      mutate: (nf) => void (nf.status!.sessions = []),
      discrepancy: /planned but the agent reports no session/,
      check: (r) => expect(r.sessions[0]).toMatchObject({ state: null, verdict: 'missing' }),
    },
    {
      name: 'a session that is not planned',
      mutate: (nf) => void nf.status!.sessions!.push({ address: '172.20.1.2', state: 'Established' }),
      discrepancy: /^session to 172\.20\.1\.2: on the node but not planned$/,
    },
    {
      name: 'an advertisement missing',
      mutate: (nf) => void (nf.status!.advertised = []),
      discrepancy: /^advertisement 10\.244\.0\.0\/24: planned but not advertised$/,
      check: (r) => expect(r.advertisements).toEqual([{ prefix: '10.244.0.0/24', nextHop: '172.20.1.11', verdict: 'missing' }]),
    },
    {
      name: 'a condition not True, with its reason and message',
      mutate: (nf) => setReady(nf, 'False', 'RoutesNotReady', 'kernel refused 10.244.1.0/24'),
      discrepancy: /^condition Ready=False \(RoutesNotReady\): kernel refused 10\.244\.1\.0\/24$/,
    },
    {
      name: 'CNI not written',
      mutate: (nf) => void (nf.status!.cni = { written: false, reason: 'waiting for BGP sessions' }),
      discrepancy: /^CNI configuration not written: waiting for BGP sessions$/,
    },
    {
      name: "the Node's podCIDRs differ from the plan",
      mutate: (_nf, s) => void (s.nodes[0]!.spec = { podCIDRs: ['10.244.7.0/24'] }),
      discrepancy: /pod CIDRs: planned 10\.244\.0\.0\/24, Node\.spec\.podCIDRs 10\.244\.7\.0\/24/,
      check: (r) => expect(r.podCIDRs.verdict).toBe('mismatch'),
    },
    { name: 'no status', mutate: (nf) => void delete nf.status, discrepancy: /^no status/ },
    { name: 'stale status', mutate: (nf) => void (nf.status!.lastSyncTime = ago(3600)), discrepancy: /stale: last sync 60m ago/ },
    {
      name: 'IPv6 written differently is the same route',
      mutate: (nf, s) => {
        useSegment(s, nf, 'subnet:fd00:20:1::/64', [{ destination: 'fd00:10:244:1::/64', via: 'fd00:20:1::12', node: 'r1n2' }], 6);
        nf.status!.routeProblems = [{ destination: 'fd00:10:244:1:0::/64', plannedVia: 'fd00:20:1::12', installedVia: 'fd00:20:1:0:0:0:0:13' }];
      },
      discrepancy: /^route fd00:10:244:1::\/64: planned via fd00:20:1::12, installed via fd00:20:1::13$/,
      check: (r) => expect(r.routes.map((x) => [x.destination, x.verdict])).toEqual([['fd00:10:244:1::/64', 'mismatch']]),
    },
    {
      name: 'IPv6 planned, no problem: installed via the planned next hop in canonical form',
      mutate: (nf, s) => void useSegment(s, nf, 'subnet:fd00:20:1::/64', [{ destination: 'fd00:10:244:1:0::/64', via: 'fd00:20:1:0:0:0:0:12', node: 'r1n2' }], 6),
      check: (r) => expect(r.routes).toEqual([{ destination: 'fd00:10:244:1::/64', node: 'r1n2', plannedVia: 'fd00:20:1::12', installedVia: 'fd00:20:1::12', segment: segmentObjectName(6, 'subnet:fd00:20:1::/64'), reason: 'SameSubnet', verdict: 'ok' }]),
    },
    {
      name: "the planned routes are the named L2Segments' routes but the node's own, and the report names each segment",
      mutate: () => undefined,
      check: (r) => {
        expect(r.segments).toEqual([{ name: RACK1, found: true, key: 'subnet:172.20.1.0/24', family: 4, reason: 'SameSubnet', routes: 2, omitted: 0, expected: false }]);
        expect(r.routes.map((x) => [x.destination, x.node, x.plannedVia, x.segment])).toEqual([['10.244.1.0/24', 'r1n2', '172.20.1.12', RACK1]]);
      },
    },
    {
      name: 'a named L2Segment not written while the node has a pod CIDR and an IP of its family: no routes planned, a discrepancy',
      mutate: (_nf, s) => void (s.segments = s.segments.filter((o) => o.metadata.name !== RACK1)),
      discrepancy: /^L2Segment v4-subnet-172-20-1-0-24-[0-9a-f]{8} not found: the node has a pod CIDR and an IP of IPv4/,
      check: (r) => {
        expect(r.routes).toEqual([]);
        expect(r.segments).toEqual([{ name: RACK1, found: false, key: null, family: 4, reason: null, routes: null, omitted: 0, expected: true }]);
        expect(renderNodeReport(r, NOW)).toMatch(/^v4-subnet-172-20-1-0-24-[0-9a-f]{8} +- +IPv4 +- +- +0 +!! MISSING$/m);
      },
    },
    {
      name: 'an IPv6 segment named but not written, the node has no IPv6 pod CIDR: no routes from it, no discrepancy',
      mutate: (nf) => void nf.spec.routing!.segments!.push(segmentObjectName(6, 'label:rack-1')),
      check: (r) => {
        expect(r.segments[1]).toEqual({ name: segmentObjectName(6, 'label:rack-1'), found: false, key: null, family: 6, reason: null, routes: null, omitted: 0, expected: false });
        expect(r.routes.map((x) => x.destination)).toEqual(['10.244.1.0/24']);
        expect(renderNodeReport(r, NOW)).toMatch(/^v6-label-rack-1-[0-9a-f]{8} +- +IPv6 +- +- +0 +not found \(no routes\)$/m);
      },
    },
    {
      name: 'two families: routes from both segments; a destination in both (a stale object) is planned once, from the first',
      mutate: (nf, s) => {
        const v6 = segmentObj('subnet:fd00:20:1::/64', [
          { destination: 'fd00:10:244:1::/64', via: 'fd00:20:1::12', node: 'r1n2' },
          { destination: 'fd00:10:244::/64', via: 'fd00:20:1::11', node: 'r1n1' },
          { destination: '10.244.1.0/24', via: '172.20.1.99', node: 'old' },
        ], 6);
        s.segments.push(v6);
        nf.spec.routing!.segments = [RACK1, v6.metadata.name];
      },
      check: (r) => {
        const v6 = segmentObjectName(6, 'subnet:fd00:20:1::/64');
        expect(r.routes.map((x) => [x.destination, x.plannedVia, x.segment, x.verdict])).toEqual([
          ['10.244.1.0/24', '172.20.1.12', RACK1, 'ok'],
          ['fd00:10:244:1::/64', 'fd00:20:1::12', v6, 'ok'],
        ]);
        expect(r.segments.map((g) => [g.family, g.routes])).toEqual([[4, 2], [6, 3]]);
      },
    },
    {
      name: 'a segment whose routes were cut at the limit says how many were left out (reached through the ToR: not a discrepancy)',
      mutate: (_nf, s) => void (s.segments.find((o) => o.metadata.name === RACK1)!.spec.omitted = 3),
      check: (r) => {
        expect(r.segments[0]!.omitted).toBe(3);
        expect(renderNodeReport(r, NOW)).toMatch(/^v4-subnet-172-20-1-0-24-[0-9a-f]{8} +subnet:172\.20\.1\.0\/24 +IPv4 +SameSubnet +2 +3 +ok$/m);
      },
    },
    {
      name: 'a stored L2Segment that does not validate (no routes) plans no routes and does not crash the report',
      mutate: (_nf, s) => void delete (s.segments.find((o) => o.metadata.name === RACK1)!.spec as Partial<L2SegmentObj['spec']>).routes,
      check: (r) => {
        expect(r.routes).toEqual([]);
        expect(r.segments[0]).toMatchObject({ found: true, routes: 0 });
      },
    },
    {
      name: 'no segment at all (host routes off): an empty section',
      mutate: (nf) => void delete nf.spec.routing,
      check: (r) => {
        expect(r.segments).toEqual([]);
        expect(r.routes).toEqual([]);
        expect(renderNodeReport(r, NOW)).toContain('(none: the node is on no L2 segment)');
      },
    },
  ];
  it.each(cases)('$name', ({ mutate, discrepancy, check }) => {
    const s = fabric();
    mutate(nfOf(s, 'r1n1'), s);
    const r = buildNodeReport('r1n1', s, opts);
    if (discrepancy) expect(r.discrepancies.some((d) => discrepancy.test(d)), r.discrepancies.join('\n')).toBe(true);
    else expect(r.discrepancies).toEqual([]);
    check?.(r);
    const text = renderNodeReport(r, NOW);
    if (discrepancy) {
      expect(text).toMatch(/^DISCREPANCIES \(\d+\)$/m);
      expect(text).toContain('!!');
    } else expect(text).toContain('NO DISCREPANCIES');
  });

  it('renders sessions with state, since, prefixes and verdict', () => {
    const text = renderNodeReport(buildNodeReport('r1n1', fabric(), opts), NOW);
    expect(text).toMatch(/^tor1 +172\.20\.1\.1 +yes +Established +60m ago +1 +3 +- +ok$/m);
    expect(text).toMatch(/^10\.244\.1\.0\/24 +r1n2 +172\.20\.1\.12 +172\.20\.1\.12 +SameSubnet +ok$/m);
    expect(text).toMatch(/^v4-subnet-172-20-1-0-24-[0-9a-f]{8} +subnet:172\.20\.1\.0\/24 +IPv4 +SameSubnet +2 +0 +ok$/m);
  });
});

// ---------------------------------------------------------------------------------------------
// map

/** R racks of N nodes, each rack with its ToR; sessions in a state chosen per node. */
function bigFabric(racks: number, perRack: number, state: (r: number, n: number) => SessionStatus['state'] = () => 'Established'): FabricSnapshot {
  const s: FabricSnapshot = { nodes: [], nodeFabrics: [], segments: [], peers: [], pools: [pool('default', '10.244.0.0/16')], config: null };
  for (let r = 1; r <= racks; r++) {
    const tor = { name: `tor${r}`, address: `172.20.${r}.1` };
    s.peers.push(peer(tor.name, tor.address));
    for (let n = 1; n <= perRack; n++) {
      const name = `r${r}n${n}`;
      const cidr = `10.244.${(r - 1) * perRack + n - 1}.0/24`;
      s.nodes.push(coreNode(name, [cidr], { [RACK_LABEL]: `rack${r}`, tor: tor.name }));
      const nf = healthyNF({ name, cidr, ip: `172.20.${r}.${10 + n}`, tor, segment: `172.20.${r}.0/24` });
      const st = state(r, n);
      nf.status!.sessions![0]!.state = st;
      if (st !== 'Established') setReady(nf, 'False', 'BGPNotReady', 'session down');
      s.nodeFabrics.push(nf);
    }
  }
  return s;
}

const overlaps = (a: Box, b: Box) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
const attrs = (svg: string, cls: string) => [...svg.matchAll(new RegExp(`<[a-z]+ class="${cls}"([^>]*)>`, 'g'))].map((m) => m[1]!);
const attr = (a: string, name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(a)?.[1];

describe('map', () => {
  it('escapes names with < & " in text and attributes', () => {
    expect(xmlEscape(`a<b&c"d'e>`)).toBe('a&lt;b&amp;c&quot;d&apos;e&gt;');
    const s = fabric();
    s.peers[0]!.metadata.name = 'tor<1>&"x"';
    s.nodes[0]!.metadata.labels = { [RACK_LABEL]: 'rack "A" & <B>' };
    for (const nf of s.nodeFabrics) for (const x of nf.status?.sessions ?? []) if (x.name === 'tor1') x.name = 'tor<1>&"x"';
    const svg = renderMap(s);
    expect(svg).toContain('tor&lt;1&gt;&amp;&quot;x&quot;');
    expect(svg).toContain('data-rack="rack &quot;A&quot; &amp; &lt;B&gt;"');
    expect(svg).not.toMatch(/tor<1|"A" &|& <B>/);
    // Well-formed enough: every tag closes, no raw & outside entities.
    expect(svg.replace(/&(amp|lt|gt|quot|apos);/g, '')).not.toContain('&');
  });

  it('is a standalone SVG with xmlns, viewBox, width and height', () => {
    const svg = renderMap(fabric());
    expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" ')).toBe(true);
    const root = /<svg ([^>]*)>/.exec(svg)![1]!;
    const w = Number(attr(` ${root}`, 'width'));
    const h = Number(attr(` ${root}`, 'height'));
    expect(attr(` ${root}`, 'viewBox')).toBe(`0 0 ${w} ${h}`);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('podfabric: 4 nodes (4 ready) in 2 racks, 2 BGP peers, 4/4 sessions established');
  });

  it('colours sessions by state and nodes by Ready', () => {
    const states: SessionStatus['state'][] = ['Established', 'Active', 'Connect', 'Idle', 'OpenSent', 'Established'];
    const s = bigFabric(1, 6, (_r, n) => states[n - 1]!);
    delete nfOf(s, 'r1n6').status; // planned session, no status: Unknown
    const svg = renderMap(s);
    const lines = attrs(svg, 'session');
    expect(lines.map((a) => [attr(a, 'data-session'), attr(a, 'data-state'), attr(a, 'stroke')])).toEqual([
      ['r1n1-&gt;172.20.1.1', 'Established', SESSION_COLORS.Established],
      ['r1n2-&gt;172.20.1.1', 'Active', SESSION_COLORS.Active],
      ['r1n3-&gt;172.20.1.1', 'Connect', SESSION_COLORS.Connect],
      ['r1n4-&gt;172.20.1.1', 'Idle', SESSION_COLORS.Idle],
      ['r1n5-&gt;172.20.1.1', 'OpenSent', SESSION_COLORS.OpenSent],
      ['r1n6-&gt;172.20.1.1', 'Unknown', SESSION_COLORS.Unknown],
    ]);
    expect(SESSION_COLORS.Established).toBe('#2e7d32');
    expect(new Set([SESSION_COLORS.Established, SESSION_COLORS.Active, SESSION_COLORS.Idle, SESSION_COLORS.Unknown]).size).toBe(4);
    const nodes = [...svg.matchAll(/<g class="node" [^>]*data-node="([^"]+)"[^>]*data-ready="(\w+)">\n<title>[^\n]*\n<rect class="node-box" [^>]*fill="([^"]+)"/g)].map((m) => [m[1], m[2], m[3]]);
    expect(nodes).toEqual([
      ['r1n1', 'True', READY_COLORS.True.fill],
      ['r1n2', 'False', READY_COLORS.False.fill],
      ['r1n3', 'False', READY_COLORS.False.fill],
      ['r1n4', 'False', READY_COLORS.False.fill],
      ['r1n5', 'False', READY_COLORS.False.fill],
      ['r1n6', 'Unknown', READY_COLORS.Unknown.fill],
    ]);
  });

  it('is deterministic whatever order the apiserver lists objects in', () => {
    const a = bigFabric(3, 5, (r, n) => ((r + n) % 3 ? 'Established' : 'Idle'));
    const b = bigFabric(3, 5, (r, n) => ((r + n) % 3 ? 'Established' : 'Idle'));
    b.nodes.reverse();
    b.nodeFabrics.reverse();
    b.peers.reverse();
    expect(renderMap(b)).toBe(renderMap(a));
    expect(renderMap(a)).toBe(renderMap(a));
  });

  it.each([
    [1, 1],
    [3, 8],
    [2, 13],
    [6, 4],
    [9, 2],
  ])('lays out %i racks x %i nodes without overlap, inside the canvas, ToRs above their racks', (racks, perRack) => {
    const m = buildMapModel(bigFabric(racks, perRack));
    const L = layoutMap(m);
    const boxes = [...L.nodes.values()];
    expect(boxes).toHaveLength(racks * perRack);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) expect(overlaps(boxes[i]!, boxes[j]!)).toBe(false);
    const all = [...boxes, ...L.peers.values(), ...L.racks.map((r) => r.box), L.legend];
    for (const b of all) {
      expect(b.x).toBeGreaterThanOrEqual(0);
      expect(b.y).toBeGreaterThanOrEqual(0);
      expect(b.x + b.w).toBeLessThanOrEqual(L.width);
      expect(b.y + b.h).toBeLessThanOrEqual(L.height);
    }
    for (const r of L.racks) {
      const inside = m.nodes.filter((n) => n.rack === r.name).map((n) => L.nodes.get(n.name)!);
      for (const b of inside) expect(b.x >= r.box.x && b.y >= r.box.y && b.x + b.w <= r.box.x + r.box.w && b.y + b.h <= r.box.y + r.box.h).toBe(true);
      for (const other of L.racks) if (other !== r) expect(overlaps(r.box, other.box)).toBe(false);
      const tor = L.peers.get(`172.20.${r.name.slice(4)}.1`)!;
      expect(tor.y + tor.h).toBeLessThan(r.box.y);
      expect(tor.x >= r.box.x && tor.x + tor.w <= r.box.x + r.box.w).toBe(true);
    }
    expect(overlaps(L.legend, { x: 0, y: 0, w: L.width, h: Math.max(...all.filter((b) => b !== L.legend).map((b) => b.y + b.h)) })).toBe(false);
  });

  it('groups by rack label, else planned segment, else reported subnet', () => {
    const s = fabric();
    s.nodes[0]!.metadata.labels = { [RACK_LABEL]: 'A' };
    delete nfOf(s, 'r2n2').spec.routing;
    nfOf(s, 'r2n2').status!.l2Subnets = ['192.168.9.0/24'];
    const m = buildMapModel(s);
    expect(m.racks).toEqual(['172.20.1.0/24', '172.20.2.0/24', '192.168.9.0/24', 'A']);
    expect(m.nodes.map((n) => [n.name, n.rack])).toEqual([
      ['r1n1', 'A'],
      ['r1n2', '172.20.1.0/24'],
      ['r2n1', '172.20.2.0/24'],
      ['r2n2', '192.168.9.0/24'],
    ]);
  });

  it('clips long names so labels fit their boxes, keeping the full name in a title', () => {
    const s = bigFabric(1, 2);
    const long = `node-${'x'.repeat(80)}`;
    s.nodes[0]!.metadata.name = long;
    s.nodeFabrics[0]!.metadata.name = long;
    const svg = renderMap(s);
    expect(svg).toContain(`<title>${long} `);
    expect(svg).toMatch(/class="label node-name"[^>]*>node-x+…</);
    const box = layoutMap(buildMapModel(s)).nodes.get(long)!;
    expect(box.w).toBeLessThan(30 * 12 * 0.62 + 40);
  });

  it('draws a peer without sessions in its own group and a session to an unknown address', () => {
    const s = fabric();
    s.peers.push(peer('spare', '172.20.9.1'));
    nfOf(s, 'r1n1').status!.sessions!.push({ address: '10.0.0.1', state: 'Idle' });
    const m = buildMapModel(s);
    expect(m.peers.find((p) => p.name === 'spare')!.rack).toBeNull();
    expect(m.peers.find((p) => p.address === '10.0.0.1')).toMatchObject({ name: '10.0.0.1', asn: null, rack: '172.20.1.0/24' });
    const svg = renderMap(s);
    expect(svg).toContain('data-session="r1n1-&gt;10.0.0.1"');
    expect(svg).toContain('data-peer-name="spare"');
  });
});

describe('command line (no apiserver needed)', () => {
  const cli = async (args: string[]) => {
    let out = '';
    let err = '';
    const code = await runFabric(args, { out: (x) => (out += x), err: (x) => (err += x) });
    return { code, out, err };
  };
  it.each([
    [['--help'], 0, /^kubectl fabric: /],
    [['help'], 0, /^kubectl fabric: /],
    [[], 2, /^kubectl fabric: /],
    [['status', '--help'], 0, /^kubectl fabric status: /],
    [['node', '-h'], 0, /^kubectl fabric node NAME: /],
    [['map', '--help'], 0, /^kubectl fabric map: /],
  ])('%j prints help, exit %i', async (args, code, text) => {
    const r = await cli(args);
    expect(r.code).toBe(code);
    expect(r.out).toMatch(text);
  });
  it.each([
    [['frobnicate'], /unknown command frobnicate/],
    [['status', '-o', 'yaml'], /unknown output format yaml/],
    [['node'], /node takes exactly one node name/],
    [['node', 'a', 'b'], /node takes exactly one node name/],
    [['status', 'extra'], /status takes no arguments/],
    [['status', '--stale-after', 'soon'], /not a duration: soon/],
    [['status', '--bogus'], /Unknown option '--bogus'/],
  ])('%j is a usage error (exit 2)', async (args, msg) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.out).toBe('');
  });
});

describe('staleness follows the status heartbeat', () => {
  const hb = STATUS_HEARTBEAT_SECONDS * (1 + STATUS_HEARTBEAT_JITTER); // the longest gap between two heartbeats
  const at = (secondsAgo: number) => {
    const s = fabric();
    nfOf(s, 'r2n2').status!.lastSyncTime = ago(secondsAgo);
    return buildStatus(s, { now: NOW, staleAfterSeconds: DEFAULT_STALE_AFTER_SECONDS }).nodes.find((n) => n.name === 'r2n2')!;
  };
  it('an idle node between two late heartbeats is not stale', () => {
    expect(at(Math.floor(2 * hb) - 1).stale).toBe(false);
  });
  it('a node that missed two heartbeats is stale', () => {
    expect(at(Math.ceil(2 * hb) + 1).stale).toBe(true);
  });
});
