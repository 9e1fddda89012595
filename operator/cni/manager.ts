/**
 * Writes the node's CNI configuration once the node can really route (or at once, when FabricConfig
 * says not to wait). kubelet reports NetworkReady only when a CNI configuration exists, so no pod lands
 * on a node whose sessions are down or whose routes are missing.
 *
 * Once written, the configuration stays through later transient faults (a ToR restart must not turn
 * every node NotReady). A CIDR change rewrites it, but existing pods keep their old addresses
 * (host-local never renumbers a running pod) and, with the reference bridge plugin (1.1.1), every new
 * pod fails ("cni0 already has an IP address different from …") until the old gateway address is
 * removed from cni0. A node's block only changes when its NodeFabric is lost and re-allocated: drain
 * the node first. The agent does not remove the old gateway itself (that would cut off running pods).
 */
import { join } from 'node:path';
import type { FabricConfigSpec } from '../api/fabricconfig.js';
import { buildConflist, pluginsPresent, writeConfigAtomic } from './conflist.js';

export const CONFLIST_NAME = '10-podfabric.conflist';

export interface CniInput {
  podCIDRs: string[];
  fabricReady: boolean;
  notReadyReason: string;
  config: FabricConfigSpec['cni'];
}

export interface CniState {
  written: boolean;
  path?: string;
  reason?: string;
}

export interface CniManager {
  reconcile(input: CniInput): Promise<CniState>;
}

export function createCniManager(opts: { binDir: string; dataDir: string; confDirOverride?: string }): CniManager {
  let written = false;
  return {
    async reconcile(input: CniInput): Promise<CniState> {
      const dir = opts.confDirOverride ?? input.config.confDir;
      const path = join(dir, CONFLIST_NAME);
      if (input.podCIDRs.length === 0) return { written: false, reason: 'no pod CIDR allocated to this node yet' };
      if (!written && input.config.waitForFabric && !input.fabricReady) return { written: false, reason: `not written yet: ${input.notReadyReason}` };
      const present = await pluginsPresent(opts.binDir);
      const missing = ['bridge', 'host-local', 'loopback'].filter((p) => !present.includes(p));
      if (missing.length) return { written: false, reason: `CNI plugins missing in ${opts.binDir}: ${missing.join(', ')}` };
      const conf = buildConflist({
        bridge: input.config.bridge,
        podCidrs: input.podCIDRs,
        ...(input.config.mtu ? { mtu: input.config.mtu } : {}),
        portmap: present.includes('portmap'),
        dataDir: opts.dataDir,
      });
      await writeConfigAtomic(dir, CONFLIST_NAME, JSON.stringify(conf, null, 2) + '\n');
      written = true;
      return { written: true, path };
    },
  };
}
