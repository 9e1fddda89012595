import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConflist, writeConfigAtomic } from '../../operator/agent/cni.js';

describe('buildConflist', () => {
  it('IPv4: bridge with the pod gateway, host-local over the node CIDR, no masquerade, portmap when present', () => {
    const c = buildConflist({ bridge: 'cni0', podCidrs: ['10.244.3.0/24'], portmap: true, dataDir: '/var/lib/cni/networks', mtu: 1450 }) as any;
    expect(c.cniVersion).toBe('1.0.0');
    expect(c.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap']);
    expect(c.plugins[0]).toMatchObject({ bridge: 'cni0', isGateway: true, ipMasq: false, mtu: 1450 });
    expect(c.plugins[0].ipam).toEqual({ type: 'host-local', ranges: [[{ subnet: '10.244.3.0/24', gateway: '10.244.3.1' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: '/var/lib/cni/networks' });
  });
  it('dual-stack: one range set per family, default routes for both', () => {
    const c = buildConflist({ bridge: 'cni0', podCidrs: ['10.244.3.0/24', 'fd00:10:244:3::/64'], portmap: false, dataDir: '/d' }) as any;
    expect(c.plugins).toHaveLength(1);
    expect(c.plugins[0].ipam.ranges).toEqual([[{ subnet: '10.244.3.0/24', gateway: '10.244.3.1' }], [{ subnet: 'fd00:10:244:3::/64', gateway: 'fd00:10:244:3::1' }]]);
    expect(c.plugins[0].ipam.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: '::/0' }]);
    expect(c.plugins[0].mtu).toBeUndefined();
  });
  it('refuses to build without a CIDR', () => {
    expect(() => buildConflist({ bridge: 'cni0', podCidrs: [], portmap: false, dataDir: '/d' })).toThrow(/no valid pod CIDR/);
  });
});

describe('writeConfigAtomic', () => {
  it('writes, skips identical content, rewrites changed content, leaves no temp files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pf-cni-unit-'));
    expect(await writeConfigAtomic(dir, '10-podfabric.conflist', 'a')).toBe('written');
    expect(await writeConfigAtomic(dir, '10-podfabric.conflist', 'a')).toBe('unchanged');
    expect(await writeConfigAtomic(dir, '10-podfabric.conflist', 'b')).toBe('written');
    expect(await readFile(join(dir, '10-podfabric.conflist'), 'utf8')).toBe('b');
    expect(await readdir(dir)).toEqual(['10-podfabric.conflist']);
  });
});
