/**
 * KubeRest's HTTP/2 transport (the agent's) against the real apiserver: TLS + ALPN h2, bearer token,
 * list, server-side apply, a watch that sees the change, and an Informer — all on one connection; and an
 * Informer whose connection dies watching again from where it was, without a relist.
 */
import type http2 from 'node:http2';
import { afterAll, describe, expect, it } from 'vitest';
import { Informer, type KObj } from '../../operator/kube/informer.js';
import { KubeError, KubeRest, loadKubeConfig } from '../../operator/kube/rest.js';
import { kubeconfigPath, testRest } from '../support/kube.js';

const NS = 'pf-h2-test';
const h2 = new KubeRest(loadKubeConfig(kubeconfigPath()), { qps: 100, burst: 100, userAgent: 'podfabric-test-h2', http2: true });
const admin = testRest();

afterAll(async () => {
  await admin.request('DELETE', `/api/v1/namespaces/${NS}`).catch(() => undefined);
  h2.close();
  admin.close();
});

describe('KubeRest over HTTP/2 against kube-apiserver', () => {
  it('lists, applies, watches and runs an informer on one HTTP/2 connection', async () => {
    await h2.apply(`/api/v1/namespaces/${NS}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }, 'podfabric-test');
    const seen: string[] = [];
    const informer = new Informer<KObj>(h2, `/api/v1/namespaces/${NS}/configmaps`, { onAdd: (o) => seen.push(`add ${o.metadata.name}`), onUpdate: (_o, n) => seen.push(`update ${n.metadata.name}`) });
    informer.start();
    await informer.waitForSync();
    const list = await h2.get<{ metadata: { resourceVersion: string } }>(`/api/v1/namespaces/${NS}/configmaps`);
    const events: string[] = [];
    const w = h2.watch<KObj>(`/api/v1/namespaces/${NS}/configmaps?watch=1&resourceVersion=${list.metadata.resourceVersion}`, (e) => events.push(`${e.type} ${e.object.metadata.name}`));
    await h2.apply(`/api/v1/namespaces/${NS}/configmaps/one`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'one' }, data: { a: '1' } }, 'podfabric-test');
    await h2.apply(`/api/v1/namespaces/${NS}/configmaps/one`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'one' }, data: { a: '2' } }, 'podfabric-test');
    for (let i = 0; i < 200 && (events.length < 2 || seen.length < 2); i++) await new Promise((r) => setImmediate(r)).then(() => h2.get(`/api/v1/namespaces/${NS}/configmaps/one`));
    expect(events).toEqual(['ADDED one', 'MODIFIED one']);
    expect(seen).toEqual(['add one', 'update one']);
    const missing = await h2.get(`/api/v1/namespaces/${NS}/configmaps/nope`).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(KubeError);
    expect((missing as KubeError).code).toBe(404);
    w.stop();
    await expect(w.done).resolves.toBeUndefined();
    informer.stop();
    expect(h2.http2Sessions).toBe(1);
  });

  it('after its HTTP/2 session is destroyed, an informer watches again from its last version: no relist', async () => {
    const path = `/api/v1/namespaces/${NS}/configmaps`;
    const cm = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { a: '1' } });
    await admin.apply(`${path}/before`, cm('before'), 'podfabric-test');
    const deleted: string[] = [];
    const informer = new Informer<KObj>(h2, path, { onDelete: (o) => deleted.push(o.metadata.name!) });
    informer.start();
    await informer.waitForSync();
    // An object that arrives through the watch proves the watch stream is open.
    await admin.apply(`${path}/watched`, cm('watched'), 'podfabric-test');
    await until(() => informer.get(`${NS}/watched`) !== undefined);
    const sessions = h2.http2Sessions;
    // What an unanswered ping does (h2.ts): every stream on the session fails at once. (The session is private.)
    const conn = (h2 as unknown as { h2: { session?: http2.ClientHttp2Session } }).h2;
    conn.session!.destroy(new Error('HTTP/2 ping not answered'));
    await admin.request('DELETE', `${path}/before`);
    await admin.apply(`${path}/after`, cm('after'), 'podfabric-test');
    await until(() => informer.get(`${NS}/after`) !== undefined && informer.get(`${NS}/before`) === undefined);
    expect(deleted).toEqual(['before']);
    expect(informer.list().map((o) => o.metadata.name).sort()).toEqual(['after', 'one', 'watched']);
    expect(informer.relists).toBe(1);
    expect(informer.rewatches).toBeGreaterThanOrEqual(1);
    expect(h2.http2Sessions).toBe(sessions + 1);
    informer.stop();
  });
});

async function until(f: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
