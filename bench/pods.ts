/**
 * On the lab: a new Node object → the first pod on it pinging a pod on another rack. The whole pipeline:
 * allocation, plan, BGP session and advertisement, host routes, the agent writing the CNI configuration,
 * then (as kubelet would once the node is NetworkReady) CNI ADD and the first echo reply. p50/p99 over
 * N new nodes, alternating racks; each node's machine (namespace, gobgpd, agent) is booted before its Node
 * object is created.
 * Floor in the same run: CNI ADD of a pod on a node that is already ready, plus its first echo reply to
 * the same remote pod — the part no network operator can remove.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { waitUntil } from '../hack/lab/lib/daemon.js';
import { addPod, conflistPath, delPod, labNode, labRest, nodeObject, removeNode, type LabState } from '../hack/lab/lab.js';
import { bootMachine } from './machine.js';
import { onLab } from './lab-watch.js';
import { percentile, round } from './stats.js';

const N = Number(process.env.BENCH_NODES ?? 20);

/** Pings every 10 ms from the pod's namespace until the first reply (or deadline); resolves at that reply. */
function firstReply(podNs: string, ip: string, deadlineS = 20): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', podNs, 'ping', '-n', '-q', '-c', '1', '-i', '0.01', '-w', String(deadlineS), ip], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(performance.now()) : reject(new Error(`no reply from ${ip} in ${podNs} within ${deadlineS} s`))));
  });
}

const stat = (xs: number[]) => ({ p50: round(percentile(xs, 50)), p99: round(percentile(xs, 99)) });

export function main() {
  return onLab({ racks: 2, nodesPerRack: 2, dualStack: false, podsPerNode: 1, controllers: 1 }, measure);
}

async function measure(s: LabState) {
  const rest = labRest(s);
  try {
    const targets = new Map([1, 2].map((r) => [r, s.pods.find((p) => p.node === `r${r}n1`)!] as const));

    // Floor: a pod on a ready node (r1n2 / r2n2) → first reply from the other rack's pod.
    const floor: number[] = [];
    for (let i = 0; i < N; i++) {
      const rack = 1 + (i % 2);
      const target = targets.get(3 - rack)!;
      const t0 = performance.now();
      const pod = await addPod(s, `r${rack}n2`, `floor${i}`);
      floor.push((await firstReply(pod.ns, target.ips[0]!)) - t0);
      await delPod(s, `r${rack}n2`, `floor${i}`);
    }

    const total: number[] = [];
    const toCni: number[] = [];
    const cniAdd: number[] = [];
    const toReply: number[] = [];
    for (let i = 0; i < N; i++) {
      const rack = 1 + (i % 2);
      const target = targets.get(3 - rack)!;
      const n = labNode(rack, 20 + i, false);
      await bootMachine(s, n);
      const t0 = performance.now();
      await rest.request('POST', '/api/v1/nodes', nodeObject(n));
      // kubelet: NetworkReady once a CNI configuration exists; then the pod is set up.
      const tConf = await waitUntil('CNI configuration written', async () => existsSync(conflistPath(n.name)) && performance.now(), 30_000, 2);
      const pod = await addPod(s, n.name, 'p1');
      const tAdd = performance.now();
      const tReply = await firstReply(pod.ns, target.ips[0]!);
      total.push(tReply - t0);
      toCni.push(tConf - t0);
      cniAdd.push(tAdd - tConf);
      toReply.push(tReply - tAdd);
      await removeNode(s, n.name);
    }

    const out = {
      bench: 'pods',
      nodes: N,
      node_to_first_pod_reply_ms: stat(total),
      breakdown_ms: { node_to_cni_config: stat(toCni), cni_add: stat(cniAdd), cni_add_to_first_reply: stat(toReply) },
      floor_pod_on_ready_node_add_and_first_reply_ms: stat(floor),
    };
    console.log(`pods: new Node → first pod replies from a pod on the other rack: p50 ${out.node_to_first_pod_reply_ms.p50} ms, p99 ${out.node_to_first_pod_reply_ms.p99} ms (${N} nodes)`);
    console.log(`pods:   Node → CNI configuration written: p50 ${out.breakdown_ms.node_to_cni_config.p50} ms, p99 ${out.breakdown_ms.node_to_cni_config.p99} ms`);
    console.log(`pods:   CNI ADD: p50 ${out.breakdown_ms.cni_add.p50} ms; ADD → first reply: p50 ${out.breakdown_ms.cni_add_to_first_reply.p50} ms, p99 ${out.breakdown_ms.cni_add_to_first_reply.p99} ms`);
    console.log(`pods: floor, pod added on a ready node → first reply: p50 ${out.floor_pod_on_ready_node_add_and_first_reply_ms.p50} ms, p99 ${out.floor_pod_on_ready_node_add_and_first_reply_ms.p99} ms`);
    return out;
  } finally {
    rest.close();
  }
}
