/**
 * Leader election from its own thread (operator/kube/leader-thread.ts) against the real kube-apiserver:
 * a leader whose main thread is busy for three renew deadlines keeps its lease (the same elector on the
 * main thread loses it), and a leader that loses its lease while its main thread is busy is killed by
 * its lease thread (fail-stop), so it cannot write after a standby takes over.
 * Each leader is its own process (test/support/busy-leader.ts): the busy loop must not block this one.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureNamespace, kubeconfigPath, testRest, waitFor } from '../support/kube.js';

const NS = 'pf-leader-thread-test';
const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;
const root = join(import.meta.dirname, '..', '..');
const rest = testRest();
const leaseNames: string[] = [];
let seq = 0;

type Lease = { metadata: { resourceVersion: string }; spec: { holderIdentity?: string; renewTime?: string } };

function busyLeader(mode: 'thread' | 'inline', blockMs: number) {
  const lease = `busy-${mode}-${process.pid}-${++seq}`;
  leaseNames.push(lease);
  const identity = `${mode}-${seq}`;
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/busy-leader.ts'), mode, kubeconfigPath(), NS, lease, identity, String(blockMs)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PODFABRIC_LOG_LEVEL: 'info' },
  });
  const events: Array<{ event: string; leading?: boolean; msg?: string }> = [];
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const l of lines) {
      try {
        events.push(JSON.parse(l));
      } catch {
        /* not JSON */
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // 'close', not 'exit': the child's last output (the worker's log line before SIGKILL) is read by then.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const has = (e: string) => events.some((x) => x.event === e);
  return { lease, identity, child, events, has, exited, stderr: () => stderr };
}

const getLease = (name: string) => rest.get<Lease>(`${LEASES}/${name}`);

beforeAll(async () => {
  await ensureNamespace(NS);
});

afterAll(async () => {
  for (const name of leaseNames) await rest.request('DELETE', `${LEASES}/${name}`).catch(() => undefined);
});

describe('leader election on its own thread', () => {
  it('a leader whose main thread is busy for 3 renew deadlines keeps renewing and keeps the lease', async () => {
    const l = busyLeader('thread', 9_000);
    await waitFor('the thread leader to lead', async () => l.has('started'), 30_000);
    const renewals = new Set<string>();
    // While the main thread is blocked, the lease keeps being renewed by the worker.
    while (!l.has('unblocked')) {
      const lease = await getLease(l.lease);
      if (lease.spec.holderIdentity === l.identity && !l.has('unblocked') && lease.spec.renewTime) renewals.add(lease.spec.renewTime);
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await l.exited;
    expect(l.stderr()).not.toMatch(/Error/);
    expect(renewals.size).toBeGreaterThanOrEqual(3);
    expect(l.events.find((e) => e.event === 'unblocked')?.leading).toBe(true);
    expect(l.has('lost')).toBe(false);
    expect(r).toEqual({ code: 0, signal: null });
    // stop() released it.
    expect((await getLease(l.lease)).spec.holderIdentity ?? '').toBe('');
  }, 60_000);

  it('the same elector on the busy main thread loses the lease (the control)', async () => {
    const l = busyLeader('inline', 9_000);
    await waitFor('the inline leader to lead', async () => l.has('started'), 30_000);
    const r = await l.exited;
    expect(l.has('unblocked')).toBe(true);
    expect(l.has('lost')).toBe(true);
    expect(r.code).toBe(3);
  }, 60_000);

  it('a leader that loses its lease while its main thread is busy is killed by its lease thread', async () => {
    const l = busyLeader('thread', 120_000);
    await waitFor('the thread leader to lead', async () => l.has('started'), 30_000);
    // Another holder takes the lease (as a standby would after leaseDuration): the worker sees it at its
    // next renewal, tells the main thread, which is busy, and kills the process.
    const cur = await getLease(l.lease);
    await rest.request('PUT', `${LEASES}/${l.lease}`, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: l.lease, namespace: NS, resourceVersion: cur.metadata.resourceVersion },
      spec: { holderIdentity: 'thief', leaseDurationSeconds: 60, renewTime: new Date().toISOString().replace('Z', '000Z') },
    });
    const r = await l.exited;
    expect(r.signal).toBe('SIGKILL');
    expect(l.has('unblocked')).toBe(false);
    expect(l.events.some((e) => e.msg?.includes('killing the process'))).toBe(true);
    expect((await getLease(l.lease)).spec.holderIdentity).toBe('thief');
  }, 60_000);
});
