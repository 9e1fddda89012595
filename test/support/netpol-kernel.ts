/**
 * A node for the NetworkPolicy kernel tests: a network namespace with a bridge (cni0, br_netfilter on,
 * as kube-proxy requires) and one namespace per pod on a veth, each running the tiny agnhost
 * (TCP and UDP echo on 80 and 81). Probes are real connections, run from inside the pods.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { addAddress, addBridge, addNamespace, addVeth, cleanupByPrefix, inNs, setMaster, setSysctls } from '../../hack/lab/lib/netns.js';

export const PREFIX = 'pf-np-';
const AGNHOST = fileURLToPath(new URL('./netpol-agnhost.mjs', import.meta.url));

export interface KernelNode {
  ns: string;
  pods: string[];
  addrs(pod: string): string[];
  podNs(pod: string): string;
  /** Runs the agnhost in a pod; for `hold`, the caller talks to it. */
  agnhost(pod: string, args: string[]): ChildProcess;
  /** One real connection per target from a pod (or a namespace by name), concurrently; true when the echo came back within timeoutMs. */
  connect(from: string, targets: Array<{ host: string; port: number; proto: 'tcp' | 'udp' }>, timeoutMs?: number): Promise<boolean[]>;
  close(): Promise<void>;
}

/** Waits for a line matching `re` on the child's stdout (rejects on exit or after timeoutMs). */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => finish(new Error(`no line matching ${re} within ${timeoutMs} ms; got ${JSON.stringify(buf)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => re.test(l));
      if (line !== undefined) finish(undefined, line);
    };
    const onExit = () => finish(new Error(`exited before a line matching ${re}; got ${JSON.stringify(buf)}`));
    function finish(err?: Error, line?: string) {
      clearTimeout(t);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(line!);
    }
    child.stdout?.on('data', onData);
    child.on('exit', onExit);
  });
}

export async function createKernelNode(pods: string[]): Promise<KernelNode> {
  await cleanupByPrefix(PREFIX);
  const ns = `${PREFIX}node`;
  const podNs = (p: string) => `${PREFIX}${p.replace('/', '-')}`;
  const addrs = (p: string) => [`10.77.0.${pods.indexOf(p) + 11}`, `fd00:77::${pods.indexOf(p) + 11}`];
  await addNamespace(ns);
  await setSysctls(ns, { 'net.bridge.bridge-nf-call-iptables': 1, 'net.bridge.bridge-nf-call-ip6tables': 1 });
  await addBridge(ns, 'cni0', '02:00:00:77:00:01');
  await addAddress(ns, 'cni0', '10.77.0.1/24');
  await addAddress(ns, 'cni0', 'fd00:77::1/64');
  const children: ChildProcess[] = [];
  const agnhost = (pod: string, args: string[]) => {
    const c = spawn('ip', ['netns', 'exec', podNs(pod), process.execPath, AGNHOST, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(c);
    return c;
  };
  for (const p of pods) {
    const pns = podNs(p);
    await addNamespace(pns, { forwarding: false });
    await addVeth(pns, 'eth0', ns, `v-${p.replace('/', '-')}`);
    await setMaster(ns, `v-${p.replace('/', '-')}`, 'cni0');
    const [v4, v6] = addrs(p) as [string, string];
    await addAddress(pns, 'eth0', `${v4}/24`);
    await addAddress(pns, 'eth0', `${v6}/64`);
    await inNs(pns, ['ip', 'route', 'add', 'default', 'via', '10.77.0.1']);
    await inNs(pns, ['ip', '-6', 'route', 'add', 'default', 'via', 'fd00:77::1']);
  }
  await Promise.all(pods.map((p) => waitForLine(agnhost(p, ['serve', p]), /^ready$/)));
  return {
    ns,
    pods,
    addrs,
    podNs,
    agnhost,
    async connect(from, targets, timeoutMs = 1000) {
      const r = await inNs(from.startsWith(PREFIX) ? from : podNs(from), [process.execPath, AGNHOST, 'connect', JSON.stringify(targets), String(timeoutMs)], { timeoutMs: timeoutMs + 30_000 });
      return JSON.parse(r.stdout.trim()) as boolean[];
    },
    async close() {
      for (const c of children) c.kill('SIGKILL');
      await cleanupByPrefix(PREFIX);
    },
  };
}
