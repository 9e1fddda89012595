/**
 * NetworkPolicy in the lab, end to end: the agents enforce Kubernetes' upstream cases on a real
 * cluster. The upstream world (namespaces x, y, z; pods a, b, c in each, label pod=<name>) spread
 * over the lab nodes, one Service per pod; every TCP and UDP case of test/support/netpol-cases.ts,
 * each step probing every pair on the case's ports through the pod IPs AND the Service ClusterIPs
 * (kube-proxy's DNAT), with real connections. A wrong cell is re-probed a few times (the agents
 * program asynchronously) before it counts; the matrix of wrong cells is printed on failure.
 * Owns the pf-lab-* namespaces like the other lab files (files run one after the other).
 */
import { readFile, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../hack/lab/lib/daemon.js';
import { addPod, down, inNs, kubectl, podId, up, type LabPod, type LabState } from '../../hack/lab/lab.js';
import { CASES, expected, expectFor, type NetpolCase } from '../support/netpol-cases.js';

const PYTHON = '/usr/bin/python3';
const NAMESPACES = ['x', 'y', 'z'];
const WORLD = NAMESPACES.flatMap((ns) => ['a', 'b', 'c'].map((p) => `${ns}/${p}`));
let s: LabState;
const pods = new Map<string, LabPod>();
const svcIP = new Map<string, string>();

const apply = (o: unknown) => kubectl(s, ['apply', '-f', '-'], JSON.stringify(o));

/** One process per source pod: connects to every target concurrently (1 s timeout); answers or null. */
const PROBE = `import json,socket,sys,threading
t=json.loads(sys.argv[1]);out=[None]*len(t)
def go(i,ip,port,proto):
  try:
    if proto=='tcp':
      s=socket.create_connection((ip,port),timeout=1);d=b''
      while True:
        c=s.recv(256)
        if not c: break
        d+=c
    else:
      s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(1);s.sendto(b'hi',(ip,port));d=s.recv(256)
    out[i]=d.decode().strip()
  except OSError: pass
th=[threading.Thread(target=go,args=(i,*x)) for i,x in enumerate(t)]
[x.start() for x in th];[x.join() for x in th]
print(json.dumps(out))`;

async function probe(from: LabPod, targets: Array<[string, number, string]>): Promise<Array<string | null>> {
  if (!targets.length) return [];
  const r = await inNs(from.ns, [PYTHON, '-c', PROBE, JSON.stringify(targets)], { timeoutMs: 30_000 });
  return JSON.parse(r.stdout) as Array<string | null>;
}

type Cell = { from: string; to: string; via: 'pod' | 'svc'; proto: 'tcp' | 'udp'; port: number; want: boolean };

/** Probes every cell; re-probes the wrong ones up to `rounds` times; returns the cells still wrong. */
async function wrongCells(cells: Cell[], rounds = 6): Promise<Array<Cell & { got: boolean }>> {
  let todo = cells;
  let wrong: Array<Cell & { got: boolean }> = [];
  for (let round = 0; round < rounds && todo.length; round++) {
    const results = await Promise.all(
      WORLD.map(async (from) => {
        const mine = todo.filter((c) => c.from === from);
        const got = await probe(pods.get(from)!, mine.map((c) => [c.via === 'pod' ? pods.get(c.to)!.ips[0]! : svcIP.get(c.to)!, c.port, c.proto]));
        return mine.map((c, i) => ({ ...c, got: got[i] === c.to }));
      }),
    );
    wrong = results.flat().filter((c) => c.got !== c.want);
    todo = wrong;
  }
  return wrong;
}

const matrix = (wrong: Array<Cell & { got: boolean }>) => wrong.map((c) => `${c.proto}/${c.port} via ${c.via} ${c.from} -> ${c.to}: got ${c.got ? 'connected' : 'blocked'}, want ${c.want ? 'connected' : 'blocked'}`).join('\n');

async function clearPolicies(): Promise<void> {
  for (const ns of NAMESPACES) await kubectl(s, ['-n', ns, 'delete', 'networkpolicies', '--all', '--wait=true']);
}

/** Sets (or with null, removes) extra labels. */
async function label(kind: 'ns' | 'pod', target: string, labels: Record<string, string | null>): Promise<void> {
  const args = Object.entries(labels).map(([k, v]) => (v === null ? `${k}-` : `${k}=${v}`));
  if (!args.length) return;
  if (kind === 'ns') await kubectl(s, ['label', '--overwrite', 'ns', target, ...args]);
  else {
    const [ns, name] = target.split('/') as [string, string];
    await kubectl(s, ['-n', ns, 'label', '--overwrite', 'pod', name, ...args]);
  }
}

async function runCase(c: NetpolCase): Promise<string[]> {
  const failures: string[] = [];
  const nsExtra: Record<string, Record<string, string>> = {};
  const podExtra: Record<string, Record<string, string>> = {};
  try {
    for (const [si, step] of c.steps.entries()) {
      for (const [ns, l] of Object.entries(step.nsLabels ?? {})) {
        nsExtra[ns] = { ...nsExtra[ns], ...l };
        await label('ns', ns, l);
      }
      for (const [p, l] of Object.entries(step.podLabels ?? {})) {
        podExtra[p] = { ...podExtra[p], ...l };
        await label('pod', p, l);
      }
      await clearPolicies();
      for (const pol of step.policies({ ip: (p) => pods.get(p)!.ips[0]!, family: 4 })) await apply({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', ...(pol as object) });
      const cells: Cell[] = [];
      for (const pr of c.probes)
        for (const from of c.pods)
          for (const to of c.pods)
            if (from !== to)
              for (const via of ['pod', 'svc'] as const) cells.push({ from, to, via, proto: pr.proto.toLowerCase() as 'tcp', port: pr.port, want: expected(expectFor(step, pr), from, to) });
      const wrong = await wrongCells(cells);
      if (wrong.length) failures.push(`case #${c.id} (${c.name}) step ${si}: ${wrong.length}/${cells.length} wrong cells\n${matrix(wrong)}`);
    }
  } finally {
    await clearPolicies();
    for (const [ns, l] of Object.entries(nsExtra)) await label('ns', ns, Object.fromEntries(Object.keys(l).map((k) => [k, null])));
    for (const [p, l] of Object.entries(podExtra)) await label('pod', p, Object.fromEntries(Object.keys(l).map((k) => [k, null])));
  }
  return failures;
}

beforeAll(async () => {
  s = await up({ racks: 2, nodesPerRack: 2, dualStack: false, podsPerNode: 0, controllers: 1 }, { skipBuild: true });
  for (const [i, p] of WORLD.entries()) {
    const [namespace, name] = p.split('/') as [string, string];
    pods.set(p, await addPod(s, s.nodes[i % s.nodes.length]!.name, name, { namespace, labels: { pod: name } }));
    await apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `s-${name}`, namespace },
      spec: { selector: { pod: name }, ports: [80, 81].flatMap((port) => ['TCP', 'UDP'].map((protocol) => ({ name: `${protocol.toLowerCase()}-${port}`, port, protocol, targetPort: port }))) },
    });
    svcIP.set(p, JSON.parse((await kubectl(s, ['-n', namespace, 'get', 'svc', `s-${name}`, '-o', 'json'])).stdout).spec.clusterIP as string);
  }
  // Every Service answers from every pod before any policy (endpoints programmed by every kube-proxy).
  await waitUntil('every pair connects through pod IPs and ClusterIPs', async () => {
    const cells: Cell[] = WORLD.flatMap((from) => WORLD.filter((to) => to !== from).flatMap((to) => (['pod', 'svc'] as const).map((via) => ({ from, to, via, proto: 'tcp' as const, port: 80, want: true }))));
    return (await wrongCells(cells, 1)).length === 0;
  }, 120_000, 200);
}, 300_000);

afterAll(async () => {
  await down();
});

const LAB_CASES = CASES.filter((c) => c.probes.every((p) => p.proto !== 'SCTP'));

/** UDP flows from one pod: a datagram every 50 ms to each target from one fixed socket; answers logged as "time answer". */
const FLOWS = `import socket,sys,time,select
f=open(sys.argv[1],'a');ts=sys.argv[3:];end=time.time()+float(sys.argv[2])
ss=[socket.socket(socket.AF_INET,socket.SOCK_DGRAM) for _ in ts]
while time.time()<end:
  for s,t in zip(ss,ts): s.sendto(b'hi',(t,80))
  r,_,_=select.select(ss,[],[],0.05)
  for s in r:
    d=s.recv(256);f.write('%f %s\\n'%(time.time(),d.decode().strip()));f.flush()
  time.sleep(0.05)`;

describe('conntrack', () => {
  it('tightening a policy cuts an established flow it now denies; another flow of the same pod lives on', async () => {
    const log = '/tmp/pf-lab-netpol-flows.log';
    await rm(log, { force: true });
    const answers = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => l.split(' ') as [string, string]).map(([t, who]) => ({ t: Number(t), who }));
    const client = inNs(pods.get('y/a')!.ns, [PYTHON, '-c', FLOWS, log, '8', pods.get('x/a')!.ips[0]!, pods.get('y/b')!.ips[0]!], { timeoutMs: 60_000 });
    try {
      await waitUntil('both flows answering', async () => {
        const a = await answers();
        return a.some((x) => x.who === 'x/a') && a.some((x) => x.who === 'y/b');
      }, 15_000, 50);
      const t0 = Date.now() / 1000;
      await apply({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny-ingress', namespace: 'x' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } });
      // Cut: x/a silent for 1 s while y/b keeps answering.
      const cut = await waitUntil('x/a flow cut while y/b lives on', async () => {
        const a = await answers();
        const lastX = Math.max(...a.filter((x) => x.who === 'x/a').map((x) => x.t));
        const lastY = Math.max(...a.filter((x) => x.who === 'y/b').map((x) => x.t));
        return lastY > lastX + 1 && lastX >= t0 - 1 ? { lastX, lastY } : null;
      }, 15_000, 100);
      console.log(`established UDP flow y/a -> x/a: last answer ${Math.round((cut.lastX - t0) * 1000)} ms after kubectl apply started`);
      expect(cut.lastY).toBeGreaterThan(cut.lastX + 1);
    } finally {
      await clearPolicies();
      await client.catch(() => undefined);
    }
  }, 90_000);
});

describe('upstream NetworkPolicy cases in the lab (pod IPs and ClusterIPs)', () => {
  it(`${LAB_CASES.length} TCP/UDP cases: 0 wrong cells`, async () => {
    const failures: string[] = [];
    for (const c of LAB_CASES) failures.push(...(await runCase(c)));
    expect(failures.join('\n\n')).toBe('');
  }, 600_000);

  it('every node reports PolicyReady with its local pods', async () => {
    const nfs = JSON.parse((await kubectl(s, ['get', 'nodefabrics', '-o', 'json'])).stdout) as { items: Array<{ metadata: { name: string }; status?: { policy?: { localPods: number }; conditions?: Array<{ type: string; status: string }> } }> };
    const local = (n: string) => [...pods.values()].filter((p) => p.node === n).length;
    for (const nf of nfs.items) {
      expect(nf.status?.conditions?.find((c) => c.type === 'PolicyReady')?.status, nf.metadata.name).toBe('True');
      expect(nf.status?.policy?.localPods, nf.metadata.name).toBe(local(nf.metadata.name));
    }
    expect(podId(pods.get('x/a')!)).toBe('x/a');
  });
});
