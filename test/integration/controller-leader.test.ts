/**
 * Controllers as real processes (`podfabric controller`, built by `npm run build`) against the real
 * apiserver: one leader at a time, and no duplicate or leaked block when the leader is SIGKILLed again
 * and again while nodes are being created.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IPPoolObj, NodeFabricObj } from '../../operator/api/kinds.js';
import { applyObjects, cleanCluster, ensureNamespace, kubeconfigPath, node, testRest, waitFor, type Listed } from '../support/kube.js';
import { API_PATH as API } from '../../operator/api/common.js';

const root = join(import.meta.dirname, '..', '..');
const rest = testRest();
const procs = new Map<string, { child: ChildProcess; port: Promise<number> }>();
let seq = 0;

function startController(): string {
  const id = `ctl-${++seq}`;
  const child = spawn(
    process.execPath,
    [
      join(root, 'bin/podfabric.js'),
      'controller',
      `--kubeconfig=${kubeconfigPath()}`,
      `--identity=${id}`,
      '--metrics-addr=127.0.0.1:0',
      '--lease-duration=2s',
      '--renew-deadline=1500ms',
      '--retry-period=250ms',
      '--qps=400',
      '--burst=800',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PODFABRIC_LOG_LEVEL: 'info' } },
  );
  const port = new Promise<number>((resolve) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        try {
          const j = JSON.parse(line) as { port?: number; msg?: string };
          if (j.msg?.includes('listening') && j.port) resolve(j.port);
        } catch {
          /* partial line */
        }
      }
      if (buf.length > 1e6) buf = buf.slice(-1e5);
    });
  });
  child.stderr!.resume();
  procs.set(id, { child, port });
  child.on('exit', () => procs.delete(id));
  return id;
}

async function leaseHolder(): Promise<string | undefined> {
  const l = await rest
    .get<{ spec: { holderIdentity?: string } }>('/apis/coordination.k8s.io/v1/namespaces/podfabric-system/leases/podfabric-controller')
    .catch(() => undefined);
  return l?.spec.holderIdentity || undefined;
}

async function leaderGauge(id: string): Promise<number> {
  const p = procs.get(id);
  if (!p) return 0;
  const port = await p.port;
  // A controller that lost its lease has exited on purpose (fail-stop): it leads nothing.
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
  return Number(/^podfabric_controller_leader\{[^}]*\} (\d)/m.exec(text)?.[1] ?? 0);
}

/**
 * The holder of the lease once it also reports itself leader, and is not `not`. With a 1.5 s renew
 * deadline a leader on a loaded machine may step down and exit (fail-stop, as designed): then the other
 * one takes over, and that one is the leader this returns.
 */
function leaderReporting(what: string, not?: string): Promise<string> {
  return waitFor(what, async () => {
    const h = await leaseHolder();
    return h && h !== not && procs.has(h) && (await leaderGauge(h)) === 1 ? h : undefined;
  }, 20_000);
}

function kill(id: string, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const p = procs.get(id);
  if (!p) return Promise.resolve();
  return new Promise((r) => {
    p.child.once('exit', () => r());
    p.child.kill(sig);
  });
}

async function checkBlocks(expectNodes: string[]) {
  const fabrics = (await rest.get<Listed<NodeFabricObj>>(`${API}/nodefabrics`)).items;
  const blocks = fabrics.flatMap((f) => f.spec.podCIDRs ?? []);
  const dupes = blocks.filter((b, i) => blocks.indexOf(b) !== i);
  const names = fabrics.map((f) => f.metadata.name).sort();
  return { fabrics, blocks, dupes, names, leaked: names.filter((n) => !expectNodes.includes(n)), missing: expectNodes.filter((n) => !names.includes(n)) };
}

beforeAll(async () => {
  await cleanCluster(rest);
  await ensureNamespace('podfabric-system');
  await applyObjects([{ apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'chaos' }, spec: { cidr: '10.128.0.0/14', blockSize: 26 } }]);
});

afterAll(async () => {
  await Promise.all([...procs.keys()].map((id) => kill(id)));
  await cleanCluster(rest);
});

describe('controller leader election (real processes)', () => {
  it('two controllers: exactly one leads, the other takes over when it is killed, zero duplicate blocks', async () => {
    const a = startController();
    const b = startController();
    await Promise.all([procs.get(a)!.port, procs.get(b)!.port]);
    const first = await leaderReporting('a leader reporting itself');
    expect([a, b]).toContain(first);
    const nodes = Array.from({ length: 40 }, (_, i) => `l-${i}`);
    await Promise.all(nodes.map((n, i) => rest.request('POST', '/api/v1/nodes', node(n, `10.1.${Math.floor(i / 200)}.${(i % 200) + 10}`))));
    // Sample: never two leaders by their own account.
    for (let i = 0; i < 10; i++) {
      const gauges = await Promise.all([a, b].map(leaderGauge));
      expect(gauges.reduce((x, y) => x + y, 0)).toBeLessThanOrEqual(1);
      await new Promise((r) => setTimeout(r, 100));
    }
    await kill(first);
    const other = await leaderReporting('the standby takes over', first);
    expect([a, b]).toContain(other);
    const r = await waitFor('all 40 allocated', async () => {
      const c = await checkBlocks(nodes);
      return c.missing.length === 0 && c.fabrics.every((f) => f.spec.podCIDRs?.length === 1) ? c : undefined;
    }, 60_000);
    expect(r.dupes).toEqual([]);
    expect(r.leaked).toEqual([]);
    await kill(other, 'SIGTERM');
    // A clean stop releases the lease.
    await waitFor('lease released', async () => (await leaseHolder()) === undefined, 10_000);
    await Promise.all(nodes.map((n) => rest.request('DELETE', `/api/v1/nodes/${n}`)));
  });

  it('the leader SIGKILLed 20 times while 500 nodes are created: zero duplicate blocks, zero leaked blocks after convergence', async () => {
    startController();
    startController();
    const names = Array.from({ length: 500 }, (_, i) => `k-${String(i).padStart(3, '0')}`);
    let created = 0;
    const creator = (async () => {
      for (let i = 0; i < names.length; i += 10) {
        await Promise.all(names.slice(i, i + 10).map((n, j) => rest.request('POST', '/api/v1/nodes', node(n, `10.2.${Math.floor((i + j) / 200)}.${((i + j) % 200) + 10}`))));
        created += 10;
        await new Promise((r) => setTimeout(r, 40));
      }
    })();
    let kills = 0;
    while (kills < 20) {
      // Two replicas, as a Deployment would keep: one that stepped down on a loaded machine has exited.
      while (procs.size < 2) startController();
      const holder = await waitFor('a leader', leaseHolder, 30_000);
      if (!procs.has(holder)) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      // Let it work a little (mid-allocation), then kill it and bring up a replacement standby.
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      await kill(holder);
      kills++;
      startController();
      // Delete a few nodes along the way too: their blocks must be released, not leaked.
      if (kills % 5 === 0 && created > 50) await rest.request('DELETE', `/api/v1/nodes/${names[kills]}`).catch(() => undefined);
    }
    await creator;
    const deleted = [names[5], names[10], names[15], names[20]];
    const alive = names.filter((n) => !deleted.includes(n));
    const r = await waitFor(
      'convergence',
      async () => {
        const c = await checkBlocks(alive);
        return c.missing.length === 0 && c.leaked.length === 0 && c.fabrics.every((f) => f.spec.podCIDRs?.length === 1) ? c : undefined;
      },
      120_000,
      500,
    );
    expect(kills).toBe(20);
    expect(r.dupes).toEqual([]);
    expect(r.leaked).toEqual([]);
    expect(r.blocks).toHaveLength(alive.length);
    const pool = await waitFor('pool counts converge', async () => {
      const p = await rest.get<IPPoolObj>(`${API}/ippools/chaos`);
      return p.status?.blocksAllocated === alive.length ? p : undefined;
    }, 30_000);
    expect(pool.status!.blocksAllocated).toBe(496);
  });
});
