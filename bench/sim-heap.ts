/**
 * `npm run bench -- scale` runs N simulated agents in one process (the issue asks for one): at 5,000 their
 * caches are gigabytes of heap, far past Node's default limit, and their syncs allocate steadily. The
 * benchmark re-runs itself once with a heap sized for N and a larger young generation (fewer scavenges,
 * less short-lived garbage promoted into the old generation that every mark-compact walks). A harness
 * setting: a real agent is its own process with its own small heap.
 */
import { spawn } from 'node:child_process';
import { numberArg } from './child.js';

/** --nodes N (or BENCH_NODES), 500 by default: 5,000 agents take long to start on the shared 2 cores. */
export const scaleNodes = (args: string[]) => numberArg(args, 'nodes', Number(process.env.BENCH_NODES ?? 500));

const MARK = 'PODFABRIC_BENCH_SIM_HEAP';

/** V8 flags for a process holding `nodes` simulated agents (~2 MB of heap each, measured at 2,000). */
export function simHeapFlags(nodes: number): string[] {
  return [`--max-old-space-size=${Math.max(4096, 2048 + nodes * 3)}`, '--max-semi-space-size=64'];
}

/**
 * Unless this process already runs with simHeapFlags: runs this same command again with them (output
 * shared, SIGINT/SIGTERM passed on, the whole group killed if it has not exited 30 s later) and exits
 * with its status. Returns only in the process that has them.
 */
export async function ensureSimHeap(nodes: number): Promise<void> {
  if (process.env[MARK]) return;
  const flags = simHeapFlags(nodes);
  process.stderr.write(`bench: scale: re-running with ${flags.join(' ')} for ${nodes} agents in this process\n`);
  // Its own process group, with the apiserver and controller it starts: a run whose one thread is too
  // saturated to handle a signal is killed whole, 30 s after the signal was passed on.
  const child = spawn(process.execPath, [...process.execArgv, ...flags, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, [MARK]: flags.join(' ') }, detached: true });
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      child.kill(sig);
      setTimeout(() => {
        process.stderr.write(`bench: scale: no exit 30 s after ${sig}; killing its process group\n`);
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 30_000).unref();
    });
  const code = await new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s === 'SIGINT' ? 130 : 143))));
  process.exit(code);
}
