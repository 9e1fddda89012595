/**
 * Leader election against the real kube-apiserver started by test/setup/global.ts (KUBECONFIG):
 * three electors in this process on one Lease with short timings (lease 3 s, renew 2 s, retry 0.5 s).
 * A background sampler checks every 10 ms that at most one live elector believes it leads.
 */
import { ApiException, CoordinationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeRest } from '../../operator/kube/rest.js';
import { LeaderElector } from '../../operator/kube/leader.js';
import { ConflictError, kubeLeaseStore, type LeaseStore } from '../../operator/kube/lease-store.js';
import { killable } from '../support/killable.js';
import { clientNodeLeaseStore } from '../support/lease-store-client-node.js';

const NS = 'pf-leader-test';
const TIMINGS = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let kc: KubeConfig;
let leases: CoordinationV1Api;
const leaseNames: string[] = [];

const code = (e: unknown) => (e instanceof ApiException ? (e as ApiException<unknown>).code : undefined);

beforeAll(async () => {
  const path = process.env.KUBECONFIG;
  if (!path) throw new Error('KUBECONFIG is not set: integration tests run under test/setup/global.ts');
  kc = new KubeConfig();
  kc.loadFromFile(path);
  leases = kc.makeApiClient(CoordinationV1Api);
  // No controller-manager here: a deleted namespace would stay Terminating, so it is kept and reused.
  await kc
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name: NS } } })
    .catch((e: unknown) => {
      if (code(e) !== 409) throw e;
    });
});

afterAll(async () => {
  for (const name of leaseNames) await leases.deleteNamespacedLease({ name, namespace: NS }).catch(() => undefined);
});

function leaseName(prefix: string): string {
  const name = `${prefix}-${Date.now().toString(36)}`;
  leaseNames.push(name);
  return name;
}

async function holder(name: string): Promise<string> {
  const l = await leases.readNamespacedLease({ name, namespace: NS });
  return l.spec?.holderIdentity ?? '';
}

/** A LeaseStore whose requests can be made to fail, as if this process were cut off from the apiserver. */
function partitionable(store: LeaseStore): { cut: boolean; store: LeaseStore } {
  const s: { cut: boolean; store: LeaseStore } = {
    cut: false,
    store: {
      describe: () => store.describe?.() ?? 'lease',
      get: () => (s.cut ? Promise.reject(new Error('partitioned')) : store.get()),
      create: (spec) => (s.cut ? Promise.reject(new Error('partitioned')) : store.create(spec)),
      update: (spec, rv) => (s.cut ? Promise.reject(new Error('partitioned')) : store.update(spec, rv)),
    },
  };
  return s;
}

interface Member {
  id: string;
  e: LeaderElector;
  /** SIGKILL from the outside (see test/support/killable.ts). */
  proc: ReturnType<typeof killable>;
  started: number[];
  stopped: number[];
  net: ReturnType<typeof partitionable>;
  done: Promise<void>;
}

/** Three electors on one Lease, and a sampler that records every moment two live ones lead. */
function cluster(lease: string, mkStore: () => LeaseStore) {
  const members: Member[] = ['ctl-0', 'ctl-1', 'ctl-2'].map((id) => {
    const net = partitionable(mkStore());
    const proc = killable(net.store);
    const m: Partial<Member> & { started: number[]; stopped: number[] } = { id, net, proc, started: [], stopped: [] };
    m.e = new LeaderElector({
      identity: id,
      store: proc.store,
      clock: proc.clock,
      ...TIMINGS,
      onStartedLeading: () => m.started.push(Date.now()),
      onStoppedLeading: () => m.stopped.push(Date.now()),
    });
    m.done = m.e.run();
    return m as Member;
  });
  const violations: string[] = [];
  let samples = 0;
  const sampler = setInterval(() => {
    samples++;
    const leading = members.filter((m) => m.e.isLeader() && !m.proc.dead).map((m) => m.id);
    if (leading.length > 1) violations.push(`${new Date().toISOString()}: ${leading.join(', ')}`);
  }, 10);
  const leaders = () => members.filter((m) => m.e.isLeader() && !m.proc.dead);
  const waitLeader = async (timeoutMs: number, not: Member[] = []): Promise<Member> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const l = leaders().find((m) => !not.includes(m));
      if (l) return l;
      if (Date.now() > end) throw new Error(`no leader within ${timeoutMs} ms on ${lease}`);
      await sleep(10);
    }
  };
  /** The Lease names the one elector that says it leads (retries over a renewal in flight). */
  const expectLeaseMatches = async () => {
    for (let i = 0; ; i++) {
      const ls = leaders();
      const h = await holder(lease);
      if (ls.length === 1 && h === ls[0]!.id && leaders().length === 1 && leaders()[0] === ls[0]) return h;
      if (i > 20) throw new Error(`lease holder '${h}' but leaders [${ls.map((m) => m.id)}]`);
      await sleep(50);
    }
  };
  const close = async () => {
    clearInterval(sampler);
    await Promise.all(members.filter((m) => !m.proc.dead).map((m) => m.e.stop())); // a killed process stops nothing
  };
  return { members, violations, leaders, waitLeader, expectLeaseMatches, close, samples: () => samples };
}

describe('leader election on a real Lease', () => {
  it('three electors: one leader at a time; clean stop hands over in ~1 s; a killed leader after ~leaseDuration', async () => {
    const name = leaseName('three');
    const c = cluster(name, () => clientNodeLeaseStore(kc, NS, name));
    try {
      const first = await c.waitLeader(5_000);
      // Sample for a few seconds: one leader, the same one, and the Lease names it.
      for (let i = 0; i < 6; i++) {
        await sleep(500);
        expect(c.leaders().map((m) => m.id)).toEqual([first.id]);
        expect(await c.expectLeaseMatches()).toBe(first.id);
      }
      const l0 = await leases.readNamespacedLease({ name, namespace: NS });
      expect(l0.spec?.leaseDurationSeconds).toBe(3);
      expect(l0.spec?.leaseTransitions).toBe(0);
      // MicroTime on the wire: the apiserver keeps microseconds.
      const raw = (await new KubeRest(kc).get<{ spec: { renewTime: string; acquireTime: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${name}`)).spec;
      expect(raw.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(raw.acquireTime).toMatch(/\.\d{6}Z$/);

      // Clean stop: the leader releases; a standby takes over within about a retry period.
      const t0 = Date.now();
      await first.e.stop();
      expect(await holder(name)).not.toBe(first.id);
      const second = await c.waitLeader(3_000, [first]);
      const handover = Date.now() - t0;
      expect(handover).toBeLessThan(1_500);
      expect(first.stopped).toEqual([]); // stop() is not "lost the lease"
      expect(await c.expectLeaseMatches()).toBe(second.id);
      expect((await leases.readNamespacedLease({ name, namespace: NS })).spec?.leaseTransitions).toBe(1);

      // Kill-style stop: no more renewals and no release; the last one takes over after ~leaseDuration.
      await sleep(1_000);
      const t1 = Date.now();
      second.proc.kill();
      const third = await c.waitLeader(8_000, [first, second]);
      const takeover = Date.now() - t1;
      // The last renewal was at most a retry period before the kill; the standby waits 3 s from when it saw it.
      expect(takeover).toBeGreaterThanOrEqual(3_000 - 500 - 100);
      expect(takeover).toBeLessThan(3_000 + 2 * 600 + 1_000);
      expect(await c.expectLeaseMatches()).toBe(third.id);
      expect((await leases.readNamespacedLease({ name, namespace: NS })).spec?.leaseTransitions).toBe(2);
      await sleep(1_500);
      expect(c.leaders().map((m) => m.id)).toEqual([third.id]);

      expect(c.violations).toEqual([]);
      expect(c.samples()).toBeGreaterThan(300);
      console.log(`leader: first ${first.id}; clean handover ${handover} ms; takeover after a kill ${takeover} ms`);
    } finally {
      await c.close();
    }
    // The last leader released on close.
    expect(await holder(name)).toBe('');
  });

  it('a leader cut off from the apiserver steps down (renew deadline) before a standby takes over (KubeRest store)', async () => {
    const name = leaseName('partition');
    const rest = new KubeRest(kc, { qps: 50, burst: 50, timeoutMs: 1_000, userAgent: 'podfabric-leader-test' });
    const c = cluster(name, () => kubeLeaseStore(rest, NS, name));
    try {
      const first = await c.waitLeader(5_000);
      await sleep(1_000);
      const t0 = Date.now();
      first.net.cut = true;
      const second = await c.waitLeader(8_000, [first]);
      const takeover = Date.now() - t0;
      // The cut-off leader gave up after renewDeadline (2 s from its last renewal), while the standby had to
      // wait leaseDuration (3 s from when it saw that renewal): the two never overlapped.
      expect(first.stopped).toHaveLength(1);
      expect(first.e.isLeader()).toBe(false);
      expect(first.stopped[0]! - t0).toBeLessThanOrEqual(2_000 + 100);
      expect(second.started[0]!).toBeGreaterThan(first.stopped[0]!);
      expect(second.started[0]! - first.stopped[0]!).toBeGreaterThanOrEqual(500);
      expect(takeover).toBeGreaterThanOrEqual(3_000 - 500 - 100);
      expect(await c.expectLeaseMatches()).toBe(second.id);
      await first.done; // run() returned after losing the lease
      first.net.cut = false;
      await sleep(1_500);
      expect(first.started).toHaveLength(1); // never leads again
      expect(c.leaders().map((m) => m.id)).toEqual([second.id]);
      expect(c.violations).toEqual([]);
    } finally {
      await c.close();
      rest.close();
    }
  });

  it('both stores: 404 → null, stale resourceVersion and create-over-existing → ConflictError', async () => {
    const rest = new KubeRest(kc, { userAgent: 'podfabric-leader-test' });
    try {
      for (const [kind, mk] of [
        ['client-node', (n: string) => clientNodeLeaseStore(kc, NS, n)],
        ['KubeRest', (n: string) => kubeLeaseStore(rest, NS, n)],
      ] as const) {
        const name = leaseName(`store-${kind.toLowerCase()}`);
        const s = mk(name);
        expect(await s.get(), kind).toBeNull();
        const spec = { holderIdentity: 'x', leaseDurationSeconds: 7, acquireTime: '2026-11-23T13:20:00.123456Z', renewTime: '2026-11-23T13:20:01.000001Z', leaseTransitions: 3 };
        const rv1 = await s.create(spec);
        await expect(s.create(spec)).rejects.toBeInstanceOf(ConflictError);
        const got = await s.get();
        expect(got?.resourceVersion).toBe(rv1);
        expect(got?.spec).toMatchObject({ holderIdentity: 'x', leaseDurationSeconds: 7, leaseTransitions: 3 });
        const rv2 = await s.update({ ...spec, holderIdentity: 'y' }, rv1);
        expect(rv2).not.toBe(rv1);
        await expect(s.update({ ...spec, holderIdentity: 'z' }, rv1)).rejects.toBeInstanceOf(ConflictError);
        expect((await s.get())?.spec.holderIdentity).toBe('y');
        // Release shape: empty holder.
        await s.update({ ...spec, holderIdentity: '', leaseDurationSeconds: 1 }, rv2);
        expect((await s.get())?.spec.holderIdentity ?? '').toBe('');
      }
    } finally {
      rest.close();
    }
  });
});
