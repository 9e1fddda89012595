/**
 * NetworkPolicy in the lab, end to end, in DUAL STACK: the agents enforce Kubernetes' upstream cases
 * on a real cluster. The upstream world (namespaces x, y, z; pods a, b, c in each, label pod=<name>,
 * one address per family) spread over the lab nodes, one RequireDualStack Service per pod (a ClusterIP
 * per family); every TCP and UDP case of test/support/netpol-cases.ts, each step probing every pair on
 * the case's ports in BOTH families through the pod IPs AND the Service ClusterIPs (kube-proxy's DNAT),
 * with real connections. A step whose policies name addresses (ipBlock) is applied and probed once per
 * family with that family's addresses; the others are applied once and probed in both families. A
 * wrong cell is re-probed a few times (the agents program asynchronously) before it counts; the matrix
 * of wrong cells is printed on failure. For a few cases, `kubectl fabric policy` (the real plugin, on
 * the lab's apiserver) must give the verdict the real connection gives, for a handful of cells.
 * Owns the pf-lab-* namespaces like the other lab files (files run one after the other).
 */
import { readFile, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../hack/lab/lib/daemon.js';
import { addPod, down, inNs, kubectl, podId, up, type LabPod, type LabState } from '../../hack/lab/lab.js';
import { CASES, expected, expectFor, type NetpolCase } from '../support/netpol-cases.js';
import { ensureFabricBuilt, fabricCli } from '../support/fabric-cli.js';

const PYTHON = '/usr/bin/python3';
const NAMESPACES = ['x', 'y', 'z'];
const WORLD = NAMESPACES.flatMap((ns) => ['a', 'b', 'c'].map((p) => `${ns}/${p}`));
let s: LabState;
const pods = new Map<string, LabPod>();
type Fam = 4 | 6;
const FAMILIES: Fam[] = [4, 6];
/** A pod's / its Service's address in one family. */
const podIP = (p: string, f: Fam) => pods.get(p)!.ips.find((ip) => ip.includes(':') === (f === 6))!;
const svcIP = new Map<string, Record<Fam, string>>();

const apply = (o: unknown) => kubectl(s, ['apply', '-f', '-'], JSON.stringify(o));

/** One process per source pod: connects to every target concurrently (1 s timeout); answers or null. */
const PROBE = `import json,socket,sys,threading
t=json.loads(sys.argv[1]);out=[None]*len(t)
def go(i,ip,port,proto):
  try:
    fam=socket.AF_INET6 if ':' in ip else socket.AF_INET
    if proto=='tcp':
      s=socket.socket(fam);s.settimeout(1);s.connect((ip,port));d=b''
      while True:
        c=s.recv(256)
        if not c: break
        d+=c
    else:
      s=socket.socket(fam,socket.SOCK_DGRAM);s.settimeout(1);s.sendto(b'hi',(ip,port));d=s.recv(256)
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

type Cell = { from: string; to: string; family: Fam; via: 'pod' | 'svc'; proto: 'tcp' | 'udp'; port: number; want: boolean };

/** Probes every cell; re-probes the wrong ones up to `rounds` times; returns the cells still wrong. */
async function wrongCells(cells: Cell[], rounds = 6): Promise<Array<Cell & { got: boolean }>> {
  let todo = cells;
  let wrong: Array<Cell & { got: boolean }> = [];
  for (let round = 0; round < rounds && todo.length; round++) {
    const results = await Promise.all(
      WORLD.map(async (from) => {
        const mine = todo.filter((c) => c.from === from);
        const got = await probe(pods.get(from)!, mine.map((c) => [c.via === 'pod' ? podIP(c.to, c.family) : svcIP.get(c.to)![c.family], c.port, c.proto]));
        return mine.map((c, i) => ({ ...c, got: got[i] === c.to }));
      }),
    );
    wrong = results.flat().filter((c) => c.got !== c.want);
    todo = wrong;
  }
  return wrong;
}

const matrix = (wrong: Array<Cell & { got: boolean }>) => wrong.map((c) => `${c.proto}/${c.port} IPv${c.family} via ${c.via} ${c.from} -> ${c.to}: got ${c.got ? 'connected' : 'blocked'}, want ${c.want ? 'connected' : 'blocked'}`).join('\n');

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

/** Cases whose verdicts `kubectl fabric policy` must match: deny-all, namespaceSelector, named port, deny egress, ipBlock except. */
const CLI_CASES = new Set([1, 6, 18, 25, 35]);
let cliChecked = 0;

/**
 * The plugin's verdict (exit 0 allowed, 1 denied) for a few pod-IP cells — per family the first cell
 * expected allowed and the first expected denied — must be what a real connection gives now.
 */
async function cliCrossCheck(cells: Cell[]): Promise<string[]> {
  const pick = FAMILIES.flatMap((f) => [true, false].map((want) => cells.find((c) => c.via === 'pod' && c.family === f && c.want === want))).filter((c): c is Cell => !!c);
  const checked: Cell[] = [];
  const errors: string[] = [];
  for (const c of pick) {
    const r = await fabricCli(['policy', c.from, podIP(c.to, c.family), '--port', `${c.port}/${c.proto}`, `--kubeconfig=${s.kubeconfig}`]);
    if (r.code !== 0 && r.code !== 1) errors.push(`kubectl fabric policy ${c.from} ${c.to}: exit ${r.code}: ${r.stderr}`);
    else checked.push({ ...c, want: r.code === 0 });
  }
  cliChecked += checked.length;
  const wrong = await wrongCells(checked, 3);
  return [...errors, ...wrong.map((c) => `kubectl fabric policy says ${c.want ? 'ALLOWED' : 'DENIED'} but the connection ${c.got ? 'connected' : 'was blocked'}: ${c.proto}/${c.port} IPv${c.family} ${c.from} -> ${c.to}`)];
}

let cellsProbed = 0;

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
      const byFamily = Object.fromEntries(FAMILIES.map((f) => [f, step.policies({ ip: (p) => podIP(p, f), family: f })])) as Record<Fam, unknown[]>;
      // Policies naming no address are the same in both families: applied once, probed in both.
      const rounds: Fam[][] = JSON.stringify(byFamily[4]) === JSON.stringify(byFamily[6]) ? [FAMILIES] : FAMILIES.map((f) => [f]);
      for (const fams of rounds) {
        await clearPolicies();
        for (const pol of byFamily[fams[0]!]) await apply({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', ...(pol as object) });
        const cells: Cell[] = [];
        for (const pr of c.probes)
          for (const from of c.pods)
            for (const to of c.pods)
              if (from !== to)
                for (const family of fams)
                  for (const via of ['pod', 'svc'] as const) cells.push({ from, to, family, via, proto: pr.proto.toLowerCase() as 'tcp', port: pr.port, want: expected(expectFor(step, pr), from, to) });
        cellsProbed += cells.length;
        const wrong = await wrongCells(cells);
        const where = `case #${c.id} (${c.name}) step ${si} IPv${fams.join('+IPv')}`;
        if (wrong.length) failures.push(`${where}: ${wrong.length}/${cells.length} wrong cells\n${matrix(wrong)}`);
        else if (CLI_CASES.has(c.id)) failures.push(...(await cliCrossCheck(cells)).map((e) => `${where}: ${e}`));
      }
    }
  } finally {
    await clearPolicies();
    for (const [ns, l] of Object.entries(nsExtra)) await label('ns', ns, Object.fromEntries(Object.keys(l).map((k) => [k, null])));
    for (const [p, l] of Object.entries(podExtra)) await label('pod', p, Object.fromEntries(Object.keys(l).map((k) => [k, null])));
  }
  return failures;
}

beforeAll(async () => {
  await ensureFabricBuilt();
  s = await up({ racks: 2, nodesPerRack: 2, dualStack: true, podsPerNode: 0, controllers: 1 }, { skipBuild: true });
  for (const [i, p] of WORLD.entries()) {
    const [namespace, name] = p.split('/') as [string, string];
    pods.set(p, await addPod(s, s.nodes[i % s.nodes.length]!.name, name, { namespace, labels: { pod: name } }));
    await apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `s-${name}`, namespace },
      spec: { ipFamilyPolicy: 'RequireDualStack', selector: { pod: name }, ports: [80, 81].flatMap((port) => ['TCP', 'UDP'].map((protocol) => ({ name: `${protocol.toLowerCase()}-${port}`, port, protocol, targetPort: port }))) },
    });
    const ips = JSON.parse((await kubectl(s, ['-n', namespace, 'get', 'svc', `s-${name}`, '-o', 'json'])).stdout).spec.clusterIPs as string[];
    svcIP.set(p, { 4: ips.find((ip) => !ip.includes(':'))!, 6: ips.find((ip) => ip.includes(':'))! });
    expect(pods.get(p)!.ips, p).toHaveLength(2);
    expect(svcIP.get(p)![6], `${p}: IPv6 ClusterIP`).toBeTruthy();
  }
  // Every Service answers from every pod before any policy (endpoints programmed by every kube-proxy).
  await waitUntil('every pair connects through pod IPs and ClusterIPs in both families', async () => {
    const cells: Cell[] = WORLD.flatMap((from) => WORLD.filter((to) => to !== from).flatMap((to) => FAMILIES.flatMap((family) => (['pod', 'svc'] as const).map((via) => ({ from, to, family, via, proto: 'tcp' as const, port: 80, want: true })))));
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
    const client = inNs(pods.get('y/a')!.ns, [PYTHON, '-c', FLOWS, log, '8', podIP('x/a', 4), podIP('y/b', 4)], { timeoutMs: 60_000 });
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

describe('upstream NetworkPolicy cases in the dual-stack lab (pod IPs and ClusterIPs, IPv4 and IPv6)', () => {
  it(`${LAB_CASES.length} TCP/UDP cases: 0 wrong cells; kubectl fabric policy agrees with the connections`, async () => {
    const t0 = Date.now();
    const failures: string[] = [];
    for (const c of LAB_CASES) failures.push(...(await runCase(c)));
    console.log(`${LAB_CASES.length} cases, ${cellsProbed} cells (IPv4 + IPv6, pod IPs + ClusterIPs), ${cliChecked} kubectl fabric policy verdicts, in ${Math.round((Date.now() - t0) / 1000)} s`);
    expect(failures.join('\n\n')).toBe('');
    expect(cliChecked).toBeGreaterThanOrEqual(4 * CLI_CASES.size);
  }, 900_000);

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
