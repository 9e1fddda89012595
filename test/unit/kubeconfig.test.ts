/**
 * The small kubeconfig loader (kube/kubeconfig.ts) against @kubernetes/client-node's KubeConfig, the
 * loader it replaces in KubeRest: for each way a kubeconfig names a server and credentials, both give
 * the same server and the same TLS material and Authorization header.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { LightKubeConfig } from '../../operator/kube/kubeconfig.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const dir = mkdtempSync(join(tmpdir(), 'pf-kubeconfig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'ca.crt'), 'CA FROM FILE');
writeFileSync(join(dir, 'token'), 'file-token\n');

function kubeconfig(name: string, cluster: Record<string, unknown>, user: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const path = join(dir, `${name}.kubeconfig`);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', ...cluster } }, { name: 'other', cluster: { server: 'https://10.9.9.9:443' } }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'main', context: { cluster: 'c', user: 'u' } }, { name: 'second', context: { cluster: 'other', user: 'u' } }],
      'current-context': 'main',
      ...extra,
    }),
  );
  return path;
}

async function both(path: string, context?: string) {
  const full = new KubeConfig();
  full.loadFromFile(path);
  const light = LightKubeConfig.load(path);
  if (context) {
    full.setCurrentContext(context);
    light.setCurrentContext(context);
  }
  const pick = async (kc: { applyToHTTPSOptions(o: https.RequestOptions): Promise<void>; getCurrentCluster(): { server: string } | null }) => {
    const o: https.RequestOptions = { headers: {} };
    await kc.applyToHTTPSOptions(o);
    const s = (x: unknown) => (x === undefined ? undefined : Buffer.from(x as Buffer).toString());
    return { server: kc.getCurrentCluster()?.server, ca: s(o.ca), cert: s(o.cert), key: s(o.key), auth: (o.headers as Record<string, string>).Authorization, insecure: o.rejectUnauthorized === false };
  };
  return { full: await pick(full), light: await pick(light) };
}

describe('LightKubeConfig (same answers as client-node)', () => {
  it.each([
    { what: 'inline CA and client certificate', cluster: { 'certificate-authority-data': b64('CA') }, user: { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') } },
    { what: 'a bearer token', cluster: { 'certificate-authority-data': b64('CA') }, user: { token: 'abc' } },
    { what: 'a CA file, relative to the kubeconfig', cluster: { 'certificate-authority': 'ca.crt' }, user: { token: 'y' } },
    { what: 'insecure-skip-tls-verify', cluster: { 'insecure-skip-tls-verify': true }, user: { token: 'x' } },
  ])('$what', async ({ what, cluster, user }) => {
    const r = await both(kubeconfig(what.replace(/\W+/g, '-'), cluster, user));
    expect(r.light).toEqual(r.full);
    expect(r.light.server).toBe('https://127.0.0.1:6443');
  });

  it('a tokenFile user: the file is read (as kubectl does; client-node only does so for in-cluster)', async () => {
    const r = await both(kubeconfig('tokenfile', {}, { tokenFile: 'token' }));
    expect(r.light).toEqual({ ...r.full, auth: 'Bearer file-token' });
  });

  it('another context: its cluster', async () => {
    const r = await both(kubeconfig('ctx', {}, { token: 't' }), 'second');
    expect(r.light).toEqual(r.full);
    expect(r.light.server).toBe('https://10.9.9.9:443');
  });

  it('an unknown context has no cluster (the CLI says so)', () => {
    const light = LightKubeConfig.load(kubeconfig('unknown', {}, {}));
    expect(light.getContextObject('nope')).toBeNull();
    expect(light.getContextObject('main')).toMatchObject({ cluster: 'c', user: 'u' });
  });
});
