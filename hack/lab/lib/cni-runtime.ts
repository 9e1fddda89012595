/**
 * Pods the way a container runtime makes them: a new network namespace, then every plugin of the node's
 * conflist invoked in order with CNI_COMMAND=ADD (each given the previous plugin's result), run inside
 * the node's namespace. DEL runs the plugins in reverse order.
 */
import { readFile } from 'node:fs/promises';
import { run } from '../../../operator/lib/exec.js';
import { addNamespace, deleteNamespace } from './netns.js';

export const CNI_BIN = process.env.PODFABRIC_CNI_BIN ?? '/usr/lib/cni';

interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown>>;
}

async function invoke(nodeNs: string, podNs: string, containerId: string, command: 'ADD' | 'DEL', conf: Record<string, unknown>): Promise<Record<string, unknown>> {
  const env = [`CNI_COMMAND=${command}`, `CNI_CONTAINERID=${containerId}`, `CNI_NETNS=/var/run/netns/${podNs}`, 'CNI_IFNAME=eth0', `CNI_PATH=${CNI_BIN}`];
  const r = await run(['ip', 'netns', 'exec', nodeNs, 'env', ...env, `${CNI_BIN}/${String(conf.type)}`], { input: JSON.stringify(conf), allowFail: true, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`CNI ${command} ${String(conf.type)} failed: ${r.stdout.trim() || r.stderr.trim()}`);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : {};
}

/** Creates pod namespace podNs and attaches it with the conflist at confPath. Returns the pod's IPs. */
export async function cniAdd(nodeNs: string, podNs: string, confPath: string, containerId = podNs): Promise<string[]> {
  const list = JSON.parse(await readFile(confPath, 'utf8')) as Conflist;
  await addNamespace(podNs, { forwarding: false });
  let prev: Record<string, unknown> | undefined;
  for (const p of list.plugins) {
    prev = await invoke(nodeNs, podNs, containerId, 'ADD', { cniVersion: list.cniVersion, name: list.name, ...p, ...(prev ? { prevResult: prev } : {}) });
  }
  const ips = ((prev?.ips as Array<{ address: string }>) ?? []).map((i) => i.address.split('/')[0]!);
  return ips;
}

export async function cniDel(nodeNs: string, podNs: string, confPath: string, containerId = podNs): Promise<void> {
  const list = JSON.parse(await readFile(confPath, 'utf8')) as Conflist;
  for (const p of [...list.plugins].reverse()) {
    await invoke(nodeNs, podNs, containerId, 'DEL', { cniVersion: list.cniVersion, name: list.name, ...p }).catch(() => undefined);
  }
  await deleteNamespace(podNs);
}
