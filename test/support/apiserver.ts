/**
 * Starts and stops the real kube-apiserver of hack/apiserver (k8s.io/kubernetes with embedded etcd,
 * loopback only) for tests: thin wrappers over hack/apiserver/{start,stop}.sh.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..');

export interface ApiserverHandle {
  dir: string;
  /** Path of DIR/kubeconfig: https://127.0.0.1:PORT, the apiserver's self-signed CA, an admin (system:masters) token. */
  kubeconfig: string;
  pid: number;
  /** SIGTERM (SIGKILL after 10 s); removes the directory unless keepData. Idempotent. */
  stop(keepData?: boolean): Promise<void>;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell. `echo` gets stderr lines as they come (build progress). */
function run(cmd: string, args: string[], opts: { timeoutMs?: number; echo?: (line: string) => void } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (!opts.echo) return;
      const lines = (partial + d).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) opts.echo(l);
    });
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

const script = (name: string) => join(repoRoot, 'hack', 'apiserver', name);

/**
 * Starts an apiserver on DIR (building it first if needed: ~6 min cold) and resolves once /readyz is 200.
 * Reusing a DIR keeps its data and port unless `fresh`. Rejects with the apiserver's log tail.
 */
export async function startApiserver(dir: string, opts: { fresh?: boolean } = {}): Promise<ApiserverHandle> {
  const r = await run('bash', [script('start.sh'), dir, ...(opts.fresh ? ['--fresh'] : [])], {
    timeoutMs: 20 * 60_000, // a cold build included
    echo: (line) => {
      if (line.startsWith('apiserver: ')) process.stderr.write(`${line}\n`); // build progress
    },
  });
  if (r.code !== 0) throw new Error(`kube-apiserver did not start on ${dir} (exit ${r.code}):\n${r.stderr.slice(-6000)}`);
  const pid = Number((await readFile(join(dir, 'pid'), 'utf8')).trim());
  return {
    dir,
    kubeconfig: join(dir, 'kubeconfig'),
    pid,
    stop: async (keepData = false) => {
      const s = await run('bash', [script('stop.sh'), dir, ...(keepData ? ['--keep-data'] : [])], { timeoutMs: 60_000 });
      if (s.code !== 0) throw new Error(`stop.sh ${dir} exited ${s.code}: ${s.stderr.trim()}`);
    },
  };
}

/** The CRD manifests in <repo>/crds/ (*.yaml), sorted; empty if there are none. */
export async function crdFiles(): Promise<string[]> {
  const names = await readdir(join(repoRoot, 'crds')).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.yaml')).sort().map((n) => join(repoRoot, 'crds', n));
}

/** Installs <repo>/crds/ with server-side apply and waits until every CRD is Established. */
export async function installCrds(kubeconfig: string): Promise<void> {
  const kubectl = async (args: string[]) => {
    const r = await run('kubectl', [`--kubeconfig=${kubeconfig}`, ...args], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r;
  };
  await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=podfabric-test', '-f', join(repoRoot, 'crds')]);
  await kubectl(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s']);
}
