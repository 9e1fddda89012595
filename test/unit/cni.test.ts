import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildConflist, pluginsPresent, removeConfig, writeConfigAtomic } from '../../operator/cni/conflist.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const dirs: string[] = [];
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'pf-cni-unit-'));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('buildConflist', () => {
  it('IPv4 only: bridge with the pod gateway, host-local over the node CIDR, no masquerade, portmap when present, MTU', () => {
    const c = buildConflist({ bridge: 'cni0', podCidrs: ['10.244.3.0/24'], portmap: true, dataDir: '/var/lib/cni/networks', mtu: 1450 }) as Any;
    expect(c.cniVersion).toBe('1.0.0');
    expect(c.name).toBe('podfabric');
    expect(c.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap']);
    expect(c.plugins[0]).toEqual({
      type: 'bridge',
      bridge: 'cni0',
      isGateway: true,
      isDefaultGateway: false,
      ipMasq: false,
      hairpinMode: true,
      mtu: 1450,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.3.0/24', gateway: '10.244.3.1' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: '/var/lib/cni/networks' },
    });
    expect(c.plugins[1]).toEqual({ type: 'portmap', capabilities: { portMappings: true } });
  });

  it('IPv6 only: one v6 range, ::/0, canonical text', () => {
    const c = buildConflist({ name: 'pf-test', bridge: 'br-pods', podCidrs: ['FD00:10:244:0003::/64'], portmap: false, dataDir: '/d' }) as Any;
    expect(c.name).toBe('pf-test');
    expect(c.plugins).toHaveLength(1);
    expect(c.plugins[0].bridge).toBe('br-pods');
    expect(c.plugins[0].ipam.ranges).toEqual([[{ subnet: 'fd00:10:244:3::/64', gateway: 'fd00:10:244:3::1' }]]);
    expect(c.plugins[0].ipam.routes).toEqual([{ dst: '::/0' }]);
  });

  it('dual-stack: one range set per family, default routes for both, in the given order; no MTU key without MTU', () => {
    const c = buildConflist({ bridge: 'cni0', podCidrs: ['10.244.3.0/24', 'fd00:10:244:3::/64'], portmap: false, dataDir: '/d' }) as Any;
    expect(c.plugins).toHaveLength(1);
    expect(c.plugins[0].ipam.ranges).toEqual([[{ subnet: '10.244.3.0/24', gateway: '10.244.3.1' }], [{ subnet: 'fd00:10:244:3::/64', gateway: 'fd00:10:244:3::1' }]]);
    expect(c.plugins[0].ipam.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: '::/0' }]);
    expect('mtu' in c.plugins[0]).toBe(false);
    const v6first = buildConflist({ bridge: 'cni0', podCidrs: ['fd00:10:244:3::/64', '10.244.3.0/24'], portmap: true, dataDir: '/d' }) as Any;
    expect(v6first.plugins[0].ipam.routes).toEqual([{ dst: '::/0' }, { dst: '0.0.0.0/0' }]);
    expect(v6first.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap']);
  });

  it('small but usable CIDRs work (/30, /126)', () => {
    const c = buildConflist({ bridge: 'cni0', podCidrs: ['10.1.0.4/30', 'fd00::4/126'], portmap: false, dataDir: '/d' }) as Any;
    expect(c.plugins[0].ipam.ranges).toEqual([[{ subnet: '10.1.0.4/30', gateway: '10.1.0.5' }], [{ subnet: 'fd00::4/126', gateway: 'fd00::5' }]]);
  });

  it.each([
    [{ podCidrs: [] }, /no valid pod CIDR/],
    [{ podCidrs: ['10.244.3.1/24'] }, /invalid pod CIDR/],
    [{ podCidrs: ['banana'] }, /invalid pod CIDR/],
    [{ podCidrs: ['10.244.3.0/24', '10.244.4.0/24'] }, /more than one IPv4/],
    [{ podCidrs: ['10.244.3.0/31'] }, /too small/],
    [{ podCidrs: ['fd00::/127'] }, /too small/],
    [{ podCidrs: ['fd00::/64'], mtu: 1000 }, /MTU 1000/],
    [{ mtu: 70000 }, /MTU 70000/],
    [{ name: 'bad name' }, /network name/],
    [{ bridge: 'a-bridge-name-too-long' }, /bridge name/],
    [{ dataDir: 'relative' }, /absolute/],
  ])('rejects %j', (over, err) => {
    expect(() => buildConflist({ bridge: 'cni0', podCidrs: ['10.244.3.0/24'], portmap: false, dataDir: '/d', ...over })).toThrow(err);
  });
});

describe('writeConfigAtomic / removeConfig', () => {
  it('writes, skips identical content, rewrites changed content, leaves no temp files', async () => {
    const dir = await tempDir();
    expect(await writeConfigAtomic(dir, '10-podfabric.conflist', 'a')).toBe('written');
    const m1 = (await stat(join(dir, '10-podfabric.conflist'))).mtimeMs;
    expect(await writeConfigAtomic(dir, '10-podfabric.conflist', 'a')).toBe('unchanged');
    expect((await stat(join(dir, '10-podfabric.conflist'))).mtimeMs).toBe(m1);
    expect(await writeConfigAtomic(dir, '10-podfabric.conflist', 'b')).toBe('written');
    expect(await readFile(join(dir, '10-podfabric.conflist'), 'utf8')).toBe('b');
    expect(await readdir(dir)).toEqual(['10-podfabric.conflist']);
    expect((await stat(join(dir, '10-podfabric.conflist'))).mode & 0o777).toBe(0o644);
  });

  it('creates the directory; concurrent writers never leave a torn file', async () => {
    const dir = join(await tempDir(), 'net.d');
    const contents = Array.from({ length: 20 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(50_000) }));
    const res = await Promise.all(contents.map((c) => writeConfigAtomic(dir, '10-podfabric.conflist', c)));
    expect(res.every((r) => r === 'written' || r === 'unchanged')).toBe(true);
    expect(contents).toContain(await readFile(join(dir, '10-podfabric.conflist'), 'utf8'));
    expect(await readdir(dir)).toEqual(['10-podfabric.conflist']);
  });

  it('refuses names that are paths or hidden', async () => {
    const dir = await tempDir();
    await expect(writeConfigAtomic(dir, '../x.conflist', 'a')).rejects.toThrow(/bad file name/);
    await expect(writeConfigAtomic(dir, '.x', 'a')).rejects.toThrow(/bad file name/);
  });

  it('removeConfig removes once, then reports nothing to remove', async () => {
    const dir = await tempDir();
    await writeConfigAtomic(dir, '10-podfabric.conflist', 'a');
    expect(await removeConfig(dir, '10-podfabric.conflist')).toBe(true);
    expect(await removeConfig(dir, '10-podfabric.conflist')).toBe(false);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('pluginsPresent', () => {
  it('lists the executable plugins we use, nothing else', async () => {
    const dir = await tempDir();
    for (const p of ['bridge', 'host-local', 'portmap', 'macvlan']) {
      await writeFile(join(dir, p), '#!/bin/sh\n');
      await chmod(join(dir, p), 0o755);
    }
    await writeFile(join(dir, 'loopback'), 'not executable');
    await mkdir(join(dir, 'sub'));
    expect(await pluginsPresent(dir)).toEqual(['bridge', 'host-local', 'portmap']);
    expect(await pluginsPresent(join(dir, 'missing'))).toEqual([]);
  });
});
