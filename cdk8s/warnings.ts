/**
 * A ValidatingAdmissionPolicy in Warn mode: IPPools that the CRD accepts but that are probably a mistake
 * (documentation ranges, public IPv4, IPv6 outside ULA/global unicast, blocks smaller than the kubelet's
 * default maxPods) are stored, and `kubectl apply` prints why (operator/api/pool-flags.ts).
 */
import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-34';
import { GROUP, VERSION } from '../operator/api/kinds.js';
import { POOL_CHECKS } from '../operator/api/pool-flags.js';

export const POOL_WARNINGS_POLICY = 'podfabric-ippool-warnings';

export function addPoolWarningPolicy(scope: Construct, labels: Record<string, string>): void {
  new k8s.KubeValidatingAdmissionPolicy(scope, 'pool-warnings', {
    metadata: { name: POOL_WARNINGS_POLICY, labels },
    spec: {
      failurePolicy: 'Ignore', // a warning must never block a write
      matchConstraints: {
        resourceRules: [{ apiGroups: [GROUP], apiVersions: [VERSION], operations: ['CREATE', 'UPDATE'], resources: ['ippools'] }],
      },
      validations: POOL_CHECKS.map((p) => ({ expression: p.expression, messageExpression: p.messageExpression, reason: 'Invalid' })),
    },
  });
  new k8s.KubeValidatingAdmissionPolicyBinding(scope, 'pool-warnings-binding', {
    metadata: { name: POOL_WARNINGS_POLICY, labels },
    spec: { policyName: POOL_WARNINGS_POLICY, validationActions: ['Warn'] },
  });
}
