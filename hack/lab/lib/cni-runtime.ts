/**
 * Pods the way a container runtime (containerd's CRI plugin via go-cni/libcni) makes them:
 *  1. a new network namespace for the sandbox;
 *  2. the loopback network (go-cni `WithLoNetwork`: the `loopback` binary, built-in config
 *     "cni-loopback", CNI_IFNAME=lo) when that binary exists;
 *  3. every plugin of the node's conflist in order with CNI_COMMAND=ADD, stdin = the plugin's object
 *     plus the list's `cniVersion` and `name`, and from the second plugin on `prevResult` = the result
 *     of the one before; the last result is the attachment's result, cached on disk like libcni does;
 *  4. DEL: the plugins in reverse order, each given the cached ADD result as `prevResult` (CNI 1.0).
 * Plugins run inside the node's namespace (`ip netns exec <node>`), with
 * CNI_NETNS=/var/run/netns/<pod>, CNI_IFNAME=eth0, CNI_PATH=<bin dir>.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../operator/lib/exec.js';
import { addNamespace, deleteNamespace } from './netns.js';

export const CNI_BIN = process.env.PODFABRIC_CNI_BIN ?? '/usr/lib/cni';
/** Where ADD results are kept for DEL (libcni uses /var/lib/cni/results). */
export const CNI_CACHE = process.env.PODFABRIC_CNI_CACHE ?? join(tmpdir(), 'pf-cni-results');

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown>>;
}

export interface CniResult {
  cniVersion?: string;
  interfaces?: Array<{ name: string; mac?: string; sandbox?: string }>;
  ips?: Array<{ address: string; gateway?: string; interface?: number }>;
  routes?: Array<{ dst: string; gw?: string }>;
  [k: string]: unknown;
}

export interface CniOptions {
  ifname?: string;
  binDir?: string;
  cacheDir?: string;
  /** runtimeConfig.portMappings for plugins declaring capabilities.portMappings (portmap). */
  portMappings?: Array<{ hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' | 'sctp'; hostIP?: string }>;
}

const LOOPBACK: Conflist = { cniVersion: '0.3.1', name: 'cni-loopback', plugins: [{ type: 'loopback' }] };

export class CniError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: string,
    readonly code: number | undefined,
    msg: string,
  ) {
    super(`CNI ${command} ${plugin} failed${code !== undefined ? ` (code ${code})` : ''}: ${msg}`);
  }
}

async function loadConflist(conflist: string | Conflist): Promise<Conflist> {
  const c = typeof conflist === 'string' ? (JSON.parse(await readFile(conflist, 'utf8')) as Conflist) : conflist;
  if (!c || typeof c.name !== 'string' || typeof c.cniVersion !== 'string' || !Array.isArray(c.plugins) || c.plugins.length === 0) {
    throw new Error(`not a CNI conflist: ${typeof conflist === 'string' ? conflist : JSON.stringify(conflist).slice(0, 200)}`);
  }
  return c;
}

interface Call {
  nodeNs: string;
  podNs: string;
  containerId: string;
  ifname: string;
  binDir: string;
}

/** Runs one plugin; returns its parsed stdout (the result for ADD, {} for DEL). */
async function invoke(call: Call, command: 'ADD' | 'DEL', conf: Record<string, unknown>): Promise<CniResult> {
  const type = String(conf.type);
  if (!/^[A-Za-z0-9_.-]+$/.test(type)) throw new Error(`bad plugin type ${JSON.stringify(type)}`);
  const env = {
    ...process.env,
    CNI_COMMAND: command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: `/var/run/netns/${call.podNs}`,
    CNI_IFNAME: call.ifname,
    CNI_PATH: call.binDir,
  };
  const r = await run(['ip', 'netns', 'exec', call.nodeNs, join(call.binDir, type)], { input: JSON.stringify(conf), env, allowFail: true, timeoutMs: 30_000 });
  const out = r.stdout.trim();
  if (r.code !== 0) {
    let parsed: { code?: number; msg?: string; details?: string } = {};
    try {
      parsed = JSON.parse(out) as typeof parsed;
    } catch {
      /* not the CNI error format */
    }
    const msg = parsed.msg ? `${parsed.msg}${parsed.details ? ` (${parsed.details})` : ''}` : out || r.stderr.trim() || `exit ${r.code}`;
    throw new CniError(type, command, parsed.code, msg);
  }
  return out ? (JSON.parse(out) as CniResult) : {};
}

/** The object a plugin gets on stdin: the plugin's config + the list's version and name (+ prevResult, runtimeConfig). */
function pluginConf(list: Conflist, p: Record<string, unknown>, prev: CniResult | undefined, o: CniOptions): Record<string, unknown> {
  const caps = (p.capabilities ?? {}) as Record<string, boolean>;
  return {
    cniVersion: list.cniVersion,
    name: list.name,
    ...p,
    ...(caps.portMappings && o.portMappings?.length ? { runtimeConfig: { portMappings: o.portMappings } } : {}),
    ...(prev ? { prevResult: prev } : {}),
  };
}

async function addList(call: Call, list: Conflist, o: CniOptions): Promise<CniResult> {
  let prev: CniResult | undefined;
  for (const p of list.plugins) prev = await invoke(call, 'ADD', pluginConf(list, p, prev, o));
  return prev ?? {};
}

async function delList(call: Call, list: Conflist, o: CniOptions, cached: CniResult | undefined): Promise<Error[]> {
  const errors: Error[] = [];
  for (const p of [...list.plugins].reverse()) {
    await invoke(call, 'DEL', pluginConf(list, p, cached, o)).catch((e: Error) => errors.push(e));
  }
  return errors;
}

const cachePath = (dir: string, list: Conflist, containerId: string, ifname: string) => join(dir, `${list.name}-${containerId}-${ifname}.json`);

/**
 * Creates pod namespace podNs and attaches it with the conflist (a path or the object). Returns the
 * pod's IPs (without prefix length), in the order of the result. On failure the partial attachment is
 * torn down (DEL) and the namespace removed before the error is thrown.
 */
export async function cniAdd(nodeNs: string, podNs: string, conflist: string | Conflist, containerId = podNs, o: CniOptions = {}): Promise<string[]> {
  const list = await loadConflist(conflist);
  const binDir = o.binDir ?? CNI_BIN;
  const call: Call = { nodeNs, podNs, containerId, ifname: o.ifname ?? 'eth0', binDir };
  await addNamespace(podNs, { forwarding: false });
  try {
    if (existsSync(join(binDir, 'loopback'))) await addList({ ...call, ifname: 'lo' }, LOOPBACK, o);
    const result = await addList(call, list, o);
    const dir = o.cacheDir ?? CNI_CACHE;
    await mkdir(dir, { recursive: true });
    await writeFile(cachePath(dir, list, containerId, call.ifname), JSON.stringify(result));
    return (result.ips ?? []).map((i) => i.address.split('/')[0]!);
  } catch (e) {
    await delList(call, list, o, undefined);
    await deleteNamespace(podNs);
    throw e;
  }
}

/** ADD's cached result for this attachment, if any. */
export async function cniResult(conflist: string | Conflist, containerId: string, o: CniOptions = {}): Promise<CniResult | undefined> {
  const list = await loadConflist(conflist);
  const text = await readFile(cachePath(o.cacheDir ?? CNI_CACHE, list, containerId, o.ifname ?? 'eth0'), 'utf8').catch(() => null);
  return text ? (JSON.parse(text) as CniResult) : undefined;
}

/**
 * Detaches the pod (plugins in reverse order, with the cached ADD result as prevResult), then deletes
 * its namespace. Like a runtime, it carries on past a failing plugin (so the namespace and the rest
 * still go) and throws the first error at the end, unless `ignoreErrors`.
 */
export async function cniDel(nodeNs: string, podNs: string, conflist: string | Conflist, containerId = podNs, o: CniOptions & { ignoreErrors?: boolean } = {}): Promise<void> {
  const list = await loadConflist(conflist);
  const binDir = o.binDir ?? CNI_BIN;
  const call: Call = { nodeNs, podNs, containerId, ifname: o.ifname ?? 'eth0', binDir };
  const dir = o.cacheDir ?? CNI_CACHE;
  const cached = await cniResult(list, containerId, o);
  const errors = await delList(call, list, o, cached);
  if (existsSync(join(binDir, 'loopback'))) errors.push(...(await delList({ ...call, ifname: 'lo' }, LOOPBACK, o, undefined)));
  await deleteNamespace(podNs);
  await rm(cachePath(dir, list, containerId, call.ifname), { force: true });
  if (errors.length && !o.ignoreErrors) throw errors[0]!;
}
