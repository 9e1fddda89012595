/**
 * One HTTP/2 connection to the apiserver for all of a client's requests and watches (what client-go
 * does): a node agent's ~10 watches and its writes are streams on one TLS connection instead of one
 * connection each, so 5,000 agents hold 5,000 connections at the apiserver, not 50,000 (and never run
 * out of the 28,000 ephemeral ports one source address has).
 *
 * The session is opened on first use and again after it closes (GOAWAY, error, a failed health check);
 * streams in flight on a dead session fail, and the informers watch again from their last version. A
 * PING every 30 s that is not answered within 15 s destroys the session (client-go's ReadIdleTimeout
 * and PingTimeout), so a watch on a silently dead connection fails instead of hanging.
 */
import http2 from 'node:http2';
import type https from 'node:https';

export const H2_PING_EVERY_MS = 30_000;
export const H2_PING_TIMEOUT_MS = 15_000;

const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

export interface H2Response {
  stream: http2.ClientHttp2Stream;
  /** The response status, once headers arrived. */
  status: Promise<number>;
}

export class H2Connection {
  private session: http2.ClientHttp2Session | undefined;
  private pinger: NodeJS.Timeout | undefined;
  sessionsOpened = 0;

  constructor(
    private readonly origin: string,
    private readonly tls: https.RequestOptions,
  ) {}

  private current(): http2.ClientHttp2Session {
    const s0 = this.session;
    if (s0 && !s0.closed && !s0.destroyed) return s0;
    const opts: http2.SecureClientSessionOptions = {};
    for (const k of TLS_KEYS) if (this.tls[k] !== undefined) (opts as Record<string, unknown>)[k] = this.tls[k];
    const s = http2.connect(this.origin, opts);
    this.sessionsOpened++;
    s.on('error', () => undefined); // each stream reports its own failure
    s.on('goaway', () => s.close());
    s.on('close', () => {
      if (this.session === s) this.forget();
    });
    // Idle sessions must not keep the process alive; open streams do (they ref the socket).
    s.unref();
    this.session = s;
    this.pinger = setInterval(() => {
      if (s.closed || s.destroyed) return;
      let answered = false;
      // After the timeout, look once more after pending I/O (setImmediate): on a busy event loop the
      // answer may be waiting behind the timer, and a late timer must not kill a healthy connection.
      const t = setTimeout(() => setImmediate(() => answered || s.destroy(new Error('HTTP/2 ping not answered'))), H2_PING_TIMEOUT_MS);
      t.unref();
      const sent = s.ping((err) => {
        answered = true;
        clearTimeout(t);
        if (err) s.destroy(err);
      });
      if (!sent) clearTimeout(t);
    }, H2_PING_EVERY_MS);
    this.pinger.unref();
    return s;
  }

  private forget(): void {
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = undefined;
    this.session = undefined;
  }

  /** Opens a stream; headers are lower-cased (HTTP/2 requires it), payload written if given. */
  open(method: string, path: string, headers: Record<string, string>, payload?: string): H2Response {
    const h: http2.OutgoingHttpHeaders = { ':method': method, ':path': path };
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== 'connection' && k.toLowerCase() !== 'host') h[k.toLowerCase()] = v;
    const stream = this.current().request(h, { endStream: payload === undefined });
    const status = new Promise<number>((resolve, reject) => {
      stream.once('response', (rh) => resolve(Number(rh[':status'] ?? 0)));
      stream.once('error', reject);
      stream.once('close', () => reject(new Error(`${method} ${path}: HTTP/2 stream closed before a response (code ${stream.rstCode ?? '?'})`)));
    });
    status.catch(() => undefined);
    if (payload !== undefined) stream.end(payload);
    return { stream, status };
  }

  close(): void {
    const s = this.session;
    this.forget();
    s?.close();
  }
}
