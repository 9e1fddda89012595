/**
 * podfabric's complete install as one cdk8s chart: Namespace, CRDs, ServiceAccounts and RBAC, the
 * agent admission policy, the FlowSchema for the controller's lease, the controller Deployment (+ PDB), the agent DaemonSet (+ gobgpd sidecar),
 * and the FabricConfig / IPPool / BGPPeer objects. No chart-wide namespace: each namespaced object
 * names its own, so cluster-scoped objects never get one.
 */
import { App, Chart, type ChartProps } from 'cdk8s';
import { k8s } from 'cdk8s-plus-34';
import type { Construct } from 'constructs';
import { addNodeNamePolicy } from './admission.js';
import { addPoolWarningPolicy } from './warnings.js';
import { addCrds, addFabricObjects } from './fabric.js';
import { resolveOptions, VERSION, type ChartOptions, type ResolvedOptions } from './options.js';
import { addLeaderFlowSchema } from './priority.js';
import { addRbac } from './rbac.js';
import { addAgent, addController } from './workloads.js';

/** The chart's id: the CLI writes it to dist/<id>.k8s.yaml. */
export const CHART_ID = 'podfabric';
export const OUTPUT_FILE = `${CHART_ID}.k8s.yaml`;

export class PodfabricChart extends Chart {
  readonly options: ResolvedOptions;

  constructor(scope: Construct, id: string = CHART_ID, options: ChartOptions = {}, props: Omit<ChartProps, 'namespace' | 'labels'> = {}) {
    super(scope, id, { ...props, disableResourceNameHashes: true });
    const o = resolveOptions(options);
    this.options = o;
    const selector = (component: string) => ({ 'app.kubernetes.io/name': 'podfabric', 'app.kubernetes.io/component': component });
    const labels = (component: string) => ({ ...selector(component), 'app.kubernetes.io/part-of': 'podfabric', 'app.kubernetes.io/version': VERSION });

    new k8s.KubeNamespace(this, 'namespace', { metadata: { name: o.namespace, labels: labels('namespace') } });
    addCrds(this, labels('crds'));
    addRbac(this, o, labels);
    addLeaderFlowSchema(this, o, labels('controller'));
    if (o.nodeNamePolicy) addNodeNamePolicy(this, o, labels('agent'));
    if (o.poolWarnings) addPoolWarningPolicy(this, labels('crds'));
    addController(this, o, labels('controller'), selector('controller'));
    addAgent(this, o, labels('agent'), selector('agent'));
    addFabricObjects(this, o, labels('config'));
  }
}

/** The install as the YAML text the CLI writes to dist/podfabric.k8s.yaml (same code path: App + chart). */
export function synthInstall(options: ChartOptions = {}): string {
  const app = new App({ outdir: 'dist' });
  new PodfabricChart(app, CHART_ID, options);
  return app.synthYaml();
}
