/**
 * `kubectl fabric policy` I/O: parses the query, LISTs NetworkPolicies, Namespaces, Pods and Nodes (four
 * requests, whole cluster) and prints the pure report of policy-view.ts. Exit 0 when every flow shown
 * is allowed, 1 when one is denied, 2 on a bad query or an apiserver error.
 */
import type { KubeRest } from '../kube/rest.js';
export { PolicyQueryError } from './policy-view.js';
import { buildPolicyReport, parseEndpoint, parsePortSpec, PolicyQueryError, policyReportJson, renderPolicyReport, type PolicyObjects } from './policy-view.js';

export const POLICY_HELP = `kubectl fabric policy SRC DST: why NetworkPolicy allows or denies traffic from SRC to DST, computed
from the NetworkPolicies, Namespaces and Pods in the apiserver with the same semantics the agents
enforce. Per flow (address family x port): the source side (Egress) and the destination side
(Ingress), each with the policies that select (isolate) it and the rule that allows the flow
("x/allow-y ingress[0]": rule 0 of spec.ingress of policy allow-y in namespace x), or that no rule of
the isolating policies matches. Traffic from the destination pod's own node is always allowed.

SRC, DST: NAMESPACE/POD, or an IP address (a pod's IP is that pod; any other address is outside the
pod network, matched by ipBlock peers only). For a Service, name its backend pod: policies are
enforced after kube-proxy's DNAT. Pods with addresses in both families are explained in each family.
Without --port: every container port the destination pod declares, else TCP/80.

Exit codes: 0 every flow shown is allowed, 1 at least one is denied, 2 usage or apiserver error.

Usage:
  kubectl fabric policy SRC DST [--port PORT[/PROTO]] [-o text|json]

Flags:
  --port PORT[/PROTO]  a port number (80, 53/UDP; TCP when no protocol) or a named container port of
                       the destination pod (serve-80-tcp)
  -o, --output FORMAT  text (default) or json`;

async function readPolicyObjects(rest: KubeRest): Promise<PolicyObjects> {
  const items = (path: string) => rest.get<{ items: unknown[] }>(path).then((r) => r.items);
  const [policies, namespaces, pods, nodes] = await Promise.all([
    items('/apis/networking.k8s.io/v1/networkpolicies'),
    items('/api/v1/namespaces'),
    items('/api/v1/pods'),
    items('/api/v1/nodes') as Promise<PolicyObjects['nodes']>,
  ]);
  return { policies, namespaces, pods, nodes };
}

export type PolicyQuery = Parameters<typeof buildPolicyReport>[0];

/** The command's arguments → a query; throws PolicyQueryError (a usage error) before anything is read. */
export function parsePolicyQuery(src: string, dst: string, port: string | undefined): PolicyQuery {
  return { src: parseEndpoint(src, 'SRC'), dst: parseEndpoint(dst, 'DST'), ...(port !== undefined ? { port: parsePortSpec(port) } : {}) };
}

export async function runPolicy(rest: KubeRest, q: PolicyQuery, json: boolean, io: { out: (s: string) => void; err: (s: string) => void }): Promise<number> {
  try {
    const r = buildPolicyReport(q, await readPolicyObjects(rest));
    io.out(json ? `${JSON.stringify(policyReportJson(r), null, 2)}\n` : renderPolicyReport(r));
    return r.allowed ? 0 : 1;
  } catch (e) {
    if (!(e instanceof PolicyQueryError)) throw e;
    io.err(`kubectl-fabric: ${e.message}\n`);
    return 2;
  }
}
