/**
 * What every benchmark shares about the processes it runs:
 * - it builds them first (`npm run build` for bin/podfabric.js, hack/apiserver/build.sh for the
 *   Kubernetes harness binary), printing the builder's progress and failing with its output;
 * - every process it starts is watched: if one exits while the benchmark still needs it, the wait in
 *   progress fails at once (`guard`) with that process's own last output, instead of a long timeout.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitUntil } from '../hack/lab/lib/daemon.js';

export const ROOT = join(import.meta.dirname, '..');

const say = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

/**
 * Runs a build step, its stderr passed through live (progress), both streams kept; throws with the
 * output's tail on failure. Returns stdout.
 */
async function step(what: string, cmd: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const t0 = Date.now();
  const p = spawn(cmd[0]!, cmd.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  p.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    process.stderr.write(d);
  });
  const code = await new Promise<number>((resolve, reject) => {
    p.on('error', reject);
    p.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
  });
  if (code !== 0) throw new Error(`${what} failed (${cmd.join(' ')} exited ${code}):\n${(out + err).trim().split('\n').slice(-40).join('\n')}`);
  say(`${what}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

/** `npm run build` (tsc): bin/podfabric.js runs the compiled code, which must match the sources. */
export async function buildOperator(): Promise<void> {
  say('building the operator (tsc -p tsconfig.json, as npm run build)');
  await step('operator build', [process.execPath, join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')]);
}

/** The system packages the namespaced benchmarks run (gobgpd, FRR, GoBGP's protos, CNI plugins): hack/install-deps.sh, idempotent. */
export async function installDeps(): Promise<void> {
  say('checking system packages: hack/install-deps.sh');
  await step('system packages', ['bash', join(ROOT, 'hack/install-deps.sh')], { ...process.env, PODFABRIC_WITH_CHROMIUM: '0' });
}

/** The harness binary (kube-apiserver / kube-controller-manager / kube-proxy); cold build takes minutes. */
export async function buildHarness(): Promise<string> {
  say('building (or finding cached) the Kubernetes harness binary: hack/apiserver/build.sh');
  const out = await step('harness build', ['bash', join(ROOT, 'hack/apiserver/build.sh')]);
  const bin = out.trim().split('\n').pop() ?? '';
  if (!bin) throw new Error('hack/apiserver/build.sh printed no binary path');
  return bin;
}

/**
 * What to stop if the benchmark itself is interrupted (SIGINT, SIGTERM): its `finally` blocks never run
 * then, and an apiserver or controller left behind would load the machine until someone finds it.
 * bench/run.ts runs these, newest first, before it exits.
 */
export const onInterrupt = new Set<() => Promise<void>>();

/** Runs every registered stop (newest first, each at most 20 s), for bench/run.ts's signal handler. */
export async function stopAllOnInterrupt(): Promise<void> {
  for (const stop of [...onInterrupt].reverse()) {
    await Promise.race([stop().catch(() => undefined), new Promise((r) => setTimeout(r, 20_000))]);
  }
}

/** Something the benchmark needs alive: `exited` rejects (with its output) the moment it is gone. */
export interface Watched {
  name: string;
  pid: number;
  /** Never resolves; rejects when the process exits before stop(). */
  exited: Promise<never>;
  /** The last lines of its output. */
  tail(lines?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** A process started by the benchmark; its stdout+stderr go to logFile (and a tail kept in memory). */
export function startChild(name: string, cmd: string[], opts: { logFile: string; env?: NodeJS.ProcessEnv; spawn?: SpawnOptions }): Watched & { child: ChildProcess } {
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, ...opts.spawn });
  const log: WriteStream = createWriteStream(opts.logFile, { flags: 'a' });
  let recent = '';
  const keep = (d: Buffer) => {
    log.write(d);
    recent = (recent + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let stopping = false;
  const tail = async (lines = 30) => recent.trim().split('\n').slice(-lines).join('\n');
  const exited = new Promise<never>((_, reject) => {
    const gone = (why: string) => {
      log.end();
      if (!stopping) void tail().then((t) => reject(new Error(`${name} exited (${why}) while the benchmark needed it; its last output (${opts.logFile}):\n${t}`)));
    };
    child.on('error', (e) => gone(`could not start: ${e.message}`));
    child.on('exit', (code, sig) => gone(sig ? `signal ${sig}` : `code ${code}`));
  });
  exited.catch(() => undefined); // observed through guard()
  const stop = (signal: NodeJS.Signals = 'SIGTERM') =>
    new Promise<void>((resolve) => {
      stopping = true;
      onInterrupt.delete(stop);
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill(signal);
    });
  onInterrupt.add(stop);
  return { name, child, pid: child.pid ?? -1, exited, tail, stop };
}

/** A process's CPU seconds so far (utime + stime; the apiserver harness runs etcd in the same process). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // clock ticks, USER_HZ = 100
}

/** Alive and not a zombie (a zombie answers kill -0 until its parent reaps it). */
export async function aliveNotZombie(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = /^\d+ \(.*\) (\S)/s.exec(stat)?.[1];
  return !!state && state !== 'Z' && state !== 'X';
}

/**
 * A process someone else started (a daemon with a pid file: the apiserver of start.sh, gobgpd, FRR),
 * polled every 200 ms. stop() only stops watching; the owner's script stops the process.
 */
export function watchPid(name: string, pid: number, logFile: string): Watched {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tail = async (lines = 30) => (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-lines).join('\n');
  const exited = new Promise<never>((_, reject) => {
    const poll = async () => {
      if (stopped) return;
      if (!(await aliveNotZombie(pid))) {
        void tail().then((t) => reject(new Error(`${name} (pid ${pid}) exited while the benchmark needed it; its last output (${logFile}):\n${t}`)));
        return;
      }
      timer = setTimeout(() => void poll(), 200);
      timer.unref();
    };
    void poll();
  });
  exited.catch(() => undefined);
  return {
    name,
    pid,
    exited,
    tail,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** p, unless one of the watched processes exits first: then its error (with its output). */
export function guard<T>(p: Promise<T>, watched: Watched[]): Promise<T> {
  return Promise.race([p, ...watched.map((w) => w.exited)]);
}

/** Polls fn (every everyMs) until it returns something truthy, failing early if a watched process dies. */
export function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, o: { timeoutMs: number; everyMs?: number; watched?: Watched[] }): Promise<T> {
  return guard(waitUntil(what, fn, o.timeoutMs, o.everyMs ?? 100), o.watched ?? []);
}

/** Peak resident set (VmHWM) of a live process, MB; 0 once it is gone. */
export async function peakRssMB(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmHWM:\s+(\d+) kB/.exec(s)?.[1] ?? 0) / 1024;
}

/** `--name value` / `--name=value` from the benchmark's own arguments, as a number. */
export function numberArg(args: string[], name: string, fallback: number): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const v = a === `--${name}` ? args[i + 1] : a.startsWith(`--${name}=`) ? a.slice(name.length + 3) : undefined;
    if (v === undefined) continue;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: want a positive number, got ${JSON.stringify(v)}`);
    return n;
  }
  return fallback;
}
