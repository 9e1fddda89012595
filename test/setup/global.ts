/**
 * vitest globalSetup for the integration project: one real kube-apiserver per run (built from
 * k8s.io/kubernetes by hack/apiserver), with the podfabric CRDs installed. Fails loudly if it does not
 * get ready. Workers inherit KUBECONFIG.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCrds, startApiserver, type ApiserverHandle } from '../support/apiserver.js';

let handle: ApiserverHandle | undefined;

export async function setup(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pf-apiserver-'));
  const t0 = Date.now();
  handle = await startApiserver(dir, { fresh: true });
  process.env.KUBECONFIG = handle.kubeconfig;
  process.env.PODFABRIC_TEST_KUBECONFIG = handle.kubeconfig;
  await installCrds(handle.kubeconfig);
  console.log(`kube-apiserver ready with CRDs in ${Date.now() - t0} ms (${handle.kubeconfig})`);
}

export async function teardown(): Promise<void> {
  await handle?.stop();
}
