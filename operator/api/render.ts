import { stringify } from 'yaml';
import { buildCrd } from './crd.js';
import { ALL_KINDS } from './kinds.js';

const HEADER = '# Generated from operator/api by `npm run crds`. Do not edit.\n';

/** File name → YAML text of every CRD. */
export function renderCrds(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const def of ALL_KINDS) {
    out[`podfabric.io_${def.plural}.yaml`] = HEADER + stringify(buildCrd(def), { lineWidth: 0 });
  }
  return out;
}
