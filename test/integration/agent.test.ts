/**
 * The node agent against real parts: the real apiserver and controller, gobgpd sidecars, FRR ToRs and
 * kernel routes, in network namespaces pf-ag-*.
 *
 *   pf-ag-tor  (FRR AS 65100, 10.250.0.1, fd00:250::1) ─┐ bridge br0
 *   pf-ag-tor2 (FRR AS 65200, 10.250.0.2)  ─────────────┤
 *   pf-ag-n1   (gobgpd + agent, 10.250.0.11, fd00:250::11) ─┤
 *   pf-ag-n2   (gobgpd + agent, 10.250.0.12, fd00:250::12) ─┘
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Condition } from '../../operator/api/common.js';
import type { NodeFabricObj } from '../../operator/api/kinds.js';
import { createGoBgpRouter } from '../../operator/gobgp/client.js';
import { FabricController } from '../../operator/controller/controller.js';
import { MemoryEventSink } from '../../operator/kube/events.js';
import { run } from '../../operator/lib/exec.js';
import { newRegistry } from '../../operator/lib/metrics.js';
import { bgpNeighbors, startFrr, stopFrr, restartFrr, vtyshJson, type FrrRouter } from '../../hack/lab/lib/frr.js';
import { gobgpSocket, startGobgpd, stopGobgpd, waitGobgpd } from '../../hack/lab/lib/gobgpd.js';
import { addAddress, addBridge, addNamespace, addVeth, cleanupByPrefix, routesByProto, setMaster } from '../../hack/lab/lib/netns.js';
import { applyObjects, cleanCluster, createNodes, kubectl, node, testRest, waitFor } from '../support/kube.js';
import { startPodfabric, httpGet, type Proc } from '../support/procs.js';
import { API_PATH as API } from '../../operator/api/common.js';

const rest = testRest();
let controller: FabricController;
let logs: string;
const agents = new Map<string, Proc>();

const tor: FrrRouter = {
  name: 'pf-ag-tor',
  ns: 'pf-ag-tor',
  asn: 65100,
  routerId: '10.250.0.1',
  neighbors: [
    { address: '10.250.0.11', remoteAs: 64512 },
    { address: '10.250.0.12', remoteAs: 64512 },
    { address: 'fd00:250::11', remoteAs: 64512 },
  ],
};
const tor2: FrrRouter = {
  name: 'pf-ag-tor2',
  ns: 'pf-ag-tor2',
  asn: 65200,
  routerId: '10.250.0.2',
  neighbors: [
    { address: '10.250.0.11', remoteAs: 64512 },
    { address: '10.250.0.12', remoteAs: 64512, password: 'right-secret' },
  ],
};

const getNF = (name: string) => rest.get<NodeFabricObj>(`${API}/nodefabrics/${name}`).catch(() => undefined);
const cond = (o: NodeFabricObj | undefined, type: string) => (o?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);

/** The ToR's BGPPeer, with or without graceful restart (restartTime 60 s). */
const torPeer = (gr: boolean) => ({
  apiVersion: 'podfabric.io/v1alpha1',
  kind: 'BGPPeer',
  metadata: { name: 'tor' },
  spec: { peerAddress: '10.250.0.1', peerASN: 65100, timers: { holdTime: 9, keepaliveInterval: 3, connectRetry: 1 }, ...(gr ? { gracefulRestart: { enabled: true, restartTime: 60 } } : {}) },
});

function startAgent(name: string, resync = '2s'): Proc {
  const p = startPodfabric(
    ['agent', `--node=ag-${name}`, `--netns=pf-ag-${name}`, `--gobgp-api=unix://${gobgpSocket(`pf-ag-${name}`)}`, `--resync=${resync}`, '--no-cni'],
    join(logs, `agent-${name}.log`),
  );
  agents.set(name, p);
  return p;
}

async function torFib(ns: string, family: '-4' | '-6' = '-4') {
  return (await routesByProto(ns, 'bgp', family)).map((r) => `${r.dst} via ${r.gateway ?? JSON.stringify(r.nexthops)}`).sort();
}

beforeAll(async () => {
  logs = await mkdtemp(join(tmpdir(), 'pf-agent-test-'));
  await cleanupByPrefix('pf-ag-');
  await cleanCluster(rest);
  for (const ns of ['pf-ag-tor', 'pf-ag-tor2', 'pf-ag-n1', 'pf-ag-n2']) await addNamespace(ns);
  await addBridge('pf-ag-tor', 'br0');
  await addAddress('pf-ag-tor', 'br0', '10.250.0.1/24');
  await addAddress('pf-ag-tor', 'br0', 'fd00:250::1/64');
  for (const [ns, ip4, ip6] of [
    ['pf-ag-tor2', '10.250.0.2', ''],
    ['pf-ag-n1', '10.250.0.11', 'fd00:250::11'],
    ['pf-ag-n2', '10.250.0.12', 'fd00:250::12'],
  ] as const) {
    const short = ns.slice(6);
    await addVeth(ns, 'eth0', 'pf-ag-tor', `v-${short}`);
    await setMaster('pf-ag-tor', `v-${short}`, 'br0');
    await addAddress(ns, 'eth0', `${ip4}/24`);
    if (ip6) await addAddress(ns, 'eth0', `${ip6}/64`);
  }
  await startFrr(tor);
  await startFrr(tor2);
  await startGobgpd('pf-ag-n1', 'pf-ag-n1');
  await startGobgpd('pf-ag-n2', 'pf-ag-n2');
  await applyObjects([
    { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'ag-v4' }, spec: { cidr: '10.251.0.0/16' } },
    { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'ag-v6' }, spec: { cidr: 'fd00:251::/56' } },
    { apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'tor' }, spec: { peerAddress: '10.250.0.1', peerASN: 65100, timers: { holdTime: 9, keepaliveInterval: 3, connectRetry: 1 } } },
    {
      apiVersion: 'podfabric.io/v1alpha1',
      kind: 'BGPPeer',
      metadata: { name: 'tor-v6' },
      spec: { peerAddress: 'fd00:250::1', peerASN: 65100, nodeSelector: { matchLabels: { v6: 'yes' } }, timers: { holdTime: 9, keepaliveInterval: 3, connectRetry: 1 } },
    },
  ]);
  await createNodes(rest, [node('ag-n1', ['10.250.0.11', 'fd00:250::11'], { v6: 'yes' }), node('ag-n2', ['10.250.0.12', 'fd00:250::12'])]);
  controller = new FabricController({ rest, events: new MemoryEventSink(), registry: newRegistry('controller', false), resyncMs: 30_000 });
  await controller.start();
  startAgent('n1');
  startAgent('n2');
});

afterAll(async () => {
  await Promise.all([...agents.values()].map((a) => a.kill('SIGKILL')));
  await controller?.stop();
  for (const r of [tor, tor2]) await stopFrr(r.name, 'SIGKILL');
  for (const n of ['pf-ag-n1', 'pf-ag-n2']) await stopGobgpd(n, 'SIGKILL');
  await cleanupByPrefix('pf-ag-');
  await cleanCluster(rest);
  if (logs) await rm(logs, { recursive: true, force: true });
});

describe('node agent (real gobgpd, FRR, kernel)', () => {
  let n1: NodeFabricObj;
  let n2: NodeFabricObj;

  it('sessions establish, pod CIDRs reach the ToR FIB with next hop = node IP, host routes go in, status says Ready', async () => {
    n1 = await waitFor('n1 Ready', async () => ((await getNF('ag-n1'))?.status?.sessionsEstablished === 2 && cond(await getNF('ag-n1'), 'Ready')?.status === 'True' ? getNF('ag-n1') : undefined), 60_000);
    n2 = await waitFor('n2 Ready', async () => (cond(await getNF('ag-n2'), 'Ready')?.status === 'True' ? getNF('ag-n2') : undefined), 60_000);
    const [c1, c1v6] = n1.spec.podCIDRs!;
    const c2 = n2.spec.podCIDRs![0]!;
    const fib = await waitFor('ToR FIB', async () => {
      const f = await torFib('pf-ag-tor');
      return f.length === 2 ? f : undefined;
    });
    expect(fib).toEqual([`${c1} via 10.250.0.11`, `${c2} via 10.250.0.12`].sort());
    expect(await waitFor('v6 in ToR FIB', async () => ((await torFib('pf-ag-tor', '-6')).length ? torFib('pf-ag-tor', '-6') : undefined))).toEqual([`${c1v6} via fd00:250::11`]);
    // Host-gw: each node reaches the other's CIDR directly, with our protocol number.
    const r1 = await waitFor('n1 host route', async () => ((await routesByProto('pf-ag-n1', '201')).length ? routesByProto('pf-ag-n1', '201') : undefined));
    expect(r1.map((r) => [r.dst, r.gateway, r.dev])).toEqual([[c2, '10.250.0.12', 'eth0']]);
    // The agent has observed the plan's latest generation (host routes bumped it).
    n1 = await waitFor('n1 observed latest plan', async () => {
      const o = await getNF('ag-n1');
      return o && o.status?.observedGeneration === o.metadata.generation && o.status?.routesInstalled === 2 ? o : undefined;
    });
    const r1v6 = await routesByProto('pf-ag-n1', '201', '-6');
    expect(r1v6.map((r) => [r.dst, r.gateway, r.dev])).toEqual([[n2.spec.podCIDRs![1], 'fd00:250::12', 'eth0']]);
    expect(n1.status).toMatchObject({ uplink: 'eth0', l2Subnets: ['10.250.0.0/24', 'fd00:250::/64'], sessionsTotal: 2 });
    expect(n1.status!.sessions!.map((s) => [s.address, s.state])).toEqual([
      ['10.250.0.1', 'Established'],
      ['fd00:250::1', 'Established'],
    ]);
    expect(cond(n1, 'BGPReady')).toMatchObject({ status: 'True', observedGeneration: n1.metadata.generation });
    expect(cond(n1, 'RoutesReady')).toMatchObject({ status: 'True' });
    // Exactly its plan: the status counts the routes and lists no differences.
    expect(n1.status).not.toHaveProperty('routeProblems');
    expect(n1.status).not.toHaveProperty('routeProblemsTotal');
    // /readyz and /metrics on the agent.
    const port = await agents.get('n1')!.port;
    expect((await httpGet(port, '/readyz')).status).toBe(200);
    const m = (await httpGet(port, '/metrics')).body;
    expect(m).toMatch(/podfabric_agent_bgp_session_up\{[^}]*peer="10\.250\.0\.1"[^}]*\} 1/);
    expect(m).toMatch(/podfabric_agent_routes_installed\{[^}]*\} 2/);
  });

  it('a peer added to one node establishes without resetting its other session; a timer change and a removal converge too', async () => {
    const up = async () => (await bgpNeighbors('pf-ag-tor')).get('10.250.0.11')?.peerUptimeMsec ?? 0;
    const before = await up();
    await applyObjects([
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'tor2' }, spec: { peerAddress: '10.250.0.2', peerASN: 65200, nodeSelector: { matchLabels: { v6: 'yes' } }, timers: { connectRetry: 1 } } },
    ]);
    await waitFor('tor2 session on n1', async () => (await bgpNeighbors('pf-ag-tor2')).get('10.250.0.11')?.state === 'Established', 30_000);
    await waitFor('n1 status shows 3 sessions', async () => (await getNF('ag-n1'))?.status?.sessionsEstablished === 3, 30_000);
    await kubectl(['patch', 'bgppeer', 'tor2', '--type=merge', '-p', '{"spec":{"timers":{"holdTime":30,"keepaliveInterval":10}}}']);
    await waitFor('tor2 timers applied in gobgpd', async () => {
      const r = createGoBgpRouter(`unix://${gobgpSocket('pf-ag-n1')}`);
      try {
        return (await r.listPeers()).find((p) => p.config.address === '10.250.0.2')?.config.holdTime === 30;
      } finally {
        r.close();
      }
    });
    await waitFor('tor2 back up', async () => (await bgpNeighbors('pf-ag-tor2')).get('10.250.0.11')?.state === 'Established', 30_000);
    await rest.request('DELETE', `${API}/bgppeers/tor2`);
    await waitFor('tor2 session removed', async () => (await bgpNeighbors('pf-ag-tor2')).get('10.250.0.11')?.state !== 'Established', 30_000);
    // The session to the first ToR never reset through all of it.
    expect(await up()).toBeGreaterThan(before);
    expect((await bgpNeighbors('pf-ag-tor')).get('10.250.0.11')?.state).toBe('Established');
  });

  it('a wrong MD5 password: the session stays down and the condition says auth failure; the right one brings it up', async () => {
    await kubectl(['create', 'namespace', 'pf-ag-secrets'], { allowFail: true });
    await kubectl(['-n', 'pf-ag-secrets', 'create', 'secret', 'generic', 'tor2-md5', '--from-literal=password=wrong-secret']);
    await kubectl(['label', 'node', 'ag-n2', 'md5=yes']);
    await applyObjects([
      {
        apiVersion: 'podfabric.io/v1alpha1',
        kind: 'BGPPeer',
        metadata: { name: 'tor2-md5' },
        spec: { peerAddress: '10.250.0.2', peerASN: 65200, nodeSelector: { matchLabels: { md5: 'yes' } }, passwordSecretRef: { namespace: 'pf-ag-secrets', name: 'tor2-md5' }, timers: { connectRetry: 1 } },
      },
    ]);
    // The ToR dials with the right password, the node's kernel drops its SYNs (signature does not verify):
    // TCPMD5Failure grows in the node's namespace, so the agent reports proof, not a suspicion.
    const bad = await waitFor('auth failure reported', async () => (cond(await getNF('ag-n2'), 'BGPReady')?.reason === 'AuthFailure' ? getNF('ag-n2') : undefined), 60_000);
    expect(cond(bad, 'BGPReady')!.message).toMatch(/10\.250\.0\.2 \(tor2-md5\) is (Active|Connect|Idle): TCP MD5 signature mismatch.*TCPMD5Failure/);
    expect(cond(bad, 'Ready')!.status).toBe('False');
    // The password never shows up in status or logs.
    expect(JSON.stringify(bad)).not.toContain('wrong-secret');
    expect(await readFile(agents.get('n2')!.log, 'utf8')).not.toContain('wrong-secret');
    await kubectl(['-n', 'pf-ag-secrets', 'create', 'secret', 'generic', 'tor2-md5', '--from-literal=password=right-secret', '--dry-run=client', '-o', 'yaml'])
      .then((r) => kubectl(['apply', '-f', '-'], { input: r.stdout }));
    await waitFor('md5 session up with the right password', async () => (await bgpNeighbors('pf-ag-tor2')).get('10.250.0.12')?.state === 'Established', 60_000);
    await waitFor('n2 Ready again', async () => cond(await getNF('ag-n2'), 'Ready')?.status === 'True', 30_000);
  });

  it('ToR killed and restarted: sessions and routes come back, nothing is re-allocated', async () => {
    const cidrsBefore = [(await getNF('ag-n1'))!.spec.podCIDRs, (await getNF('ag-n2'))!.spec.podCIDRs];
    await stopFrr('pf-ag-tor', 'SIGKILL');
    const t0 = Date.now();
    await restartFrr('pf-ag-tor', 'pf-ag-tor');
    await waitFor('sessions and routes back', async () => {
      const nb = await bgpNeighbors('pf-ag-tor');
      return nb.get('10.250.0.11')?.state === 'Established' && nb.get('10.250.0.12')?.state === 'Established' && (await torFib('pf-ag-tor')).length === 2;
    }, 60_000);
    console.log(`ToR restart → sessions and routes back in ${Date.now() - t0} ms`);
    expect([(await getNF('ag-n1'))!.spec.podCIDRs, (await getNF('ag-n2'))!.spec.podCIDRs]).toEqual(cidrsBefore);
  });

  it('gobgpd killed and restarted: the agent re-programs it (BGP, peers, paths) as soon as its API answers', async () => {
    await stopGobgpd('pf-ag-n1', 'SIGKILL');
    await startGobgpd('pf-ag-n1', 'pf-ag-n1');
    const t0 = Date.now();
    const r = createGoBgpRouter(`unix://${gobgpSocket('pf-ag-n1')}`);
    try {
      await waitFor('re-programmed', async () => (await r.getGlobal()) !== null && (await r.listPeers()).length === 2 && (await r.listAdvertisements()).length === 2, 30_000, 20);
      console.log(`gobgpd API up → re-programmed in ${Date.now() - t0} ms`);
    } finally {
      r.close();
    }
    await waitFor('ToR learns n1 again', async () => (await torFib('pf-ag-tor')).some((l) => l.includes('10.250.0.11')), 30_000);
  });

  it('agent SIGKILLed and restarted while the ToR and the node are monitored: zero withdrawals, zero kernel routes removed', async () => {
    await waitFor('steady', async () => cond(await getNF('ag-n1'), 'Ready')?.status === 'True' && (await torFib('pf-ag-tor')).length === 2, 30_000);
    const monitor = (ns: string) => {
      const p = spawn('ip', ['-n', ns, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let text = '';
      p.stdout.on('data', (d: Buffer) => (text += d.toString()));
      return { stop: () => p.kill(), text: () => text };
    };
    const torMon = monitor('pf-ag-tor');
    const nodeMon = monitor('pf-ag-n1');
    await new Promise((r) => setTimeout(r, 300));
    const before = (await getNF('ag-n1'))!.status!.lastSyncTime;
    await agents.get('n1')!.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    startAgent('n1');
    await waitFor('restarted agent synced', async () => {
      const o = await getNF('ag-n1');
      return o?.status?.lastSyncTime !== before && cond(o, 'Ready')?.status === 'True';
    }, 30_000);
    await new Promise((r) => setTimeout(r, 2500));
    torMon.stop();
    nodeMon.stop();
    const deleted = (t: string) => t.split('\n').filter((l) => l.startsWith('Deleted'));
    expect(deleted(torMon.text()).filter((l) => l.includes('10.251.') || l.includes('fd00:251'))).toEqual([]);
    expect(deleted(nodeMon.text()).filter((l) => l.includes('proto 201'))).toEqual([]);
    expect(await torFib('pf-ag-tor')).toHaveLength(2);
    expect(await routesByProto('pf-ag-n1', '201')).toHaveLength(1);
    expect(await routesByProto('pf-ag-n1', '201', '-6')).toHaveLength(1);
  });
  /**
   * Graceful restart seen from the ToR: with GR negotiated and n1's pod CIDR in the ToR's FIB, `disrupt`
   * takes BGP on n1 down and brings it back; the ToR must have seen the Restart State and Forwarding
   * State bits (it acted as a helper) and must not have withdrawn the route from its kernel at any time.
   */
  async function expectGracefulRestart(disrupt: () => Promise<void>): Promise<void> {
    await applyObjects([torPeer(true)]);
    const nb = async () => (await vtyshJson<Record<string, { neighborCapabilities?: { gracefulRestart?: string }; bgpState?: string; gracefulRestartInfo?: { rBit?: boolean; ipv4Unicast?: { fBit?: boolean } } }>>('pf-ag-tor', 'show bgp neighbors 10.250.0.11 json'))['10.250.0.11'];
    await waitFor('GR negotiated between the ToR and n1', async () => {
      const n = await nb();
      return n?.bgpState === 'Established' && n.neighborCapabilities?.gracefulRestart === 'advertisedAndReceived';
    }, 60_000);
    const cidr = (await getNF('ag-n1'))!.spec.podCIDRs!.find((c) => !c.includes(':'))!;
    await waitFor('n1 in the ToR FIB and its status says what it advertises', async () => (await torFib('pf-ag-tor')).some((l) => l.startsWith(cidr)) && ((await getNF('ag-n1'))?.status?.advertised ?? []).includes(cidr), 30_000);
    const mon = spawn('ip', ['-n', 'pf-ag-tor', 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    mon.stdout.on('data', (d: Buffer) => (text += d.toString()));
    await new Promise((r) => setTimeout(r, 300));
    await disrupt();
    await waitFor('session back', async () => (await nb())?.bgpState === 'Established', 60_000);
    await waitFor('n1 Ready again', async () => cond(await getNF('ag-n1'), 'Ready')?.status === 'True', 30_000);
    const gr = (await nb())?.gracefulRestartInfo;
    expect(gr?.rBit).toBe(true);
    expect(gr?.ipv4Unicast?.fBit).toBe(true);
    await new Promise((r) => setTimeout(r, 3000)); // a stale-route sweep after End-of-RIB would show by now
    mon.kill();
    expect(text.split('\n').filter((l) => l.startsWith('Deleted') && l.includes(cidr))).toEqual([]);
    expect((await torFib('pf-ag-tor')).some((l) => l.startsWith(cidr))).toBe(true);
    await applyObjects([torPeer(false)]);
  }

  it('graceful restart on the BGPPeer: gobgpd crashes and comes back, the agent re-adds the peers as restarting, the ToR keeps forwarding — zero withdrawals', async () => {
    await expectGracefulRestart(async () => {
      await stopGobgpd('pf-ag-n1', 'SIGKILL');
      await startGobgpd('pf-ag-n1', 'pf-ag-n1');
    });
  });

  it('rolling upgrade: the whole agent pod (agent and gobgpd) terminated and started again, as a DaemonSet update does — graceful restart keeps the node\'s routes at the ToR, zero withdrawals', async () => {
    // The kubelet terminates both containers of the pod: SIGTERM to each (gobgpd's own shutdown sends a
    // Cease NOTIFICATION), then the new pod starts both again. The new agent process remembers nothing:
    // it learns from the NodeFabric's status that this node advertised before.
    await expectGracefulRestart(async () => {
      await Promise.all([agents.get('n1')!.kill('SIGTERM'), stopGobgpd('pf-ag-n1', 'SIGTERM')]);
      await startGobgpd('pf-ag-n1', 'pf-ag-n1');
      startAgent('n1');
    });
  });

  it('a host route deleted behind the agent\'s back comes back from the kernel watch, not from a resync', async () => {
    // An agent whose periodic resync is an hour away: only the kernel watch can bring the route back.
    await agents.get('n1')!.kill('SIGTERM');
    startAgent('n1', '1h');
    await waitFor('n1 Ready', async () => cond(await getNF('ag-n1'), 'Ready')?.status === 'True', 30_000);
    const [route] = await routesByProto('pf-ag-n1', '201');
    expect(route).toBeDefined();
    const mon = spawn('ip', ['-n', 'pf-ag-n1', 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let seen = '';
    mon.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    await new Promise((r) => setTimeout(r, 300));
    await run(['ip', '-n', 'pf-ag-n1', 'route', 'flush', 'proto', '201']);
    // Deleted, then added again by the agent (the kernel shows both).
    await waitFor('the host route deleted and back', async () => {
      const lines = seen.split('\n');
      const del = lines.findIndex((l) => l.startsWith('Deleted') && l.startsWith(`Deleted ${route!.dst}`));
      return del >= 0 && lines.slice(del + 1).some((l) => l.startsWith(`${route!.dst} via ${route!.gateway}`));
    }, 30_000, 50);
    mon.kill();
    expect((await routesByProto('pf-ag-n1', '201')).find((r) => r.dst === route!.dst)?.gateway).toBe(route!.gateway);
    await waitFor('n1 Ready', async () => cond(await getNF('ag-n1'), 'Ready')?.status === 'True', 30_000);
    await agents.get('n1')!.kill('SIGTERM');
    startAgent('n1');
  });

  it('a route the kernel refuses shows in status.routeProblems (and RoutesReady counts it) until it is installed; then the field is gone', async () => {
    const v6 = n2.spec.podCIDRs![1]!;
    // Without the on-link route to fd00:250::/64 the kernel refuses a route via fd00:250::12 (the
    // address stays, so the uplink and the plan do not change).
    await run(['ip', '-n', 'pf-ag-n1', '-6', 'route', 'del', 'fd00:250::/64', 'dev', 'eth0']);
    try {
      await run(['ip', '-n', 'pf-ag-n1', '-6', 'route', 'flush', 'proto', '201']);
      const o = await waitFor('n1 reports its v6 route missing', async () => {
        const x = await getNF('ag-n1');
        return x?.status?.routeProblems?.length ? x : undefined;
      }, 30_000);
      expect(o.status!.routeProblems).toEqual([{ destination: v6, plannedVia: 'fd00:250::12' }]);
      expect(o.status).toMatchObject({ routeProblemsTotal: 1, routesInstalled: 1 });
      expect(cond(o, 'RoutesReady')).toMatchObject({ status: 'False', reason: 'KernelError' });
      expect(cond(o, 'RoutesReady')!.message).toMatch(/^1 route\(s\) differ from the plan \(status\.routeProblems\): /);
    } finally {
      await run(['ip', '-n', 'pf-ag-n1', '-6', 'route', 'replace', 'fd00:250::/64', 'dev', 'eth0', 'proto', 'kernel', 'metric', '256']);
    }
    const healed = await waitFor('n1 has exactly its plan again', async () => {
      const x = await getNF('ag-n1');
      return x?.status?.routesInstalled === 2 && !x.status.routeProblems && cond(x, 'RoutesReady')?.status === 'True' ? x : undefined;
    }, 30_000);
    expect(healed.status).not.toHaveProperty('routeProblemsTotal');
    expect((await routesByProto('pf-ag-n1', '201', '-6')).map((r) => [r.dst, r.gateway])).toEqual([[v6, 'fd00:250::12']]);
  });
});
