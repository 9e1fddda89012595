/**
 * The agent's NetworkPolicy reconciler on a fake apiserver and a fake kernel: nothing is programmed
 * before the three caches sync, a change is programmed on its own key, pod status churn does not
 * wake it, invalid policies and nft failures become Warning Events and PolicyReady=False, and the
 * NodeAgent reports the counts and the condition in its NodeFabric status.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { API_PATH } from '../../operator/api/common.js';
import { NodeAgent } from '../../operator/agent/agent.js';
import { policyReport, PolicyReconciler, type PolicyKernel } from '../../operator/agent/policy-apply.js';
import { log } from '../../operator/lib/log.js';
import { newRegistry } from '../../operator/lib/metrics.js';
import { isolationOf } from '../../operator/policy/desired.js';
import type { Ruleset } from '../../operator/policy/objects.js';
import { FakeRest, FakeRouteTable, FakeSpeaker } from '../support/fakes.js';
import { bgpPeer, coreNode, nodeFabric } from '../support/objects.js';

const PODS = '/api/v1/pods';
const NSS = '/api/v1/namespaces';
const NPS = '/apis/networking.k8s.io/v1/networkpolicies';

async function until(what: string, f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

class FakeKernel implements PolicyKernel {
  applied: Ruleset[] = [];
  fail: Error | undefined;
  async enforce(rs: Ruleset) {
    if (this.fail) throw this.fail;
    this.applied.push(rs);
    return { sync: { statements: 1, text: '', full: true, ms: 1, diffMs: 0, nftMs: 1 } as never, cut: [], ms: 1 };
  }
  async checkDrift() {
    return null;
  }
}

const pod = (ns: string, name: string, ip: string, labels: Record<string, string>, node = 'n1', extra: Record<string, unknown> = {}) => ({
  metadata: { namespace: ns, name, labels },
  spec: { nodeName: node, containers: [{ name: 'c' }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], ...extra },
});
const nsObj = (name: string) => ({ metadata: { name, labels: { 'kubernetes.io/metadata.name': name } } });
const denyIngress = (ns: string, name = 'deny') => ({ metadata: { namespace: ns, name }, spec: { podSelector: {}, policyTypes: ['Ingress'] } });

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

function world() {
  const rest = new FakeRest();
  rest.set(PODS, [pod('x', 'a', '10.1.0.2', { pod: 'a' }), pod('x', 'b', '10.1.0.3', { pod: 'b' }), pod('y', 'a', '10.1.1.2', { pod: 'a' }, 'n2')]);
  rest.set(NSS, [nsObj('x'), nsObj('y')]);
  rest.set(NPS, []);
  return rest;
}

function reconciler(rest: FakeRest, kernel = new FakeKernel()) {
  const events: string[] = [];
  let reports = 0;
  const r = new PolicyReconciler({
    nodeName: 'n1',
    rest: rest.asRest(),
    kernel,
    registry: newRegistry('policy-unit', false),
    event: (type, reason, message) => events.push(`${type} ${reason} ${message}`),
    onReport: () => reports++,
    log,
    resyncMs: 3_600_000,
  });
  stops.push(() => r.stop());
  return { r, kernel, events, reports: () => reports };
}

describe('policyReport', () => {
  it.each([
    [{ synced: false }, 'False', 'CachesNotSynced'],
    [{ synced: true }, 'False', 'Pending'],
    [{ synced: true, error: 'nft: syntax error' }, 'False', 'ApplyFailed'],
  ])('%j → %s %s', (s, status, reason) => {
    const r = policyReport(s);
    expect(r.condition).toMatchObject({ type: 'PolicyReady', status, reason });
  });
});

describe('PolicyReconciler', () => {
  it('programs nothing until all three caches have synced, then the table from them', async () => {
    const rest = world();
    // The NetworkPolicy list never answers while the others do.
    const realGet = rest.get.bind(rest);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    rest.get = async <T,>(path: string): Promise<T> => {
      if (path.startsWith(NPS)) await gate;
      return realGet<T>(path);
    };
    rest.emit(NPS, 'ADDED', denyIngress('x'));
    const { r, kernel } = reconciler(rest);
    r.start();
    await until('pods and namespaces listed', () => rest.count('GET', /^\/api\/v1\/namespaces/) > 0 && rest.count('GET', /^\/api\/v1\/pods/) > 0);
    await new Promise((res) => setTimeout(res, 50));
    expect(kernel.applied).toEqual([]);
    expect(r.report().condition.reason).toBe('CachesNotSynced');
    release();
    await until('first apply', () => kernel.applied.length > 0);
    const rs = kernel.applied.at(-1)!;
    expect(isolationOf(rs, '10.1.0.2').ingress).toBeDefined();
    expect(isolationOf(rs, '10.1.0.3').ingress).toBeDefined();
    expect(isolationOf(rs, '10.1.0.2').egress).toBeUndefined();
    await until('report', () => r.report().condition.status === 'True');
    expect(r.report().status).toMatchObject({ policies: 1, invalid: 0, localPods: 2, isolatedIngress: 2, isolatedEgress: 0 });
  });

  it('a relevant change is programmed; pod status churn does not wake it', async () => {
    const rest = world();
    const { r, kernel } = reconciler(rest);
    r.start();
    await until('first apply', () => kernel.applied.length === 1);
    const before = r.syncs;
    rest.emit(PODS, 'MODIFIED', pod('x', 'a', '10.1.0.2', { pod: 'a' }, 'n1', { conditions: [{ type: 'Ready', status: 'True' }] }));
    await new Promise((res) => setTimeout(res, 100));
    expect(r.syncs).toBe(before);
    rest.emit(NPS, 'ADDED', denyIngress('x'));
    await until('second apply', () => kernel.applied.length === 2);
    expect(isolationOf(kernel.applied[1]!, '10.1.0.2').ingress).toBeDefined();
  });

  it('with commit and cut: a change is committed while the previous conntrack cut still runs; owed cuts coalesce and judge by the newest table', async () => {
    const rest = world();
    let release!: () => void;
    let gate = new Promise<void>((r) => (release = r));
    const cuts: Ruleset[] = [];
    const kernel = Object.assign(new FakeKernel(), {
      commit: async (rs: Ruleset) => {
        kernel.applied.push(rs);
        return { statements: 1, text: '', full: false, ms: 1, diffMs: 0, nftMs: 1, elements: 0, rules: 0 };
      },
      cut: async (current: () => Ruleset) => {
        await gate;
        cuts.push(current());
        return { cut: [], ms: 1 };
      },
    });
    const { r } = reconciler(rest, kernel);
    r.start();
    await until('first commit', () => kernel.applied.length === 1);
    rest.emit(NPS, 'ADDED', denyIngress('x'));
    await until('second commit while the first cut waits', () => kernel.applied.length === 2);
    rest.emit(NPS, 'ADDED', denyIngress('x', 'deny2'));
    await until('third commit', () => kernel.applied.length === 3);
    expect(cuts).toEqual([]);
    const first = gate;
    gate = Promise.resolve();
    release();
    await first;
    await until('cuts done', () => cuts.length === 2);
    await new Promise((res) => setTimeout(res, 50));
    // one cut was running, the two commits after it owe one more (not two), judged by the newest table
    expect(cuts).toHaveLength(2);
    expect(cuts[1]).toBe(kernel.applied[2]);
  });

  it('an invalid policy fails closed with a Warning Event; an nft failure is PolicyReady=False + Event, then recovers', async () => {
    const rest = world();
    rest.emit(NPS, 'ADDED', { metadata: { namespace: 'x', name: 'bad' }, spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 0 }] }] } });
    const kernel = new FakeKernel();
    const { r, events, reports } = reconciler(rest, kernel);
    r.start();
    await until('first apply', () => kernel.applied.length === 1);
    expect(events.filter((e) => e.startsWith('Warning InvalidNetworkPolicy NetworkPolicy x/bad'))).toHaveLength(1);
    const iso = isolationOf(kernel.applied[0]!, '10.1.0.2');
    expect(iso.ingress && iso.egress).toBeTruthy();
    expect(r.report().status?.invalid).toBe(1);
    kernel.fail = new Error('netlink: Error: Could not process rule');
    const seen = reports();
    rest.emit(NSS, 'MODIFIED', { metadata: { name: 'y', labels: { team: 'new' } } });
    await until('failure reported', () => r.report().condition.reason === 'ApplyFailed');
    expect(reports()).toBeGreaterThan(seen);
    expect(events.some((e) => e.startsWith('Warning PolicyApplyFailed'))).toBe(true);
    kernel.fail = undefined;
    await until('recovered', () => r.report().condition.status === 'True');
    expect(events.some((e) => e.startsWith('Normal PolicyApplied'))).toBe(true);
  });
});

describe('NodeAgent with policy enforcement', () => {
  it('reports policy counts and PolicyReady in its NodeFabric status', async () => {
    const rest = world();
    rest.set(`${API_PATH}/nodefabrics`, [nodeFabric('n1')]);
    rest.set(`${API_PATH}/fabricconfigs`, []);
    rest.set(`${API_PATH}/bgppeers`, [bgpPeer('tor', '10.0.1.1')]);
    rest.set(`${API_PATH}/ippools`, []);
    rest.set('/api/v1/nodes', [coreNode('n1', '10.0.1.11')]);
    for (const c of ['/api/v1/services', '/apis/discovery.k8s.io/v1/endpointslices', `${API_PATH}/loadbalancerpools`]) rest.set(c, []);
    rest.emit(NPS, 'ADDED', denyIngress('x'));
    const kernel = new FakeKernel();
    const a = new NodeAgent({
      nodeName: 'n1',
      rest: rest.asRest(),
      router: new FakeSpeaker(),
      routes: () => new FakeRouteTable(),
      detectUplink: async () => ({ dev: 'eth0', address: '10.0.1.11', subnet: '10.0.1.0/24' }),
      registry: newRegistry('agent-policy-unit', false),
      resyncMs: 3_600_000,
      policy: kernel,
    });
    stops.push(() => a.stop());
    await a.start();
    const lastStatus = () => {
      const w = rest.calls.filter((c) => c.method === 'APPLY' && /\/nodefabrics\/n1\/status$/.test(c.path)).at(-1);
      return (w?.body as { status?: Record<string, any> } | undefined)?.status;
    };
    await until('PolicyReady in status', () => lastStatus()?.conditions?.some((c: { type: string; status: string }) => c.type === 'PolicyReady' && c.status === 'True'));
    expect(lastStatus()?.policy).toMatchObject({ policies: 1, localPods: 2, isolatedIngress: 2 });
    expect(kernel.applied.length).toBeGreaterThan(0);
  });
});
