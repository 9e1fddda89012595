/**
 * The node's CNI network configuration: the standard reference plugins, bridge + host-local (one range
 * set per address family) + portmap when present. No IP masquerade: pods talk to pods without NAT.
 *
 * Default route: the bridge plugin's `isDefaultGateway: true` adds a default route via the gateway
 * itself, and fails the ADD with "failed to add route ... file exists" when host-local also returns a
 * default route (plugins 1.1.1, measured here). We keep the default routes explicit in the IPAM section
 * (`routes: [{dst: 0.0.0.0/0}, {dst: ::/0}]`, no gw = via the range's gateway) and set
 * `isDefaultGateway: false`; the pod ends up with the same routes either way.
 *
 * Loopback: no loopback configuration is written. The runtime brings up the pod's `lo` itself:
 * containerd's CRI plugin (go-cni `WithLoNetwork`) runs the `loopback` plugin binary from the CNI bin
 * dir with a built-in config (`{"cniVersion":"0.3.1","name":"cni-loopback","plugins":[{"type":"loopback"}]}`,
 * ifname lo) before the default network, and CRI-O (ocicni) does the same. So the `loopback` BINARY must
 * be present (manager.ts checks), but a `99-loopback.conf` would be at best ignored (containerd loads only
 * the first file in lexical order, max_conf_num = 1) and at worst attached as a second network.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { familyBits, formatCidr, gatewayOf, parseCidr, type Cidr } from '../lib/ip.js';

export interface ConflistOptions {
  /** Network name (default "podfabric"); also host-local's state subdirectory. */
  name?: string;
  bridge: string;
  /** One CIDR per address family; its first usable address becomes the gateway on the bridge. */
  podCidrs: string[];
  mtu?: number;
  portmap: boolean;
  /** host-local state directory (allocations are files <dataDir>/<name>/<ip>). */
  dataDir: string;
}

export const CNI_VERSION = '1.0.0';
export const KNOWN_PLUGINS = ['bridge', 'host-local', 'loopback', 'portmap'] as const;

export function buildConflist(o: ConflistOptions): Record<string, unknown> {
  const name = o.name ?? 'podfabric';
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new Error(`buildConflist: invalid network name ${JSON.stringify(name)}`);
  if (!/^[^\s/:]{1,15}$/.test(o.bridge)) throw new Error(`buildConflist: invalid bridge name ${JSON.stringify(o.bridge)}`);
  if (!o.dataDir.startsWith('/')) throw new Error(`buildConflist: dataDir must be absolute, got ${JSON.stringify(o.dataDir)}`);
  const cidrs: Cidr[] = [];
  for (const s of o.podCidrs) {
    const c = parseCidr(s);
    if (!c) throw new Error(`buildConflist: invalid pod CIDR ${JSON.stringify(s)} (host bits must be clear)`);
    if (cidrs.some((x) => x.family === c.family)) throw new Error(`buildConflist: more than one IPv${c.family} pod CIDR (${o.podCidrs.join(', ')})`);
    // The gateway takes network+1; pods need at least one more address.
    if (c.prefixLength > familyBits(c.family) - 2) throw new Error(`buildConflist: pod CIDR ${s} is too small for a gateway and pods`);
    cidrs.push(c);
  }
  if (cidrs.length === 0) throw new Error('buildConflist: no valid pod CIDR');
  if (o.mtu !== undefined) {
    const min = cidrs.some((c) => c.family === 6) ? 1280 : 576;
    if (!Number.isInteger(o.mtu) || o.mtu < min || o.mtu > 65535) throw new Error(`buildConflist: MTU ${o.mtu} out of range (${min}-65535)`);
  }
  const ranges = cidrs.map((c) => [{ subnet: formatCidr(c), gateway: gatewayOf(c) }]);
  const routes = cidrs.map((c) => ({ dst: c.family === 4 ? '0.0.0.0/0' : '::/0' }));
  const plugins: Record<string, unknown>[] = [
    {
      type: 'bridge',
      bridge: o.bridge,
      isGateway: true,
      isDefaultGateway: false, // see the header: the IPAM routes below carry the default routes
      ipMasq: false,
      hairpinMode: true,
      ...(o.mtu !== undefined ? { mtu: o.mtu } : {}),
      ipam: { type: 'host-local', ranges, routes, dataDir: o.dataDir },
    },
  ];
  if (o.portmap) plugins.push({ type: 'portmap', capabilities: { portMappings: true } });
  return { cniVersion: CNI_VERSION, name, plugins };
}

/** Which of the plugins we use are executable in binDir. */
export async function pluginsPresent(binDir = '/usr/lib/cni'): Promise<string[]> {
  const out: string[] = [];
  for (const p of KNOWN_PLUGINS) {
    const path = join(binDir, p);
    try {
      await access(path, constants.X_OK);
      if ((await stat(path)).isFile()) out.push(p);
    } catch {
      /* absent */
    }
  }
  return out;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Temp file in the same directory, fsync, rename, fsync the directory: a reader (kubelet, containerd)
 * sees the old file or the new one, never half of one, also after a crash. Identical content is not
 * rewritten (no needless inotify events for the runtime). The temp name ends in ".tmp", which CNI
 * loaders skip (they read *.conf, *.conflist, *.json).
 */
export async function writeConfigAtomic(dir: string, filename: string, content: string): Promise<'written' | 'unchanged'> {
  if (filename.includes('/') || filename.startsWith('.')) throw new Error(`writeConfigAtomic: bad file name ${JSON.stringify(filename)}`);
  await mkdir(dir, { recursive: true });
  const path = join(dir, filename);
  const old = await readFile(path, 'utf8').catch(() => null);
  if (old === content) return 'unchanged';
  const tmp = join(dir, `.${filename}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, content, { mode: 0o644 });
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
  return 'written';
}

/** Removes the file if present; true when something was removed. */
export async function removeConfig(dir: string, filename: string): Promise<boolean> {
  const path = join(dir, filename);
  const existed = await stat(path).then(
    () => true,
    () => false,
  );
  await rm(path, { force: true });
  if (existed) await fsyncDir(dir).catch(() => undefined);
  return existed;
}
