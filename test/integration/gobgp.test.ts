/**
 * The GoBGP Router client against a real gobgpd and real FRR ToRs in network namespaces pf-gbt-*.
 * gobgpd is driven only through the client (createGoBgpRouter); FRR and the kernel are the oracles.
 *
 *   pf-gbt-tor  FRR AS 65100  v-n1 10.250.0.1/24 fd00:250::1/64 ── eth0 10.250.0.11 fd00:250::11 ┐
 *                                                                                                 ├ pf-gbt-n1  gobgpd AS 65001
 *   pf-gbt-tor2 FRR AS 65200  v-n1 10.250.1.1/24 (MD5)           ── eth1 10.250.1.11             ┘
 *
 * Measurements are printed as "[gobgp] ..." lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GoBgpApi } from '../../operator/gobgp/api.js';
import { checkTarget, createGoBgpRouter } from '../../operator/gobgp/client.js';
import { advOf, communityToU32, pathOf, peerError, peerMessage, type RawPeer } from '../../operator/gobgp/codec.js';
import type { Advertisement, PeerConfig, PeerStatus, Router } from '../../operator/gobgp/speaker.js';
import { waitUntil } from '../../hack/lab/lib/daemon.js';
import {
  bgpNeighbors,
  frrDir,
  prefixesReceived,
  renderFrrConfig,
  setNeighborPassword,
  startFrr,
  stopFrr,
  vtyshJson,
  waitEstablished,
  waitFibRoute,
  waitNoFibRoute,
  type FrrRouter,
} from '../../hack/lab/lib/frr.js';
import { gobgpDir, gobgpTarget, killGobgpd, startGobgpd, stopGobgpd } from '../../hack/lab/lib/gobgpd.js';
import { addAddress, addNamespace, addVeth, cleanupByPrefix, routesByProto, tcpMd5Counters } from '../../hack/lab/lib/netns.js';

const NS = { tor: 'pf-gbt-tor', tor2: 'pf-gbt-tor2', n1: 'pf-gbt-n1' } as const;
const SECRET = 'pf-gbt-secret';

const tor: FrrRouter = {
  name: NS.tor,
  ns: NS.tor,
  asn: 65100,
  routerId: '10.250.0.1',
  neighbors: [
    { address: '10.250.0.11', remoteAs: 65001 },
    { address: 'fd00:250::11', remoteAs: 65001 },
  ],
};
const tor2: FrrRouter = {
  name: NS.tor2,
  ns: NS.tor2,
  asn: 65200,
  routerId: '10.250.1.1',
  neighbors: [{ address: '10.250.1.11', remoteAs: 65001, password: SECRET }],
};

const timers = { holdTime: 9, keepaliveInterval: 3, connectRetry: 1 };
const peerV4: PeerConfig = { address: '10.250.0.1', peerAsn: 65100, ...timers, description: 'tor-v4' };
const peerV6: PeerConfig = { address: 'fd00:250::1', peerAsn: 65100, ...timers };
const peerMd5: PeerConfig = { address: '10.250.1.1', peerAsn: 65200, ...timers, password: SECRET };

let router: Router;
/** Raw API access, only to look at what the Router interface deliberately hides. */
let rawApi: GoBgpApi;
const events: Array<{ at: number; s: PeerStatus }> = [];
const watchErrors: Error[] = [];
let stopWatch: (() => void) | undefined;

const log = (msg: string) => console.log(`[gobgp] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const peerOf = async (address: string) => (await router.listPeers()).find((p) => p.config.address === address);

function watch(): void {
  stopWatch?.();
  stopWatch = router.watchPeers(
    (s) => events.push({ at: Date.now(), s }),
    (e) => watchErrors.push(e),
  );
}

async function waitEvent(address: string, state: string, since: number, timeoutMs = 30_000): Promise<number> {
  const e = await waitUntil(`watch event ${address} ${state}`, async () => events.find((x) => x.at >= since && x.s.address === address && x.s.state === state), timeoutMs, 10);
  return e.at;
}

/** FRR's view of one prefix: its paths' next hops and communities. */
async function frrPaths(prefix: string): Promise<Array<{ nextHop: string; community: string }>> {
  const fam = prefix.includes(':') ? 'ipv6' : 'ipv4';
  const j = await vtyshJson<{ paths?: Array<{ community?: { string?: string }; nexthops?: Array<{ ip?: string }> }> }>(tor.name, `show bgp ${fam} unicast ${prefix} json`);
  return (j.paths ?? []).map((p) => ({ nextHop: p.nexthops?.[0]?.ip ?? '', community: p.community?.string ?? '' }));
}

/** `ip monitor route` in a namespace, to see whether a route was ever deleted during a change. */
function monitorRoutes(ns: string): { stop: () => Promise<string> } {
  const child: ChildProcess = spawn('ip', ['-n', ns, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return {
    stop: async () => {
      await sleep(200);
      child.kill('SIGTERM');
      return out;
    },
  };
}

async function cleanup(): Promise<void> {
  stopWatch?.();
  for (const r of [tor, tor2]) await stopFrr(r.name, 'SIGKILL');
  await stopGobgpd(NS.n1, 'SIGKILL');
  await cleanupByPrefix('pf-gbt-');
}

beforeAll(async () => {
  await cleanup(); // leftovers of a killed run
  for (const ns of Object.values(NS)) await addNamespace(ns);
  await addVeth(NS.n1, 'eth0', NS.tor, 'v-n1');
  await addVeth(NS.n1, 'eth1', NS.tor2, 'v-n1');
  await addAddress(NS.tor, 'v-n1', '10.250.0.1/24');
  await addAddress(NS.tor, 'v-n1', 'fd00:250::1/64');
  await addAddress(NS.tor2, 'v-n1', '10.250.1.1/24');
  await addAddress(NS.n1, 'eth0', '10.250.0.11/24');
  await addAddress(NS.n1, 'eth0', 'fd00:250::11/64');
  await addAddress(NS.n1, 'eth1', '10.250.1.11/24');
  await startFrr(tor);
  await startFrr(tor2);
  const target = await startGobgpd(NS.n1, NS.n1);
  router = createGoBgpRouter(target);
  rawApi = new GoBgpApi(target);
});

afterAll(async () => {
  router?.close();
  rawApi?.close();
  await cleanup();
  for (const r of [tor, tor2]) await rm(frrDir(r.name), { recursive: true, force: true });
  await rm(gobgpDir(NS.n1), { recursive: true, force: true });
});

describe('API target checks', () => {
  it('accepts Unix sockets and loopback TCP, refuses anything else unless allowed', () => {
    expect(checkTarget('unix:///run/gobgp.sock')).toBe('unix:///run/gobgp.sock');
    expect(checkTarget('/run/gobgp.sock')).toBe('unix:///run/gobgp.sock');
    expect(checkTarget('127.0.0.1:50051')).toBe('127.0.0.1:50051');
    expect(checkTarget('[::1]:50051')).toBe('[::1]:50051');
    expect(checkTarget('localhost:50051')).toBe('localhost:50051');
    expect(() => checkTarget('10.0.0.1:50051')).toThrow(/refusing.*not a loopback/);
    expect(() => checkTarget('[fd00::1]:50051')).toThrow(/refusing/);
    expect(() => checkTarget('0.0.0.0:50051')).toThrow(/refusing/);
    expect(() => checkTarget('gobgp:50051')).toThrow(/refusing/);
    expect(() => checkTarget('unix:relative.sock')).toThrow(/absolute/);
    expect(() => checkTarget('127.0.0.1')).toThrow(/use unix/);
    expect(checkTarget('10.0.0.1:50051', true)).toBe('10.0.0.1:50051');
    expect(() => createGoBgpRouter('192.168.1.1:50051')).toThrow(/refusing/);
  });
});

describe('codec (pure)', () => {
  it('communities: ASN:VALUE only, canonical and sorted on the wire and back', () => {
    expect(communityToU32('65000:100')).toBe(65000 * 65536 + 100);
    expect(() => communityToU32('65536:1')).toThrow(/invalid BGP community/);
    expect(() => communityToU32('no-export')).toThrow(/invalid BGP community/);
    const p = pathOf({ prefix: '10.1.0.0/24', nextHop: '10.0.0.1', communities: ['65000:20', '065000:3', '65000:20'] });
    expect(p.pattrs.find((a) => String(a['@type']).endsWith('CommunitiesAttribute'))?.communities).toEqual([65000 * 65536 + 3, 65000 * 65536 + 20]);
    expect(advOf({ nlri: p.nlri as { prefix: string; prefix_len: number }, pattrs: p.pattrs })).toEqual({ prefix: '10.1.0.0/24', nextHop: '10.0.0.1', communities: ['65000:3', '65000:20'] });
  });

  it('paths: v6 carries MP_REACH with the nlri; bad input fails before anything is sent', () => {
    const p = pathOf({ prefix: 'FD00:1::/64', nextHop: 'FD00::0B', communities: [] });
    expect(p.family).toEqual({ afi: 'AFI_IP6', safi: 'SAFI_UNICAST' });
    expect(p.pattrs[1]).toMatchObject({ '@type': 'type.googleapis.com/apipb.MpReachNLRIAttribute', next_hops: ['fd00::b'], nlris: [{ prefix: 'fd00:1::', prefix_len: 64 }] });
    expect(() => pathOf({ prefix: '10.1.0.5/24', nextHop: '10.0.0.1', communities: [] })).toThrow(/host bits/);
    expect(() => pathOf({ prefix: '10.1.0.0/24', nextHop: 'fd00::1', communities: [] })).toThrow(/not IPv4/);
    expect(() => pathOf({ prefix: '10.1.0.0/24', nextHop: 'nope', communities: [] })).toThrow(/invalid next hop/);
  });

  it('peer messages spell out what gobgpd would default (so UpdatePeer of timers is in place)', () => {
    const m = peerMessage({ address: 'FD00::1', peerAsn: 65100, holdTime: 9, keepaliveInterval: 3, connectRetry: 1 }, 65001) as Record<string, Record<string, unknown>>;
    expect(m.conf).toMatchObject({ neighbor_address: 'fd00::1', local_asn: 65001, type: 'EXTERNAL', auth_password: '' });
    expect(m.transport).toEqual({ local_address: '::' });
    const ibgp = peerMessage({ address: '10.0.0.1', peerAsn: 65001, holdTime: 9, keepaliveInterval: 3, connectRetry: 1 }, 65001) as Record<string, Record<string, unknown>>;
    expect(ibgp.conf?.type).toBe('INTERNAL');
    expect(() => peerMessage({ address: '10.0.0.1', peerAsn: 1, holdTime: 9, keepaliveInterval: 3, connectRetry: 1 }, 0)).toThrow(/start BGP first/);
  });

  it('peerError: admin state, and NOTIFICATIONs counted only since the session was last seen up', () => {
    const raw = (state: string, recv: number, sent: number, admin = 'UP'): RawPeer => ({
      state: { session_state: state, admin_state: admin, messages: { received: { notification: recv }, sent: { notification: sent } } },
    });
    expect(peerError(raw('ACTIVE', 0, 0))).toBeUndefined(); // what an MD5 mismatch looks like
    expect(peerError(raw('ESTABLISHED', 3, 3))).toBeUndefined();
    expect(peerError(raw('IDLE', 0, 2))).toMatch(/^gobgpd sent 2 NOTIFICATION/);
    expect(peerError(raw('ACTIVE', 1, 0))).toMatch(/^the peer sent 1 NOTIFICATION/);
    expect(peerError(raw('ACTIVE', 1, 0), { received: 1, sent: 0 })).toBeUndefined(); // an old Cease
    expect(peerError(raw('IDLE', 0, 0, 'DOWN'))).toMatch(/administratively down/);
    expect(peerError(raw('IDLE', 0, 0, 'PFX_CT'))).toMatch(/prefix limit/);
  });
});

describe('gobgpd through the Router client', () => {
  it('a fresh gobgpd is unconfigured; startBgp configures it', async () => {
    expect(await router.getGlobal()).toBeNull();
    expect(await router.listPeers()).toEqual([]);
    await router.startBgp({ asn: 65001, routerId: '10.250.0.11', listenPort: 179 });
    expect(await router.getGlobal()).toEqual({ asn: 65001, routerId: '10.250.0.11', listenPort: 179, listenAddresses: ['0.0.0.0', '::'] });
    watch();
  });

  it('IPv4: session up (watchPeers), prefix in the ToR kernel FIB, read back, replaced in place, withdrawn', async () => {
    const t0 = Date.now();
    await router.addPeer(peerV4);
    const tUp = await waitEvent('10.250.0.1', 'Established', t0);
    log(`IPv4 session: addPeer → Established (watchPeers) ${tUp - t0} ms`);
    await waitEstablished(tor.name, '10.250.0.11');

    const a: Advertisement = { prefix: '10.251.1.0/24', nextHop: '10.250.0.11', communities: ['65000:100'] };
    const t1 = Date.now();
    await router.addAdvertisements([a]);
    expect(await waitFibRoute(NS.tor, a.prefix, { via: '10.250.0.11' })).toEqual(['10.250.0.11']);
    log(`AddPath → prefix in the ToR kernel FIB (proto bgp): ${Date.now() - t1} ms`);
    expect(await frrPaths(a.prefix)).toEqual([{ nextHop: '10.250.0.11', community: '65000:100' }]);

    const p = await peerOf('10.250.0.1');
    expect(p?.config).toEqual(peerV4);
    expect(p?.status).toMatchObject({ address: '10.250.0.1', state: 'Established', prefixesSent: 1 });
    expect(p?.status.establishedAt).toBeInstanceOf(Date);
    expect(Math.abs(p!.status.establishedAt!.getTime() - tUp)).toBeLessThan(2000);
    expect(p?.status.lastError).toBeUndefined();
    expect(await router.listAdvertisements()).toEqual([a]);

    // Same prefix, new next hop and communities: gobgpd replaces the path; the ToR never deletes the route.
    const mon = monitorRoutes(NS.tor);
    await sleep(100);
    const b: Advertisement = { prefix: '10.251.1.0/24', nextHop: '10.250.0.12', communities: ['65000:300', '65000:200'] };
    const t2 = Date.now();
    await router.addAdvertisements([b]);
    await waitFibRoute(NS.tor, a.prefix, { via: '10.250.0.12' });
    log(`re-AddPath same prefix, new next hop → ToR FIB updated: ${Date.now() - t2} ms`);
    const monitored = await mon.stop();
    log(`ip monitor route on the ToR during the replace: ${JSON.stringify(monitored.trim())}`);
    expect(monitored).toMatch(/10\.251\.1\.0\/24 .*via 10\.250\.0\.12/);
    expect(monitored).not.toMatch(/Deleted 10\.251\.1\.0\/24/);
    expect(await frrPaths(a.prefix)).toEqual([{ nextHop: '10.250.0.12', community: '65000:200 65000:300' }]);
    expect(await router.listAdvertisements()).toEqual([{ ...b, communities: ['65000:200', '65000:300'] }]);

    const t3 = Date.now();
    await router.deleteAdvertisements([b]);
    await waitNoFibRoute(NS.tor, a.prefix);
    log(`DeletePath → prefix gone from the ToR kernel FIB: ${Date.now() - t3} ms`);
    expect(await router.listAdvertisements()).toEqual([]);
    // Deleting what is not there is a no-op.
    await router.deleteAdvertisements([b]);
  });

  it('IPv6: session over v6, v6 prefix (MP_REACH next hop) in the ToR FIB', async () => {
    const t0 = Date.now();
    await router.addPeer({ ...peerV6, address: 'FD00:250:0::1' }); // any spelling; read back canonical
    const tUp = await waitEvent('fd00:250::1', 'Established', t0);
    log(`IPv6 session: addPeer → Established ${tUp - t0} ms`);
    const a: Advertisement = { prefix: 'fd00:251:1::/64', nextHop: 'fd00:250::11', communities: [] };
    const t1 = Date.now();
    await router.addAdvertisements([{ ...a, prefix: 'FD00:251:1:0::/64' }]);
    expect(await waitFibRoute(NS.tor, a.prefix, { via: 'fd00:250::11' })).toEqual(['fd00:250::11']);
    log(`AddPath v6 → prefix in the ToR kernel FIB: ${Date.now() - t1} ms`);
    expect(await frrPaths(a.prefix)).toEqual([{ nextHop: 'fd00:250::11', community: '' }]);
    expect((await peerOf('fd00:250::1'))?.config).toEqual(peerV6);
    expect(await router.listAdvertisements()).toEqual([a]);
    // The v4 session does not carry the v6 prefix (each peer has only its own address family).
    expect((await peerOf('10.250.0.1'))?.status.prefixesSent).toBe(0);
    expect((await peerOf('fd00:250::1'))?.status.prefixesSent).toBe(1);
    // A mixed-family advertisement is refused before anything is sent.
    await expect(router.addAdvertisements([{ prefix: 'fd00:251:2::/64', nextHop: '10.250.0.11', communities: [] }])).rejects.toThrow(/not IPv6/);
  });

  it('updating one peer\'s hold time resets neither that session nor the other one', async () => {
    const before = await router.listPeers();
    const frrBefore = await bgpNeighbors(tor.name);
    const up4 = before.find((p) => p.config.address === '10.250.0.1')!.status.establishedAt!.getTime();
    const up6 = before.find((p) => p.config.address === 'fd00:250::1')!.status.establishedAt!.getTime();
    const since = Date.now();
    await router.updatePeer({ ...peerV4, holdTime: 30, keepaliveInterval: 10 });
    // A reset would show within a second (DeletePeer sends a Cease; FRR drops the session at once).
    await sleep(2500);
    const after = await router.listPeers();
    const p4 = after.find((p) => p.config.address === '10.250.0.1')!;
    const p6 = after.find((p) => p.config.address === 'fd00:250::1')!;
    expect(p4.config).toEqual({ ...peerV4, holdTime: 30, keepaliveInterval: 10 });
    expect(p4.status.state).toBe('Established');
    expect(p6.status.state).toBe('Established');
    expect(p4.status.establishedAt!.getTime()).toBe(up4);
    expect(p6.status.establishedAt!.getTime()).toBe(up6);
    expect(events.filter((e) => e.at >= since)).toEqual([]);
    const frrAfter = await bgpNeighbors(tor.name);
    for (const addr of ['10.250.0.11', 'fd00:250::11']) {
      expect(frrAfter.get(addr)?.connectionsEstablished).toBe(frrBefore.get(addr)?.connectionsEstablished);
      expect(frrAfter.get(addr)?.connectionsDropped).toBe(frrBefore.get(addr)?.connectionsDropped);
    }
    // gobgpd keeps the negotiated hold time of the running session; the new one is for the next OPEN.
    const raw = await rawApi.list<{ peer: { timers: { config: { hold_time: number }; state: { negotiated_hold_time: number } } } }>('ListPeer', { address: '10.250.0.1' });
    expect(raw[0]?.peer.timers.config.hold_time).toBe(30);
    expect(raw[0]?.peer.timers.state.negotiated_hold_time).toBe(9);
    log('updatePeer(hold time 9 → 30): in place, no session reset; negotiated hold time stays 9 until the next OPEN');
    await router.updatePeer(peerV4);
    expect((await peerOf('10.250.0.1'))?.config).toEqual(peerV4);
  });

  it('MD5: same password → Established (password read back); wrong password → stuck, nothing but the state to see', async () => {
    const t0 = Date.now();
    await router.addPeer(peerMd5);
    const tUp = await waitEvent('10.250.1.1', 'Established', t0);
    log(`MD5 session: addPeer → Established ${tUp - t0} ms`);
    const ok = await peerOf('10.250.1.1');
    expect(ok?.config.password).toBe(SECRET); // ListPeer returns the password in clear text
    expect(ok?.config).toEqual(peerMd5);
    const v4Up = (await peerOf('10.250.0.1'))!.status.establishedAt!.getTime();

    // Wrong password on the node: updatePeer = DeletePeer + AddPeer for that peer only.
    const md5Before = await tcpMd5Counters(NS.n1);
    const since = Date.now();
    await router.updatePeer({ ...peerMd5, password: 'wrong-secret' });
    const seen = new Map<string, number>();
    let last: { config: PeerConfig; status: PeerStatus } | undefined;
    while (Date.now() - since < 8000) {
      last = await peerOf('10.250.1.1');
      if (last) seen.set(last.status.state, (seen.get(last.status.state) ?? 0) + 1);
      await sleep(100);
    }
    const frrSide = (await bgpNeighbors(tor2.name)).get('10.250.1.11');
    const md5After = await tcpMd5Counters(NS.n1);
    log(
      `wrong MD5 for 8 s: gobgpd states seen ${JSON.stringify(Object.fromEntries(seen))}; last status ${JSON.stringify(last?.status)}; FRR state ${frrSide?.state}; ` +
        `node kernel TcpExt MD5 counters ${JSON.stringify(md5Before)} → ${JSON.stringify(md5After)}`,
    );
    expect(md5After.failure).toBeGreaterThan(md5Before.failure); // the only direct evidence
    expect(seen.has('Established')).toBe(false);
    expect([...seen.keys()].every((s) => ['Idle', 'Connect', 'Active'].includes(s))).toBe(true);
    expect(last?.status.lastError).toBeUndefined(); // no OPEN, no NOTIFICATION: the kernel drops the segments
    expect(last?.config.password).toBe('wrong-secret');
    expect(frrSide?.state).not.toBe('Established');
    expect(events.filter((e) => e.at >= since && e.s.address === '10.250.1.1').map((e) => e.s.state)).not.toContain('Established');
    // The other sessions were not touched.
    expect((await peerOf('10.250.0.1'))!.status).toMatchObject({ state: 'Established', establishedAt: new Date(v4Up) });

    // Right ASN check: a wrong peer ASN is visible as NOTIFICATIONs in lastError.
    await router.updatePeer({ ...peerMd5, peerAsn: 65299 });
    const bad = await waitUntil('lastError after an ASN mismatch', async () => (await peerOf('10.250.1.1'))?.status.lastError, 20_000, 100);
    log(`wrong peer ASN: lastError = ${bad}`);
    expect(bad).toMatch(/gobgpd sent \d+ NOTIFICATION/);

    // Password fixed on both sides again.
    const t1 = Date.now();
    await router.updatePeer(peerMd5);
    await waitEvent('10.250.1.1', 'Established', t1);
    log(`MD5 password fixed → Established again in ${Date.now() - t1} ms`);
    expect((await peerOf('10.250.1.1'))?.status.lastError).toBeUndefined();

    // Password removed on the ToR only: same silent failure seen from the other side.
    await setNeighborPassword(tor2, '10.250.1.11', undefined);
    await waitUntil('session down after the ToR dropped its password', async () => (await peerOf('10.250.1.1'))?.status.state !== 'Established', 30_000, 100);
    await setNeighborPassword(tor2, '10.250.1.11', SECRET);
    await waitUntil('session back', async () => (await peerOf('10.250.1.1'))?.status.state === 'Established', 30_000, 100);
  });

  it('a batch of 1000 prefixes (AddPathStream) reaches the ToR, and is withdrawn as a batch', async () => {
    const batch: Advertisement[] = Array.from({ length: 1000 }, (_, i) => ({
      prefix: `10.252.${i >> 4}.${(i & 15) * 16}/28`,
      nextHop: '10.250.0.11',
      communities: ['65000:1'],
    }));
    const base = await prefixesReceived(tor.name, '10.250.0.11');
    const t0 = Date.now();
    await router.addAdvertisements(batch);
    const tSent = Date.now();
    await waitUntil('1000 prefixes received by the ToR', async () => (await prefixesReceived(tor.name, '10.250.0.11')) === base + 1000, 60_000, 50);
    const tFrr = Date.now();
    await waitUntil('1000 routes in the ToR kernel FIB', async () => (await routesByProto(NS.tor, 'bgp')).filter((r) => r.dst.startsWith('10.252.')).length === 1000, 60_000, 50);
    log(`1000 prefixes: AddPathStream ${tSent - t0} ms, in FRR's RIB after ${tFrr - t0} ms, in the ToR kernel FIB after ${Date.now() - t0} ms`);
    const listed = await router.listAdvertisements();
    expect(listed.filter((a) => a.prefix.startsWith('10.252.'))).toHaveLength(1000);
    // Looked up by prefix (what the agent does): exactly the ones asked for, in either family, no more.
    const some = [batch[0]!.prefix, batch[999]!.prefix, '10.253.0.0/24', 'fd00:251:1::/64'];
    expect((await router.listAdvertisements(some)).map((a) => a.prefix).sort()).toEqual([batch[0]!.prefix, batch[999]!.prefix, 'fd00:251:1::/64'].sort());
    expect(await router.listAdvertisements(['10.253.0.0/24'])).toEqual([]);
    expect(await router.listAdvertisements([])).toEqual([]);
    expect((await peerOf('10.250.0.1'))?.status.prefixesSent).toBe(base + 1000);

    const t1 = Date.now();
    await router.deleteAdvertisements(batch);
    const tDel = Date.now();
    await waitUntil('ToR has none of them', async () => (await prefixesReceived(tor.name, '10.250.0.11')) === base, 60_000, 50);
    await waitUntil('ToR FIB has none of them', async () => (await routesByProto(NS.tor, 'bgp')).filter((r) => r.dst.startsWith('10.252.')).length === 0, 60_000, 50);
    log(`1000 withdrawals: AddPathStream(is_withdraw) ${tDel - t1} ms, gone from the ToR FIB after ${Date.now() - t1} ms`);
    expect((await router.listAdvertisements()).filter((a) => a.prefix.startsWith('10.252.'))).toEqual([]);
    // The v6 prefix of the earlier test is untouched.
    expect(await router.listAdvertisements()).toEqual([{ prefix: 'fd00:251:1::/64', nextHop: 'fd00:250::11', communities: [] }]);
  });

  it('deletePeer removes the session (the ToR sees it go); deleting an unknown peer is a no-op', async () => {
    await router.deletePeer('FD00:250::1');
    await router.deletePeer('fd00:250::1');
    expect((await router.listPeers()).map((p) => p.config.address).sort()).toEqual(['10.250.0.1', '10.250.1.1']);
    await waitUntil('FRR sees the v6 session down', async () => (await bgpNeighbors(tor.name)).get('fd00:250::11')?.state !== 'Established', 15_000, 50);
    await waitNoFibRoute(NS.tor, 'fd00:251:1::/64');
  });

  it('gobgpd SIGKILLed and restarted: the watch reports it, getGlobal() is null (unconfigured), the client reconnects by itself', async () => {
    const errorsBefore = watchErrors.length;
    await killGobgpd(NS.n1);
    await waitUntil('watchPeers onError', async () => watchErrors.length > errorsBefore, 10_000, 10);
    log(`watch error after SIGKILL: ${watchErrors.at(-1)?.message}`);
    await expect(router.getGlobal()).rejects.toThrow(/UNAVAILABLE/);
    const t0 = Date.now();
    await startGobgpd(NS.n1, NS.n1);
    expect(await router.getGlobal()).toBeNull(); // same client object, reconnected
    log(`gobgpd restart → API answering (unconfigured) in ${Date.now() - t0} ms`);
    expect(await router.listPeers()).toEqual([]);
    expect(await router.listAdvertisements()).toEqual([]);

    // Re-programming brings the session and the route back.
    const t1 = Date.now();
    watch();
    await router.startBgp({ asn: 65001, routerId: '10.250.0.11', listenPort: 179 });
    await router.addPeer(peerV4);
    await router.addAdvertisements([{ prefix: '10.251.1.0/24', nextHop: '10.250.0.11', communities: [] }]);
    await waitFibRoute(NS.tor, '10.251.1.0/24', { via: '10.250.0.11' });
    log(`re-programmed after restart: prefix back in the ToR FIB in ${Date.now() - t1} ms`);
    expect(gobgpTarget(NS.n1)).toMatch(/^unix:\/\//);
  });
});

// Keep the renderer honest: what the ToR got is what the lab builds.
describe('FRR config builder', () => {
  it('renders the ToR essentials', () => {
    const c = renderFrrConfig({ ...tor2, neighbors: [...tor2.neighbors, { address: 'fd00::11', remoteAs: 65001, passive: true }], redistributeConnected: true });
    expect(c).toContain('no bgp ebgp-requires-policy');
    expect(c).toContain('bgp bestpath as-path multipath-relax');
    expect(c).toContain(' neighbor 10.250.1.11 password pf-gbt-secret');
    expect(c).toContain(' neighbor 10.250.1.11 timers connect 1');
    expect(c).toContain(' neighbor fd00::11 passive');
    expect(c).toMatch(/address-family ipv6 unicast\n  maximum-paths 16\n  redistribute connected\n  neighbor fd00::11 activate/);
  });
});
