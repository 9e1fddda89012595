/**
 * Low-level access to the GoBGP v3 gRPC API (package apipb, service GobgpApi) over @grpc/grpc-js.
 *
 * The .proto files are loaded at run time from Debian's golang-github-osrg-gobgp-dev (or
 * PODFABRIC_GOBGP_PROTO_DIR). All three (gobgp, attribute, capability) must be loaded with their folder
 * in includeDirs, or Any-packed NLRI/attributes silently encode empty and gobgpd answers
 * "invalid empty type URL". `json: true` makes proto-loader unpack Any values in responses into plain
 * objects carrying '@type'; requests use the same form. Field names stay snake_case (keepCase).
 *
 * Only client.ts and codec.ts use this module; nothing gRPC-shaped leaves operator/gobgp/.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_PROTO_DIR = '/usr/share/gocode/src/github.com/osrg/gobgp/api';
export const PROTO_FILES = ['gobgp.proto', 'attribute.proto', 'capability.proto'] as const;

/** A failed call: `code` is the gRPC status (UNAVAILABLE = gobgpd not running / socket gone). */
export class GoBgpError extends Error {
  constructor(
    readonly method: string,
    readonly code: grpc.status,
    details: string,
  ) {
    super(`gobgpd ${method}: ${details} (${grpc.status[code] ?? code})`);
    this.name = 'GoBgpError';
  }
  /** gobgpd is not reachable (not started, killed, socket missing). */
  get unavailable(): boolean {
    return this.code === grpc.status.UNAVAILABLE;
  }
}

const packages = new Map<string, grpc.GrpcObject>();

export function loadGoBgpApi(protoDir: string = process.env.PODFABRIC_GOBGP_PROTO_DIR ?? DEFAULT_PROTO_DIR): grpc.GrpcObject {
  const cached = packages.get(protoDir);
  if (cached) return cached;
  const files = PROTO_FILES.map((f) => join(protoDir, f));
  for (const f of files) {
    if (!existsSync(f)) {
      throw new Error(`GoBGP API definition ${f} not found: install Debian package golang-github-osrg-gobgp-dev (GoBGP v3) or set PODFABRIC_GOBGP_PROTO_DIR`);
    }
  }
  const def = protoLoader.loadSync(files, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    json: true,
    includeDirs: [protoDir],
  });
  const pkg = grpc.loadPackageDefinition(def);
  packages.set(protoDir, pkg);
  return pkg;
}

/**
 * Accepts unix:///abs/path (or a bare /abs/path), or host:port on loopback (127.0.0.0/8, [::1],
 * localhost). Any other TCP target is refused unless allowNonLoopback: the GoBGP API has no
 * authentication, whoever reaches it controls the node's routing.
 */
export function checkTarget(target: string, allowNonLoopback = false): string {
  if (target.startsWith('unix:')) {
    const path = target.replace(/^unix:(\/\/)?/, '');
    if (!path.startsWith('/')) throw new Error(`gobgpd API target ${target}: a Unix socket needs an absolute path (unix:///path/gobgp.sock)`);
    return `unix://${path}`;
  }
  if (target.startsWith('/')) return `unix://${target}`;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(target);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) {
    throw new Error(`gobgpd API target "${target}": use unix:///path/gobgp.sock, 127.0.0.1:PORT or [::1]:PORT`);
  }
  const host = (m[1] ?? m[2]!).toLowerCase();
  const loopback = host === 'localhost' || host === '::1' || host === '0:0:0:0:0:0:0:1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!loopback && !allowNonLoopback) {
    throw new Error(
      `refusing gobgpd API target ${target}: not a loopback address, and the GoBGP API has no authentication (use a Unix socket or 127.0.0.1; override: allowNonLoopback / --allow-remote-gobgp-api)`,
    );
  }
  return target;
}

type UnaryFn = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientUnaryCall;
type ServerStreamFn = (req: unknown, opts: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;
type ClientStreamFn = (opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res: unknown) => void) => grpc.ClientWritableStream<unknown>;

const toError = (method: string, e: grpc.ServiceError): GoBgpError => new GoBgpError(method, e.code ?? grpc.status.UNKNOWN, e.details || e.message);

export interface GoBgpApiOptions {
  allowNonLoopback?: boolean;
  protoDir?: string;
  /** Deadline of unary calls and finite streams (ms, default 10 s). */
  deadlineMs?: number;
}

/** A thin promise/stream wrapper around the generated GobgpApi client. Method names as in gobgp.proto. */
export class GoBgpApi {
  private readonly client: grpc.Client;
  private readonly deadlineMs: number;

  constructor(target: string, opts: GoBgpApiOptions = {}) {
    const addr = checkTarget(target, opts.allowNonLoopback);
    const pkg = loadGoBgpApi(opts.protoDir);
    const Ctor = (pkg.apipb as grpc.GrpcObject | undefined)?.GobgpApi as grpc.ServiceClientConstructor | undefined;
    if (!Ctor) throw new Error('GoBGP API definition has no apipb.GobgpApi service: is it GoBGP v3? (v4 renamed the package to "api")');
    this.client = new Ctor(addr, grpc.credentials.createInsecure(), {
      // gobgpd restarts are part of normal life: reconnect quickly instead of backing off to 120 s.
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 500,
    });
    this.deadlineMs = opts.deadlineMs ?? 10_000;
  }

  private fn<T>(method: string): T {
    const f = (this.client as unknown as Record<string, unknown>)[method];
    if (typeof f !== 'function') throw new Error(`GobgpApi has no method ${method}`);
    return (f as (...a: unknown[]) => unknown).bind(this.client) as T;
  }

  private deadline(ms?: number): grpc.CallOptions {
    return { deadline: Date.now() + (ms ?? this.deadlineMs) };
  }

  unary<R = unknown>(method: string, req: unknown, timeoutMs?: number): Promise<R> {
    return new Promise((resolve, reject) => {
      this.fn<UnaryFn>(method)(req, new grpc.Metadata(), this.deadline(timeoutMs), (e, res) => (e ? reject(toError(method, e)) : resolve(res as R)));
    });
  }

  /** A server stream read to its end (ListPeer, ListPath, ...). */
  list<R = unknown>(method: string, req: unknown, timeoutMs?: number): Promise<R[]> {
    return new Promise((resolve, reject) => {
      const out: R[] = [];
      const call = this.fn<ServerStreamFn>(method)(req, this.deadline(timeoutMs));
      call.on('data', (d: R) => out.push(d));
      call.on('error', (e: grpc.ServiceError) => reject(toError(method, e)));
      call.on('end', () => resolve(out));
    });
  }

  /** A client stream (AddPathStream): writes every message, honouring back-pressure, then ends. */
  async clientStream(method: string, messages: Iterable<unknown>, timeoutMs?: number): Promise<void> {
    let call!: grpc.ClientWritableStream<unknown>;
    let settled = false;
    const done = new Promise<void>((resolve, reject) => {
      call = this.fn<ClientStreamFn>(method)(this.deadline(timeoutMs ?? 60_000), (e) => {
        settled = true;
        if (e) reject(toError(method, e));
        else resolve();
      });
    });
    // Resolves when the stream can take more, or when the call is over (an error is reported by `done`).
    const drained = () =>
      new Promise<void>((resolve) => {
        call.once('drain', resolve);
        done.then(resolve, resolve);
      });
    for (const m of messages) {
      if (settled) break;
      if (!call.write(m)) await drained();
    }
    call.end();
    await done;
  }

  /** A long-lived server stream (WatchEvent). Returns a stop function; onEnd gets the reason once. */
  watch<R = unknown>(method: string, req: unknown, onData: (d: R) => void, onEnd: (e: GoBgpError) => void): () => void {
    const call = this.fn<ServerStreamFn>(method)(req, {});
    let stopped = false;
    const end = (e: GoBgpError) => {
      if (stopped) return;
      stopped = true;
      onEnd(e);
    };
    call.on('data', (d: R) => {
      if (!stopped) onData(d);
    });
    call.on('error', (e: grpc.ServiceError) => end(toError(method, e)));
    call.on('end', () => end(new GoBgpError(method, grpc.status.UNAVAILABLE, 'stream ended (gobgpd stopped?)')));
    return () => {
      if (stopped) return;
      stopped = true;
      call.cancel();
    };
  }

  close(): void {
    this.client.close();
  }
}
