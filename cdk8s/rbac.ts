/**
 * ServiceAccounts and least-privilege RBAC, derived from what the code really calls:
 *
 * controller (operator/controller/*, operator/kube/leader.ts, operator/kube/events.ts):
 *   - informers list+watch fabricconfigs, ippools, bgppeers, nodes, nodefabrics (no single GETs);
 *   - PATCH nodes (merge patch of spec.podCIDRs when empty);
 *   - nodefabrics: POST a new node's record, PUT a changed plan (GET it once after a 409 Conflict), DELETE
 *     a deleted node's record;
 *   - l2segments: list+watch, POST a segment's first route, PUT its changed routes (GET after a 409),
 *     DELETE a segment left with no route; no status;
 *   - server-side apply of {nodefabrics,ippools,bgppeers,fabricconfigs}/status;
 *   - merge PATCH of ippools (metadata.finalizers: podfabric.io/blocks-in-use);
 *   - GET secrets named by BGPPeer.passwordSecretRef (to report SecretMissing/SecretKeyMissing);
 *   - Lease GET/POST/PUT in its own namespace (no list, no watch);
 *   - Events POST and PATCH (count bumps). Every object it reports on is cluster-scoped, and such
 *     events go to the "default" namespace (as client-go's recorder does): a Role there is enough;
 *   - LoadBalancer addresses (service-reconciler.ts): list+watch services and loadbalancerpools,
 *     server-side apply of services/status and loadbalancerpools/status, merge PATCH of
 *     loadbalancerpools (metadata.finalizers: podfabric.io/addresses-in-use), and Events on Services,
 *     which live in any namespace (ClusterRole: events create/patch; nothing else on core objects).
 * agent (operator/agent/*):
 *   - list+watch of nodefabrics (fieldSelector metadata.name=<node>), fabricconfigs and bgppeers (it
 *     derives its own BGP sessions from them and its Node), GET fabricconfigs/default at start;
 *   - server-side apply of nodefabrics/<node>/status only;
 *   - list+watch (and get) of the ≤2 l2segments its NodeFabric names (spec.routing.segments), each by
 *     fieldSelector metadata.name: its host-gw routes. Never written by the agent;
 *   - list+watch of exactly the password Secrets of its peers (fieldSelector metadata.name=<secret>, which
 *     resourceNames authorizes), no GET per sync; Events POST/PATCH about its NodeFabric (cluster-scoped,
 *     so in "default", like the controller's). It never writes Nodes;
 *   - its Service routes (agent/service-routes.ts): list+watch of services and endpointslices (the
 *     watch kube-proxy already has), of its own Node (fieldSelector metadata.name; RBAC cannot name
 *     the node in a DaemonSet-wide role, so list/watch of nodes), of loadbalancerpools; Events on the
 *     Services it advertises (any namespace: events create/patch in the ClusterRole);
 *   - natOutgoing (agent/nat-apply.ts) and the peers' AddressInPodCIDR check: one list+watch of ippools.
 *
 * BGPPeer.passwordSecretRef names a namespace, so a Secret could live anywhere. Rather than a
 * cluster-wide secrets grant, the chart gives namespaced Roles: the controller may get Secrets in the
 * install namespace plus `secretNamespaces` (and the namespaces of `peers`' Secrets); the agent may
 * read (get, and list/watch by name) exactly the Secrets named (resourceNames). A BGPPeer applied later that points elsewhere shows up as
 * Valid=False on the peer (controller: forbidden) until the option lists it and the chart is re-applied.
 */
import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-34';
import { GROUP } from '../operator/api/kinds.js';
import type { ResolvedOptions } from './options.js';

export const CONTROLLER_SA = 'podfabric-controller';
export const AGENT_SA = 'podfabric-agent';

export type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

const READ = ['list', 'watch'];

export function controllerClusterRules(): Rule[] {
  return [
    { apiGroups: [''], resources: ['nodes'], verbs: [...READ, 'patch'] },
    { apiGroups: [GROUP], resources: ['fabricconfigs', 'bgppeers'], verbs: READ },
    { apiGroups: [GROUP], resources: ['ippools'], verbs: [...READ, 'patch'] },
    { apiGroups: [GROUP], resources: ['nodefabrics'], verbs: [...READ, 'get', 'create', 'update', 'delete'] },
    // One L2Segment per segment and family, written whole like NodeFabric specs (POST, PUT, DELETE; GET after a 409).
    { apiGroups: [GROUP], resources: ['l2segments'], verbs: [...READ, 'get', 'create', 'update', 'delete'] },
    { apiGroups: [GROUP], resources: ['nodefabrics/status', 'ippools/status', 'bgppeers/status', 'fabricconfigs/status'], verbs: ['patch'] },
    ...controllerServiceRules(),
  ];
}

/** LoadBalancer address allocation: its Service status writes, pools, and Events on Services in any namespace. */
export function controllerServiceRules(): Rule[] {
  return [
    { apiGroups: [''], resources: ['services'], verbs: READ },
    { apiGroups: [''], resources: ['services/status'], verbs: ['patch'] },
    { apiGroups: [GROUP], resources: ['loadbalancerpools'], verbs: [...READ, 'patch'] },
    { apiGroups: [GROUP], resources: ['loadbalancerpools/status'], verbs: ['patch'] },
    ...EVENT_RULES,
  ];
}

export function controllerLeaseRules(leaseName: string): Rule[] {
  return [
    // create cannot be limited by name (the name is in the body); get/update can.
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'update'], resourceNames: [leaseName] },
  ];
}

export const EVENT_RULES: Rule[] = [{ apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }];
export const SECRET_GET_RULES: Rule[] = [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }];
/** The agent watches each named Secret (a list+watch with fieldSelector metadata.name, allowed by resourceNames). */
export const SECRET_WATCH_RULES: Rule[] = [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] }];

export function agentClusterRules(): Rule[] {
  return [
    // bgppeers: each agent derives its own sessions from them (plan/peers.ts); a handful of objects.
    { apiGroups: [GROUP], resources: ['nodefabrics', 'fabricconfigs', 'bgppeers'], verbs: READ },
    { apiGroups: [GROUP], resources: ['fabricconfigs'], verbs: ['get'], resourceNames: ['default'] },
    // Its host-gw routes: the ≤2 L2Segments its NodeFabric names, each watched by name (fieldSelector
    // metadata.name; RBAC cannot name them in a DaemonSet-wide role). Read only: the controller writes them.
    { apiGroups: [GROUP], resources: ['l2segments'], verbs: ['get', ...READ] },
    { apiGroups: [GROUP], resources: ['nodefabrics/status'], verbs: ['patch'] },
    { apiGroups: [''], resources: ['services', 'nodes'], verbs: READ },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: READ },
    { apiGroups: [GROUP], resources: ['loadbalancerpools'], verbs: READ },
    // natOutgoing (agent/nat-apply.ts): which pools masquerade, and every pool as a cluster destination.
    { apiGroups: [GROUP], resources: ['ippools'], verbs: READ },
    ...EVENT_RULES,
    // NetworkPolicy enforcement: the selectors and peers of every policy (read only).
    { apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['list', 'watch'] },
    { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['list', 'watch'] },
  ];
}

/** Namespace → Secret names the agent may get: `secretNames` (install namespace) and every peer's Secret. */
export function agentSecrets(o: ResolvedOptions): Map<string, string[]> {
  const m = new Map<string, Set<string>>();
  const add = (ns: string, name: string) => m.set(ns, (m.get(ns) ?? new Set()).add(name));
  for (const n of o.secretNames) add(o.namespace, n);
  for (const p of o.peers) if (p.passwordSecretRef) add(p.passwordSecretRef.namespace ?? o.namespace, p.passwordSecretRef.name);
  return new Map([...m].sort(([a], [b]) => a.localeCompare(b)).map(([ns, names]) => [ns, [...names].sort()]));
}

/** Namespaces where the controller may get Secrets. */
export function controllerSecretNamespaces(o: ResolvedOptions): string[] {
  return [...new Set([o.namespace, ...o.secretNamespaces, ...agentSecrets(o).keys()])].sort();
}

type Labels = (component: string) => Record<string, string>;

function bind(scope: Construct, id: string, kind: 'Role' | 'ClusterRole', name: string, namespace: string | undefined, sa: string, o: ResolvedOptions, labels: Record<string, string>, rules: Rule[]): void {
  const metadata = { name, labels, ...(namespace ? { namespace } : {}) };
  const subjects = [{ kind: 'ServiceAccount', name: sa, namespace: o.namespace }];
  const roleRef = { apiGroup: 'rbac.authorization.k8s.io', kind, name };
  if (kind === 'ClusterRole') {
    new k8s.KubeClusterRole(scope, `${id}-role`, { metadata, rules });
    new k8s.KubeClusterRoleBinding(scope, `${id}-binding`, { metadata, subjects, roleRef });
  } else {
    new k8s.KubeRole(scope, `${id}-role`, { metadata, rules });
    new k8s.KubeRoleBinding(scope, `${id}-binding`, { metadata, subjects, roleRef });
  }
}

export function addRbac(scope: Construct, o: ResolvedOptions, labels: Labels): void {
  const ctl = labels('controller');
  const agt = labels('agent');
  new k8s.KubeServiceAccount(scope, 'controller-sa', { metadata: { name: CONTROLLER_SA, namespace: o.namespace, labels: ctl }, automountServiceAccountToken: true });
  new k8s.KubeServiceAccount(scope, 'agent-sa', { metadata: { name: AGENT_SA, namespace: o.namespace, labels: agt }, automountServiceAccountToken: true });

  bind(scope, 'controller', 'ClusterRole', 'podfabric-controller', undefined, CONTROLLER_SA, o, ctl, controllerClusterRules());
  bind(scope, 'controller-lease', 'Role', 'podfabric-controller-lease', o.namespace, CONTROLLER_SA, o, ctl, controllerLeaseRules(o.leaseName));
  // Its Events (cluster-scoped objects → "default"; Services → their namespace) come with the ClusterRole.
  for (const ns of controllerSecretNamespaces(o)) {
    bind(scope, `controller-secrets-${ns}`, 'Role', 'podfabric-controller-secrets', ns, CONTROLLER_SA, o, ctl, SECRET_GET_RULES);
  }

  bind(scope, 'agent', 'ClusterRole', 'podfabric-agent', undefined, AGENT_SA, o, agt, agentClusterRules());
  for (const [ns, names] of agentSecrets(o)) {
    bind(scope, `agent-secrets-${ns}`, 'Role', 'podfabric-agent-secrets', ns, AGENT_SA, o, agt, [{ ...SECRET_WATCH_RULES[0]!, resourceNames: names }]);
  }
}
