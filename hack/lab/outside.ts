/**
 * The lab's outside client: a host beyond the spine, outside every cluster range, like a user on the
 * Internet or in another data centre (issue #14).
 *
 *       pf-lab-ext  203.0.113.10/24 (TEST-NET-3), fd00:203:0:113::10/64 with --dual-stack
 *           | eth0 ── ext
 *       pf-lab-spine 203.0.113.1, fd00:203:0:113::1 (a connected subnet: the spine announces it to the ToRs)
 *
 * It reaches LoadBalancer addresses through the fabric (spine → ToR (ECMP) → node → kube-proxy → pod)
 * and runs the lab pod server (hack/lab/pod-server.py) as "lab/outside": port 82 answers with the
 * source address it sees, so a pod learns whether it reached the outside with its own address or
 * the node's (natOutgoing). Removed with every other pf-lab-* namespace by `down`.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon, waitUntil } from './lib/daemon.js';
import { addAddress, addNamespace, addVeth, ip } from './lib/netns.js';
import { NS, ROOT, STATE, type LabPod } from './topology.js';

export const OUTSIDE = {
  ns: `${NS}ext`,
  ip4: '203.0.113.10',
  spine4: '203.0.113.1',
  ip6: 'fd00:203:0:113::10',
  spine6: 'fd00:203:0:113::1',
  /** What its server answers ("lab/outside", then the peer on PEER_PORT). */
  id: 'lab/outside',
} as const;

/** The port on which the lab pod server (pods and the outside client) answers "namespace/name PEER". */
export const PEER_PORT = 82;

/** The outside client as a connect() source (hack/lab/pods.ts). */
export function outsideClient(dualStack: boolean): LabPod {
  return { name: 'outside', namespace: 'lab', node: '', ns: OUTSIDE.ns, ips: [OUTSIDE.ip4, ...(dualStack ? [OUTSIDE.ip6] : [])] };
}

/** A port-82 answer → who answered and the source address it saw; null for anything else. */
export function parsePeerAnswer(a: string | null): { who: string; peer: string } | null {
  const m = a ? /^(\S+) (\S+)$/.exec(a) : null;
  return m ? { who: m[1]!, peer: m[2]! } : null;
}

/** The namespace, its link to the spine (both directions routed), and its server. */
export async function addOutside(spineNs: string, dualStack: boolean): Promise<void> {
  await addNamespace(OUTSIDE.ns, { forwarding: false });
  await addVeth(OUTSIDE.ns, 'eth0', spineNs, 'ext');
  await addAddress(OUTSIDE.ns, 'eth0', `${OUTSIDE.ip4}/24`);
  await addAddress(spineNs, 'ext', `${OUTSIDE.spine4}/24`);
  await ip(['-n', OUTSIDE.ns, 'route', 'add', 'default', 'via', OUTSIDE.spine4]);
  if (dualStack) {
    await addAddress(OUTSIDE.ns, 'eth0', `${OUTSIDE.ip6}/64`);
    await addAddress(spineNs, 'ext', `${OUTSIDE.spine6}/64`);
    await ip(['-n', OUTSIDE.ns, '-6', 'route', 'add', 'default', 'via', OUTSIDE.spine6]);
  }
  const dir = join(STATE, 'outside');
  await mkdir(dir, { recursive: true });
  const ready = join(dir, 'server.ready');
  await rm(ready, { force: true });
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  await startDaemon(['ip', 'netns', 'exec', OUTSIDE.ns, python, join(ROOT, 'hack/lab/pod-server.py'), OUTSIDE.id, ready], { log: join(dir, 'server.log'), pidFile: join(dir, 'server.pid') });
  await waitUntil('the outside client\'s server', async () => existsSync(ready), 15_000, 20);
}
