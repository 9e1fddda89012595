import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { assertStructural, toStructural } from '../../operator/api/crd.js';
import { ALL_KINDS, IPPool, NodeFabric, parseObject } from '../../operator/api/kinds.js';
import { renderCrds } from '../../operator/api/render.js';

const root = join(import.meta.dirname, '..', '..');

describe('generated CRDs', () => {
  it('crds/ matches the zod schemas (run npm run crds when this fails)', async () => {
    for (const [name, text] of Object.entries(renderCrds())) {
      const onDisk = await readFile(join(root, 'crds', name), 'utf8').catch(() => '<missing>');
      expect(onDisk, `crds/${name} is stale`).toBe(text);
    }
  });

  it('every kind is cluster-scoped with a status subresource, printer columns and a structural schema', () => {
    for (const text of Object.values(renderCrds())) {
      const crd = parse(text);
      expect(crd.spec.scope).toBe('Cluster');
      const v = crd.spec.versions[0];
      expect(v.subresources).toEqual({ status: {} });
      expect(v.additionalPrinterColumns.length).toBeGreaterThan(2);
      expect(() => assertStructural(v.schema.openAPIV3Schema, '')).not.toThrow();
      expect(JSON.stringify(v.schema)).not.toMatch(/\$schema|"additionalProperties":false|9007199254740991/);
    }
  });

  it('x-kubernetes keys survive and conditions are a list-map keyed by type', () => {
    const crd = parse(renderCrds()['podfabric.io_nodefabrics.yaml']!);
    const status = crd.spec.versions[0].schema.openAPIV3Schema.properties.status;
    expect(status.properties.conditions['x-kubernetes-list-type']).toBe('map');
    expect(status.properties.conditions['x-kubernetes-list-map-keys']).toEqual(['type']);
    expect(status.properties.conditions.items.required).toEqual(expect.arrayContaining(['type', 'status', 'reason', 'message', 'lastTransitionTime']));
    const pool = parse(renderCrds()['podfabric.io_ippools.yaml']!).spec.versions[0].schema.openAPIV3Schema.properties.spec;
    expect(pool.properties.cidr['x-kubernetes-validations'].map((r: { rule: string }) => r.rule)).toContain('self == oldSelf');
  });

  it('the post-pass rejects non-structural schemas', () => {
    expect(() => toStructural(z.union([z.string(), z.number()]))).toThrow(/non-structural/);
    expect(() => assertStructural({ type: 'object', properties: { a: {} } }, '')).toThrow(/no type/);
    expect(() =>
      assertStructural({ type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['k'], items: { type: 'object', properties: { k: { type: 'string' } } } }, ''),
    ).toThrow(/must be required or defaulted/);
  });

  it('a union of literals of one type becomes one enum (integers stay integers); other unions stay rejected', () => {
    expect(toStructural(z.union([z.literal(4), z.literal(6)]))).toEqual({ type: 'integer', enum: [4, 6] });
    expect(toStructural(z.union([z.literal(0.5), z.literal(1)]))).toEqual({ type: 'number', enum: [0.5, 1] });
    expect(toStructural(z.union([z.literal('a'), z.literal('b')]).meta({ description: 'd' }))).toEqual({ type: 'string', enum: ['a', 'b'], description: 'd' });
    expect(() => toStructural(z.union([z.literal('a'), z.literal(1)]))).toThrow(/non-structural.*anyOf/);
    const family = parse(renderCrds()['podfabric.io_l2segments.yaml']!).spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.family;
    expect(family).toMatchObject({ type: 'integer', enum: [4, 6] });
  });

  it('ALL_KINDS covers the six kinds', () => {
    expect(ALL_KINDS.map((k) => k.kind).sort()).toEqual(['BGPPeer', 'FabricConfig', 'IPPool', 'L2Segment', 'LoadBalancerPool', 'NodeFabric']);
  });
});

describe('parseObject', () => {
  it('applies zod defaults and keeps metadata', () => {
    const o = parseObject(IPPool, { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'p', generation: 2 }, spec: { cidr: '10.0.0.0/16' } });
    expect(o.spec.disabled).toBe(false);
    expect(o.metadata.generation).toBe(2);
  });
  it('throws naming the field on bad input', () => {
    expect(() => parseObject(IPPool, { apiVersion: 'podfabric.io/v1alpha1', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: 7 } })).toThrow(/cidr/);
  });
  it('drops an unreadable status rather than failing the object', () => {
    const o = parseObject(NodeFabric, { apiVersion: 'podfabric.io/v1alpha1', kind: 'NodeFabric', metadata: { name: 'n' }, spec: {}, status: { sessions: 'x' } });
    expect(o.status).toBeUndefined();
  });
});
