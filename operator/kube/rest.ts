/**
 * A thin Kubernetes REST client on node:https: the kubeconfig supplies server, TLS and credentials
 * (kubeconfig.ts; credential plugins through @kubernetes/client-node), requests are throttled by a client-side token bucket
 * (client-go's 5 QPS default is far too low at scale), and watches stream JSON lines.
 */
import http from 'node:http';
import https from 'node:https';
import { LightKubeConfig, type KubeConfigLike } from './kubeconfig.js';
import { TokenBucket } from '../lib/ratelimit.js';

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
    const mod = this.server.protocol === 'https:' ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = mod.request(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) {
            try {
              resolve((text ? JSON.parse(text) : {}) as T);
            } catch (e) {
              reject(e);
            }
            return;
          }
          let status: { reason?: string; message?: string; details?: unknown } = {};
          try {
            status = JSON.parse(text);
          } catch {
            status = { message: text };
          }
          reject(new KubeError(code, status.reason ?? String(code), `${method} ${path}: ${code} ${status.message ?? ''}`.trim(), status.details));
        });
        res.on('error', reject);
      });
      req.setTimeout(this.opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
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
    const done = (async () => {
      const opts = await this.reqOpts('GET', path, {});
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
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            buf += d;
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (!line) continue;
              try {
                onEvent(JSON.parse(line) as WatchEvent<T>);
              } catch (e) {
                req?.destroy(e as Error);
              }
            }
          });
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
      },
    };
  }

  close(): void {
    this.agent.destroy();
  }
}
