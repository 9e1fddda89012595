/**
 * End to end on the whole lab (hack/lab): real apiserver, FRR spine and ToRs, gobgpd + agents, two
 * controllers, pods attached by the standard CNI plugins. Ping between pod addresses is the oracle.
 * Note: this test owns the pf-lab-* namespaces: it tears down a lab you had running.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeFabricObj } from '../../operator/api/kinds.js';
import { run } from '../../operator/lib/exec.js';
import { addNeighbors, bgpNeighbors, restartFrr, stopFrr, vtyshJson } from '../../hack/lab/lib/frr.js';
import { gobgpSocket, startGobgpd, stopGobgpd } from '../../hack/lab/lib/gobgpd.js';
import { inNs, ping, routesByProto } from '../../hack/lab/lib/netns.js';
import { stopPid, waitUntil } from '../../hack/lab/lib/daemon.js';
import {
  addNode,
  addPod,
  conflistPath,
  controllerPids,
  labNode,
  down,
  growNode,
  kubectl,
  labRest,
  nodeDir,
  removeNode,
  startAgent,
  status,
  STATE,
  up,
  waitNodesReady,
  type LabPod,
  type LabState,
} from '../../hack/lab/lab.js';
import { join } from 'node:path';
import { sourceSeenBy, traceroute } from '../support/pods.js';
import { existsSync } from 'node:fs';
import { API_PATH as API } from '../../operator/api/common.js';

let s: LabState;
/** The pod `up` made on a node (named NODE-p1, NODE-p2), or one a test added by its own name. */
const pod = (node: string, name = 'p1'): LabPod => s.pods.find((p) => p.node === node && (p.name === `${node}-${name}` || p.name === name))!;
const nf = async (name: string) => {
  const rest = labRest(s);
  try {
    return await rest.get<NodeFabricObj>(`${API}/nodefabrics/${name}`).catch(() => undefined);
  } finally {
    rest.close();
  }
};
const fibPrefixes = async (router: string) => Object.keys(await vtyshJson<Record<string, unknown>>(router, 'show ip route bgp json')).sort();

/** Pings continuously from a pod to an address until stopped; returns sent/received. */
function pinger(from: LabPod, to: string) {
  const p = spawn('ip', ['netns', 'exec', from.ns, 'ping', '-n', '-i', '0.2', '-W', '1', to], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return {
    stop: () =>
      new Promise<{ sent: number; received: number }>((resolve) => {
        p.once('exit', () => {
          const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
          resolve({ sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) });
        });
        p.kill('SIGINT');
      }),
  };
}

beforeAll(async () => {
  s = await up({ racks: 2, nodesPerRack: 2, dualStack: false, podsPerNode: 2, controllers: 2 }, { skipBuild: true });
}, 300_000);

afterAll(async () => {
  await down();
}, 120_000);

describe('podfabric lab, end to end', () => {
  it('every pod pings every other pod, within and across racks', async () => {
    const r = await status(s);
    expect(r.matrix).toHaveLength(56);
    expect(r.matrix.filter((m) => !m.ok)).toEqual([]);
    expect(r.nodes.every((n) => n.ready === 'True')).toBe(true);
  });

  it('within a rack the path is the host route (no ToR hop); across racks it goes through the ToRs', async () => {
    const a = pod('r1n1');
    const inRack = await traceroute(a, pod('r1n2').ips[0]!);
    expect(inRack).toEqual([expect.stringMatching(/^10\.244\.\d+\.1$/), '172.20.1.12', pod('r1n2').ips[0]]);
    const crossRack = await traceroute(a, pod('r2n1').ips[0]!);
    expect(crossRack).toContain('172.20.1.1');
    expect(crossRack.at(-1)).toBe(pod('r2n1').ips[0]);
  });

  it('no NAT: the receiver sees the sender pod IP', async () => {
    const src = pod('r1n1');
    const dst = pod('r2n2');
    expect(await sourceSeenBy(src, dst, dst.ips[0]!)).toBe(src.ips[0]);
  });

  it('a node added to a rack gets a block, reaches both ToRs and the spine, its rack neighbours route to it directly, pods work', async () => {
    const gatewayMac = async () => (await inNs('pf-lab-tor1', ['cat', '/sys/class/net/br0/address'])).stdout.trim();
    const macBefore = await gatewayMac();
    const n = await growNode(s, 1);
    await waitNodesReady(s, [n.name], 60_000);
    const cidr = (await nf(n.name))!.spec.podCIDRs![0]!;
    for (const router of ['pf-lab-tor1', 'pf-lab-tor2', 'pf-lab-spine']) {
      await waitUntil(`${cidr} in ${router}`, async () => (await fibPrefixes(router)).includes(cidr), 20_000);
    }
    for (const m of ['r1n1', 'r1n2']) {
      await waitUntil(`${m} host route to ${n.name}`, async () => (await routesByProto(`pf-lab-${m}`, '201')).some((r) => r.dst === cidr && r.gateway === n.ip4), 20_000);
    }
    const p = await addPod(s, n.name, 'p1');
    expect(await ping(pod('r2n2').ns, p.ips[0]!, { count: 3 })).toBe(true);
    expect(await ping(p.ns, pod('r1n1').ips[0]!, { count: 3 })).toBe(true);

    // `kubectl describe nf` tells the story: the controller's allocation, the agent's session and CNI
    // configuration on the new node, the host route on its neighbour.
    const events = async (name: string) => {
      const r = await kubectl(s, ['get', 'events', '-n', 'default', '--field-selector', `involvedObject.kind=NodeFabric,involvedObject.name=${name}`, '-o', 'json']);
      return (JSON.parse(r.stdout) as { items: Array<{ reason: string; message: string; source?: { component?: string } }> }).items;
    };
    // The controller's Allocated Event: on the NodeFabric, or — when the node joined in the same 10 s
    // window as 3 others of its pool (the lab's own nodes, moments ago) — in the pool's one summary Event
    // that names it (controller/allocation-events.ts).
    const poolSummaryNames = async (node: string) => {
      const r = await kubectl(s, ['get', 'events', '-n', 'default', '--field-selector', 'involvedObject.kind=IPPool,reason=Allocated', '-o', 'json']);
      return (JSON.parse(r.stdout) as { items: Array<{ message: string }> }).items.some((e) => e.message.includes(`${node} ${cidr}`));
    };
    await waitUntil(`${n.name} events`, async () => {
      const reasons = new Set((await events(n.name)).map((e) => e.reason));
      const allocated = reasons.has('Allocated') || (await poolSummaryNames(n.name));
      return allocated && ['SessionEstablished', 'CNIConfigWritten'].every((x) => reasons.has(x));
    }, 30_000);
    const agentEvent = (await events(n.name)).find((e) => e.reason === 'SessionEstablished')!;
    expect(agentEvent.message).toContain('172.20.1.1');
    expect(agentEvent.source?.component).toBe('podfabric-agent');
    await waitUntil('neighbour host-route event', async () => (await events('r1n1')).some((e) => e.reason === 'HostRoutesChanged' && e.message.includes(`${cidr} via ${n.ip4}`)), 20_000);

    // Removed: its block is freed and its routes disappear everywhere.
    await removeNode(s, n.name);
    await waitUntil('NodeFabric deleted', async () => !(await nf(n.name)), 20_000);
    for (const router of ['pf-lab-tor1', 'pf-lab-tor2', 'pf-lab-spine']) {
      await waitUntil(`${cidr} gone from ${router}`, async () => !(await fibPrefixes(router)).includes(cidr), 30_000);
    }
    for (const m of ['r1n1', 'r1n2']) {
      await waitUntil(`${m} host route gone`, async () => !(await routesByProto(`pf-lab-${m}`, '201')).some((r) => r.dst === cidr), 20_000);
    }
    // The rack's gateway MAC did not move with the port that went away (the nodes' ARP caches stay right).
    expect(await gatewayMac()).toBe(macBefore);
    const pools = await kubectl(s, ['get', 'ippool', 'pods-v4', '-o', 'jsonpath={.status.blocksAllocated}']);
    await waitUntil('block released in pool status', async () => (await kubectl(s, ['get', 'ippool', 'pods-v4', '-o', 'jsonpath={.status.blocksAllocated}'])).stdout === '4', 20_000);
    expect(pools.code).toBe(0);
  });

  it('a node whose BGP session cannot come up gets no CNI configuration, says why, and gets one as soon as the session is up', async () => {
    // Its ToR does not know it yet: the session stays down.
    const n = labNode(2, 7, false);
    s.nodes.push(n);
    await addNode(s, n);
    const waiting = await waitUntil('status says why', async () => {
      const o = await nf(n.name);
      return o?.status?.cni?.written === false && o.status.cni.reason?.includes('BGP') ? o : undefined;
    }, 30_000);
    expect(waiting.status!.cni!.reason).toMatch(/not written yet: waiting for BGP sessions to be established/);
    expect(existsSync(conflistPath(n.name))).toBe(false);
    // The network team adds the neighbour on the ToR: session up → configuration written → pods work.
    await addNeighbors({ name: 'pf-lab-tor2', ns: 'pf-lab-tor2', asn: 65102, routerId: '172.20.2.1', neighbors: [] }, [{ address: n.ip4, remoteAs: 64512 }]);
    await waitNodesReady(s, [n.name], 30_000);
    expect(existsSync(conflistPath(n.name))).toBe(true);
    const p = await addPod(s, n.name, 'p1');
    expect(await ping(p.ns, pod('r1n1').ips[0]!, { count: 2 })).toBe(true);
    await removeNode(s, n.name);
  });

  it("a ToR's FRR killed and restarted: sessions and cross-rack pings come back", async () => {
    await stopFrr('pf-lab-tor1', 'SIGKILL');
    const t0 = Date.now();
    await restartFrr('pf-lab-tor1', 'pf-lab-tor1');
    await waitUntil('tor1 sessions back', async () => [...(await bgpNeighbors('pf-lab-tor1')).values()].every((p) => p.state === 'Established'), 30_000);
    await waitUntil('cross-rack ping back', () => ping(pod('r1n1').ns, pod('r2n1').ips[0]!), 30_000);
    console.log(`ToR restart → sessions established and cross-rack pings back in ${Date.now() - t0} ms`);
  });

  it("a node's gobgpd killed: the agent re-programs the restarted one and cross-rack pings come back", async () => {
    await stopGobgpd('pf-lab-r2n2', 'SIGKILL');
    await startGobgpd('pf-lab-r2n2', 'pf-lab-r2n2');
    await waitUntil('r2n2 reachable across racks', () => ping(pod('r1n2').ns, pod('r2n2').ips[0]!), 30_000);
    expect(gobgpSocket('pf-lab-r2n2')).toContain('pf-lab-r2n2');
  });

  it('an agent killed and restarted: zero withdrawals at the ToR, zero host routes removed, pings never stop', async () => {
    const mon = spawn('ip', ['-n', 'pf-lab-tor2', 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let events = '';
    mon.stdout.on('data', (d: Buffer) => (events += d.toString()));
    const pg = pinger(pod('r2n1'), pod('r2n2').ips[0]!);
    await stopPid(join(nodeDir('r2n1'), 'agent.pid'), 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    await startAgent(s, s.nodes.find((n) => n.name === 'r2n1')!);
    await waitNodesReady(s, ['r2n1'], 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    const res = await pg.stop();
    mon.kill();
    expect(events.split('\n').filter((l) => l.startsWith('Deleted') && l.includes('10.244.'))).toEqual([]);
    expect(res.sent).toBeGreaterThan(5);
    expect(res.received).toBe(res.sent);
  });

  it('rolling upgrade of a node\'s agent pod (agent and gobgpd terminated and started together) with graceful restart: zero withdrawals at the ToR and the spine, pings never stop', async () => {
    const grPeer = async (on: boolean) =>
      kubectl(s, ['patch', 'bgppeer', 'tor-r2', '--type=merge', '-p', JSON.stringify({ spec: { gracefulRestart: on ? { enabled: true, restartTime: 60 } : null } })]);
    const nb = async () => (await vtyshJson<Record<string, { bgpState?: string; neighborCapabilities?: { gracefulRestart?: string }; gracefulRestartInfo?: { rBit?: boolean } }>>('pf-lab-tor2', 'show bgp neighbors 172.20.2.11 json'))['172.20.2.11'];
    await grPeer(true);
    await waitUntil('GR negotiated between tor2 and r2n1', async () => {
      const n = await nb();
      return n?.bgpState === 'Established' && n.neighborCapabilities?.gracefulRestart === 'advertisedAndReceived';
    }, 60_000, 200);
    await waitNodesReady(s, ['r2n1'], 60_000);
    const cidr = (await nf('r2n1'))!.spec.podCIDRs![0]!;
    const watch = (router: string) => {
      const m = spawn('ip', ['-n', router, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let text = '';
      m.stdout.on('data', (d: Buffer) => (text += d.toString()));
      return { stop: () => (m.kill(), text) };
    };
    const tor2 = watch('pf-lab-tor2');
    const spine = watch('pf-lab-spine');
    const pg = pinger(pod('r1n1'), pod('r2n1').ips[0]!);
    // What a DaemonSet rolling update does to the node's pod: SIGTERM to both containers, a new pod.
    await Promise.all([stopPid(join(nodeDir('r2n1'), 'agent.pid'), 'SIGTERM'), stopGobgpd('pf-lab-r2n1', 'SIGTERM')]);
    await startGobgpd('pf-lab-r2n1', 'pf-lab-r2n1');
    await startAgent(s, s.nodes.find((n) => n.name === 'r2n1')!);
    await waitUntil('session back with the Restart State bit', async () => {
      const n = await nb();
      return n?.bgpState === 'Established' && n.gracefulRestartInfo?.rBit === true;
    }, 60_000, 200);
    await waitNodesReady(s, ['r2n1'], 60_000);
    await new Promise((r) => setTimeout(r, 3000)); // a stale-route sweep after End-of-RIB would show by now
    const res = await pg.stop();
    const deleted = (t: string) => t.split('\n').filter((l) => l.startsWith('Deleted') && l.includes(cidr));
    expect(deleted(tor2.stop())).toEqual([]);
    expect(deleted(spine.stop())).toEqual([]);
    expect(res.sent).toBeGreaterThan(5);
    expect(res.received).toBe(res.sent);
    await grPeer(false);
    await waitNodesReady(s, ['r2n1'], 60_000);
  });

  it('the controller leader killed with a standby running: the standby leads, no block changes', async () => {
    const before = await Promise.all(s.nodes.map(async (n) => (await nf(n.name))?.spec.podCIDRs));
    const lease = async () => JSON.parse((await kubectl(s, ['-n', 'podfabric-system', 'get', 'lease', 'podfabric-controller', '-o', 'json'])).stdout).spec.holderIdentity as string;
    const leader = await lease();
    const pids = await controllerPids();
    const victim = pids.find((p) => p.id === leader)!;
    process.kill(victim.pid!, 'SIGKILL');
    await waitUntil('standby leads', async () => (await lease()) !== leader, 30_000, 200);
    // The new leader works: a new node gets a block.
    const n = await growNode(s, 2);
    await waitNodesReady(s, [n.name], 60_000);
    expect(await Promise.all(s.nodes.filter((x) => x.name !== n.name).map(async (x) => (await nf(x.name))?.spec.podCIDRs))).toEqual(before);
    await removeNode(s, n.name);
  });

  it('the apiserver stopped for 30 s: pings keep working; everything resyncs after', async () => {
    const pg = pinger(pod('r1n1'), pod('r2n2').ips[0]!);
    const pg2 = pinger(pod('r1n2', 'p2'), pod('r1n1', 'p2').ips[0]!);
    await run(['bash', 'hack/apiserver/stop.sh', join(STATE, 'apiserver'), '--keep-data']);
    await new Promise((r) => setTimeout(r, 30_000));
    const rs = await Promise.all([pg.stop(), pg2.stop()]);
    for (const r of rs) {
      expect(r.sent).toBeGreaterThan(100);
      expect(r.received).toBe(r.sent);
    }
    await run(['bash', 'hack/apiserver/start.sh', join(STATE, 'apiserver')], { timeoutMs: 120_000 });
    // Controller and agents pick up where they were: a node added now gets a block, sessions and routes.
    const n = await growNode(s, 1);
    await waitNodesReady(s, [n.name], 90_000);
    await removeNode(s, n.name);
    const r = await status(s);
    expect(r.matrix.filter((m) => !m.ok)).toEqual([]);
  });

  it('bad input applied with kubectl is rejected or surfaced as conditions; pings between pods never stop', async () => {
    const pg = pinger(pod('r1n1'), pod('r2n1').ips[0]!);
    const bad = [
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'bad-hostbits' }, spec: { cidr: '10.1.2.3/16' } },
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'bad-block' }, spec: { cidr: '10.9.0.0/16', blockSize: 12 } },
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'bad-asn' }, spec: { peerAddress: '172.20.1.1', peerASN: 4294967296 } },
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'bad-ip' }, spec: { peerAddress: 'tor1', peerASN: 65101 } },
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'default' }, spec: { routeProtocol: 2 } },
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'FabricConfig', metadata: { name: 'second' }, spec: {} },
      { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: 'r1n1' }, spec: { podCIDRs: ['not-a-cidr'] } },
    ];
    for (const o of bad) {
      const r = await kubectl(s, ['apply', '-f', '-'], JSON.stringify(o)).catch((e: { result?: { code: number } }) => e.result ?? { code: 1 });
      expect(r.code, JSON.stringify(o)).not.toBe(0);
    }
    // Accepted by the schema but wrong for the fabric: surfaced as conditions.
    await kubectl(s, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'overlap' }, spec: { cidr: '10.244.128.0/17' } }));
    await kubectl(s, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'podfabric.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'in-pods' }, spec: { peerAddress: '10.244.0.9', peerASN: 65001 } }));
    await waitUntil('overlap condition', async () => (await kubectl(s, ['get', 'ippool', 'overlap', '-o', 'jsonpath={.status.conditions[?(@.type=="Overlapping")].status}'])).stdout === 'True', 20_000);
    await waitUntil('peer invalid', async () => (await kubectl(s, ['get', 'bgppeer', 'in-pods', '-o', 'jsonpath={.status.conditions[?(@.type=="Valid")].reason}'])).stdout === 'AddressInPodCIDR', 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    const res = await pg.stop();
    expect(res.received).toBe(res.sent);
    expect((await status(s, { pings: false })).nodes.every((n) => n.ready === 'True')).toBe(true);
  });
});
