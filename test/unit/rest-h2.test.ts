import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeError, KubeRest, type WatchEvent } from '../../operator/kube/rest.js';

/** A cleartext HTTP/2 server (prior knowledge) standing in for the apiserver: counts sessions and streams. */
async function h2Server(handler: (h: http2.IncomingHttpHeaders, s: http2.ServerHttp2Stream, body: string) => void) {
  const server = http2.createServer();
  let sessions = 0;
  let streams = 0;
  server.on('session', () => sessions++);
  server.on('stream', (s, h) => {
    streams++;
    let body = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (body += d));
    s.on('end', () => handler(h, s, body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ sessions, streams }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function restFor(url: string): KubeRest {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'secret-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return new KubeRest(kc, { http2: true, userAgent: 'podfabric-agent/n1' });
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('KubeRest over HTTP/2', () => {
  it('sends requests and watches as streams of one connection, with the headers the apiserver needs', async () => {
    const seen: http2.IncomingHttpHeaders[] = [];
    const srv = await h2Server((h, s, body) => {
      seen.push(h);
      const path = h[':path'] ?? '';
      if (path.includes('watch=1')) {
        s.respond({ ':status': 200, 'content-type': 'application/json' });
        s.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a' } } }) + '\n{"type":"MODIFIED",');
        s.write('"object":{"metadata":{"name":"a","resourceVersion":"2"}}}\n');
        s.end();
        return;
      }
      if (path.startsWith('/missing')) {
        s.respond({ ':status': 404 });
        s.end(JSON.stringify({ kind: 'Status', reason: 'NotFound', message: 'nodes "x" not found' }));
        return;
      }
      s.respond({ ':status': 200 });
      s.end(JSON.stringify({ method: h[':method'], body: body ? JSON.parse(body) : null }));
    });
    cleanup.push(srv.close);
    const rest = restFor(srv.url);
    cleanup.push(() => rest.close());

    const [got, put] = await Promise.all([rest.get<{ method: string }>('/api/v1/nodes'), rest.request<{ method: string; body: unknown }>('PUT', '/api/v1/nodes/n1', { spec: { x: 1 } })]);
    expect(got.method).toBe('GET');
    expect(put).toEqual({ method: 'PUT', body: { spec: { x: 1 } } });
    const err = await rest.get('/missing/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeError);
    expect((err as KubeError).code).toBe(404);
    expect((err as KubeError).reason).toBe('NotFound');

    const events: Array<WatchEvent<{ metadata: { name: string; resourceVersion?: string } }>> = [];
    await rest.watch<{ metadata: { name: string } }>('/api/v1/nodes?watch=1', (e) => events.push(e as (typeof events)[number])).done;
    expect(events.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED']);
    expect(events[1]!.object.metadata.resourceVersion).toBe('2');

    expect(srv.counts()).toEqual({ sessions: 1, streams: 4 });
    expect(rest.http2Sessions).toBe(1);
    expect(seen[0]!.authorization).toBe('Bearer secret-token');
    expect(seen[0]!['user-agent']).toBe('podfabric-agent/n1');
  });

  it('a stopped watch settles without error; a failing watch rejects with the status', async () => {
    const srv = await h2Server((h, s) => {
      if ((h[':path'] ?? '').includes('gone')) {
        s.respond({ ':status': 410 });
        s.end('{"reason":"Expired"}');
        return;
      }
      s.respond({ ':status': 200 });
      s.write(JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '5' } } }) + '\n'); // then stays open
    });
    cleanup.push(srv.close);
    const rest = restFor(srv.url);
    cleanup.push(() => rest.close());
    let first!: () => void;
    const gotOne = new Promise<void>((r) => (first = r));
    const w = rest.watch('/api/v1/pods?watch=1', () => first());
    await gotOne;
    w.stop();
    await expect(w.done).resolves.toBeUndefined();
    const bad = await rest.watch('/api/v1/gone?watch=1', () => undefined).done.catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(KubeError);
    expect((bad as KubeError).code).toBe(410);
    expect(srv.counts().sessions).toBe(1);
  });

  it('opens a new connection when the server closed the old one', async () => {
    const srv = await h2Server((_h, s) => {
      s.respond({ ':status': 200 });
      s.end('{}');
      s.session?.close(); // GOAWAY after each answer
    });
    cleanup.push(srv.close);
    const rest = restFor(srv.url);
    cleanup.push(() => rest.close());
    await rest.get('/a');
    // The GOAWAY may land just after the answer: the next request either goes on a new connection or,
    // if it raced onto the closing one, fails and its retry does.
    await rest.get('/b').catch(() => rest.get('/b'));
    expect(rest.http2Sessions).toBe(2);
  });
});
