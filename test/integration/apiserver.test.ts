/** The test harness itself: a real kube-apiserver built from k8s.io/kubernetes, with RBAC, that keeps its data across restarts. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../operator/lib/exec.js';
import { startApiserver } from '../support/apiserver.js';
import { kubectl } from '../support/kube.js';

describe('kube-apiserver harness', () => {
  it('is a real v1.34 apiserver with the podfabric CRDs established and RBAC enforced', async () => {
    const v = JSON.parse((await kubectl(['version', '-o', 'json'])).stdout);
    expect(v.serverVersion.gitVersion).toMatch(/^v1\.34\.\d+$/);
    const crds = (await kubectl(['get', 'crd', '-o', 'name'])).stdout;
    for (const k of ['ippools', 'bgppeers', 'fabricconfigs', 'nodefabrics']) expect(crds).toContain(`${k}.podfabric.io`);
    expect((await kubectl(['auth', 'can-i', 'list', 'nodes'])).stdout.trim()).toBe('yes');
    const r = await kubectl(['auth', 'can-i', 'list', 'nodes', '--as=someone'], { allowFail: true });
    expect(r.stdout.trim()).toBe('no');
  });

  it('keeps its data and port across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pf-apiserver-restart-'));
    const a = await startApiserver(dir, { fresh: true });
    const k = (args: string[]) => run(['kubectl', `--kubeconfig=${a.kubeconfig}`, ...args]);
    try {
      await k(['create', 'configmap', 'survivor', '--from-literal=k=v']);
      await a.stop(true);
      const b = await startApiserver(dir);
      expect(b.kubeconfig).toBe(a.kubeconfig);
      expect(JSON.parse((await k(['get', 'configmap', 'survivor', '-o', 'json'])).stdout).data).toEqual({ k: 'v' });
    } finally {
      await a.stop(false);
    }
  });
});
