/**
 * kube-controller-manager's garbage collector and the podfabric controller on the same NodeFabrics: the
 * NodeFabric's owner reference (its Node) lets the GC delete it when the Node goes, even with no
 * podfabric controller running; with both running, a Node deletion ends in exactly one deletion of its
 * NodeFabric and no resurrection. Real kube-apiserver (global setup) and a real kube-controller-manager
 * running only its garbage collector.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_PATH as API } from '../../operator/api/common.js';
import type { NodeFabricObj } from '../../operator/api/kinds.js';
import { FabricController } from '../../operator/controller/controller.js';
import { KubeEventRecorder } from '../../operator/kube/events.js';
import type { WatchEvent } from '../../operator/kube/rest.js';
import { newRegistry } from '../../operator/lib/metrics.js';
import { harnessBinary, kcmArgs } from '../../hack/lab/processes.js';
import { applyObjects, cleanCluster, createNodes, kubeconfigPath, node, testRest, waitFor, type Listed } from '../support/kube.js';

const rest = testRest();
let kcm: ChildProcess;
let work: string;
let controller: FabricController | undefined;
let registry = newRegistry('controller', false);

const getNF = (name: string) => rest.get<NodeFabricObj & { metadata: { ownerReferences?: Array<{ kind: string; name: string; uid: string }> } }>(`${API}/nodefabrics/${name}`).catch(() => undefined);
const nodeUid = async (name: string) => (await rest.get<{ metadata: { uid: string } }>(`/api/v1/nodes/${name}`)).metadata.uid;

async function startController(): Promise<void> {
  registry = newRegistry('controller', false);
  controller = new FabricController({ rest, events: new KubeEventRecorder(rest, 'podfabric-controller'), registry, resyncMs: 60_000 });
  await controller.start();
}

async function stopController(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}

/** Reconciles that failed, from the controller's own histogram. */
async function reconcileErrors(): Promise<number> {
  const text = await registry.metrics();
  return [...text.matchAll(/^podfabric_controller_reconcile_duration_seconds_count\{[^}]*result="error"[^}]*\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
}

/** Every watch event on NodeFabrics from now on. */
async function recordNodeFabrics() {
  const list = await rest.get<Listed<unknown> & { metadata: { resourceVersion: string } }>(`${API}/nodefabrics`);
  const events: Array<{ type: string; name: string }> = [];
  const w = rest.watch<{ metadata: { name: string } }>(`${API}/nodefabrics?watch=1&resourceVersion=${list.metadata.resourceVersion}`, (e: WatchEvent<{ metadata: { name: string } }>) => {
    events.push({ type: e.type, name: e.object.metadata.name });
  });
  void w.done.catch(() => undefined);
  return { events, stop: () => w.stop() };
}

async function planned(name: string) {
  return waitFor(`${name} planned`, async () => {
    const nf = await getNF(name);
    return nf?.spec.podCIDRs?.length ? nf : undefined;
  });
}

beforeAll(async () => {
  await cleanCluster(rest);
  await applyObjects([{ apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'gc-pool' }, spec: { cidr: '10.250.0.0/16', blockSize: 24 } }]);
  work = await mkdtemp(join(tmpdir(), 'pf-kcm-'));
  const args = kcmArgs(await harnessBinary(), kubeconfigPath(), dirname(kubeconfigPath()), work, ['garbage-collector-controller']);
  kcm = spawn(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(join(work, 'kcm.log'));
  kcm.stdout!.pipe(out);
  kcm.stderr!.pipe(out);
  await waitFor('the garbage collector synced', async () => (await readFile(join(work, 'kcm.log'), 'utf8')).includes('Proceeding to collect garbage'), 60_000, 200);
}, 120_000);

afterAll(async () => {
  await stopController();
  kcm?.kill('SIGTERM');
  await cleanCluster(rest);
  await rest.request('DELETE', `${API}/ippools/gc-pool`).catch(() => undefined);
  if (work) await rm(work, { recursive: true, force: true });
});

describe("KCM's garbage collector and the controller", () => {
  it('the NodeFabric is owned by its Node; with the controller down, the GC deletes it when the Node goes, and a restarted controller does not bring it back', async () => {
    await startController();
    await createNodes(rest, [node('gc-a', '10.9.1.11')]);
    const nf = await planned('gc-a');
    expect(nf.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Node', name: 'gc-a', uid: await nodeUid('gc-a') })]);
    await stopController();

    await rest.request('DELETE', '/api/v1/nodes/gc-a');
    await waitFor('gc-a NodeFabric deleted by the garbage collector', async () => !(await getNF('gc-a')), 60_000, 100);

    const rec = await recordNodeFabrics();
    await startController();
    await createNodes(rest, [node('gc-b', '10.9.1.12')]);
    await planned('gc-b');
    // The controller rebuilt its state from what exists: gc-a's block is free again, gc-a stays gone.
    await waitFor('pool counts one block', async () => (await rest.get<{ status?: { blocksAllocated?: number } }>(`${API}/ippools/gc-pool`)).status?.blocksAllocated === 1);
    rec.stop();
    expect(rec.events.filter((e) => e.name === 'gc-a')).toEqual([]);
    expect(await getNF('gc-a')).toBeUndefined();
  });

  it('with both running, a Node deletion ends in exactly one deletion of its NodeFabric, no resurrection and no failed reconcile', async () => {
    if (!controller) await startController();
    await planned('gc-b');
    const errorsBefore = await reconcileErrors();
    const rec = await recordNodeFabrics();
    await rest.request('DELETE', '/api/v1/nodes/gc-b');
    await waitFor('gc-b NodeFabric gone and its block released', async () => !(await getNF('gc-b')) && (await rest.get<{ status?: { blocksAllocated?: number } }>(`${API}/ippools/gc-pool`)).status?.blocksAllocated === 0, 60_000, 100);
    // A full cycle afterwards: a new node is planned (the controller has gone through its queue since).
    await createNodes(rest, [node('gc-c', '10.9.1.13')]);
    await planned('gc-c');
    rec.stop();
    expect(rec.events.filter((e) => e.name === 'gc-b').map((e) => e.type)).toEqual(['DELETED']);
    expect(await reconcileErrors()).toBe(errorsBefore);
  });
});
