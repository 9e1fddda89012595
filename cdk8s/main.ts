// cdk8s app entry (cdk8s.yaml: `npx tsx cdk8s/main.ts`; `npm run synth` writes dist/podfabric.k8s.yaml).
// Options: PODFABRIC_VALUES=path/to/values.yaml (YAML or JSON, keys of ChartOptions in cdk8s/options.ts).
import { App } from 'cdk8s';
import { CHART_ID, PodfabricChart } from './chart.js';
import { optionsFromEnv } from './options.js';

const app = new App();
new PodfabricChart(app, CHART_ID, optionsFromEnv());
app.synth();
