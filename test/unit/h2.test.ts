import http2 from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { H2Connection } from '../../operator/kube/h2.js';

const timing = { readIdleMs: 150, pingTimeoutMs: 150 };
const closers: Array<() => void> = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A cleartext HTTP/2 server on loopback that counts the PINGs it receives; /stream sends a chunk every 20 ms. */
async function server(): Promise<{ port: number; pings: () => number }> {
  let pings = 0;
  const srv = http2.createServer();
  srv.on('session', (s) => s.on('ping', () => pings++));
  srv.on('stream', (st, h) => {
    st.respond({ ':status': 200 });
    if (h[':path'] !== '/stream') return void st.end('ok');
    const t = setInterval(() => st.write('x'), 20);
    st.on('close', () => clearInterval(t));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => srv.close());
  return { port: (srv.address() as net.AddressInfo).port, pings: () => pings };
}

/** A TCP relay to `port` that can be frozen: it then forwards nothing either way (a silently dead path). */
async function relay(port: number): Promise<{ port: number; freeze: () => void }> {
  let frozen = false;
  const socks: net.Socket[] = [];
  const srv = net.createServer((c) => {
    const u = net.connect(port, '127.0.0.1');
    socks.push(c, u);
    c.on('data', (d) => frozen || u.write(d));
    u.on('data', (d) => frozen || c.write(d));
    c.on('error', () => undefined);
    u.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => {
    for (const s of socks) s.destroy();
    srv.close();
  });
  return { port: (srv.address() as net.AddressInfo).port, freeze: () => (frozen = true) };
}

const get = (c: H2Connection, path: string) => {
  const r = c.open('GET', path, {});
  r.stream.on('data', () => undefined);
  r.stream.on('error', () => undefined);
  return r;
};

describe('H2Connection health check (client-go ReadIdleTimeout / PingTimeout)', () => {
  it('never PINGs a session that is reading (a watch delivering events)', async () => {
    const s = await server();
    const c = new H2Connection(`http://127.0.0.1:${s.port}`, {}, { readIdleMs: 300, pingTimeoutMs: 300 });
    closers.push(() => c.close());
    const r = get(c, '/stream');
    await r.status;
    await new Promise((r2) => setTimeout(r2, 1500)); // five read-idle periods: a periodic PING would have gone 4-5 times
    expect(s.pings()).toBeLessThanOrEqual(1); // one is allowed: a loaded test machine may stall this loop past 300 ms
    expect(c.healthFailures).toBe(0);
  });

  it('PINGs a silent session and keeps it when the answer comes', async () => {
    const s = await server();
    const c = new H2Connection(`http://127.0.0.1:${s.port}`, {}, timing);
    closers.push(() => c.close());
    expect(await get(c, '/once').status).toBe(200);
    await until('a PING', () => s.pings() >= 2);
    expect(c.healthFailures).toBe(0);
    expect(await get(c, '/once').status).toBe(200);
    expect(c.sessionsOpened).toBe(1);
  });

  it('destroys a session silent past the PING timeout: its streams fail, the next request opens a new one', async () => {
    const s = await server();
    const path = await relay(s.port);
    const c = new H2Connection(`http://127.0.0.1:${path.port}`, {}, timing);
    closers.push(() => c.close());
    const r = get(c, '/stream');
    await r.status;
    const closed = new Promise<void>((res) => r.stream.on('close', () => res()));
    path.freeze();
    await until('the health check to fail', () => c.healthFailures === 1);
    await closed;
    expect(r.stream.destroyed).toBe(true);
    const direct = new H2Connection(`http://127.0.0.1:${s.port}`, {}, timing);
    closers.push(() => direct.close());
    expect(await get(direct, '/once').status).toBe(200);
    expect(c.sessionsOpened).toBe(1);
    get(c, '/once'); // through the frozen relay: a new session is opened (it will not answer)
    expect(c.sessionsOpened).toBe(2);
  });
});
