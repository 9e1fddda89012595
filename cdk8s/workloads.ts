/**
 * The controller Deployment (+ PodDisruptionBudget) and the node agent DaemonSet with its gobgpd sidecar.
 *
 * Both run in the host network namespace: the controller is what hands out the pod CIDRs, so it must run
 * before any node has a pod network (no CNI configuration yet: nodes are NotReady and no ordinary pod
 * can get an address). The agent manages the node's own routes and BGP sessions.
 */
import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-34';
import { GOBGP_SOCKET, GOBGP_SOCKET_DIR, type ResolvedOptions, type Resources } from './options.js';
import { AGENT_SA, CONTROLLER_SA } from './rbac.js';

export const CONTROLLER_METRICS_PORT = 9090;
export const AGENT_METRICS_PORT = 9091;
/** Inside the agent container: the host's CNI directories are mounted here. */
export const HOST_CNI_CONF = '/host/etc/cni/net.d';
export const HOST_CNI_BIN = '/host/opt/cni/bin';

const q = (s: string) => k8s.Quantity.fromString(s);
const resources = (r: Resources): k8s.ResourceRequirements => ({
  requests: { cpu: q(r.requests.cpu), memory: q(r.requests.memory) },
  limits: { cpu: q(r.limits.cpu), memory: q(r.limits.memory) },
});
const probe = (path: string, port: number, host?: string, period = 10): k8s.Probe => ({
  httpGet: { path, port: k8s.IntOrString.fromNumber(port), ...(host ? { host } : {}) },
  periodSeconds: period,
  timeoutSeconds: 3,
  failureThreshold: 3,
});
const env = (name: string, fieldPath: string): k8s.EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });

/** Locked down: no privilege escalation, read-only root, every capability dropped unless added here. */
function containerSecurity(add: string[], user: { uid: number; nonRoot: boolean }): k8s.SecurityContext {
  return {
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsUser: user.uid,
    runAsGroup: user.uid,
    runAsNonRoot: user.nonRoot,
    capabilities: { drop: ['ALL'], ...(add.length ? { add } : {}) },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export function addController(scope: Construct, o: ResolvedOptions, labels: Record<string, string>, selector: Record<string, string>): void {
  const name = 'podfabric-controller';
  new k8s.KubeDeployment(scope, 'controller', {
    metadata: { name, namespace: o.namespace, labels },
    spec: {
      replicas: o.controllerReplicas,
      selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: k8s.IntOrString.fromNumber(1), maxSurge: k8s.IntOrString.fromNumber(0) } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: CONTROLLER_SA,
          automountServiceAccountToken: true,
          // Runs before the pod network exists (it is what makes it): host network, tolerate NotReady nodes.
          hostNetwork: true,
          dnsPolicy: 'ClusterFirstWithHostNet',
          priorityClassName: 'system-cluster-critical',
          tolerations: [
            { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoSchedule' },
            { key: 'node.kubernetes.io/network-unavailable', operator: 'Exists', effect: 'NoSchedule' },
            { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
          ],
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } },
              ],
            },
          },
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: 'controller',
              image: o.image,
              imagePullPolicy: 'IfNotPresent',
              args: ['controller', '--namespace', o.namespace, '--lease-name', o.leaseName, '--metrics-addr', `:${CONTROLLER_METRICS_PORT}`],
              env: [env('POD_NAME', 'metadata.name'), env('POD_NAMESPACE', 'metadata.namespace')],
              // With hostNetwork this is also the host port: the scheduler never puts two replicas on one node.
              ports: [{ name: 'metrics', containerPort: CONTROLLER_METRICS_PORT, protocol: 'TCP' }],
              livenessProbe: { ...probe('/healthz', CONTROLLER_METRICS_PORT), initialDelaySeconds: 10 },
              readinessProbe: probe('/readyz', CONTROLLER_METRICS_PORT, undefined, 5),
              resources: resources(o.resources.controller),
              securityContext: containerSecurity([], { uid: 65532, nonRoot: true }),
            },
          ],
        },
      },
    },
  });
  new k8s.KubePodDisruptionBudget(scope, 'controller-pdb', {
    metadata: { name, namespace: o.namespace, labels },
    spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selector } },
  });
}

export function addAgent(scope: Construct, o: ResolvedOptions, labels: Record<string, string>, selector: Record<string, string>): void {
  // The agent and gobgpd run as uid 0 with every capability dropped but the one each needs: Kubernetes
  // gives added capabilities to a non-root process only through file capabilities, which
  // allowPrivilegeEscalation: false (no_new_privs) disables. uid 0 also lets the agent connect to
  // gobgpd's socket (root-owned) and write the conflist into the host's root-owned CNI directory.
  const root = { uid: 0, nonRoot: false };
  new k8s.KubeDaemonSet(scope, 'agent', {
    metadata: { name: 'podfabric-agent', namespace: o.namespace, labels },
    spec: {
      selector: { matchLabels: selector },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: k8s.IntOrString.fromNumber(1) } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: AGENT_SA,
          automountServiceAccountToken: true,
          hostNetwork: true,
          dnsPolicy: 'ClusterFirstWithHostNet',
          priorityClassName: 'system-node-critical',
          tolerations: [{ operator: 'Exists' }],
          securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: 'agent',
              image: o.image,
              imagePullPolicy: 'IfNotPresent',
              args: [
                'agent',
                '--node',
                '$(NODE_NAME)',
                '--gobgp-api',
                `unix://${GOBGP_SOCKET}`,
                '--cni-conf-dir',
                HOST_CNI_CONF,
                '--cni-bin-dir',
                HOST_CNI_BIN,
                '--metrics-addr',
                `127.0.0.1:${AGENT_METRICS_PORT}`,
              ],
              env: [env('NODE_NAME', 'spec.nodeName'), env('POD_NAME', 'metadata.name')],
              // The agent listens on the node's loopback only: kubelet probes it there (host network).
              livenessProbe: { ...probe('/healthz', AGENT_METRICS_PORT, '127.0.0.1'), initialDelaySeconds: 10 },
              // Ready = every planned session established and every host route installed.
              readinessProbe: probe('/readyz', AGENT_METRICS_PORT, '127.0.0.1', 5),
              resources: resources(o.resources.agent),
              securityContext: containerSecurity(['NET_ADMIN'], root),
              volumeMounts: [
                { name: 'gobgp-socket', mountPath: GOBGP_SOCKET_DIR },
                { name: 'cni-conf', mountPath: HOST_CNI_CONF },
                { name: 'cni-bin', mountPath: HOST_CNI_BIN, readOnly: true },
              ],
            },
            {
              name: 'gobgpd',
              image: o.gobgpImage,
              imagePullPolicy: 'IfNotPresent',
              // API on the shared Unix socket only: gobgpd's gRPC API has no authentication, so never a TCP
              // --api-hosts. A container restart keeps the emptyDir, and gobgpd exits on a stale socket
              // ("bind: address already in use"), so remove it first.
              command: ['/bin/sh', '-c', `rm -f ${GOBGP_SOCKET} && exec gobgpd --api-hosts=unix://${GOBGP_SOCKET} --pprof-disable --log-level=info`],
              // BGP listens on :179 (host network): binding below 1024 needs NET_BIND_SERVICE.
              ports: [{ name: 'bgp', containerPort: 179, protocol: 'TCP' }],
              resources: resources(o.resources.gobgpd),
              securityContext: containerSecurity(['NET_BIND_SERVICE'], root),
              volumeMounts: [{ name: 'gobgp-socket', mountPath: GOBGP_SOCKET_DIR }],
            },
          ],
          volumes: [
            { name: 'gobgp-socket', emptyDir: { medium: 'Memory', sizeLimit: q('1Mi') } },
            { name: 'cni-conf', hostPath: { path: o.cniConfDir, type: 'DirectoryOrCreate' } },
            { name: 'cni-bin', hostPath: { path: o.cniBinDir, type: 'DirectoryOrCreate' } },
          ],
        },
      },
    },
  });
}
