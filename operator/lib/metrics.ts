/**
 * Prometheus metrics and the health endpoints (/metrics, /healthz, /readyz) on one small HTTP server.
 * Each process (controller, agent) owns its Registry so tests can run several in one process.
 */
import http from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

export const RECONCILE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function newRegistry(component: string, defaults = true): Registry {
  const r = new Registry();
  r.setDefaultLabels({ component });
  if (defaults) collectDefaultMetrics({ register: r, prefix: 'podfabric_process_' });
  return r;
}

export interface HealthChecks {
  /** Process alive and its loops running. */
  healthz(): { ok: boolean; detail?: string };
  /** Ready to serve its purpose (controller: caches synced; agent: sessions up and routes in). */
  readyz(): { ok: boolean; detail?: string };
}

export interface ServerHandle {
  port: number;
  close(): Promise<void>;
}

/** Serves /metrics, /healthz, /readyz on host:port (port 0 picks a free one). */
export function serveHealthAndMetrics(registry: Registry, checks: HealthChecks, host: string, port: number): Promise<ServerHandle> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const answer = (r: { ok: boolean; detail?: string }) => {
      res.writeHead(r.ok ? 200 : 503, { 'Content-Type': 'text/plain' });
      res.end(r.ok ? 'ok\n' : `not ok: ${r.detail ?? ''}\n`);
    };
    if (url === '/metrics') {
      registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'Content-Type': registry.contentType });
          res.end(text);
        })
        .catch((e: Error) => {
          res.writeHead(500);
          res.end(e.message);
        });
    } else if (url === '/healthz' || url === '/livez') answer(checks.healthz());
    else if (url === '/readyz') answer(checks.readyz());
    else {
      res.writeHead(404);
      res.end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : port,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
