/**
 * RBAC cannot say "only your own node's object": every agent may patch every nodefabrics/status. This
 * ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA in 1.30) closes that: a request from
 * the agent's ServiceAccount may write a NodeFabric only when its name equals the node the caller's pod
 * runs on, read from the `authentication.kubernetes.io/node-name` extra that pod-bound ServiceAccount
 * tokens carry since Kubernetes 1.32. A request without that extra (a token not bound to a pod, an
 * older cluster) is denied.
 */
import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-34';
import { GROUP, VERSION } from '../operator/api/kinds.js';
import { AGENT_SA } from './rbac.js';
import type { ResolvedOptions } from './options.js';

export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';
export const POLICY_NAME = 'podfabric-agent-own-nodefabric';

export function addNodeNamePolicy(scope: Construct, o: ResolvedOptions, labels: Record<string, string>): void {
  const user = `system:serviceaccount:${o.namespace}:${AGENT_SA}`;
  const extra = `request.userInfo.extra[${JSON.stringify(NODE_NAME_EXTRA).replace(/"/g, "'")}]`;
  new k8s.KubeValidatingAdmissionPolicy(scope, 'agent-policy', {
    metadata: { name: POLICY_NAME, labels },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [
          {
            apiGroups: [GROUP],
            apiVersions: [VERSION],
            operations: ['CREATE', 'UPDATE', 'DELETE'],
            resources: ['nodefabrics', 'nodefabrics/status'],
          },
        ],
      },
      matchConditions: [{ name: 'podfabric-agent', expression: `request.userInfo.username == '${user}'` }],
      validations: [
        {
          expression: `has(request.userInfo.extra) && '${NODE_NAME_EXTRA}' in request.userInfo.extra && ${extra}.size() == 1 && ${extra}[0] == request.name`,
          messageExpression: `'the podfabric agent may write only the NodeFabric of the node its pod runs on (${NODE_NAME_EXTRA}), not ' + request.name`,
          reason: 'Forbidden',
        },
      ],
    },
  });
  new k8s.KubeValidatingAdmissionPolicyBinding(scope, 'agent-policy-binding', {
    metadata: { name: POLICY_NAME, labels },
    spec: { policyName: POLICY_NAME, validationActions: ['Deny'] },
  });
}
