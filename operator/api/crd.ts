import { z } from 'zod';
import { GROUP, VERSION } from './common.js';
import type { KindDef } from './kinds.js';

type Json = Record<string, unknown>;
const SAFE = Number.MAX_SAFE_INTEGER;

/** zod → OpenAPI v3 schema node for a CRD, then the post-pass that makes it structural. */
export function toStructural(schema: z.ZodType): Json {
  const raw = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', cycles: 'throw', reused: 'inline' }) as Json;
  const out = clean(raw);
  assertStructural(out, '');
  return out;
}

function clean(node: unknown): Json {
  if (!node || typeof node !== 'object' || Array.isArray(node)) throw new Error(`schema node is not an object: ${JSON.stringify(node)}`);
  const n = enumOfLiterals({ ...(node as Json) });
  delete n.$schema;
  delete n.id;
  if (n.additionalProperties === false) delete n.additionalProperties;
  if (n.type === 'integer' || n.type === 'number') {
    if (n.minimum === -SAFE) delete n.minimum;
    if (n.maximum === SAFE) delete n.maximum;
    if (n.type === 'integer' && typeof n.maximum === 'number' && n.maximum > 2 ** 31 - 1) n.format = 'int64';
  }
  if (n.format === 'date-time') delete n.pattern;
  if (n.properties) {
    const props: Json = {};
    for (const [k, v] of Object.entries(n.properties as Json)) props[k] = clean(v);
    n.properties = props;
  }
  if (n.items) n.items = clean(n.items);
  if (n.additionalProperties && typeof n.additionalProperties === 'object') n.additionalProperties = clean(n.additionalProperties);
  if (Array.isArray(n.required) && n.required.length === 0) delete n.required;
  return n;
}

/**
 * A union of literals of one type (`z.union([z.literal(4), z.literal(6)])`, which zod emits as anyOf of
 * one-value enums) is one enum; numbers that are all integers make an integer. Any other anyOf stays and
 * is rejected as non-structural.
 */
function enumOfLiterals(n: Json): Json {
  const alts = n.anyOf;
  if (!Array.isArray(alts) || alts.length === 0) return n;
  const types = new Set(alts.map((a: Json) => a.type));
  const plain = alts.every((a: Json) => Object.keys(a).every((k) => k === 'type' || k === 'enum') && Array.isArray(a.enum));
  if (!plain || types.size !== 1) return n;
  const values = alts.flatMap((a: Json) => a.enum as unknown[]);
  const [type] = types;
  const { anyOf: _, ...rest } = n;
  return { ...rest, type: type === 'number' && values.every((v) => Number.isInteger(v)) ? 'integer' : type, enum: values };
}

const FORBIDDEN = ['$ref', 'oneOf', 'anyOf', 'allOf', 'not', 'nullable', 'definitions', '$defs'];

/** Rejects what the apiserver would call non-structural (or what we never mean to emit). */
export function assertStructural(n: Json, path: string): void {
  for (const k of FORBIDDEN) if (k in n) throw new Error(`non-structural schema at ${path || '/'}: "${k}"`);
  if (typeof n.type !== 'string' && !n['x-kubernetes-int-or-string'] && !n['x-kubernetes-preserve-unknown-fields']) {
    throw new Error(`non-structural schema at ${path || '/'}: no type`);
  }
  if (n.properties && n.additionalProperties) throw new Error(`${path}: both properties and additionalProperties`);
  for (const [k, v] of Object.entries((n.properties as Json | undefined) ?? {})) assertStructural(v as Json, `${path}.${k}`);
  if (n.items) assertStructural(n.items as Json, `${path}[]`);
  if (n.additionalProperties && typeof n.additionalProperties === 'object') assertStructural(n.additionalProperties as Json, `${path}{}`);
  if (n['x-kubernetes-list-type'] === 'map') {
    const keys = n['x-kubernetes-list-map-keys'] as string[];
    const item = n.items as Json;
    const req = (item.required as string[] | undefined) ?? [];
    for (const key of keys) {
      const p = (item.properties as Json)[key] as Json | undefined;
      if (!p) throw new Error(`${path}: list-map key ${key} is not a property`);
      if (!req.includes(key) && p.default === undefined) throw new Error(`${path}: list-map key ${key} must be required or defaulted`);
    }
  }
}

/** The CustomResourceDefinition object for one kind (cluster-scoped, status subresource). */
export function buildCrd(def: KindDef): Json {
  const properties: Json = {
    apiVersion: { type: 'string', description: 'podfabric.io/v1alpha1' },
    kind: { type: 'string' },
    metadata: { type: 'object' },
    spec: { ...toStructural(def.spec), description: specDescription(def) },
    status: { ...toStructural(def.status), description: 'Observed state. Written through the status subresource.' },
  };
  const root: Json = { type: 'object', description: def.description, properties };
  if (def.specRequired) root.required = ['spec'];
  if (def.rootRules?.length) root['x-kubernetes-validations'] = def.rootRules;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${GROUP}`, labels: { 'app.kubernetes.io/name': 'podfabric', 'app.kubernetes.io/part-of': 'podfabric' } },
    spec: {
      group: GROUP,
      scope: 'Cluster',
      names: { kind: def.kind, listKind: `${def.kind}List`, plural: def.plural, singular: def.singular, shortNames: def.shortNames, categories: def.categories },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns,
          schema: { openAPIV3Schema: root },
        },
      ],
    },
  };
}

function specDescription(def: KindDef): string {
  const d = def.spec.meta()?.description;
  return typeof d === 'string' ? d : `Desired state of the ${def.kind}.`;
}
