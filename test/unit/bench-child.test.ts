import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aliveNotZombie, guard, numberArg, onInterrupt, startChild, stopAllOnInterrupt, waitFor, watchPid } from '../../bench/child.js';

const never = new Promise<never>(() => undefined);
const dirs: string[] = [];
const tmp = async () => {
  const d = await mkdtemp(join(tmpdir(), 'pf-bench-child-'));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('bench child processes', () => {
  it('a wait that would never end fails once a child it needs exits, with the child\'s own output', async () => {
    const dir = await tmp();
    const c = startChild('fake controller', ['sh', '-c', 'echo starting; echo "cannot read kubeconfig" >&2; exit 3'], { logFile: join(dir, 'log') });
    await expect(guard(never, [c])).rejects.toThrow(/fake controller exited \(code 3\)[\s\S]*cannot read kubeconfig/);
  });

  it('an interrupted benchmark stops the children still running (a child stopped already is forgotten)', async () => {
    const dir = await tmp();
    const done = startChild('done', ['sleep', '30'], { logFile: join(dir, 'a') });
    await done.stop();
    expect(onInterrupt.has(done.stop)).toBe(false);
    const left = startChild('left', ['sleep', '30'], { logFile: join(dir, 'b') });
    expect(onInterrupt.has(left.stop)).toBe(true);
    expect(await aliveNotZombie(left.pid)).toBe(true);
    await stopAllOnInterrupt();
    await waitFor('the child is gone', async () => !(await aliveNotZombie(left.pid)), { timeoutMs: 10_000 });
    expect(onInterrupt.size).toBe(0);
  });

  it('a child stopped on purpose fails nothing', async () => {
    const dir = await tmp();
    const c = startChild('sleeper', ['sleep', '30'], { logFile: join(dir, 'log') });
    await c.stop();
    await expect(guard(Promise.resolve('done'), [c])).resolves.toBe('done');
  });

  it('waitFor fails early when a watched pid is gone', async () => {
    const dir = await tmp();
    const c = startChild('short', ['sh', '-c', 'echo daemon-died; sleep 0.2'], { logFile: join(dir, 'log') });
    const w = watchPid('daemon', c.pid, join(dir, 'log'));
    await expect(waitFor('something that never happens', async () => false, { timeoutMs: 60_000, watched: [w] })).rejects.toThrow(/daemon \(pid \d+\) exited[\s\S]*daemon-died/);
    await w.stop();
  });

  it('numberArg reads --name N and --name=N, refuses junk', () => {
    expect(numberArg(['--nodes', '500'], 'nodes', 5000)).toBe(500);
    expect(numberArg(['--nodes=200'], 'nodes', 5000)).toBe(200);
    expect(numberArg([], 'nodes', 5000)).toBe(5000);
    expect(() => numberArg(['--nodes', 'many'], 'nodes', 5000)).toThrow(/positive number/);
  });
});
