/**
 * natOutgoing against the real kernel: the table planNat renders, loaded with `nft -f` into a node
 * namespace, masquerades a pod's connections to the outside and leaves pod-to-pod traffic alone.
 *
 *   pf-nat-pod (10.244.0.5, fd00:10:244::5) ─ pf-nat-node (gateway .1 / ::1; uplink 203.0.113.1, 2001:db8:ff::1)
 *                                                  ─ pf-nat-out (203.0.113.2, 2001:db8:ff::2; and 10.245.0.9, a
 *                                                               "pod of another pool" reached the same way)
 * pf-nat-out runs a TCP server that answers each connection with the peer address it sees.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IPPool, parseObject } from '../../operator/api/kinds.js';
import { NAT_TABLE, nftScript } from '../../operator/services/nat.js';
import { planNat } from '../../operator/services/index.js';
import { addAddress, addNamespace, addVeth, deleteNamespace, inNs, ip } from '../../hack/lab/lib/netns.js';
import { waitFor } from '../support/kube.js';
import { formatIP, parseIP } from '../../operator/lib/ip.js';

const POD = 'pf-nat-pod';
const NODE = 'pf-nat-node';
const OUT = 'pf-nat-out';
let server: ChildProcess | undefined;

const ipPool = (name: string, cidr: string, natOutgoing: boolean) => parseObject(IPPool, { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name }, spec: { cidr, natOutgoing } });
const plan = (nat: boolean) =>
  planNat({ ipPools: [ipPool('a', '10.244.0.0/16', nat), ipPool('b', '10.245.0.0/16', false), ipPool('a6', 'fd00:10:244::/56', nat)], config: { clusterIP: { cidrs: ['10.96.0.0/12'] } }, lbPools: [] });

/** The source address the outside server saw for a connection from the pod. */
async function seenBy(target: string): Promise<string> {
  const addr = target.includes(':') ? `[${target}]` : target;
  const r = await inNs(POD, ['socat', '-t', '3', '-T', '3', '-', `TCP:${addr}:8080,connect-timeout=3`], { input: '', allowFail: true, timeoutMs: 10_000 });
  const seen = parseIP(r.stdout.trim().replace(/^\[|\]$/g, ''));
  if (!seen) return '';
  // the dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d, in socat's long form
  if (seen.family === 6 && seen.value >> 32n === 0xffffn) return formatIP(4, seen.value & 0xffffffffn);
  return formatIP(seen.family, seen.value);
}

async function applyNat(nat: boolean): Promise<void> {
  const p = plan(nat);
  if (p.enabled) await inNs(NODE, ['nft', '-f', '-'], { input: nftScript(p.table) });
  else await inNs(NODE, ['nft', 'delete', 'table', 'inet', NAT_TABLE], { allowFail: true });
}

beforeAll(async () => {
  for (const ns of [POD, NODE, OUT]) await addNamespace(ns);
  await addVeth(POD, 'eth0', NODE, 'pod0');
  await addVeth(NODE, 'up0', OUT, 'eth0');
  await addAddress(POD, 'eth0', '10.244.0.5/24');
  await addAddress(POD, 'eth0', 'fd00:10:244::5/64');
  await addAddress(NODE, 'pod0', '10.244.0.1/24');
  await addAddress(NODE, 'pod0', 'fd00:10:244::1/64');
  await addAddress(NODE, 'up0', '203.0.113.1/24');
  await addAddress(NODE, 'up0', '2001:db8:ff::1/64');
  await addAddress(OUT, 'eth0', '203.0.113.2/24');
  await addAddress(OUT, 'eth0', '2001:db8:ff::2/64');
  await addAddress(OUT, 'lo', '10.245.0.9/32');
  await ip(['-n', POD, 'route', 'add', 'default', 'via', '10.244.0.1']);
  await ip(['-n', POD, '-6', 'route', 'add', 'default', 'via', 'fd00:10:244::1']);
  await ip(['-n', NODE, 'route', 'add', '10.245.0.0/16', 'via', '203.0.113.2']);
  // the fabric routes pod CIDRs: the outside can answer a pod address directly
  await ip(['-n', OUT, 'route', 'add', '10.244.0.0/16', 'via', '203.0.113.1']);
  await ip(['-n', OUT, '-6', 'route', 'add', 'fd00:10:244::/56', 'via', '2001:db8:ff::1']);
  server = spawn('ip', ['netns', 'exec', OUT, 'socat', 'TCP6-LISTEN:8080,ipv6only=0,fork,reuseaddr', 'SYSTEM:echo $SOCAT_PEERADDR'], { stdio: 'ignore' });
  await waitFor('the outside server', async () => (await seenBy('203.0.113.2')) !== '', 15_000);
});

afterAll(async () => {
  server?.kill('SIGKILL');
  for (const ns of [POD, NODE, OUT]) await deleteNamespace(ns);
});

describe('natOutgoing in the kernel', () => {
  it('without natOutgoing the outside sees the pod address', async () => {
    await applyNat(false);
    expect(await seenBy('203.0.113.2')).toBe('10.244.0.5');
    expect(await seenBy('2001:db8:ff::2')).toBe('fd00:10:244::5');
  });

  it('with natOutgoing the outside sees the node address, in both families; another pool’s pod still sees the pod address', async () => {
    await applyNat(true);
    await applyNat(true); // the replace-the-table transaction is idempotent
    const listed = (await inNs(NODE, ['nft', 'list', 'table', 'inet', NAT_TABLE])).stdout;
    expect(listed).toContain('ip saddr @nat-sources-v4 ip daddr != @cluster-dests-v4 masquerade');
    expect(listed.match(/chain postrouting/g)).toHaveLength(1);
    expect(await seenBy('203.0.113.2')).toBe('203.0.113.1');
    expect(await seenBy('2001:db8:ff::2')).toBe('2001:db8:ff::1');
    expect(await seenBy('10.245.0.9')).toBe('10.244.0.5');
  });

  it('turning natOutgoing off removes the table and the pod address is seen again', async () => {
    await applyNat(false);
    expect((await inNs(NODE, ['nft', 'list', 'tables'])).stdout).not.toContain(NAT_TABLE);
    expect(await seenBy('203.0.113.2')).toBe('10.244.0.5');
  });
});
