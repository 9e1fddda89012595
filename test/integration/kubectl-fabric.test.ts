/**
 * `kubectl fabric` end to end against the real kube-apiserver: Nodes, IPPool, BGPPeers and NodeFabrics
 * written the way the controller (spec) and the agents (status subresource, server-side apply with
 * their field managers) write them; then the real plugin runs as a subprocess, both directly
 * (`node bin/kubectl-fabric.js`) and through kubectl's plugin mechanism (an executable named
 * kubectl-fabric on PATH). The map is rendered by headless Chromium, and the page measures what the
 * browser laid out (boxes inside the viewBox, no overlaps, labels fit, line colours).
 */
import { statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Condition } from '../../operator/api/common.js';
import type { NodeFabricSpec, NodeFabricStatus } from '../../operator/api/nodefabric.js';
import { segmentObjectName, type L2SegmentSpec } from '../../operator/api/segment.js';
import { READY_COLORS, SESSION_COLORS } from '../../operator/cli/map.js';
import { run } from '../../operator/lib/exec.js';
import { chromiumBinary, dumpDom, screenshot } from '../support/chromium.js';
import { cleanCluster, createNodes, kubeconfigPath, node, testRest } from '../support/kube.js';
import { FABRIC_BIN, ensureFabricBuilt, fabricCli } from '../support/fabric-cli.js';
import { API_PATH as API } from '../../operator/api/common.js';

const AV = 'podfabric.io/v1alpha1';
const rest = testRest();
let tmp: string;

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const cond = (type: string, status: Condition['status'], reason = status === 'True' ? 'AsPlanned' : 'NotAsPlanned', message = ''): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: now(),
});

interface Fix {
  name: string;
  rack?: string;
  ip: string;
  cidr: string;
  tor: { name: string; address: string; asn: number };
  neighbour?: { name: string; ip: string; cidr: string };
  segment: string;
}

const tor1 = { name: 'tor1', address: '172.20.1.1', asn: 65101 };
const tor2 = { name: 'tor2', address: '172.20.2.1', asn: 65102 };
const tor3 = { name: 'tor3', address: '172.20.3.1', asn: 65103 };
const F: Record<string, Fix> = {
  r1n1: { name: 'r1n1', rack: 'rack1', ip: '172.20.1.11', cidr: '10.244.0.0/24', tor: tor1, segment: '172.20.1.0/24' },
  r1n2: { name: 'r1n2', rack: 'rack1', ip: '172.20.1.12', cidr: '10.244.1.0/24', tor: tor1, segment: '172.20.1.0/24' },
  r2n1: { name: 'r2n1', rack: 'rack2', ip: '172.20.2.11', cidr: '10.244.2.0/24', tor: tor2, segment: '172.20.2.0/24' },
  r2n2: { name: 'r2n2', rack: 'rack2', ip: '172.20.2.12', cidr: '10.244.3.0/24', tor: tor2, segment: '172.20.2.0/24' },
  // No rack label: the map groups it by its planned segment.
  r3n1: { name: 'r3n1', ip: '172.20.3.11', cidr: '10.244.4.0/24', tor: tor3, segment: '172.20.3.0/24' },
};
for (const [a, b] of [
  ['r1n1', 'r1n2'],
  ['r2n1', 'r2n2'],
] as const) {
  F[a]!.neighbour = F[b]!;
  F[b]!.neighbour = F[a]!;
}

const segmentName = (f: Fix) => segmentObjectName(4, `subnet:${f.segment}`);

/** The controller's plan for a node: its routes are its L2Segment's (segmentSpec), named here. */
function plan(f: Fix): NodeFabricSpec {
  return {
    podCIDRs: [f.cidr],
    allocations: [{ cidr: f.cidr, pool: 'default' }],
    nodeIPs: [f.ip],
    asn: 64512,
    routerId: f.ip,
    advertisements: [{ prefix: f.cidr, nextHop: f.ip }],
    routing: { l2Segment: f.segment, segments: [segmentName(f)] },
  };
}

/** The controller's L2Segment for the members of one subnet: each one's pod CIDR via its IP, sorted. */
function segmentSpec(members: Fix[]): L2SegmentSpec {
  const routes = members.map((m) => ({ destination: m.cidr, via: m.ip, node: m.name })).sort((a, b) => (a.destination < b.destination ? -1 : 1));
  return { key: `subnet:${members[0]!.segment}`, family: 4, reason: 'SameSubnet', routes };
}
const applySegment = (members: Fix[]) =>
  rest.apply(`${API}/l2segments/${segmentName(members[0]!)}`, { apiVersion: AV, kind: 'L2Segment', metadata: { name: segmentName(members[0]!) }, spec: segmentSpec(members) }, 'podfabric-controller');

/** What a healthy agent reports for that plan. */
function healthy(f: Fix): NodeFabricStatus {
  return {
    observedGeneration: 1,
    conditions: ['BGPReady', 'CNIReady', 'Ready', 'RoutesReady'].map((t) => cond(t, 'True')),
    uplink: 'eth0',
    l2Subnets: [f.segment],
    sessions: [{ address: f.tor.address, name: f.tor.name, state: 'Established', establishedSince: now(), prefixesSent: 1, prefixesReceived: 4 }],
    sessionsEstablished: 1,
    sessionsTotal: 1,
    advertised: [f.cidr],
    routesInstalled: f.neighbour ? 1 : 0,
    cni: { written: true, path: '/etc/cni/net.d/10-podfabric.conflist' },
    lastSyncTime: now(),
  };
}

const applySpec = (f: Fix) => rest.apply(`${API}/nodefabrics/${f.name}`, { apiVersion: AV, kind: 'NodeFabric', metadata: { name: f.name }, spec: plan(f) }, 'podfabric-controller');
/** The agent's write: server-side apply on the status subresource with the agent's field manager. */
const applyStatus = (name: string, status: NodeFabricStatus) =>
  rest.apply(`${API}/nodefabrics/${name}/status`, { apiVersion: AV, kind: 'NodeFabric', metadata: { name }, status }, 'podfabric-agent');

const fabric = (args: string[], opts: { viaKubectl?: boolean } = {}) => fabricCli(args, opts.viaKubectl ? { pathDir: join(tmp, 'path') } : {});

beforeAll(async () => {
  chromiumBinary(); // fail now, not after the fixtures, when there is no browser
  tmp = await mkdtemp(join(tmpdir(), 'pf-kubectl-fabric-'));
  await mkdir(join(tmp, 'path'));
  await symlink(FABRIC_BIN, join(tmp, 'path', 'kubectl-fabric'));
  await ensureFabricBuilt();
  await cleanCluster(rest);
  const healthyFour = [F.r1n1!, F.r1n2!, F.r2n1!, F.r2n2!];
  await createNodes(
    rest,
    healthyFour.map((f) => node(f.name, f.ip, { 'podfabric.io/rack': f.rack! }, [f.cidr])),
  );
  await rest.apply(`${API}/ippools/default`, { apiVersion: AV, kind: 'IPPool', metadata: { name: 'default' }, spec: { cidr: '10.244.0.0/16' } }, 'kubectl-fabric-test');
  await rest.apply(
    `${API}/ippools/default/status`,
    { apiVersion: AV, kind: 'IPPool', metadata: { name: 'default' }, status: { blocksTotal: 256, blocksAllocated: 5, blocksFree: 251, conditions: [cond('Ready', 'True', 'Serving')] } },
    'podfabric-controller',
  );
  for (const t of [tor1, tor2, tor3]) {
    const sel = t === tor3 ? { matchLabels: { 'kubernetes.io/hostname': 'r3n1' } } : { matchLabels: { 'podfabric.io/rack': t === tor1 ? 'rack1' : 'rack2' } };
    await rest.apply(`${API}/bgppeers/${t.name}`, { apiVersion: AV, kind: 'BGPPeer', metadata: { name: t.name }, spec: { peerAddress: t.address, peerASN: t.asn, nodeSelector: sel } }, 'kubectl-fabric-test');
  }
  await rest.apply(`${API}/fabricconfigs/default`, { apiVersion: AV, kind: 'FabricConfig', metadata: { name: 'default' }, spec: { asn: 64512 } }, 'kubectl-fabric-test');
  await applySegment([F.r1n1!, F.r1n2!]);
  await applySegment([F.r2n1!, F.r2n2!]);
  for (const f of healthyFour) {
    await applySpec(f);
    await applyStatus(f.name, healthy(f));
  }
});

afterAll(async () => {
  await cleanCluster(rest);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('kubectl fabric (real apiserver, real plugin process)', () => {
  it('prints help for every subcommand', async () => {
    for (const args of [['--help'], ['status', '--help'], ['node', '--help'], ['map', '--help']]) {
      const r = await fabric(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/^kubectl fabric/);
      expect(r.stdout).toContain('Usage:');
    }
    const bad = await fabric(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown command frobnicate');
  });

  it('status: a healthy fabric is READY with exit 0, as a table and as JSON', async () => {
    const r = await fabric(['status']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^FABRIC +4\/4 nodes ready, 4\/4 sessions established, 3 BGP peer\(s\), 1 pool\(s\): READY$/m);
    expect(r.stdout).toMatch(/^r1n1 +10\.244\.0\.0\/24 +rack1 +1\/1 +1\/1 +1\/1 +yes +True +\d+s ago$/m);
    expect(r.stdout).toMatch(/^tor1 +172\.20\.1\.1 +65101 +2 +2\/2 /m);
    expect(r.stdout).toMatch(/^default +10\.244\.0\.0\/16 +\/24 +5\/256 +2\.0% +no +Ready=True$/m);
    expect(r.stdout).toMatch(/^64512 +NodeIPv4 +on \(detect L2/m);

    const j = await fabric(['status', '-o', 'json']);
    expect(j.code).toBe(0);
    const report = JSON.parse(j.stdout);
    expect(report.ready).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.nodes.map((n: { name: string; rack: string }) => `${n.name}@${n.rack}`)).toEqual(['r1n1@rack1', 'r1n2@rack1', 'r2n1@rack2', 'r2n2@rack2']);
    expect(report.pools[0]).toMatchObject({ name: 'default', blocksUsed: 5, blocksTotal: 256, utilizationPercent: 2 });
  });

  it('status works as a kubectl plugin (kubectl fabric status), with --kubeconfig', async () => {
    const list = await run(['kubectl', 'plugin', 'list'], { allowFail: true, env: { ...process.env, PATH: `${join(tmp, 'path')}:${process.env.PATH}` } });
    expect(list.stdout).toContain(join(tmp, 'path', 'kubectl-fabric'));
    const r = await fabric(['status', `--kubeconfig=${kubeconfigPath()}`], { viaKubectl: true });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^FABRIC .*: READY$/m);
  });

  it('node: exactly the plan is exit 0, NO DISCREPANCIES', async () => {
    const r = await fabric(['node', 'r1n1']);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain('NO DISCREPANCIES');
    expect(r.stdout).toMatch(/^tor1 +172\.20\.1\.1 +yes +Established +\d+s ago +1 +4 +- +ok$/m);
    expect(r.stdout).toMatch(/^10\.244\.1\.0\/24 +r1n2 +172\.20\.1\.12 +172\.20\.1\.12 +SameSubnet +ok$/m);
    expect(r.stdout).toMatch(/^v4-subnet-172-20-1-0-24-[0-9a-f]{8} +subnet:172\.20\.1\.0\/24 +IPv4 +SameSubnet +2 +0 +ok$/m);
    const missing = await fabric(['node', 'nosuchnode']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('node "nosuchnode" not found');
  });

  it("node and status: a member joining is one write of the rack's L2Segment, and every member's plan follows it", async () => {
    const joining: Fix = { name: 'r1n3', rack: 'rack1', ip: '172.20.1.13', cidr: '10.244.5.0/24', tor: tor1, segment: '172.20.1.0/24' };
    const before = await rest.get<{ metadata: { resourceVersion: string } }>(`${API}/nodefabrics/r1n1`);
    await applySegment([F.r1n1!, F.r1n2!, joining]);
    for (const name of ['r1n1', 'r1n2']) {
      const j = JSON.parse((await fabric(['node', name, '-o', 'json'])).stdout);
      expect(j.routes.map((x: { destination: string; plannedVia: string; segment: string }) => [x.destination, x.plannedVia, x.segment]), name).toContainEqual(['10.244.5.0/24', '172.20.1.13', segmentName(F.r1n1!)]);
      expect(j.segments[0], name).toMatchObject({ key: 'subnet:172.20.1.0/24', routes: 3, found: true });
    }
    expect((await rest.get<{ metadata: { resourceVersion: string } }>(`${API}/nodefabrics/r1n1`)).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    const st = JSON.parse((await fabric(['status', '-o', 'json'])).stdout);
    expect(st.nodes.find((n: { name: string }) => n.name === 'r1n1')).toMatchObject({ routesPlanned: 2 });

    // r1n1's agent has not installed it yet: it reports the planned route missing, and the report says so.
    const s11 = healthy(F.r1n1!);
    s11.routeProblems = [{ destination: joining.cidr, plannedVia: joining.ip }];
    s11.routeProblemsTotal = 1;
    await applyStatus('r1n1', s11);
    const n = await fabric(['node', 'r1n1']);
    expect(n.code).toBe(1);
    expect(n.stdout).toMatch(/^10\.244\.5\.0\/24 +r1n3 +172\.20\.1\.13 +- +SameSubnet +!! MISSING$/m);
    expect(n.stdout).toMatch(/^v4-subnet-172-20-1-0-24-[0-9a-f]{8} +subnet:172\.20\.1\.0\/24 +IPv4 +SameSubnet +3 +0 +ok$/m);

    await applySegment([F.r1n1!, F.r1n2!]);
    await applyStatus('r1n1', healthy(F.r1n1!));
    expect((await fabric(['node', 'r1n1'])).code).toBe(0);
  });

  it('status and node: a broken fabric exits 1 and says what is wrong', async () => {
    // r1n2: session Active. r2n2: session Idle with an error, its host route missing, CNI not written.
    // r3n1: a new node, planned, whose agent has not reported yet.
    const s12 = healthy(F.r1n2!);
    s12.sessions = [{ address: tor1.address, name: 'tor1', state: 'Active' }];
    s12.sessionsEstablished = 0;
    s12.conditions = [cond('BGPReady', 'False', 'SessionsDown', '0/1 sessions established'), cond('Ready', 'False', 'BGPNotReady', '0/1 sessions established')];
    await applyStatus('r1n2', s12);
    const s22 = healthy(F.r2n2!);
    s22.sessions = [{ address: tor2.address, name: 'tor2', state: 'Idle', lastError: 'hold timer expired' }];
    s22.sessionsEstablished = 0;
    s22.routesInstalled = 0;
    s22.routeProblems = [{ destination: F.r2n1!.cidr, plannedVia: F.r2n1!.ip }];
    s22.routeProblemsTotal = 1;
    s22.cni = { written: false, reason: 'waiting for BGP sessions and host routes' };
    s22.conditions = [cond('Ready', 'False', 'RoutesNotReady', 'route 10.244.2.0/24 missing'), cond('RoutesReady', 'False', 'RoutesMissing', '1 route missing')];
    await applyStatus('r2n2', s22);
    await createNodes(rest, [node('r3n1', F.r3n1!.ip, {}, [F.r3n1!.cidr])]);
    await applySegment([F.r3n1!]); // a segment of one member holds its own route: nothing to install
    await applySpec(F.r3n1!);

    const r = await fabric(['status']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FABRIC +2\/5 nodes ready, .*: NOT READY$/m);
    expect(r.stdout).toMatch(/^r1n2 .* False +BGPNotReady/m);
    expect(r.stdout).toMatch(/^r3n1 +10\.244\.4\.0\/24 +172\.20\.3\.0\/24 +0\/1 +0\/1 +0\/0 +- +Unknown +NoStatus +-$/m);
    expect(r.stdout).toContain('! node r2n2: Ready=False (RoutesNotReady): route 10.244.2.0/24 missing');
    expect(r.stdout).toContain('! bgppeer tor1: 1 of 2 planned session(s) not established');
    const viaKubectl = await fabric(['status'], { viaKubectl: true });
    expect(viaKubectl.code).toBe(1);

    const n = await fabric(['node', 'r2n2']);
    expect(n.code).toBe(1);
    expect(n.stdout).toMatch(/^tor2 +172\.20\.2\.1 +yes +Idle +- +- +- +hold timer expired +!! DOWN$/m);
    expect(n.stdout).toMatch(/^10\.244\.2\.0\/24 +r2n1 +172\.20\.2\.11 +- +SameSubnet +!! MISSING$/m);
    expect(n.stdout).toMatch(/^RoutesReady +False +RoutesMissing +1 route missing +!! NOT TRUE$/m);
    expect(n.stdout).toContain('!! NOT WRITTEN');
    const j = JSON.parse((await fabric(['node', 'r2n2', '-o', 'json'])).stdout);
    expect(j.routes).toEqual([{ destination: '10.244.2.0/24', node: 'r2n1', plannedVia: '172.20.2.11', installedVia: null, segment: segmentName(F.r2n1!), reason: 'SameSubnet', verdict: 'missing' }]);
    expect(j.sessions[0]).toMatchObject({ address: '172.20.2.1', state: 'Idle', verdict: 'down', lastError: 'hold timer expired' });
    expect(j.discrepancies.length).toBeGreaterThanOrEqual(4);

    // The agent's next write without problems drops them (server-side apply: a field the manager stops
    // sending is removed), and the route reads as installed via its planned next hop.
    await applyStatus('r2n2', healthy(F.r2n2!));
    const healed = await rest.get<{ status: NodeFabricStatus }>(`${API}/nodefabrics/r2n2`);
    expect(healed.status.routesInstalled).toBe(1);
    expect(healed.status).not.toHaveProperty('routeProblems');
    expect(healed.status).not.toHaveProperty('routeProblemsTotal');
    const ok = await fabric(['node', 'r2n2']);
    expect(ok.stdout).toMatch(/^10\.244\.2\.0\/24 +r2n1 +172\.20\.2\.11 +172\.20\.2\.11 +SameSubnet +ok$/m);
    await applyStatus('r2n2', s22);
  });

  it('map: a valid SVG that Chromium lays out without overlaps, labels in their boxes, lines coloured by state', async () => {
    const svgPath = join(tmp, 'fabric.svg');
    const r = await fabric(['map', '-o', svgPath]);
    expect(r.code, r.stderr).toBe(0);
    const svg = await readFile(svgPath, 'utf8');
    expect(svg).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/);
    // Deterministic: a second run gives the same bytes.
    const again = await fabric(['map', '-o', '-']);
    expect(again.stdout).toBe(svg);

    // As a standalone document: the XML parser accepts it (a malformed file shows a parsererror page).
    const standalone = await dumpDom(`file://${svgPath}`);
    expect(standalone).not.toMatch(/parsererror|error on line/i);
    expect(standalone).toContain('data-node="r1n1"');

    const html = join(tmp, 'map.html');
    await writeFile(html, wrapper(svg.replace(/^<\?xml[^>]*\?>\n/, '')));
    const dom = await dumpDom(`file://${html}`);
    const m = /<pre id="result">([^<]*)<\/pre>/.exec(dom);
    expect(m, dom.slice(0, 2000)).not.toBeNull();
    const res = JSON.parse(m![1]!.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as Measured;
    expect(res.errors).toEqual([]);
    expect(res.nodes.map((n) => `${n.name}:${n.ready}`)).toEqual(['r1n1:True', 'r1n2:False', 'r2n1:True', 'r2n2:False', 'r3n1:Unknown']);
    for (const n of res.nodes) expect(n.fill, n.name).toBe(rgb(READY_COLORS[n.ready as 'True'].fill));
    expect(res.outsideViewBox).toEqual([]);
    expect(res.overlaps).toEqual([]);
    expect(res.labelOverflows).toEqual([]);
    expect(res.labelCount).toBe(2 * (5 + 3));
    expect(res.racks).toEqual(['172.20.3.0/24', 'rack1', 'rack2']);
    expect(res.peers).toEqual(['tor1', 'tor2', 'tor3']);
    // One line per session, coloured by state as the browser computes it.
    expect(res.sessions).toEqual([
      { id: 'r1n1->172.20.1.1', state: 'Established', stroke: rgb(SESSION_COLORS.Established) },
      { id: 'r1n2->172.20.1.1', state: 'Active', stroke: rgb(SESSION_COLORS.Active) },
      { id: 'r2n1->172.20.2.1', state: 'Established', stroke: rgb(SESSION_COLORS.Established) },
      { id: 'r2n2->172.20.2.1', state: 'Idle', stroke: rgb(SESSION_COLORS.Idle) },
      { id: 'r3n1->172.20.3.1', state: 'Unknown', stroke: rgb(SESSION_COLORS.Unknown) },
    ]);
    expect(res.title).toBe('podfabric: 5 nodes (2 ready) in 3 racks, 3 BGP peers, 2/5 sessions established');

    const png = join(tmp, 'map.png');
    await screenshot(`file://${html}`, png, { width: Math.ceil(res.width) + 40, height: Math.ceil(res.height) + 200 });
    expect(statSync(png).size).toBeGreaterThan(10_000);
  });
});

const rgb = (hex: string) => {
  const n = parseInt(hex.slice(1), 16);
  return `rgb(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255})`;
};

interface Measured {
  errors: string[];
  width: number;
  height: number;
  title: string;
  nodes: Array<{ name: string; ready: string; fill: string }>;
  racks: string[];
  peers: string[];
  sessions: Array<{ id: string; state: string; stroke: string }>;
  outsideViewBox: string[];
  overlaps: string[];
  labelOverflows: string[];
  labelCount: number;
}

/** An HTML page with the SVG inline and a script that measures the browser's layout into <pre id="result">. */
function wrapper(svg: string): string {
  const script = `
window.addEventListener('load', () => {
  const res = { errors: [], outsideViewBox: [], overlaps: [], labelOverflows: [], labelCount: 0 };
  try {
    const svg = document.querySelector('svg');
    const vb = svg.viewBox.baseVal;
    res.width = vb.width;
    res.height = vb.height;
    res.title = document.getElementById('title').textContent;
    const box = (el) => { const b = el.getBBox(); return { x: b.x, y: b.y, w: b.width, h: b.height }; };
    const inside = (a, o) => a.x >= o.x - 0.5 && a.y >= o.y - 0.5 && a.x + a.w <= o.x + o.w + 0.5 && a.y + a.h <= o.y + o.h + 0.5;
    const view = { x: vb.x, y: vb.y, w: vb.width, h: vb.height };
    const svgRect = svg.getBoundingClientRect();
    const groups = [...svg.querySelectorAll('g.node'), ...svg.querySelectorAll('g.peer')];
    const measured = groups.map((g) => {
      const rect = g.querySelector('rect');
      const name = g.dataset.node ?? g.dataset.peerName;
      const b = box(rect);
      const cr = rect.getBoundingClientRect();
      if (!inside(b, view) || cr.left < svgRect.left - 0.5 || cr.right > svgRect.right + 0.5 || cr.top < svgRect.top - 0.5 || cr.bottom > svgRect.bottom + 0.5) res.outsideViewBox.push(name);
      for (const t of g.querySelectorAll('text')) {
        res.labelCount++;
        const tb = box(t);
        if (tb.w <= 0 || !inside(tb, b)) res.labelOverflows.push(name + ': ' + t.textContent + ' ' + JSON.stringify(tb) + ' not in ' + JSON.stringify(b));
      }
      return { name, b, node: g.classList.contains('node') };
    });
    for (let i = 0; i < measured.length; i++)
      for (let j = i + 1; j < measured.length; j++) {
        const a = measured[i].b, c = measured[j].b;
        if (a.x < c.x + c.w && c.x < a.x + a.w && a.y < c.y + c.h && c.y < a.y + a.h) res.overlaps.push(measured[i].name + ' / ' + measured[j].name);
      }
    for (const r of svg.querySelectorAll('g.rack')) {
      const rb = box(r.querySelector('rect'));
      for (const n of svg.querySelectorAll('g.node')) if (n.dataset.rack === r.dataset.rack && !inside(box(n.querySelector('rect')), rb)) res.outsideViewBox.push(n.dataset.node + ' outside rack ' + r.dataset.rack);
    }
    res.nodes = [...svg.querySelectorAll('g.node')].map((g) => ({ name: g.dataset.node, ready: g.dataset.ready, fill: getComputedStyle(g.querySelector('rect')).fill }));
    res.racks = [...svg.querySelectorAll('g.rack')].map((g) => g.dataset.rack);
    res.peers = [...svg.querySelectorAll('g.peer')].map((g) => g.dataset.peerName);
    res.sessions = [...svg.querySelectorAll('line.session')].map((l) => ({ id: l.dataset.session, state: l.dataset.state, stroke: getComputedStyle(l).stroke }));
  } catch (e) {
    res.errors.push(String(e && e.stack || e));
  }
  document.getElementById('result').textContent = JSON.stringify(res);
});`;
  return `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>kubectl fabric map</title><style>body{margin:0}</style></head><body>\n${svg}\n<pre id="result">pending</pre>\n<script>${script}</script>\n</body></html>\n`;
}
