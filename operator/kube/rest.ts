/**
 * A thin Kubernetes REST client on node:https: the kubeconfig supplies server, TLS and credentials
 * (kubeconfig.ts; credential plugins through @kubernetes/client-node), requests are throttled by a client-side token bucket
 * (client-go's 5 QPS default is far too low at scale), and watches stream JSON lines.
 */
import http from 'node:http';
import http2, { constants as http2constants } from 'node:http2';
import https from 'node:https';
import { LightKubeConfig, type KubeConfigLike } from './kubeconfig.js';
import { TokenBucket } from '../lib/ratelimit.js';
import { H2Connection, type H2Response } from './h2.js';

export class KubeError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeError && e.code === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeError && e.code === 409;
export const isAlreadyExists = (e: unknown): boolean => e instanceof KubeError && e.code === 409 && e.reason === 'AlreadyExists';

export interface RestOptions {
  qps?: number;
  burst?: number;
  userAgent?: string;
  /** Per-request timeout (not for watches). */
  timeoutMs?: number;
  /**
   * Every request and watch as a stream on one HTTP/2 connection (h2.ts) instead of HTTP/1.1 with a
   * connection per watch. The agent uses it: ~10 watches per node.
   */
  http2?: boolean;
}

/** A finished response: the decoded body, or the apiserver's Status as a KubeError. */
function settle<T>(method: string, path: string, code: number, text: string): T {
  if (code >= 200 && code < 300) return (text ? JSON.parse(text) : {}) as T;
  let status: { reason?: string; message?: string; details?: unknown } = {};
  try {
    status = JSON.parse(text);
  } catch {
    status = { message: text };
  }
  throw new KubeError(code, status.reason ?? String(code), `${method} ${path}: ${code} ${status.message ?? ''}`.trim(), status.details);
}

/** Splits a watch body into JSON lines; a line that does not parse (or a throwing handler) calls fail. */
function watchLines<T>(onEvent: (e: WatchEvent<T>) => void, fail: (e: Error) => void): (chunk: string) => void {
  let buf = '';
  return (d) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      try {
        onEvent(JSON.parse(line) as WatchEvent<T>);
      } catch (e) {
        fail(e as Error);
      }
    }
  };
}

export type ContentType =
  | 'application/json'
  | 'application/merge-patch+json'
  | 'application/json-patch+json'
  | 'application/apply-patch+yaml';

export interface WatchEvent<T = unknown> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** The kubeconfig at `path`, else the default lookup ($KUBECONFIG, ~/.kube/config, in-cluster). */
export function loadKubeConfig(path?: string): LightKubeConfig {
  return LightKubeConfig.load(path);
}

export class KubeRest {
  private readonly server: URL;
  private readonly bucket: TokenBucket;
  private readonly agent: https.Agent | http.Agent;
  private baseOpts: https.RequestOptions | null = null;
  private h2: H2Connection | undefined;
  requests = 0;

  constructor(
    readonly kc: KubeConfigLike,
    private readonly opts: RestOptions = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    this.bucket = new TokenBucket({ qps: opts.qps ?? 100, burst: opts.burst ?? 200 });
    this.agent = this.server.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 64 }) : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  private async base(): Promise<https.RequestOptions> {
    if (!this.baseOpts) {
      const o: https.RequestOptions = { headers: {} };
      await this.kc.applyToHTTPSOptions(o);
      this.baseOpts = o;
    }
    return this.baseOpts;
  }

  private async h2conn(): Promise<H2Connection> {
    const b = await this.base();
    this.h2 ??= new H2Connection(this.server.origin, b);
    return this.h2;
  }

  /** HTTP/2 sessions opened so far (0 without the http2 option). */
  get http2Sessions(): number {
    return this.h2?.sessionsOpened ?? 0;
  }

  private async reqOpts(method: string, path: string, headers: Record<string, string>): Promise<https.RequestOptions> {
    const b = await this.base();
    return {
      ...b,
      agent: this.agent,
      method,
      protocol: this.server.protocol,
      hostname: this.server.hostname.replace(/^\[|\]$/g, ''),
      port: this.server.port,
      path: this.server.pathname.replace(/\/$/, '') + path,
      headers: { ...(b.headers as Record<string, string>), 'User-Agent': this.opts.userAgent ?? 'podfabric', Accept: 'application/json', ...headers },
    };
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, contentType: ContentType = 'application/json'): Promise<T> {
    await this.bucket.take();
    this.requests++;
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string> = {};
    if (payload !== undefined) {
      headers['Content-Type'] = contentType;
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const opts = await this.reqOpts(method, path, headers);
    if (this.opts.http2) return this.request2<T>(method, path, opts, payload);
    const mod = this.server.protocol === 'https:' ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = mod.request(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(settle<T>(method, path, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
          } catch (e) {
            reject(e);
          }
        });
        res.on('error', reject);
      });
      req.setTimeout(this.opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  private async request2<T>(method: string, path: string, opts: https.RequestOptions, payload: string | undefined): Promise<T> {
    const { stream, status } = (await this.h2conn()).open(method, opts.path!, opts.headers as Record<string, string>, payload);
    const timeoutMs = this.opts.timeoutMs ?? 30_000;
    return new Promise<T>((resolve, reject) => {
      const chunks: Buffer[] = [];
      stream.setTimeout(timeoutMs, () => {
        stream.close(http2constants.NGHTTP2_CANCEL);
        reject(new Error(`${method} ${path}: timed out`));
      });
      let ended = false;
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        ended = true;
        status.then((code) => resolve(settle<T>(method, path, code, Buffer.concat(chunks).toString('utf8')))).catch(reject);
      });
      stream.on('close', () => {
        if (!ended) reject(new Error(`${method} ${path}: HTTP/2 stream closed (code ${stream.rstCode ?? '?'})`));
      });
      status.catch(reject);
    });
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** Server-side apply (force: we own the fields we set). */
  apply<T = unknown>(path: string, obj: unknown, fieldManager: string): Promise<T> {
    const sep = path.includes('?') ? '&' : '?';
    return this.request<T>('PATCH', `${path}${sep}fieldManager=${encodeURIComponent(fieldManager)}&force=true`, obj, 'application/apply-patch+yaml');
  }

  /**
   * Streams a watch. onEvent is called per event; the returned promise settles when the stream ends
   * (resolve) or fails (reject). stop() aborts it.
   */
  watch<T>(path: string, onEvent: (e: WatchEvent<T>) => void): { done: Promise<void>; stop(): void } {
    let req: http.ClientRequest | undefined;
    let stopped = false;
    let stream: http2.ClientHttp2Stream | undefined;
    const done = (async () => {
      const opts = await this.reqOpts('GET', path, {});
      if (this.opts.http2) {
        const conn = await this.h2conn();
        if (stopped) return;
        const s = conn.open('GET', opts.path!, opts.headers as Record<string, string>);
        stream = s.stream;
        return watchStream(path, s, onEvent, () => stopped);
      }
      const mod = this.server.protocol === 'https:' ? https : http;
      await new Promise<void>((resolve, reject) => {
        if (stopped) return resolve();
        req = mod.request({ ...opts, agent: undefined }, (res) => {
          if ((res.statusCode ?? 0) >= 300) {
            let t = '';
            res.on('data', (c: Buffer) => (t += c.toString()));
            res.on('end', () => reject(new KubeError(res.statusCode ?? 0, 'WatchFailed', `watch ${path}: ${res.statusCode} ${t.slice(0, 300)}`)));
            return;
          }
          res.setEncoding('utf8');
          res.on('data', watchLines(onEvent, (e) => req?.destroy(e)));
          res.on('end', () => resolve());
          res.on('error', (e) => (stopped ? resolve() : reject(e)));
          res.on('aborted', () => (stopped ? resolve() : reject(new Error(`watch ${path} aborted`))));
        });
        req.on('error', (e) => (stopped ? resolve() : reject(e)));
        req.end();
      });
    })();
    return {
      done,
      stop: () => {
        stopped = true;
        req?.destroy();
        if (stream && !stream.closed) stream.close(http2constants.NGHTTP2_CANCEL);
      },
    };
  }

  close(): void {
    this.agent.destroy();
    this.h2?.close();
  }
}

/** A watch on an HTTP/2 stream: resolves when the server ends it (or stop() cancels it), rejects on failure. */
function watchStream<T>(path: string, s: H2Response, onEvent: (e: WatchEvent<T>) => void, stopped: () => boolean): Promise<void> {
  const { stream, status } = s;
  return new Promise<void>((resolve, reject) => {
    let code = 0;
    let errText = '';
    const fail = (e: Error) => (stopped() ? resolve() : reject(e));
    const lines = watchLines(onEvent, (e) => {
      stream.close(http2constants.NGHTTP2_CANCEL);
      fail(e);
    });
    stream.setEncoding('utf8');
    status.then((c) => (code = c), fail);
    stream.on('data', (d: string) => {
      if (code >= 300) errText += d;
      else lines(d);
    });
    stream.on('end', () => (code >= 300 ? fail(new KubeError(code, 'WatchFailed', `watch ${path}: ${code} ${errText.slice(0, 300)}`)) : resolve()));
    stream.on('error', fail);
    stream.on('close', () => fail(new Error(`watch ${path} aborted`)));
  });
}
