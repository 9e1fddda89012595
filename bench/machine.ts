/** Bench helper: a lab node's machine booted (namespace, gobgpd, agent watching, ToR neighbour configured), its Node not yet registered. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addNeighbors } from '../hack/lab/lib/frr.js';
import { waitUntil } from '../hack/lab/lib/daemon.js';
import { addNode, nodeDir, type LabNode, type LabState } from '../hack/lab/lab.js';

export async function bootMachine(s: LabState, n: LabNode): Promise<void> {
  await addNeighbors({ name: `pf-lab-tor${n.rack}`, ns: `pf-lab-tor${n.rack}`, asn: 65100 + n.rack, routerId: `172.20.${n.rack}.1`, neighbors: [] }, [{ address: n.ip4, remoteAs: 64512 }]);
  s.nodes.push(n);
  await addNode(s, n, { register: false });
  // The machine is booted: its agent is running and watching for its plan (as after kubelet registers it).
  await waitUntil('agent watching', async () => (await readFile(join(nodeDir(n.name), 'agent.log'), 'utf8').catch(() => '')).includes('watching this node'), 20_000, 20);
}

/** Times (ms since epoch) of the first agent log line with this message that satisfies pick. */
export async function agentLogTime(node: string, msg: string, pick: (o: Record<string, unknown>) => boolean = () => true): Promise<number | undefined> {
  const text = await readFile(join(nodeDir(node), 'agent.log'), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.msg === msg && pick(o)) return o.time as number;
    } catch {
      // not JSON
    }
  }
  return undefined;
}
