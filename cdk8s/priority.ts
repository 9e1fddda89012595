/**
 * API Priority and Fairness: the controller's lease requests go to the apiserver's built-in
 * `leader-election` priority level (where kube-controller-manager's and kube-scheduler's go), not to
 * `workload-low` with every other ServiceAccount's requests. An apiserver saturated by thousands of
 * agents then still answers the leader's renewals, so a busy leader is not deposed by queueing at
 * the apiserver (its own renewals run on their own thread: operator/kube/leader-thread.ts).
 * matchingPrecedence 200: after the built-in leader-election schema (100), before
 * kube-system-service-accounts (900) and service-accounts (9000).
 */
import { ApiObject } from 'cdk8s';
import type { Construct } from 'constructs';
import type { ResolvedOptions } from './options.js';
import { CONTROLLER_SA } from './rbac.js';

export const LEADER_FLOW_SCHEMA = 'podfabric-leader-election';

export function addLeaderFlowSchema(scope: Construct, o: ResolvedOptions, labels: Record<string, string>): void {
  // A raw ApiObject: cdk8s-plus-34's generated FlowSchema types take RBAC's Subject for flowcontrol's.
  new ApiObject(scope, 'leader-flowschema', {
    apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
    kind: 'FlowSchema',
    metadata: { name: LEADER_FLOW_SCHEMA, labels },
    spec: {
      priorityLevelConfiguration: { name: 'leader-election' },
      matchingPrecedence: 200,
      distinguisherMethod: { type: 'ByUser' },
      rules: [
        {
          subjects: [{ kind: 'ServiceAccount', serviceAccount: { name: CONTROLLER_SA, namespace: o.namespace } }],
          resourceRules: [{ verbs: ['get', 'create', 'update'], apiGroups: ['coordination.k8s.io'], resources: ['leases'], namespaces: [o.namespace] }],
        },
      ],
    },
  });
}
