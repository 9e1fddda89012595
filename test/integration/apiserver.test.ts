/**
 * The test harness itself: the global apiserver (test/setup/global.ts) is a real v1.34 kube-apiserver
 * built from k8s.io/kubernetes, stores objects, enforces RBAC, and a second one keeps its data and
 * port across a restart.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { crdFiles, startApiserver, type ApiserverHandle } from '../support/apiserver.js';

const execFileP = promisify(execFile);

function globalKubeconfig(): string {
  const p = process.env.PODFABRIC_TEST_KUBECONFIG ?? process.env.KUBECONFIG;
  if (!p) throw new Error('no KUBECONFIG: run under the integration project (test/setup/global.ts)');
  return p;
}

/** kubectl with a kubeconfig; resolves with exit code and output (never rejects on a non-zero exit). */
async function kubectlWith(kubeconfig: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP('kubectl', [`--kubeconfig=${kubeconfig}`, ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** kubectl that must succeed. */
async function kc(kubeconfig: string, args: string[]): Promise<string> {
  const r = await kubectlWith(kubeconfig, args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

describe('kube-apiserver harness (global apiserver)', () => {
  it('is a real v1.34 kube-apiserver', async () => {
    const v = JSON.parse(await kc(globalKubeconfig(), ['version', '-o', 'json']));
    expect(v.serverVersion.gitVersion).toMatch(/^v1\.34\.\d+$/);
    expect(v.serverVersion.major).toBe('1');
    expect(v.serverVersion.minor).toBe('34');
    const server = (await readFile(globalKubeconfig(), 'utf8')).match(/server: (\S+)/)?.[1];
    expect(server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('stores and returns a ConfigMap in a test namespace', async () => {
    const k = globalKubeconfig();
    const ns = `pf-harness-${Date.now().toString(36)}`;
    await kc(k, ['create', 'namespace', ns]);
    await kc(k, ['-n', ns, 'create', 'configmap', 'probe', '--from-literal=greeting=hello', '--from-literal=n=42']);
    const cm = JSON.parse(await kc(k, ['-n', ns, 'get', 'configmap', 'probe', '-o', 'json']));
    expect(cm.data).toEqual({ greeting: 'hello', n: '42' });
    expect(cm.metadata.namespace).toBe(ns);
    expect(cm.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    await kc(k, ['-n', ns, 'delete', 'configmap', 'probe']);
    // No kube-controller-manager: a deleted namespace would stay Terminating forever, so it stays.
  });

  it('enforces RBAC: admin may list nodes, an impersonated nobody may not', async () => {
    const k = globalKubeconfig();
    expect((await kc(k, ['auth', 'can-i', 'list', 'nodes'])).trim()).toBe('yes');
    const r = await kubectlWith(k, ['auth', 'can-i', 'list', 'nodes', '--as=someone']);
    expect(r.stdout.trim()).toBe('no');
    expect(r.code).toBe(1);
    const forbidden = await kubectlWith(k, ['get', 'nodes', '--as=someone']);
    expect(forbidden.code).not.toBe(0);
    expect(forbidden.stderr).toMatch(/forbidden/i);
  });

  it('has the CRDs of crds/ established', async () => {
    const files = await crdFiles();
    if (files.length === 0) return;
    const crds = JSON.parse(await kc(globalKubeconfig(), ['get', 'crd', '-o', 'json'])).items as {
      metadata: { name: string };
      status?: { conditions?: { type: string; status: string }[] };
    }[];
    expect(crds.length).toBeGreaterThanOrEqual(files.length);
    for (const c of crds) {
      expect(c.status?.conditions?.find((x) => x.type === 'Established')?.status, c.metadata.name).toBe('True');
    }
  });
});

describe('kube-apiserver harness (own apiserver)', () => {
  let current: ApiserverHandle | undefined;
  afterAll(async () => {
    await current?.stop(false);
  });

  it('keeps its data and port across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pf-apiserver-restart-'));
    const a = await startApiserver(dir, { fresh: true });
    current = a;
    const port = (await readFile(join(dir, 'port'), 'utf8')).trim();
    const kubeconfigBefore = await readFile(a.kubeconfig, 'utf8');
    expect(kubeconfigBefore).toContain(`server: https://127.0.0.1:${port}\n`);
    await kc(a.kubeconfig, ['create', 'configmap', 'survivor', '--from-literal=k=v']);

    await a.stop(true);
    expect(await kubectlWith(a.kubeconfig, ['get', '--raw', '/readyz', '--request-timeout=2s']).then((r) => r.code)).not.toBe(0);

    const b = await startApiserver(dir);
    current = b;
    expect(b.pid).not.toBe(a.pid);
    expect((await readFile(join(dir, 'port'), 'utf8')).trim()).toBe(port);
    expect(await readFile(b.kubeconfig, 'utf8')).toBe(kubeconfigBefore); // old kubeconfig still valid
    const cm = JSON.parse(await kc(a.kubeconfig, ['get', 'configmap', 'survivor', '-o', 'json']));
    expect(cm.data).toEqual({ k: 'v' });

    await b.stop();
    current = undefined;
    await expect(readFile(join(dir, 'port'), 'utf8')).rejects.toThrow(/ENOENT/);
  });
});
