import { describe, expect, it } from 'vitest';
import { md5Counters, md5Delta, parseNetstat } from '../../operator/host/netstat.js';
import { agentConditions, diagnoseSession, type ObservedSession } from '../../operator/agent/status.js';

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
