/**
 * `kubectl fabric policy` against the real kube-apiserver: the upstream world (namespaces pfp-x,
 * pfp-y, pfp-z; pods a, b, c with label pod=<name> and the upstream named ports, Running with their
 * addresses written through the status subresource), upstream NetworkPolicies applied with kubectl,
 * then the real plugin process (directly and through kubectl's plugin lookup) — verdict, exit code and
 * the policy and rule it names. The enforcement side of the same cases is test/e2e/lab-netpol.test.ts.
 */
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFabricBuilt, FABRIC_BIN, fabricCli } from '../support/fabric-cli.js';
import { applyObjects, createNodes, ensureNamespace, kubectl, node, testRest } from '../support/kube.js';

const rest = testRest();
const NSS = ['pfp-x', 'pfp-y', 'pfp-z'];
const SERVE = [80, 81].flatMap((port) => ['TCP', 'UDP'].map((protocol) => ({ name: `serve-${port}-${protocol.toLowerCase()}`, containerPort: port, protocol })));
/** pfp-x/a → 10.244.1.2, pfp-y/b → 10.244.2.3, …; nodes pfp-n1 (x, y) and pfp-n2 (z). */
const ipOf = (ns: string, p: string) => `10.244.${NSS.indexOf(ns) + 1}.${['a', 'b', 'c'].indexOf(p) + 2}`;
let tmp: string;

const policy = (ns: string, name: string, spec: Record<string, unknown>) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec });
const fabric = (args: string[]) => fabricCli(['policy', ...args]);

async function only(...pols: ReturnType<typeof policy>[]): Promise<void> {
  for (const ns of NSS) await kubectl(['-n', ns, 'delete', 'networkpolicies', '--all']);
  if (pols.length) await applyObjects(pols);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pf-kubectl-fabric-policy-'));
  await mkdir(join(tmp, 'path'));
  await symlink(FABRIC_BIN, join(tmp, 'path', 'kubectl-fabric'));
  await ensureFabricBuilt();
  await createNodes(rest, [node('pfp-n1', '172.20.9.11'), node('pfp-n2', '172.20.9.12')]);
  for (const ns of NSS) {
    await ensureNamespace(ns);
    for (const p of ['a', 'b', 'c']) {
      await rest.request('POST', `/api/v1/namespaces/${ns}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: p, namespace: ns, labels: { pod: p } },
        spec: { nodeName: ns === 'pfp-z' ? 'pfp-n2' : 'pfp-n1', containers: [{ name: 'server', image: 'example.invalid/server', ports: SERVE }] },
      });
      const ip = ipOf(ns, p);
      await rest.request('PATCH', `/api/v1/namespaces/${ns}/pods/${p}/status`, { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } }, 'application/merge-patch+json');
    }
  }
});

afterAll(async () => {
  for (const ns of NSS) {
    await kubectl(['-n', ns, 'delete', 'networkpolicies,pods', '--all', '--grace-period=0', '--force'], { allowFail: true });
  }
  for (const n of ['pfp-n1', 'pfp-n2']) await rest.request('DELETE', `/api/v1/nodes/${n}`).catch(() => undefined);
  rest.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('kubectl fabric policy (real apiserver, real plugin process)', () => {
  it('no policy: allowed on every declared port, exit 0; through kubectl too', async () => {
    await only();
    const r = await fabric(['pfp-x/a', 'pfp-y/b']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^pfp-x\/a -> pfp-y\/b: ALLOWED \(4\/4 flows allowed; NetworkPolicies in the cluster: 0\)$/m);
    for (const pp of ['TCP/80', 'UDP/80', 'TCP/81', 'UDP/81']) expect(r.stdout).toContain(`10.244.1.2 -> 10.244.2.3 ${pp}: ALLOWED`);
    const viaKubectl = await fabricCli(['policy', 'pfp-x/a', 'pfp-y/b', '--port', '80'], { pathDir: join(tmp, 'path') });
    expect(viaKubectl.code, viaKubectl.stderr).toBe(0);
    expect(viaKubectl.stdout).toContain('10.244.1.2 -> 10.244.2.3 TCP/80: ALLOWED');
  });

  it('deny all ingress (upstream "should support a default-deny-ingress policy"): denied, exit 1, the isolating policy named', async () => {
    await only(policy('pfp-x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }));
    const r = await fabric(['pfp-y/a', 'pfp-x/b', '--port', '80/TCP']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain('10.244.2.2 -> 10.244.1.3 TCP/80: DENIED');
    expect(r.stdout).toContain('  verdict:     DENIED: isolated by pfp-x/deny-ingress, and no ingress rule of them matches');
    // The other way round pfp-y is not isolated.
    expect((await fabric(['pfp-x/b', 'pfp-y/a', '--port', '80'])).code).toBe(0);
    // From the destination's node: always allowed.
    const fromNode = await fabric(['172.20.9.11', 'pfp-x/b', '--port', '80']);
    expect(fromNode.code, fromNode.stdout).toBe(0);
    expect(fromNode.stdout).toContain('from the pod’s own node: always allowed');
  });

  it('allow from a namespace on one named port (upstream "should allow ingress access from namespace on one named port")', async () => {
    await only(
      policy('pfp-x', 'allow-client-a-via-ns-selector', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'pfp-y' } } }], ports: [{ port: 'serve-80-tcp', protocol: 'TCP' }] }],
      }),
    );
    const ok = await fabric(['pfp-y/c', 'pfp-x/a', '--port', 'serve-80-tcp']);
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toContain('ALLOWED by pfp-x/allow-client-a-via-ns-selector ingress[0]');
    expect((await fabric(['pfp-y/c', 'pfp-x/a', '--port', '81'])).code).toBe(1);
    expect((await fabric(['pfp-z/c', 'pfp-x/a', '--port', '80'])).code).toBe(1);
    // Every declared port: only TCP/80 passes.
    const all = await fabric(['pfp-y/c', 'pfp-x/a', '-o', 'json']);
    expect(all.code).toBe(1);
    const j = JSON.parse(all.stdout) as { allowed: boolean; flows: Array<{ protocol: string; port: number; allowed: boolean; ingress: { selectedBy: string[]; allowedBy: unknown[] } }> };
    expect(j.flows.map((f) => `${f.protocol}/${f.port}:${f.allowed}`)).toEqual(['TCP/80:true', 'UDP/80:false', 'TCP/81:false', 'UDP/81:false']);
    expect(j.flows[0]!.ingress.allowedBy).toEqual([{ policy: 'pfp-x/allow-client-a-via-ns-selector', rule: 0 }]);
    expect(j.flows[1]!.ingress.selectedBy).toEqual(['pfp-x/allow-client-a-via-ns-selector']);
  });

  it('egress to an ipBlock with except (upstream "should enforce except clause while egress access to server in CIDR block")', async () => {
    await only(
      policy('pfp-x', 'deny-client-a-via-except-cidr-egress-rule', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '10.244.0.0/16', except: [`${ipOf('pfp-y', 'b')}/32`] } }] }],
      }),
    );
    const denied = await fabric(['pfp-x/a', 'pfp-y/b', '--port', '80']);
    expect(denied.code, denied.stdout).toBe(1);
    expect(denied.stdout).toMatch(/^Egress +pfp-x\/a\n  selected by: pfp-x\/deny-client-a-via-except-cidr-egress-rule\n  verdict: +DENIED: isolated by pfp-x\/deny-client-a-via-except-cidr-egress-rule, and no egress rule of them matches$/m);
    const allowed = await fabric(['pfp-x/a', 'pfp-y/c', '--port', '81/UDP']);
    expect(allowed.code, allowed.stdout).toBe(0);
    expect(allowed.stdout).toContain('ALLOWED by pfp-x/deny-client-a-via-except-cidr-egress-rule egress[0]');
    // Outside the block: denied; to an address as DST.
    expect((await fabric(['pfp-x/a', '192.0.2.10', '--port', '443'])).code).toBe(1);
  });

  it('egress on a port to pods of a namespace (upstream "should allow egress access on port 81") and ingress of the peer both judged', async () => {
    await only(
      policy('pfp-x', 'allow-egress-81', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ ports: [{ port: 81, protocol: 'TCP' }] }] }),
      policy('pfp-z', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] }),
    );
    const r = await fabric(['pfp-x/a', 'pfp-y/a', '--port', '81']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ALLOWED by pfp-x/allow-egress-81 egress[0]');
    expect((await fabric(['pfp-x/a', 'pfp-y/a', '--port', '80'])).code).toBe(1);
    // Egress allows, the peer's ingress does not.
    const z = await fabric(['pfp-x/a', 'pfp-z/a', '--port', '81']);
    expect(z.code).toBe(1);
    expect(z.stdout).toContain('ALLOWED by pfp-x/allow-egress-81 egress[0]');
    expect(z.stdout).toContain('DENIED: isolated by pfp-z/deny-ingress');
  });

  it('bad queries exit 2 with a clear message', async () => {
    const missing = await fabric(['pfp-x/nope', 'pfp-y/a']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('SRC pod pfp-x/nope not found');
    const badPort = await fabric(['pfp-x/a', 'pfp-y/a', '--port', 'no-such-port']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toContain('declares no container port of that name');
    const unreachable = await fabricCli(['policy', 'pfp-x/a', 'pfp-y/a', '--kubeconfig=/nonexistent']);
    expect(unreachable.code).toBe(2);
  });
});
