/**
 * The node's CNI network configuration: the standard reference plugins, bridge + host-local (one range
 * per address family) + portmap when present. No IP masquerade: pods talk to pods without NAT.
 * The runtime (containerd / CRI-O) sets up the pod's loopback itself, so no loopback conflist is written.
 */
import { access, mkdir, readFile, rename, rm, writeFile, open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { formatCidr, gatewayOf, parseCidr } from '../lib/ip.js';

export interface ConflistOptions {
  name?: string;
  bridge: string;
  podCidrs: string[];
  mtu?: number;
  portmap: boolean;
  dataDir: string;
}

export function buildConflist(o: ConflistOptions): Record<string, unknown> {
  const cidrs = o.podCidrs.map((c) => parseCidr(c)).filter((c): c is NonNullable<typeof c> => !!c);
  if (cidrs.length === 0) throw new Error('buildConflist: no valid pod CIDR');
  const ranges = cidrs.map((c) => [{ subnet: formatCidr(c), gateway: gatewayOf(c) }]);
  const routes = [...new Set(cidrs.map((c) => (c.family === 4 ? '0.0.0.0/0' : '::/0')))].map((dst) => ({ dst }));
  const plugins: Record<string, unknown>[] = [
    {
      type: 'bridge',
      bridge: o.bridge,
      isGateway: true,
      isDefaultGateway: false,
      ipMasq: false,
      hairpinMode: true,
      ...(o.mtu ? { mtu: o.mtu } : {}),
      ipam: { type: 'host-local', ranges, routes, dataDir: o.dataDir },
    },
  ];
  if (o.portmap) plugins.push({ type: 'portmap', capabilities: { portMappings: true }, snat: false });
  return { cniVersion: '1.0.0', name: o.name ?? 'podfabric', plugins };
}

export async function pluginsPresent(binDir = '/usr/lib/cni'): Promise<string[]> {
  const out: string[] = [];
  for (const p of ['bridge', 'host-local', 'loopback', 'portmap']) {
    try {
      await access(join(binDir, p), constants.X_OK);
      out.push(p);
    } catch {
      /* absent */
    }
  }
  return out;
}

/** Temp file in the same directory, fsync, rename: readers see the old file or the new one, never half. */
export async function writeConfigAtomic(dir: string, filename: string, content: string): Promise<'written' | 'unchanged'> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, filename);
  const old = await readFile(path, 'utf8').catch(() => null);
  if (old === content) return 'unchanged';
  const tmp = join(dir, `.${filename}.${process.pid}.tmp`);
  await writeFile(tmp, content, { mode: 0o644 });
  const fh = await open(tmp, 'r');
  await fh.sync();
  await fh.close();
  await rename(tmp, path);
  return 'written';
}

export async function removeConfig(dir: string, filename: string): Promise<void> {
  await rm(join(dir, filename), { force: true });
}
