/** Starts and stops the real kube-apiserver of hack/apiserver for tests. */
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { run } from '../../operator/lib/exec.js';

export const repoRoot = join(import.meta.dirname, '..', '..');

export interface ApiserverHandle {
  dir: string;
  kubeconfig: string;
  pid: number;
  stop(keepData?: boolean): Promise<void>;
}

export async function startApiserver(dir: string, opts: { fresh?: boolean } = {}): Promise<ApiserverHandle> {
  const r = await run(['bash', join(repoRoot, 'hack/apiserver/start.sh'), dir, ...(opts.fresh ? ['--fresh'] : [])], { allowFail: true, timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`kube-apiserver did not start:\n${r.stderr.slice(-4000)}`);
  const pid = Number((await readFile(join(dir, 'pid'), 'utf8')).trim());
  return {
    dir,
    kubeconfig: join(dir, 'kubeconfig'),
    pid,
    stop: async (keepData = false) => {
      await run(['bash', join(repoRoot, 'hack/apiserver/stop.sh'), dir, ...(keepData ? ['--keep-data'] : [])], { allowFail: true });
    },
  };
}

/** Installs crds/ with server-side apply and waits until they are Established. */
export async function installCrds(kubeconfig: string): Promise<void> {
  const k = (args: string[]) => run(['kubectl', `--kubeconfig=${kubeconfig}`, ...args], { timeoutMs: 120_000 });
  await k(['apply', '--server-side', '--force-conflicts', '-f', join(repoRoot, 'crds')]);
  await k(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
}
