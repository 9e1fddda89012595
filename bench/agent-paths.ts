/**
 * Advertised prefixes: N prefixes into a real gobgpd (namespace pf-bench-node) with an eBGP session to
 * an FRR peer (namespace pf-bench-tor); the time from the call until FRR holds them all (its summary's
 * pfxRcd), for
 *   - the agent's own BGP sync (NodeAgent.applyBgp: GetBgp, ListPeer, ListPath of the prefixes it may
 *     have originated, diff, then the GoBGP client's AddPathStream), and
 *   - the GoBGP client alone (addAdvertisements),
 * against the floor: a raw AddPathStream of the same prefixes (1,000 paths a message) on a gRPC client
 * of its own. Rounds alternate; medians. Everything is withdrawn (and gone from FRR) between rounds.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BgpWant } from '../operator/agent/bgp-apply.js';
import { createGoBgpRouter, DEFAULT_PROTO_DIR } from '../operator/gobgp/client.js';
import { bgpNeighbors, frrDir, startFrr, stopFrr, type FrrRouter } from '../hack/lab/lib/frr.js';
import { gobgpDir, gobgpLog, gobgpTarget, gobgpSocket, startGobgpd, stopGobgpd } from '../hack/lab/lib/gobgpd.js';
import { addAddress, addNamespace, addVeth, deleteNamespace } from '../hack/lab/lib/netns.js';
import { readPid } from '../hack/lab/lib/daemon.js';
import { waitFor, watchPid, type Watched } from './child.js';
import { agentUnderTest } from './agent-under-test.js';
import { percentile, round } from './stats.js';

const NODE_NS = 'pf-bench-node';
const TOR_NS = 'pf-bench-tor';
const NODE_IP = '172.30.0.2';
const TOR_IP = '172.30.0.1';
const NODE_ASN = 64512;
const TOR_ASN = 65100;
const RAW_CHUNK = 1000;

const prefix = (i: number) => `100.${64 + (i >> 8)}.${i & 255}.0/24`;

/** A raw GoBGP v3 AddPathStream client, nothing of podfabric's gRPC code. */
function rawAddPathStream(socket: string) {
  const dir = process.env.PODFABRIC_GOBGP_PROTO_DIR ?? DEFAULT_PROTO_DIR;
  const def = protoLoader.loadSync(['gobgp.proto', 'attribute.proto', 'capability.proto'].map((f) => join(dir, f)), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, json: true, includeDirs: [dir] });
  const Api = (grpc.loadPackageDefinition(def).apipb as grpc.GrpcObject).GobgpApi as grpc.ServiceClientConstructor;
  const client = new Api(`unix://${socket}`, grpc.credentials.createInsecure());
  const any = (t: string, v: object) => ({ '@type': `type.googleapis.com/apipb.${t}`, ...v });
  return {
    send(prefixes: string[], withdraw: boolean): Promise<void> {
      return new Promise((resolve, reject) => {
        const call = (client as unknown as { AddPathStream: (cb: (e: Error | null) => void) => grpc.ClientWritableStream<unknown> }).AddPathStream((e) => (e ? reject(e) : resolve()));
        for (let i = 0; i < prefixes.length; i += RAW_CHUNK) {
          call.write({
            table_type: 'GLOBAL',
            paths: prefixes.slice(i, i + RAW_CHUNK).map((p) => {
              const [addr, len] = p.split('/');
              return {
                family: { afi: 'AFI_IP', safi: 'SAFI_UNICAST' },
                nlri: any('IPAddressPrefix', { prefix: addr, prefix_len: Number(len) }),
                pattrs: [any('OriginAttribute', { origin: 0 }), any('NextHopAttribute', { next_hop: NODE_IP })],
                is_withdraw: withdraw,
              };
            }),
          });
        }
        call.end();
      });
    },
    close: () => client.close(),
  };
}

export interface PathsResult {
  prefixes: number;
  rawMs: number;
  agentSyncMs: number;
  clientMs: number;
  pathsRatio: number;
  clientPathsRatio: number;
}

export async function benchPaths(n: number, rounds = 3): Promise<PathsResult> {
  const tor: FrrRouter = { name: TOR_NS, ns: TOR_NS, asn: TOR_ASN, routerId: TOR_IP, neighbors: [{ address: NODE_IP, remoteAs: NODE_ASN, description: 'bench-node' }] };
  const watched: Watched[] = [];
  const cleanup = async () => {
    for (const w of watched) await w.stop();
    await stopGobgpd(NODE_NS, 'SIGKILL');
    await stopFrr(TOR_NS, 'SIGKILL');
    await deleteNamespace(NODE_NS);
    await deleteNamespace(TOR_NS);
    await rm(gobgpDir(NODE_NS), { recursive: true, force: true });
    await rm(frrDir(TOR_NS), { recursive: true, force: true });
  };
  await addNamespace(NODE_NS);
  await addNamespace(TOR_NS);
  const router = createGoBgpRouter(gobgpTarget(NODE_NS));
  const agent = agentUnderTest({ router });
  const raw = rawAddPathStream(gobgpSocket(NODE_NS));
  try {
    await addVeth(NODE_NS, 'eth0', TOR_NS, 'n0');
    await addAddress(NODE_NS, 'eth0', `${NODE_IP}/24`);
    await addAddress(TOR_NS, 'n0', `${TOR_IP}/24`);
    await startGobgpd(NODE_NS, NODE_NS, { logLevel: 'warn' });
    watched.push(watchPid('gobgpd', (await readPid(join(gobgpDir(NODE_NS), 'gobgpd.pid')))!, gobgpLog(NODE_NS)));
    await startFrr(tor);
    watched.push(watchPid('FRR bgpd', (await readPid(join(frrDir(TOR_NS), 'bgpd.pid')))!, join(frrDir(TOR_NS), 'frr.conf')));

    const prefixes = Array.from({ length: n }, (_, i) => prefix(i));
    const plan = (advertise: boolean): BgpWant => ({
      asn: NODE_ASN,
      routerId: NODE_IP,
      peers: [{ address: TOR_IP, name: 'tor', peerASN: TOR_ASN, localASN: NODE_ASN, holdTime: 9, keepaliveInterval: 3, connectRetry: 1 }],
      advertisements: advertise ? prefixes.map((p) => ({ prefix: p, nextHop: NODE_IP, communities: [] })) : [],
    });
    // The agent programs gobgpd (StartBgp, AddPeer) as on a fresh node; FRR dials it.
    const first = await agent.applyBgp(plan(false), []);
    if (first.bgpError) throw new Error(first.bgpError);
    const received = async () => (await bgpNeighbors(TOR_NS)).get(NODE_IP);
    await waitFor('FRR session with gobgpd Established', async () => (await received())?.state === 'Established', { timeoutMs: 60_000, everyMs: 100, watched });
    const holds = async (count: number, t0: number) => {
      await waitFor(`FRR holds ${count} prefixes`, async () => (await received())?.pfxRcd === count, { timeoutMs: 120_000, everyMs: 10, watched });
      return performance.now() - t0;
    };

    const rawMs: number[] = [];
    const syncMs: number[] = [];
    const clientMs: number[] = [];
    const withdrawnAll = () => holds(0, 0);
    for (let r = 0; r < rounds; r++) {
      let t0 = performance.now();
      await raw.send(prefixes, false);
      rawMs.push(await holds(n, t0));
      await raw.send(prefixes, true);
      await withdrawnAll();

      t0 = performance.now();
      const res = await agent.applyBgp(plan(true), []);
      if (res.bgpError) throw new Error(res.bgpError);
      syncMs.push(await holds(n, t0));
      const del = await agent.applyBgp(plan(false), prefixes);
      if (del.bgpError) throw new Error(del.bgpError);
      await withdrawnAll();

      t0 = performance.now();
      await router.addAdvertisements(prefixes.map((p) => ({ prefix: p, nextHop: NODE_IP, communities: [] })));
      clientMs.push(await holds(n, t0));
      await router.deleteAdvertisements(prefixes.map((p) => ({ prefix: p, nextHop: NODE_IP, communities: [] })));
      await withdrawnAll();
    }
    const med = (xs: number[]) => percentile(xs, 50);
    return {
      prefixes: n,
      rawMs: med(rawMs),
      agentSyncMs: med(syncMs),
      clientMs: med(clientMs),
      pathsRatio: round(med(rawMs) / med(syncMs), 2),
      clientPathsRatio: round(med(rawMs) / med(clientMs), 2),
    };
  } finally {
    raw.close();
    await agent.stop(); // closes the router
    await cleanup();
  }
}
