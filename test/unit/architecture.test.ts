/**
 * The house rules of operator/, checked on the source: each room imports only the rooms it may, pure
 * rooms import no I/O, and no file grows past 400 lines. The README's architecture section lists the
 * same table.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OPERATOR = join(ROOT, 'operator');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Room of a file under operator/ ('' for operator/main.ts). */
const roomOf = (file: string) => {
  const rel = relative(OPERATOR, file).split('/');
  return rel.length > 1 ? rel[0]! : '';
};

function importsOf(file: string): Array<{ spec: string; room?: string }> {
  const src = readFileSync(file, 'utf8');
  const out: Array<{ spec: string; room?: string }> = [];
  for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = (m[1] ?? m[2])!;
    if (spec.startsWith('.')) {
      const target = resolve(dirname(file), spec);
      out.push({ spec, room: target.startsWith(OPERATOR) ? roomOf(target) : 'outside' });
    } else out.push({ spec });
  }
  return out;
}

/** Which rooms each room may import (itself always). Anything not listed is forbidden. */
const MAY_IMPORT: Record<string, string[]> = {
  lib: [],
  api: ['lib', 'routes'], // routes: only routes/model.ts (the kernel's reserved protocol numbers), checked below
  ipam: ['api', 'lib'],
  plan: ['api', 'ipam', 'lib'],
  gobgp: ['lib'],
  routes: ['lib'],
  host: ['lib'],
  cni: ['api', 'lib'],
  kube: ['api', 'lib'],
  controller: ['api', 'ipam', 'plan', 'kube', 'lib', 'services'], // services: LoadBalancer allocation (service-reconciler.ts)
  agent: ['api', 'kube', 'lib', 'gobgp', 'routes', 'host', 'cni', 'services', 'policy', 'nftables', 'plan'], // services: this node's Service routes; policy + nftables: NetworkPolicy enforcement; plan: its BGP sessions from the BGPPeers (plan/peers.ts, the controller's rule)
  cli: ['api', 'plan', 'kube', 'lib', 'services', 'policy'], // policy: kubectl fabric policy explains verdicts with the reference semantics
  services: ['api', 'lib'], // pure: Service address allocation and per-node advertisement decisions
  policy: ['api', 'lib'], // pure: NetworkPolicy model, evaluator, compiler to nftables objects
  nftables: ['lib', 'policy'], // the nft applier (policy/objects.ts is its object model); knows no Kubernetes
};
/** Rooms that decide and do no I/O: no Node I/O modules, no network clients. */
const PURE = ['api', 'ipam', 'plan', 'services', 'policy'];
const IO_MODULES = /^(node:(fs|fs\/promises|child_process|net|http|https|dgram|dns)|@grpc\/|@kubernetes\/)/;

const all = files(OPERATOR);

describe('operator/ rooms', () => {
  for (const [room, allowed] of Object.entries(MAY_IMPORT)) {
    it(`${room}/ imports only ${allowed.length ? allowed.join(', ') : 'nothing above it'}`, () => {
      const bad: string[] = [];
      for (const f of all.filter((x) => roomOf(x) === room)) {
        for (const i of importsOf(f)) {
          if (i.room === undefined || i.room === room) continue;
          if (!allowed.includes(i.room)) bad.push(`${relative(ROOT, f)} → ${i.spec}`);
          if (room === 'api' && i.room === 'routes' && !i.spec.endsWith('/routes/model.js')) bad.push(`${relative(ROOT, f)} → ${i.spec}`);
        }
      }
      expect(bad).toEqual([]);
    });
  }

  it('pure rooms (api, ipam, plan) import no I/O', () => {
    const bad = all
      .filter((f) => PURE.includes(roomOf(f)))
      .flatMap((f) => importsOf(f).filter((i) => IO_MODULES.test(i.spec)).map((i) => `${relative(ROOT, f)} → ${i.spec}`));
    expect(bad).toEqual([]);
  });

  it('gobgp/ and routes/ know no Kubernetes', () => {
    const bad = all
      .filter((f) => ['gobgp', 'routes'].includes(roomOf(f)))
      .flatMap((f) => importsOf(f).filter((i) => i.spec.startsWith('@kubernetes/') || i.room === 'kube' || i.room === 'api').map((i) => `${relative(ROOT, f)} → ${i.spec}`));
    expect(bad).toEqual([]);
  });

  it('sees the imports it checks (the parser is not blind)', () => {
    expect(importsOf(join(OPERATOR, 'controller', 'controller.ts')).filter((i) => i.room === 'kube').length).toBeGreaterThanOrEqual(4);
    expect(importsOf(join(OPERATOR, 'gobgp', 'api.ts')).some((i) => i.spec.startsWith('@grpc/'))).toBe(true);
    expect(importsOf(join(OPERATOR, 'gobgp', 'client.ts')).map((i) => i.spec)).toContain('./codec.js'); // a multi-line import
  });

  it('every room is known (a new room gets a row above)', () => {
    const rooms = new Set(all.map(roomOf).filter(Boolean));
    expect([...rooms].filter((r) => !(r in MAY_IMPORT))).toEqual([]);
  });

  it('no file in operator/ is over 400 lines', () => {
    const long = all.map((f) => [relative(ROOT, f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 400);
    expect(long).toEqual([]);
  });

  it('the install chart uses api/ and plan/ only', () => {
    const chart = files(join(ROOT, 'cdk8s'));
    const bad = chart.flatMap((f) =>
      importsOf(f)
        .filter((i) => i.spec.includes('/operator/') && !/\/operator\/(api|plan|lib)\//.test(i.spec))
        .map((i) => `${relative(ROOT, f)} → ${i.spec}`),
    );
    expect(bad).toEqual([]);
  });
});
