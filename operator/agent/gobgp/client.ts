/**
 * GoBGP v3 gRPC API (package apipb, service GobgpApi) behind the Router interface.
 * The .proto files are loaded at run time from Debian's golang-github-osrg-gobgp-dev (or
 * PODFABRIC_GOBGP_PROTO_DIR); all three (gobgp, attribute, capability) are needed or Any-packed NLRI
 * silently encode empty.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { normalizeCidr, normalizeIP, parseCidr, parseIP } from '../../lib/ip.js';
import type { Advertisement, BgpGlobalConfig, PeerConfig, PeerStatus, Router, SessionState } from '../router.js';

export const DEFAULT_PROTO_DIR = '/usr/share/gocode/src/github.com/osrg/gobgp/api';
const T = (name: string) => `type.googleapis.com/apipb.${name}`;
const FAMILY = { 4: { afi: 'AFI_IP', safi: 'SAFI_UNICAST' }, 6: { afi: 'AFI_IP6', safi: 'SAFI_UNICAST' } } as const;
const STATES: Record<string, SessionState> = {
  UNKNOWN: 'Unknown',
  IDLE: 'Idle',
  CONNECT: 'Connect',
  ACTIVE: 'Active',
  OPENSENT: 'OpenSent',
  OPENCONFIRM: 'OpenConfirm',
  ESTABLISHED: 'Established',
};

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
let cachedPackage: grpc.GrpcObject | undefined;

function loadApi(protoDir: string): grpc.GrpcObject {
  if (cachedPackage) return cachedPackage;
  const files = ['gobgp.proto', 'attribute.proto', 'capability.proto'].map((f) => join(protoDir, f));
  for (const f of files) {
    if (!existsSync(f)) throw new Error(`GoBGP API definition ${f} not found: install Debian package golang-github-osrg-gobgp-dev or set PODFABRIC_GOBGP_PROTO_DIR`);
  }
  const def = protoLoader.loadSync(files, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, json: true, includeDirs: [protoDir] });
  cachedPackage = grpc.loadPackageDefinition(def);
  return cachedPackage;
}

/** unix:///path, or host:port on a loopback address (others refused unless allowed). */
export function checkTarget(target: string, allowNonLoopback = false): string {
  if (target.startsWith('unix://') || target.startsWith('unix:')) return target;
  if (target.startsWith('/')) return `unix://${target}`;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(target);
  if (!m) throw new Error(`gobgpd API target ${target}: use unix:///path/gobgp.sock or 127.0.0.1:PORT`);
  const host = m[1] ?? m[2]!;
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  if (!loopback && !allowNonLoopback) {
    throw new Error(`refusing gobgpd API on non-loopback address ${host}: the API has no authentication (use a Unix socket, or --allow-remote-gobgp-api)`);
  }
  return target;
}

function communityToU32(c: string): number {
  const [a, b] = c.split(':').map(Number);
  return ((a! & 0xffff) * 65536 + (b! & 0xffff)) >>> 0;
}
function u32ToCommunity(n: number): string {
  return `${Math.floor(n / 65536)}:${n % 65536}`;
}

function pathOf(a: Advertisement): Record<string, unknown> {
  const c = parseCidr(a.prefix);
  if (!c) throw new Error(`invalid prefix ${a.prefix}`);
  const [addr, len] = a.prefix.split('/');
  const nlri = { '@type': T('IPAddressPrefix'), prefix: addr, prefix_len: Number(len) };
  const pattrs: Record<string, unknown>[] = [{ '@type': T('OriginAttribute'), origin: 0 }];
  if (c.family === 4) pattrs.push({ '@type': T('NextHopAttribute'), next_hop: a.nextHop });
  else pattrs.push({ '@type': T('MpReachNLRIAttribute'), family: FAMILY[6], next_hops: [a.nextHop], nlris: [nlri] });
  if (a.communities.length) pattrs.push({ '@type': T('CommunitiesAttribute'), communities: a.communities.map(communityToU32) });
  return { family: FAMILY[c.family], nlri, pattrs };
}

interface RawPath {
  nlri?: { prefix?: string; prefix_len?: number };
  pattrs?: Array<Record<string, unknown>>;
  neighbor_ip?: string;
  is_from_external?: boolean;
  is_withdraw?: boolean;
}

function advOf(p: RawPath): Advertisement | null {
  if (!p.nlri?.prefix) return null;
  const prefix = normalizeCidr(`${p.nlri.prefix}/${p.nlri.prefix_len}`);
  if (!prefix) return null;
  let nextHop = '';
  let communities: string[] = [];
  for (const a of p.pattrs ?? []) {
    const t = String(a['@type'] ?? '');
    if (t.endsWith('.NextHopAttribute')) nextHop = String(a.next_hop);
    if (t.endsWith('.MpReachNLRIAttribute')) nextHop = String((a.next_hops as string[])?.[0] ?? '');
    if (t.endsWith('.CommunitiesAttribute')) communities = ((a.communities as number[]) ?? []).map(u32ToCommunity);
  }
  return { prefix, nextHop: normalizeIP(nextHop) ?? nextHop, communities: communities.sort() };
}

function peerMessage(p: PeerConfig): Record<string, unknown> {
  const fam = parseIP(p.address)?.family ?? 4;
  return {
    conf: {
      neighbor_address: p.address,
      peer_asn: p.peerAsn,
      local_asn: p.localAsn ?? 0,
      auth_password: p.password ?? '',
      description: p.description ?? '',
    },
    timers: { config: { connect_retry: p.connectRetry, hold_time: p.holdTime, keepalive_interval: p.keepaliveInterval } },
    afi_safis: [{ config: { family: FAMILY[fam], enabled: true }, ...(p.gracefulRestart?.enabled ? { mp_graceful_restart: { config: { enabled: true } } } : {}) }],
    ...(p.gracefulRestart?.enabled ? { graceful_restart: { enabled: true, restart_time: p.gracefulRestart.restartTime } } : {}),
    ...(p.ebgpMultihop ? { ebgp_multihop: { enabled: true, multihop_ttl: p.ebgpMultihop } } : {}),
  };
}

interface RawPeer {
  conf?: { neighbor_address?: string; peer_asn?: number; local_asn?: number; auth_password?: string; description?: string };
  state?: {
    neighbor_address?: string;
    session_state?: string;
    admin_state?: string;
    auth_password?: string;
    local_asn?: number;
    messages?: { received?: { notification?: number }; sent?: { notification?: number } };
  };
  timers?: { config?: { connect_retry?: number; hold_time?: number; keepalive_interval?: number }; state?: { uptime?: { seconds?: number } } };
  afi_safis?: Array<{ state?: { advertised?: number; received?: number; accepted?: number } }>;
  graceful_restart?: { enabled?: boolean; restart_time?: number };
  ebgp_multihop?: { enabled?: boolean; multihop_ttl?: number };
}

export function peerFromRaw(r: RawPeer, globalAsn: number): { config: PeerConfig; status: PeerStatus } {
  const address = normalizeIP(r.conf?.neighbor_address ?? r.state?.neighbor_address ?? '') ?? '';
  const localAsn = r.conf?.local_asn ?? 0;
  const password = r.conf?.auth_password || r.state?.auth_password || '';
  const config: PeerConfig = {
    address,
    peerAsn: r.conf?.peer_asn ?? 0,
    ...(localAsn && localAsn !== globalAsn ? { localAsn } : {}),
    ...(password ? { password } : {}),
    holdTime: r.timers?.config?.hold_time ?? 0,
    keepaliveInterval: r.timers?.config?.keepalive_interval ?? 0,
    connectRetry: r.timers?.config?.connect_retry ?? 0,
    ...(r.graceful_restart?.enabled ? { gracefulRestart: { enabled: true, restartTime: r.graceful_restart.restart_time ?? 0 } } : {}),
    ...(r.ebgp_multihop?.enabled ? { ebgpMultihop: r.ebgp_multihop.multihop_ttl ?? 0 } : {}),
    ...(r.conf?.description ? { description: r.conf.description } : {}),
  };
  const state = STATES[r.state?.session_state ?? 'UNKNOWN'] ?? 'Unknown';
  const up = r.timers?.state?.uptime?.seconds;
  const status: PeerStatus = {
    address,
    state,
    ...(state === 'Established' && up ? { establishedAt: new Date(up * 1000) } : {}),
    prefixesSent: (r.afi_safis ?? []).reduce((n, a) => n + (a.state?.advertised ?? 0), 0),
    prefixesReceived: (r.afi_safis ?? []).reduce((n, a) => n + (a.state?.received ?? 0), 0),
    ...(r.state?.admin_state && r.state.admin_state !== 'UP' ? { lastError: `admin state ${r.state.admin_state}` } : {}),
  };
  return { config, status };
}

export function createGoBgpRouter(target: string, opts: { allowNonLoopback?: boolean; protoDir?: string; deadlineMs?: number } = {}): Router {
  const addr = checkTarget(target, opts.allowNonLoopback);
  const pkg = loadApi(opts.protoDir ?? process.env.PODFABRIC_GOBGP_PROTO_DIR ?? DEFAULT_PROTO_DIR);
  const Ctor = (pkg.apipb as grpc.GrpcObject).GobgpApi as grpc.ServiceClientConstructor;
  const client = new Ctor(addr, grpc.credentials.createInsecure(), {
    'grpc.initial_reconnect_backoff_ms': 50,
    'grpc.max_reconnect_backoff_ms': 200,
  }) as unknown as Client;
  const deadline = () => ({ deadline: Date.now() + (opts.deadlineMs ?? 10_000) });
  let globalAsn = 0;

  const unary = <R>(method: string, req: unknown): Promise<R> =>
    new Promise((resolve, reject) => {
      (client[method] as (r: unknown, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res: R) => void) => void).call(
        client,
        req,
        new grpc.Metadata(),
        deadline(),
        (err, res) => (err ? reject(new Error(`${method}: ${err.details || err.message}`)) : resolve(res)),
      );
    });
  const stream = <R>(method: string, req: unknown): Promise<R[]> =>
    new Promise((resolve, reject) => {
      const out: R[] = [];
      const call = (client[method] as (r: unknown, o: grpc.CallOptions) => grpc.ClientReadableStream<R>).call(client, req, deadline());
      call.on('data', (d: R) => out.push(d));
      call.on('error', (e: grpc.ServiceError) => reject(new Error(`${method}: ${e.details || e.message}`)));
      call.on('end', () => resolve(out));
    });

  const router: Router = {
    async getGlobal() {
      const r = await unary<{ global?: { asn?: number; router_id?: string; listen_port?: number; listen_addresses?: string[] } }>('GetBgp', {});
      const g = r.global;
      if (!g || !g.asn) return null;
      globalAsn = g.asn;
      return { asn: g.asn, routerId: g.router_id ?? '', listenPort: g.listen_port ?? 0, ...(g.listen_addresses?.length ? { listenAddresses: g.listen_addresses } : {}) };
    },
    async startBgp(cfg: BgpGlobalConfig) {
      await unary('StartBgp', { global: { asn: cfg.asn, router_id: cfg.routerId, listen_port: cfg.listenPort, listen_addresses: cfg.listenAddresses ?? [] } });
      globalAsn = cfg.asn;
    },
    async stopBgp() {
      await unary('StopBgp', {});
    },
    async listPeers() {
      if (!globalAsn) await router.getGlobal();
      const rs = await stream<{ peer: RawPeer }>('ListPeer', { address: '', enableAdvertised: true });
      return rs.map((r) => peerFromRaw(r.peer, globalAsn));
    },
    async addPeer(p: PeerConfig) {
      await unary('AddPeer', { peer: peerMessage(p) });
    },
    async updatePeer(p: PeerConfig) {
      await unary('UpdatePeer', { peer: peerMessage(p), do_soft_reset_in: false });
    },
    async deletePeer(address: string) {
      await unary('DeletePeer', { address });
    },
    async listAdvertisements() {
      const out: Advertisement[] = [];
      for (const fam of [4, 6] as const) {
        const rs = await stream<{ destination: { paths?: RawPath[] } }>('ListPath', { table_type: 'GLOBAL', family: FAMILY[fam] });
        for (const r of rs) {
          for (const p of r.destination.paths ?? []) {
            // Locally originated: no neighbour (GoBGP reports "<nil>" or an empty address).
            const local = !p.is_from_external && (!p.neighbor_ip || p.neighbor_ip === '<nil>' || p.neighbor_ip === '0.0.0.0' || p.neighbor_ip === '::');
            const a = local ? advOf(p) : null;
            if (a) out.push(a);
          }
        }
      }
      return out;
    },
    async addAdvertisements(list: Advertisement[]) {
      if (list.length < 20) {
        for (const a of list) await unary('AddPath', { table_type: 'GLOBAL', path: pathOf(a) });
        return;
      }
      await new Promise<void>((resolve, reject) => {
        const call = (client.AddPathStream as (o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<unknown>).call(
          client,
          { deadline: Date.now() + 60_000 },
          (e) => (e ? reject(new Error(`AddPathStream: ${e.details || e.message}`)) : resolve()),
        );
        for (let i = 0; i < list.length; i += 500) call.write({ table_type: 'GLOBAL', paths: list.slice(i, i + 500).map(pathOf) });
        call.end();
      });
    },
    async deleteAdvertisements(list: Advertisement[]) {
      for (const a of list) {
        const p = pathOf(a);
        await unary('DeletePath', { table_type: 'GLOBAL', family: p.family, path: p });
      }
    },
    watchPeers(onChange, onError) {
      const call = (client.WatchEvent as (r: unknown) => grpc.ClientReadableStream<{ peer?: { type?: string; peer?: RawPeer } }>).call(client, { peer: {} });
      let ended = false;
      call.on('data', (ev) => {
        if (ev.peer?.peer) onChange(peerFromRaw(ev.peer.peer, globalAsn).status);
      });
      const fail = (e: Error) => {
        if (ended) return;
        ended = true;
        onError(e);
      };
      call.on('error', (e: grpc.ServiceError) => {
        if (e.code !== grpc.status.CANCELLED) fail(new Error(`WatchEvent: ${e.details || e.message}`));
      });
      call.on('end', () => fail(new Error('WatchEvent stream ended')));
      return () => {
        ended = true;
        call.cancel();
      };
    },
    close() {
      client.close();
    },
  };
  return router;
}
