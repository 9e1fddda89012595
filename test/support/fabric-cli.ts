/** Runs the real `kubectl fabric` plugin as a subprocess (integration and e2e tests). */
import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../operator/lib/exec.js';
import { repoRoot } from './apiserver.js';

export const FABRIC_BIN = join(repoRoot, 'bin', 'kubectl-fabric.js');

/** Rebuilds build/ when the plugin's compiled entry is missing or older than its sources. */
export async function ensureFabricBuilt(): Promise<void> {
  const out = join(repoRoot, 'build', 'operator', 'cli', 'fabric.js');
  const dirs = ['cli', 'policy'].map((d) => join(repoRoot, 'operator', d));
  const newest = Math.max(...(await Promise.all(dirs.map(async (d) => (await readdir(d)).map((f) => statSync(join(d, f)).mtimeMs)))).flat());
  if (!existsSync(out) || statSync(out).mtimeMs < newest) {
    await run(['npx', 'tsc', '-p', join(repoRoot, 'tsconfig.json')], { allowFail: true, timeoutMs: 300_000 });
  }
  if (!existsSync(out)) throw new Error(`${out} missing: npm run build failed`);
}

/**
 * The plugin with `args`: `node bin/kubectl-fabric.js`, or through kubectl's plugin lookup when
 * `pathDir` (a directory holding an executable `kubectl-fabric`) is given.
 */
export async function fabricCli(args: string[], opts: { pathDir?: string; kubeconfig?: string } = {}) {
  const env = { ...process.env, ...(opts.kubeconfig ? { KUBECONFIG: opts.kubeconfig } : {}) };
  if (opts.pathDir) {
    // kubectl finds plugins by executable name; npm installs bin/kubectl-fabric.js as `kubectl-fabric` the same way.
    return run(['kubectl', 'fabric', ...args], { allowFail: true, timeoutMs: 60_000, env: { ...env, PATH: `${opts.pathDir}:${process.env.PATH}` } });
  }
  return run(['node', FABRIC_BIN, ...args], { allowFail: true, timeoutMs: 60_000, env });
}
