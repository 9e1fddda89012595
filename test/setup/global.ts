/**
 * vitest globalSetup of the integration project: ONE real kube-apiserver per test run (built from
 * k8s.io/kubernetes by hack/apiserver, embedded etcd, 127.0.0.1 only) in a fresh temp dir, with the
 * CRDs of crds/ installed when there are any. Workers inherit KUBECONFIG and PODFABRIC_TEST_KUBECONFIG.
 * Fails loudly (the apiserver's log tail) if it does not get ready.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crdFiles, installCrds, startApiserver, type ApiserverHandle } from '../support/apiserver.js';

let handle: ApiserverHandle | undefined;

/** Last resort when the run dies without teardown (Ctrl-C, crash): the apiserver is setsid'd and would outlive us. */
function killOnExit(): void {
  const h = handle;
  if (!h) return;
  try {
    process.kill(h.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  rmSync(h.dir, { recursive: true, force: true });
}

export async function setup(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pf-apiserver-'));
  const t0 = Date.now();
  handle = await startApiserver(dir, { fresh: true }); // throws with the log tail
  process.once('exit', killOnExit);
  process.env.KUBECONFIG = handle.kubeconfig;
  process.env.PODFABRIC_TEST_KUBECONFIG = handle.kubeconfig;
  const tReady = Date.now();
  const crds = await crdFiles();
  if (crds.length > 0) {
    try {
      await installCrds(handle.kubeconfig);
    } catch (e) {
      await teardown();
      throw e;
    }
  }
  console.log(
    `kube-apiserver ready in ${tReady - t0} ms${crds.length ? `, ${crds.length} CRDs established in ${Date.now() - tReady} ms` : ''} (KUBECONFIG=${handle.kubeconfig})`,
  );
}

export async function teardown(): Promise<void> {
  const h = handle;
  handle = undefined;
  process.off('exit', killOnExit);
  await h?.stop();
}
