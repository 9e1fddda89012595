/**
 * The podfabric API objects of the install: the CRDs (from the same zod schemas and generator as crds/)
 * and the FabricConfig "default", IPPools and BGPPeers from the chart options. Every custom object is
 * checked at synth time with the zod schema (parseObject) and with the rules the CRDs enforce in CEL,
 * so a bad option fails `npm run synth` instead of `kubectl apply`.
 */
import { Construct } from 'constructs';
import { ApiObject } from 'cdk8s';
import { buildCrd } from '../operator/api/crd.js';
import { ALL_KINDS, API_VERSION, BGPPeer, FabricConfig, IPPool, parseObject, type KindDef } from '../operator/api/kinds.js';
import { poolProblems, routeProtocolProblems, timerProblems } from '../operator/api/rules.js';
import { validatePeer } from '../operator/plan/peers.js';
import { GOBGP_SOCKET, type ResolvedOptions } from './options.js';

type Json = Record<string, unknown>;

/**
 * CRDs as raw ApiObjects: the typed KubeCustomResourceDefinition drops x-kubernetes-* keys
 * (x-kubernetes-validations, list types). Labels are merged into the generator's own.
 */
export function addCrds(scope: Construct, labels: Record<string, string>): void {
  for (const def of ALL_KINDS) {
    const crd = buildCrd(def) as { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: Json };
    new ApiObject(scope, `crd-${def.plural}`, {
      apiVersion: crd.apiVersion,
      kind: crd.kind,
      metadata: { ...crd.metadata, labels: { ...crd.metadata.labels, ...labels } },
      spec: crd.spec,
    });
  }
}

/** Validates obj with the kind's zod schema; the error names the object and the field. */
function checked<K extends KindDef>(def: K, obj: { metadata: { name: string }; spec: Json }, extra: string[] = []): void {
  const where = `${def.kind} ${obj.metadata.name}`;
  try {
    parseObject(def, { apiVersion: API_VERSION, kind: def.kind, ...obj });
  } catch (e) {
    const issues = (e as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues;
    const text = issues ? issues.map((i) => `spec.${i.path.map(String).join('.')}: ${i.message}`).join('; ') : (e as Error).message;
    throw new Error(`podfabric chart: ${where}: ${text}`);
  }
  if (extra.length) throw new Error(`podfabric chart: ${where}: ${extra.join('; ')}`);
}

export function addFabricObjects(scope: Construct, o: ResolvedOptions, labels: Record<string, string>): void {
  const names = new Set<string>();
  const unique = (kind: string, name: string) => {
    if (names.has(`${kind}/${name}`)) throw new Error(`podfabric chart: two ${kind}s are named ${name}`);
    names.add(`${kind}/${name}`);
  };

  const fcSpec = { asn: o.nodeASN, ...o.fabricConfig, gobgpSocket: GOBGP_SOCKET, cni: { ...o.fabricConfig.cni, confDir: o.cniConfDir } };
  const fc = { metadata: { name: 'default', labels }, spec: fcSpec };
  checked(FabricConfig, fc, routeProtocolProblems(fcSpec.routeProtocol));
  new ApiObject(scope, 'fabricconfig', { apiVersion: API_VERSION, kind: FabricConfig.kind, ...fc });

  for (const p of o.pools) {
    unique('IPPool', p.name);
    const spec: Json = { cidr: p.cidr };
    if (p.blockSize !== undefined) spec.blockSize = p.blockSize;
    if (p.nodeSelector) spec.nodeSelector = p.nodeSelector;
    if (p.disabled !== undefined) spec.disabled = p.disabled;
    const obj = { metadata: { name: p.name, labels }, spec };
    checked(IPPool, obj, poolProblems(p.cidr, p.blockSize));
    new ApiObject(scope, `pool-${p.name}`, { apiVersion: API_VERSION, kind: IPPool.kind, ...obj });
  }

  const poolCidrs = o.pools.map((p) => ({ pool: p.name, cidr: p.cidr }));
  for (const p of o.peers) {
    unique('BGPPeer', p.name);
    const spec: Json = { peerAddress: p.address, peerASN: p.asn };
    if (p.localASN !== undefined) spec.localASN = p.localASN;
    if (p.nodeSelector) spec.nodeSelector = p.nodeSelector;
    if (p.passwordSecretRef) spec.passwordSecretRef = { namespace: p.passwordSecretRef.namespace ?? o.namespace, name: p.passwordSecretRef.name, key: p.passwordSecretRef.key ?? 'password' };
    if (p.timers) spec.timers = p.timers;
    if (p.gracefulRestart) spec.gracefulRestart = p.gracefulRestart;
    if (p.ebgpMultihop !== undefined) spec.ebgpMultihop = p.ebgpMultihop;
    if (p.communities) spec.communities = p.communities;
    const obj = { metadata: { name: p.name, labels }, spec };
    let problems: string[] = [];
    try {
      const parsed = parseObject(BGPPeer, { apiVersion: API_VERSION, kind: BGPPeer.kind, ...obj });
      // The controller's own check (address, not inside a pool); the Secret is checked on the cluster.
      problems = validatePeer({ name: p.name, spec: parsed.spec, creationTimestamp: '' }, { poolCidrs, secret: 'none' }).invalid.map((i) => i.message);
      problems.push(...timerProblems(parsed.spec.timers));
    } catch {
      // checked() below reports the zod error with the field names.
    }
    checked(BGPPeer, obj, problems);
    new ApiObject(scope, `peer-${p.name}`, { apiVersion: API_VERSION, kind: BGPPeer.kind, ...obj });
  }
}
