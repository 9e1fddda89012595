/**
 * The node's CNI configuration driven through the real reference plugins (/usr/lib/cni) the way a
 * runtime does it (hack/lab/lib/cni-runtime.ts): node namespace pf-rt-node, pods pf-rt-pod1/pf-rt-pod2.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConflist, pluginsPresent, writeConfigAtomic } from '../../operator/cni/conflist.js';
import { cidrContainsIP, parseCidr, parseIP } from '../../operator/lib/ip.js';
import { run } from '../../operator/lib/exec.js';
import { cniAdd, cniDel, cniResult, type Conflist } from '../../hack/lab/lib/cni-runtime.js';
import { addNamespace, cleanupByPrefix, deleteNamespace, ping } from '../../hack/lab/lib/netns.js';

const BIN = '/usr/lib/cni';
const NODE = 'pf-rt-node';
const POD1 = 'pf-rt-pod1';
const POD2 = 'pf-rt-pod2';
const POD3 = 'pf-rt-pod3';
const CIDR4 = '10.251.7.0/24';
const CIDR6 = 'fd00:251:7::/64';
const NAME = 'podfabric';

let dir: string;
let confPath: string;
let dataDir: string;
let cacheDir: string;

const inside = (cidr: string, ip: string) => {
  const c = parseCidr(cidr)!;
  const p = parseIP(ip);
  return !!p && cidrContainsIP(c, p.family, p.value);
};
const ipJson = async (ns: string, args: string[]) => JSON.parse((await run(['ip', '-n', ns, '-j', ...args])).stdout.trim() || '[]') as Array<Record<string, unknown>>;

async function cleanup() {
  await cleanupByPrefix('pf-rt-pod');
  await deleteNamespace(NODE);
}

beforeAll(async () => {
  await cleanup(); // leftovers of a killed run
  dir = await mkdtemp(join(tmpdir(), 'pf-rt-cni-'));
  dataDir = join(dir, 'ipam');
  cacheDir = join(dir, 'results');
  await addNamespace(NODE);
  const present = await pluginsPresent(BIN);
  expect(present).toEqual(expect.arrayContaining(['bridge', 'host-local', 'loopback']));
  const conf = buildConflist({ name: NAME, bridge: 'cni0', podCidrs: [CIDR4, CIDR6], mtu: 1400, portmap: present.includes('portmap'), dataDir });
  expect(await writeConfigAtomic(join(dir, 'net.d'), '10-podfabric.conflist', JSON.stringify(conf, null, 2) + '\n')).toBe('written');
  confPath = join(dir, 'net.d', '10-podfabric.conflist');
});

afterAll(async () => {
  await cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('CNI configuration through the reference plugins', () => {
  let ips1: string[] = [];

  it('ADD: the pod gets one address per family inside the node CIDRs, default routes via the gateways, the MTU', async () => {
    ips1 = await cniAdd(NODE, POD1, confPath, 'pod1', { cacheDir });
    expect(ips1).toHaveLength(2);
    const [v4, v6] = ips1;
    expect(inside(CIDR4, v4!)).toBe(true);
    expect(inside(CIDR6, v6!)).toBe(true);
    expect(v4).not.toBe('10.251.7.1'); // the gateway is the bridge's

    const r4 = await ipJson(POD1, ['-4', 'route', 'show', 'default']);
    expect(r4).toEqual([expect.objectContaining({ dst: 'default', gateway: '10.251.7.1', dev: 'eth0' })]);
    const r6 = await ipJson(POD1, ['-6', 'route', 'show', 'default']);
    expect(r6).toEqual([expect.objectContaining({ dst: 'default', gateway: 'fd00:251:7::1', dev: 'eth0' })]);

    const eth0 = (await ipJson(POD1, ['link', 'show', 'eth0']))[0]!;
    expect(eth0.mtu).toBe(1400);
    const lo = (await ipJson(POD1, ['link', 'show', 'lo']))[0]!;
    expect(lo.operstate === 'UNKNOWN' || (lo.flags as string[]).includes('UP')).toBe(true);

    // The node side: bridge with both gateways, the pod's veth enslaved to it.
    const br = (await ipJson(NODE, ['addr', 'show', 'cni0']))[0]!;
    const addrs = (br.addr_info as Array<{ local: string; prefixlen: number }>).map((a) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toEqual(expect.arrayContaining(['10.251.7.1/24', 'fd00:251:7::1/64']));
    const ports = await ipJson(NODE, ['link', 'show', 'master', 'cni0']);
    expect(ports).toHaveLength(1);

    // host-local keeps one file per address, named by the address, holding the container ID.
    const files = await readdir(join(dataDir, NAME));
    expect(files).toEqual(expect.arrayContaining([v4!, v6!]));
    expect((await readFile(join(dataDir, NAME, v4!), 'utf8')).split(/\s/)[0]).toBe('pod1');

    // The attachment's result is cached for DEL, like libcni does.
    const cached = await cniResult(confPath, 'pod1', { cacheDir });
    expect(cached?.ips?.map((i) => i.address.split('/')[0])).toEqual(ips1);
  });

  it('a second pod on the node reaches the first (v4 and v6) and the gateway, without NAT', async () => {
    const ips2 = await cniAdd(NODE, POD2, confPath, 'pod2', { cacheDir });
    expect(ips2).toHaveLength(2);
    expect(ips2).not.toEqual(ips1);
    expect(await ping(POD2, ips1[0]!)).toBe(true);
    expect(await ping(POD2, ips1[1]!)).toBe(true);
    expect(await ping(POD2, '10.251.7.1')).toBe(true);
    expect(await ping(POD1, ips2[0]!)).toBe(true);
    // No masquerade rules were installed by the bridge plugin (ipMasq: false).
    const nat = await run(['ip', 'netns', 'exec', NODE, 'iptables', '-t', 'nat', '-S'], { allowFail: true });
    expect(nat.stdout).not.toMatch(/MASQUERADE/);
  });

  it('DEL releases the host-local allocation and removes the pod; a new pod can get the address back', async () => {
    await cniDel(NODE, POD2, confPath, 'pod2', { cacheDir });
    await cniDel(NODE, POD1, confPath, 'pod1', { cacheDir });
    const files = await readdir(join(dataDir, NAME));
    for (const ip of ips1) expect(files).not.toContain(ip);
    expect(files.filter((f) => parseIP(f))).toEqual([]);
    expect(await cniResult(confPath, 'pod1', { cacheDir })).toBeUndefined();
    expect((await run(['ip', 'netns', 'list'])).stdout).not.toMatch(/pf-rt-pod[12]\b/);
    expect(await ipJson(NODE, ['link', 'show', 'master', 'cni0'])).toEqual([]);
    // DEL is idempotent (the runtime may repeat it): a second one succeeds.
    await cniDel(NODE, POD1, confPath, 'pod1', { cacheDir });
  });

  it('plugins 1.1.1: after the IPv4 pod CIDR changes, ADD fails until the old gateway leaves the bridge', async () => {
    // Recorded behaviour, not a wish: the bridge plugin allows one IPv4 address on the bridge unless
    // forceAddress is set (which would cut off the pods still using the old gateway).
    const conf = buildConflist({ name: NAME, bridge: 'cni0', podCidrs: ['10.251.9.0/24', CIDR6], portmap: false, dataDir }) as unknown as Conflist;
    await expect(cniAdd(NODE, POD3, conf, 'pod3', { cacheDir })).rejects.toThrow(/already has an IP address different from 10\.251\.9\.1\/24/);
    await run(['ip', '-n', NODE, 'addr', 'del', '10.251.7.1/24', 'dev', 'cni0']);
    const ips = await cniAdd(NODE, POD3, conf, 'pod3', { cacheDir });
    expect(inside('10.251.9.0/24', ips[0]!)).toBe(true);
    await cniDel(NODE, POD3, conf, 'pod3', { cacheDir });
  });

  it('a failing ADD leaves nothing behind (no namespace, no allocation)', async () => {
    const conf = JSON.parse(await readFile(confPath, 'utf8')) as Conflist;
    // A pool of one address (a /30 minus network, gateway, broadcast) on its own bridge (the bridge
    // plugin refuses a second IPv4 gateway address on cni0): the second ADD fails in host-local.
    const tiny: Conflist = {
      ...conf,
      name: 'pf-tiny',
      plugins: conf.plugins.map((p) =>
        p.type === 'bridge'
          ? { ...p, bridge: 'cni-tiny', ipam: { ...(p.ipam as object), ranges: [[{ subnet: '10.251.8.0/30', gateway: '10.251.8.1' }]], routes: [{ dst: '0.0.0.0/0' }] } }
          : p,
      ),
    };
    await cniAdd(NODE, POD1, tiny, 'tiny1', { cacheDir });
    await expect(cniAdd(NODE, POD3, tiny, 'tiny3', { cacheDir })).rejects.toThrow(/CNI ADD bridge failed.*no IP addresses available/);
    expect((await run(['ip', 'netns', 'list'])).stdout).not.toMatch(/pf-rt-pod3\b/);
    expect((await readdir(join(dataDir, 'pf-tiny'))).filter((f) => parseIP(f))).toEqual(['10.251.8.2']);
    await cniDel(NODE, POD1, tiny, 'tiny1', { cacheDir });
    expect(existsSync(join(dataDir, 'pf-tiny', '10.251.8.2'))).toBe(false);
  });
});
