/**
 * One HTTP/2 connection to the apiserver for all of a client's requests and watches (what client-go
 * does): a node agent's ~10 watches and its writes are streams on one TLS connection instead of one
 * connection each, so 5,000 agents hold 5,000 connections at the apiserver, not 50,000 (and never run
 * out of the 28,000 ephemeral ports one source address has).
 *
 * The session is opened on first use and again after it closes (GOAWAY, error, a failed health check);
 * streams in flight on a dead session fail, and the informers watch again from their last version.
 * Health check as client-go's (ReadIdleTimeout, PingTimeout): only when nothing has been read on the
 * session for 30 s is a PING sent, and only if still nothing has been read 15 s later is the session
 * destroyed — a watch on a silently dead connection fails instead of hanging, while a connection that
 * is delivering watch events or bookmarks is never pinged (pinging every session every 30 s regardless
 * cost 5,000 simulated agents their sessions whenever a loaded apiserver answered late, and each new
 * session a TLS handshake). The TLS context (CA, client certificate) is built once per connection
 * object, not once per session.
 */
import http2 from 'node:http2';
import type https from 'node:https';
import tls from 'node:tls';

/** Nothing read for this long: send a PING (client-go's ReadIdleTimeout). */
export const H2_READ_IDLE_MS = 30_000;
/** Still nothing read this long after the PING: the session is dead (client-go's PingTimeout). */
export const H2_PING_TIMEOUT_MS = 15_000;

const CONTEXT_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase'] as const;
const CONNECT_KEYS = ['rejectUnauthorized', 'servername'] as const;

export interface H2Response {
  stream: http2.ClientHttp2Stream;
  /** The response status, once headers arrived. */
  status: Promise<number>;
}

export class H2Connection {
  private session: http2.ClientHttp2Session | undefined;
  private health: NodeJS.Timeout | undefined;
  private context: tls.SecureContext | undefined;
  /** When something was last read on the current session (a response, data, a PING answer). */
  private lastRead = 0;
  private readonly touch = () => {
    this.lastRead = Date.now();
  };
  sessionsOpened = 0;
  /** Sessions destroyed by the health check. */
  healthFailures = 0;

  constructor(
    private readonly origin: string,
    private readonly tls: https.RequestOptions,
    /** The health check's two timeouts (defaults H2_READ_IDLE_MS, H2_PING_TIMEOUT_MS); tests shorten them. */
    private readonly timing = { readIdleMs: H2_READ_IDLE_MS, pingTimeoutMs: H2_PING_TIMEOUT_MS },
  ) {}

  private connectOptions(): http2.SecureClientSessionOptions {
    const opts: Record<string, unknown> = {};
    for (const k of CONNECT_KEYS) if (this.tls[k] !== undefined) opts[k] = this.tls[k];
    if (this.origin.startsWith('https:')) {
      if (!this.context) {
        const c: tls.SecureContextOptions = {};
        for (const k of CONTEXT_KEYS) if (this.tls[k] !== undefined) (c as Record<string, unknown>)[k] = this.tls[k];
        this.context = tls.createSecureContext(c);
      }
      opts.secureContext = this.context;
    }
    return opts as http2.SecureClientSessionOptions;
  }

  private current(): http2.ClientHttp2Session {
    const s0 = this.session;
    if (s0 && !s0.closed && !s0.destroyed) return s0;
    const s = http2.connect(this.origin, this.connectOptions());
    this.sessionsOpened++;
    s.on('error', () => undefined); // each stream reports its own failure
    s.on('goaway', () => s.close());
    s.on('close', () => {
      if (this.session === s) this.forget();
    });
    // Idle sessions must not keep the process alive; open streams do (they ref the socket).
    s.unref();
    this.session = s;
    this.lastRead = Date.now();
    this.armHealthCheck(s, this.timing.readIdleMs);
    return s;
  }

  /** After `ms`: if nothing was read for readIdleMs, PING; otherwise look again when it would be. */
  private armHealthCheck(s: http2.ClientHttp2Session, ms: number): void {
    if (this.health) clearTimeout(this.health);
    this.health = setTimeout(() => {
      if (s.closed || s.destroyed || this.session !== s) return;
      const { readIdleMs, pingTimeoutMs } = this.timing;
      const idle = Date.now() - this.lastRead;
      if (idle < readIdleMs) return this.armHealthCheck(s, readIdleMs - idle);
      const sentAt = Date.now();
      const sent = s.ping((err) => {
        if (err) s.destroy(err);
        else this.touch();
      });
      if (!sent) return this.armHealthCheck(s, readIdleMs);
      this.health = setTimeout(() => {
        // Look once more after pending I/O (setImmediate): on a busy event loop the answer, or any other
        // frame, may be waiting behind this timer, and a late timer must not kill a healthy connection.
        setImmediate(() => {
          if (s.closed || s.destroyed || this.session !== s) return;
          if (this.lastRead >= sentAt) return this.armHealthCheck(s, readIdleMs);
          this.healthFailures++;
          s.destroy(new Error(`HTTP/2 connection silent for ${readIdleMs + pingTimeoutMs} ms (PING not answered)`));
        });
      }, pingTimeoutMs);
      this.health.unref();
    }, ms);
    this.health.unref();
  }

  private forget(): void {
    if (this.health) clearTimeout(this.health);
    this.health = undefined;
    this.session = undefined;
  }

  /** Opens a stream; headers are lower-cased (HTTP/2 requires it), payload written if given. */
  open(method: string, path: string, headers: Record<string, string>, payload?: string): H2Response {
    const h: http2.OutgoingHttpHeaders = { ':method': method, ':path': path };
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== 'connection' && k.toLowerCase() !== 'host') h[k.toLowerCase()] = v;
    const stream = this.current().request(h, { endStream: payload === undefined });
    // Anything read on the session proves it alive (the health check pings only a silent one).
    stream.on('data', this.touch);
    const status = new Promise<number>((resolve, reject) => {
      stream.once('response', (rh) => {
        this.touch();
        resolve(Number(rh[':status'] ?? 0));
      });
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
