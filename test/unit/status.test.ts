import { describe, expect, it } from 'vitest';
import { md5Counters, md5Delta, parseNetstat } from '../../operator/host/netstat.js';
import { agentConditions, diagnoseSession, type ObservedSession } from '../../operator/agent/status.js';
import { buildReport, routeProblems, StatusHeartbeat } from '../../operator/agent/report.js';
import { MAX_ROUTE_PROBLEMS, type NodeFabricSpec } from '../../operator/api/nodefabric.js';

const NETSTAT = [
  'TcpExt: SyncookiesSent SyncookiesRecv TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure TCPAckCompressed',
  'TcpExt: 0 0 3 1 17 9',
  'IpExt: InNoRoutes InTruncatedPkts',
  'IpExt: 0 2',
  '',
].join('\n');

describe('kernel MD5 counters (/proc/net/netstat)', () => {
  it('parses every section into prefix.name → value', () => {
    const m = parseNetstat(NETSTAT);
    expect(m.get('TcpExt.TCPMD5Failure')).toBe(17);
    expect(m.get('TcpExt.TCPAckCompressed')).toBe(9);
    expect(m.get('IpExt.InTruncatedPkts')).toBe(2);
    expect(md5Counters(m)).toEqual({ failure: 17, notFound: 3, unexpected: 1 });
  });

  it.each([
    { name: 'a kernel without the counters', text: 'TcpExt: SyncookiesSent\nTcpExt: 0\n' },
    { name: 'mismatched header and values are skipped', text: 'TcpExt: TCPMD5NotFound TCPMD5Unexpected TCPMD5Failure\nTcpExt: 1 2\n' },
    { name: 'empty', text: '' },
  ])('null for $name', ({ text }) => expect(md5Counters(parseNetstat(text))).toBeNull());

  it('reports growth, never negative (a re-created namespace starts from zero)', () => {
    expect(md5Delta({ failure: 5, notFound: 1, unexpected: 0 }, { failure: 9, notFound: 1, unexpected: 2 })).toEqual({ failure: 4, notFound: 0, unexpected: 2 });
    expect(md5Delta({ failure: 5, notFound: 1, unexpected: 0 }, { failure: 0, notFound: 0, unexpected: 0 })).toEqual({ failure: 0, notFound: 0, unexpected: 0 });
  });

  it('reads this machine\'s counters (the kernel here reports them)', async () => {
    const { readMd5Counters } = await import('../../operator/host/netstat.js');
    const c = await readMd5Counters();
    expect(c).not.toBeNull();
    expect(c!.failure).toBeGreaterThanOrEqual(0);
  });
});

const s = (o: Partial<ObservedSession>): ObservedSession => ({ address: '10.0.0.1', name: 'tor', state: 'Active', passwordSet: false, connectRetry: 5, downForMs: 1000, ...o });
const none = { failure: 0, notFound: 0, unexpected: 0 };

describe('diagnoseSession', () => {
  it.each([
    { name: 'established', in: s({ state: 'Established', md5: { ...none, failure: 3 } }), auth: undefined, hint: /^established$/ },
    { name: 'wrong password: signatures fail to verify', in: s({ passwordSet: true, md5: { ...none, failure: 4 } }), auth: 'AuthFailure', hint: /TCP MD5 signature mismatch.*4 segment.*TCPMD5Failure/ },
    { name: 'password here, none on the router', in: s({ passwordSet: true, md5: { ...none, notFound: 2 } }), auth: 'AuthFailure', hint: /router sends no TCP MD5 signature.*TCPMD5NotFound \+2/ },
    { name: 'router signs, no password here', in: s({ md5: { ...none, unexpected: 6 } }), auth: 'AuthFailure', hint: /signs its segments.*TCPMD5Unexpected \+6.*no passwordSecretRef/ },
    { name: 'evidence beats a generic last error', in: s({ passwordSet: true, lastError: 'connection reset', md5: { ...none, failure: 1 } }), auth: 'AuthFailure', hint: /signature mismatch/ },
    { name: 'failures without a password here are not ours to blame', in: s({ md5: { ...none, failure: 9 }, downForMs: 60_000 }), auth: undefined, hint: /does not answer on TCP 179/ },
    { name: 'password set, long down, no counter growth → suspected', in: s({ passwordSet: true, downForMs: 60_000, md5: none }), auth: 'AuthFailureSuspected', hint: /auth failure suspected/ },
    { name: 'password set, long down, counters unreadable → suspected', in: s({ passwordSet: true, downForMs: 60_000 }), auth: 'AuthFailureSuspected', hint: /no TCP session for 60s/ },
    { name: 'fresh session: connecting', in: s({}), auth: undefined, hint: /is Active: connecting$/ },
    { name: 'last error shown', in: s({ state: 'Idle', lastError: 'hold timer expired' }), auth: undefined, hint: /is Idle: hold timer expired/ },
  ])('$name', ({ in: input, auth, hint }) => {
    const d = diagnoseSession(input);
    expect(d.auth).toBe(auth);
    expect(d.hint).toMatch(hint);
  });
});

describe('agentConditions: BGPReady reason', () => {
  const base = { planned: true, peersPlanned: 2, routesWanted: 0, routesMissing: [], routeErrors: [], uplinkFound: true };
  it.each([
    { name: 'proof wins over suspicion', sessions: [s({ address: 'a', passwordSet: true, md5: { ...none, failure: 1 } }), s({ address: 'b', passwordSet: true, downForMs: 60_000 })], reason: 'AuthFailure' },
    { name: 'suspicion over plain down', sessions: [s({ address: 'a', passwordSet: true, downForMs: 60_000 }), s({ address: 'b' })], reason: 'AuthFailureSuspected' },
    { name: 'plain down', sessions: [s({ address: 'a' }), s({ address: 'b', state: 'Established' })], reason: 'SessionsDown' },
    { name: 'all up', sessions: [s({ address: 'a', state: 'Established' }), s({ address: 'b', state: 'Established' })], reason: 'Established' },
  ])('$name', ({ sessions, reason }) => {
    const c = agentConditions({ ...base, sessions });
    expect(c.find((x) => x.type === 'BGPReady')!.reason).toBe(reason);
    expect(c.find((x) => x.type === 'Ready')!.status).toBe(reason === 'Established' ? 'True' : 'False');
  });
});

describe('agentConditions: RoutesReady names the count of route problems', () => {
  const base = { planned: true, peersPlanned: 1, sessions: [s({ address: 'a', state: 'Established' })], routesWanted: 3, routesMissing: [], routeErrors: [], uplinkFound: true };
  it.each([
    { name: 'exactly the plan', o: {}, reason: 'Installed', message: /^3 host route\(s\) installed$/ },
    { name: 'missing routes', o: { routesMissing: ['10.244.2.0/24', '10.244.3.0/24'], routeProblems: 2 }, reason: 'Missing', message: /^2 route\(s\) differ from the plan \(status\.routeProblems\): 2 route\(s\) not in the kernel: 10\.244\.2\.0\/24, 10\.244\.3\.0\/24$/ },
    { name: 'a kernel error', o: { routeErrors: ['add 10.244.2.0/24 via 10.0.1.12: Nexthop has invalid gateway'], routeProblems: 1 }, reason: 'KernelError', message: /^1 route\(s\) differ from the plan \(status\.routeProblems\): add 10\.244\.2\.0\/24/ },
    { name: 'no uplink', o: { uplinkFound: false, routeProblems: 3 }, reason: 'NoUplink', message: /^3 route\(s\) differ from the plan \(status\.routeProblems\): no interface holds/ },
    { name: 'a route of ours left over, nothing missing: still Installed, the count named', o: { routeProblems: 1 }, reason: 'Installed', message: /^1 route\(s\) differ from the plan \(status\.routeProblems\): 3 host route\(s\) installed$/ },
    { name: 'segments not known yet: Unknown, even without an uplink', o: { routesUnknown: true, uplinkFound: false }, reason: 'SegmentsNotKnown', message: /not known yet.*its 3 host route\(s\) in the kernel are left as they are$/ },
  ])('$name', ({ o, reason, message }) => {
    const c = agentConditions({ ...base, ...o }).find((x) => x.type === 'RoutesReady')!;
    expect(c.reason).toBe(reason);
    expect(c.message).toMatch(message);
  });
});

describe("routeProblems: where the kernel differs from the node's L2Segment routes", () => {
  const plan = (destination: string, via: string) => ({ destination, via });
  const kern = (dst: string, via: string, dev = 'eth0') => ({ dst, via, dev });
  it.each([
    { name: 'exactly the plan: none', planned: [plan('10.244.2.0/24', '10.0.1.12')], installed: [kern('10.244.2.0/24', '10.0.1.12')], want: [] },
    { name: 'nothing planned, nothing installed: none', planned: [], installed: [], want: [] },
    { name: 'a planned route missing: no installedVia', planned: [plan('10.244.2.0/24', '10.0.1.12')], installed: [], want: [{ destination: '10.244.2.0/24', plannedVia: '10.0.1.12' }] },
    { name: 'a route of ours not planned: no plannedVia', planned: [], installed: [kern('10.244.9.0/24', '10.0.1.99')], want: [{ destination: '10.244.9.0/24', installedVia: '10.0.1.99' }] },
    { name: 'another next hop: both', planned: [plan('10.244.2.0/24', '10.0.1.12')], installed: [kern('10.244.2.0/24', '10.0.1.13')], want: [{ destination: '10.244.2.0/24', plannedVia: '10.0.1.12', installedVia: '10.0.1.13' }] },
    { name: 'the planned next hop and another one: the other is named', planned: [plan('10.244.2.0/24', '10.0.1.12')], installed: [kern('10.244.2.0/24', '10.0.1.12'), kern('10.244.2.0/24', '10.0.1.14', 'eth1')], want: [{ destination: '10.244.2.0/24', plannedVia: '10.0.1.12', installedVia: '10.0.1.14' }] },
    { name: 'IPv6 written differently is the same route', planned: [plan('fd00:10:244:2:0::/64', 'FD00:20:1:0:0:0:0:12')], installed: [kern('fd00:10:244:2::/64', 'fd00:20:1::12')], want: [] },
    { name: 'canonical forms in the report', planned: [plan('fd00:10:244:2:0::/64', 'FD00:20:1:0:0:0:0:12')], installed: [], want: [{ destination: 'fd00:10:244:2::/64', plannedVia: 'fd00:20:1::12' }] },
    {
      name: 'ordered by destination: v4 numerically, then v6',
      planned: [plan('fd00:10:244:2::/64', 'fd00:20:1::12'), plan('10.244.10.0/24', '10.0.1.20'), plan('10.244.2.0/24', '10.0.1.12')],
      installed: [kern('10.244.3.0/24', '10.0.1.13')],
      want: [
        { destination: '10.244.2.0/24', plannedVia: '10.0.1.12' },
        { destination: '10.244.3.0/24', installedVia: '10.0.1.13' },
        { destination: '10.244.10.0/24', plannedVia: '10.0.1.20' },
        { destination: 'fd00:10:244:2::/64', plannedVia: 'fd00:20:1::12' },
      ],
    },
  ])('$name', ({ planned, installed, want }) => {
    expect(routeProblems(planned, installed)).toEqual({ problems: want, total: want.length });
  });

  it(`lists at most ${MAX_ROUTE_PROBLEMS}, the first by destination, and counts them all`, () => {
    const planned = Array.from({ length: 300 }, (_, i) => plan(`10.${244 + (i >> 8)}.${i & 255}.0/24`, '10.0.1.12')).reverse();
    const r = routeProblems(planned, []);
    expect(r.total).toBe(300);
    expect(r.problems).toHaveLength(MAX_ROUTE_PROBLEMS);
    expect(r.problems[0]!.destination).toBe('10.244.0.0/24');
    expect(r.problems.at(-1)!.destination).toBe(`10.244.${MAX_ROUTE_PROBLEMS - 1}.0/24`);
  });
});

describe('buildReport: routes as a count and the differences only', () => {
  const spec: NodeFabricSpec = {};
  const planned = [{ destination: '10.244.2.0/24', via: '10.0.1.12', node: 'n2' }];
  const report = (installed: Array<{ dst: string; via: string; dev: string }>) => buildReport({ generation: 1, spec, planned, uplinks: new Map(), observed: [], live: [], installed });
  it('exactly the plan: routesInstalled, no routeProblems, no per-route list', () => {
    const r = report([{ dst: '10.244.2.0/24', via: '10.0.1.12', dev: 'eth0' }]);
    expect(r.routesInstalled).toBe(1);
    expect(Object.keys(r).filter((k) => k.startsWith('route')).sort()).toEqual(['routesInstalled']);
  });
  it('the planned routes not known yet (segments still listing): no routeProblems, whatever the kernel holds', () => {
    const r = buildReport({ generation: 1, spec, planned: undefined, uplinks: new Map(), observed: [], live: [], installed: [{ dst: '10.244.9.0/24', via: '10.0.1.99', dev: 'eth0' }] });
    expect(r.routesInstalled).toBe(1);
    expect(r).not.toHaveProperty('routeProblems');
    expect(r).not.toHaveProperty('routeProblemsTotal');
  });
  it('a difference: listed with its total', () => {
    const r = report([{ dst: '10.244.2.0/24', via: '10.0.1.13', dev: 'eth0' }]);
    expect(r).toMatchObject({ routesInstalled: 1, routeProblems: [{ destination: '10.244.2.0/24', plannedVia: '10.0.1.12', installedVia: '10.0.1.13' }], routeProblemsTotal: 1 });
  });
  it('the write signature changes when the problems do (a device the status does not show does not count)', () => {
    const sig = (installed: Array<{ dst: string; via: string; dev: string }>) => StatusHeartbeat.signature('uid', report(installed), []);
    const good = sig([{ dst: '10.244.2.0/24', via: '10.0.1.12', dev: 'eth0' }]);
    expect(sig([{ dst: '10.244.2.0/24', via: '10.0.1.12', dev: 'eth1' }])).toBe(good);
    expect(sig([{ dst: '10.244.2.0/24', via: '10.0.1.13', dev: 'eth0' }])).not.toBe(good);
    expect(sig([{ dst: '10.244.2.0/24', via: '10.0.1.13', dev: 'eth0' }])).not.toBe(sig([{ dst: '10.244.2.0/24', via: '10.0.1.14', dev: 'eth0' }]));
  });
});
